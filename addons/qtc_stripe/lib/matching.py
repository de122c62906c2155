"""Cash application: which open invoice a Stripe payment pays, if any.

The rule, in order:

1. **Metadata.** Our payment links put the Odoo invoice in the Stripe metadata
   (``odoo_invoice_id`` = database id, ``odoo_invoice`` = number). When the
   payment names an invoice, that invoice and no other is the match, whatever
   the amount. If it names one that is not open (already paid, cancelled,
   another company), if the id and the number disagree, if the number is shared
   by several open invoices, or if the currencies differ, the payment stays
   unapplied: guessing another invoice would hide a double payment or a bug.
2. **Customer and exact amount.** Without metadata, when the customer is known
   and exactly one of its open invoices in the payment's currency has an open
   amount equal to the payment, that invoice is the match. Two or more such
   invoices are ambiguous: unapplied, with those invoices as candidates.
3. **Otherwise unapplied**, with the candidates a finance user would look at
   first: the customer's open invoices in that currency, or, when the customer
   is unknown, the open invoices of exactly that amount.

A metadata match is then classified against the invoice's open amount:
``EXACT``, ``PARTIAL`` (the rest stays open) or ``OVERPAYMENT``. An overpayment
is never applied silently: the excess must be refunded, kept as credit or
applied elsewhere, and a person decides. ``MatchResult.requires_review`` says
when a person must act; ``MatchResult.reason`` says why, in words a finance
user reads.

Amounts are ``Decimal`` throughout. Odoo stores amounts as floats; the caller
converts them with the currency's rounding before calling (a float here is
refused, never compared).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from . import money


class MatchStatus(StrEnum):
    """How the payment relates to the invoice it was matched to (if any)."""

    EXACT = "exact"
    PARTIAL = "partial"
    OVERPAYMENT = "overpayment"
    UNAPPLIED = "unapplied"


class MatchMethod(StrEnum):
    """Which rule found the invoice."""

    INVOICE_ID = "invoice_id"
    INVOICE_REF = "invoice_ref"
    CUSTOMER_AMOUNT = "customer_amount"


_METHOD_WORDS = {
    MatchMethod.INVOICE_ID: "named by its id in the payment's metadata",
    MatchMethod.INVOICE_REF: "named by its number in the payment's metadata",
    MatchMethod.CUSTOMER_AMOUNT: (
        "the only open invoice of this customer for exactly this amount"
    ),
}


def _decimal_amount(value, what):
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}")
    return amount


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An open customer invoice that a payment could pay.

    :ivar id: Odoo database id
    :ivar name: invoice number, e.g. ``INV/2025/00042``
    :ivar partner_key: whatever identifies the customer for the caller (a
        commercial partner id, a Stripe customer id); compared with ``==``
    :ivar currency: ISO code (normalised to upper case)
    :ivar amount_residual: amount still open, ``Decimal`` > 0
    """

    id: int
    name: str
    partner_key: object
    currency: str
    amount_residual: Decimal

    def __post_init__(self):
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise ValueError(f"invoice id must be a positive integer, got {self.id!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"invoice {self.id}: name must be a non-empty string")
        # Frozen dataclass: normalised values are set through object.__setattr__.
        object.__setattr__(self, "currency", money.normalize_currency(self.currency))
        residual = _decimal_amount(
            self.amount_residual, f"invoice {self.name} amount_residual"
        )
        if residual <= 0:
            raise ValueError(
                f"invoice {self.name}: amount_residual must be positive, got {residual}"
            )
        object.__setattr__(self, "amount_residual", residual)

    @classmethod
    def coerce(cls, value):
        """Accept an ``OpenInvoice`` or a mapping with the same keys.

        :raises TypeError: for anything else, or a field of the wrong type
        :raises ValueError: for a missing key or an invalid value
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(
                f"an open invoice must be an OpenInvoice or a dict, "
                f"got {type(value).__name__}"
            )
        keys = ("id", "name", "partner_key", "currency", "amount_residual")
        missing = [key for key in keys if key not in value]
        if missing:
            raise ValueError(f"open invoice {value.get('id')!r} lacks {missing}")
        return cls(**{key: value[key] for key in keys})


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The decision for one payment.

    :ivar status: ``EXACT``, ``PARTIAL``, ``OVERPAYMENT`` or ``UNAPPLIED``
    :ivar reason: one or two sentences for the finance user
    :ivar invoice: the matched invoice; ``None`` when unapplied
    :ivar method: the rule that found it; ``None`` when unapplied
    :ivar difference: payment minus open amount of the matched invoice
        (positive: overpaid, negative: still open); ``None`` when unapplied
    :ivar candidates: invoices a person should look at when unapplied
    """

    status: MatchStatus
    reason: str
    invoice: OpenInvoice | None = None
    method: MatchMethod | None = None
    difference: Decimal | None = None
    candidates: tuple[OpenInvoice, ...] = ()

    @property
    def requires_review(self):
        """``True`` when a person must decide: unapplied or overpaid."""
        return self.status in (MatchStatus.UNAPPLIED, MatchStatus.OVERPAYMENT)


def _money_text(amount, currency):
    """``1,234.50 EUR``: the amount with its currency's decimals when exact."""
    quantum = Decimal(1).scaleb(-money.currency_exponent(currency))
    try:
        shown = amount.quantize(quantum)
    except InvalidOperation:
        shown = amount
    if shown != amount:
        shown = amount  # more decimals than the currency: show them, do not round
    return f"{shown:,} {currency}"


def _unapplied(reason, candidates=()):
    return MatchResult(
        status=MatchStatus.UNAPPLIED, reason=reason, candidates=tuple(candidates)
    )


def _classify(amount, currency, invoice, method):
    paid = _money_text(amount, currency)
    residual = _money_text(invoice.amount_residual, currency)
    difference = amount - invoice.amount_residual
    found = f"{invoice.name} ({_METHOD_WORDS[method]})"
    if difference == 0:
        status = MatchStatus.EXACT
        reason = (
            f"Payment of {paid} pays {invoice.name} in full ({_METHOD_WORDS[method]})."
        )
    elif difference < 0:
        status = MatchStatus.PARTIAL
        reason = (
            f"Payment of {paid} pays part of {found}: {residual} was open, "
            f"{_money_text(-difference, currency)} stays open."
        )
    else:
        status = MatchStatus.OVERPAYMENT
        reason = (
            f"Payment of {paid} is {_money_text(difference, currency)} more than "
            f"the {residual} open on {found}. A person must decide what to do "
            "with the excess: refund it, keep it as customer credit or apply it "
            "to another invoice."
        )
    return MatchResult(
        status=status,
        reason=reason,
        invoice=invoice,
        method=method,
        difference=difference,
    )


def _names(invoices):
    return ", ".join(invoice.name for invoice in invoices)


def _by_metadata(amount, currency, invoices, *, invoice_ref, invoice_id, partner_key):
    by_ref = [inv for inv in invoices if inv.name == invoice_ref] if invoice_ref else []
    if invoice_id is not None:
        by_id = [inv for inv in invoices if inv.id == invoice_id]
        named = f"invoice id {invoice_id}" + (
            f" ({invoice_ref})" if invoice_ref else ""
        )
        if not by_id:
            return _unapplied(
                f"The payment's metadata names {named}, which is not among the "
                "open invoices: it may be paid already, cancelled or in another "
                "company. Check for a double payment before applying it by hand.",
                by_ref or _suggestions(amount, currency, invoices, partner_key),
            )
        target = by_id[0]
        if invoice_ref and target.name != invoice_ref:
            return _unapplied(
                f"The payment's metadata disagrees with itself: invoice id "
                f"{invoice_id} is {target.name} but the invoice number given is "
                f"{invoice_ref}. Decide which invoice it pays.",
                [target, *by_ref],
            )
        method = MatchMethod.INVOICE_ID
    else:
        if not by_ref:
            return _unapplied(
                f"The payment's metadata names invoice {invoice_ref}, which is "
                "not among the open invoices: it may be paid already, cancelled "
                "or in another company. Check for a double payment before "
                "applying it by hand.",
                _suggestions(amount, currency, invoices, partner_key),
            )
        if len(by_ref) > 1:
            return _unapplied(
                f"The payment's metadata names invoice {invoice_ref}, and "
                f"{len(by_ref)} open invoices carry that number. Pick the right one.",
                by_ref,
            )
        target = by_ref[0]
        method = MatchMethod.INVOICE_REF
    if target.currency != currency:
        return _unapplied(
            f"The payment is in {currency} but {target.name}, named in its "
            f"metadata, is in {target.currency}. Apply it by hand.",
            [target],
        )
    return _classify(amount, currency, target, method)


def _suggestions(amount, currency, invoices, partner_key):
    """What a person should look at first when nothing matched."""
    if partner_key is not None:
        return [
            inv
            for inv in invoices
            if inv.partner_key == partner_key and inv.currency == currency
        ]
    return [
        inv
        for inv in invoices
        if inv.currency == currency and inv.amount_residual == amount
    ]


def match_payment(
    amount, currency, candidates, *, invoice_ref=None, invoice_id=None, partner_key=None
):
    """Decide which open invoice a payment pays, by the rule in the module doc.

    :param amount: payment amount, ``Decimal`` in major units, > 0
    :param currency: ISO code of the payment, any case
    :param candidates: open invoices (``OpenInvoice`` or dicts with ``id``,
        ``name``, ``partner_key``, ``currency``, ``amount_residual``)
    :param invoice_ref: invoice number from the payment's metadata, if any
    :param invoice_id: invoice id from the payment's metadata, if any
    :param partner_key: the paying customer's key, comparable with the
        candidates' ``partner_key``; ``None`` when the customer is unknown
    :returns: a ``MatchResult``; ``UNAPPLIED`` comes with candidates and a
        reason, never with an exception
    :raises TypeError: for a float or other non-``Decimal`` amount, or a
        candidate that is neither an ``OpenInvoice`` nor a mapping
    :raises ValueError: for an amount <= 0, an invalid currency, an invalid
        ``invoice_id`` or a malformed candidate
    """
    amount = _decimal_amount(amount, "payment amount")
    if amount <= 0:
        raise ValueError(f"payment amount must be positive, got {amount}")
    currency = money.normalize_currency(currency)
    invoices = [OpenInvoice.coerce(candidate) for candidate in candidates]
    if invoice_ref is not None and not isinstance(invoice_ref, str):
        raise TypeError("invoice_ref must be a string or None")
    invoice_ref = (invoice_ref or "").strip() or None
    if invoice_id is not None and (
        isinstance(invoice_id, bool)
        or not isinstance(invoice_id, int)
        or invoice_id < 1
    ):
        raise ValueError(f"invoice_id must be a positive integer, got {invoice_id!r}")

    if invoice_id is not None or invoice_ref:
        return _by_metadata(
            amount,
            currency,
            invoices,
            invoice_ref=invoice_ref,
            invoice_id=invoice_id,
            partner_key=partner_key,
        )

    paid = _money_text(amount, currency)
    if partner_key is None:
        suggestions = _suggestions(amount, currency, invoices, partner_key)
        reason = "The payment names no invoice and its customer is not known in Odoo."
        if suggestions:
            reason += (
                f" {len(suggestions)} open invoice(s) of exactly {paid} are listed "
                f"as suggestions: {_names(suggestions)}."
            )
        return _unapplied(reason, suggestions)

    customer_open = _suggestions(amount, currency, invoices, partner_key)
    exact = [inv for inv in customer_open if inv.amount_residual == amount]
    if len(exact) == 1:
        return _classify(amount, currency, exact[0], MatchMethod.CUSTOMER_AMOUNT)
    if len(exact) > 1:
        return _unapplied(
            f"The payment names no invoice and {len(exact)} open invoices of this "
            f"customer are exactly {paid}: {_names(exact)}. Pick the one it pays.",
            exact,
        )
    if not customer_open:
        return _unapplied(
            f"The payment names no invoice and the customer has no open invoice "
            f"in {currency}. Keep it as customer credit or refund it."
        )
    return _unapplied(
        f"The payment names no invoice and none of the customer's "
        f"{len(customer_open)} open invoice(s) in {currency} is exactly {paid}. "
        "Apply it by hand.",
        customer_open,
    )


def match_received(payment, candidates, partner_key=None):
    """``match_payment`` for a ``mapper.PaymentReceived`` (or alike).

    :param payment: an object with ``amount``, ``currency``, ``invoice_ref``
        and ``invoice_id`` attributes
    :param candidates: as for ``match_payment``
    :param partner_key: the customer's key, as for ``match_payment``
    :returns: a ``MatchResult``
    :raises TypeError, ValueError: as ``match_payment``
    """
    return match_payment(
        payment.amount,
        payment.currency,
        candidates,
        invoice_ref=payment.invoice_ref,
        invoice_id=payment.invoice_id,
        partner_key=partner_key,
    )
