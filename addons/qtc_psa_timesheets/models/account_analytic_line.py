from odoo import fields, models


class AccountAnalyticLine(models.Model):
    # Timesheets and re-invoiced costs come from PSA work items: traceable.
    _name = "account.analytic.line"
    _inherit = ["account.analytic.line", "qtc.trace.mixin"]

    psa_item_id = fields.Many2one(
        "qtc.psa.item",
        string="PSA work item",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        help="The PSA work item this timesheet or re-invoiced cost was imported from.",
    )
