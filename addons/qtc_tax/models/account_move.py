import logging

from odoo import Command, _, api, fields, models
from odoo.addons.qtc_connector_base.access import check_action
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.addons.qtc_connector_base.lib.job_function import job_function
from odoo.exceptions import UserError

from .. import const
from ..lib.avatax_engine import NOT_FOUND_CODES
from ..lib.engine import (
    DocumentType,
    TaxEngineRejected,
    TaxEngineUnavailable,
)
from ..utils import TaxUserError

_logger = logging.getLogger(__name__)


class AccountMove(models.Model):
    """Customer invoices and credit notes taxed by an external engine.

    The engine's answer becomes standard Odoo taxes (one ``account.tax`` per
    jurisdiction rate) on the invoice lines, with the tax journal items aligned
    to the engine's amounts to the cent. ``tax_state``::

        none --quote--> quoted --post--> (commit job) --> committed
          |                                  |                |
          |   engine down, policy hold:      |  engine down:  reset to draft
          +--> pending (draft, retry job) ---+  pending       or cancel --> voided
          |    re-quoted and posted when the engine answers    (void job)
          +--> fallback (posted with the lines' own taxes, true-up job)

    Calls that record something at the engine (commit, refund, void) run in
    jobs, after the posting transaction committed, so a rolled-back post never
    leaves a transaction behind at the engine; the quote runs inline because
    the invoice cannot be posted without its taxes.
    """

    # Invoices are quoted and committed at the tax engine: traceable.
    _name = "account.move"
    _inherit = ["account.move", "qtc.tax.document", "qtc.trace.mixin"]

    tax_state = fields.Selection(
        const.TAX_STATES,
        string="Tax engine status",
        default="none",
        required=True,
        copy=False,
        tracking=True,
    )
    tax_document_code = fields.Char(
        string="Tax document code",
        copy=False,
        readonly=True,
        help="The code the invoice was committed under at the engine.",
    )
    tax_transaction_id = fields.Char(
        string="Engine transaction", copy=False, readonly=True
    )
    tax_engine_total = fields.Monetary(
        string="Engine tax total", copy=False, readonly=True
    )
    tax_trueup_ids = fields.One2many(
        "qtc.tax.trueup", "move_id", string="Tax true-ups", readonly=True
    )

    @api.depends("move_type")
    def _compute_tax_backend_id(self):
        # The move type decides too: only customer invoices and credit notes.
        return super()._compute_tax_backend_id()

    # ------------------------------------------------------------- posting

    def _post(self, soft=True):
        """Quote engine-taxed invoices before posting them.

        An engine outage never blocks the batch: under the "hold" policy the
        invoice stays in draft (tax pending, retry job, exception) and the
        others are posted; under "fallback" it is posted with the taxes already
        on its lines and a true-up job is queued. A rejected document raises a
        ``TaxUserError`` naming the fields to fix when it is posted alone; in a
        batch of several invoices it stays in draft, flagged rejected with a
        tax exception naming the fields, and the others are posted.
        """
        if self.env.context.get("qtc_tax_skip"):
            return super()._post(soft)
        taxed = self.filtered(
            lambda move: move.state == "draft" and move._tax_applies()
        )
        batch = len(self) > 1
        held = self.browse()
        fallback = self.browse()
        for move in taxed:
            try:
                outcome = move._tax_prepare_post()
            except TaxUserError as error:
                # A backend without settings refuses every invoice: the person
                # posting must hear it rather than find one exception each.
                if not batch or error.category == "configuration":
                    raise
                # One invoice's data is wrong: it waits for a fix, the batch
                # goes on.
                move._tax_reject(error)
                held |= move
                continue
            if outcome == "held":
                held |= move
            elif outcome == "fallback":
                fallback |= move
        posted = super(AccountMove, self - held)._post(soft)
        for move in posted & taxed:
            if move in fallback:
                move._tax_enqueue("trueup", "_tax_job_trueup")
            else:
                move._tax_enqueue("commit", "_tax_job_commit")
        return posted

    def action_post(self):
        result = super().action_post()
        drafts = self.filtered(lambda move: move.state == "draft")
        held = drafts.filtered(lambda move: move.tax_state == "pending")
        rejected = drafts.filtered(lambda move: move.tax_state == "rejected")
        if (held or rejected) and not result:
            messages = []
            if held:
                messages.append(
                    _(
                        "%(count)s invoice(s) kept in draft until the tax engine "
                        "answers: %(names)s. They are posted automatically then.",
                        count=len(held),
                        names=", ".join(held.mapped("display_name")),
                    )
                )
            if rejected:
                messages.append(
                    _(
                        "%(count)s invoice(s) rejected by the tax engine and kept "
                        "in draft: %(names)s. Their tax exception names the "
                        "fields to fix.",
                        count=len(rejected),
                        names=", ".join(rejected.mapped("display_name")),
                    )
                )
            messages.append(_("The others were posted."))
            return {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "title": _("Tax engine unavailable")
                    if not rejected
                    else _("Some invoices were not posted"),
                    "message": " ".join(messages),
                    "type": "warning",
                    "sticky": True,
                    "next": {"type": "ir.actions.client", "tag": "soft_reload"},
                },
            }
        return result

    def button_draft(self):
        """Void the engine transaction of committed invoices reset to draft (or
        cancelled, which resets posted invoices to draft first)."""
        recorded = self.filtered(
            lambda move: (
                move.state == "posted"
                and move.tax_backend_id
                and (
                    move.tax_state == "committed"
                    or (move.tax_state == "pending" and move.tax_document_code)
                )
            )
        )
        codes = {move.id: move.tax_document_code for move in recorded}
        result = super().button_draft()
        for move in recorded:
            move.write({"tax_state": "voided"})
            move._tax_enqueue("void", "_tax_job_void", args=[codes[move.id]])
        return result

    # ------------------------------------------------------------- actions

    def action_tax_quote(self):
        """Quote the draft invoice now and apply the engine's taxes (users with
        invoicing rights who may edit the invoices)."""
        check_action(
            self, const.INVOICING_GROUP, "write", _("quote an invoice's taxes")
        )
        for move in self:
            if move.state != "draft" or not move._tax_applies():
                raise UserError(
                    _(
                        "%(move)s is not a draft customer invoice with an active "
                        "tax engine.",
                        move=move.display_name,
                    )
                )
            try:
                move._tax_quote()
            except TaxEngineUnavailable as exc:
                raise UserError(
                    _(
                        "The tax engine is unavailable (%(reason)s). Try again "
                        "later; posting follows the backend's outage policy.",
                        reason=exc.message,
                    )
                ) from None
            except TaxEngineRejected as exc:
                raise move._tax_rejected_error(exc) from None
        return True

    def action_tax_commit(self):
        """Queue the commit of posted invoices whose taxes are not recorded at
        the engine yet (after a true-up was settled, or to retry now; users
        with invoicing rights who may edit the invoices)."""
        check_action(
            self, const.INVOICING_GROUP, "write", _("commit an invoice's taxes")
        )
        for move in self:
            if move.state != "posted" or move.tax_state not in (
                "quoted",
                "pending",
                "fallback",
                "voided",
            ):
                raise UserError(
                    _("%(move)s has nothing to commit.", move=move.display_name)
                )
            move._tax_enqueue("commit", "_tax_job_commit")
        return True

    # ------------------------------------------------------------ documents

    def _tax_engine_eligible(self):
        return self.move_type in const.TAXED_MOVE_TYPES

    def _tax_base_lines(self):
        return self.invoice_line_ids.filtered(
            lambda line: line.display_type == "product"
        )

    def _tax_line_quantity(self, line):
        return line.quantity

    def _tax_line_fields(self):
        return "line_ids", "tax_ids"

    def _tax_customer(self):
        return self.commercial_partner_id

    def _tax_document_date(self):
        return self.invoice_date or fields.Date.context_today(self)

    def _tax_job_key(self, kind):
        return f"qtc_tax:{kind}:{self.id}"

    def _tax_quote_code(self):
        # A quote is never recorded: a stable code keeps the cache key stable
        # while the draft's name is still "/" or changes.
        return f"ODOO-MOVE-{self.id}"

    # ------------------------------------------------------ quote and apply

    def _tax_apply(self, result):
        """Put the engine's taxes on the lines as Odoo taxes, then align the tax
        journal items so the invoice's tax equals the engine's to the cent.

        Odoo computes each percent tax itself (per line or globally, as the
        company rounds); where its rounding differs from the engine's, the tax
        journal item of that jurisdiction is corrected the way a user edits a
        tax amount on a draft bill, so reports and journal items stay standard.

        :raises TaxEngineUnavailable: the answer misses a line (unusable)
        :raises UserError: the totals still differ (never expected)
        """
        self.ensure_one()
        expected = self._tax_apply_engine_taxes(result)
        self._tax_align_tax_lines(expected)
        self._tax_check_total(result)

    def _tax_align_tax_lines(self, expected):
        """Set each engine tax's journal item to the engine's amount.

        :param expected: ``{account.tax id: Decimal amount}`` in the invoice
            currency, positive for taxes charged
        """
        self.ensure_one()
        sign = -1 if self.is_inbound() else 1
        currency = self.currency_id
        commands = []
        for tax_id, amount in expected.items():
            tax_lines = self.line_ids.filtered(
                lambda line, tax_id=tax_id: line.tax_line_id.id == tax_id
            )
            current = sum(tax_lines.mapped("amount_currency")) * sign
            delta = float(amount) - current
            if currency.is_zero(delta):
                continue
            if not tax_lines:
                raise UserError(
                    _(
                        "%(move)s has no journal item for the engine tax %(tax)s.",
                        move=self.display_name,
                        tax=self.env["account.tax"].browse(tax_id).sudo().name,
                    )
                )
            first = tax_lines[0]
            new_amount = currency.round(first.amount_currency + delta * sign)
            if first.currency_id == self.company_currency_id:
                balance = new_amount
            else:
                balance = self.company_currency_id.round(
                    new_amount / (first.currency_rate or 1.0)
                )
            commands.append(
                Command.update(
                    first.id, {"amount_currency": new_amount, "balance": balance}
                )
            )
        if commands:
            self.write({"line_ids": commands})

    def _tax_prepare_post(self):
        """Quote before posting; decide what an outage does.

        :returns: ``"ok"``, ``"held"`` (stays draft) or ``"fallback"`` (post
            with the lines' taxes)
        :raises TaxUserError: the engine rejected the document
        """
        self.ensure_one()
        try:
            self._tax_quote()
        except TaxEngineUnavailable as exc:
            if self._tax_backend_sudo().tax_outage_policy == "fallback":
                self.tax_state = "fallback"
                self.message_post(
                    body=_(
                        "Tax engine unavailable (%(reason)s): posted with the taxes "
                        "on the lines; a true-up check is queued.",
                        reason=exc.message,
                    )
                )
                return "fallback"
            self._tax_hold(exc)
            return "held"
        except TaxEngineRejected as exc:
            raise self._tax_rejected_error(exc) from None
        return "ok"

    # ------------------------------------------------------------- outages

    def _tax_hold(self, error):
        """Keep the invoice in draft until the engine answers: tax pending, a
        retry job, and an exception for finance."""
        self.ensure_one()
        self._tax_wait_for_engine(
            "hold",
            "_tax_job_retry_held",
            BusinessError(
                _(
                    "%(move)s is held in draft: the tax engine is unavailable.",
                    move=self.display_name,
                ),
                category="tax",
                problems=[error.message],
                records=[("account.move", self.id)],
                suggested_action=_(
                    "Nothing to do while the outage lasts: the invoice is "
                    "re-quoted and posted as soon as the engine answers. To bill "
                    "now, switch the backend's outage policy to fallback and post."
                ),
            ),
            _(
                "Kept in draft: the tax engine is unavailable (%(reason)s). It "
                "will be re-quoted and posted when the engine answers.",
                reason=error.message,
            ),
        )

    def _tax_reject(self, error):
        """Keep an invoice the engine refused in draft, flagged rejected, with
        a tax exception naming the fields to fix (a batch post goes on)."""
        self.ensure_one()
        self.tax_state = "rejected"
        self._tax_open_exception(None, error)
        self.message_post(
            body=_(
                "Not posted: %(error)s %(problems)s",
                error=error.summary,
                problems=" ".join(error.problems),
            )
        )

    # ----------------------------------------------------------------- jobs

    @job_function
    def _tax_job_retry_held(self):
        """Job: re-quote a held invoice and post it once the engine answers."""
        self.ensure_one()
        if self.state != "draft" or self.tax_state != "pending":
            return "nothing to do: the invoice is no longer held"
        try:
            self._tax_quote()
        except TaxEngineUnavailable as exc:
            return self._tax_reschedule("hold", "_tax_job_retry_held", exc)
        except TaxEngineRejected as exc:
            raise self._tax_rejected_error(exc) from None
        # Posting quotes again from the cache (no call) and queues the commit.
        self.action_post()
        if self.state != "posted":
            return "quoted; not posted (scheduled for a later date)"
        self.tax_retry_count = 0
        self._tax_resolve_exception(_("Re-quoted and posted once the engine answered."))
        self.env["qtc.trace"]._qtc_record(
            self,
            "updated",
            note=_("Held invoice re-quoted and posted"),
            backend=self._tax_backend_sudo(),
        )
        return f"posted {self.name}"

    def _tax_void_outstanding(self):
        return bool(
            self.env["qtc.job"]
            .sudo()
            .search_count(
                [
                    ("identity_key", "=", f"qtc_tax:void:{self.id}"),
                    ("state", "in", ("pending", "started")),
                    ("id", "!=", self.env.context.get("qtc_job_id") or 0),
                ]
            )
        )

    @job_function
    def _tax_job_commit(self):
        """Job: record the posted invoice at the engine under its number (a
        credit note as a refund of its origin). Idempotent: the engine returns
        the transaction an earlier attempt recorded."""
        self.ensure_one()
        if self.state != "posted":
            return "nothing to do: not posted"
        if self.tax_state == "committed":
            return f"already committed as {self.tax_document_code}"
        if self._tax_void_outstanding():
            return self._tax_reschedule(
                "commit",
                "_tax_job_commit",
                TaxEngineUnavailable(_("the previous transaction is being voided")),
            )
        backend_sudo = self._tax_backend_sudo()
        code = self.name
        try:
            if self.move_type == "out_refund":
                origin = self.reversed_entry_id
                doc = self._tax_document(DocumentType.RETURN_INVOICE, code)
                result = backend_sudo._tax_call(
                    "refund",
                    doc,
                    origin.tax_document_code or origin.name or self.ref or code,
                    origin.invoice_date or None,
                )
            else:
                doc = self._tax_document(DocumentType.SALES_INVOICE, code)
                result = backend_sudo._tax_call("commit", doc)
        except TaxEngineUnavailable as exc:
            if self.tax_state != "fallback":
                self.tax_state = "pending"
            return self._tax_reschedule("commit", "_tax_job_commit", exc)
        except TaxEngineRejected as exc:
            raise self._tax_rejected_error(exc) from None
        if not result.committed:
            raise TaxUserError(
                _(
                    "The engine did not record %(code)s as committed.",
                    code=code,
                ),
                category="tax",
                problems=[
                    _(
                        "An earlier transaction with this code may have been "
                        "voided at the engine; adjust it there."
                    )
                ],
                records=[("account.move", self.id)],
                suggested_action=_(
                    "Check the transaction with this code at the tax engine, then "
                    "use Commit taxes on the invoice."
                ),
            )
        engine_total = abs(result.total_tax)
        self.write(
            {
                "tax_state": "committed",
                "tax_document_code": code,
                "tax_transaction_id": result.engine_transaction_id,
                "tax_engine_total": float(engine_total),
                "tax_retry_count": 0,
            }
        )
        self.env["qtc.trace"]._qtc_record(
            self,
            "updated",
            note=_("Taxes committed as %(code)s", code=code),
            backend=backend_sudo,
        )
        if self.currency_id.compare_amounts(float(engine_total), self.amount_tax):
            self._tax_record_trueup(
                engine_total,
                _("The committed tax differs from the tax invoiced."),
            )
        else:
            self._tax_resolve_exception(_("Taxes committed as %s.", code))
        return f"committed {code}"

    @job_function
    def _tax_job_void(self, document_code):
        """Job: void the engine transaction of an invoice reset to draft or
        cancelled. A transaction the engine does not know is nothing to void."""
        self.ensure_one()
        backend_sudo = self._tax_backend_sudo()
        try:
            backend_sudo._tax_call("void", document_code)
        except TaxEngineUnavailable as exc:
            return self._tax_reschedule(
                "void", "_tax_job_void", exc, args=[document_code]
            )
        except TaxEngineRejected as exc:
            if exc.status != 404 and exc.code not in NOT_FOUND_CODES:
                raise self._tax_rejected_error(exc) from None
            return f"nothing to void: {document_code} is unknown to the engine"
        self.message_post(
            body=_("Tax transaction %(code)s voided.", code=document_code)
        )
        self.env["qtc.trace"]._qtc_record(
            self,
            "reversed",
            note=_("Tax transaction %(code)s voided", code=document_code),
            backend=backend_sudo,
        )
        return f"voided {document_code}"

    @job_function
    def _tax_job_trueup(self):
        """Job: once the engine answers, compare what it computes for an invoice
        posted with Odoo's taxes during an outage with what was charged."""
        self.ensure_one()
        if self.state != "posted" or self.tax_state != "fallback":
            return "nothing to do: not a fallback invoice"
        backend_sudo = self._tax_backend_sudo()
        doc = self._tax_document(DocumentType.SALES_ORDER, self._tax_quote_code())
        try:
            result = backend_sudo._tax_call("quote", doc)
        except TaxEngineUnavailable as exc:
            return self._tax_reschedule("trueup", "_tax_job_trueup", exc)
        except TaxEngineRejected as exc:
            raise self._tax_rejected_error(exc) from None
        trueup = self._tax_record_trueup(
            result.total_tax,
            _("Posted with Odoo's taxes while the engine was unavailable."),
        )
        if self.currency_id.is_zero(trueup.difference):
            trueup.state = "done"
            self._tax_enqueue("commit", "_tax_job_commit")
            return "no difference; commit queued"
        return f"difference {trueup.difference}"

    def _tax_record_trueup(self, engine_tax, note):
        """Write a true-up line; a difference opens a tax exception."""
        self.ensure_one()
        # sudo: the true-up report is finance's, written by the invoice's job.
        trueup_sudo = (
            self.env["qtc.tax.trueup"]
            .sudo()
            .create(
                {
                    "move_id": self.id,
                    "backend_id": self.tax_backend_id.id,
                    "odoo_tax": self.amount_tax,
                    "engine_tax": float(engine_tax),
                    "note": note,
                }
            )
        )
        self.env["qtc.trace"]._qtc_record(
            trueup_sudo, "created", backend=self._tax_backend_sudo()
        )
        if not self.currency_id.is_zero(trueup_sudo.difference):
            job = self.env["qtc.job"].sudo().browse(self.env.context.get("qtc_job_id"))
            error = BusinessError(
                _(
                    "Tax true-up of %(move)s: the engine computes %(engine)s, the "
                    "invoice charged %(odoo)s (difference %(difference)s).",
                    move=self.display_name,
                    engine=trueup_sudo.engine_tax,
                    odoo=trueup_sudo.odoo_tax,
                    difference=trueup_sudo.difference,
                ),
                category="tax",
                problems=[note],
                records=[("account.move", self.id)],
                suggested_action=_(
                    "Issue a credit note or a supplementary invoice for the "
                    "difference, mark the true-up settled, then use Commit taxes "
                    "on the invoice."
                ),
            )
            if job.exists():
                self._tax_open_exception(job, error)
            else:
                self.message_post(body=str(error))
        return trueup_sudo
