"""The queue under real concurrency: separate connections, real commits.

These tests cannot live inside the test transaction: two workers must see each
other's commits and locks. Each test commits its own fixture rows on dedicated
connections and deletes them afterwards; the test cursor itself never commits.
"""

import threading
from collections import Counter
from unittest.mock import patch

import psycopg2

from odoo import SUPERUSER_ID, api, sql_db
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..lib.job_function import job_function

LEDGER = "qtc_test_ledger"


@tagged("post_install", "-at_install")
class TestJobQueueConcurrency(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.executions = Counter()
        cls.executions_lock = threading.Lock()
        cls.JobClass = type(cls.env["qtc.job"])
        test = cls

        def ledger_write(records, tag, kill_first_attempt=False, report_progress=False):
            """Job target: count the execution, write one ledger row in the job's
            own transaction (so a committed row means a committed run)."""
            with test.executions_lock:
                test.executions[tag] += 1
                attempt = test.executions[tag]
            cr = records.env.cr
            cr.execute(f"INSERT INTO {LEDGER} (tag) VALUES (%s)", (tag,))
            if report_progress:
                # Committed by a side transaction while this one is open.
                records._qtc_progress(1, 2, "half way")
                records._qtc_progress(2, 2, "done")
            if kill_first_attempt and attempt == 1:
                # The database connection under the running job dies.
                cr.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            return tag

        # A job function, run as an ordinary active user (never the superuser).
        cls.JobClass._qtc_test_ledger = job_function(ledger_write)
        cls.runner_id = cls.env.ref("base.user_admin").id
        cls.addClassCleanup(delattr, cls.JobClass, "_qtc_test_ledger")

    def setUp(self):
        super().setUp()
        # The test runner holds the registry lock while tests run; worker threads
        # building an Environment would wait on it forever. Odoo's own test mode
        # swaps it for a no-op lock the same way.
        lock_patch = patch.object(Registry, "_lock", DummyRLock())
        lock_patch.start()
        self.addCleanup(lock_patch.stop)
        self.executions.clear()
        with self.real_cursor() as cr:
            cr.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (id serial, tag varchar)")
            cr.execute(f"TRUNCATE {LEDGER}")
        self.addCleanup(self._cleanup)

    def real_cursor(self):
        return sql_db.db_connect(self.env.cr.dbname).cursor()

    def _cleanup(self):
        with self.real_cursor() as cr:
            cr.execute("DELETE FROM qtc_job WHERE name LIKE 'concurrency-test%%'")
            cr.execute(f"DROP TABLE IF EXISTS {LEDGER}")

    def _enqueue_committed(self, count, **kwargs):
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            jobs = [
                env["qtc.job"]._qtc_enqueue(
                    env["qtc.job"],
                    "_qtc_test_ledger",
                    [f"job-{n}"],
                    kwargs,
                    name=f"concurrency-test {n}",
                    user=self.runner_id,
                )
                for n in range(count)
            ]
            return [job.id for job in jobs]

    def _ledger(self):
        with self.real_cursor() as cr:
            cr.execute(f"SELECT tag, count(*) FROM {LEDGER} GROUP BY tag")
            return dict(cr.fetchall())

    def _states(self, ids):
        with self.real_cursor() as cr:
            cr.execute(
                "SELECT id, state, attempts FROM qtc_job WHERE id = ANY(%s)", (ids,)
            )
            return {row[0]: row[1:] for row in cr.fetchall()}

    def _run_worker(self, results, name):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            results[name] = env["qtc.job"]._qtc_run_worker(max_seconds=60)

    def test_two_workers_never_run_a_job_twice(self):
        ids = self._enqueue_committed(60)
        results = {}
        workers = [
            threading.Thread(target=self._run_worker, args=(results, f"w{n}"))
            for n in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        self.assertEqual(sum(results.values()), 60)
        self.assertEqual(set(self._states(ids).values()), {("done", 1)})
        self.assertEqual(self._ledger(), {f"job-{n}": 1 for n in range(60)})
        self.assertEqual(set(self.executions.values()), {1}, "each job executed once")

    def test_enqueue_in_a_rolled_back_transaction_never_exists(self):
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            job = env["qtc.job"]._qtc_enqueue(
                env["qtc.job"],
                "_qtc_test_ledger",
                ["ghost"],
                name="concurrency-test ghost",
                user=self.runner_id,
            )
            job_id = job.id
            cr.rollback()
        self.assertEqual(self._states([job_id]), {})
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["qtc.job"]._qtc_run_worker(max_seconds=5), 0)
        self.assertEqual(self._ledger(), {})

    @mute_logger("odoo.sql_db")  # the expected serialization failure is logged
    def test_identity_key_race_across_transactions(self):
        """Two transactions enqueue the same key at once: one job exists."""
        first, second = self.real_cursor(), self.real_cursor()
        try:
            ids = []
            for cr in (first,):
                env = api.Environment(cr, SUPERUSER_ID, {})
                ids.append(
                    env["qtc.job"]
                    ._qtc_enqueue(
                        env["qtc.job"],
                        "_qtc_test_ledger",
                        ["same"],
                        name="concurrency-test same",
                        user=self.runner_id,
                        identity_key="concurrency-same",
                    )
                    .id
                )
            outcome = {}

            def second_enqueue():
                env = api.Environment(second, SUPERUSER_ID, {})
                for _attempt in range(2):
                    try:
                        outcome["job"] = (
                            env["qtc.job"]
                            ._qtc_enqueue(
                                env["qtc.job"],
                                "_qtc_test_ledger",
                                ["same"],
                                name="concurrency-test same",
                                user=self.runner_id,
                                identity_key="concurrency-same",
                            )
                            .id
                        )
                        second.commit()
                        return
                    except psycopg2.errors.SerializationFailure:
                        # Odoo retries such a transaction (requests, jobs); the
                        # retry sees the committed job and queues nothing.
                        outcome["serialization_failures"] = 1
                        second.rollback()

            # The second insert waits on the first transaction's unique entry...
            thread = threading.Thread(target=second_enqueue)
            thread.start()
            thread.join(timeout=1)
            self.assertTrue(thread.is_alive(), "the second enqueue waits for the first")
            first.commit()  # ...and finds it once the first commits.
            thread.join(timeout=10)
            self.assertEqual(outcome["job"], ids[0])
        finally:
            first.close()
            second.close()
        with self.real_cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM qtc_job WHERE identity_key = 'concurrency-same'"
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def test_worker_killed_mid_job_loses_nothing_and_doubles_nothing(self):
        [job_id] = self._enqueue_committed(1)
        claim_cr, lock_cr, work_cr = (
            self.real_cursor(),
            self.real_cursor(),
            self.real_cursor(),
        )
        env = api.Environment(claim_cr, SUPERUSER_ID, {})
        self.assertEqual(env["qtc.job"]._qtc_claim(claim_cr, lock_cr)["id"], job_id)
        claim_cr.commit()
        claim_cr.close()
        # The job's work is under way, not committed, when the process dies:
        # PostgreSQL drops both of its connections.
        work_cr.execute(f"INSERT INTO {LEDGER} (tag) VALUES ('job-0')")
        with self.real_cursor() as killer:
            for cr in (lock_cr, work_cr):
                killer.execute(
                    "SELECT pg_terminate_backend(%s)", (cr._cnx.get_backend_pid(),)
                )
        for cr in (lock_cr, work_cr):
            try:
                cr.close()
            except psycopg2.Error:
                pass
        self.assertEqual(self._states([job_id])[job_id], ("started", 1))
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(
                env["qtc.job"]._qtc_recover_stale(stale_seconds=0), [job_id]
            )
        with self.real_cursor() as cr:
            cr.execute("UPDATE qtc_job SET eta = NULL WHERE id = %s", (job_id,))
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["qtc.job"]._qtc_run_worker(max_seconds=10), 1)
        self.assertEqual(self._states([job_id])[job_id], ("done", 2))
        self.assertEqual(self._ledger(), {"job-0": 1})

    def test_recovery_leaves_a_live_job_alone(self):
        [job_id] = self._enqueue_committed(1)
        claim_cr, lock_cr = self.real_cursor(), self.real_cursor()
        try:
            env = api.Environment(claim_cr, SUPERUSER_ID, {})
            env["qtc.job"]._qtc_claim(claim_cr, lock_cr)
            claim_cr.commit()
            with self.real_cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                # Even with a stale heartbeat, the lock says its worker is alive.
                self.assertEqual(env["qtc.job"]._qtc_recover_stale(stale_seconds=0), [])
            self.assertEqual(self._states([job_id])[job_id], ("started", 1))
        finally:
            lock_cr.rollback()
            lock_cr.close()
            claim_cr.close()

    @mute_logger("odoo.sql_db")  # the killed connection's query is logged
    def test_database_connection_killed_under_a_running_job(self):
        [job_id] = self._enqueue_committed(1, kill_first_attempt=True)
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["qtc.job"]._qtc_run_worker(max_seconds=10)
        state, attempts = self._states([job_id])[job_id]
        self.assertEqual((state, attempts), ("pending", 1), "a transient failure")
        self.assertEqual(self._ledger(), {}, "the killed attempt left nothing")
        with self.real_cursor() as cr:
            cr.execute("UPDATE qtc_job SET eta = NULL WHERE id = %s", (job_id,))
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["qtc.job"]._qtc_run_worker(max_seconds=10)
        self.assertEqual(self._states([job_id])[job_id], ("done", 2))
        self.assertEqual(self._ledger(), {"job-0": 1})

    def test_progress_reports_never_break_the_job_commit(self):
        """Progress and heartbeats are committed by other transactions while the
        job's own (repeatable read) transaction is open; the job still commits."""
        [job_id] = self._enqueue_committed(1, report_progress=True)
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["qtc.job"]._qtc_run_worker(max_seconds=10), 1)
        self.assertEqual(self._states([job_id])[job_id], ("done", 1))
        self.assertEqual(self._ledger(), {"job-0": 1})
        with self.real_cursor() as cr:
            cr.execute(
                "SELECT done, total, message FROM qtc_job_progress WHERE job_id = %s",
                (job_id,),
            )
            self.assertEqual(cr.fetchone(), (2, 2, "done"))
