from odoo import _, api, fields, models
from odoo.tools import SQL

CODES = [
    ("invoice_draft_stuck", "Invoices stuck in draft"),
    ("order_waiting_invoice", "Orders waiting for an invoice"),
    ("project_no_billing_plan", "Projects created without billing schedules"),
    ("project_creation_failed", "Failed project creations"),
]


class QtcAssuranceCheck(models.Model):
    """The leaks any Odoo selling projects can have, whatever the connectors:
    projects nobody will bill, project creations that did not happen,
    invoices nobody posts, orders nobody invoices."""

    _inherit = "qtc.assurance.check"

    code = fields.Selection(
        selection_add=CODES, ondelete={code: "cascade" for code, _label in CODES}
    )

    @api.model
    def _qtc_check_descriptions(self):
        return {
            **super()._qtc_check_descriptions(),
            "invoice_draft_stuck": _(
                "Customer invoices and credit notes still in draft after the "
                "grace period (held ones included). Amount: their total, credit "
                "notes negative."
            ),
            "order_waiting_invoice": _(
                "Confirmed sale orders with something to invoice (delivered "
                "time, milestones reached, quantities to bill). Amount: what is "
                "left to invoice, untaxed. Age: since the order was confirmed."
            ),
            "project_no_billing_plan": _(
                "Projects of confirmed orders with no milestone, no line billed "
                "on timesheets and no line invoiced on order: nothing will ever "
                "invoice them. Amount: their lines' value not yet invoiced."
            ),
            "project_creation_failed": _(
                "Confirmed orders with a service line that should have created "
                "a project or a task and has neither. Amount: those lines' "
                "value, untaxed."
            ),
        }

    def _qtc_check_query(self, cutoff):
        company = self.company_id.id
        if self.code == "invoice_draft_stuck":
            return (
                "account.move",
                SQL(
                    """
                    SELECT m.id AS res_id, m.amount_total_signed AS amount,
                           m.create_date AS since
                      FROM account_move m
                     WHERE m.company_id = %s AND m.state = 'draft'
                       AND m.move_type IN ('out_invoice', 'out_refund')
                       AND m.create_date <= %s
                    """,
                    company,
                    cutoff,
                ),
            )
        if self.code == "order_waiting_invoice":
            return (
                "sale.order",
                SQL(
                    """
                    SELECT so.id AS res_id,
                           COALESCE(sum(sol.untaxed_amount_to_invoice), 0)
                             / COALESCE(NULLIF(so.currency_rate, 0), 1) AS amount,
                           so.date_order AS since
                      FROM sale_order so
                      JOIN sale_order_line sol ON sol.order_id = so.id
                     WHERE so.company_id = %s AND so.state = 'sale'
                       AND so.invoice_status = 'to invoice'
                       AND so.date_order <= %s
                  GROUP BY so.id
                    """,
                    company,
                    cutoff,
                ),
            )
        if self.code == "project_no_billing_plan":
            return ("project.project", self._qtc_project_no_billing_sql(cutoff))
        if self.code == "project_creation_failed":
            return (
                "sale.order",
                SQL(
                    """
                    SELECT so.id AS res_id,
                           sum(sol.price_subtotal)
                             / COALESCE(NULLIF(so.currency_rate, 0), 1) AS amount,
                           so.date_order AS since
                      FROM sale_order so
                      JOIN sale_order_line sol ON sol.order_id = so.id
                      JOIN product_product pp ON pp.id = sol.product_id
                      JOIN product_template pt ON pt.id = pp.product_tmpl_id
                     WHERE so.company_id = %s AND so.state = 'sale'
                       AND so.date_order <= %s
                       AND pt.type = 'service' AND pt.service_tracking != 'no'
                       AND sol.project_id IS NULL AND sol.task_id IS NULL
                       AND NOT COALESCE(sol.is_downpayment, false)
                  GROUP BY so.id
                    """,
                    company,
                    cutoff,
                ),
            )
        return super()._qtc_check_query(cutoff)

    def _qtc_project_no_billing_sql(self, cutoff):
        # A project's lines: those that created it or its tasks, and every
        # service line of an order run in it. A line bills the project when it
        # is invoiced on order (a fixed price, billed up front) or on
        # timesheets; a milestone line bills it through the project's
        # milestones, so a project with a milestone has a plan too.
        return SQL(
            """
            WITH project_lines AS (
                SELECT p.id AS project_id, sol.id AS line_id
                  FROM project_project p
                  JOIN sale_order_line sol
                    ON sol.project_id = p.id OR sol.id = p.sale_line_id
                 UNION
                SELECT t.project_id, sol.id
                  FROM project_task t
                  JOIN sale_order_line sol ON sol.task_id = t.id
                 WHERE t.project_id IS NOT NULL
                 UNION
                SELECT so.project_id, sol.id
                  FROM sale_order so
                  JOIN sale_order_line sol ON sol.order_id = so.id
                 WHERE so.project_id IS NOT NULL
            ), per_project AS (
                SELECT pl.project_id,
                       bool_or(so.state = 'sale') AS confirmed,
                       bool_or(pt.invoice_policy = 'order'
                               OR pt.service_type = 'timesheet') AS billed,
                       sum((sol.price_subtotal - sol.untaxed_amount_invoiced)
                           / COALESCE(NULLIF(so.currency_rate, 0), 1)) AS amount
                  FROM project_lines pl
                  JOIN sale_order_line sol ON sol.id = pl.line_id
                  JOIN sale_order so ON so.id = sol.order_id
                  JOIN product_product pp ON pp.id = sol.product_id
                  JOIN product_template pt ON pt.id = pp.product_tmpl_id
                 WHERE so.company_id = %s AND pt.type = 'service'
                   AND NOT COALESCE(sol.is_downpayment, false)
              GROUP BY pl.project_id
            )
            SELECT p.id AS res_id, pp.amount, p.create_date AS since
              FROM per_project pp
              JOIN project_project p ON p.id = pp.project_id
             WHERE pp.confirmed AND NOT pp.billed AND p.active
               AND p.create_date <= %s
               AND NOT EXISTS (
                   SELECT 1 FROM project_milestone m WHERE m.project_id = p.id
               )
            """,
            self.company_id.id,
            cutoff,
        )
