"""Issue 12, attack 3: a finance user without accounting rights tries to mark
an invoice paid by editing and replaying a Stripe event. Over JSON-RPC, as
that user; then as managers, to show where rights and the source decide."""

import json

import responses

from odoo.tests import new_test_user, tagged
from odoo.tests.common import JsonRpcException

from .common import StripeHttpCase, new_id

API = "https://api.stripe.com"
ACCESS_ERROR = "odoo.exceptions.AccessError"


@tagged("post_install", "-at_install")
class TestStripeReplaySecurity(StripeHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company_data["company"]
        in_company = {"company_id": company.id, "company_ids": [company.id]}
        cls.finance = new_test_user(
            cls.env,
            "qtc_stripe_finance",
            groups="qtc_connector_base.group_qtc_user",
            **in_company,
        )
        cls.manager_no_books = new_test_user(
            cls.env,
            "qtc_stripe_manager",
            groups="qtc_connector_base.group_qtc_manager",
            **in_company,
        )
        cls.manager_accountant = new_test_user(
            cls.env,
            "qtc_stripe_accountant",
            groups="qtc_connector_base.group_qtc_manager,account.group_account_invoice",
            **in_company,
        )

    def setUp(self):
        super().setUp()
        self.open_invoice = self.invoice(250.0)
        # Money that names no invoice and no known customer: unapplied cash,
        # an exception in the finance user's queue.
        self.intent_id = new_id("pi")
        self.original = self.payment_intent_event(
            25000, payment_intent_id=self.intent_id
        )
        self.event = self.apply(self.original)
        self.assertEqual(self.event.state, "failed")
        self.exception = self.exception_of(self.event)
        self.assertEqual(self.exception.category, "unapplied_cash")
        # What the attacker types: the same event, naming the open invoice.
        forged = json.loads(json.dumps(self.original))
        forged["data"]["object"]["metadata"] = {"odoo_invoice": self.open_invoice.name}
        self.forged = json.dumps(forged)

    def call_kw(self, user, model, method, args, kwargs=None):
        self.authenticate(user.login, user.login)
        return self.make_jsonrpc_request(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )

    def assert_refused(self, user, model, method, args):
        with self.assertRaises(JsonRpcException) as caught:
            self.call_kw(user, model, method, args)
        self.assertEqual(str(caught.exception), ACCESS_ERROR)

    def assert_not_paid(self):
        self.open_invoice.invalidate_recordset()
        self.assertEqual(self.open_invoice.payment_state, "not_paid")
        self.assertFalse(self.stripe_payments())

    def test_attack_3_finance_user_gets_no_payment_and_sees_nothing(self):
        finance = self.finance
        self.assert_refused(
            finance,
            "qtc.exception",
            "create",
            [{"name": "mine", "category": "data", "event_id": self.event.id}],
        )
        self.assert_refused(finance, "qtc.event", "action_replay", [self.event.ids])
        self.assert_refused(
            finance, "qtc.event", "write", [self.event.ids, {"payload": self.forged}]
        )
        wizard_id = self.call_kw(
            finance,
            "qtc.exception.replay",
            "create",
            [{"exception_id": self.exception.id, "payload": self.forged}],
        )
        self.call_kw(finance, "qtc.exception.replay", "action_dry_run", [[wizard_id]])
        result = self.env["qtc.exception.replay"].browse(wizard_id).dry_run_result
        self.assertIn("your access rights do not allow it", result)
        self.assertNotIn(self.open_invoice.name, result)
        self.assertNotIn("250", result)
        self.assert_refused(
            finance, "qtc.exception.replay", "action_replay", [[wizard_id]]
        )
        self.run_jobs()
        self.assert_not_paid()
        self.event.invalidate_recordset()
        self.assertEqual(self.event.payload, json.dumps(self.original))
        self.assertEqual(self.exception.state, "open")

    def test_an_edit_is_applied_with_the_editor_rights_only(self):
        """A QTC Manager without accounting rights may edit, but the replay
        runs as that manager: it fails with a clear message, no payment."""
        manager = self.manager_no_books
        wizard_id = self.call_kw(
            manager,
            "qtc.exception.replay",
            "create",
            [{"exception_id": self.exception.id, "payload": self.forged}],
        )
        self.call_kw(manager, "qtc.exception.replay", "action_replay", [[wizard_id]])
        self.event.invalidate_recordset()
        self.assertEqual(self.event.payload_origin, "edited")
        self.assertEqual(self.event.payload_edited_by_id, manager)
        self.assertEqual(json.loads(self.event.original_payload), self.original)
        replay = self.event.job_ids.filtered(lambda job: job.state == "pending")
        self.assertEqual(replay.user_id, manager)
        self.run_jobs()
        self.assertEqual(replay.state, "failed")
        failure = replay.exception_ids
        self.assertEqual(failure.category, "access")
        self.assertIn(manager.name, failure.name)
        self.assert_not_paid()

    @responses.activate
    def test_a_replay_reads_the_event_again_from_stripe(self):
        """With the secret key, the replay applies the event as Stripe has it,
        not as edited: even an accountant's edit moves no money."""
        self.backend.stripe_api_key = "sk_test_replay"
        responses.get(f"{API}/v1/events/{self.original['id']}", json=self.original)
        self.exception.invalidate_recordset()
        manager = self.manager_accountant
        wizard = (
            self.env["qtc.exception.replay"]
            .with_user(manager)
            .create({"exception_id": self.exception.id, "payload": self.forged})
        )
        wizard.action_replay()
        self.run_jobs()
        self.event.invalidate_recordset()
        self.assertEqual(len(responses.calls), 1)
        # Stripe's version names no invoice: unapplied again, as Stripe says,
        # although the accountant's edit named the open invoice. (The failed
        # attempt rolls back with its work; the edit stays recorded.)
        self.assertEqual(self.event.state, "failed")
        replay = self.event.job_ids.sorted("id")[-1]
        self.assertEqual(replay.user_id, manager)
        self.assertIn("names no invoice", replay.error_message)
        self.assert_not_paid()

    @responses.activate
    def test_a_replay_of_an_event_stripe_no_longer_keeps_uses_the_stored_one(self):
        self.backend.stripe_api_key = "sk_test_replay"
        responses.get(
            f"{API}/v1/events/{self.original['id']}",
            status=404,
            json={"error": {"type": "invalid_request_error"}},
        )
        self.event.with_user(self.manager_accountant).action_replay()
        self.run_jobs()
        self.event.invalidate_recordset()
        self.assertEqual(self.event.payload_origin, "received")
        self.assertEqual(len(responses.calls), 1)
