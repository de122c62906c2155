import json
import logging
from datetime import timedelta

import psycopg2.errors

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from .. import const
from ..conflicts import RETRIED_MARK, conflicts_handled, is_conflict
from ..lib.errors import BusinessError, ConcurrencyConflict, RetryableError
from ..models import qtc_job as qtc_job_module
from ..models.qtc_backend import InboundEvent
from .common import QtcCase


def write_partner(records, values):
    """A job function writing its partners (the queue tests' plain work)."""
    records.write(values)


@tagged("post_install", "-at_install")
class TestJobQueue(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env["res.partner"].create({"name": "Queue target"})
        cls.Job = cls.env["qtc.job"]
        # Jobs run as the user who queued them: these tests queue as this one
        # (or as the backend's technical user, for work of a backend).
        cls.runner = new_test_user(
            cls.env,
            "qtc_jq_runner",
            groups="base.group_user,base.group_partner_manager",
        )
        cls.backend.technical_user_id = cls.make_service_user(
            "qtc_jq_service", "base.group_partner_manager"
        )
        cls.manager = new_test_user(
            cls.env, "qtc_jq_manager", groups="qtc_connector_base.group_qtc_manager"
        )

    def setUp(self):
        super().setUp()
        patcher = self.patch_job_function(
            self.partner, "_qtc_test_write", write_partner
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def _enqueue(self, method="_qtc_test_write", args=None, **kwargs):
        if args is None:
            args = [{"comment": "from job"}]
        if "backend" not in kwargs and "event" not in kwargs:
            kwargs.setdefault("user", self.runner)
        return self.Job._qtc_enqueue(self.partner, method, args, **kwargs)

    def test_enqueue_then_run_applies_the_work_once(self):
        job = self._enqueue()
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.record_ids, [self.partner.id])
        self.assertEqual(self.partner.comment, False)
        self.assertEqual(self.run_jobs(), 1)
        job.invalidate_recordset()
        self.assertEqual(job.state, "done")
        self.assertEqual(job.attempts, 1)
        self.assertEqual(self.partner.comment, "<p>from job</p>")
        self.assertEqual(self.run_jobs(), 0, "a done job is never picked again")

    def test_enqueue_unknown_method_is_refused(self):
        with self.assertRaises(ValueError):
            self.Job._qtc_enqueue(self.partner, "_no_such_method")

    def test_identity_key_queues_the_same_work_once(self):
        first = self._enqueue(identity_key="partner-sync-1")
        second = self._enqueue(identity_key="partner-sync-1")
        self.assertEqual(first, second)
        self.assertEqual(
            self.Job.search_count([("identity_key", "=", "partner-sync-1")]), 1
        )
        self.run_jobs()
        third = self._enqueue(identity_key="partner-sync-1")
        self.assertNotEqual(third, first, "once done, the same key may be queued again")

    def test_enqueue_triggers_the_worker_crons(self):
        before = self.env["ir.cron.trigger"].search_count([])
        self._enqueue()
        crons = self.Job._qtc_worker_cron_ids()
        self.assertEqual(len(crons), 2)
        self.assertEqual(self.env["ir.cron.trigger"].search_count([]), before + 2)

    def test_business_error_stops_the_job_and_opens_one_exception(self):
        def target(records):
            raise BusinessError(
                "Opportunity cannot become an order",
                category="data",
                problems=["billing address missing", "currency XYZ unknown"],
                suggested_action="Complete the account",
                records=[("res.partner", records.id)],
            )

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [], backend=self.backend)
            self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "business")
        exception = job.exception_ids
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.category, "data")
        self.assertEqual(
            exception.details, "- billing address missing\n- currency XYZ unknown"
        )
        self.assertEqual(exception.record_ref, self.partner)
        self.assertEqual(exception.backend_id, self.backend)
        # Failing again after a retry reopens the same exception.
        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            exception.action_retry()
            self.assertEqual(exception.state, "resolved")
            self.run_jobs()
        self.assertEqual(len(job.exception_ids), 1)
        self.assertEqual(exception.state, "open")
        self.assertEqual(exception.occurrences, 2)

    def test_transient_error_retries_with_backoff_then_dies(self):
        calls = []

        def target(records):
            calls.append(1)
            raise RetryableError("remote said 503")

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [], max_attempts=3)
            before = fields.Datetime.now()
            self.run_jobs()
            job.invalidate_recordset()
            self.assertEqual(job.state, "pending")
            self.assertEqual(job.attempts, 1)
            self.assertEqual(job.error_kind, "transient")
            # First retry: nominal 10 s with jitter, so 5 to 10 s from now.
            self.assertGreaterEqual(job.eta, before + timedelta(seconds=4))
            self.assertLessEqual(job.eta, before + timedelta(seconds=11))
            self.assertEqual(self.run_jobs(), 0, "not before its eta")
            for _attempt in range(2):
                job.write({"eta": fields.Datetime.now() - timedelta(seconds=1)})
                self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(len(calls), 3)
        self.assertEqual(job.state, "dead")
        self.assertEqual(job.exception_ids.category, "dead_job")
        self.assertEqual(job.exception_ids.severity, "high")

    def test_retry_after_from_the_remote_side_is_honoured(self):
        def target(records):
            raise RetryableError("429", delay=42)

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [])
            now = fields.Datetime.now()
            self.run_jobs()
        job.invalidate_recordset()
        self.assertAlmostEqual((job.eta - now).total_seconds(), 42, delta=2)

    def test_unexpected_error_keeps_its_trace_and_retries(self):
        def target(records):
            raise ZeroDivisionError("bug in a mapper")

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [])
            self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.error_kind, "crash")
        self.assertIn("ZeroDivisionError", job.error_trace)

    def test_failed_work_is_rolled_back(self):
        def target(records):
            records.write({"comment": "half done"})
            raise BusinessError("stop")

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            self._enqueue("_qtc_test_target", [])
            self.run_jobs()
        self.partner.invalidate_recordset()
        self.assertFalse(self.partner.comment)

    def test_dependent_job_waits_for_its_dependency(self):
        later = fields.Datetime.now() + timedelta(hours=1)
        account = self._enqueue(args=[{"ref": "ACC"}], eta=later)
        opportunity = self._enqueue(args=[{"comment": "OPP"}], depends_on=account)
        self.assertEqual(self.run_jobs(), 0)
        self.assertEqual(opportunity.state, "pending")
        account.write({"eta": False})
        self.assertEqual(self.run_jobs(), 2)
        self.assertEqual(self.partner.ref, "ACC")
        opportunity.invalidate_recordset()
        self.assertEqual(opportunity.state, "done")
        self.assertGreater(
            opportunity.done_at, account.started_at - timedelta(seconds=1)
        )

    def test_priority_orders_ready_jobs(self):
        order = []

        def target(records, tag):
            order.append(tag)

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            self._enqueue("_qtc_test_target", ["low"], priority=20)
            self._enqueue("_qtc_test_target", ["high"], priority=1)
            self.run_jobs()
        self.assertEqual(order, ["high", "low"])

    def test_channel_capacity_limits_running_jobs(self):
        channel = self.env["qtc.job.channel"].create(
            {"name": "slow remote", "capacity": 1}
        )
        first = self._enqueue(channel=channel)
        second = self._enqueue(channel=channel)
        first.write({"state": "started"})  # as if a worker were running it
        self.assertEqual(self.Job._qtc_claim(self.env.cr), None)
        first.write({"state": "done"})
        self.assertEqual(self.Job._qtc_claim(self.env.cr)["id"], second.id)

    def test_requeue_of_a_running_job_is_refused(self):
        job = self._enqueue()
        job.write({"state": "started"})
        with self.assertRaises(UserError):
            job.action_requeue()
        self.assertEqual(job.state, "started")

    def test_requeue_gives_a_fresh_attempt_budget(self):
        job = self._enqueue()
        job.write({"state": "dead", "attempts": 5})
        job.action_requeue()
        self.assertEqual((job.state, job.attempts), ("pending", 0))
        self.run_jobs()
        self.assertEqual(job.state, "done")

    def test_requeue_runs_a_waiting_retry_now(self):
        job = self._enqueue(eta=fields.Datetime.now() + timedelta(hours=1))
        self.assertEqual(self.run_jobs(), 0)
        job.action_requeue()
        self.assertFalse(job.eta)
        self.assertEqual(self.run_jobs(), 1)

    def test_requeue_leaves_a_job_whose_pending_copy_does_the_work(self):
        old = self._enqueue(identity_key="same-work")
        old.write({"state": "failed"})
        copy = self._enqueue(identity_key="same-work")
        self.assertTrue(copy)
        self.assertNotEqual(old, copy)
        old.action_requeue()  # no unique-index violation
        self.assertEqual(old.state, "failed")
        self.assertEqual(copy.state, "pending")

    def test_event_job_retries_back_off(self):
        """Jobs stored by the webhook path get the default backoff cap too."""

        def handler(backend, event):
            raise RetryableError("remote 503")

        stored = self.backend._qtc_store_events(
            [InboundEvent("evt_backoff", "x", "{}")]
        )
        job = self.env["qtc.event"].browse(stored["evt_backoff"]).job_ids
        self.assertEqual(job.max_backoff, 3600)
        before = fields.Datetime.now()
        with self.patch_model_method(self.backend, "_qtc_handle_event", handler):
            self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(job.state, "pending")
        self.assertGreaterEqual(job.eta, before + timedelta(seconds=4))

    # ------------------------------------------------------------- resources

    @staticmethod
    def events_resources(backend, events):
        """A provider's declaration: each event writes the order its payload
        names ("order" key), if any."""
        return [
            [f"sale.order:{n}"] if (n := json.loads(e.payload).get("order")) else []
            for e in events
        ]

    def test_enqueue_stores_the_resources_a_job_declares(self):
        job = self._enqueue(resources=["sale.order:2", " sale.order:1", "sale.order:2"])
        self.assertEqual(job.resources, "sale.order:1\nsale.order:2")
        self.assertFalse(self._enqueue().resources, "nothing declared")

    def test_stored_events_jobs_declare_what_the_backend_names(self):
        events = [
            InboundEvent(f"evt_res_{n}", "x", json.dumps({"order": order}))
            for n, order in enumerate((7, 8, None))
        ]
        with self.patch_model_method(
            self.backend, "_qtc_event_resources", self.events_resources
        ):
            stored = self.backend._qtc_store_events(events)
        jobs = self.env["qtc.event"].browse(list(stored.values())).job_ids
        self.assertEqual(
            sorted(jobs.mapped(lambda job: job.resources or "")),
            ["", "sale.order:7", "sale.order:8"],
        )

    def test_a_batch_is_split_over_the_workers_by_resource(self):
        """Two worker crons: a batch naming two orders becomes two jobs, each
        with every event of its order; a batch of one order stays one job."""
        events = [
            InboundEvent(f"evt_lane_{n}", "x", json.dumps({"order": 1 + n % 2}))
            for n in range(6)
        ]
        with self.patch_model_method(
            self.backend, "_qtc_event_resources", self.events_resources
        ):
            stored = self.backend._qtc_store_events(events, batch=True, spread=True)
            jobs = self.Job.search([("method_name", "=", "_qtc_process_batch")])
            self.assertEqual(len(jobs), 2)
            for job in jobs:
                orders = {
                    json.loads(e.payload)["order"]
                    for e in self.env["qtc.event"].browse(job.record_ids)
                }
                self.assertEqual(len(orders), 1)
                self.assertEqual(job.resources, f"sale.order:{orders.pop()}")
                self.assertEqual(len(job.record_ids), 3)
            self.assertEqual(
                sorted(i for job in jobs for i in job.record_ids),
                sorted(stored.values()),
            )
            self.backend._qtc_store_events(
                [InboundEvent("evt_lane_x", "x", '{"order": 1}')],
                batch=True,
                spread=True,
            )
            self.assertEqual(
                len(self.Job.search([("method_name", "=", "_qtc_process_batch")])), 3
            )
            unspread = self.backend._qtc_store_events(
                [
                    InboundEvent(f"evt_one_{n}", "x", f'{{"order": {n}}}')
                    for n in (1, 2)
                ],
                batch=True,
            )
        batches = self.Job.search([("method_name", "=", "_qtc_process_batch")])
        job = batches.filtered(lambda j: set(j.record_ids) & set(unspread.values()))
        self.assertEqual(len(job), 1, "without spread: one job")
        self.assertEqual(job.resources, "sale.order:1\nsale.order:2")

    def test_a_replayed_event_declares_its_resources_again(self):
        stored = self.backend._qtc_store_events(
            [InboundEvent("evt_replay_res", "x", '{"order": 9}')]
        )
        event = self.env["qtc.event"].browse(stored["evt_replay_res"])
        with self.patch_model_method(
            self.backend, "_qtc_event_resources", self.events_resources
        ):
            event.action_replay()
        replay = event.job_ids.filtered(lambda job: job.name.startswith("Replay"))
        self.assertEqual(replay.resources, "sale.order:9")

    def test_pending_jobs_of_an_upgrade_get_their_resources(self):
        stored = self.backend._qtc_store_events(
            [InboundEvent("evt_old", "x", '{"order": 4}')]
        )
        job = self.env["qtc.event"].browse(stored["evt_old"]).job_ids
        self.assertFalse(job.resources, "queued before the backend declared any")
        with self.patch_model_method(
            self.backend, "_qtc_event_resources", self.events_resources
        ):
            self.assertEqual(self.Job._qtc_declare_pending_resources(self.backend), 1)
        job.invalidate_recordset()
        self.assertEqual(job.resources, "sale.order:4")

    # ------------------------------------------------------------- conflicts

    def test_conflicts_are_told_from_other_errors(self):
        self.assertTrue(is_conflict(psycopg2.errors.SerializationFailure()))
        self.assertTrue(is_conflict(psycopg2.errors.DeadlockDetected()))
        self.assertTrue(is_conflict(ConcurrencyConflict("numbers taken")))
        try:
            try:
                raise psycopg2.errors.SerializationFailure()
            except psycopg2.Error as error:
                raise UserError("wrapped") from error
        except UserError as wrapped:
            self.assertTrue(is_conflict(wrapped), "raised from a conflict")
        self.assertFalse(is_conflict(psycopg2.errors.UniqueViolation()))
        self.assertFalse(is_conflict(psycopg2.OperationalError("server closed")))
        self.assertFalse(is_conflict(BusinessError("bad data")))

    def test_odoo_logs_no_error_for_a_conflict_a_job_retries(self):
        sql_logger = logging.getLogger("odoo.sql_db")
        conflict = psycopg2.errors.SerializationFailure()
        other = psycopg2.errors.UniqueViolation()
        with self.assertLogs("odoo.sql_db", logging.ERROR) as logs:
            with conflicts_handled():
                sql_logger.error("bad query: %s\nERROR: %s", b"UPDATE a", conflict)
                sql_logger.error("bad query: %s\nERROR: %s", b"INSERT b", other)
            sql_logger.error("bad query: %s\nERROR: %s", b"UPDATE c", conflict)
            # Outside a job: a statement marked as retried by its caller.
            marked = f"{RETRIED_MARK} INSERT d".encode()
            sql_logger.error("bad query: %s\nERROR: %s", marked, conflict)
        self.assertEqual(
            [line.split("\n")[0] for line in logs.output],
            [
                "ERROR:odoo.sql_db:bad query: b'INSERT b'",
                "ERROR:odoo.sql_db:bad query: b'UPDATE c'",
            ],
        )

    def test_exception_opened_while_the_job_goes_on(self):
        def target(records):
            records.env["qtc.exception"]._qtc_open(
                BusinessError("one line refused", category="remote_rejected"),
                backend=self.backend,
            )
            records.write({"comment": "rest applied"})

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [])
            self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(job.state, "done")
        exception = self.env["qtc.exception"].search(
            [("name", "=", "one line refused")]
        )
        self.assertEqual(exception.backend_id, self.backend)
        self.assertEqual(exception.category, "remote_rejected")
        self.assertEqual(self.partner.comment, "<p>rest applied</p>")

    def test_cancel_of_a_running_job_rolls_its_work_back(self):
        def target(records):
            records.write({"comment": "should not stay"})
            # A QTC Manager presses Cancel while the job runs.
            records.env["qtc.job"].with_user(self.manager).browse(
                records.env.context["qtc_job_id"]
            ).action_cancel()

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [])
            self.run_jobs()
        job.invalidate_recordset()
        self.partner.invalidate_recordset()
        self.assertEqual(job.state, "cancelled")
        self.assertFalse(self.partner.comment)
        self.assertEqual(self.run_jobs(), 0, "a cancelled job never runs again")

    def test_cancel_pending_job(self):
        job = self._enqueue()
        job.action_cancel()
        self.assertEqual(job.state, "cancelled")
        self.assertEqual(self.run_jobs(), 0)

    def test_context_carries_correlation_and_company(self):
        seen = {}

        def target(records):
            seen.update(records.env.context)
            seen["company"] = records.env.company

        event = self.env["qtc.event"].create(
            {
                "backend_id": self.backend.id,
                "external_id": "evt_ctx",
                "correlation_id": "corr-123",
            }
        )
        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            self._enqueue("_qtc_test_target", [], event=event)
            self.run_jobs()
        self.assertEqual(seen["qtc_correlation_id"], "corr-123")
        self.assertEqual(seen["qtc_event_id"], event.id)
        self.assertEqual(seen["company"], self.backend.company_id)

    def test_stale_started_job_is_recovered_and_runs_once(self):
        self.enter_test_mode()
        job = self._enqueue(args=[{"ref": "once"}])
        # A worker claimed it and died before committing any work.
        long_ago = fields.Datetime.now() - timedelta(minutes=10)
        job.write({"state": "started", "attempts": 1, "started_at": long_ago})
        Progress = self.env["qtc.job.progress"]
        Progress.create({"job_id": job.id, "heartbeat_at": long_ago})
        fresh = self._enqueue(args=[{"comment": "other"}])
        fresh.write({"state": "started", "started_at": long_ago})
        Progress.create({"job_id": fresh.id, "heartbeat_at": fields.Datetime.now()})
        recovered = self.Job._qtc_recover_stale()
        self.assertEqual(recovered, [job.id], "a fresh heartbeat is left alone")
        job.invalidate_recordset()
        self.assertEqual(job.state, "pending")
        self.assertIn("Worker died", job.error_message)
        self.assertLessEqual(
            job.eta, fields.Datetime.now(), "a first death runs again at once"
        )
        self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual((job.state, job.attempts), ("done", 2))
        self.assertEqual(self.partner.ref, "once")

    def test_busy_workers_recover_dead_jobs_when_due(self):
        self.enter_test_mode()
        self.addCleanup(
            setattr,
            qtc_job_module,
            "_last_recovery_check",
            qtc_job_module._last_recovery_check,
        )
        long_ago = fields.Datetime.now() - timedelta(minutes=10)
        Progress = self.env["qtc.job.progress"]

        def dead_job(ref, attempts=1):
            job = self._enqueue(args=[{"ref": ref}])
            job.write(
                {"state": "started", "attempts": attempts, "started_at": long_ago}
            )
            Progress.create({"job_id": job.id, "heartbeat_at": long_ago})
            self.env.flush_all()
            return job

        first = dead_job("first")
        start = qtc_job_module._last_recovery_check + 10**6
        self.assertEqual(self.Job._qtc_recover_if_due(now=start), [first.id])
        second = dead_job("second", attempts=2)
        # Within the throttle window a worker does not look again...
        self.assertIsNone(self.Job._qtc_recover_if_due(now=start + 1))
        second.invalidate_recordset()
        self.assertEqual(second.state, "started")
        # ...and once it is due, the next dead job is taken back.
        due = start + const.RECOVERY_CHECK_SECONDS
        self.assertEqual(self.Job._qtc_recover_if_due(now=due), [second.id])
        (first | second).invalidate_recordset()
        self.assertEqual(set((first | second).mapped("state")), {"pending"})
        # A job that died before may be what kills its workers: it backs off.
        self.assertGreater(second.eta, fields.Datetime.now())

    def test_worker_loop_runs_jobs_in_their_own_transactions(self):
        self.enter_test_mode()
        jobs = self._enqueue(args=[{"ref": "A"}]) | self._enqueue(
            args=[{"comment": "B"}]
        )
        self.assertEqual(self.Job._qtc_run_worker(max_seconds=10), 2)
        jobs.invalidate_recordset()
        self.assertEqual(set(jobs.mapped("state")), {"done"})

    def test_progress_is_visible_on_the_job(self):
        self.enter_test_mode()

        def target(records):
            records.env["qtc.job"]._qtc_progress(3, 4, "3 of 4 chunks")

        with self.patch_job_function(self.partner, "_qtc_test_target", target):
            job = self._enqueue("_qtc_test_target", [])
            self.Job._qtc_run_worker(max_seconds=10)
        job.invalidate_recordset()
        self.assertEqual((job.progress_done, job.progress_total), (3, 4))
        self.assertEqual(job.progress, 75.0)
        self.assertEqual(job.progress_message, "3 of 4 chunks")

    def test_prune_deletes_old_done_jobs_in_batches(self):
        old = fields.Datetime.now() - timedelta(days=40)
        done = self.Job.browse()
        for _n in range(5):
            done |= self._enqueue()
        done.write({"state": "done", "done_at": old})
        failed = self._enqueue()
        failed.write({"state": "failed", "done_at": old})
        recent = self._enqueue()
        recent.write({"state": "done", "done_at": fields.Datetime.now()})
        self.assertEqual(self.Job._qtc_prune(days=30, batch_size=2), 2)
        self.assertEqual(self.Job._qtc_prune(days=30, batch_size=2), 2)
        self.assertEqual(self.Job._qtc_prune(days=30, batch_size=2), 1)
        self.assertEqual(self.Job._qtc_prune(days=30, batch_size=2), 0)
        self.assertFalse(done.exists())
        self.assertTrue(failed.exists(), "failed jobs stay until handled")
        self.assertTrue(recent.exists())

    def test_health_stats_per_backend(self):
        job = self._enqueue(backend=self.backend)
        job.write({"state": "dead", "done_at": fields.Datetime.now()})
        self._enqueue(backend=self.backend)
        stats = self.Job._qtc_backend_stats([self.backend.id])[self.backend.id]
        self.assertEqual(stats["job_pending_count"], 1)
        self.assertEqual(stats["job_dead_count"], 1)
        self.assertEqual(stats["failures_24h"], 1)
        self.backend.invalidate_recordset()
        self.assertEqual(self.backend.health_status, "error")
