from odoo import models


class AccountMove(models.Model):
    # Invoices bill the time and milestones PSA pushed; a milestone that cannot
    # be withdrawn opens an exception on its invoice: traceable.
    _name = "account.move"
    _inherit = ["account.move", "qtc.trace.mixin"]
