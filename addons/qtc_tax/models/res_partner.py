from odoo import fields, models


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
