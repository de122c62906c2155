from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.access import (
    GROUP_MANAGER,
    GROUP_USER,
    check_action,
)
from odoo.exceptions import AccessError

# What the true-up job records; finance users settle and annotate, only QTC
# Managers may change these.
RECORDED_FIELDS = {"move_id", "backend_id", "odoo_tax", "engine_tax"}


class QtcTaxTrueup(models.Model):
    """What the engine would have charged on an invoice posted with Odoo's own
    taxes during an outage (outage policy "fallback"), against what was charged.

    Written by the invoice's true-up job once the engine answers again; a
    difference other than zero also opens a "tax" exception for finance.
    """

    _name = "qtc.tax.trueup"
    _description = "QTC Tax True-up"
    _order = "id desc"

    move_id = fields.Many2one(
        "account.move", string="Invoice", required=True, ondelete="cascade", index=True
    )
    backend_id = fields.Many2one("qtc.backend", ondelete="set null")
    company_id = fields.Many2one(related="move_id.company_id", store=True)
    partner_id = fields.Many2one(related="move_id.partner_id", store=True)
    currency_id = fields.Many2one(related="move_id.currency_id", store=True)
    odoo_tax = fields.Monetary(string="Odoo tax", readonly=True)
    engine_tax = fields.Monetary(readonly=True)
    difference = fields.Monetary(
        compute="_compute_difference",
        store=True,
        help="Engine tax minus the tax invoiced.",
    )
    state = fields.Selection(
        [("open", "To review"), ("done", "Settled")],
        default="open",
        required=True,
    )
    note = fields.Text()

    @api.depends("odoo_tax", "engine_tax", "currency_id")
    def _compute_difference(self):
        for trueup in self:
            trueup.difference = trueup.currency_id.round(
                trueup.engine_tax - trueup.odoo_tax
            )

    def write(self, vals):
        if (
            RECORDED_FIELDS & set(vals)
            and not self.env.su
            and not self.env.user.has_group(GROUP_MANAGER)
        ):
            raise AccessError(
                _(
                    "A true-up records what the tax engine answered: only QTC "
                    "Managers may change %(fields)s.",
                    fields=", ".join(sorted(RECORDED_FIELDS & set(vals))),
                )
            )
        result = super().write(vals)
        # Record rules are checked before a write only: a true-up moved to an
        # invoice of another company is refused after it.
        self.check_access("write")
        return result

    def action_settle(self):
        """Mark the differences reviewed (QTC Users)."""
        check_action(self, GROUP_USER, "write", _("settle a tax true-up"))
        self.write({"state": "done"})
