import json

from odoo.tests import new_test_user, tagged

from ..lib.errors import BusinessError
from ..models.qtc_backend import InboundEvent
from .common import QtcCase


def handler_creating_partner(backend, event):
    """A provider handler: one partner per event, traced; needs a name."""
    data = json.loads(event.payload)
    if not data.get("name"):
        error = BusinessError(
            "Customer has no name",
            category="unknown_customer",
            problems=["name is empty"],
        )
        error.external_ref = ("customer", data.get("customer", "cus_unknown"))
        raise error
    partner = backend.env["res.partner"].create({"name": data["name"]})
    backend.env["qtc.trace"]._qtc_record(partner, "created", note="from test event")
    return f"created {partner.name}"


@tagged("post_install", "-at_install")
class TestExceptionQueue(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance = new_test_user(
            cls.env, "qtc_finance_ex", groups="qtc_connector_base.group_qtc_user"
        )
        cls.backend.responsible_user_id = cls.finance
        cls.declare_test_binding_models()

    def _receive(self, external_id, payload):
        stored = self.backend._qtc_store_events(
            [InboundEvent(external_id, "customer.created", json.dumps(payload))]
        )
        return self.env["qtc.event"].browse(stored[external_id])

    def _process(self, event):
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_creating_partner
        ):
            self.run_jobs()
        event.invalidate_recordset()
        return event

    def test_batch_job_stops_only_the_bad_event(self):
        events = [
            InboundEvent(f"evt_batch_{n}", "customer.created", json.dumps(payload))
            for n, payload in enumerate(
                [{"name": "Batch A"}, {"customer": "cus_bad"}, {"name": "Batch C"}]
            )
        ]
        config = self.backend._qtc_webhook_config(self.backend.id)
        self.env["qtc.job"]._qtc_worker_cron_ids()  # caches warm, as in a server
        with self.assertQueryCount(1):
            stored = self.backend._qtc_store_events(events, config=config, batch=True)
        batch = self.env["qtc.event"].browse(list(stored.values()))
        job = self.env["qtc.job"].search(
            [("backend_id", "=", self.backend.id), ("name", "=", "Process 3 events")]
        )
        self.assertEqual(len(job), 1, "one job for the whole batch")
        self.assertEqual(job.record_ids, sorted(batch.ids))
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_creating_partner
        ):
            self.run_jobs()
        job.invalidate_recordset()
        batch.invalidate_recordset()
        self.assertEqual(job.state, "done")
        self.assertEqual(job.result, "2 applied, 0 ignored, 1 need attention")
        self.assertEqual(batch.mapped("state"), ["done", "failed", "done"])
        bad = batch[1]
        self.assertEqual(bad.exception_ids.category, "unknown_customer")
        self.assertEqual(bad.exception_ids.external_id, "cus_bad")
        names = (
            self.env["res.partner"].search([("name", "like", "Batch ")]).mapped("name")
        )
        self.assertEqual(sorted(names), ["Batch A", "Batch C"])
        self.assertEqual((job.progress_done, job.progress_total), (3, 3))
        self.assertEqual(job.progress_message, "3 events applied")

    def test_provider_without_handler_lands_in_the_queue(self):
        event = self._receive("evt_nohandler", {"id": "x"})
        self.run_jobs()
        event.invalidate_recordset()
        self.assertEqual(event.state, "failed")
        exception = event.exception_ids
        self.assertEqual(exception.category, "configuration")
        self.assertIn("does not handle events", exception.name)

    def test_event_applied_and_traced_both_ways(self):
        event = self._process(self._receive("evt_ok", {"name": "Traced Co"}))
        self.assertEqual(event.state, "done")
        self.assertEqual(event.result, "created Traced Co")
        partner = self.env["res.partner"].search([("name", "=", "Traced Co")])
        self.assertEqual(event.trace_ids.res_id, partner.id)
        self.assertEqual(event.trace_ids.correlation_id, event.correlation_id)
        action = self.env["qtc.trace"]._qtc_action_for_record(partner)
        steps = self.env[action["res_model"]].search(action["domain"])
        self.assertEqual(steps.event_id, event)

    def test_exception_assigns_an_activity_to_the_responsible(self):
        event = self._process(self._receive("evt_act", {"customer": "cus_9"}))
        exception = event.exception_ids
        self.assertEqual(exception.user_id, self.finance)
        self.assertEqual(exception.activity_ids.user_id, self.finance)
        self.assertEqual(
            (exception.external_type, exception.external_id), ("customer", "cus_9")
        )

    def test_ignore_needs_a_reason_and_cancels_the_job(self):
        event = self._process(self._receive("evt_ign", {}))
        exception = event.exception_ids
        wizard = (
            self.env["qtc.exception.ignore"]
            .with_user(self.finance)
            .create(
                {"exception_ids": [(6, 0, exception.ids)], "reason": "test customer"}
            )
        )
        wizard.action_ignore()
        self.assertEqual(exception.state, "ignored")
        self.assertEqual(exception.resolution, "test customer")
        self.assertEqual(exception.job_id.state, "cancelled")
        self.assertFalse(exception.activity_ids, "the activity is closed")
        bodies = " ".join(exception.message_ids.mapped("body"))
        self.assertIn("Ignored: test customer", bodies)

    def test_link_binds_and_retries(self):
        event = self._process(self._receive("evt_link", {"customer": "cus_42"}))
        exception = event.exception_ids
        partner = self.env["res.partner"].create({"name": "Existing customer"})
        exception.with_user(self.finance).write(
            {"link_ref": f"res.partner,{partner.id}"}
        )
        exception.with_user(self.finance).action_link()
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(
                self.backend, "customer", "cus_42"
            ),
            partner,
        )
        self.assertEqual(exception.state, "resolved")
        self.assertEqual(exception.job_id.state, "pending")

    def test_dry_run_shows_changes_and_rolls_back_then_replay_applies(self):
        event = self._process(self._receive("evt_fix", {"customer": "cus_7"}))
        exception = event.exception_ids
        wizard = (
            self.env["qtc.exception.replay"]
            .with_user(self.finance)
            .create(
                {
                    "exception_id": exception.id,
                    "payload": json.dumps({"name": "Fixed Co"}),
                }
            )
        )
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_creating_partner
        ):
            wizard.action_dry_run()
        self.assertIn("created: res.partner Fixed Co", wizard.dry_run_result)
        self.assertFalse(self.env["res.partner"].search([("name", "=", "Fixed Co")]))
        event.invalidate_recordset()
        self.assertEqual(
            json.loads(event.payload), {"customer": "cus_7"}, "rolled back"
        )
        wizard.action_replay()
        self._process(event)
        self.assertEqual(event.state, "done")
        self.assertEqual(
            len(self.env["res.partner"].search([("name", "=", "Fixed Co")])), 1
        )
        self.assertEqual(exception.state, "resolved")
        self.assertTrue(event.message_ids.attachment_ids, "original payload kept")

    def test_dry_run_rejects_invalid_json(self):
        event = self._process(self._receive("evt_json", {}))
        wizard = self.env["qtc.exception.replay"].create(
            {"exception_id": event.exception_ids.id, "payload": "{not json"}
        )
        with self.assertRaisesRegex(Exception, "not valid JSON"):
            wizard.action_dry_run()


@tagged("post_install", "-at_install")
class TestRecurringProblem(QtcCase):
    def test_scheduled_work_failing_the_same_way_reopens_one_exception(self):
        def target(records):
            raise BusinessError(
                "Backend X has no api_key configured.", category="configuration"
            )

        jobs = self.env["qtc.job"]
        with self.patch_model_method(
            self.env["res.partner"], "_qtc_test_target", target
        ):
            for _run in range(3):  # three cron runs, three jobs
                jobs._qtc_enqueue(
                    self.env["res.partner"], "_qtc_test_target", backend=self.backend
                )
                self.run_jobs()
        exceptions = self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id)]
        )
        self.assertEqual(len(exceptions), 1)
        self.assertEqual(exceptions.occurrences, 3)
        self.assertEqual(len(jobs.search([("backend_id", "=", self.backend.id)])), 3)
