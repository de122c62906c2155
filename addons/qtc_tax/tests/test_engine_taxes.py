"""How the engine's answer becomes Odoo taxes when it gives a line's tax
without its split by jurisdiction, and how its rejections name Odoo's data."""

import responses

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import QtcTaxCase, avatax_error


def without_details(fake):
    """The fake's answer, each line's jurisdiction split removed (the line
    tax and the document total stay)."""

    def answer(body):
        data = fake.compute(body)
        for line in data["lines"]:
            line["details"] = []
        return data

    return answer


@tagged("post_install", "-at_install")
class TestLineTaxWithoutDetails(QtcTaxCase):
    @responses.activate
    def test_one_tax_at_the_rate_of_the_amount_sent(self):
        self.fake.register()
        self.fake.answer = without_details(self.fake)
        invoice = self.make_invoice([self.workshop])
        invoice.action_tax_quote()
        [tax] = invoice.invoice_line_ids.tax_ids
        # 126.54 on the 1234.56 sent: 10.2498 % (Chicago's 10.25 % rounded
        # per jurisdiction by the engine).
        self.assertAlmostEqual(tax.amount, 10.2498, places=4)
        self.assertEqual(tax.price_include_override, "tax_excluded")
        self.assertAlmostEqual(invoice.amount_tax, 126.54, places=2)
        self.assertEqual(self.tax_amounts(invoice), {tax.name: 126.54})

    @responses.activate
    def test_rate_is_of_the_amount_sent_even_under_an_included_tax(self):
        """The line had a price-included tax, so Odoo's untaxed amount was
        below the amount the engine was sent (and taxed): the rate is the
        engine's tax over what it was sent, not over Odoo's old subtotal."""
        included = self.env["account.tax"].create(
            {
                "name": "Included 10 %",
                "amount": 10.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
            }
        )
        self.fake.register()
        self.fake.answer = without_details(self.fake)
        invoice = self.init_invoice(
            "out_invoice",
            partner=self.customer,
            products=[self.workshop],
            taxes=[included],
        )
        line = invoice.invoice_line_ids
        self.assertAlmostEqual(line.price_subtotal, 1122.33, places=2)
        invoice.action_tax_quote()
        [body] = self.fake.creates
        self.assertEqual(body["lines"][0]["amount"], 1234.56)
        [tax] = line.tax_ids
        # Over Odoo's old subtotal (1122.33) it would be 11.2748 %.
        self.assertAlmostEqual(tax.amount, 10.2498, places=4)
        self.assertAlmostEqual(line.price_subtotal, 1234.56, places=2)
        self.assertAlmostEqual(invoice.amount_tax, 126.54, places=2)


@tagged("post_install", "-at_install")
class TestRejectionLabels(QtcTaxCase):
    @responses.activate
    def test_ship_from_of_the_company_is_named_when_the_backend_has_none(self):
        self.backend.tax_ship_from_id = False
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipFrom.PostalCode"
        )
        invoice = self.make_invoice([self.workshop])
        with self.assertRaises(UserError) as caught:
            invoice.action_tax_quote()
        # The company's address was sent: it is the one to fix.
        [body] = self.fake.creates
        self.assertEqual(body["addresses"]["shipFrom"]["postalCode"], "98110")
        company = self.env.company.partner_id.display_name
        self.assertIn(
            f"ship_from.postal_code: ZIP of the ship-from address {company}",
            caught.exception.problems,
        )
