"""The quote-to-cash fact view: one row per engagement with its figures from
won to cash, and a column list that BI tools can rely on."""

from datetime import timedelta

from odoo import Command, fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import AssuranceCase

# The published contract (README, "Quote-to-cash fact view"): a column may be
# added, never renamed or removed.
FACT_COLUMNS = {
    "id",
    "order_id",
    "company_id",
    "partner_id",
    "user_id",
    "currency_id",
    "state",
    "won_date",
    "won_amount",
    "ordered_amount",
    "delivered_amount",
    "invoiced_amount",
    "to_invoice_amount",
    "invoiced_total",
    "paid_amount",
    "outstanding_amount",
    "first_invoice_date",
    "paid_date",
    "days_to_cash",
    "source_systems",
    "source_names",
}


@tagged("post_install", "-at_install")
class TestQuoteToCashFact(AssuranceCase):
    def fact(self, order):
        facts = self.env["qtc.q2c.fact"]
        facts.invalidate_model()  # a view: read it again after each change
        return facts.search([("order_id", "=", order.id)])

    def test_the_view_keeps_its_published_columns(self):
        self.env.cr.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'qtc_q2c_fact'"
        )
        columns = {name for (name,) in self.env.cr.fetchall()}
        self.assertLessEqual(FACT_COLUMNS, columns)

    def test_an_engagement_from_won_to_cash(self):
        order = self.order((self.product_manual, 2))
        won_on = fields.Datetime.now() - timedelta(days=10)
        order.date_order = won_on
        # A change order after the win: ordered grows, won does not. (The
        # test is one transaction, where every record gets the same creation
        # time: the line's is moved to the day after the win, when it came.)
        order.order_line = [
            Command.create({"product_id": self.product_fixed.id, "product_uom_qty": 1})
        ]
        change = order.order_line.filtered(
            lambda line: line.product_id == self.product_fixed
        )
        change.flush_recordset()
        self.env.cr.execute(
            "UPDATE sale_order_line SET create_date = create_date + interval '1 day' "
            "WHERE id = %s",
            [change.id],
        )
        self.env["qtc.binding"]._qtc_bind(self.backend, "Opportunity", "006A", order)
        fact = self.fact(order)
        self.assertEqual(fact.won_date, won_on.date())
        self.assertEqual((fact.won_amount, fact.ordered_amount), (2000.0, 2500.0))
        self.assertEqual(fact.delivered_amount, 0.0)
        self.assertEqual(fact.to_invoice_amount, 500.0, "the fixed price")
        self.assertFalse(fact.paid_date)
        self.assertEqual(fact.source_systems, "none")
        self.assertEqual(fact.source_names, self.backend.name)

        order.order_line.filtered(
            lambda line: line.product_id == self.product_manual
        ).qty_delivered = 1
        invoice = order._create_invoices()
        invoice.action_post()
        fact = self.fact(order)
        self.assertEqual(fact.delivered_amount, 1000.0)
        self.assertEqual(fact.invoiced_amount, 1500.0)
        self.assertEqual(fact.invoiced_total, 1500.0)
        self.assertEqual(fact.outstanding_amount, 1500.0)
        self.assertEqual(fact.first_invoice_date, invoice.invoice_date)

        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"amount": 600.0})._create_payments()
        fact = self.fact(order)
        self.assertEqual((fact.paid_amount, fact.outstanding_amount), (600.0, 900.0))
        self.assertFalse(fact.days_to_cash, "not settled yet")

        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        fact = self.fact(order)
        self.assertEqual((fact.paid_amount, fact.outstanding_amount), (1500.0, 0.0))
        self.assertEqual(fact.paid_date, fields.Date.today())
        self.assertEqual(fact.days_to_cash, 10)

    def test_quotations_are_not_engagements(self):
        quotation = self.order((self.product_manual, 1), confirm=False)
        self.assertFalse(self.fact(quotation))

    def test_finance_reads_the_facts_of_its_company_only(self):
        order = self.order((self.product_manual, 1))
        finance = new_test_user(
            self.env,
            "fact_finance",
            groups="qtc_connector_base.group_qtc_user",
            company_id=self.env.company.id,
            company_ids=[Command.set(self.env.company.ids)],
        )
        facts = self.env["qtc.q2c.fact"].with_user(finance)
        self.assertEqual(facts.search([("order_id", "=", order.id)]).order_id, order)
        self.assertFalse(
            facts.search([("company_id", "!=", self.env.company.id)]),
            "other companies' engagements are hidden",
        )
        clerk = new_test_user(self.env, "fact_clerk", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["qtc.q2c.fact"].with_user(clerk).search([])
