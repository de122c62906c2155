from odoo import models


class ResPartner(models.Model):
    # Customers and contacts come from Salesforce accounts: traceable.
    _name = "res.partner"
    _inherit = ["res.partner", "qtc.trace.mixin"]

    def _salesforce_open_balances(self, company):
        """Open receivable of each of these customers in ``company``, in its
        currency: posted customer invoices minus refunds still unpaid, of the
        customer's commercial entity. One query for all of them.

        :returns: ``{partner id: amount}`` for every partner of ``self``
        """
        commercial = {partner.id: partner.commercial_partner_id.id for partner in self}
        groups = self.env["account.move"]._read_group(
            [
                ("commercial_partner_id", "in", list(set(commercial.values()))),
                ("company_id", "=", company.id),
                ("state", "=", "posted"),
                ("move_type", "in", ("out_invoice", "out_refund")),
                ("payment_state", "not in", ("paid", "in_payment", "reversed")),
            ],
            ["commercial_partner_id"],
            ["amount_residual_signed:sum"],
        )
        totals = {partner.id: total for partner, total in groups}
        return {
            partner_id: company.currency_id.round(totals.get(commercial_id, 0.0))
            for partner_id, commercial_id in commercial.items()
        }
