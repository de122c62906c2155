import copy

import requests
import responses

from odoo import Command
from odoo.addons.qtc_tax.tests.common import (
    QtcTaxCase,
    avatax_error,
    load_fixture,
)
from odoo.exceptions import UserError
from odoo.tests import tagged

CHICAGO_TAXES = {
    "AvaTax ILLINOIS STA 6.25%": 83.41,
    "AvaTax COOK CTY 1.75%": 23.35,
    "AvaTax CHICAGO CIT 1.25%": 16.68,
    "AvaTax REGIONAL TRANSPORT. AUTHORITY (RTA) STJ 1%": 13.35,
}


def timeout(_body):
    return requests.exceptions.ConnectTimeout("engine asleep")


class QtcTaxSaleCase(QtcTaxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id |= cls.env.ref("sales_team.group_sale_salesman")

    def make_order(self, products=None, partner=None, currency=None):
        products = (
            products
            if products is not None
            else [self.workshop, self.manual, self.consulting]
        )
        values = {
            "partner_id": (partner or self.customer).id,
            "order_line": [
                Command.create(
                    {
                        "product_id": product.id,
                        "product_uom_qty": 1,
                        "price_unit": product.lst_price,
                    }
                )
                for product in products
            ],
        }
        if currency:
            pricelist = (
                self.env["product.pricelist"]
                .sudo()
                .create({"name": f"In {currency.name}", "currency_id": currency.id})
            )
            values["pricelist_id"] = pricelist.id
        return self.env["sale.order"].create(values)

    def order_tax_groups(self, order):
        """``{tax name: amount}`` of the order's taxes as Odoo totals them."""
        amounts = {}
        lines = order.order_line.filtered(lambda line: not line.display_type)
        taxes_model = self.env["account.tax"]
        base_lines = [line._prepare_base_line_for_taxes_computation() for line in lines]
        taxes_model._add_tax_details_in_base_lines(base_lines, order.company_id)
        taxes_model._round_base_lines_tax_details(
            base_lines, order.company_id, tax_lines=order._tax_engine_tax_lines()
        )
        for base_line in base_lines:
            for tax_data in base_line["tax_details"]["taxes_data"]:
                name = tax_data["tax"].name
                amounts[name] = round(
                    amounts.get(name, 0.0) + tax_data["tax_amount_currency"], 2
                )
        return amounts

    def quote_jobs(self, order, state=None):
        domain = [("identity_key", "=", f"qtc_tax_sale:quote:{order.id}")]
        if state:
            domain.append(("state", "=", state))
        return self.env["qtc.job"].search(domain)


@tagged("post_install", "-at_install")
class TestSaleQuote(QtcTaxSaleCase):
    # -- failure paths first ---------------------------------------------------

    @responses.activate
    def test_timeout_under_hold_reports_and_never_blocks_the_order(self):
        self.fake.register()
        self.fake.fail = timeout
        order = self.make_order()
        action = order.action_tax_quote()  # no error raised
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(action["params"]["type"], "warning")
        self.assertIn(order.display_name, action["params"]["message"])
        self.assertEqual(order.tax_state, "pending")
        # Odoo's configured 15 % tax stays; the order is as before.
        self.assertEqual(order.order_line.tax_id, self.tax_sale_a)
        self.assertAlmostEqual(order.amount_tax, 275.18, places=2)
        exception = order.tax_exception_id
        self.assertEqual(
            (exception.category, exception.state, exception.res_model),
            ("tax", "open", "sale.order"),
        )
        self.assertIn("no answer from AvaTax (timeout)", exception.details)
        [job] = self.quote_jobs(order, "pending")
        self.assertTrue(job.eta)
        # Still editable, and confirming makes no call and is not blocked.
        order.order_line[1].product_uom_qty = 2
        calls = len(self.fake.creates)
        order.action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertEqual(len(self.fake.creates), calls)
        # The engine answers again: the job quotes the order.
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(order.tax_state, "quoted")
        self.assertEqual(exception.state, "resolved")
        # 126.54 on the workshop, 20.50 on two manuals (12.50 + 3.50 + 2.50 +
        # 2.00), per line and jurisdiction.
        self.assertAlmostEqual(order.amount_tax, 147.04, places=2)

    @responses.activate
    def test_pending_order_locked_meanwhile_is_left_to_its_invoices(self):
        self.fake.register()
        self.fake.fail = timeout
        order = self.make_order([self.workshop])
        order.action_tax_quote()
        self.assertEqual(order.tax_state, "pending")
        exception = order.tax_exception_id
        order.action_confirm()
        order.action_lock()
        self.fake.fail = None
        calls = len(self.fake.creates)
        self.run_due_jobs()
        [job] = self.quote_jobs(order)
        self.assertEqual(job.state, "done", job.result)
        self.assertIn("locked", job.result)
        self.assertEqual(len(self.fake.creates), calls)
        self.assertEqual(exception.state, "resolved")
        self.assertEqual(order.order_line.tax_id, self.tax_sale_a)

    @responses.activate
    def test_5xx_under_fallback_keeps_odoo_taxes_without_exception(self):
        self.backend.tax_outage_policy = "fallback"
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(503, "ServiceNotReady")
        order = self.make_order([self.workshop])
        action = order.action_tax_quote()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(order.tax_state, "fallback")
        self.assertFalse(order.tax_exception_id)
        self.assertFalse(self.quote_jobs(order))
        self.assertEqual(order.order_line.tax_id, self.tax_sale_a)
        self.assertAlmostEqual(order.amount_tax, 185.18, places=2)
        self.assertTrue(
            any("keeps the taxes" in body for body in order.message_ids.mapped("body"))
        )
        order.action_confirm()
        self.assertEqual(order.state, "sale")

    @responses.activate
    def test_invalid_address_names_the_fields_and_changes_nothing(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode"
        )
        order = self.make_order()
        with self.assertRaises(UserError) as caught:
            order.action_tax_quote()
        error = caught.exception
        self.assertEqual(error.category, "tax")
        self.assertIn(
            "ship_to.postal_code: ZIP of the delivery address of partner_a",
            error.problems,
        )
        self.assertEqual(error.records, [("sale.order", order.id)])
        self.assertEqual(order.tax_state, "none")
        self.assertEqual(order.order_line.tax_id, self.tax_sale_a)

    @responses.activate
    def test_locked_order_is_refused_before_any_call(self):
        self.fake.register()
        order = self.make_order([self.workshop])
        order.action_confirm()
        order.action_lock()
        with self.assertRaises(UserError) as caught:
            order.action_tax_quote()
        self.assertIn("is locked", str(caught.exception))
        self.assertEqual(self.fake.creates, [])
        self.assertEqual(order.tax_state, "none")
        order.action_unlock()
        order.action_tax_quote()
        self.assertEqual(order.tax_state, "quoted")

    def test_cancelled_order_is_not_quoted(self):
        order = self.make_order([self.workshop])
        order.action_cancel()
        with self.assertRaises(UserError):
            order.action_tax_quote()

    # -- quote -------------------------------------------------------------------

    @responses.activate
    def test_quote_multiple_jurisdictions_to_the_cent(self):
        self.fake.register()
        order = self.make_order()
        self.assertEqual(order.tax_backend_id, self.backend)
        self.assertIs(order.action_tax_quote(), True)
        [body] = self.fake.creates
        self.assertEqual((body["type"], body["commit"]), ("SalesOrder", False))
        self.assertEqual(body["code"], f"ODOO-SO-{order.id}")
        self.assertEqual(body["addresses"]["shipTo"]["postalCode"], "60606")
        self.assertEqual(
            [(line["amount"], line.get("taxCode")) for line in body["lines"]],
            [(1234.56, "P0000000"), (99.99, "P0000000"), (500, "S0000000")],
        )
        self.assertEqual(order.tax_state, "quoted")
        self.assertTrue(order.tax_quote_current)
        self.assertAlmostEqual(order.amount_untaxed, 1834.55, places=2)
        self.assertAlmostEqual(order.amount_tax, 136.79, places=2)
        self.assertAlmostEqual(order.amount_total, 1971.34, places=2)
        self.assertAlmostEqual(order.tax_engine_total, 136.79, places=2)
        self.assertAlmostEqual(order.tax_totals["tax_amount_currency"], 136.79, 2)
        self.assertEqual(self.order_tax_groups(order), CHICAGO_TAXES)
        workshop, manual, consulting = order.order_line
        self.assertEqual(len(workshop.tax_id), 4)
        self.assertEqual(manual.tax_id, workshop.tax_id)
        self.assertFalse(consulting.tax_id)

    @responses.activate
    def test_engine_rounding_is_kept_to_the_cent(self):
        """The engine rounds Cook's 21.6048 up to 21.61 where Odoo computes
        21.60: the order still shows the engine's total."""
        self.fake.register()
        order = self.make_order()
        numbers = [str(line.id) for line in order.order_line]

        def answer(body):
            data = copy.deepcopy(load_fixture("avatax_transaction_chicago.json"))
            for line, number in zip(data["lines"], numbers, strict=True):
                line["lineNumber"] = number
            data.update(code=body["code"], type=body["type"])
            data["lines"][0]["details"][1]["tax"] = 21.61
            data["lines"][0]["tax"] = 126.55
            data["totalTax"] = 136.80
            return data

        self.fake.answer = answer
        order.action_tax_quote()
        self.assertAlmostEqual(order.amount_tax, 136.80, places=2)
        self.assertAlmostEqual(order.amount_total, 1971.35, places=2)
        self.assertEqual(self.order_tax_groups(order)["AvaTax COOK CTY 1.75%"], 23.36)
        # A line changed since the quote: Odoo's own computation until the
        # next quote, and the order says so.
        order.order_line[2].price_unit = 400.0
        self.assertFalse(order.tax_quote_current)
        self.assertAlmostEqual(order.amount_tax, 136.79, places=2)

    @responses.activate
    def test_unchanged_order_is_not_quoted_twice(self):
        self.fake.register()
        order = self.make_order()
        order.action_tax_quote()
        order.action_tax_quote()
        self.assertEqual(len(self.fake.creates), 1)
        # Taxes edited by hand are repaired from the cached answer, no call.
        order.order_line[0].tax_id = self.tax_sale_a
        self.assertFalse(order.tax_quote_current)
        order.action_tax_quote()
        self.assertEqual(len(self.fake.creates), 1)
        self.assertTrue(order.tax_quote_current)
        self.assertAlmostEqual(order.amount_tax, 136.79, places=2)
        # A changed quantity is a new request.
        order.order_line[0].product_uom_qty = 2
        order.action_tax_quote()
        self.assertEqual(len(self.fake.creates), 2)
        self.assertEqual(self.fake.creates[1]["lines"][0]["amount"], 2469.12)
        self.assertAlmostEqual(order.amount_tax, 263.33, places=2)

    @responses.activate
    def test_quote_in_the_order_currency(self):
        self.fake.register()
        eur = self.setup_other_currency("EUR")  # 2 EUR for 1 USD
        order = self.make_order(currency=eur)
        self.assertEqual(order.currency_id, eur)
        self.assertAlmostEqual(order.currency_rate, 2.0, places=4)
        order.action_tax_quote()
        [body] = self.fake.creates
        self.assertEqual(body["currencyCode"], "EUR")
        self.assertEqual(
            [line["amount"] for line in body["lines"]], [1234.56, 99.99, 500]
        )
        self.assertTrue(order.tax_quote_current)
        self.assertAlmostEqual(order.amount_tax, 136.79, places=2)
        self.assertAlmostEqual(order.tax_totals["tax_amount_currency"], 136.79, 2)
        # In the company currency: the engine's amounts at the order's rate.
        self.assertAlmostEqual(order.tax_totals["tax_amount"], 68.40, delta=0.02)

    @responses.activate
    def test_invoice_from_a_quoted_order_is_quoted_and_committed_at_post(self):
        self.fake.register()
        (self.workshop | self.manual | self.consulting).invoice_policy = "order"
        order = self.make_order()
        order.action_tax_quote()
        order.action_confirm()
        invoice = order._create_invoices()
        self.assertEqual(invoice.tax_backend_id, self.backend)
        self.assertEqual(
            invoice.invoice_line_ids[0].tax_ids, order.order_line[0].tax_id
        )
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.tax_state, "quoted")
        quote = self.fake.creates[-1]
        self.assertEqual(quote["code"], f"ODOO-MOVE-{invoice.id}")
        self.assertAlmostEqual(invoice.amount_tax, order.amount_tax, places=2)
        self.run_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        self.assertEqual(list(self.fake.committed()), [(invoice.name, "SalesInvoice")])


@tagged("post_install", "-at_install")
class TestSaleQuoteRateTable(QtcTaxSaleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.table = cls._qtc_make_illinois_rate_table()

    def setUp(self):
        super().setUp()
        self.backend.state = "disabled"

    @responses.activate
    def test_rate_table_quotes_an_order_without_http(self):
        order = self.make_order()
        self.assertEqual(order.tax_backend_id, self.table)
        order.action_tax_quote()
        self.assertEqual(order.tax_state, "quoted")
        self.assertAlmostEqual(order.amount_tax, 136.79, places=2)
        self.assertEqual(
            self.order_tax_groups(order),
            {
                name.replace("AvaTax", "Rate table"): amount
                for name, amount in CHICAGO_TAXES.items()
            },
        )
        self.assertEqual(len(responses.calls), 0)

    def test_place_without_a_rate_is_rejected_naming_the_address(self):
        self.customer.state_id = self.env.ref("base.state_us_5")  # California
        order = self.make_order([self.workshop])
        with self.assertRaises(UserError) as caught:
            order.action_tax_quote()
        self.assertIn("ship_to", str(caught.exception))
        self.assertEqual(order.tax_state, "none")
