import json

from odoo.exceptions import AccessError
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
        cls.manager = new_test_user(
            cls.env,
            "qtc_manager_ex",
            groups="qtc_connector_base.group_qtc_manager,base.group_partner_manager",
        )
        cls.backend.responsible_user_id = cls.finance
        cls.declare_test_binding_models()
        # The test sender's work creates customers: its technical user may.
        cls.backend.technical_user_id = cls.make_service_user(
            "qtc_ex_service", "base.group_partner_manager"
        )

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

    def _replay_wizard(self, exception, payload, user):
        return (
            self.env["qtc.exception.replay"]
            .with_user(user)
            .create({"exception_id": exception.id, "payload": json.dumps(payload)})
        )

    def test_dry_run_shows_changes_and_rolls_back_then_replay_applies(self):
        event = self._process(self._receive("evt_fix", {"customer": "cus_7"}))
        exception = event.exception_ids
        wizard = self._replay_wizard(exception, {"name": "Fixed Co"}, self.manager)
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
        self.assertEqual(event.payload_origin, "received")
        wizard.action_replay()
        # The edit is the manager's: recorded, the original kept on the event,
        # and applied by a job running as the manager.
        self.assertEqual(event.payload_origin, "edited")
        self.assertEqual(event.payload_edited_by_id, self.manager)
        self.assertTrue(event.payload_edited_at)
        self.assertEqual(json.loads(event.original_payload), {"customer": "cus_7"})
        replay = event.job_ids.filtered(lambda job: job.state == "pending")
        self.assertEqual(replay.user_id, self.manager)
        self.assertEqual(replay.kwargs, {"replay": True})
        self._process(event)
        self.assertEqual(event.state, "done")
        self.assertEqual(
            self.env["res.partner"].search([("name", "=", "Fixed Co")]).create_uid,
            self.manager,
        )
        self.assertEqual(exception.state, "resolved")
        self.assertTrue(event.message_ids.attachment_ids, "original in the chatter")

    def test_dry_run_has_the_rights_of_the_user_and_shows_nothing_more(self):
        """A QTC User without the rights the work needs: the dry run says it
        would fail and lists nothing; the user may not save an edit."""
        event = self._process(self._receive("evt_fix2", {"customer": "cus_8"}))
        exception = event.exception_ids
        wizard = self._replay_wizard(exception, {"name": "Secret Co"}, self.finance)
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_creating_partner
        ):
            wizard.action_dry_run()
        self.assertIn("your access rights do not allow it", wizard.dry_run_result)
        self.assertNotIn("Secret Co", wizard.dry_run_result)
        with self.assertRaises(AccessError):
            wizard.action_replay()
        event.invalidate_recordset()
        self.assertEqual(json.loads(event.payload), {"customer": "cus_8"})
        self.assertEqual(event.payload_origin, "received")
        self.assertEqual(exception.state, "open")

    def test_unchanged_replay_by_a_qtc_user_runs_as_the_technical_user(self):
        event = self._process(self._receive("evt_same", {"customer": "cus_9"}))
        exception = event.exception_ids
        wizard = self._replay_wizard(exception, {"customer": "cus_9"}, self.finance)
        wizard.action_replay()
        self.assertEqual(exception.state, "resolved")
        self.assertEqual(event.payload_origin, "received")
        job = event.job_ids.filtered(lambda j: j.state == "pending")
        self.assertEqual(job.user_id, self.backend.technical_user_id)

    def test_dry_run_hides_records_the_user_may_not_read(self):
        """Changes to records the user cannot read are counted, not named."""
        event = self._process(self._receive("evt_hide", {"customer": "cus_h"}))
        exception = event.exception_ids
        hidden = self.env["res.partner"].create({"name": "Hidden Holdings"})
        self.env["ir.rule"].create(
            {
                "name": "test: hide one partner",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "domain_force": f"[('id', '!=', {hidden.id})]",
                "groups": [(4, self.env.ref("base.group_user").id)],
            }
        )

        def handler(backend, event):
            backend.env["qtc.trace"]._qtc_record(hidden, "updated", note="secret")
            return f"touched {hidden.sudo().name}"

        wizard = self._replay_wizard(exception, {"customer": "cus_h"}, self.finance)
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler
        ):
            wizard.action_dry_run()
        self.assertNotIn("Hidden Holdings", wizard.dry_run_result)
        self.assertNotIn("secret", wizard.dry_run_result)
        self.assertIn("1 change(s) to records you may not read", wizard.dry_run_result)

    def test_dry_run_rejects_invalid_json(self):
        event = self._process(self._receive("evt_json", {}))
        wizard = self.env["qtc.exception.replay"].create(
            {"exception_id": event.exception_ids.id, "payload": "{not json"}
        )
        with self.assertRaisesRegex(Exception, "not valid JSON"):
            wizard.action_dry_run()


@tagged("post_install", "-at_install")
class TestRecurringProblem(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.technical_user_id = cls.make_service_user("qtc_rp_service")

    def test_scheduled_work_failing_the_same_way_reopens_one_exception(self):
        def target(records):
            raise BusinessError(
                "Backend X has no api_key configured.", category="configuration"
            )

        jobs = self.env["qtc.job"]
        with self.patch_job_function(
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
