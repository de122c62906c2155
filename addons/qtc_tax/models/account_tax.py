from odoo import fields, models


class AccountTax(models.Model):
    _inherit = "account.tax"

    qtc_engine_key = fields.Char(
        string="Tax engine jurisdiction",
        index=True,
        copy=False,
        readonly=True,
        help="Set on taxes created for a tax engine's jurisdiction rate "
        "(provider|type|jurisdiction|rate); such taxes are reused by later quotes.",
    )
