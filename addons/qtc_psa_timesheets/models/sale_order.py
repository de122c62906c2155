from odoo import models


class SaleOrder(models.Model):
    # PSA milestones and expenses change the order's lines: an order's trace
    # includes its lines'.
    _name = "sale.order"
    _inherit = ["sale.order", "qtc.trace.mixin"]
    _qtc_trace_related_fields = ("order_line",)
