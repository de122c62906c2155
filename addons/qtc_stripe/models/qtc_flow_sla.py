from odoo import _, api, fields, models
from odoo.tools import SQL


class QtcFlowSla(models.Model):
    """Payment received to applied: from Stripe's event reaching Odoo to the
    payment posted and reconciled with its invoice."""

    _inherit = "qtc.flow.sla"

    flow = fields.Selection(
        selection_add=[("stripe_payment_to_applied", "Payment received to applied")],
        ondelete={"stripe_payment_to_applied": "cascade"},
    )

    @api.model
    def _qtc_flow_descriptions(self):
        return {
            **super()._qtc_flow_descriptions(),
            "stripe_payment_to_applied": _(
                "From the moment Stripe's payment event reached Odoo to the "
                "payment being posted and applied to its invoice (an unapplied "
                "payment linked by a person counts until it is applied)."
            ),
        }

    def _qtc_flow_query(self, since):
        if self.flow != "stripe_payment_to_applied":
            return super()._qtc_flow_query(since)
        # The trail records each payment the applier created, with the event
        # that caused it; a replay after a person linked it keeps the event.
        return (
            "account.payment",
            SQL(
                """
                SELECT t.backend_id, t.res_id, min(e.received_at) AS started_at,
                       min(t.create_date) AS ended_at
                  FROM qtc_trace t
                  JOIN qtc_event e ON e.id = t.event_id
                  JOIN qtc_backend be ON be.id = t.backend_id
                 WHERE be.provider = 'stripe' AND be.company_id = %s
                   AND t.res_model = 'account.payment' AND t.operation = 'created'
                   AND t.create_date >= %s
              GROUP BY t.backend_id, t.res_id
                """,
                self.company_id.id,
                since,
            ),
        )
