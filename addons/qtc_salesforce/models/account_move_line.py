from odoo import models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    def reconcile(self):
        # A payment reconciled with an invoice changes its paid state and the
        # balance written back to Salesforce.
        invoices = self.move_id.filtered(lambda move: move.is_sale_document())
        result = super().reconcile()
        invoices._salesforce_request_writeback()
        return result
