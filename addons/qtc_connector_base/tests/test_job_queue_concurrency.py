"""The queue under real concurrency: separate connections, real commits.

These tests cannot live inside the test transaction: two workers must see each
other's commits and locks. Each test commits its own fixture rows on dedicated
connections and deletes them afterwards; the test cursor itself never commits.
"""

import logging
import threading
import time
from collections import Counter
from unittest.mock import patch

import psycopg2

from odoo import SUPERUSER_ID, api, sql_db
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from .. import const
from ..lib.errors import ConcurrencyConflict
from ..lib.job_function import job_function
from ..models import qtc_job as qtc_job_module
from ..models.qtc_backend import InboundEvent

LEDGER = "qtc_test_ledger"
COUNTER = "qtc_test_counter"
# How long a job waits for another job to start when the test wants to know
# whether they could run at once (only reached when they cannot).
OVERLAP_WAIT = 10


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

        def meet(records, tag, waits_for, resource):
            """Job target: say it started, wait (bounded) for the job tagged
            ``waits_for`` to start, record whether it did and how many jobs of
            ``resource`` ran at once, then write one ledger row."""
            with test.executions_lock:
                test.executions[tag] += 1
                test.running[resource] = test.running.get(resource, 0) + 1
                test.most_at_once[resource] = max(
                    test.most_at_once.get(resource, 0), test.running[resource]
                )
                test.started_order.append(tag)
            test.started[tag].set()
            test.saw[tag] = test.started[waits_for].wait(OVERLAP_WAIT)
            records.env.cr.execute(f"INSERT INTO {LEDGER} (tag) VALUES (%s)", (tag,))
            with test.executions_lock:
                test.running[resource] -= 1
            return tag

        def conflict(records, tag):
            """Job target: its first run meets a concurrent update of the row
            it updates (a real serialization failure); later runs do not."""
            with test.executions_lock:
                test.executions[tag] += 1
                attempt = test.executions[tag]
            cr = records.env.cr
            cr.execute(f"SELECT value FROM {COUNTER} WHERE id = 1")  # snapshot
            if attempt == 1:
                with sql_db.db_connect(cr.dbname).cursor() as other:
                    other.execute(
                        f"UPDATE {COUNTER} SET value = value + 1 WHERE id = 1"
                    )
            cr.execute(f"UPDATE {COUNTER} SET value = value + 10 WHERE id = 1")
            cr.execute(f"INSERT INTO {LEDGER} (tag) VALUES (%s)", (tag,))
            return tag

        def always_conflicts(records, tag):
            with test.executions_lock:
                test.executions[tag] += 1
            raise ConcurrencyConflict("the same numbers were taken meanwhile", 60)

        for name, target in (
            ("_qtc_test_ledger", ledger_write),
            ("_qtc_test_meet", meet),
            ("_qtc_test_conflict", conflict),
            ("_qtc_test_always_conflicts", always_conflicts),
        ):
            # A job function, run as an ordinary active user (never the
            # superuser).
            setattr(cls.JobClass, name, job_function(target))
            cls.addClassCleanup(delattr, cls.JobClass, name)
        cls.runner_id = cls.env.ref("base.user_admin").id

    def setUp(self):
        super().setUp()
        # The test runner holds the registry lock while tests run; worker threads
        # building an Environment would wait on it forever. Odoo's own test mode
        # swaps it for a no-op lock the same way.
        lock_patch = patch.object(Registry, "_lock", DummyRLock())
        lock_patch.start()
        self.addCleanup(lock_patch.stop)
        self.executions.clear()
        cls = type(self)
        cls.started = {tag: threading.Event() for tag in ("a", "b", "c")}
        cls.saw, cls.running, cls.most_at_once = {}, {}, {}
        cls.started_order = []
        with self.real_cursor() as cr:
            cr.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (id serial, tag varchar)")
            cr.execute(f"TRUNCATE {LEDGER}")
            cr.execute(f"CREATE TABLE IF NOT EXISTS {COUNTER} (id int, value int)")
            cr.execute(f"TRUNCATE {COUNTER}")
            cr.execute(f"INSERT INTO {COUNTER} VALUES (1, 0)")
        self.addCleanup(self._cleanup)

    def real_cursor(self):
        return sql_db.db_connect(self.env.cr.dbname).cursor()

    def _cleanup(self):
        with self.real_cursor() as cr:
            cr.execute("DELETE FROM qtc_job WHERE name LIKE 'concurrency-test%%'")
            cr.execute(f"DROP TABLE IF EXISTS {LEDGER}")
            cr.execute(f"DROP TABLE IF EXISTS {COUNTER}")

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

    def _enqueue_on(self, tag, resource, method="_qtc_test_meet", **kwargs):
        """Queue a committed job writing ``resource`` (e.g. an order)."""
        if method == "_qtc_test_meet":
            kwargs["resource"] = resource
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            return (
                env["qtc.job"]
                ._qtc_enqueue(
                    env["qtc.job"],
                    method,
                    [tag],
                    kwargs,
                    name=f"concurrency-test {tag}",
                    resources=[resource],
                    user=self.runner_id,
                )
                .id
            )

    def _worker_thread(self, results, name):
        thread = threading.Thread(target=self._run_worker, args=(results, name))
        thread.start()
        return thread

    def _job_row(self, job_id):
        with self.real_cursor() as cr:
            cr.execute(
                "SELECT state, attempts, COALESCE(conflict_retries, 0), eta "
                "FROM qtc_job "
                "WHERE id = %s",
                (job_id,),
            )
            return cr.fetchone()

    # ------------------------------------------------------------- resources

    def test_two_jobs_on_one_order_never_overlap_and_others_run_meanwhile(self):
        """a and b write the same order, c another: while a runs, the second
        worker passes b over (its order is held) and runs c at once; b runs
        once a is done."""
        first = self._enqueue_on("a", "sale.order:1001", waits_for="c")
        second = self._enqueue_on("b", "sale.order:1001", waits_for="a")
        third = self._enqueue_on("c", "sale.order:1002", waits_for="a")
        results = {}
        worker_1 = self._worker_thread(results, "w1")
        self.assertTrue(self.started["a"].wait(30), "a worker took the first job")
        worker_2 = self._worker_thread(results, "w2")
        for worker in (worker_1, worker_2):
            worker.join(timeout=120)
        self.assertEqual(sum(results.values()), 3)
        self.assertEqual(self.most_at_once["sale.order:1001"], 1, "never at once")
        self.assertTrue(self.saw["a"], "c ran while a was running")
        self.assertEqual(self.started_order.index("b"), 2, "b after a (and c)")
        self.assertEqual(
            {job: self._job_row(job)[:3] for job in (first, second, third)},
            dict.fromkeys((first, second, third), ("done", 1, 0)),
        )
        self.assertEqual(self._ledger(), {"a": 1, "b": 1, "c": 1})

    def test_two_jobs_on_two_orders_run_at_once(self):
        first = self._enqueue_on("a", "sale.order:2001", waits_for="b")
        second = self._enqueue_on("b", "sale.order:2002", waits_for="a")
        results = {}
        workers = [self._worker_thread(results, f"w{n}") for n in range(2)]
        for worker in workers:
            worker.join(timeout=120)
        self.assertEqual(self.saw, {"a": True, "b": True}, "each saw the other run")
        self.assertEqual(self._job_row(first)[0], "done")
        self.assertEqual(self._job_row(second)[0], "done")

    def test_a_job_waits_for_an_earlier_job_on_its_resource(self):
        """Queue order within a resource: while another worker is claiming
        the earlier job (its row locked), the later one is not a candidate,
        but a job on another resource is."""
        earlier = self._enqueue_on("a", "sale.order:3001", waits_for="a")
        later = self._enqueue_on("b", "sale.order:3001", waits_for="b")
        other = self._enqueue_on("c", "sale.order:3002", waits_for="c")
        with self.real_cursor() as claiming, self.real_cursor() as cr:
            claiming.execute(
                "SELECT id FROM qtc_job WHERE id = %s FOR UPDATE", (earlier,)
            )
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            env = api.Environment(cr, SUPERUSER_ID, {})
            with self.real_cursor() as lock_cr:
                claimed = env["qtc.job"]._qtc_claim(cr, lock_cr)
                self.assertEqual(claimed["id"], other)
                cr.rollback()
                lock_cr.rollback()
        self.assertEqual(self._job_row(later)[0], "pending")

    def test_resources_are_released_with_a_dead_workers_connection(self):
        job_id = self._enqueue_on("a", "sale.order:4001", waits_for="a")
        claim_cr, lock_cr = self.real_cursor(), self.real_cursor()
        env = api.Environment(claim_cr, SUPERUSER_ID, {})
        self.assertEqual(env["qtc.job"]._qtc_claim(claim_cr, lock_cr)["id"], job_id)
        claim_cr.commit()
        claim_cr.close()
        later = self._enqueue_on("b", "sale.order:4001", waits_for="b")
        with self.real_cursor() as cr, self.real_cursor() as other_lock:
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertIsNone(
                env["qtc.job"]._qtc_claim(cr, other_lock), "the order is held"
            )
            cr.rollback()
        with self.real_cursor() as killer:
            killer.execute(
                "SELECT pg_terminate_backend(%s)", (lock_cr._cnx.get_backend_pid(),)
            )
        try:
            lock_cr.close()
        except psycopg2.Error:
            pass
        with self.real_cursor() as cr, self.real_cursor() as other_lock:
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["qtc.job"]._qtc_claim(cr, other_lock)["id"], later)
            cr.rollback()

    # ------------------------------------------------------------- conflicts

    def test_a_serialization_failure_is_run_again_at_once_and_applied_once(self):
        job_id = self._enqueue_on("x", "counter:1", method="_qtc_test_conflict")
        pauses = []
        real_sleep = time.sleep

        def sleep(seconds):
            pauses.append(seconds)
            real_sleep(seconds)

        with (
            patch.object(qtc_job_module.time, "sleep", sleep),
            self.assertNoLogs("odoo.sql_db", logging.ERROR),
            # logging.INFO: Odoo gives the name "INFO" to a level of its own.
            self.assertLogs(qtc_job_module.__name__, logging.INFO) as logs,
        ):
            with self.real_cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                self.assertEqual(env["qtc.job"]._qtc_run_worker(max_seconds=30), 1)
        state, attempts, conflicts, eta = self._job_row(job_id)
        self.assertEqual((state, attempts, conflicts, eta), ("done", 1, 1, None))
        self.assertEqual(self.executions["x"], 2, "run twice, committed once")
        self.assertEqual(self._ledger(), {"x": 1})
        with self.real_cursor() as cr:
            cr.execute(f"SELECT value FROM {COUNTER}")
            self.assertEqual(cr.fetchone()[0], 11, "the other update and ours")
        self.assertEqual(len(pauses), 1)
        self.assertLess(pauses[0], 1, "run again within a second, no backoff")
        self.assertIn("could not serialize access", "\n".join(logs.output))
        self.assertIn(f"UPDATE {COUNTER}", "\n".join(logs.output))

    def test_conflicts_beyond_the_immediate_retries_back_off_as_usual(self):
        job_id = self._enqueue_on("y", "counter:2", method="_qtc_test_always_conflicts")
        with patch.object(qtc_job_module.time, "sleep", lambda _seconds: None):
            with self.real_cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["qtc.job"]._qtc_run_worker(max_seconds=30)
        state, attempts, conflicts, eta = self._job_row(job_id)
        self.assertEqual((state, attempts), ("pending", 1))
        self.assertEqual(conflicts, const.CONFLICT_RETRIES)
        self.assertEqual(self.executions["y"], const.CONFLICT_RETRIES + 1)
        self.assertIsNotNone(eta, "the usual retry, after the error's delay")

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

    def test_the_same_event_stored_twice_at_once_is_not_an_error(self):
        """Two deliveries of one event in two transactions at once (a sender
        retrying): the later is refused with a serialization failure, which
        is not logged as an error; run again (as Odoo runs the request
        again), it finds a duplicate. One event, one job."""
        with self.real_cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            backend_id = (
                env["qtc.backend"]
                .create({"name": "concurrency-test backend", "state": "active"})
                .id
            )
        self.addCleanup(self._drop_backend, backend_id)
        event = InboundEvent("evt_twice_at_once", "x", "{}")
        first, second = self.real_cursor(), self.real_cursor()
        outcome = {}

        def deliver_again():
            env = api.Environment(second, SUPERUSER_ID, {})
            backend = env["qtc.backend"].browse(backend_id)
            for attempt in range(2):
                try:
                    outcome[attempt] = backend._qtc_store_events([event])
                    second.commit()
                    return
                except psycopg2.errors.SerializationFailure:
                    outcome["refused"] = True
                    second.rollback()

        try:
            with self.assertNoLogs("odoo.sql_db", logging.ERROR):
                env = api.Environment(first, SUPERUSER_ID, {})
                stored = (
                    env["qtc.backend"].browse(backend_id)._qtc_store_events([event])
                )
                thread = threading.Thread(target=deliver_again)
                thread.start()
                thread.join(timeout=1)
                self.assertTrue(thread.is_alive(), "it waits for the first delivery")
                first.commit()
                thread.join(timeout=10)
        finally:
            first.close()
            second.close()
        self.assertEqual(list(stored), ["evt_twice_at_once"])
        self.assertTrue(outcome.get("refused"), "the second was refused once")
        self.assertEqual(outcome[1], {}, "run again: a duplicate")
        with self.real_cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM qtc_job WHERE backend_id = %s", (backend_id,)
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def _drop_backend(self, backend_id):
        with self.real_cursor() as cr:
            cr.execute("DELETE FROM qtc_job WHERE backend_id = %s", (backend_id,))
            cr.execute("DELETE FROM qtc_event WHERE backend_id = %s", (backend_id,))
            cr.execute("DELETE FROM qtc_backend WHERE id = %s", (backend_id,))

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
