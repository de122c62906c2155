from odoo.addons.qtc_connector_base.tests.common import QtcTraceAssertions
from odoo.tests import tagged

from .common import PsaCase


@tagged("post_install", "-at_install")
class TestPsaTrace(QtcTraceAssertions, PsaCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance, cls.manager = cls.make_trace_users(
            "psa_trace",
            "hr_timesheet.group_hr_timesheet_approver,"
            "sales_team.group_sale_salesman_all_leads,account.group_account_invoice",
            company=cls.company_data["company"],
        )

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

    def events(self, external_id):
        return self.env["qtc.event"].search(
            [("backend_id", "=", self.backend.id), ("external_id", "like", external_id)]
        )

    def test_timesheet_order_and_invoice_have_one_trace_entry_and_button(self):
        for model_name in ("account.analytic.line", "sale.order", "account.move"):
            with self.subTest(model=model_name):
                self.assert_trace_ui_once(model_name)

    def test_timesheet_traces_back_to_its_pushed_item(self):
        self.push(self.time_item())
        timesheet = self.item_record().analytic_line_id
        self.assertTrue(timesheet)
        event = self.events("TE-1")
        self.assertEqual(len(event), 1)
        steps = self.assert_trace_access(timesheet, self.finance, self.manager)
        self.assertEqual([s.kind for s in steps], ["event", "job", "change", "change"])
        self.assertEqual(steps[0].event_id, event)
        # The push is applied in batches: the job row is the batch job's.
        self.assertEqual(steps[1].job_id, steps[2].job_id)
        self.assertEqual(steps[1].state, "done")
        # What the job did: the timesheet, and the PSA item that records it.
        self.assertEqual(
            {(c.res_model, c.res_id, c.operation) for c in steps[2:]},
            {
                ("account.analytic.line", timesheet.id, "created"),
                ("qtc.psa.item", self.item_record().id, "created"),
            },
        )

    def test_order_trace_includes_milestones_delivered_on_its_lines(self):
        self.push(self.milestone_item())
        self.push(self.milestone_item(version=2, status="withdrawn"))
        self.assertEqual(self.milestone_line.qty_delivered, 0.0)
        steps = self.assert_trace_access(self.order, self.finance, self.manager)
        changes = steps.filtered(lambda s: s.kind == "change")
        # Each flow also shows the PSA item it recorded; on the order's side,
        # only the milestone line changed.
        self.assertEqual(
            set(changes.mapped("res_model")), {"sale.order.line", "qtc.psa.item"}
        )
        on_lines = changes.filtered(lambda c: c.res_model == "sale.order.line")
        self.assertEqual(set(on_lines.mapped("res_id")), {self.milestone_line.id})
        self.assertEqual(on_lines.mapped("operation"), ["updated", "reversed"])
        # Two pushes, two flows, in the order they were applied.
        events = steps.filtered(lambda s: s.kind == "event")
        self.assertEqual(len(events), 2)
        self.assertLess(events[0].event_id.id, events[1].event_id.id)
        self.assertEqual(
            self.order.with_user(self.finance).qtc_trace_count, len(on_lines)
        )
