"""Leaks built on purpose in Odoo's own orders, projects and invoices: each
check finds exactly those records, its breach opens one exception and one
activity, and the fix closes it."""

from datetime import timedelta

from odoo import Command, fields
from odoo.tests import tagged

from .common import AssuranceCase


@tagged("post_install", "-at_install")
class TestSaleChecks(AssuranceCase):
    def test_project_without_billing_plan_is_found_and_resolved_by_a_milestone(self):
        leaking = self.order((self.product_manual, 2))
        billed = self.order((self.product_fixed, 1))
        project = leaking.order_line.project_id
        self.assertTrue(project and billed.order_line.project_id)
        check = self.measure(self.check("project_no_billing_plan"))
        self.assertEqual(self.counted(check), project)
        self.assertEqual(check.last_amount, 2000.0)
        exception = self.breach_exceptions(check)
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.activity_ids.user_id, self.owner)
        self.env["project.milestone"].create(
            {"name": "Go-live", "project_id": project.id}
        )
        self.measure(check, hours_later=2)
        self.assertFalse(check.last_count)
        self.assertEqual(exception.state, "resolved")
        self.assertFalse(exception.activity_ids)

    def test_failed_project_creation_is_found_and_resolved_once_created(self):
        order = self.order((self.product_manual, 1))
        line = order.order_line
        project = line.project_id
        line.project_id = False
        project.sale_line_id = False
        check = self.measure(self.check("project_creation_failed"))
        self.assertEqual(self.counted(check), order)
        self.assertEqual(check.last_amount, 1000.0)
        self.assertEqual(len(self.breach_exceptions(check)), 1)
        line._timesheet_service_generation()
        self.assertTrue(line.project_id)
        self.measure(check, hours_later=2)
        self.assertEqual(check.state, "ok")
        self.assertEqual(self.breach_exceptions(check).state, "resolved")

    def test_order_waiting_for_an_invoice_until_it_is_invoiced(self):
        order = self.order((self.product_manual, 3))
        self.order((self.product_manual, 1))  # nothing delivered: nothing to bill
        order.order_line.qty_delivered = 2
        self.assertEqual(order.invoice_status, "to invoice")
        check = self.measure(self.check("order_waiting_invoice"))
        self.assertEqual(self.counted(check), order)
        self.assertEqual(check.last_amount, 2000.0)
        order._create_invoices()
        self.measure(check, hours_later=2)
        self.assertFalse(check.last_count)
        self.assertEqual(self.breach_exceptions(check).state, "resolved")

    def test_invoice_stuck_in_draft_after_the_grace_period(self):
        invoice = self.init_invoice("out_invoice", amounts=[120.0], taxes=[])
        self.init_invoice("out_invoice", amounts=[80.0], taxes=[], post=True)
        check = self.check("invoice_draft_stuck", grace_hours=2)
        self.measure(check, hours_later=1)
        self.assertFalse(check.last_count, "still within the grace period")
        self.measure(check, hours_later=3)
        self.assertEqual(self.counted(check), invoice)
        self.assertEqual(check.last_amount, 120.0)
        self.assertEqual(len(self.breach_exceptions(check).activity_ids), 1)
        invoice.action_post()
        self.measure(check, hours_later=4)
        self.assertEqual(check.state, "ok")

    def test_invoice_to_cash_service_level_counts_paid_invoices(self):
        invoice = self.init_invoice(
            "out_invoice",
            amounts=[100.0],
            taxes=[],
            invoice_date=fields.Date.today() - timedelta(days=5),
            post=True,
        )
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        self.assertEqual(invoice.payment_state, "paid")
        sla = self.env["qtc.flow.sla"].create(
            {
                "name": "Invoice to cash",
                "flow": "invoice_to_paid",
                "target_hours": 24,
                "company_id": self.env.company.id,
                "owner_user_id": self.owner.id,
            }
        )
        sla._qtc_sla_compute()
        self.assertEqual(sla.last_count, 1)
        self.assertGreaterEqual(sla.last_p50_hours, 120.0)
        self.assertLess(sla.last_p50_hours, 144.0)
        self.assertEqual(sla.slow_res_ids, invoice.ids)
        self.assertEqual(sla.state, "breach")
        row = sla.snapshot_ids
        self.assertEqual((row.count, row.backend_id.id), (1, False))

    def test_checks_count_their_own_company_only(self):
        other = self.setup_other_company()["company"]
        self.env["account.move"].with_company(other).create(
            {
                "move_type": "out_invoice",
                "partner_id": self.customer.id,
                "company_id": other.id,
                "invoice_line_ids": [
                    Command.create({"name": "Elsewhere", "price_unit": 10.0})
                ],
            }
        )
        check = self.measure(self.check("invoice_draft_stuck"))
        self.assertFalse(check.last_count)
