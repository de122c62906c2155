from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import billing_writeback as billing
from ..lib import work_item as wi


class QtcFlowSla(models.Model):
    """Approved time to invoiced: from the approval reaching Odoo to the
    posting of the invoice that billed it."""

    _inherit = "qtc.flow.sla"

    flow = fields.Selection(
        selection_add=[("psa_approved_to_invoiced", "Approved time to invoiced")],
        ondelete={"psa_approved_to_invoiced": "cascade"},
    )

    @api.model
    def _qtc_flow_descriptions(self):
        return {
            **super()._qtc_flow_descriptions(),
            "psa_approved_to_invoiced": _(
                "From the moment approved PSA time reached Odoo to the posting "
                "of the invoice that billed it (recorded on the work item when "
                "the invoice is posted)."
            ),
        }

    def _qtc_flow_query(self, since):
        if self.flow != "psa_approved_to_invoiced":
            return super()._qtc_flow_query(since)
        # The item records its billing invoice when that invoice is posted
        # (account_move._psa_billing_changed): its write date is then the
        # posting time.
        return (
            "qtc.psa.item",
            SQL(
                """
                SELECT i.backend_id, i.id AS res_id, i.create_date AS started_at,
                       i.write_date AS ended_at
                  FROM qtc_psa_item i
                 WHERE i.company_id = %s AND i.kind = %s AND i.status = %s
                   AND i.billed_state = %s AND i.write_date >= %s
                """,
                self.company_id.id,
                wi.KIND_TIME,
                wi.STATUS_APPROVED,
                billing.INVOICE_POSTED,
                since,
            ),
        )
