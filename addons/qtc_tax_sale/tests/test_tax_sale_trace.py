import responses

from odoo.addons.qtc_connector_base.tests.common import QtcTraceAssertions
from odoo.tests import tagged

from .test_sale_quote import QtcTaxSaleCase, timeout


@tagged("post_install", "-at_install")
class TestTaxSaleTrace(QtcTraceAssertions, QtcTaxSaleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance, cls.seller = cls.make_trace_users(
            "tax_sale_trace",
            "sales_team.group_sale_salesman_all_leads",
            company=cls.company_data["company"],
        )

    def test_order_has_one_trace_entry_and_button(self):
        self.assert_trace_ui_once("sale.order")

    @responses.activate
    def test_held_quote_shows_the_requote_job_and_what_it_did(self):
        self.fake.register()
        self.fake.fail = timeout
        order = self.make_order()
        order.action_tax_quote()
        self.assertEqual(order.tax_state, "pending")
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(order.tax_state, "quoted")
        [job] = self.quote_jobs(order)

        steps = self.assert_trace_access(order, self.finance, self.seller)
        self.assertEqual(
            [(s.kind, s.job_id) for s in steps], [("job", job), ("change", job)]
        )
        self.assertEqual(steps[0].state, "done")
        self.assertEqual(
            (steps[1].res_model, steps[1].res_id, steps[1].operation),
            ("sale.order", order.id, "updated"),
        )
        self.assertIn("Taxes quoted", steps[1].note)
        # The change and the exception the outage opened on the order.
        self.assertEqual(order.with_user(self.finance).qtc_trace_count, 2)
