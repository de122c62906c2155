from odoo import fields, models, tools

# The view's SQL. Its column names are a published contract (README,
# "Quote-to-cash fact view"): BI tools read the PostgreSQL view
# ``qtc_q2c_fact`` directly, so a column is added, never renamed or removed.
# Amounts are in the company's currency: order amounts through the order's
# rate, invoice amounts from Odoo's signed company-currency fields.
FACT_VIEW_SQL = """
CREATE OR REPLACE VIEW qtc_q2c_fact AS (
    WITH order_lines AS (
        SELECT sol.order_id,
               sum(sol.price_subtotal)
                   FILTER (WHERE sol.create_date = so.create_date) AS won,
               sum(sol.price_subtotal) AS ordered,
               sum(sol.qty_delivered * sol.price_reduce_taxexcl) AS delivered,
               sum(sol.untaxed_amount_invoiced) AS invoiced,
               sum(sol.untaxed_amount_to_invoice) AS to_invoice
          FROM sale_order_line sol
          JOIN sale_order so ON so.id = sol.order_id
         WHERE sol.display_type IS NULL AND NOT COALESCE(sol.is_downpayment, false)
      GROUP BY sol.order_id
    ), order_invoices AS (
        SELECT DISTINCT sol.order_id, aml.move_id
          FROM sale_order_line_invoice_rel rel
          JOIN sale_order_line sol ON sol.id = rel.order_line_id
          JOIN account_move_line aml ON aml.id = rel.invoice_line_id
          JOIN account_move m ON m.id = aml.move_id
         WHERE m.state = 'posted' AND m.move_type IN ('out_invoice', 'out_refund')
    ), invoice_totals AS (
        SELECT oi.order_id,
               sum(m.amount_total_signed) AS invoiced_total,
               sum(m.amount_total_signed - m.amount_residual_signed) AS paid,
               sum(m.amount_residual_signed) AS outstanding,
               min(m.invoice_date) AS first_invoice_date,
               bool_and(m.payment_state IN ('paid', 'in_payment', 'reversed'))
                   AS settled
          FROM order_invoices oi
          JOIN account_move m ON m.id = oi.move_id
      GROUP BY oi.order_id
    ), payments AS (
        SELECT oi.order_id, max(apr.create_date) AS last_payment_at
          FROM order_invoices oi
          JOIN account_move_line l
            ON l.move_id = oi.move_id AND l.display_type = 'payment_term'
          JOIN account_partial_reconcile apr
            ON apr.debit_move_id = l.id OR apr.credit_move_id = l.id
      GROUP BY oi.order_id
    ), touched AS (
        SELECT b.res_id AS order_id, b.backend_id
          FROM qtc_binding b WHERE b.res_model = 'sale.order'
         UNION
        SELECT t.res_id, t.backend_id
          FROM qtc_trace t WHERE t.res_model = 'sale.order'
         UNION
        SELECT oi.order_id, t.backend_id
          FROM order_invoices oi
          JOIN qtc_trace t ON t.res_model = 'account.move' AND t.res_id = oi.move_id
         UNION
        SELECT sol.order_id, t.backend_id
          FROM qtc_trace t
          JOIN account_analytic_line aal
            ON t.res_model = 'account.analytic.line' AND aal.id = t.res_id
          JOIN sale_order_line sol ON sol.id = aal.so_line
    ), sources AS (
        SELECT tc.order_id,
               string_agg(DISTINCT be.provider, ', ' ORDER BY be.provider)
                   AS source_systems,
               string_agg(DISTINCT be.name, ', ' ORDER BY be.name) AS source_names
          FROM touched tc
          JOIN qtc_backend be ON be.id = tc.backend_id
      GROUP BY tc.order_id
    )
    SELECT so.id AS id,
           so.id AS order_id,
           so.company_id,
           so.partner_id,
           so.user_id,
           c.currency_id,
           so.state,
           COALESCE(CASE WHEN so.state = 'sale' THEN so.date_order END,
                    so.create_date)::date AS won_date,
           COALESCE(ol.won, 0) / r.rate AS won_amount,
           COALESCE(ol.ordered, 0) / r.rate AS ordered_amount,
           COALESCE(ol.delivered, 0) / r.rate AS delivered_amount,
           COALESCE(ol.invoiced, 0) / r.rate AS invoiced_amount,
           COALESCE(ol.to_invoice, 0) / r.rate AS to_invoice_amount,
           COALESCE(it.invoiced_total, 0) AS invoiced_total,
           COALESCE(it.paid, 0) AS paid_amount,
           COALESCE(it.outstanding, 0) AS outstanding_amount,
           it.first_invoice_date,
           CASE WHEN it.settled AND it.invoiced_total > 0
                THEN p.last_payment_at::date END AS paid_date,
           CASE WHEN it.settled AND it.invoiced_total > 0
                THEN p.last_payment_at::date
                     - COALESCE(CASE WHEN so.state = 'sale' THEN so.date_order END,
                                so.create_date)::date
           END AS days_to_cash,
           COALESCE(src.source_systems, '') AS source_systems,
           COALESCE(src.source_names, '') AS source_names
      FROM sale_order so
      JOIN res_company c ON c.id = so.company_id
     CROSS JOIN LATERAL (
           SELECT COALESCE(NULLIF(so.currency_rate, 0), 1) AS rate
     ) r
 LEFT JOIN order_lines ol ON ol.order_id = so.id
 LEFT JOIN invoice_totals it ON it.order_id = so.id
 LEFT JOIN payments p ON p.order_id = so.id
 LEFT JOIN sources src ON src.order_id = so.id
     WHERE so.state IN ('sale', 'done')
)
"""


class QtcQ2cFact(models.Model):
    """One row per engagement (a confirmed sale order), from won deal to
    cash: the stable read model BI tools query (PostgreSQL view
    ``qtc_q2c_fact``), also browsable in Odoo as list, pivot and graph."""

    _name = "qtc.q2c.fact"
    _description = "Quote-to-Cash Fact (per engagement)"
    _auto = False
    _order = "won_date desc, id desc"
    _rec_name = "order_id"
    # Flushed before each read of the view.
    _depends = {
        "sale.order": ["company_id", "currency_rate", "date_order", "state"],
        "sale.order.line": [
            "order_id",
            "price_subtotal",
            "qty_delivered",
            "untaxed_amount_invoiced",
            "untaxed_amount_to_invoice",
        ],
        "account.move": [
            "amount_residual_signed",
            "amount_total_signed",
            "payment_state",
            "state",
        ],
        "account.partial.reconcile": ["credit_move_id", "debit_move_id"],
    }

    order_id = fields.Many2one("sale.order", string="Engagement", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    state = fields.Selection(
        [("sale", "Confirmed"), ("done", "Locked")], string="Order status"
    )
    won_date = fields.Date(string="Won on", readonly=True)
    won_amount = fields.Monetary(string="Won", readonly=True)
    ordered_amount = fields.Monetary(string="Ordered", readonly=True)
    delivered_amount = fields.Monetary(string="Delivered", readonly=True)
    invoiced_amount = fields.Monetary(string="Invoiced (untaxed)", readonly=True)
    to_invoice_amount = fields.Monetary(string="To invoice", readonly=True)
    invoiced_total = fields.Monetary(
        string="Invoiced", readonly=True, help="Posted invoices, taxes included."
    )
    paid_amount = fields.Monetary(string="Paid", readonly=True)
    outstanding_amount = fields.Monetary(string="Outstanding", readonly=True)
    first_invoice_date = fields.Date(string="First invoiced on", readonly=True)
    paid_date = fields.Date(string="Paid in full on", readonly=True)
    days_to_cash = fields.Integer(
        string="Days to cash", readonly=True, aggregator="avg"
    )
    source_systems = fields.Char(
        string="Source system codes",
        readonly=True,
        help="Providers of the connectors that created or changed the order, "
        "its invoices or its timesheets (stable codes, for BI tools).",
    )
    source_names = fields.Char(
        string="Came through",
        readonly=True,
        help="The connectors (backends) that created or changed the order, its "
        "invoices or its timesheets.",
    )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(FACT_VIEW_SQL)
