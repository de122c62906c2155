from odoo import _, api, fields, models
from odoo.tools import SQL

from .. import const

CODES = [
    ("salesforce_won_no_order", "Won deals with no confirmed order"),
    ("salesforce_customer_duplicates", "Customer record mismatches"),
    ("salesforce_status_unsent", "Invoice status not yet sent to the CRM"),
]


class QtcAssuranceCheck(models.Model):
    """Revenue assurance checks of the Salesforce connector: won deals that
    never became a confirmed order, customers bound to two CRM records, and
    order or invoice status the CRM has not been told about."""

    _inherit = "qtc.assurance.check"

    code = fields.Selection(
        selection_add=CODES, ondelete={code: "cascade" for code, _label in CODES}
    )

    @api.model
    def _qtc_check_descriptions(self):
        return {
            **super()._qtc_check_descriptions(),
            "salesforce_won_no_order": _(
                "Won opportunities received from Salesforce (not marked lost) "
                "with no confirmed order bound to them after the grace period: "
                "failed, waiting or unconfirmed. Amount: the opportunity's "
                "amount when the message carries it. Age: since the first "
                "message about the deal."
            ),
            "salesforce_customer_duplicates": _(
                "Customers or contacts bound to two or more Salesforce records "
                "of the same kind: one Odoo partner standing for duplicate CRM "
                "accounts or contacts."
            ),
            "salesforce_status_unsent": _(
                "Orders whose order or invoice status changed and is still "
                "waiting to be written to their Salesforce opportunity. "
                "Amount: the order's posted invoices."
            ),
        }

    def _qtc_check_query(self, cutoff):
        company = self.company_id.id
        if self.code == "salesforce_won_no_order":
            return ("qtc.event", self._salesforce_won_no_order_sql(cutoff))
        if self.code == "salesforce_customer_duplicates":
            return (
                "res.partner",
                SQL(
                    """
                    SELECT dup.res_id, 0 AS amount, min(dup.since) AS since
                      FROM (
                        SELECT b.res_id,
                               (array_agg(b.create_date ORDER BY b.create_date))[2]
                                   AS since
                          FROM qtc_binding b
                          JOIN qtc_backend be ON be.id = b.backend_id
                         WHERE be.provider = %s AND be.company_id = %s
                           AND b.res_model = 'res.partner'
                           AND b.external_type IN %s
                      GROUP BY b.res_id, b.external_type
                        HAVING count(*) > 1
                      ) AS dup
                     WHERE dup.since <= %s
                  GROUP BY dup.res_id
                    """,
                    const.PROVIDER,
                    company,
                    (const.BINDING_ACCOUNT, const.BINDING_CONTACT),
                    cutoff,
                ),
            )
        if self.code == "salesforce_status_unsent":
            return (
                "sale.order",
                SQL(
                    """
                    SELECT so.id AS res_id, COALESCE(inv.total, 0) AS amount,
                           min(b.write_date) AS since
                      FROM qtc_binding b
                      JOIN qtc_backend be ON be.id = b.backend_id
                      JOIN sale_order so ON so.id = b.res_id
                 LEFT JOIN LATERAL (
                           SELECT sum(m.amount_total_signed) AS total
                             FROM account_move m
                            WHERE m.state = 'posted' AND m.id IN (
                                  SELECT aml.move_id
                                    FROM sale_order_line sol
                                    JOIN sale_order_line_invoice_rel rel
                                      ON rel.order_line_id = sol.id
                                    JOIN account_move_line aml
                                      ON aml.id = rel.invoice_line_id
                                   WHERE sol.order_id = so.id)
                           ) inv ON true
                     WHERE be.provider = %s AND be.company_id = %s
                       AND b.external_type = %s AND b.res_model = 'sale.order'
                       AND b.salesforce_writeback_pending
                       AND b.write_date <= %s
                  GROUP BY so.id, inv.total
                    """,
                    const.PROVIDER,
                    company,
                    const.BINDING_OPPORTUNITY,
                    cutoff,
                ),
            )
        return super()._qtc_check_query(cutoff)

    def _salesforce_won_no_order_sql(self, cutoff):
        # Every message about an opportunity (notification or sweep) carries
        # its Id; the latest one of each deal stands for it. A deal counts
        # while no confirmed order is bound to it, whatever happened to its
        # messages (failed, dead, waiting, or applied as a draft).
        company = self.company_id.id
        amount = self._qtc_sql_company_amount(
            SQL(
                "CASE WHEN l.p->>'Amount' ~ '^-?[0-9]+(\\.[0-9]+)?$' "
                "THEN (l.p->>'Amount')::numeric ELSE 0 END"
            ),
            SQL(
                "COALESCE((SELECT c.id FROM res_currency c "
                "WHERE c.name = upper(l.p->>'CurrencyIsoCode')), %s)",
                self.company_id.currency_id.id,
            ),
            SQL("l.first_at::date"),
            company,
        )
        return SQL(
            """
            WITH opp AS (
                SELECT e.id, e.backend_id, e.received_at,
                       e.payload::jsonb AS p
                  FROM qtc_event e
                  JOIN qtc_backend be ON be.id = e.backend_id
                 WHERE be.provider = %s AND be.company_id = %s
                   AND e.event_type LIKE %s
            ), keyed AS (
                SELECT opp.*, opp.p->>'Id' AS opp_id,
                       min(opp.received_at) OVER (PARTITION BY opp.backend_id,
                                                  opp.p->>'Id') AS first_at
                  FROM opp
                 WHERE opp.p->>'Id' IS NOT NULL
            ), l AS (
                SELECT DISTINCT ON (backend_id, opp_id) *
                  FROM keyed
              ORDER BY backend_id, opp_id, received_at DESC, id DESC
            )
            SELECT l.id AS res_id, %s AS amount, l.first_at AS since
              FROM l
             WHERE l.first_at <= %s
               AND COALESCE(l.p->>'IsWon', 'true') <> 'false'
               AND NOT EXISTS (
                   SELECT 1
                     FROM qtc_binding b
                     JOIN sale_order so ON so.id = b.res_id
                    WHERE b.backend_id = l.backend_id
                      AND b.external_type = %s
                      AND b.res_model = 'sale.order'
                      AND b.external_id = l.opp_id
                      AND so.state IN ('sale', 'done'))
            """,
            const.PROVIDER,
            company,
            f"{const.BINDING_OPPORTUNITY}.%",
            amount,
            cutoff,
            const.BINDING_OPPORTUNITY,
        )
