from odoo import _, api, fields, models
from odoo.tools import SQL


class QtcFlowSla(models.Model):
    """Invoice to cash: from the invoice date to the payment that settled it."""

    _inherit = "qtc.flow.sla"

    flow = fields.Selection(
        selection_add=[("invoice_to_paid", "Invoice posted to paid")],
        ondelete={"invoice_to_paid": "cascade"},
    )

    @api.model
    def _qtc_flow_descriptions(self):
        return {
            **super()._qtc_flow_descriptions(),
            "invoice_to_paid": _(
                "From the invoice date of a customer invoice to the last payment "
                "applied to it, for invoices paid (or in payment) this week."
            ),
        }

    def _qtc_flow_query(self, since):
        if self.flow != "invoice_to_paid":
            return super()._qtc_flow_query(since)
        return (
            "account.move",
            SQL(
                """
                SELECT NULL::integer AS backend_id, m.id AS res_id,
                       m.invoice_date::timestamp AS started_at,
                       max(apr.create_date) AS ended_at
                  FROM account_move m
                  JOIN account_move_line l
                    ON l.move_id = m.id AND l.display_type = 'payment_term'
                  JOIN account_partial_reconcile apr
                    ON apr.debit_move_id = l.id OR apr.credit_move_id = l.id
                 WHERE m.company_id = %s AND m.state = 'posted'
                   AND m.move_type = 'out_invoice'
                   AND m.payment_state IN ('paid', 'in_payment')
                   AND m.invoice_date IS NOT NULL
              GROUP BY m.id
                HAVING max(apr.create_date) >= %s
                """,
                self.company_id.id,
                since,
            ),
        )
