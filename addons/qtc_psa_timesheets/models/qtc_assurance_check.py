from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import work_item as wi

CODES = [
    ("psa_unbilled_time", "Unbilled approved time"),
    ("psa_billing_unsent", "Invoices not yet reported to the PSA"),
]
# Write-back job states that mean the PSA has not been told yet.
UNSENT_JOB_STATES = ("pending", "started", "failed", "dead")


class QtcAssuranceCheck(models.Model):
    """Revenue assurance checks of the PSA connector: approved billable time
    nobody invoices, and invoices the PSA was not told about."""

    _inherit = "qtc.assurance.check"

    code = fields.Selection(
        selection_add=CODES, ondelete={code: "cascade" for code, _label in CODES}
    )

    @api.model
    def _qtc_check_descriptions(self):
        return {
            **super()._qtc_check_descriptions(),
            "psa_unbilled_time": _(
                "Approved billable time received from the PSA whose timesheet "
                "is on no invoice (or only on a cancelled one), including time "
                "on a project with no sale order line to bill it. Amount: hours "
                "at the order line's price. Age: since the approval reached "
                "Odoo."
            ),
            "psa_billing_unsent": _(
                "Posted, cancelled or reversed invoices billing PSA items whose "
                "billing write-back to the PSA has not gone through (waiting, "
                "failed or dead). Amount: the invoices' total."
            ),
        }

    def _qtc_check_query(self, cutoff):
        company = self.company_id.id
        if self.code == "psa_unbilled_time":
            return (
                "qtc.psa.item",
                SQL(
                    """
                    SELECT i.id AS res_id,
                           COALESCE(aal.unit_amount * sol.price_unit
                                    / COALESCE(NULLIF(so.currency_rate, 0), 1), 0)
                               AS amount,
                           i.create_date AS since
                      FROM qtc_psa_item i
                      JOIN account_analytic_line aal ON aal.id = i.analytic_line_id
                 LEFT JOIN sale_order_line sol ON sol.id = aal.so_line
                 LEFT JOIN sale_order so ON so.id = sol.order_id
                 LEFT JOIN account_move inv ON inv.id = aal.timesheet_invoice_id
                     WHERE i.company_id = %s AND i.kind = %s AND i.status = %s
                       AND i.billable AND i.create_date <= %s
                       AND (aal.timesheet_invoice_id IS NULL OR inv.state = 'cancel')
                    """,
                    company,
                    wi.KIND_TIME,
                    wi.STATUS_APPROVED,
                    cutoff,
                ),
            )
        if self.code == "psa_billing_unsent":
            return (
                "account.move",
                SQL(
                    """
                    SELECT m.id AS res_id, m.amount_total_signed AS amount,
                           min(j.create_date) AS since
                      FROM qtc_psa_item i
                      JOIN qtc_job j ON j.id = i.writeback_job_id
                      JOIN account_move m ON m.id = i.billed_invoice_id
                     WHERE i.company_id = %s AND j.state IN %s
                  GROUP BY m.id
                    HAVING min(j.create_date) <= %s
                    """,
                    company,
                    UNSENT_JOB_STATES,
                    cutoff,
                ),
            )
        return super()._qtc_check_query(cutoff)
