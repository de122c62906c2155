"""Billing write-back: the invoice that billed PSA work items, told to the PSA.

When a customer invoice that bills imported items is posted, cancelled (or
deleted after a reset to draft), or reversed in full by a credit note, every
item it billed records the invoice and its state
(``qtc.psa.item.billed_invoice_id`` / ``billed_state``), and for each backend
with a billing callback URL ONE job is queued that POSTs a signed JSON document
to the PSA (``qtc.backend._psa_send_billing``). The document is built here,
when the state changes, so a retry sends the same facts.

Which items an invoice bills:

- time: the imported timesheets sale_timesheet linked to the invoice
  (``timesheet_invoice_id``);
- expense: the item's own sale order line (one per expense) is on the invoice;
- milestone: the units invoiced on the milestone's line, taken from its
  delivered items not billed yet, oldest first.
"""

from odoo import _, fields, models
from odoo.tools import SQL, float_round

from ..lib import billing_writeback as billing
from ..lib import work_item as wi


class AccountMove(models.Model):
    # Invoices bill the time and milestones PSA pushed; a milestone that cannot
    # be withdrawn opens an exception on its invoice: traceable.
    _name = "account.move"
    _inherit = ["account.move", "qtc.trace.mixin"]

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

    def unlink(self):
        # A posted invoice reset to draft and deleted no longer bills its
        # items: tell the PSA (the body is built before the invoice is gone).
        # Checked first: the write-back below is queued by the system.
        self.check_access("unlink")
        invoices = self.filtered(
            lambda move: move.move_type == "out_invoice" and move.posted_before
        )
        if invoices:
            invoices._psa_billing_changed(billing.INVOICE_CANCELLED)
        return super().unlink()

    # ----------------------------------------------------------- write-back

    def _psa_billed_items(self):
        """``{invoice: qtc.psa.item}`` of the items each invoice bills."""
        # Narrow sudo: posting or cancelling an invoice is an accountant's act;
        # reading and marking the PSA items it bills needs no QTC rights.
        items_model = self.env["qtc.psa.item"].sudo()
        found = dict.fromkeys(self, items_model)
        # One query for the time items of every invoice (the ORM walk from each
        # timesheet to its item cost a millisecond per item).
        self.env["account.analytic.line"].flush_model(["timesheet_invoice_id"])
        items_model.flush_model(["analytic_line_id", "kind"])
        rows = self.env.execute_query(
            SQL(
                """
                SELECT aal.timesheet_invoice_id, array_agg(i.id ORDER BY i.id)
                  FROM qtc_psa_item i
                  JOIN account_analytic_line aal ON aal.id = i.analytic_line_id
                 WHERE aal.timesheet_invoice_id = ANY(%s) AND i.kind = %s
                 GROUP BY aal.timesheet_invoice_id
                """,
                self.ids,
                wi.KIND_TIME,
            )
        )
        for invoice_id, item_ids in rows:
            found[self.browse(invoice_id)] = items_model.browse(item_ids)
        lines = self.sudo().invoice_line_ids.filtered(
            lambda line: line.sale_line_ids and line.quantity > 0
        )
        if not lines:
            return self._psa_share_prefetch(found)
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
        return self._psa_share_prefetch(found)

    @staticmethod
    def _psa_share_prefetch(found):
        """The same item sets, sharing one prefetch set: reading their fields
        later costs one query for all invoices, not one per invoice."""
        every_item = tuple(
            item_id for items in found.values() for item_id in items._ids
        )
        return {
            invoice: items.with_prefetch(every_item) for invoice, items in found.items()
        }

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
        # (invoice, its items of one backend, the backend if it is told)
        plan = [
            (invoice, backend_items, backend._psa_writes_billing_back() and backend)
            for invoice, items in billed.items()
            if items
            for backend, backend_items in items.grouped("backend_id").items()
        ]
        senders = self.browse(
            sorted({invoice.id for invoice, _i, told in plan if told})
        )
        revisions = senders._psa_next_writeback_revisions() if senders else {}
        # Flush once here: each enqueue flushes, and the first one would
        # otherwise carry every computation the posting left pending.
        self.env.flush_all()
        # The write-back is the system's, not the user's: its job runs as the
        # backend's technical user. Boundary (queue): an accountant posting an
        # invoice has no QTC rights to queue it.
        jobs = self.env["qtc.job"].sudo()
        outcomes = []
        for invoice, items, backend in plan:
            job = jobs
            if backend:
                key = billing.idempotency_key(invoice.id, state, revisions[invoice.id])
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
                    user=backend._qtc_technical_user(),
                )
            outcomes.append((items, invoice, job))
        # One write per invoice and backend, after the enqueues (whose flushes
        # would otherwise write each group separately): updating the items is
        # the costly part of this step.
        for items, invoice, job in outcomes:
            items.write(
                {
                    "billed_invoice_id": invoice.id,
                    "billed_state": state,
                    "writeback_job_id": job.id,
                }
            )

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
