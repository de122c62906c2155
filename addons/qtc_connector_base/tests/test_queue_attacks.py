"""The queue's privilege boundaries, attacked over JSON-RPC as issue 12 did:
every request below is what a logged-in user can send to ``call_kw``."""

import json

from odoo.tests import new_test_user, tagged
from odoo.tests.common import JsonRpcException

from ..models.qtc_backend import InboundEvent
from .common import QtcHttpCase

ACCESS_ERROR = "odoo.exceptions.AccessError"
PARAM = "qtc_connector_base.set_by_an_attacker"


def handler_needing_a_name(backend, event):
    data = json.loads(event.payload)
    if not data.get("name"):
        raise ValueError("no name")  # a crash: the job ends dead after retries
    backend.env["res.partner"].create({"name": data["name"]})
    return "created"


@tagged("post_install", "-at_install")
class TestQueueAttacks(QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.technical_user_id = cls.make_service_user("qtc_atk_service")
        cls.portal = new_test_user(
            cls.env, "qtc_atk_portal", groups="base.group_portal"
        )
        cls.internal = new_test_user(cls.env, "qtc_atk_internal")
        cls.finance = new_test_user(
            cls.env, "qtc_atk_finance", groups="qtc_connector_base.group_qtc_user"
        )
        cls.manager = new_test_user(
            cls.env, "qtc_atk_manager", groups="qtc_connector_base.group_qtc_manager"
        )
        stored = cls.backend._qtc_store_events(
            [InboundEvent("evt_attack", "payment_intent.succeeded", "{}")]
        )
        cls.event = cls.env["qtc.event"].browse(stored["evt_attack"])
        cls.job = cls.event.job_ids

    def call_kw(self, user, model, method, args, kwargs=None):
        self.authenticate(user.login, user.login + "x" * (8 - len(user.login)))
        return self.make_jsonrpc_request(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )

    def assert_refused(self, user, model, method, args, kwargs=None):
        with self.assertRaises(JsonRpcException) as caught:
            self.call_kw(user, model, method, args, kwargs)
        self.assertEqual(str(caught.exception), ACCESS_ERROR)

    def test_attack_1_a_portal_customer_cannot_cancel_queued_work(self):
        for user in (self.portal, self.internal, self.finance):
            self.assert_refused(user, "qtc.job", "action_cancel", [self.job.ids])
            self.assert_refused(user, "qtc.job", "action_requeue", [self.job.ids])
        self.job.invalidate_recordset()
        self.assertEqual(self.job.state, "pending")
        self.assertFalse(self.job.audit_ids)
        # A QTC Manager may, and it is recorded.
        self.call_kw(self.manager, "qtc.job", "action_cancel", [self.job.ids])
        self.job.invalidate_recordset()
        self.assertEqual(self.job.state, "cancelled")
        self.assertEqual(self.job.audit_ids.user_id, self.manager)

    def test_attack_2_a_manager_cannot_make_a_job_run_something_else(self):
        self.job.write({"state": "done"})
        forged = {
            "model_name": "ir.config_parameter",
            "method_name": "set_param",
            "args": [PARAM, "owned"],
            "kwargs": {},
            "record_ids": [],
            "user_id": False,
        }
        self.assert_refused(self.manager, "qtc.job", "write", [self.job.ids, forged])
        for name, value in forged.items():
            self.assert_refused(
                self.manager, "qtc.job", "write", [self.job.ids, {name: value}]
            )
        self.assert_refused(
            self.manager,
            "qtc.job",
            "create",
            [{"name": "forged", **forged}],
        )
        self.assert_refused(self.manager, "qtc.job", "copy", [self.job.ids, forged])
        # Requeueing the done job is refused too: it never runs again.
        with self.assertRaises(JsonRpcException) as caught:
            self.call_kw(self.manager, "qtc.job", "action_requeue", [self.job.ids])
        self.assertEqual(str(caught.exception), "odoo.exceptions.UserError")
        self.assertEqual(self.run_jobs(), 0)
        self.assertFalse(self.env["ir.config_parameter"].get_param(PARAM))
        self.job.invalidate_recordset()
        self.assertEqual(
            (self.job.model_name, self.job.method_name, self.job.state),
            ("qtc.event", "_qtc_process", "done"),
        )

    def test_attack_2_even_a_forged_row_runs_nothing_unregistered(self):
        # Written behind the ORM's back: the runner still refuses it.
        self.env.cr.execute(
            "UPDATE qtc_job SET model_name = 'ir.config_parameter', "
            "method_name = 'set_param', args = %s WHERE id = %s",
            (json.dumps([PARAM, "owned"]), self.job.id),
        )
        self.run_jobs()
        self.job.invalidate_recordset()
        self.assertEqual(self.job.state, "failed")
        self.assertFalse(self.env["ir.config_parameter"].get_param(PARAM))

    def test_attack_3_a_qtc_user_cannot_forge_or_edit_a_replay(self):
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_needing_a_name
        ):
            self.job.write({"max_attempts": 1})
            self.run_jobs()
        self.event.invalidate_recordset()
        exception = self.event.exception_ids
        self.assertEqual(len(exception), 1)
        other = self.backend._qtc_store_events(
            [InboundEvent("evt_other", "payment_intent.succeeded", "{}")]
        )["evt_other"]
        # No exception by hand, none repointed at another event.
        self.assert_refused(
            self.finance,
            "qtc.exception",
            "create",
            [{"name": "mine", "category": "data", "event_id": other}],
        )
        self.assert_refused(
            self.finance, "qtc.exception", "write", [exception.ids, {"event_id": other}]
        )
        # No direct replay, no edited payload.
        self.assert_refused(self.finance, "qtc.event", "action_replay", [[other]])
        self.assert_refused(
            self.finance,
            "qtc.event",
            "write",
            [self.event.ids, {"payload": json.dumps({"name": "Forged"})}],
        )
        wizard_id = self.call_kw(
            self.finance,
            "qtc.exception.replay",
            "create",
            [{"exception_id": exception.id, "payload": '{"name": "Forged"}'}],
        )
        self.assert_refused(
            self.finance, "qtc.exception.replay", "action_replay", [[wizard_id]]
        )
        # The dry run runs with the finance user's rights: nothing created,
        # nothing named that the user may not read.
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_needing_a_name
        ):
            self.call_kw(
                self.finance, "qtc.exception.replay", "action_dry_run", [[wizard_id]]
            )
        result = self.env["qtc.exception.replay"].browse(wizard_id).dry_run_result
        self.assertIn("your access rights do not allow it", result)
        self.event.invalidate_recordset()
        self.assertEqual(self.event.payload, "{}")
        self.assertEqual(exception.state, "open")
        self.assertFalse(self.env["res.partner"].search([("name", "=", "Forged")]))
