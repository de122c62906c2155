from odoo import _, api, fields, models
from odoo.tools import SQL

from .. import const

CODES = [
    ("tax_held_invoices", "Invoices blocked by missing tax data"),
    ("tax_uncommitted_invoices", "Posted invoices not committed to the tax engine"),
]
# Engine states of a posted invoice whose commit has not gone through.
UNCOMMITTED_STATES = ("quoted", "pending", "fallback", "rejected")


class QtcAssuranceCheck(models.Model):
    """Revenue assurance checks of the tax connector: invoices the tax engine
    holds in draft, and posted invoices the engine has not recorded."""

    _inherit = "qtc.assurance.check"

    code = fields.Selection(
        selection_add=CODES, ondelete={code: "cascade" for code, _label in CODES}
    )

    @api.model
    def _qtc_check_descriptions(self):
        return {
            **super()._qtc_check_descriptions(),
            "tax_held_invoices": _(
                "Customer invoices and credit notes kept in draft by the tax "
                "engine: rejected for missing or wrong tax data (address, "
                "exemption, tax code), or held while the engine is down. "
                "Amount: their total. Age: since the engine held them."
            ),
            "tax_uncommitted_invoices": _(
                "Posted customer invoices and credit notes taxed by an engine "
                "that the engine has not recorded yet (commit waiting, failed, "
                "or posted with Odoo's taxes during an outage). Amount: their "
                "total. Age: since they were posted."
            ),
        }

    def _qtc_check_query(self, cutoff):
        company = self.company_id.id
        if self.code == "tax_held_invoices":
            return (
                "account.move",
                SQL(
                    """
                    SELECT m.id AS res_id, m.amount_total_signed AS amount,
                           COALESCE(x.create_date, m.write_date) AS since
                      FROM account_move m
                 LEFT JOIN qtc_exception x ON x.id = m.tax_exception_id
                     WHERE m.company_id = %s AND m.state = 'draft'
                       AND m.move_type IN %s AND m.tax_state IN ('pending', 'rejected')
                       AND COALESCE(x.create_date, m.write_date) <= %s
                    """,
                    company,
                    const.TAXED_MOVE_TYPES,
                    cutoff,
                ),
            )
        if self.code == "tax_uncommitted_invoices":
            # The commit job is queued when the invoice is posted: its creation
            # is the posting time (the invoice's last write otherwise).
            return (
                "account.move",
                SQL(
                    """
                    SELECT m.id AS res_id, m.amount_total_signed AS amount,
                           COALESCE(j.posted_at, m.write_date) AS since
                      FROM account_move m
                 LEFT JOIN LATERAL (
                           SELECT min(job.create_date) AS posted_at
                             FROM qtc_job job
                            WHERE job.identity_key IN (
                                  'qtc_tax:commit:' || m.id,
                                  'qtc_tax:trueup:' || m.id)
                           ) j ON true
                     WHERE m.company_id = %s AND m.state = 'posted'
                       AND m.move_type IN %s AND m.tax_backend_id IS NOT NULL
                       AND m.tax_state IN %s
                       AND COALESCE(j.posted_at, m.write_date) <= %s
                    """,
                    company,
                    const.TAXED_MOVE_TYPES,
                    UNCOMMITTED_STATES,
                    cutoff,
                ),
            )
        return super()._qtc_check_query(cutoff)
