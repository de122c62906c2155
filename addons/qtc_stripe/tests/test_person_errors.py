"""What a person reads when a Stripe button refuses: every problem and what
to do, in the warning dialog (pressed over HTTP as the web client does).

The connector's business error paths reachable from buttons: *Stripe payment
link* (``action_stripe_payment_link``) on a posted invoice when the backend has
no secret key, when Stripe refuses the Checkout Session, and when Stripe is
unreachable. *Test connection* shows the same text in its notification (the
base's test covers it). Everything else the connector does runs in jobs, whose
exceptions carry the same details and suggested action.
"""

import json

import responses

from odoo.addons.qtc_connector_base.exceptions import default_suggested_action
from odoo.addons.qtc_connector_base.tests.common import QtcButtonMixin
from odoo.tests import new_test_user, tagged

from .common import StripeHttpCase

API = "https://api.stripe.com"


@tagged("post_install", "-at_install")
class TestStripePersonErrors(QtcButtonMixin, StripeHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.company
        cls.clerk = new_test_user(
            cls.env,
            "qtc_stripe_pe_clerk",
            groups="base.group_user,account.group_account_invoice",
            company_id=company.id,
            company_ids=[company.id],
        )

    def press_link(self, invoice):
        return self.press_button(
            invoice, "action_stripe_payment_link", login="qtc_stripe_pe_clerk"
        )

    def test_payment_link_without_secret_key_says_where_to_enter_it(self):
        invoice = self.invoice(120.0)
        error, _result = self.press_link(invoice)
        text = self.assert_person_error(
            error,
            [f"Backend {self.backend.name} has no Stripe secret key configured."],
            "Enter it on the backend form (QTC Manager).",
        )
        self.assertNotIn("Traceback", text)
        self.assertFalse(invoice.stripe_payment_url)

    @responses.activate
    def test_payment_link_refused_by_stripe_shows_stripe_s_reason(self):
        self.backend.stripe_api_key = "sk_test_person_errors"
        invoice = self.invoice(0.3)
        self.bind_customer(self.partner_a)
        responses.post(
            f"{API}/v1/checkout/sessions",
            status=400,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "amount_too_small",
                    "message": "The Checkout Session's total amount due must add "
                    "up to at least $0.50 usd",
                    "param": "line_items[0][price_data][unit_amount]",
                }
            },
        )
        error, _result = self.press_link(invoice)
        text = self.assert_person_error(
            error,
            ["must add up to at least $0.50 usd", "amount_too_small"],
            default_suggested_action("remote_rejected"),
        )
        self.assertIn("was rejected with 400", text.splitlines()[0])
        self.assertNotIn("sk_test_person_errors", json.dumps(error))

    @responses.activate
    def test_payment_link_while_stripe_is_down_says_to_try_again(self):
        self.backend.stripe_api_key = "sk_test_person_errors"
        invoice = self.invoice(120.0)
        self.bind_customer(self.partner_a)
        responses.post(f"{API}/v1/checkout/sessions", status=503, json={})
        error, _result = self.press_link(invoice)
        text = self.assert_person_error(error, action="try again in a few minutes")
        self.assertIn("answered 503", text)
