from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .. import const
from ..utils import to_decimal


class QtcTaxRate(models.Model):
    """One jurisdiction rate of a rate-table tax backend.

    Lines with the same country, state and tax code add up: a Chicago sale is
    taxed by Illinois (state), Cook (county), Chicago (city) and the RTA
    (special district). An empty state or tax code means "any"; the most
    specific match wins, and matches do not add up across specificity levels.
    """

    _name = "qtc.tax.rate"
    _description = "QTC Tax Rate"
    _order = "backend_id, country_id, state_id, tax_code, sequence, id"

    backend_id = fields.Many2one(
        "qtc.backend", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    country_id = fields.Many2one("res.country", required=True)
    state_id = fields.Many2one(
        "res.country.state",
        string="State",
        domain="[('country_id', '=', country_id)]",
        help="Empty: every state of the country without rates of its own.",
    )
    tax_code = fields.Char(
        help="Product tax code this rate applies to; empty: any product."
    )
    name = fields.Char(string="Jurisdiction", required=True)
    jurisdiction_type = fields.Selection(
        const.JURISDICTION_TYPES, required=True, default="State"
    )
    rate = fields.Float(
        string="Rate (%)", digits=(16, 4), required=True, help="6.25 for 6.25 %."
    )

    @api.constrains("rate")
    def _check_rate(self):
        for rate in self:
            if not 0 <= rate.rate < 100:
                raise ValidationError(
                    _("A tax rate is a percentage from 0 to below 100.")
                )

    @api.constrains("state_id", "country_id")
    def _check_state_country(self):
        for rate in self:
            if rate.state_id and rate.state_id.country_id != rate.country_id:
                raise ValidationError(_("The state must belong to the rate's country."))

    def _tax_fraction(self):
        """The rate as the Decimal fraction engines use (6.25 -> 0.0625)."""
        self.ensure_one()
        return to_decimal(self.rate, 4) / 100
