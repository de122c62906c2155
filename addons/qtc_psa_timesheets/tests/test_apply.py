from datetime import date

from odoo.tests import tagged

from .common import ADA, PsaCase


@tagged("post_install", "-at_install")
class TestPsaApply(PsaCase):
    def timesheets(self):
        return self.env["account.analytic.line"].search(
            [("psa_item_id.backend_id", "=", self.backend.id)]
        )

    # ------------------------------------------------------------- failures

    def test_unknown_employee_names_the_email(self):
        self.push(self.time_item(employee_email="nobody@example.com"))
        exception = self.last_exception()
        self.assertEqual(exception.category, "unknown_record")
        self.assertIn("nobody@example.com", exception.name)
        self.assertEqual(
            (exception.external_type, exception.external_id),
            ("psa.employee", "nobody@example.com"),
        )
        self.assertEqual(exception.event_id.state, "failed")
        self.assertFalse(self.timesheets())
        self.assertFalse(self.item_record())

    def test_unknown_project_can_be_linked_and_retried(self):
        self.push(self.time_item(project_ref="NOPE"))
        exception = self.last_exception()
        self.assertEqual(exception.category, "mapping")
        self.assertIn("'NOPE'", exception.name)
        self.assertEqual(
            (exception.external_type, exception.external_id), ("psa.project", "NOPE")
        )
        self.assertFalse(self.timesheets())
        # A finance user links the PSA project to the Odoo project and retries.
        exception.link_ref = self.project
        exception.action_link()
        self.run_jobs()
        self.assertEqual(self.timesheets().project_id, self.project)
        self.assertEqual(exception.event_id.state, "done")

    def test_lock_date_refuses_item(self):
        self.env.company.sale_lock_date = date(2026, 3, 31)
        self.push(self.time_item())
        exception = self.last_exception()
        self.assertEqual(exception.category, "data")
        self.assertIn("lock date 2026-03-31", exception.name)
        self.assertFalse(self.timesheets())

    def test_lock_date_refuses_withdrawal_of_locked_line(self):
        self.push(self.time_item())
        self.env.company.sale_lock_date = date(2026, 3, 31)
        self.push(self.time_item(version=2, status="withdrawn"))
        self.assertEqual(self.last_exception().category, "data")
        self.assertEqual(self.timesheets().unit_amount, 7.5)

    def test_rate_policy_raise(self):
        self.backend.psa_rate_policy = "raise"
        self.push(self.time_item(rate="150"))
        exception = self.last_exception()
        self.assertEqual(exception.category, "rate")
        self.assertIn("150", exception.name)
        self.assertEqual(exception.record_ref, self.time_line)
        self.assertFalse(self.timesheets())
        self.assertEqual(self.time_line.qty_delivered, 0.0)

    def test_invalid_stored_payload_is_a_data_exception(self):
        event_ids = self.backend._qtc_store_events(
            [
                type(self)._inbound(
                    "bad:1", "work_item.time", '{"external_id": "bad", "kind": "x"}'
                )
            ]
        )
        self.run_jobs()
        event = self.env["qtc.event"].browse(event_ids["bad:1"])
        self.assertEqual(event.state, "failed")
        self.assertEqual(self.last_exception().category, "data")
        self.assertIn("kind: must be one of", self.last_exception().details)

    @staticmethod
    def _inbound(external_id, event_type, payload):
        from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent

        return InboundEvent(external_id, event_type, payload)

    # ----------------------------------------------------------------- time

    def test_time_creates_timesheet_on_task_and_sale_line(self):
        answers = self.push(self.time_item())
        self.assertEqual([a["status"] for a in answers], ["accepted"])
        timesheet = self.timesheets()
        self.assertEqual(len(timesheet), 1)
        self.assertEqual(timesheet.task_id, self.task)
        self.assertEqual(timesheet.project_id, self.project)
        self.assertEqual(timesheet.employee_id, self.employee_ada)
        self.assertEqual(timesheet.so_line, self.time_line)
        self.assertEqual(timesheet.unit_amount, 7.5)
        self.assertEqual(timesheet.date, date(2026, 3, 2))
        self.assertEqual(self.time_line.qty_delivered, 7.5)
        record = self.item_record()
        self.assertEqual(record.analytic_line_id, timesheet)
        self.assertEqual(record.status, "approved")
        binding = self.env["qtc.binding"]._qtc_to_internal(
            self.backend, "psa.work_item", "TE-1"
        )
        self.assertEqual(binding, record)
        traces = self.env["qtc.trace"].search(
            [("res_model", "=", "account.analytic.line"), ("res_id", "=", timesheet.id)]
        )
        self.assertEqual(traces.mapped("operation"), ["created"])
        self.assertEqual(traces.event_id.external_id, "TE-1:1")

    def test_email_matching_is_case_insensitive(self):
        self.push(self.time_item(employee_email=ADA.upper()))
        self.assertEqual(self.timesheets().employee_id, self.employee_ada)

    def test_unmapped_task_books_on_project_sale_line(self):
        self.push(self.time_item(task_ref="unknown-task"))
        timesheet = self.timesheets()
        self.assertFalse(timesheet.task_id)
        self.assertEqual(timesheet.so_line, self.time_line)

    def test_non_billable_recorded_not_billed(self):
        self.push(self.time_item(billable=False))
        timesheet = self.timesheets()
        self.assertEqual(timesheet.unit_amount, 7.5)
        self.assertFalse(timesheet.so_line)
        self.assertEqual(timesheet.timesheet_invoice_type, "non_billable")
        self.assertEqual(self.time_line.qty_delivered, 0.0)
        self.assertFalse(self.item_record().billable)

    def test_duplicate_changes_nothing(self):
        self.push(self.time_item())
        answers = self.push(self.time_item())
        self.assertEqual([a["status"] for a in answers], ["duplicate"])
        # The same delivery applied again (a replay) is a no-op too.
        from ..lib import work_item as wi

        item = wi.validate_work_item(self.time_item())
        result = self.env["qtc.psa.item"]._psa_apply(self.backend, item)
        self.assertEqual(result, "TE-1:1: noop (already applied)")
        self.assertEqual(len(self.timesheets()), 1)
        self.assertEqual(self.time_line.qty_delivered, 7.5)

    def test_correction_before_invoicing_updates_then_withdraws(self):
        self.push(self.time_item())
        timesheet = self.timesheets()
        self.push(self.time_item(version=2, hours="5", description="Fixed"))
        self.assertEqual(self.timesheets(), timesheet)
        self.assertEqual(timesheet.unit_amount, 5.0)
        self.assertEqual(timesheet.name, "Fixed")
        self.assertEqual(self.time_line.qty_delivered, 5.0)
        self.push(self.time_item(version=3, status="withdrawn"))
        self.assertFalse(timesheet.exists())
        self.assertEqual(self.time_line.qty_delivered, 0.0)
        self.assertEqual(self.item_record().status, "withdrawn")
        # A late, older delivery does not bring the withdrawn timesheet back.
        self.push(self.time_item(version=2, hours="6"))
        self.assertFalse(self.timesheets())
        self.assertEqual(self.item_record().version, 3)

    def test_withdrawal_arriving_before_its_approval_wins(self):
        # Out of order: version 2 (withdrawn) first, then version 1 (approved).
        self.push(self.time_item(version=2, status="withdrawn"))
        self.assertEqual(self.item_record().status, "withdrawn")
        self.push(self.time_item())
        self.assertFalse(self.timesheets())
        self.assertEqual(self.time_line.qty_delivered, 0.0)
        self.assertEqual(self.item_record().version, 2)

    def test_early_withdrawal_in_one_batch_then_approval_in_the_next(self):
        # The bulk path (several time items in one request) keeps it too.
        self.push(
            self.time_item(version=2, status="withdrawn"),
            self.time_item(external_id="TE-2", date="2026-03-03"),
        )
        self.push(self.time_item())
        self.assertEqual(self.timesheets().mapped("unit_amount"), [7.5])
        self.assertEqual(self.item_record().status, "withdrawn")

    def test_early_withdrawal_of_a_milestone_then_its_approval(self):
        self.push(self.milestone_item(version=2, status="withdrawn"))
        self.push(self.milestone_item())
        self.assertEqual(self.milestone_line.qty_delivered, 0.0)

    def test_correction_turning_billable_off_and_on(self):
        self.push(self.time_item())
        self.push(self.time_item(version=2, billable=False))
        self.assertFalse(self.timesheets().so_line)
        self.assertEqual(self.time_line.qty_delivered, 0.0)
        self.push(self.time_item(version=3, billable=True))
        self.assertEqual(self.timesheets().so_line, self.time_line)
        self.assertEqual(self.time_line.qty_delivered, 7.5)

    def test_invoice_from_imported_timesheets_matches_hours_times_rate(self):
        self.push(
            self.time_item(),
            self.time_item(external_id="TE-2", hours="2.5", employee_email=None)
            | {"employee_email": "grace@example.com"},
        )
        report = self.env["qtc.psa.unbilled.report"].search(
            [("order_id", "=", self.order.id)]
        )
        self.assertEqual(sorted(report.mapped("amount")), [250.0, 750.0])
        self.assertEqual(report.partner_id, self.customer)
        self.assertEqual(self.time_line.qty_to_invoice, 10.0)
        invoice = self.order._create_invoices()
        self.assertEqual(invoice.amount_untaxed, 1000.0)  # 10 h x 100
        self.assertEqual(self.timesheets().timesheet_invoice_id, invoice)
        self.assertFalse(
            self.env["qtc.psa.unbilled.report"].search(
                [("order_id", "=", self.order.id)]
            )
        )

    def test_correction_after_invoicing_needs_credit_note(self):
        self.push(self.time_item())
        invoice = self.order._create_invoices()
        invoice.action_post()
        self.push(self.time_item(version=2, hours="5"))
        exception = self.last_exception()
        self.assertEqual(exception.category, "credit_note")
        self.assertIn(invoice.name, exception.name)
        self.assertIn("hours: 7.5 -> 5", exception.details)
        self.assertEqual(exception.record_ref, invoice)
        self.assertEqual(self.timesheets().unit_amount, 7.5)
        self.push(self.time_item(version=3, status="withdrawn"))
        self.assertEqual(self.last_exception().category, "credit_note")
        self.assertTrue(self.timesheets().exists())
        # A description-only change is applied without touching the invoice.
        self.push(self.time_item(version=4, description="Workshop (notes)"))
        self.assertEqual(self.timesheets().name, "Workshop (notes)")
        self.assertEqual(self.timesheets().unit_amount, 7.5)

    def test_rate_policy_bill_order_price_flags(self):
        self.push(self.time_item(rate="150"))
        timesheet = self.timesheets()
        self.assertEqual(timesheet.so_line, self.time_line)
        record = self.item_record()
        self.assertTrue(record.rate_mismatch)
        self.assertEqual(record.rate_difference, 375.0)  # 7.5 h x (150 - 100)
        self.assertIn("PSA rate 150", self.order.message_ids[0].body)
        trace = self.env["qtc.trace"].search(
            [("res_model", "=", "account.analytic.line"), ("res_id", "=", timesheet.id)]
        )
        self.assertIn("billed at the order price", trace.note)
        self.assertFalse(self.env["qtc.exception"].search([]).filtered("backend_id"))

    def test_equal_rate_is_not_flagged(self):
        self.push(self.time_item(rate="100.00"))
        self.assertFalse(self.item_record().rate_mismatch)

    # ------------------------------------------------------ milestone/expense

    def milestone_item(self, **values):
        item = self.time_item(
            external_id="MS-1",
            kind="milestone",
            milestone_ref="GO-LIVE",
            task_ref=None,
            employee_email=None,
            hours=None,
        )
        item.update(values)
        return item

    def test_milestone_delivers_the_line_and_withdrawal_takes_it_back(self):
        self.push(self.milestone_item())
        self.assertEqual(self.milestone_line.qty_delivered, 1.0)
        self.push(self.milestone_item(version=2, description="renamed"))
        self.assertEqual(self.milestone_line.qty_delivered, 1.0)
        self.push(self.milestone_item(version=3, status="withdrawn"))
        self.assertEqual(self.milestone_line.qty_delivered, 0.0)

    def test_unmapped_milestone(self):
        self.push(self.milestone_item(milestone_ref="PHASE-9"))
        exception = self.last_exception()
        self.assertEqual(exception.category, "mapping")
        self.assertIn("PHASE-9", exception.name)
        self.assertEqual(self.milestone_line.qty_delivered, 0.0)

    def expense_item(self, **values):
        item = self.time_item(
            external_id="EX-1",
            kind="expense",
            amount="84.20",
            currency=self.order.currency_id.name,
            task_ref=None,
            hours=None,
            description="Train",
        )
        item.update(values)
        return item

    def test_expense_reinvoiced_at_cost(self):
        self.backend.psa_expense_product_id = self.product_expense
        self.push(self.expense_item())
        line = self.item_record("EX-1").sale_line_id
        self.assertEqual(line.order_id, self.order)
        self.assertEqual(line.product_id, self.product_expense)
        self.assertEqual(line.price_unit, 84.2)
        self.assertEqual(line.qty_delivered, 1.0)
        self.push(self.expense_item(version=2, amount="90"))
        self.assertEqual(line.price_unit, 90.0)
        self.assertEqual(line.qty_delivered, 1.0)
        self.push(self.expense_item(version=3, status="withdrawn"))
        self.assertEqual(line.qty_delivered, 0.0)

    def test_expense_without_product_is_a_configuration_exception(self):
        self.push(self.expense_item())
        self.assertEqual(self.last_exception().category, "configuration")

    def test_expense_in_other_currency_refused(self):
        self.backend.psa_expense_product_id = self.product_expense
        other = "USD" if self.order.currency_id.name != "USD" else "EUR"
        self.push(self.expense_item(currency=other))
        exception = self.last_exception()
        self.assertEqual(exception.category, "data")
        self.assertIn(other, exception.name)
