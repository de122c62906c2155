"""What a salesperson reads when *Quote taxes* on an order refuses: every
problem and what to do, in the warning dialog (pressed over HTTP as the web
client does). An engine outage is a notification, not an error (see
``test_sale_quote``); confirming an order asks the engine nothing.
"""

import responses

from odoo.addons.qtc_connector_base.tests.common import QtcButtonMixin
from odoo.addons.qtc_tax.tests.common import avatax_error
from odoo.tests import HttpCase, new_test_user, tagged

from .test_sale_quote import QtcTaxSaleCase


@tagged("post_install", "-at_install")
class TestSalePersonErrors(QtcButtonMixin, QtcTaxSaleCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.company
        new_test_user(
            cls.env,
            "qtc_tax_sale_pe_seller",
            groups="base.group_user,sales_team.group_sale_salesman_all_leads",
            company_id=company.id,
            company_ids=[company.id],
        )

    def press_quote(self, order):
        return self.press_button(
            order, "action_tax_quote", login="qtc_tax_sale_pe_seller"
        )

    @responses.activate
    def test_quote_without_customer_country_says_what_to_fix(self):
        self.fake.register()
        self.customer.country_id = False
        order = self.make_order()
        error, _result = self.press_quote(order)
        text = self.assert_person_error(
            error,
            ["ship_to.country: partner_a has no country."],
            "Complete the data named above, then try again.",
        )
        self.assertIn(order.display_name, text.splitlines()[0])
        self.assertEqual(self.fake.creates, [])

    @responses.activate
    def test_engine_rejection_names_the_fields_in_odoo_words(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode"
        )
        order = self.make_order()
        error, _result = self.press_quote(order)
        self.assert_person_error(
            error,
            ["ship_to.postal_code: ZIP of the delivery address of partner_a"],
            "Correct the fields named above",
        )
