from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.access import GROUP_USER, check_action

ADDRESS_FIELDS = ("street", "street2", "city", "zip", "state_id", "country_id")


class QtcTaxAddressWizard(models.TransientModel):
    """The address a tax engine normalised, shown next to the partner's own so
    a person decides whether to apply it."""

    _name = "qtc.tax.address.wizard"
    _description = "QTC Tax Engine Address Check"

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade")
    backend_id = fields.Many2one("qtc.backend", string="Tax engine", readonly=True)
    street = fields.Char()
    street2 = fields.Char()
    city = fields.Char()
    zip = fields.Char(string="ZIP")
    country_id = fields.Many2one("res.country", string="Country")
    state_id = fields.Many2one(
        "res.country.state",
        string="State",
        domain="[('country_id', '=', country_id)]",
    )
    current_address = fields.Text(string="Current address", readonly=True)
    changes = fields.Text(string="Changes", compute="_compute_changes")
    engine_messages = fields.Text(string="Engine remarks", readonly=True)
    resolution_quality = fields.Char(string="Precision", readonly=True)

    @api.depends(*ADDRESS_FIELDS, "partner_id")
    def _compute_changes(self):
        for wizard in self:
            partner = wizard.partner_id
            lines = []
            for name in ADDRESS_FIELDS:
                old, new = partner[name], wizard[name]
                if old != new:
                    label = self._fields[name].string
                    old_text = old.display_name if name.endswith("_id") else old
                    new_text = new.display_name if name.endswith("_id") else new
                    lines.append(f"{label}: {old_text or '-'} -> {new_text or '-'}")
            wizard.changes = "\n".join(lines) or _(
                "None: the address is as the engine has it."
            )

    def _address_values(self):
        self.ensure_one()
        return {
            "street": self.street or False,
            "street2": self.street2 or False,
            "city": self.city or False,
            "zip": self.zip or False,
            "state_id": self.state_id.id,
            "country_id": self.country_id.id,
        }

    def action_apply(self):
        """Write the normalised address on the partner (QTC Users who may edit
        it)."""
        check_action(self, GROUP_USER, "read", _("apply a checked address"))
        check_action(self.partner_id, GROUP_USER, "write", _("apply a checked address"))
        for wizard in self:
            wizard.partner_id.write(wizard._address_values())
            wizard.partner_id.message_post(
                body=_(
                    "Address normalised by the tax engine %(engine)s.",
                    engine=wizard.backend_id.display_name or "",
                )
            )
        return {"type": "ir.actions.act_window_close"}
