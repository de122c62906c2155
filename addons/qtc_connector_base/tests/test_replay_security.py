"""Events and exceptions: written by the system, replayed by managers, edited
payloads applied with the editor's rights, sources read again on replay."""

import json

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..lib.errors import BusinessError
from ..models.qtc_backend import InboundEvent
from .common import QtcCase


def handler_needing_a_name(backend, event):
    """A provider handler: creates the partner the payload names, as whoever
    applies the event."""
    data = json.loads(event.payload)
    if not data.get("name"):
        error = BusinessError("Customer has no name", category="unknown_customer")
        error.external_ref = ("customer", data.get("customer", "cus_unknown"))
        raise error
    partner = backend.env["res.partner"].create({"name": data["name"]})
    return f"created {partner.name} as {backend.env.user.login}"


@tagged("post_install", "-at_install")
class TestReplaySecurity(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.service = cls.make_service_user(
            "qtc_rs_service", "base.group_partner_manager"
        )
        cls.backend.technical_user_id = cls.service
        cls.finance = new_test_user(
            cls.env, "qtc_rs_finance", groups="qtc_connector_base.group_qtc_user"
        )
        cls.manager = new_test_user(
            cls.env,
            "qtc_rs_manager",
            groups="qtc_connector_base.group_qtc_manager,base.group_partner_manager",
        )
        cls.manager_no_rights = new_test_user(
            cls.env, "qtc_rs_manager2", groups="qtc_connector_base.group_qtc_manager"
        )

    def setUp(self):
        super().setUp()
        patcher = self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_needing_a_name
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def _failed_event(self, external_id, payload=None):
        stored = self.backend._qtc_store_events(
            [InboundEvent(external_id, "customer.created", json.dumps(payload or {}))]
        )
        self.run_jobs()
        event = self.env["qtc.event"].browse(stored[external_id])
        self.assertEqual(event.state, "failed")
        return event

    # ------------------------------------------------------------- events

    def test_events_are_written_by_the_system_only(self):
        event = self._failed_event("evt_rs_write")
        for values in (
            {"payload": json.dumps({"name": "Forged"})},
            {"state": "received"},
            {"backend_id": False},
            {"payload_origin": "received"},
            {"original_payload": "x"},
        ):
            with self.assertRaises(AccessError, msg=str(values)):
                event.with_user(self.manager).write(values)
        # People may still discuss it.
        event.with_user(self.manager).message_post(body="Looking into it")

    def test_replaying_an_event_is_a_manager_action(self):
        event = self._failed_event("evt_rs_replay")
        with self.assertRaises(AccessError):
            event.with_user(self.finance).action_replay()
        self.assertEqual(event.state, "failed")
        event.with_user(self.manager).action_replay()
        replay = event.job_ids.filtered(lambda job: job.state == "pending")
        self.assertEqual(replay.user_id, self.service, "as received: technical user")
        self.assertEqual(replay.kwargs, {"replay": True})

    def test_an_edited_payload_is_applied_with_the_rights_of_who_replays_it(self):
        event = self._failed_event("evt_rs_edit", {"customer": "cus_1"})
        event.with_user(self.manager_no_rights)._qtc_edit_payload(
            json.dumps({"name": "Edited Co"})
        )
        self.assertEqual(event.payload_origin, "edited")
        self.assertEqual(event.payload_edited_by_id, self.manager_no_rights)
        self.assertEqual(json.loads(event.original_payload), {"customer": "cus_1"})
        # Requeueing the job the sender's event queued would apply the edit
        # with the technical user's rights: refused.
        failed_job = event.job_ids
        with self.assertRaisesRegex(UserError, "edited"):
            failed_job.with_user(self.manager).action_requeue()
        # The replay runs as the manager who asked, who may not create
        # customers: it fails, saying so, and nothing is created.
        event.with_user(self.manager_no_rights).action_replay()
        replay = event.job_ids - failed_job
        self.assertEqual(replay.user_id, self.manager_no_rights)
        self.run_jobs()
        self.assertEqual(replay.state, "failed")
        self.assertIn("not allowed to create", replay.error_message)
        self.assertEqual(replay.exception_ids.category, "access")
        self.assertIn(self.manager_no_rights.name, replay.exception_ids.name)
        self.assertFalse(self.env["res.partner"].search([("name", "=", "Edited Co")]))
        # A manager who may replays it: applied once, as that manager.
        event.with_user(self.manager).action_replay()
        self.run_jobs()
        event.invalidate_recordset()
        self.assertEqual(event.state, "done")
        self.assertIn("as qtc_rs_manager", event.result)

    def test_an_edited_payload_is_never_applied_by_the_system(self):
        event = self._failed_event("evt_rs_sys", {"customer": "cus_2"})
        event.with_user(self.manager)._qtc_edit_payload(json.dumps({"name": "Sys"}))
        with self.assertRaisesRegex(UserError, "a person replays it"):
            event._qtc_replay()  # the superuser is no person
        # A job of the technical user that would apply it anyway fails.
        job = self.env["qtc.job"]._qtc_enqueue(
            event, "_qtc_process", event=event, identity_key="forged-replay"
        )
        self.assertEqual(job.user_id, self.service)
        self.run_jobs()
        self.assertEqual(job.state, "failed")
        self.assertIn("edited by a person", job.error_message)
        self.assertFalse(self.env["res.partner"].search([("name", "=", "Sys")]))

    def test_editing_cancels_the_jobs_still_waiting_to_apply_the_event(self):
        stored = self.backend._qtc_store_events(
            [InboundEvent("evt_rs_wait", "customer.created", "{}")]
        )
        event = self.env["qtc.event"].browse(stored["evt_rs_wait"])
        waiting = event.job_ids
        self.assertEqual(waiting.state, "pending")
        event.with_user(self.manager)._qtc_edit_payload(json.dumps({"name": "W"}))
        self.assertEqual(waiting.state, "cancelled")
        self.assertEqual(
            (waiting.audit_ids.action, waiting.audit_ids.user_id),
            ("cancel", self.manager),
        )

    def test_a_replay_applies_the_source_version_where_it_can_be_read(self):
        event = self._failed_event("evt_rs_source", {"customer": "cus_3"})
        event.with_user(self.manager)._qtc_edit_payload(
            json.dumps({"name": "Typed by hand"})
        )

        def source(backend, event):
            return json.dumps({"name": "From the source"})

        event.with_user(self.manager).action_replay()
        with self.patch_model_method(self.backend, "_qtc_replay_payload", source):
            self.run_jobs()
        event.invalidate_recordset()
        self.assertEqual(event.state, "done")
        self.assertEqual(event.payload_origin, "reread")
        self.assertEqual(json.loads(event.payload), {"name": "From the source"})
        self.assertEqual(json.loads(event.original_payload), {"customer": "cus_3"})
        self.assertTrue(
            self.env["res.partner"].search([("name", "=", "From the source")])
        )
        self.assertFalse(
            self.env["res.partner"].search([("name", "=", "Typed by hand")])
        )

    # --------------------------------------------------------- exceptions

    def test_exceptions_are_opened_by_the_system_only(self):
        event = self._failed_event("evt_rs_open")
        values = {
            "name": "Forged",
            "category": "data",
            "event_id": event.id,
            "backend_id": self.backend.id,
        }
        for user in (self.finance, self.manager):
            with self.assertRaises(AccessError):
                self.env["qtc.exception"].with_user(user).create(values)
        self.assertEqual(len(event.exception_ids), 1)

    def test_what_an_exception_points_at_cannot_be_changed_by_hand(self):
        event = self._failed_event("evt_rs_point")
        other = self._failed_event("evt_rs_other")
        exception = event.exception_ids.with_user(self.finance)
        for values in (
            {"event_id": other.id},
            {"job_id": other.job_ids.id},
            {"backend_id": False},
            {"company_id": False},
            {"state": "resolved"},
            {"external_id": "cus_forged"},
            {"res_model": "res.users", "res_id": self.manager.id},
        ):
            with self.assertRaises(AccessError, msg=str(values)):
                exception.write(values)
        partner = self.env["res.partner"].create({"name": "Link target"})
        exception.write(
            {"user_id": self.finance.id, "link_ref": f"res.partner,{partner.id}"}
        )
        self.assertEqual(exception.user_id, self.finance)

    def test_retry_by_a_qtc_user_requeues_as_the_technical_user(self):
        event = self._failed_event("evt_rs_retry")
        exception = event.exception_ids
        job = exception.job_id
        exception.with_user(self.finance).action_retry()
        self.assertEqual(exception.state, "resolved")
        self.assertEqual((job.state, job.user_id), ("pending", self.service))
        self.assertEqual(
            (job.audit_ids.action, job.audit_ids.user_id), ("requeue", self.finance)
        )
        # A QTC user may not requeue that job, or any other, directly.
        job.write({"state": "failed"})
        with self.assertRaises(AccessError):
            job.with_user(self.finance).action_requeue()

    def test_retry_of_an_edited_event_replays_it_as_the_qtc_user(self):
        event = self._failed_event("evt_rs_retry_edit")
        exception = event.exception_ids
        event.with_user(self.manager)._qtc_edit_payload(json.dumps({"name": "R"}))
        exception.with_user(self.finance).action_retry()
        replay = event.job_ids.filtered(lambda job: job.state == "pending")
        self.assertEqual(replay.user_id, self.finance)
        self.run_jobs()
        self.assertEqual(replay.state, "failed", "finance may not create customers")
        self.assertFalse(self.env["res.partner"].search([("name", "=", "R")]))

    def test_retry_never_runs_a_done_job_again(self):
        event = self._failed_event("evt_rs_done")
        exception = event.exception_ids
        exception.job_id.write({"state": "done"})
        exception.with_user(self.finance).action_retry()
        self.assertEqual(exception.job_id.state, "done")
        self.assertEqual(exception.state, "resolved")
        self.assertIn("nothing to retry", exception.resolution)
        self.assertEqual(self.run_jobs(), 0)

    def test_ignore_cancels_the_job_under_the_users_name(self):
        event = self._failed_event("evt_rs_ignore")
        exception = event.exception_ids
        exception.job_id.write({"state": "pending"})
        wizard = (
            self.env["qtc.exception.ignore"]
            .with_user(self.finance)
            .create({"exception_ids": [(6, 0, exception.ids)], "reason": "test data"})
        )
        wizard.action_ignore()
        job = exception.job_id
        self.assertEqual(job.state, "cancelled")
        self.assertEqual(job.audit_ids.user_id, self.finance)
        self.assertIn("test data", job.audit_ids.note)

    def test_exception_actions_need_the_qtc_user_group(self):
        event = self._failed_event("evt_rs_group")
        exception = event.exception_ids
        plain = new_test_user(self.env, "qtc_rs_plain", groups="base.group_user")
        for action in (
            "action_retry",
            "action_link",
            "action_open_ignore_wizard",
            "action_open_replay_wizard",
            "action_view_trace",
        ):
            with self.assertRaises(AccessError, msg=action):
                getattr(exception.with_user(plain), action)()
        self.assertEqual(exception.state, "open")
