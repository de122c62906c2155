"""The invoice email (Odoo's Send & Print) carries the durable payment link,
and sending it asks Stripe nothing."""

import requests
import responses

from odoo import fields
from odoo.tests import tagged

from .common import CheckoutStandInMixin, StripeCase, new_id

API = "https://api.stripe.com"


@tagged("post_install", "-at_install")
class TestStripeInvoiceEmail(CheckoutStandInMixin, StripeCase):
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

    def pay_link(self, invoice):
        return (
            f"{invoice.get_base_url()}/qtc/stripe/pay/{invoice.id}"
            f"?access_token={invoice.access_token}"
        )

    # ------------------------------------------------------------ happy paths

    def test_sent_invoice_email_carries_the_durable_link(self):
        invoice = self.invoice(250.0)
        self.assertFalse(invoice.access_token)
        message = self.send(invoice)
        self.assertTrue(message, "the invoice email was not sent")
        self.assertTrue(invoice.access_token)
        url = self.pay_link(invoice)
        self.assertIn(f'href="{url}"', message.body)
        self.assertIn("Pay online with Stripe", message.body)
        # The template's own text is still there, the link comes with it.
        self.assertIn(invoice.name, message.body)
        mail = self.outgoing_mail(message)
        self.assertTrue(mail)
        self.assertIn(url, mail.body_html)
        # No Checkout Session is made on send: it would expire in 24 hours.
        self.assertFalse(responses.calls)
        self.assertFalse(invoice.stripe_payment_url)
        self.assertEqual(invoice.stripe_pay_link, url)

    def test_every_email_carries_the_same_link_whatever_the_amount(self):
        invoice = self.invoice(100.0)
        first = self.send(invoice)
        url = self.pay_link(invoice)
        self.assertIn(url, first.body)
        second = self.send(invoice)
        self.assertNotEqual(second, first)
        self.assertIn(url, second.body)

        # Part of the invoice is paid: the link is the same, it asks Stripe
        # for the open amount only when opened.
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"amount": 30.0})._create_payments()
        self.assertEqual(invoice.amount_residual, 70.0)
        third = self.send(invoice)
        self.assertIn(url, third.body)
        self.assertEqual(third.body.count("Pay online with Stripe"), 1)
        self.assertFalse(responses.calls)

    def test_batch_sending_gives_each_invoice_its_own_link(self):
        invoices = self.invoice(10.0) | self.invoice(20.0, partner=self.partner_b)
        self.env["account.move.send"]._generate_and_send_invoices(
            invoices, sending_methods=["email"]
        )
        links = []
        for invoice in invoices:
            message = self.sent_message(invoice)
            links.append(self.pay_link(invoice))
            self.assertIn(links[-1], message.body)
        self.assertNotEqual(invoices[0].access_token, invoices[1].access_token)
        self.assertNotIn(links[1], self.sent_message(invoices[0]).body)
        self.assertFalse(responses.calls)

    # ------------------------------------------------------- Stripe failing

    def test_stripe_refusing_does_not_touch_the_email(self):
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
        self.assertIn(self.pay_link(invoice), message.body)
        self.assertTrue(self.outgoing_mail(message))
        self.assertFalse(responses.calls)
        self.assertFalse(
            self.env["qtc.exception"].search([("backend_id", "=", self.backend.id)])
        )

    def test_stripe_unreachable_does_not_touch_the_email(self):
        responses.replace(
            responses.POST,
            f"{API}/v1/checkout/sessions",
            body=requests.exceptions.ConnectionError("connection refused"),
        )
        responses.replace(
            responses.POST,
            f"{API}/v1/customers",
            body=requests.exceptions.ConnectionError("connection refused"),
        )
        invoice = self.invoice(50.0)
        message = self.send(invoice)
        self.assertTrue(message)
        self.assertIn("Pay online with Stripe", message.body)
        self.assertFalse(responses.calls)

    # --------------------------------------------------------------- no link

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
        self.assertNotIn("/qtc/stripe/pay/", message.body)

        self.backend.stripe_api_key = "sk_test_mail"
        paid = self.invoice(40.0)
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=paid.ids
        ).create({})._create_payments()
        self.assertIn(paid.payment_state, ("paid", "in_payment"))
        message = self.send(paid)
        self.assertTrue(message)
        self.assertNotIn("Pay online with Stripe", message.body)
        self.assertNotIn("/qtc/stripe/pay/", message.body)
        self.assertFalse(responses.calls)
        self.assertFalse(
            self.env["qtc.exception"].search([("backend_id", "=", self.backend.id)])
        )

    def test_no_link_without_an_active_backend(self):
        self.backend.state = "draft"
        invoice = self.invoice(40.0)
        message = self.send(invoice)
        self.assertTrue(message)
        self.assertNotIn("/qtc/stripe/pay/", message.body)

    def test_invoicing_user_without_qtc_rights_sends_the_link(self):
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
        self.assertIn(self.pay_link(invoice), message.body)
        self.assertEqual(message.create_uid, clerk)
        self.assertFalse(responses.calls)
