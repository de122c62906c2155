"""Shared set-up of the sales-and-invoicing revenue assurance tests: services
that create projects, a customer, and helpers to measure one check."""

from odoo import Command, fields
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.qtc_connector_base.tests.common import QtcTestMixin
from odoo.tests import new_test_user


class AssuranceCase(QtcTestMixin, AccountTestInvoicingCommon):
    @classmethod
    def get_default_groups(cls):
        return (
            super().get_default_groups()
            | cls.env.ref("qtc_connector_base.group_qtc_manager")
            | cls.env.ref("sales_team.group_sale_manager")
            | cls.env.ref("project.group_project_manager")
        )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        # Only this company's own records: other connectors' demo backends (a
        # tax engine quoting every invoice) stay out of the way.
        env["qtc.backend"].search([]).write({"state": "disabled"})
        cls.backend = cls._qtc_make_backend(name="CRM of the tests")
        # The provider-less test CRM binds its opportunities to orders, as a
        # CRM connector declares it.
        cls.declare_test_binding_models(
            {**cls.TEST_BINDING_MODELS, "Opportunity": ("sale.order",)}
        )
        cls.owner = new_test_user(
            env, "assurance_sale_owner", groups="qtc_connector_base.group_qtc_user"
        )
        product = env["product.product"]
        cls.product_manual = product.create(
            {
                "name": "Advisory (delivered by hand)",
                "type": "service",
                "invoice_policy": "delivery",
                "service_type": "manual",
                "service_tracking": "project_only",
                "list_price": 1000.0,
                "taxes_id": [Command.clear()],
            }
        )
        cls.product_fixed = product.create(
            {
                "name": "Setup (fixed price, billed on order)",
                "type": "service",
                "invoice_policy": "order",
                "service_tracking": "project_only",
                "list_price": 500.0,
                "taxes_id": [Command.clear()],
            }
        )
        cls.customer = env["res.partner"].create({"name": "Contoso Consulting"})

    def check(self, code, **values):
        """The company's check of ``code``, owned by the test user, counting
        from the first hour unless told otherwise."""
        checks = self.env["qtc.assurance.check"]
        check = checks.search(
            [("code", "=", code), ("company_id", "=", self.env.company.id)]
        ) or checks.create(
            {"name": code, "code": code, "company_id": self.env.company.id}
        )
        check.write(
            {
                "grace_hours": 0,
                "threshold": 0,
                "threshold_measure": "count",
                "owner_user_id": self.owner.id,
                "owner_group_id": False,
                **values,
            }
        )
        return check

    def measure(self, check, hours_later=1):
        now = fields.Datetime.add(fields.Datetime.now(), hours=hours_later)
        check._qtc_assurance_compute(now=now)
        return check

    def counted(self, check):
        return self.env[check.res_model].browse(check.snapshot_id.res_ids)

    def order(self, *lines, confirm=True):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [
                    Command.create(
                        {"product_id": product.id, "product_uom_qty": quantity}
                    )
                    for product, quantity in lines
                ],
            }
        )
        if confirm:
            order.action_confirm()
        return order

    def breach_exceptions(self, check):
        return self.env["qtc.exception"].search(
            [("res_model", "=", check._name), ("res_id", "=", check.id)]
        )
