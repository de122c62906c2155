"""The invoice email (Odoo's Send & Print) carries the Stripe payment link."""

import json
import time
from datetime import timedelta
from urllib.parse import parse_qs

import requests
import responses

from odoo import fields
from odoo.tests import tagged

from .common import StripeCase, new_id

API = "https://api.stripe.com"


@tagged("post_install", "-at_install")
class TestStripeInvoiceEmail(StripeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.partner_a | cls.partner_b).email = "customer@example.com"
        cls.backend.stripe_api_key = "sk_test_mail"

    def setUp(self):
        super().setUp()
        responses.start()
        self.addCleanup(responses.stop)
        self.addCleanup(responses.reset)
        self.sessions = []
        responses.post(f"{API}/v1/customers", json={"id": new_id("cus")})
        responses.add_callback(
            responses.POST, f"{API}/v1/checkout/sessions", callback=self.new_session
        )

    def new_session(self, request):
        """Stripe's answer to a Checkout Session create: a fresh session for
        the amount asked, expiring in 24 hours as by default."""
        form = parse_qs(request.body)
        session_id = new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"][0]),
            "expires_at": int(time.time()) + 24 * 3600,
            "metadata": {"odoo_invoice_id": form["metadata[odoo_invoice_id]"][0]},
        }
        self.sessions.append(session)
        return 200, {}, json.dumps(session)

    def send(self, invoice, user=None):
        """Send the invoice by email through the Send & Print wizard."""
        wizard = (
            self.env["account.move.send.wizard"]
            .with_user(user or self.env.user)
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"sending_methods": ["email"]})
        )
        self.assertEqual(
            wizard.mail_template_id, self.env.ref("account.email_template_edi_invoice")
        )
        # Keep the outgoing mail in the queue so the test can read it.
        wizard.with_context(mail_notify_force_send=False).action_send_and_print()
        return self.sent_message(invoice)

    def sent_message(self, invoice):
        return self.env["mail.message"].search(
            [
                ("model", "=", "account.move"),
                ("res_id", "=", invoice.id),
                ("message_type", "=", "comment"),
                ("partner_ids", "in", invoice.partner_id.ids),
            ],
            order="id desc",
            limit=1,
        )

    def outgoing_mail(self, message):
        return (
            self.env["mail.mail"].sudo().search([("mail_message_id", "=", message.id)])
        )

    def session_calls(self):
        return [
            call
            for call in responses.calls
            if call.request.url == f"{API}/v1/checkout/sessions"
        ]

    # ------------------------------------------------------------ happy paths

    def test_sent_invoice_email_carries_a_new_payment_link(self):
        invoice = self.invoice(250.0)
        self.assertFalse(invoice.stripe_payment_url)
        message = self.send(invoice)
        self.assertTrue(message, "the invoice email was not sent")
        (session,) = self.sessions
        url = session["url"]
        self.assertEqual(invoice.stripe_payment_url, url)
        self.assertEqual(invoice.stripe_checkout_session_id, session["id"])
        self.assertEqual(invoice.stripe_payment_url_amount, 250.0)
        self.assertIn(f'href="{url}"', message.body)
        self.assertIn("Pay online with Stripe", message.body)
        # The template's own text is still there, the link comes with it.
        self.assertIn(invoice.name, message.body)
        mail = self.outgoing_mail(message)
        self.assertTrue(mail)
        self.assertIn(url, mail.body_html)
        (call,) = self.session_calls()
        self.assertIn(
            f"checkout-{invoice.id}-25000-USD", call.request.headers["Idempotency-Key"]
        )

    def test_current_link_is_reused_and_an_outdated_one_replaced(self):
        invoice = self.invoice(100.0)
        first = self.send(invoice)
        url = invoice.stripe_payment_url
        self.assertIn(url, first.body)

        second = self.send(invoice)
        self.assertNotEqual(second, first)
        self.assertIn(url, second.body)
        self.assertEqual(len(self.session_calls()), 1)

        # Part of the invoice is paid: the link asks for the old amount.
        payment = (
            self.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"amount": 30.0})
            ._create_payments()
        )
        self.assertTrue(payment)
        self.assertEqual(invoice.amount_residual, 70.0)
        third = self.send(invoice)
        self.assertEqual(len(self.session_calls()), 2)
        self.assertEqual(self.sessions[-1]["amount_total"], 7000)
        self.assertIn(self.sessions[-1]["url"], third.body)
        self.assertNotIn(url, third.body)

        # The Checkout page is about to expire: a new one is made.
        invoice.stripe_payment_url_expires_at = fields.Datetime.now() + timedelta(
            minutes=10
        )
        fourth = self.send(invoice)
        self.assertEqual(len(self.session_calls()), 3)
        self.assertIn(invoice.stripe_payment_url, fourth.body)

    def test_batch_sending_gives_each_invoice_its_own_link(self):
        invoices = self.invoice(10.0) | self.invoice(20.0, partner=self.partner_b)
        self.env["account.move.send"]._generate_and_send_invoices(
            invoices, sending_methods=["email"]
        )
        self.assertEqual(len(self.sessions), 2)
        for invoice in invoices:
            message = self.sent_message(invoice)
            self.assertTrue(invoice.stripe_payment_url)
            self.assertIn(invoice.stripe_payment_url, message.body)
        self.assertNotEqual(
            invoices[0].stripe_payment_url, invoices[1].stripe_payment_url
        )

    # --------------------------------------------------------------- no link

    def test_link_creation_failure_sends_the_email_without_it(self):
        responses.replace(
            responses.POST,
            f"{API}/v1/checkout/sessions",
            status=400,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "message": "Your account cannot currently make live charges.",
                }
            },
        )
        invoice = self.invoice(50.0)
        message = self.send(invoice)
        self.assertTrue(message, "the invoice email must go out")
        self.assertIn(invoice.name, message.body)
        self.assertNotIn("Pay online with Stripe", message.body)
        self.assertNotIn("checkout.stripe.com", message.body)
        self.assertFalse(invoice.stripe_payment_url)
        self.assertTrue(self.outgoing_mail(message))
        exception = self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id), ("res_id", "=", invoice.id)]
        )
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.category, "remote_rejected")
        self.assertEqual(exception.record_ref, invoice)
        self.assertIn("went out without it", exception.name)
        self.assertIn("400", exception.details)
        self.assertNotIn("sk_test_mail", exception.details)

    def test_stripe_unreachable_sends_the_email_without_link(self):
        responses.replace(
            responses.POST,
            f"{API}/v1/checkout/sessions",
            body=requests.exceptions.ConnectionError("connection refused"),
        )
        invoice = self.invoice(50.0)
        message = self.send(invoice)
        self.assertTrue(message)
        self.assertNotIn("Pay online with Stripe", message.body)
        self.assertTrue(
            self.env["qtc.exception"].search(
                [("backend_id", "=", self.backend.id), ("res_id", "=", invoice.id)]
            )
        )

    def test_no_link_without_api_key_nor_on_a_paid_invoice(self):
        key = (
            self.env["qtc.credential"]
            .sudo()
            .search(
                [("backend_id", "=", self.backend.id), ("key", "=", "stripe_api_key")]
            )
        )
        key.unlink()
        invoice = self.invoice(40.0)
        message = self.send(invoice)
        self.assertTrue(message)
        self.assertNotIn("Pay online with Stripe", message.body)

        self.backend.stripe_api_key = "sk_test_mail"
        paid = self.invoice(40.0)
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=paid.ids
        ).create({})._create_payments()
        self.assertIn(paid.payment_state, ("paid", "in_payment"))
        message = self.send(paid)
        self.assertTrue(message)
        self.assertNotIn("Pay online with Stripe", message.body)
        self.assertFalse(responses.calls)
        self.assertFalse(
            self.env["qtc.exception"].search([("backend_id", "=", self.backend.id)])
        )

    def test_invoicing_user_without_qtc_rights_sends_with_link_or_without(self):
        clerk = self.env["res.users"].create(
            {
                "name": "Billing clerk",
                "login": "stripe_mail_clerk",
                "email": "clerk@example.com",
                "groups_id": [
                    fields.Command.set(
                        [
                            self.env.ref("account.group_account_invoice").id,
                            self.env.ref("base.group_user").id,
                        ]
                    )
                ],
                "company_id": self.env.company.id,
                "company_ids": [fields.Command.set(self.env.company.ids)],
            }
        )
        self.assertFalse(clerk.has_group("qtc_connector_base.group_qtc_user"))
        invoice = self.invoice(80.0)
        message = self.send(invoice, user=clerk)
        self.assertIn(invoice.stripe_payment_url, message.body)
        self.assertEqual(message.create_uid, clerk)

        # Stripe refuses the next link: the clerk's email still goes out and
        # finance gets the exception the clerk could not have opened alone.
        responses.replace(
            responses.POST,
            f"{API}/v1/checkout/sessions",
            status=402,
            json={"error": {"type": "card_error", "message": "refused"}},
        )
        other = self.invoice(90.0)
        message = self.send(other, user=clerk)
        self.assertTrue(message)
        self.assertNotIn("Pay online with Stripe", message.body)
        self.assertTrue(
            self.env["qtc.exception"].search(
                [("backend_id", "=", self.backend.id), ("res_id", "=", other.id)]
            )
        )
