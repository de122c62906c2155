from odoo import fields, models


class ProductTemplate(models.Model):
    _inherit = "product.template"

    tax_engine_code = fields.Char(
        string="Tax engine code",
        help="The product's tax code at the tax engine (AvaTax: e.g. P0000000 "
        "tangible goods, SC040100 consulting). Rate tables can key rates on it.",
    )
