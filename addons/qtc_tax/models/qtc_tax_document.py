import json
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError

from ..lib import cache, codec, totals
from ..lib.engine import (
    DocumentType,
    JurisdictionTax,
    TaxDocument,
    TaxEngineUnavailable,
    TaxLine,
)
from ..utils import TaxUserError, amount_decimal, partner_address, to_decimal
from .qtc_backend import TAX_PROVIDERS

ADDRESS_PART_LABELS = {
    "line1": "street",
    "line2": "street 2",
    "city": "city",
    "region": "state",
    "postal_code": "ZIP",
    "country": "country",
}


class QtcTaxDocument(models.AbstractModel):
    """A document whose taxes an external engine quotes: customer invoices here,
    sale orders in ``qtc_tax_sale``.

    Holds what every such document shares: the translation into the engine's
    ``TaxDocument``, the quote cache (request hash and stored answer), the
    mapping of the answer to Odoo taxes per jurisdiction rate, the messages that
    name what to fix, and the document's jobs and exception.

    The inheriting model has ``company_id``, ``currency_id``, ``partner_id``,
    ``partner_shipping_id``, ``tax_state`` and ``tax_engine_total`` (a
    monetary field needs the model's currency field), and provides the hooks
    ``_tax_base_lines``, ``_tax_line_quantity``, ``_tax_document_date``,
    ``_tax_quote_code``, ``_tax_line_fields`` and ``_tax_apply``. It gets
    ``tax_backend_id`` (the company's active engine, changeable) from here.
    """

    _name = "qtc.tax.document"
    _description = "QTC document taxed by an engine"

    tax_backend_id = fields.Many2one(
        "qtc.backend",
        string="Tax engine",
        compute="_compute_tax_backend_id",
        store=True,
        readonly=False,
        precompute=True,
        domain=f"[('provider', 'in', {list(TAX_PROVIDERS)!r}), "
        "('state', '=', 'active'), ('company_id', '=', company_id)]",
        help="The engine that quotes this document's taxes; empty: Odoo's own "
        "taxes only.",
    )
    tax_quote_hash = fields.Char(copy=False, readonly=True)
    tax_engine_result = fields.Text(
        copy=False, readonly=True, help="The engine's last answer (JSON)."
    )
    tax_retry_count = fields.Integer(copy=False, readonly=True)
    tax_exception_id = fields.Many2one(
        "qtc.exception", string="Tax exception", copy=False, readonly=True
    )

    @api.depends("company_id")
    def _compute_tax_backend_id(self):
        # sudo: which engine taxes the company's documents is configuration
        # every sales and invoicing user relies on, not data they may read
        # (a salesman has no access to backends at all). Stored computes run
        # as superuser anyway; the sudo keeps a direct call right too.
        backends_sudo = self.env["qtc.backend"].sudo()
        for document in self:
            if not document._tax_engine_eligible():
                document.tax_backend_id = False
            elif document.tax_backend_id.sudo().company_id != document.company_id:
                document.tax_backend_id = backends_sudo._tax_backend_for(
                    document.company_id
                )

    # ---------------------------------------------------------------- hooks

    def _tax_engine_eligible(self):
        """Whether this kind of document is taxed by an engine at all."""
        return True

    def _tax_applies(self):
        self.ensure_one()
        return bool(
            self._tax_engine_eligible()
            and self.tax_backend_id
            and self._tax_backend_sudo().state == "active"
        )

    def _tax_backend_sudo(self):
        """The document's tax backend, as superuser.

        sudo: the engine is called on behalf of whoever quotes or posts (a
        salesman or an invoicing user, with no access to backends): the
        backend reads its own settings and secrets. Only the backend is
        elevated, never the document; nothing of it goes back to the user but
        its name and the engine's answer.
        """
        return self.tax_backend_id.sudo()

    def _tax_base_lines(self):
        """The lines sent to the engine, one ``TaxLine`` each."""
        raise NotImplementedError

    def _tax_line_quantity(self, line):
        raise NotImplementedError

    def _tax_line_amount(self, line):
        """What the engine is sent for a line: price times quantity after
        discount, tax excluded, in the document's currency minor unit.

        :returns: ``Decimal``
        """
        quantity = self._tax_line_quantity(line)
        amount = line.price_unit * quantity * (1 - (line.discount or 0) / 100)
        return amount_decimal(amount, self.currency_id or self.company_id.currency_id)

    def _tax_ship_to_partner(self):
        return self.partner_shipping_id or self.partner_id

    def _tax_ship_from_partner(self):
        """The backend's ship-from address, or else the company's."""
        return self._tax_backend_sudo().tax_ship_from_id or self.company_id.partner_id

    def _tax_customer(self):
        return self.partner_id.commercial_partner_id

    def _tax_document_date(self):
        return fields.Date.context_today(self)

    def _tax_quote_code(self):
        raise NotImplementedError

    def _tax_apply(self, result):
        """Put the engine's answer on the document."""
        raise NotImplementedError

    def _tax_job_key(self, kind):
        return f"{self._name}:{kind}:{self.id}"

    # ------------------------------------------------------------ documents

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
        return partner_address(partner)

    def _tax_document(self, document_type, code):
        """The document as a ``lib.engine.TaxDocument``.

        Line numbers are the line ids; amounts are price times quantity after
        discount, in the document's currency, tax excluded.

        :raises TaxUserError: an address, country or line is missing
        """
        self.ensure_one()
        problems = []
        ship_to = self._tax_address(self._tax_ship_to_partner(), "ship_to", problems)
        ship_from = self._tax_address(
            self._tax_ship_from_partner(), "ship_from", problems
        )
        currency = self.currency_id
        lines = []
        for line in self._tax_base_lines():
            lines.append(
                TaxLine(
                    number=str(line.id),
                    amount=self._tax_line_amount(line),
                    quantity=to_decimal(self._tax_line_quantity(line)),
                    item_code=(line.product_id.default_code or "")[:50],
                    description=(line.name or line.product_id.display_name or "")[:255],
                    tax_code=line.product_id.tax_engine_code or "",
                )
            )
        if not lines:
            problems.append(
                _(
                    "lines: %(document)s has no product line to tax.",
                    document=self.display_name,
                )
            )
        if problems:
            raise TaxUserError(
                _(
                    "%(document)s cannot be sent to the tax engine.",
                    document=self.display_name,
                ),
                category="tax",
                problems=problems,
                records=[(self._name, self.id)],
                suggested_action=_("Complete the data named above, then try again."),
            )
        customer = self._tax_customer()
        return TaxDocument(
            code=code,
            type=document_type,
            date=self._tax_document_date(),
            currency=currency.name,
            customer_code=customer.ref or f"ODOO-{customer.id}",
            ship_from=ship_from,
            ship_to=ship_to,
            lines=lines,
            exemption_number=customer.tax_exemption_number or None,
            entity_use_code=customer.tax_entity_use_code or None,
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
        """Quote the document (or reuse the cached answer) and apply it.

        The request hash covers the document and the engine settings: an
        unchanged document is not sent again, its stored answer is re-applied
        (which also repairs taxes edited by hand since).

        :returns: the ``TaxResult``
        :raises TaxEngineUnavailable, TaxEngineRejected: from the engine
        :raises TaxUserError: the document or the backend lacks data
        """
        self.ensure_one()
        backend_sudo = self._tax_backend_sudo()
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

    def _tax_engine_taxes(self, result):
        """The Odoo taxes standing for the engine's answer.

        :returns: ``(taxes per line, expected)``: ``{line: account.tax}`` for
            every base line, and ``{account.tax id: Decimal}`` the amount the
            engine charges per tax in the document currency. When the engine's
            total is not the sum of its line details, the residual goes to the
            largest jurisdiction so the totals still agree.
        :raises TaxEngineUnavailable: the answer misses a line (unusable)
        """
        self.ensure_one()
        backend_sudo = self._tax_backend_sudo()
        expected = defaultdict(Decimal)
        taxes_per_line = {}
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
            taxes_per_line[line] = taxes
        return taxes_per_line, totals.align_to_total(expected, result.total_tax)

    def _tax_line_detail(self, line, tax):
        # The engine gave a line tax without its split: one tax at the
        # effective rate on the amount it was sent, aligned to the cent after.
        rate = totals.effective_rate(tax, self._tax_line_amount(line))
        return JurisdictionTax(_("Sales tax"), "", rate, tax)

    def _tax_apply_engine_taxes(self, result):
        """Put the engine's taxes on the lines.

        :returns: ``{account.tax id: Decimal}`` the engine's amount per tax
        :raises TaxEngineUnavailable: the answer misses a line (unusable)
        """
        self.ensure_one()
        taxes_per_line, expected = self._tax_engine_taxes(result)
        lines_field, taxes_field = self._tax_line_fields()
        commands = [
            Command.update(line.id, {taxes_field: [Command.set(taxes.ids)]})
            for line, taxes in taxes_per_line.items()
            if set(line[taxes_field].ids) != set(taxes.ids)
        ]
        if commands:
            self.write({lines_field: commands})
        return expected

    def _tax_line_fields(self):
        """``(the document's lines field, the lines' taxes field)``."""
        raise NotImplementedError

    def _tax_check_total(self, result):
        """:raises UserError: the document's tax differs from the engine's
        (never expected: a bug, not a data problem)."""
        self.ensure_one()
        currency = self.currency_id or self.company_id.currency_id
        if currency.compare_amounts(self.amount_tax, float(result.total_tax)):
            raise UserError(
                _(
                    "The taxes of %(document)s (%(odoo)s) could not be aligned "
                    "with the engine's (%(engine)s).",
                    document=self.display_name,
                    odoo=self.amount_tax,
                    engine=result.total_tax,
                )
            )

    # ------------------------------------------------------ jobs, exceptions

    def _tax_enqueue(self, kind, method, args=None, delay=0):
        """Queue this document's ``kind`` job (one pending job per kind and
        document: the identity key)."""
        self.ensure_one()
        backend_sudo = self._tax_backend_sudo()
        eta = fields.Datetime.now() + timedelta(seconds=delay) if delay else None
        # sudo: billing and sales users queue the engine work of their documents
        # without access to the queue itself; the job runs as them.
        return (
            self.env["qtc.job"]
            .sudo()
            ._qtc_enqueue(
                self,
                method,
                args,
                name=f"Tax {kind}: {self.display_name}",
                backend=backend_sudo,
                identity_key=self._tax_job_key(kind),
                eta=eta,
                # The document itself: never taxed by two jobs at once, nor
                # while another connector's job (a payment) writes it.
                resources=[f"{self._name}:{self.id}"],
            )
        )

    def _tax_wait_for_engine(self, kind, method, error, note):
        """Flag the document pending until the engine answers: a ``kind`` job
        calling ``method`` later, the document's exception opened (or counted
        again) with ``error``, and ``note`` in the chatter.

        :param error: the ``BusinessError`` finance sees
        """
        self.ensure_one()
        self.tax_state = "pending"
        delay = self._tax_backend_sudo()._tax_retry_delay(self.tax_retry_count + 1)
        job = self._tax_enqueue(kind, method, delay=delay)
        self._tax_open_exception(job, error)
        self.message_post(body=note)
        return job

    def _tax_reschedule(self, kind, method, error, args=None):
        """Try again later (doubling delay, at least until the breaker's probe);
        the current job ends done, so the breaker state it recorded is kept."""
        self.ensure_one()
        self.tax_retry_count += 1
        delay = self._tax_backend_sudo()._tax_retry_delay(self.tax_retry_count)
        job = self._tax_enqueue(kind, method, args=args, delay=delay)
        # sudo: the exception follows the new job (see _tax_open_exception).
        exception_sudo = self.tax_exception_id.sudo()
        if exception_sudo.state == "open":
            exception_sudo.job_id = job
        return _(
            "engine unavailable (%(reason)s); next try in %(delay)s s",
            reason=error.message,
            delay=delay,
        )

    def _tax_open_exception(self, job, error):
        """Open the document's tax exception, or count one more occurrence of
        the one still open (one exception per document, not one per retry).

        :param job: the job concerned, or an empty/``None`` value when the
            problem arose outside a job (a batch post by a person)
        """
        self.ensure_one()
        exception_sudo = self.tax_exception_id.sudo()
        if exception_sudo.state == "open":
            values = {"occurrences": exception_sudo.occurrences + 1}
            if job:
                values["job_id"] = job.id
            exception_sudo.write(values)
            exception_sudo.message_post(body=str(error))
            return exception_sudo
        # sudo: finance's exception queue is written on behalf of whoever
        # posted; the exception names the document, not the user's data.
        exceptions_sudo = self.env["qtc.exception"].sudo()
        if job:
            exception_sudo = exceptions_sudo._qtc_open_from_error(job, error)
        else:
            exception_sudo = exceptions_sudo._qtc_open(
                error,
                backend=self._tax_backend_sudo(),
                company=self.company_id,
            )
        self.tax_exception_id = exception_sudo
        return exception_sudo

    def _tax_resolve_exception(self, resolution):
        # sudo: finance's exception is closed on behalf of whoever's work
        # resolved it (see _tax_open_exception).
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
                "The tax engine rejected %(document)s: %(reason)s. Fields: %(fields)s.",
                document=self.display_name,
                reason=error.message,
                fields=", ".join(error.fields) or _("(not named by the engine)"),
            ),
            category="tax",
            problems=problems or [error.message],
            records=[(self._name, self.id)],
            suggested_action=_(
                "Correct the fields named above (customer address, exemption "
                "certificate, product tax code), then try again."
            ),
        )

    def _tax_field_label(self, name):
        """Explain an engine field name (``ship_to.postal_code``) in Odoo terms."""
        root, _dot, part = name.partition(".")
        part_label = ADDRESS_PART_LABELS.get(part, part) or _("address")
        if root in ("ship_to", "addresses"):
            return _(
                "%(name)s: %(part)s of the delivery address of %(partner)s",
                name=name,
                part=part_label,
                partner=self._tax_ship_to_partner().display_name,
            )
        if root == "ship_from":
            origin = self._tax_ship_from_partner().display_name
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
                else "tax_entity_use_code"
            )
            return _(
                "%(name)s: %(field)s of customer %(partner)s",
                name=name,
                field=self.env["res.partner"]._fields[field].string,
                partner=self._tax_customer().display_name,
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
