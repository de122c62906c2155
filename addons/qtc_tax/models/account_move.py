import json
import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from odoo import Command, _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.exceptions import UserError

from .. import const
from ..lib import cache, codec
from ..lib.avatax_engine import NOT_FOUND_CODES
from ..lib.engine import (
    Address,
    DocumentType,
    JurisdictionTax,
    TaxDocument,
    TaxEngineRejected,
    TaxEngineUnavailable,
    TaxLine,
)
from ..utils import TaxUserError, amount_decimal, to_decimal
from .qtc_backend import TAX_PROVIDERS

_logger = logging.getLogger(__name__)

ADDRESS_PART_LABELS = {
    "line1": "street",
    "line2": "street 2",
    "city": "city",
    "region": "state",
    "postal_code": "ZIP",
    "country": "country",
}


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
    _inherit = ["account.move", "qtc.trace.mixin"]

    tax_backend_id = fields.Many2one(
        "qtc.backend",
        string="Tax engine",
        compute="_compute_tax_backend_id",
        store=True,
        readonly=False,
        precompute=True,
        domain=[("provider", "in", TAX_PROVIDERS), ("state", "=", "active")],
        help="The engine that quotes and records this invoice's taxes; empty: "
        "Odoo's own taxes only.",
    )
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
    tax_quote_hash = fields.Char(copy=False, readonly=True)
    tax_engine_result = fields.Text(
        copy=False, readonly=True, help="The engine's last answer (JSON)."
    )
    tax_engine_total = fields.Monetary(
        string="Engine tax total", copy=False, readonly=True
    )
    tax_retry_count = fields.Integer(copy=False, readonly=True)
    tax_exception_id = fields.Many2one(
        "qtc.exception", string="Tax exception", copy=False, readonly=True
    )
    tax_trueup_ids = fields.One2many(
        "qtc.tax.trueup", "move_id", string="Tax true-ups", readonly=True
    )

    @api.depends("move_type", "company_id")
    def _compute_tax_backend_id(self):
        # sudo: which engine taxes the company's invoices is configuration every
        # invoicing user relies on, not data they need access to.
        backends_sudo = self.env["qtc.backend"].sudo()
        for move in self:
            if move.move_type not in const.TAXED_MOVE_TYPES:
                move.tax_backend_id = False
            elif move.tax_backend_id.company_id != move.company_id:
                move.tax_backend_id = backends_sudo._tax_backend_for(move.company_id)

    # ------------------------------------------------------------- posting

    def _post(self, soft=True):
        """Quote engine-taxed invoices before posting them.

        An engine outage never blocks the batch: under the "hold" policy the
        invoice stays in draft (tax pending, retry job, exception) and the
        others are posted; under "fallback" it is posted with the taxes already
        on its lines and a true-up job is queued. A rejected document raises a
        ``TaxUserError`` naming the fields to fix.
        """
        if self.env.context.get("qtc_tax_skip"):
            return super()._post(soft)
        taxed = self.filtered(
            lambda move: move.state == "draft" and move._tax_applies()
        )
        held = self.browse()
        fallback = self.browse()
        for move in taxed:
            outcome = move._tax_prepare_post()
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
        held = self.filtered(
            lambda move: move.state == "draft" and move.tax_state == "pending"
        )
        if held and not result:
            return {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "title": _("Tax engine unavailable"),
                    "message": _(
                        "%(count)s invoice(s) kept in draft until the tax engine "
                        "answers: %(names)s. They are posted automatically then; "
                        "the others were posted.",
                        count=len(held),
                        names=", ".join(held.mapped("display_name")),
                    ),
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
        """Quote the draft invoice now and apply the engine's taxes."""
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
        the engine yet (after a true-up was settled, or to retry now)."""
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

    def _tax_applies(self):
        self.ensure_one()
        return bool(
            self.move_type in const.TAXED_MOVE_TYPES
            and self.tax_backend_id
            and self.tax_backend_id.sudo().state == "active"
        )

    def _tax_base_lines(self):
        return self.invoice_line_ids.filtered(
            lambda line: line.display_type == "product"
        )

    def _tax_quote_code(self):
        # A quote is never recorded: a stable code keeps the cache key stable
        # while the draft's name is still "/" or changes.
        return f"ODOO-MOVE-{self.id}"

    def _tax_address(self, partner, role, problems):
        if not partner:
            problems.append(_("%(role)s: no address.", role=role))
            return None
        if not partner.country_id:
            problems.append(
                _(
                    "%(role)s.country: %(partner)s has no country.",
                    role=role,
                    partner=partner.display_name,
                )
            )
            return None
        return Address(
            country=partner.country_id.code.upper(),
            line1=partner.street or "",
            line2=partner.street2 or "",
            city=partner.city or "",
            region=partner.state_id.code or "",
            postal_code=partner.zip or "",
        )

    def _tax_document(self, document_type, code):
        """The invoice as a ``lib.engine.TaxDocument``.

        Line numbers are the invoice line ids; amounts are price times quantity
        after discount, in the invoice currency, tax excluded.

        :raises TaxUserError: an address, country or line is missing
        """
        self.ensure_one()
        backend_sudo = self.tax_backend_id.sudo()
        problems = []
        ship_to = self._tax_address(
            self.partner_shipping_id or self.partner_id, "ship_to", problems
        )
        ship_from = self._tax_address(
            backend_sudo.tax_ship_from_id or self.company_id.partner_id,
            "ship_from",
            problems,
        )
        currency = self.currency_id
        lines = []
        for line in self._tax_base_lines():
            amount = line.price_unit * line.quantity * (1 - (line.discount or 0) / 100)
            lines.append(
                TaxLine(
                    number=str(line.id),
                    amount=amount_decimal(amount, currency),
                    quantity=to_decimal(line.quantity),
                    item_code=(line.product_id.default_code or "")[:50],
                    description=(line.name or line.product_id.display_name or "")[:255],
                    tax_code=line.product_id.tax_engine_code or "",
                )
            )
        if not lines:
            problems.append(_("lines: the invoice has no product line to tax."))
        if problems:
            raise TaxUserError(
                _(
                    "%(move)s cannot be sent to the tax engine.",
                    move=self.display_name,
                ),
                category="tax",
                problems=problems,
                records=[("account.move", self.id)],
                suggested_action=_("Complete the data named above, then post again."),
            )
        commercial = self.commercial_partner_id
        return TaxDocument(
            code=code,
            type=document_type,
            date=self.invoice_date or fields.Date.context_today(self),
            currency=currency.name,
            customer_code=commercial.ref or f"ODOO-{commercial.id}",
            ship_from=ship_from,
            ship_to=ship_to,
            lines=lines,
            exemption_number=commercial.tax_exemption_number or None,
            entity_use_code=commercial.tax_entity_use_code or None,
        )

    # ------------------------------------------------------ quote and apply

    def _tax_stored_result(self):
        if not self.tax_engine_result:
            return None
        try:
            return codec.result_from_dict(json.loads(self.tax_engine_result))
        except (TypeError, ValueError):
            return None

    def _tax_quote(self):
        """Quote the draft invoice (or reuse the cached answer) and apply it.

        The request hash covers the document and the engine settings: an
        unchanged invoice is not sent again, its stored answer is re-applied
        (which also repairs taxes edited by hand since).

        :returns: the ``TaxResult``
        :raises TaxEngineUnavailable, TaxEngineRejected: from the engine
        :raises TaxUserError: the invoice or the backend lacks data
        """
        self.ensure_one()
        backend_sudo = self.tax_backend_id.sudo()
        doc = self._tax_document(DocumentType.SALES_ORDER, self._tax_quote_code())
        request = cache.request_hash(doc, backend_sudo._tax_cache_context())
        result = None
        if request == self.tax_quote_hash:
            result = self._tax_stored_result()
        cached = result is not None
        if not cached:
            result = backend_sudo._tax_call("quote", doc)
        self._tax_apply(result)
        self.write(
            {
                "tax_state": "quoted",
                "tax_quote_hash": request,
                "tax_engine_result": json.dumps(codec.result_to_dict(result)),
                "tax_engine_total": float(result.total_tax),
            }
        )
        if not cached:
            self.env["qtc.trace"]._qtc_record(
                self,
                "updated",
                note=_("Taxes quoted: %(total)s", total=result.total_tax),
                backend=backend_sudo,
            )
        return result

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
        backend_sudo = self.tax_backend_id.sudo()
        expected = defaultdict(Decimal)
        commands = []
        for line in self._tax_base_lines():
            try:
                line_result = result.line(str(line.id))
            except KeyError:
                raise TaxEngineUnavailable(
                    f"the engine's answer has no line {line.id}",
                    code="MalformedResponse",
                ) from None
            details = [detail for detail in line_result.details if detail.tax]
            if not details and line_result.tax:
                details = [self._tax_line_detail(line, line_result.tax)]
            taxes = self.env["account.tax"]
            for detail in details:
                tax = backend_sudo._tax_odoo_tax(detail, self.company_id)
                taxes |= tax
                expected[tax.id] += detail.tax
            if set(line.tax_ids.ids) != set(taxes.ids):
                commands.append(
                    Command.update(line.id, {"tax_ids": [Command.set(taxes.ids)]})
                )
        if commands:
            self.write({"line_ids": commands})
        # An engine whose total is not the sum of its line details: the
        # residual goes to the largest jurisdiction, so the totals still agree.
        residual = result.total_tax - sum(expected.values(), Decimal(0))
        if residual and expected:
            largest = max(expected, key=lambda tax_id: abs(expected[tax_id]))
            expected[largest] += residual
        self._tax_align_tax_lines(expected)
        if self.currency_id.compare_amounts(self.amount_tax, float(result.total_tax)):
            raise UserError(
                _(
                    "The taxes of %(move)s (%(odoo)s) could not be aligned with the "
                    "engine's (%(engine)s).",
                    move=self.display_name,
                    odoo=self.amount_tax,
                    engine=result.total_tax,
                )
            )

    def _tax_line_detail(self, line, tax):
        # The engine gave a line tax without its split: one tax at the
        # effective rate, aligned to the cent afterwards.
        base = Decimal(repr(line.price_subtotal or 0.0))
        rate = (tax / base).quantize(Decimal("0.000001")) if base else Decimal(0)
        return JurisdictionTax(_("Sales tax"), "", rate, tax)

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
            if self.tax_backend_id.sudo().tax_outage_policy == "fallback":
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

    def _tax_enqueue(self, kind, method, args=None, delay=0):
        """Queue this invoice's ``kind`` job (one pending job per kind and
        invoice: the identity key)."""
        self.ensure_one()
        backend_sudo = self.tax_backend_id.sudo()
        eta = fields.Datetime.now() + timedelta(seconds=delay) if delay else None
        # sudo: invoicing users queue the engine work of their invoices without
        # access to the queue itself; the job runs as them.
        return (
            self.env["qtc.job"]
            .sudo()
            ._qtc_enqueue(
                self,
                method,
                args,
                name=f"Tax {kind}: {self.display_name}",
                backend=backend_sudo,
                identity_key=f"qtc_tax:{kind}:{self.id}",
                eta=eta,
            )
        )

    def _tax_hold(self, error):
        """Keep the invoice in draft until the engine answers: tax pending, a
        retry job, and an exception for finance."""
        self.ensure_one()
        backend_sudo = self.tax_backend_id.sudo()
        self.tax_state = "pending"
        job = self._tax_enqueue(
            "hold",
            "_tax_job_retry_held",
            delay=backend_sudo._tax_retry_delay(self.tax_retry_count + 1),
        )
        self._tax_open_exception(
            job,
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
        )
        self.message_post(
            body=_(
                "Kept in draft: the tax engine is unavailable (%(reason)s). It "
                "will be re-quoted and posted when the engine answers.",
                reason=error.message,
            )
        )

    def _tax_reschedule(self, kind, method, error, args=None):
        """Try again later (doubling delay, at least until the breaker's probe);
        the current job ends done, so the breaker state it recorded is kept."""
        self.ensure_one()
        self.tax_retry_count += 1
        delay = self.tax_backend_id.sudo()._tax_retry_delay(self.tax_retry_count)
        job = self._tax_enqueue(kind, method, args=args, delay=delay)
        exception_sudo = self.tax_exception_id.sudo()
        if exception_sudo.state == "open":
            exception_sudo.job_id = job
        return _(
            "engine unavailable (%(reason)s); next try in %(delay)s s",
            reason=error.message,
            delay=delay,
        )

    def _tax_open_exception(self, job, error):
        """Open the invoice's tax exception, or count one more occurrence of the
        one still open (one exception per invoice, not one per retry)."""
        self.ensure_one()
        exception_sudo = self.tax_exception_id.sudo()
        if exception_sudo.state == "open":
            exception_sudo.write(
                {"job_id": job.id, "occurrences": exception_sudo.occurrences + 1}
            )
            exception_sudo.message_post(body=str(error))
            return exception_sudo
        # sudo: finance's exception queue is written on behalf of whoever
        # posted; the exception names the invoice, not the user's data.
        exception_sudo = (
            self.env["qtc.exception"].sudo()._qtc_open_from_error(job, error)
        )
        self.tax_exception_id = exception_sudo
        return exception_sudo

    def _tax_resolve_exception(self, resolution):
        exception_sudo = self.tax_exception_id.sudo()
        if exception_sudo.state == "open":
            exception_sudo._qtc_close("resolved", resolution)

    def _tax_rejected_error(self, error):
        """A ``TaxUserError`` (category tax) naming what to fix, in the engine's
        field names and in Odoo's words."""
        self.ensure_one()
        labels = [self._tax_field_label(name) for name in error.fields]
        problems = labels + [detail for detail in error.details if detail]
        return TaxUserError(
            _(
                "The tax engine rejected %(move)s: %(reason)s. Fields: %(fields)s.",
                move=self.display_name,
                reason=error.message,
                fields=", ".join(error.fields) or _("(not named by the engine)"),
            ),
            category="tax",
            problems=problems or [error.message],
            records=[("account.move", self.id)],
            suggested_action=_(
                "Correct the fields named above (customer address, exemption "
                "certificate, product tax code), then post again."
            ),
        )

    def _tax_field_label(self, name):
        """Explain an engine field name (``ship_to.postal_code``) in Odoo terms."""
        root, _dot, part = name.partition(".")
        part_label = ADDRESS_PART_LABELS.get(part, part) or _("address")
        customer = (self.partner_shipping_id or self.partner_id).display_name
        if root in ("ship_to", "addresses"):
            return _(
                "%(name)s: %(part)s of the delivery address of %(partner)s",
                name=name,
                part=part_label,
                partner=customer,
            )
        if root == "ship_from":
            origin = self.tax_backend_id.sudo().tax_ship_from_id.display_name
            return _(
                "%(name)s: %(part)s of the ship-from address %(partner)s",
                name=name,
                part=part_label,
                partner=origin,
            )
        if name in ("exemption_number", "entity_use_code"):
            field = (
                "tax_exemption_number"
                if name == "exemption_number"
                else ("tax_entity_use_code")
            )
            return _(
                "%(name)s: %(field)s of customer %(partner)s",
                name=name,
                field=self.env["res.partner"]._fields[field].string,
                partner=self.commercial_partner_id.display_name,
            )
        if name.startswith("lines["):
            index = name[6:].split("]", 1)[0]
            lines = self._tax_base_lines()
            if index.isdigit() and int(index) < len(lines):
                line = lines[int(index)]
                return _(
                    "%(name)s: line %(number)s (%(label)s), product tax engine code",
                    name=name,
                    number=int(index) + 1,
                    label=line.product_id.display_name or line.name or "",
                )
        return name

    # ----------------------------------------------------------------- jobs

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
            backend=self.tax_backend_id.sudo(),
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
        backend_sudo = self.tax_backend_id.sudo()
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

    def _tax_job_void(self, document_code):
        """Job: void the engine transaction of an invoice reset to draft or
        cancelled. A transaction the engine does not know is nothing to void."""
        self.ensure_one()
        backend_sudo = self.tax_backend_id.sudo()
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

    def _tax_job_trueup(self):
        """Job: once the engine answers, compare what it computes for an invoice
        posted with Odoo's taxes during an outage with what was charged."""
        self.ensure_one()
        if self.state != "posted" or self.tax_state != "fallback":
            return "nothing to do: not a fallback invoice"
        backend_sudo = self.tax_backend_id.sudo()
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
            trueup_sudo, "created", backend=self.tax_backend_id.sudo()
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
