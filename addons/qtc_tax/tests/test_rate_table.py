import responses

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import QtcTaxCase


@tagged("post_install", "-at_install")
class TestRateTable(QtcTaxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.table = cls._qtc_make_illinois_rate_table()

    def setUp(self):
        super().setUp()
        # This company's active tax engine is the table, not AvaTax.
        self.backend.state = "disabled"

    def test_default_backend_is_the_active_one(self):
        invoice = self.make_invoice()
        self.assertEqual(invoice.tax_backend_id, self.table)

    @responses.activate
    def test_rate_table_end_to_end_without_http(self):
        invoice = self.make_invoice()
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertAlmostEqual(invoice.amount_tax, 136.79, places=2)
        self.assertEqual(
            self.tax_amounts(invoice),
            {
                "Rate table ILLINOIS STA 6.25%": 83.41,
                "Rate table COOK CTY 1.75%": 23.35,
                "Rate table CHICAGO CIT 1.25%": 16.68,
                "Rate table REGIONAL TRANSPORT. AUTHORITY (RTA) STJ 1%": 13.35,
            },
        )
        self.run_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        self.assertEqual(invoice.tax_transaction_id, f"rate_table:{invoice.name}")
        # Credit note, cancel: no engine to call, states still follow.
        refund = invoice._reverse_moves()
        refund.action_post()
        self.run_jobs()
        self.assertEqual(refund.tax_state, "committed")
        self.assertAlmostEqual(refund.amount_tax, 136.79, places=2)
        refund.button_cancel()
        self.run_jobs()
        self.assertEqual(refund.tax_state, "voided")
        self.assertEqual(len(responses.calls), 0)

    def test_place_without_a_rate_is_rejected_naming_the_address(self):
        self.customer.state_id = self.env.ref("base.state_us_5")  # California
        invoice = self.make_invoice([self.workshop])
        with self.assertRaises(UserError) as caught:
            invoice.action_post()
        self.assertEqual(caught.exception.category, "tax")
        self.assertIn("ship_to", str(caught.exception))
        self.assertEqual(invoice.state, "draft")

    def test_place_without_a_rate_is_untaxed_when_configured(self):
        self.table.tax_rate_missing = "zero"
        self.customer.state_id = self.env.ref("base.state_us_5")
        invoice = self.make_invoice([self.workshop])
        invoice.action_post()
        self.assertEqual(invoice.amount_tax, 0.0)
        self.assertFalse(invoice.invoice_line_ids.tax_ids)

    def test_changing_a_rate_invalidates_the_cached_quote(self):
        invoice = self.make_invoice([self.workshop])
        invoice.action_tax_quote()
        self.assertAlmostEqual(invoice.amount_tax, 126.54, places=2)
        self.table.tax_rate_ids.filtered(lambda r: r.name == "CHICAGO").rate = 2.0
        invoice.action_tax_quote()
        # 1234.56 * 2 % = 24.69 instead of 15.43.
        self.assertAlmostEqual(invoice.amount_tax, 135.80, places=2)

    def test_rates_are_validated(self):
        with self.assertRaises(ValidationError):
            self.table.tax_rate_ids[0].rate = 100.0
        with self.assertRaises(ValidationError):
            self.table.tax_rate_ids[0].state_id = self.env.ref("base.state_mx_ags")

    def test_connection_test_counts_the_rates(self):
        action = self.table.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("5 tax rate(s)", action["params"]["message"])
