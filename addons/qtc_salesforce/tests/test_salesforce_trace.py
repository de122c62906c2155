from odoo.addons.qtc_connector_base.tests.common import QtcTraceAssertions
from odoo.tests import tagged

from .common import SalesforceCase, acme_record


@tagged("post_install", "-at_install")
class TestSalesforceTrace(QtcTraceAssertions, SalesforceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance, cls.seller = cls.make_trace_users(
            "sf_trace",
            "sales_team.group_sale_salesman_all_leads,project.group_project_user",
        )

    def setUp(self):
        super().setUp()
        # Write-back has its own tests; here it would only call out.
        self.backend.salesforce_writeback_enabled = False

    def test_partner_order_and_project_have_one_trace_entry_and_button(self):
        for model_name in ("res.partner", "sale.order", "project.project"):
            with self.subTest(model=model_name):
                self.assert_trace_ui_once(model_name)

    def test_customer_order_and_project_trace_back_to_the_opportunity(self):
        event = self.store_sync_event(acme_record())
        self.run_jobs()
        self.assertEqual(event.state, "done", event.error_message)
        order = self.order_of()
        partner = order.partner_id
        project = order.project_ids
        self.assertEqual(len(project), 1)

        order_steps = self.assert_trace_access(order, self.finance, self.seller)
        self.assertEqual(
            [(s.kind, s.event_id) for s in order_steps[:2]],
            [("event", event), ("job", event)],
        )
        self.assertEqual(
            set(order_steps.mapped("correlation_id")), {event.correlation_id}
        )
        changes = order_steps.filtered(lambda s: s.kind == "change")
        done = {(c.res_model, c.operation) for c in changes}
        # The order's own lines belong to its trace.
        for expected in (
            ("res.partner", "created"),
            ("sale.order", "created"),
            ("sale.order.line", "created"),
            ("sale.order", "updated"),
            ("project.project", "created"),
        ):
            self.assertIn(expected, done)
        # Each change comes after the job that made it.
        job_position = list(order_steps).index(order_steps.filtered("job_id")[0])
        for change in changes:
            self.assertGreater(list(order_steps).index(change), job_position)

        for record in (partner, project):
            with self.subTest(record=record._name):
                steps = self.assert_trace_access(record, self.finance, self.seller)
                self.assertEqual(
                    steps.filtered(lambda s: s.kind == "event").event_id, event
                )
        produced = {(t.res_model, t.res_id) for t in event.produced_trace_ids}
        self.assertIn(("sale.order", order.id), produced)
        self.assertIn(("project.project", project.id), produced)
