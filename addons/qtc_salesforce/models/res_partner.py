from odoo import models


class ResPartner(models.Model):
    _inherit = "res.partner"

    def _salesforce_open_balance(self, company):
        """Open receivable of this customer in ``company``, in its currency:
        posted customer invoices minus refunds still unpaid."""
        self.ensure_one()
        moves = self.env["account.move"].search(
            [
                ("commercial_partner_id", "=", self.commercial_partner_id.id),
                ("company_id", "=", company.id),
                ("state", "=", "posted"),
                ("move_type", "in", ("out_invoice", "out_refund")),
                ("payment_state", "not in", ("paid", "in_payment", "reversed")),
            ]
        )
        total = sum(moves.mapped("amount_residual_signed"))
        return company.currency_id.round(total)
