from odoo import _, api, fields, models
from odoo.tools import SQL

from .. import const


class QtcFlowSla(models.Model):
    """Won deal to confirmed order: from the first message Odoo received
    about a won opportunity to the confirmation of its order."""

    _inherit = "qtc.flow.sla"

    flow = fields.Selection(
        selection_add=[("salesforce_won_to_order", "Won deal to confirmed order")],
        ondelete={"salesforce_won_to_order": "cascade"},
    )

    @api.model
    def _qtc_flow_descriptions(self):
        return {
            **super()._qtc_flow_descriptions(),
            "salesforce_won_to_order": _(
                "From the first Salesforce message about a won opportunity (or, "
                "once that message is pruned, from the order's binding) to the "
                "confirmation of the order bound to it."
            ),
        }

    def _qtc_flow_query(self, since):
        if self.flow != "salesforce_won_to_order":
            return super()._qtc_flow_query(since)
        return (
            "sale.order",
            SQL(
                """
                WITH won AS (
                    SELECT b.backend_id, b.external_id, so.id AS order_id,
                           b.create_date AS bound_at, so.date_order
                      FROM qtc_binding b
                      JOIN qtc_backend be ON be.id = b.backend_id
                      JOIN sale_order so ON so.id = b.res_id
                     WHERE be.provider = %s AND be.company_id = %s
                       AND b.external_type = %s AND b.res_model = 'sale.order'
                       AND so.state IN ('sale', 'done') AND so.date_order >= %s
                ), first_message AS (
                    SELECT e.backend_id, e.payload::jsonb->>'Id' AS external_id,
                           min(e.received_at) AS received_at
                      FROM qtc_event e
                     WHERE e.backend_id IN (SELECT backend_id FROM won)
                       AND e.event_type LIKE %s
                  GROUP BY e.backend_id, e.payload::jsonb->>'Id'
                )
                SELECT won.backend_id, won.order_id AS res_id,
                       LEAST(COALESCE(fm.received_at, won.bound_at), won.bound_at)
                           AS started_at,
                       won.date_order AS ended_at
                  FROM won
             LEFT JOIN first_message fm
                    ON fm.backend_id = won.backend_id
                   AND fm.external_id = won.external_id
                """,
                const.PROVIDER,
                self.company_id.id,
                const.BINDING_OPPORTUNITY,
                since,
                f"{const.BINDING_OPPORTUNITY}.%",
            ),
        )
