"""Shared set-up of the PSA connector's Odoo tests.

A confirmed sale order for a service invoiced on timesheets (which creates the
project and its task, as sale_timesheet does), employees with work emails, and
the PSA project and task references mapped through the shared value maps.
"""

import json

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.qtc_connector_base.tests.common import QtcTestMixin

from .. import const
from ..lib import work_item as wi

PROJECT_REF = "PRJ-42"
TASK_REF = "design"
ADA = "ada@example.com"


class PsaSetupMixin:
    @classmethod
    def _psa_setup(cls):
        env = cls.env
        # These tests are about the PSA connector alone: when other connectors
        # are installed in the same database, their demo backends (a tax engine
        # quoting every posted invoice, say) are switched off for the test.
        env["qtc.backend"].search(
            [("provider", "not in", (const.PROVIDER_PUSH, const.PROVIDER_HARVEST))]
        ).write({"state": "disabled"})
        cls.uom_hour = env.ref("uom.product_uom_hour")
        cls.product_time = env["product.product"].create(
            {
                "name": "Consulting (timesheets)",
                "type": "service",
                "invoice_policy": "delivery",
                "service_type": "timesheet",
                "service_tracking": "task_in_project",
                "list_price": 100.0,
                "uom_id": cls.uom_hour.id,
                "uom_po_id": cls.uom_hour.id,
                "taxes_id": [(6, 0, [])],
            }
        )
        cls.product_milestone = env["product.product"].create(
            {
                "name": "Go-live milestone",
                "type": "service",
                "invoice_policy": "delivery",
                "service_type": "manual",
                "list_price": 5000.0,
                "taxes_id": [(6, 0, [])],
            }
        )
        cls.product_expense = env["product.product"].create(
            {
                "name": "Travel (re-invoiced at cost)",
                "type": "service",
                "invoice_policy": "delivery",
                "expense_policy": "cost",
                "list_price": 0.0,
                "taxes_id": [(6, 0, [])],
            }
        )
        cls.customer = env["res.partner"].create({"name": "Northwind Traders"})
        cls.employee_ada = env["hr.employee"].create(
            {"name": "Ada Lovelace", "work_email": ADA}
        )
        cls.employee_grace = env["hr.employee"].create(
            {"name": "Grace Hopper", "work_email": "grace@example.com"}
        )
        cls.order = env["sale.order"].create(
            {
                "partner_id": cls.customer.id,
                "order_line": [
                    (0, 0, {"product_id": cls.product_time.id, "product_uom_qty": 40}),
                    (
                        0,
                        0,
                        {"product_id": cls.product_milestone.id, "product_uom_qty": 1},
                    ),
                ],
            }
        )
        cls.order.action_confirm()
        cls.time_line, cls.milestone_line = cls.order.order_line
        cls.project = cls.time_line.project_id
        cls.task = cls.time_line.task_id
        maps = env["qtc.value.map.line"]
        maps.create(
            {
                "map_id": env.ref("qtc_psa_timesheets.qtc_value_map_psa_project").id,
                "external_value": PROJECT_REF,
                "res_id": cls.project.id,
            }
        )
        maps.create(
            {
                "map_id": env.ref("qtc_psa_timesheets.qtc_value_map_psa_task").id,
                "external_value": TASK_REF,
                "res_id": cls.task.id,
            }
        )
        maps.create(
            {
                "map_id": env.ref("qtc_psa_timesheets.qtc_value_map_psa_milestone").id,
                "external_value": "GO-LIVE",
                "res_id": cls.milestone_line.id,
            }
        )

    @staticmethod
    def time_item(**values):
        """A valid approved, billable time item (overrides in ``values``)."""
        item = {
            "external_id": "TE-1",
            "version": 1,
            "kind": "time",
            "project_ref": PROJECT_REF,
            "task_ref": TASK_REF,
            "employee_email": ADA,
            "date": "2026-03-02",
            "hours": "7.5",
            "description": "Workshop",
            "billable": True,
            "approved_at": "2026-03-03T09:00:00Z",
            "status": "approved",
        }
        item.update(values)
        return {key: value for key, value in item.items() if value is not None}


class PsaCase(QtcTestMixin, PsaSetupMixin, AccountTestInvoicingCommon):
    @classmethod
    def get_default_groups(cls):
        # The accounting test user also configures connectors and sells services.
        return (
            super().get_default_groups()
            | cls.env.ref("qtc_connector_base.group_qtc_manager")
            | cls.env.ref("sales_team.group_sale_manager")
            | cls.env.ref("project.group_project_manager")
            | cls.env.ref("hr_timesheet.group_timesheet_manager")
            | cls.env.ref("hr.group_hr_user")
        )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend = cls._qtc_make_backend(provider="psa_push")
        cls._psa_setup()

    def push(self, *items, backend=None):
        """Store items as the push API does, then run the jobs.

        :returns: the per-item answers
        """
        backend = backend or self.backend
        answers = backend._psa_store_items(wi.validate_batch(list(items)))
        self.run_jobs()
        return answers

    def item_record(self, external_id="TE-1"):
        return self.env["qtc.psa.item"].search(
            [("backend_id", "=", self.backend.id), ("external_id", "=", external_id)]
        )

    def last_exception(self):
        return self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id)], order="id desc", limit=1
        )

    @staticmethod
    def payload(event):
        return json.loads(event.payload)
