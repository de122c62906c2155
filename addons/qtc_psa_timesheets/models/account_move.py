"""Billing write-back: the invoice that billed PSA work items, told to the PSA.

When a customer invoice that bills imported items is posted, cancelled, or
reversed in full by a credit note, every item it billed records the invoice and
its state (``qtc.psa.item.billed_invoice_id`` / ``billed_state``), and for each
backend with a billing callback URL ONE job is queued that POSTs a signed JSON
document to the PSA (``qtc.backend._psa_send_billing``). The document is built
here, when the state changes, so a retry sends the same facts.

Which items an invoice bills:

- time: the imported timesheets sale_timesheet linked to the invoice
  (``timesheet_invoice_id``);
- expense: the item's own sale order line (one per expense) is on the invoice;
- milestone: the units invoiced on the milestone's line, taken from its
  delivered items not billed yet, oldest first.
"""

from odoo import SUPERUSER_ID, _, fields, models
from odoo.tools import float_round

from ..lib import billing_writeback as billing
from ..lib import work_item as wi


class AccountMove(models.Model):
    _inherit = "account.move"

    psa_writeback_revision = fields.Integer(
        string="PSA write-backs",
        readonly=True,
        copy=False,
        help="How many billing changes of this invoice were written back to PSAs "
        "(part of each write-back's idempotency key).",
    )

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        invoices = posted.filtered(lambda move: move.move_type == "out_invoice")
        if invoices:
            invoices._psa_billing_changed(billing.INVOICE_POSTED)
        # A credit note reversing an invoice in full (Odoo then marks the
        # invoice "reversed" and sale_timesheet re-invoices its timesheets).
        reversed_invoices = posted.filtered(
            lambda move: move.move_type == "out_refund"
        ).reversed_entry_id.filtered(
            lambda move: (
                move.move_type == "out_invoice" and move.payment_state == "reversed"
            )
        )
        if reversed_invoices:
            reversed_invoices._psa_billing_changed(billing.INVOICE_REVERSED)
        return posted

    def button_cancel(self):
        invoices = self.filtered(lambda move: move.move_type == "out_invoice")
        result = super().button_cancel()
        cancelled = invoices.filtered(lambda move: move.state == "cancel")
        if cancelled:
            cancelled._psa_billing_changed(billing.INVOICE_CANCELLED)
        return result

    # ----------------------------------------------------------- write-back

    def _psa_billed_items(self):
        """``{invoice: qtc.psa.item}`` of the items each invoice bills."""
        # Narrow sudo: posting or cancelling an invoice is an accountant's act;
        # reading and marking the PSA items it bills needs no QTC rights.
        items_model = self.env["qtc.psa.item"].sudo()
        found = dict.fromkeys(self, items_model)
        timesheets = (
            self.env["account.analytic.line"]
            .sudo()
            .search(
                [
                    ("timesheet_invoice_id", "in", self.ids),
                    ("psa_item_id", "!=", False),
                ]
            )
        )
        for timesheet in timesheets:
            invoice = timesheet.timesheet_invoice_id
            found[invoice] |= timesheet.psa_item_id.filtered(
                lambda item: item.kind == wi.KIND_TIME
            )
        lines = self.sudo().invoice_line_ids.filtered(
            lambda line: line.sale_line_ids and line.quantity > 0
        )
        if not lines:
            return found
        sale_items = items_model.search(
            [
                ("sale_line_id", "in", lines.sale_line_ids.ids),
                ("kind", "in", (wi.KIND_EXPENSE, wi.KIND_MILESTONE)),
                ("status", "=", wi.STATUS_APPROVED),
            ],
            order="date, id",
        )
        by_sale_line = sale_items.grouped("sale_line_id")
        for line in lines:
            invoice = self.browse(line.move_id.id)
            for sale_line in line.sale_line_ids:
                candidates = by_sale_line.get(sale_line, items_model)
                expenses = candidates.filtered(
                    lambda item: item.kind == wi.KIND_EXPENSE
                )
                found[invoice] |= expenses
                milestones = candidates.filtered(
                    lambda item, inv=invoice: (
                        item.kind == wi.KIND_MILESTONE
                        and item.quantity > 0
                        and (
                            item.billed_state != billing.INVOICE_POSTED
                            or item.billed_invoice_id == inv
                        )
                    )
                )
                units = int(
                    float_round(
                        line.product_uom_id._compute_quantity(
                            line.quantity, sale_line.product_uom
                        ),
                        precision_digits=0,
                    )
                )
                found[invoice] |= milestones[:units]
        return found

    def _psa_billing_changed(self, state):
        """Record on the items each invoice bills that it was ``state`` (posted,
        cancel, reversed) and queue one write-back per invoice and backend
        with a billing callback URL.

        Cancelling or reversing concerns the items this invoice is recorded as
        having billed: a draft that was never posted told the PSA nothing.
        """
        if state == billing.INVOICE_POSTED:
            billed = self._psa_billed_items()
        else:
            # Narrow sudo: see _psa_billed_items.
            items = (
                self.env["qtc.psa.item"]
                .sudo()
                .search(
                    [
                        ("billed_invoice_id", "in", self.ids),
                        ("billed_state", "=", billing.INVOICE_POSTED),
                    ]
                )
            )
            billed = items.grouped("billed_invoice_id")
        billed = {invoice: items for invoice, items in billed.items() if items}
        to_send = {}
        for invoice, items in billed.items():
            items.write({"billed_invoice_id": invoice.id, "billed_state": state})
            by_backend = {
                backend: backend_items
                for backend, backend_items in items.grouped("backend_id").items()
                if backend._psa_writes_billing_back()
            }
            if by_backend:
                to_send[invoice] = by_backend
        if not to_send:
            return
        revisions = self.browse(
            [invoice.id for invoice in to_send]
        )._psa_next_writeback_revisions()
        # The write-back is the system's, not the user's: its job runs as the
        # superuser (an accountant posting an invoice has no QTC rights).
        jobs = self.env["qtc.job"].with_user(SUPERUSER_ID)
        linked = []
        for invoice, by_backend in to_send.items():
            key = billing.idempotency_key(invoice.id, state, revisions[invoice.id])
            for backend, items in by_backend.items():
                body = billing.callback_body(
                    invoice.name,
                    invoice.invoice_date,
                    state,
                    [item._psa_billing_entry(invoice) for item in items],
                )
                job = jobs._qtc_enqueue(
                    backend,
                    "_psa_send_billing",
                    [body, key],
                    name=_(
                        "Write back %(number)s (%(state)s)",
                        number=invoice.name,
                        state=state,
                    ),
                    backend=backend,
                    identity_key=f"psa:billing:{backend.id}:{key}",
                )
                linked.append((items, job))
        for items, job in linked:
            items.write({"writeback_job_id": job.id})

    def _psa_next_writeback_revisions(self):
        """Count one more write-back on each invoice, in one statement.

        SQL, not an ORM write: writing any field of ``account.move`` runs its
        whole accounting synchronisation (dynamic lines, balance checks), which
        tripled the cost of posting 100 invoices. The counter is this module's
        own column and nothing depends on it; the increment is atomic, so two
        transactions never hand out the same revision.

        :returns: ``{invoice id: new revision}``
        """
        self.flush_recordset(["psa_writeback_revision"])
        self.env.cr.execute(
            """
            UPDATE account_move
               SET psa_writeback_revision = COALESCE(psa_writeback_revision, 0) + 1
             WHERE id = ANY(%s)
            RETURNING id, psa_writeback_revision
            """,
            [self.ids],
        )
        revisions = dict(self.env.cr.fetchall())
        self.invalidate_recordset(["psa_writeback_revision"])
        return revisions
