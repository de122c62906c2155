import responses

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import QtcTaxCase, avatax_error


@tagged("post_install", "-at_install")
class TestBatchRejection(QtcTaxCase):
    @responses.activate
    def test_rejected_invoice_stays_draft_and_the_batch_posts(self):
        self.fake.register()
        # The middle invoice (the manual at 99.99) has an address the engine
        # refuses; the two others are fine.
        self.fake.fail = lambda body: (
            avatax_error(400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode")
            if any(line["amount"] == 99.99 for line in body["lines"])
            else None
        )
        first = self.make_invoice([self.workshop])
        middle = self.make_invoice([self.manual])
        last = self.make_invoice([self.workshop, self.consulting])
        action = (first | middle | last).action_post()
        self.assertEqual(
            (first.state, middle.state, last.state), ("posted", "draft", "posted")
        )
        self.assertEqual(middle.tax_state, "rejected")
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn(middle.display_name, action["params"]["message"])
        self.assertIn("rejected", action["params"]["message"])
        exception = middle.tax_exception_id
        self.assertEqual(
            (exception.category, exception.state, exception.res_model),
            ("tax", "open", "account.move"),
        )
        self.assertEqual(exception.res_id, middle.id)
        self.assertIn(
            "ship_to.postal_code: ZIP of the delivery address of partner_a",
            exception.details,
        )
        self.assertEqual(exception.backend_id, self.backend)
        # The rejection is the document's problem, not the engine's health.
        self.assertEqual(self.backend.tax_breaker_status, "closed")
        # Only the posted ones go on to be committed.
        self.assertFalse(self.jobs(middle))
        self.run_jobs()
        self.assertEqual((first.tax_state, last.tax_state), ("committed", "committed"))
        self.assertAlmostEqual(first.amount_tax, 126.54, places=2)
        self.assertAlmostEqual(last.amount_tax, 126.54, places=2)
        # Posting the same batch again while the data is still wrong: one
        # exception, counted again.
        with self.assertRaises(UserError):
            middle.action_post()  # alone: the error is shown to the person
        self.assertEqual(exception.occurrences, 1)
        (middle | self.make_invoice([self.workshop])).action_post()
        self.assertEqual(exception.occurrences, 2)
        # The address is fixed: the invoice posts, the exception resolves once
        # the invoice is committed.
        self.fake.fail = None
        middle.action_post()
        self.assertEqual((middle.state, middle.tax_state), ("posted", "quoted"))
        self.run_jobs()
        self.assertEqual(middle.tax_state, "committed")
        self.assertEqual(exception.state, "resolved")

    @responses.activate
    def test_rejection_of_a_single_invoice_still_raises(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode"
        )
        invoice = self.make_invoice([self.manual])
        with self.assertRaises(UserError) as caught:
            invoice.action_post()
        self.assertEqual(caught.exception.category, "tax")
        self.assertEqual((invoice.state, invoice.tax_state), ("draft", "none"))
        self.assertFalse(invoice.tax_exception_id)

    @responses.activate
    def test_missing_settings_stop_the_batch_with_one_message(self):
        self.fake.register()
        self.env["qtc.credential"].sudo().search(
            [("backend_id", "=", self.backend.id), ("key", "=", "avatax_license_key")]
        ).unlink()
        invoices = self.make_invoice([self.workshop]) | self.make_invoice([self.manual])
        with self.assertRaises(UserError) as caught:
            invoices.action_post()
        self.assertEqual(caught.exception.category, "configuration")
        self.assertEqual(set(invoices.mapped("state")), {"draft"})
        self.assertFalse(invoices.tax_exception_id)
        self.assertEqual(self.fake.creates, [])


@tagged("post_install", "-at_install")
class TestForeignCurrency(QtcTaxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # 2 EUR for 1 USD on the invoices' date (2019-01-01).
        cls.eur = cls.setup_other_currency("EUR")

    @responses.activate
    def test_quote_and_commit_in_the_invoice_currency(self):
        self.fake.register()
        invoice = self.init_invoice(
            "out_invoice",
            partner=self.customer,
            products=[self.workshop, self.manual, self.consulting],
            currency=self.eur,
        )
        self.assertEqual(invoice.currency_id, self.eur)
        self.assertNotEqual(invoice.company_currency_id, self.eur)
        invoice.action_post()
        self.run_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        quote, commit = self.fake.creates
        for body in (quote, commit):
            self.assertEqual(body["currencyCode"], "EUR")
            self.assertEqual(
                [line["amount"] for line in body["lines"]], [2469.12, 199.98, 1000]
            )
        self.assertEqual(commit["type"], "SalesInvoice")
        # In EUR, to the cent: 253.08 on the workshop, 20.50 on the manual.
        self.assertAlmostEqual(invoice.amount_untaxed, 3669.10, places=2)
        self.assertAlmostEqual(invoice.amount_tax, 273.58, places=2)
        self.assertAlmostEqual(invoice.amount_total, 3942.68, places=2)
        self.assertAlmostEqual(invoice.tax_engine_total, 273.58, places=2)
        self.assertEqual(
            self.tax_amounts(invoice),
            {
                "AvaTax ILLINOIS STA 6.25%": 166.82,
                "AvaTax COOK CTY 1.75%": 46.71,
                "AvaTax CHICAGO CIT 1.25%": 33.36,
                "AvaTax REGIONAL TRANSPORT. AUTHORITY (RTA) STJ 1%": 26.69,
            },
        )
        # In USD: each tax journal item is its EUR amount at the invoice's rate.
        usd = invoice.company_currency_id
        for line in invoice.line_ids.filtered("tax_line_id"):
            self.assertEqual(line.currency_id, self.eur)
            self.assertAlmostEqual(
                line.balance, usd.round(line.amount_currency / 2.0), places=2
            )
        receivable = invoice.line_ids.filtered(
            lambda line: line.display_type == "payment_term"
        )
        self.assertAlmostEqual(
            sum(receivable.mapped("amount_currency")), 3942.68, places=2
        )
        self.assertAlmostEqual(sum(invoice.line_ids.mapped("balance")), 0.0, places=2)
        self.assertAlmostEqual(
            invoice.amount_tax_signed,
            -sum(invoice.line_ids.filtered("tax_line_id").mapped("balance")),
            places=2,
        )
