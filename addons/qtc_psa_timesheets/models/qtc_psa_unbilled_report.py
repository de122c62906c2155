from odoo import fields, models


class QtcPsaUnbilledReport(models.Model):
    """Approved, not invoiced: billable PSA time and expenses received but not
    yet on an invoice, with their value at the order price and their age. The
    figure finance watches at month end (group by customer and project)."""

    _name = "qtc.psa.unbilled.report"
    _description = "PSA Work Approved, Not Invoiced"
    _auto = False
    _order = "age_days desc, id"
    # Flushed before each read of the view.
    _depends = {
        "qtc.psa.item": [
            "analytic_line_id",
            "backend_id",
            "billable",
            "company_id",
            "date",
            "employee_id",
            "kind",
            "project_id",
            "status",
        ],
        "account.analytic.line": ["so_line", "timesheet_invoice_id", "unit_amount"],
        "account.move": ["state"],
        "sale.order.line": ["order_id", "price_unit", "qty_invoiced"],
        "sale.order": ["currency_id", "partner_id"],
    }

    item_id = fields.Many2one("qtc.psa.item", readonly=True)
    backend_id = fields.Many2one("qtc.backend", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    kind = fields.Selection([("time", "Time"), ("expense", "Expense")], readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    project_id = fields.Many2one("project.project", readonly=True)
    order_id = fields.Many2one("sale.order", readonly=True)
    sale_line_id = fields.Many2one("sale.order.line", readonly=True)
    employee_id = fields.Many2one("hr.employee", readonly=True)
    date = fields.Date(readonly=True)
    age_days = fields.Integer(string="Age (days)", readonly=True, aggregator="max")
    quantity = fields.Float(readonly=True)
    price_unit = fields.Float(readonly=True, aggregator=None)
    amount = fields.Monetary(readonly=True, currency_field="currency_id")
    currency_id = fields.Many2one("res.currency", readonly=True)

    @property
    def _table_query(self):
        # Time: the timesheet has no (live) invoice yet. Expense: its sale order
        # line (one per expense) has nothing invoiced yet.
        return """
            SELECT i.id AS id, i.id AS item_id, i.backend_id, i.company_id,
                   i.kind, so.partner_id, i.project_id, so.id AS order_id,
                   sol.id AS sale_line_id, i.employee_id, i.date,
                   (CURRENT_DATE - i.date) AS age_days,
                   aal.unit_amount AS quantity, sol.price_unit,
                   CASE WHEN i.kind = 'time'
                        THEN aal.unit_amount * sol.price_unit
                        ELSE sol.price_unit END AS amount,
                   so.currency_id
              FROM qtc_psa_item i
              JOIN account_analytic_line aal ON aal.id = i.analytic_line_id
              JOIN sale_order_line sol ON sol.id = aal.so_line
              JOIN sale_order so ON so.id = sol.order_id
         LEFT JOIN account_move inv ON inv.id = aal.timesheet_invoice_id
             WHERE i.status = 'approved' AND i.billable
               AND ((i.kind = 'time'
                     AND (aal.timesheet_invoice_id IS NULL OR inv.state = 'cancel'))
                 OR (i.kind = 'expense' AND COALESCE(sol.qty_invoiced, 0) = 0))
        """
