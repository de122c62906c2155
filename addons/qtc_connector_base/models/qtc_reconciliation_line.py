from odoo import api, fields, models

from ..lib import reconcile
from .qtc_reconciliation_run import DIFFERENCE_LABELS


class QtcReconciliationLine(models.Model):
    """One difference a reconciliation found: both sides in words, the Odoo
    record when there is one, and the exception a person works."""

    _name = "qtc.reconciliation.line"
    _description = "QTC Reconciliation Difference"
    _order = "run_id desc, key"
    _rec_name = "key"

    run_id = fields.Many2one(
        "qtc.reconciliation.run",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    company_id = fields.Many2one(related="run_id.company_id", store=True)
    key = fields.Char(string="Reference", readonly=True, index=True)
    difference = fields.Selection(
        [(kind, DIFFERENCE_LABELS[kind]) for kind in reconcile.DIFFERENCE_KINDS],
        readonly=True,
    )
    day = fields.Date(string="Date", readonly=True, index=True)
    external_label = fields.Char(string="External side", readonly=True)
    odoo_label = fields.Char(string="Odoo side", readonly=True)
    external_amount = fields.Float(readonly=True)
    odoo_amount = fields.Float(readonly=True)
    res_model = fields.Char(string="Record model", readonly=True)
    res_id = fields.Many2oneReference(
        model_field="res_model", string="Record id", readonly=True
    )
    record_ref = fields.Reference(
        selection="_selection_models", compute="_compute_record_ref", string="Record"
    )
    exception_id = fields.Many2one(
        "qtc.exception", readonly=True, index=True, ondelete="set null"
    )
    exception_state = fields.Selection(related="exception_id.state")

    @api.model
    def _selection_models(self):
        return [(m.model, m.name) for m in self.env["ir.model"].sudo().search([])]

    @api.depends("res_model", "res_id")
    def _compute_record_ref(self):
        for line in self:
            ok = line.res_model in self.env and line.res_id
            line.record_ref = f"{line.res_model},{line.res_id}" if ok else False
