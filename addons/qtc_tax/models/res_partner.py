from odoo import _, fields, models
from odoo.addons.qtc_connector_base.access import GROUP_USER, check_action
from odoo.exceptions import UserError

from ..lib.engine import TaxEngineRejected, TaxEngineUnavailable
from ..utils import TaxUserError, partner_address
from .qtc_tax_document import ADDRESS_PART_LABELS


class ResPartner(models.Model):
    _inherit = "res.partner"

    tax_exemption_number = fields.Char(
        string="Tax exemption certificate",
        help="Number of the customer's exemption certificate, sent to the tax "
        "engine with every quote and invoice.",
    )
    tax_entity_use_code = fields.Char(
        string="Tax entity/use code",
        help="The engine's entity/use code for exempt customers (AvaTax: e.g. "
        "'E' charitable organisation, 'G' resale).",
    )

    def action_tax_validate_address(self):
        """Ask the company's tax engine to validate and normalise the address.

        :returns: the wizard showing the normalised address, with *Apply*
        :raises TaxUserError: no engine, no country, or the address is invalid
            (the problems name the fields to check)
        :raises UserError: the engine is unavailable
        """
        self.ensure_one()
        # The check sends the address out and its point is to change it: QTC
        # Users who may edit the partner.
        check_action(self, GROUP_USER, "write", _("validate an address"))
        company = self.company_id or self.env.company
        # sudo: which engine serves the company is configuration; the user asks
        # for a check of an address they can read, nothing of the backend is
        # returned to them but its name.
        backend_sudo = self.env["qtc.backend"].sudo()._tax_backend_for(company)
        if not backend_sudo:
            raise TaxUserError(
                _(
                    "No active tax engine for %(company)s: the address cannot be "
                    "validated.",
                    company=company.display_name,
                ),
                category="configuration",
                suggested_action=_(
                    "Configure and activate a tax backend for the company "
                    "(Quote-to-Cash ▸ Configuration ▸ Backends), then try again."
                ),
            )
        if not self.country_id:
            raise TaxUserError(
                _(
                    "The address of %(partner)s cannot be validated: the country "
                    "is missing.",
                    partner=self.display_name,
                ),
                category="tax",
                records=[(self._name, self.id)],
                suggested_action=_("Enter the country, then validate again."),
            )
        try:
            result = backend_sudo._tax_call("validate_address", partner_address(self))
        except TaxEngineUnavailable as exc:
            raise UserError(
                _(
                    "The tax engine is unavailable (%(reason)s); the address was "
                    "not checked. Try again later.",
                    reason=exc.message,
                )
            ) from None
        except TaxEngineRejected as exc:
            raise TaxUserError(
                _("The tax engine refused the address check."),
                category="tax",
                problems=[exc.message],
                records=[(self._name, self.id)],
                suggested_action=_(
                    "Correct what the engine names in the address, then validate again."
                ),
            ) from None
        if not result.valid:
            fields_text = ", ".join(
                ADDRESS_PART_LABELS.get(name, name) for name in result.fields
            ) or _("(not named by the engine)")
            raise TaxUserError(
                _(
                    "The tax engine could not validate the address of "
                    "%(partner)s. Fields to check: %(fields)s.",
                    partner=self.display_name,
                    fields=fields_text,
                ),
                category="tax",
                problems=[message for message in result.messages if message],
                records=[(self._name, self.id)],
                suggested_action=_(
                    "Correct the fields to check, then validate the address again."
                ),
            )
        address = result.address
        country = self.env["res.country"].search(
            [("code", "=", address.country)], limit=1
        )
        state = self.env["res.country.state"]
        if address.region and country:
            state = state.search(
                [("country_id", "=", country.id), ("code", "=", address.region)],
                limit=1,
            )
        wizard = self.env["qtc.tax.address.wizard"].create(
            {
                "partner_id": self.id,
                "backend_id": backend_sudo.id,
                "street": address.line1,
                "street2": address.line2,
                "city": address.city,
                "zip": address.postal_code,
                "country_id": country.id or self.country_id.id,
                "state_id": state.id or self.state_id.id,
                "current_address": self._display_address(),
                "engine_messages": "\n".join(result.messages),
                "resolution_quality": result.resolution_quality or False,
            }
        )
        return {
            "type": "ir.actions.act_window",
            "name": _("Address validated by the tax engine"),
            "res_model": "qtc.tax.address.wizard",
            "res_id": wizard.id,
            "view_mode": "form",
            "target": "new",
        }
