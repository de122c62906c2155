"""A salesman without any QTC group quotes taxes: it works, or fails with a
clear message that names no credential."""

import requests
import responses
from lxml import etree

from odoo import Command
from odoo.addons.qtc_tax.tests.common import avatax_error
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged

from .test_sale_quote import QtcTaxSaleCase

LICENSE_KEY = "LICENSE-KEY-0123456789"
ACCOUNT_ID = "1100012345"


@tagged("post_install", "-at_install")
class TestSaleQuoteAccess(QtcTaxSaleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = new_test_user(
            cls.env,
            login="qtc_tax_salesman",
            groups="sales_team.group_sale_salesman",
            company_id=cls.env.company.id,
        )
        # The set-up's license key: what must never reach the salesman.
        assert cls.backend._qtc_get_secret("avatax_license_key") == LICENSE_KEY

    def test_salesman_has_no_connector_rights(self):
        # The premise of this class: nothing below works by a group it has.
        self.assertFalse(
            self.salesman.has_group("qtc_connector_base.group_qtc_user")
            or self.salesman.has_group("account.group_account_invoice")
        )
        with self.assertRaises(AccessError):
            self.backend.with_user(self.salesman).read(["name"])

    def test_salesman_form_shows_the_engine_without_links_they_cannot_open(self):
        def form_fields(user, name):
            views = self.env["sale.order"].with_user(user).get_views([(False, "form")])
            arch = etree.fromstring(views["views"]["form"]["arch"])
            return arch.xpath(f"//field[@name='{name}']")

        # The salesman sees the engine, read-only and not as a link to a
        # backend, and no link to finance's exception queue.
        [engine] = form_fields(self.salesman, "tax_backend_id")
        self.assertEqual(engine.get("readonly"), "1")
        self.assertIn("no_open", engine.get("options"))
        self.assertFalse(form_fields(self.salesman, "tax_exception_id"))
        # A QTC user chooses the engine and opens the exception.
        [engine] = form_fields(self.env.user, "tax_backend_id")
        self.assertNotEqual(engine.get("readonly"), "1")
        self.assertTrue(form_fields(self.env.user, "tax_exception_id"))

    def salesman_order(self, products=None):
        """An order the salesman makes in the form (onchanges as in the UI)."""
        with Form(self.env["sale.order"].with_user(self.salesman)) as form:
            form.partner_id = self.customer
            for product in products or [self.workshop, self.manual, self.consulting]:
                with form.order_line.new() as line:
                    line.product_id = product
                    line.price_unit = product.lst_price
        return form.record

    @responses.activate
    def test_salesman_quotes_an_order(self):
        self.fake.register()
        order = self.salesman_order()
        self.assertEqual(order.env.user, self.salesman)
        self.assertEqual(order.tax_backend_id.id, self.backend.id)
        self.assertIs(order.action_tax_quote(), True)
        self.assertEqual(order.tax_state, "quoted")
        self.assertAlmostEqual(order.amount_tax, 136.79, places=2)
        self.assertEqual(len(order.order_line[0].tax_id), 4)
        # The form reads back, engine name included, without connector rights.
        [values] = order.web_read(
            {
                "tax_backend_id": {"fields": {"display_name": {}}},
                "tax_state": {},
                "tax_engine_total": {},
                "tax_totals": {},
            }
        )
        self.assertEqual(values["tax_backend_id"]["display_name"], "AvaTax test")
        self.assertAlmostEqual(values["tax_totals"]["tax_amount_currency"], 136.79, 2)

    @responses.activate
    def test_salesman_outage_under_hold_is_queued_and_quoted_later(self):
        self.fake.register()
        self.fake.fail = lambda body: requests.exceptions.ConnectTimeout("asleep")
        order = self.salesman_order([self.workshop])
        action = order.action_tax_quote()
        self.assertEqual(action["params"]["type"], "warning")
        self.assertEqual(order.tax_state, "pending")
        exception = order.tax_exception_id.sudo()
        self.assertEqual((exception.category, exception.state), ("tax", "open"))
        [job] = self.quote_jobs(order, "pending")
        # The job runs as the salesman who asked for the quote.
        self.assertEqual(job.user_id, self.salesman)
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(job.state, "done", job.result)
        self.assertEqual(order.tax_state, "quoted")
        self.assertEqual(exception.state, "resolved")
        self.assertAlmostEqual(order.amount_tax, 126.54, places=2)

    @responses.activate
    def test_salesman_rejection_names_fields_not_credentials(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode"
        )
        order = self.salesman_order([self.workshop])
        with self.assertRaises(UserError) as caught:
            order.action_tax_quote()
        text = str(caught.exception) + " ".join(caught.exception.problems)
        self.assertIn("ZIP of the delivery address", text)
        self.assertNotIn(LICENSE_KEY, text)
        self.assertNotIn(ACCOUNT_ID, text)

    @responses.activate
    def test_salesman_unconfigured_backend_fails_clearly(self):
        self.fake.register()
        self.env["qtc.credential"].sudo().search(
            [("backend_id", "=", self.backend.id), ("key", "=", "avatax_license_key")]
        ).unlink()
        self.backend.avatax_account_id = ACCOUNT_ID
        order = self.salesman_order([self.workshop])
        with self.assertRaises(UserError) as caught:
            order.action_tax_quote()
        error = caught.exception
        self.assertEqual(error.category, "configuration")
        self.assertIn("AvaTax license key", " ".join(error.problems))
        self.assertNotIn(ACCOUNT_ID, str(error) + " ".join(error.problems))
        self.assertEqual(self.fake.creates, [])
        self.assertEqual(order.tax_state, "none")

    def test_salesman_moves_an_order_to_another_company(self):
        """The engine follows the order's company, read on the salesman's
        behalf (the salesman cannot read backends)."""
        other = self.setup_other_company(name="QTC Tax other company")["company"]
        other_backend = self._qtc_make_backend(
            name="Rate table other",
            provider="tax_rate_table",
            company_id=other.id,
            tax_rate_missing="zero",
            tax_rate_ids=[
                Command.create(
                    {
                        "country_id": self.env.ref("base.us").id,
                        "name": "US",
                        "jurisdiction_type": "Country",
                        "rate": 1.0,
                    }
                )
            ],
        )
        self.salesman.write(
            {"company_ids": [Command.link(other.id)], "company_id": other.id}
        )
        order = (
            self.env["sale.order"]
            .with_user(self.salesman)
            .with_context(allowed_company_ids=[self.env.company.id, other.id])
            .create(
                {
                    "partner_id": self.customer.id,
                    "company_id": self.env.company.id,
                }
            )
        )
        self.assertEqual(order.tax_backend_id.id, self.backend.id)
        order.company_id = other
        self.assertEqual(order.tax_backend_id.id, other_backend.id)
