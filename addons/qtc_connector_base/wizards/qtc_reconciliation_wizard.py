from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..access import GROUP_USER, check_action


def _kind_selection(wizard):
    return wizard.env["qtc.reconciliation.run"]._fields["kind"].selection


class QtcReconciliationWizard(models.TransientModel):
    """Run a reconciliation now, over any window (QTC User)."""

    _name = "qtc.reconciliation.wizard"
    _description = "Run a QTC reconciliation"

    backend_id = fields.Many2one(
        "qtc.backend", required=True, domain=[("state", "=", "active")]
    )
    kind = fields.Selection(_kind_selection, string="Reconciliation", required=True)
    available_kinds = fields.Char(compute="_compute_available_kinds")
    date_from = fields.Date(
        string="From",
        required=True,
        default=lambda self: fields.Date.context_today(self) - timedelta(days=7),
    )
    date_to = fields.Date(
        string="To",
        required=True,
        default=lambda self: fields.Date.context_today(self) - timedelta(days=1),
    )

    @api.depends("backend_id")
    def _compute_available_kinds(self):
        runs = self.env["qtc.reconciliation.run"]
        labels = dict(_kind_selection(self))
        for wizard in self:
            kinds = runs._qtc_kinds_for(wizard.backend_id) if wizard.backend_id else []
            wizard.available_kinds = ", ".join(labels[kind] for kind, _days in kinds)

    @api.onchange("backend_id")
    def _onchange_backend_id(self):
        kinds = (
            self.env["qtc.reconciliation.run"]._qtc_kinds_for(self.backend_id)
            if self.backend_id
            else []
        )
        if kinds and self.kind not in dict(kinds):
            self.kind = kinds[0][0]

    def action_run(self):
        """Queue the run and open it."""
        self.ensure_one()
        check_action(self.backend_id, GROUP_USER, "read", _("run a reconciliation"))
        if self.backend_id.state != "active":
            raise UserError(_("Only an active backend can be reconciled."))
        run = self.env["qtc.reconciliation.run"]._qtc_request(
            self.backend_id, self.kind, self.date_from, self.date_to
        )
        return run._qtc_action_open()
