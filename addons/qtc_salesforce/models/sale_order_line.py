from odoo import fields, models


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    salesforce_schedule = fields.Json(
        copy=False,
        help="Installments of the Salesforce line item schedule "
        "(id, date, quantity, revenue); each becomes a milestone on confirmation.",
    )

    def _salesforce_schedule_shares(self):
        """``[(date, share of the line)]`` of the line's schedule, in date order.

        Shares come from the installments' quantities when every installment
        has one, else from their revenue; they add up to 1. Empty when the
        line has no usable schedule.
        """
        self.ensure_one()
        entries = [e for e in (self.salesforce_schedule or []) if e.get("date")]
        for key in ("quantity", "revenue"):
            amounts = [e.get(key) for e in entries]
            if amounts and all(a is not None for a in amounts):
                total = sum(amounts)
                if total > 0:
                    return [
                        (fields.Date.to_date(entry["date"]), entry[key] / total)
                        for entry in sorted(entries, key=lambda e: e["date"])
                    ]
        return []
