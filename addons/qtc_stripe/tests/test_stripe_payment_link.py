"""The durable payment link over HTTP: ``/qtc/stripe/pay/<id>?access_token=``
sends the customer to a Stripe Checkout Session, reused while valid."""

import json
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from odoo import fields
from odoo.tests import new_test_user, tagged

from .common import CheckoutStandInMixin, StripeHttpCase, new_id

API = "https://api.stripe.com"
SESSIONS = f"{API}/v1/checkout/sessions"


@tagged("post_install", "-at_install")
class TestStripePaymentLink(CheckoutStandInMixin, StripeHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.partner_a | cls.partner_b).email = "customer@example.com"
        cls.backend.stripe_api_key = "sk_test_paylink"

    def setUp(self):
        super().setUp()
        responses.start()
        self.addCleanup(responses.stop)
        self.addCleanup(responses.reset)
        # The test's own requests to the Odoo server are not Stripe's.
        responses.add_passthru(self.base_url())
        self.sessions = []
        responses.post(f"{API}/v1/customers", json={"id": new_id("cus")})
        responses.add_callback(responses.POST, SESSIONS, callback=self.new_session)

    # -------------------------------------------------------------- helpers

    def pay_path(self, invoice, token=None):
        token = invoice._portal_ensure_token() if token is None else token
        return f"/qtc/stripe/pay/{invoice.id}?access_token={token}"

    def open_link(self, path):
        response = self.url_open(path, allow_redirects=False)
        self.env.invalidate_all()
        return response

    def stripe_calls(self):
        return [call for call in responses.calls if call.request.url.startswith(API)]

    def session_calls(self):
        return [call for call in responses.calls if call.request.url == SESSIONS]

    def link_exceptions(self, invoice):
        return self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id), ("res_id", "=", invoice.id)]
        )

    def assertNotFound(self, response, invoice):
        self.assertEqual(response.status_code, 404)
        self.assertNotIn(invoice.name, response.text)
        self.assertNotIn("Location", response.headers)

    def assertFriendlyPage(self, response, status, text):
        self.assertEqual(response.status_code, status, response.text[:500])
        self.assertIn("text/html", response.headers["Content-Type"])
        self.assertIn(text, response.text)
        self.assertNotIn("Traceback", response.text)
        self.assertNotIn("sk_test_paylink", response.text)

    # ------------------------------------------------------------ redirects

    def test_valid_token_redirects_to_a_new_checkout_session(self):
        invoice = self.invoice(250.0)
        response = self.open_link(self.pay_path(invoice))
        self.assertEqual(response.status_code, 303, response.text[:500])
        (session,) = self.sessions
        self.assertEqual(response.headers["Location"], session["url"])
        self.assertEqual(session["amount_total"], 25000)
        self.assertEqual(session["metadata"], {"odoo_invoice_id": str(invoice.id)})
        self.assertEqual(invoice.stripe_checkout_session_id, session["id"])
        self.assertEqual(invoice.stripe_payment_url, session["url"])
        self.assertEqual(invoice.stripe_payment_url_amount, 250.0)
        (call,) = self.session_calls()
        self.assertIn(
            f"checkout-{invoice.id}-25000-USD", call.request.headers["Idempotency-Key"]
        )
        form = parse_qs(call.request.body)
        self.assertEqual(form["metadata[odoo_invoice]"], [invoice.name])
        self.assertEqual(
            form["payment_intent_data[metadata][odoo_invoice_id]"], [str(invoice.id)]
        )

    def test_clicks_reuse_the_current_session(self):
        invoice = self.invoice(100.0)
        path = self.pay_path(invoice)
        locations = {self.open_link(path).headers["Location"] for _i in range(3)}
        self.assertEqual(locations, {self.sessions[0]["url"]})
        self.assertEqual(len(self.session_calls()), 1)

    def test_expired_session_is_replaced_by_a_new_one(self):
        invoice = self.invoice(100.0)
        path = self.pay_path(invoice)
        first = self.open_link(path).headers["Location"]
        old_id = invoice.stripe_checkout_session_id
        # Time passing, as Stripe's session records it (only the connector
        # writes these fields).
        invoice.sudo().stripe_payment_url_expires_at = (
            fields.Datetime.now() - timedelta(minutes=1)
        )
        response = self.open_link(path)
        self.assertEqual(response.status_code, 303)
        self.assertEqual(len(self.sessions), 2)
        self.assertNotEqual(response.headers["Location"], first)
        self.assertEqual(response.headers["Location"], self.sessions[1]["url"])
        self.assertEqual(invoice.stripe_checkout_session_id, self.sessions[1]["id"])
        # Stripe would answer the first key with the expired session: the
        # replacement is asked for under a key of its own.
        first_call, second_call = self.session_calls()
        self.assertNotEqual(
            first_call.request.headers["Idempotency-Key"],
            second_call.request.headers["Idempotency-Key"],
        )
        self.assertIn(f"after-{old_id}", second_call.request.headers["Idempotency-Key"])

        # A session about to expire is not handed out either.
        invoice.sudo().stripe_payment_url_expires_at = (
            fields.Datetime.now() + timedelta(minutes=5)
        )
        response = self.open_link(path)
        self.assertEqual(response.headers["Location"], self.sessions[2]["url"])

    def test_session_for_another_amount_is_replaced(self):
        invoice = self.invoice(100.0)
        path = self.pay_path(invoice)
        first = self.open_link(path).headers["Location"]
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"amount": 30.0})._create_payments()
        self.assertEqual(invoice.amount_residual, 70.0)
        response = self.open_link(path)
        self.assertEqual(response.status_code, 303)
        self.assertNotEqual(response.headers["Location"], first)
        self.assertEqual(self.sessions[-1]["amount_total"], 7000)
        self.assertEqual(invoice.stripe_payment_url_amount, 70.0)

    def test_form_button_shows_the_link_and_its_session_is_reused(self):
        invoice = self.invoice(90.0)
        self.assertFalse(invoice.stripe_pay_link)
        invoice.action_stripe_payment_link()
        self.assertEqual(invoice.stripe_pay_link, self.pay_link_url(invoice))
        (session,) = self.sessions
        self.assertEqual(invoice.stripe_payment_url, session["url"])
        # The button again, then the customer's click: the same session.
        invoice.action_stripe_payment_link()
        response = self.open_link(self.pay_path(invoice))
        self.assertEqual(response.headers["Location"], session["url"])
        self.assertEqual(len(self.session_calls()), 1)

    # -------------------------------------------------------------- refusals

    def rpc(self, model, method, *args):
        """``(result, error class name)`` of one ``call_kw`` over HTTP."""
        self.env.flush_all()
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "model": model,
                "method": method,
                "args": list(args),
                "kwargs": {},
            },
        }
        answer = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        ).json()
        self.env.invalidate_all()
        if "error" in answer:
            return None, answer["error"]["data"]["name"]
        return answer["result"], None

    def test_no_user_points_the_payment_link_elsewhere(self):
        # The durable link emailed to the customer redirects to the stored
        # Checkout URL: an invoicing user cannot store one of their own.
        invoice = self.invoice(80.0)
        biller = new_test_user(
            self.env,
            "qtc_stripe_biller",
            groups="account.group_account_invoice",
            company_id=invoice.company_id.id,
            company_ids=invoice.company_id.ids,
        )
        self.authenticate(biller.login, biller.login)
        forged = {
            "stripe_payment_url": "https://pay.example.net/checkout",
            "stripe_payment_url_expires_at": "2099-01-01 00:00:00",
            "stripe_payment_url_amount": 80.0,
        }
        _result, error = self.rpc("account.move", "write", invoice.ids, forged)
        self.assertEqual(error, "odoo.exceptions.AccessError")
        self.assertFalse(invoice.stripe_payment_url)
        # Made the one way there is, the link leads to Stripe's session.
        result, error = self.rpc(
            "account.move", "action_stripe_payment_link", invoice.ids
        )
        self.assertEqual((result, error), (True, None))
        (session,) = self.sessions
        self.assertEqual(invoice.stripe_payment_url, session["url"])
        response = self.open_link(self.pay_path(invoice))
        self.assertEqual(response.headers["Location"], session["url"])

    def test_wrong_or_missing_token_is_404_without_stripe(self):
        invoice = self.invoice(100.0)
        token = invoice._portal_ensure_token()
        other = self.invoice(100.0)
        other_token = other._portal_ensure_token()
        for path in (
            self.pay_path(invoice, token="0" * len(token)),
            self.pay_path(invoice, token=token[:-1]),
            self.pay_path(invoice, token=token + "0"),
            self.pay_path(invoice, token=other_token),
            self.pay_path(invoice, token="é" * 8),
            f"/qtc/stripe/pay/{invoice.id}",
            f"/qtc/stripe/pay/{invoice.id}?access_token=",
            f"/qtc/stripe/pay/{other.id + 1000}?access_token={token}",
        ):
            with self.subTest(path=path):
                self.assertNotFound(self.open_link(path), invoice)
        self.assertFalse(self.stripe_calls())
        self.assertFalse(invoice.stripe_payment_url)

    def test_invoice_without_token_is_404(self):
        invoice = self.invoice(100.0)
        self.assertFalse(invoice.access_token)
        for token in ("False", "00000000-0000-0000-0000-000000000000"):
            with self.subTest(token=token):
                self.assertNotFound(
                    self.open_link(
                        f"/qtc/stripe/pay/{invoice.id}?access_token={token}"
                    ),
                    invoice,
                )
        self.assertFalse(self.stripe_calls())

    def test_vendor_bill_token_is_404(self):
        bill = self.init_invoice(
            "in_invoice", partner=self.partner_a, amounts=[100.0], taxes=[], post=True
        )
        self.assertNotFound(self.open_link(self.pay_path(bill)), bill)
        self.assertFalse(self.stripe_calls())

    def test_paid_or_cancelled_invoice_has_nothing_to_pay(self):
        paid = self.invoice(40.0)
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=paid.ids
        ).create({})._create_payments()
        self.assertIn(paid.payment_state, ("paid", "in_payment"))
        cancelled = self.invoice(60.0)
        cancelled.button_draft()
        cancelled.button_cancel()
        self.assertEqual(cancelled.state, "cancel")
        for invoice in (paid, cancelled):
            with self.subTest(invoice=invoice.name):
                response = self.open_link(self.pay_path(invoice))
                self.assertFriendlyPage(response, 200, "Nothing to pay")
                self.assertIn(invoice.name, response.text)
        self.assertFalse(self.stripe_calls())

    def test_link_of_a_paid_invoice_stops_leading_to_stripe(self):
        invoice = self.invoice(40.0)
        path = self.pay_path(invoice)
        self.assertEqual(self.open_link(path).status_code, 303)
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        self.assertFriendlyPage(self.open_link(path), 200, "Nothing to pay")
        self.assertEqual(len(self.stripe_calls()), 2)  # customer + first session

    # --------------------------------------------------------- Stripe fails

    def test_stripe_unavailable_gives_a_try_later_page(self):
        responses.replace(
            responses.POST,
            SESSIONS,
            status=503,
            json={"error": {"type": "api_error", "message": "Service unavailable"}},
        )
        invoice = self.invoice(100.0)
        path = self.pay_path(invoice)
        response = self.open_link(path)
        self.assertFriendlyPage(response, 503, "try again in a few minutes")
        self.assertEqual(response.headers["Retry-After"], "60")
        self.assertFalse(invoice.stripe_payment_url)
        exception = self.link_exceptions(invoice)
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.category, "remote_rejected")
        self.assertEqual(exception.record_ref, invoice)
        self.assertIn("503", exception.details)
        self.assertNotIn("sk_test_paylink", exception.details)

        # Clicking again: the same page, the same exception counted again.
        self.assertFriendlyPage(self.open_link(path), 503, "try again")
        exception = self.link_exceptions(invoice)
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.occurrences, 2)

        # Stripe is back: the same link leads to Checkout.
        responses.remove(responses.POST, SESSIONS)
        responses.add_callback(responses.POST, SESSIONS, callback=self.new_session)
        response = self.open_link(path)
        self.assertEqual(response.status_code, 303)
        self.assertEqual(response.headers["Location"], self.sessions[0]["url"])

    def test_stripe_unreachable_or_refusing_gives_a_try_later_page(self):
        invoice = self.invoice(100.0)
        path = self.pay_path(invoice)
        for answer in (
            {"body": requests.exceptions.ConnectionError("connection refused")},
            {
                "status": 400,
                "json": {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Your account cannot currently make live charges.",
                    }
                },
            },
            # A 200 without a usable Checkout URL.
            {"json": {"id": "cs_test_odd", "url": "javascript:alert(1)"}},
        ):
            with self.subTest(answer=answer):
                responses.replace(responses.POST, SESSIONS, **answer)
                response = self.open_link(path)
                self.assertFriendlyPage(response, 503, "try again")
                self.assertNotIn("Location", response.headers)
        self.assertFalse(invoice.stripe_payment_url)
        self.assertTrue(self.link_exceptions(invoice))

    def test_no_api_key_says_online_payment_is_unavailable(self):
        self.env["qtc.credential"].sudo().search(
            [("backend_id", "=", self.backend.id), ("key", "=", "stripe_api_key")]
        ).unlink()
        invoice = self.invoice(100.0)
        response = self.open_link(self.pay_path(invoice))
        self.assertFriendlyPage(response, 503, "cannot be paid online")
        self.assertFalse(self.stripe_calls())

    # ---------------------------------------------------------------- email

    def test_link_in_the_sent_email_leads_to_checkout(self):
        invoice = self.invoice(120.0)
        wizard = (
            self.env["account.move.send.wizard"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"sending_methods": ["email"]})
        )
        wizard.with_context(mail_notify_force_send=False).action_send_and_print()
        self.assertFalse(self.stripe_calls(), "sending must not call Stripe")
        message = self.env["mail.message"].search(
            [
                ("model", "=", "account.move"),
                ("res_id", "=", invoice.id),
                ("message_type", "=", "comment"),
            ],
            order="id desc",
            limit=1,
        )
        hrefs = [
            unescape(href)
            for href in re.findall(r'href="([^"]+)"', str(message.body))
            if "/qtc/stripe/pay/" in href
        ]
        self.assertEqual(len(hrefs), 1, message.body)
        link = urlsplit(hrefs[0])
        self.assertEqual(
            f"{link.path}?{link.query}",
            f"/qtc/stripe/pay/{invoice.id}?access_token={invoice.access_token}",
        )
        response = self.open_link(f"{link.path}?{link.query}")
        self.assertEqual(response.status_code, 303)
        self.assertEqual(response.headers["Location"], self.sessions[0]["url"])

    # --------------------------------------------------------------- portal

    def test_portal_page_offers_the_link_while_there_is_something_to_pay(self):
        invoice = self.invoice(75.0)
        response = self.url_open(invoice.get_portal_url())
        self.assertEqual(response.status_code, 200)
        self.assertIn(f'href="{self.pay_link_url(invoice)}"', response.text)
        self.assertIn("Pay online with Stripe", response.text)

        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        response = self.url_open(invoice.get_portal_url())
        self.assertEqual(response.status_code, 200)
        self.assertIn(invoice.name, response.text)
        self.assertNotIn("/qtc/stripe/pay/", response.text)
        self.assertFalse(self.stripe_calls())

    def pay_link_url(self, invoice):
        return (
            f"{invoice.get_base_url()}/qtc/stripe/pay/{invoice.id}"
            f"?access_token={invoice.access_token}"
        )
