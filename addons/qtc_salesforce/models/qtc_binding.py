from odoo import fields, models


class QtcBinding(models.Model):
    _inherit = "qtc.binding"

    salesforce_writeback_pending = fields.Boolean(
        index=True,
        readonly=True,
        help="Order or invoice status changed: the next write-back job sends it.",
    )
    salesforce_written_hash = fields.Char(
        readonly=True,
        help="Hash of the values last written to Salesforce: the same values "
        "are not sent twice.",
    )
