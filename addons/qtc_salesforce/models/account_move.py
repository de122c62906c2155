from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        posted._salesforce_request_writeback()
        return posted

    def _salesforce_request_writeback(self):
        """Queue the write-back of the orders these customer invoices bill."""
        invoices = self.filtered(lambda move: move.is_sale_document())
        orders = invoices.line_ids.sale_line_ids.order_id
        if orders:
            orders._salesforce_request_writeback()
