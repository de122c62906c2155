"""Stripe webhook events -> the small, typed changes the Odoo layer applies.

``map_event(event)`` takes a decoded Stripe event (``{"id": "evt_...", "type":
..., "created": ..., "livemode": ..., "data": {"object": {...}}}``) and returns a
list of frozen dataclasses, one per change to apply:

- ``payment_intent.succeeded`` -> ``PaymentReceived`` (``amount_received``);
- ``checkout.session.completed`` and ``checkout.session.async_payment_succeeded``
  -> ``PaymentReceived`` (``amount_total``) when ``payment_status`` is ``paid``,
  ``[]`` while a delayed payment method is still pending;
- ``invoice.paid`` -> ``PaymentReceived`` (``amount_paid``), ``[]`` for an
  invoice that was settled without money (zero total);
- ``payment_intent.payment_failed`` -> ``PaymentFailed`` with the
  ``last_payment_error`` code and message;
- ``charge.refunded`` -> one ``RefundIssued`` per refund when the charge lists
  all its refunds, else one cumulative ``RefundIssued`` from ``amount_refunded``;
- ``refund.updated`` -> ``RefundIssued`` with the refund's new status;
- ``charge.dispute.created`` / ``charge.dispute.closed`` -> ``DisputeOpened`` /
  ``DisputeClosed``;
- ``payout.paid`` -> ``PayoutPaid``;
- any other type -> ``[]``: the caller marks the event ignored, not failed.

Amounts become ``Decimal`` major units through ``money`` (JPY has no decimals,
KWD three), currencies upper case, Unix times ``datetime`` in UTC. Expandable
fields (``customer``, ``charge``, ``latest_charge``...) are accepted both as an
id and as an expanded object. The invoice hint that our payment links put in
Stripe metadata (``odoo_invoice`` = invoice number, ``odoo_invoice_id`` =
database id) is carried on payments for the cash-application rule in
``matching``.

An event of a handled type that lacks a field we need, or carries one of the
wrong type, raises ``MappingError`` listing every problem at once, so the person
fixing it sees the whole picture in one go; the event is kept for replay.

Several events can report the same money: a PaymentIntent that pays a Checkout
Session or a Stripe invoice produces ``payment_intent.succeeded`` and
``checkout.session.completed`` or ``invoice.paid``. The applier must use
``PaymentReceived.payment_key`` as the identity of a payment, not the event id.
One gap remains: from API version 2025-03-31 an ``invoice.paid`` event names
its PaymentIntent only when ``invoice.payments`` is included in the payload;
without it the key is the Stripe invoice id and cannot be joined to the
``payment_intent.succeeded`` of the same money, so a backend should take
invoice payments from one of the two event types, not both.
Events may also arrive twice or out of order: ``event_ordering_key`` orders
two events about the same object so that a stale one can be recognised.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from . import money

PAYMENT_SUCCEEDED = "payment_intent.succeeded"
PAYMENT_FAILED = "payment_intent.payment_failed"
CHECKOUT_COMPLETED = "checkout.session.completed"
CHECKOUT_ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
INVOICE_PAID = "invoice.paid"
CHARGE_REFUNDED = "charge.refunded"
REFUND_UPDATED = "refund.updated"
DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"
PAYOUT_PAID = "payout.paid"

# The Stripe object type each handled event carries in ``data.object``.
EXPECTED_OBJECT = {
    PAYMENT_SUCCEEDED: "payment_intent",
    PAYMENT_FAILED: "payment_intent",
    CHECKOUT_COMPLETED: "checkout.session",
    CHECKOUT_ASYNC_SUCCEEDED: "checkout.session",
    INVOICE_PAID: "invoice",
    CHARGE_REFUNDED: "charge",
    REFUND_UPDATED: "refund",
    DISPUTE_CREATED: "dispute",
    DISPUTE_CLOSED: "dispute",
    PAYOUT_PAID: "payout",
}
HANDLED_EVENT_TYPES = frozenset(EXPECTED_OBJECT)

METADATA_INVOICE_REF = "odoo_invoice"
METADATA_INVOICE_ID = "odoo_invoice_id"


class MappingError(ValueError):
    """A handled event cannot be turned into changes; a person must look.

    :ivar problems: every problem found, each naming the field by its path in
        the event (``data.object.currency is missing``)
    :ivar event_id: the event id when it could be read, else ``None``
    :ivar event_type: the event type when it could be read, else ``None``
    """

    def __init__(self, problems, event_id=None, event_type=None):
        self.problems = tuple(problems)
        self.event_id = event_id
        self.event_type = event_type
        label = " ".join(
            part
            for part in (
                event_id if isinstance(event_id, str) else None,
                f"({event_type})" if isinstance(event_type, str) else None,
            )
            if part
        )
        subject = f"Stripe event {label}" if label else "Stripe event"
        super().__init__(
            f"{subject} cannot be mapped: {len(self.problems)} problem(s): "
            + "; ".join(self.problems)
        )


# --------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeChange:
    """What every mapped change carries about the event that caused it.

    :ivar event_id: Stripe event id (``evt_...``), the correlation id in Odoo
    :ivar event_type: e.g. ``payment_intent.succeeded``
    :ivar event_created: when Stripe created the event (UTC)
    :ivar livemode: ``False`` for test-mode events, which must never touch the
        books of a production database
    """

    event_id: str
    event_type: str
    event_created: datetime
    livemode: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentReceived(StripeChange):
    """Money a customer paid, to be registered and applied to an invoice.

    :ivar stripe_object_type: ``payment_intent``, ``checkout.session`` or
        ``invoice``: which Stripe object reported the payment
    :ivar stripe_object_id: its id (``pi_...``, ``cs_...``, ``in_...``)
    :ivar payment_intent_id: the PaymentIntent that moved the money, if known
    :ivar charge_id: the charge, if the object names it
    :ivar stripe_invoice_id: the Stripe invoice paid, if any
    :ivar customer_id: the Stripe customer (``cus_...``), if any
    :ivar amount: amount received, ``Decimal`` in major units
    :ivar currency: ISO code, upper case
    :ivar invoice_ref: Odoo invoice number from metadata ``odoo_invoice``
    :ivar invoice_id: Odoo invoice id from metadata ``odoo_invoice_id``
    :ivar created: when the Stripe object was created (UTC)
    """

    stripe_object_type: str
    stripe_object_id: str
    payment_intent_id: str | None
    charge_id: str | None
    stripe_invoice_id: str | None
    customer_id: str | None
    amount: Decimal
    currency: str
    invoice_ref: str | None
    invoice_id: int | None
    created: datetime

    @property
    def payment_key(self):
        """The identity of the money movement, shared by every event reporting it.

        The PaymentIntent id when known, else the Stripe invoice id, else the
        reporting object's id. Two ``PaymentReceived`` with the same key are the
        same payment and must be registered once.
        """
        return self.payment_intent_id or self.stripe_invoice_id or self.stripe_object_id


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentFailed(StripeChange):
    """A payment attempt that failed; nothing to book, something to tell.

    :ivar payment_intent_id: the PaymentIntent that failed
    :ivar charge_id: its latest charge, if any
    :ivar customer_id: the Stripe customer, if any
    :ivar amount: amount that was attempted, ``Decimal`` in major units
    :ivar currency: ISO code, upper case
    :ivar invoice_ref: Odoo invoice number from metadata ``odoo_invoice``
    :ivar invoice_id: Odoo invoice id from metadata ``odoo_invoice_id``
    :ivar failure_code: ``last_payment_error.code`` (e.g. ``card_declined``)
    :ivar decline_code: ``last_payment_error.decline_code`` (e.g.
        ``insufficient_funds``)
    :ivar failure_message: ``last_payment_error.message``, readable by people
    :ivar created: when the PaymentIntent was created (UTC)
    """

    payment_intent_id: str
    charge_id: str | None
    customer_id: str | None
    amount: Decimal
    currency: str
    invoice_ref: str | None
    invoice_id: int | None
    failure_code: str | None
    decline_code: str | None
    failure_message: str | None
    created: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundIssued(StripeChange):
    """Money returned to a customer (or a refund whose status changed).

    :ivar refund_id: ``re_...``; ``None`` for a cumulative total
    :ivar charge_id: the refunded charge, if known
    :ivar payment_intent_id: the refunded PaymentIntent, if known
    :ivar amount: ``Decimal`` in major units: this refund's amount, or with
        ``is_cumulative_total`` the charge's total refunded so far
    :ivar currency: ISO code, upper case
    :ivar status: ``pending``, ``succeeded``, ``failed``, ``canceled``,
        ``requires_action``; ``None`` for a cumulative total
    :ivar reason: ``duplicate``, ``fraudulent``, ``requested_by_customer``...
    :ivar is_cumulative_total: ``True`` when ``charge.refunded`` did not list its
        refunds: ``amount`` is then the charge's ``amount_refunded``, a running
        total that grows with each partial refund. The applier must bring the
        refunded total up to it, never add it again.
    :ivar created: refund creation time; for a cumulative total, the event's
    """

    refund_id: str | None
    charge_id: str | None
    payment_intent_id: str | None
    amount: Decimal
    currency: str
    status: str | None
    reason: str | None
    is_cumulative_total: bool
    created: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceTransaction:
    """What the books need of one Stripe balance transaction (``txn_...``).

    :ivar txn_id: ``txn_...``
    :ivar amount: gross amount, ``Decimal`` major units; negative when funds
        leave the Stripe balance (a payout, a dispute withdrawal)
    :ivar fee: Stripe's fees on it, ``Decimal`` major units; negative when
        Stripe gives a fee back (a won dispute's reinstatement)
    :ivar net: ``amount - fee``: what the Stripe balance moved by
    :ivar currency: ISO code, upper case (the settlement currency, which may
        differ from the charge's)
    """

    txn_id: str
    amount: Decimal
    fee: Decimal
    net: Decimal
    currency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeChange(StripeChange):
    """Fields shared by dispute events.

    :ivar dispute_id: ``dp_...`` (or ``du_...``)
    :ivar charge_id: the disputed charge
    :ivar payment_intent_id: its PaymentIntent, if known
    :ivar amount: disputed amount, ``Decimal`` in major units
    :ivar currency: ISO code, upper case
    :ivar reason: Stripe's dispute reason (``fraudulent``, ``general``...)
    :ivar status: e.g. ``needs_response`` when opened; ``won``, ``lost`` or
        ``warning_closed`` when closed
    :ivar created: when the dispute was opened (UTC)
    :ivar balance_transactions: the dispute's movements of the Stripe balance
        (the withdrawal of the disputed funds with Stripe's dispute fee, and a
        reinstatement when the dispute is won), in the order Stripe lists them
    """

    dispute_id: str
    charge_id: str
    payment_intent_id: str | None
    amount: Decimal
    currency: str
    reason: str
    status: str
    created: datetime
    balance_transactions: tuple[BalanceTransaction, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeOpened(DisputeChange):
    """A customer disputed a charge: the funds are withdrawn, a person responds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeClosed(DisputeChange):
    """A dispute ended; ``status`` says who won."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PayoutPaid(StripeChange):
    """Stripe sent money from the Stripe balance to the bank account.

    :ivar payout_id: ``po_...``
    :ivar amount: ``Decimal`` in major units
    :ivar currency: ISO code, upper case
    :ivar arrival_date: when the money is expected in the bank (UTC)
    :ivar balance_transaction_id: ``txn_...``, if given
    :ivar created: when the payout was created (UTC)
    """

    payout_id: str
    amount: Decimal
    currency: str
    arrival_date: datetime
    balance_transaction_id: str | None
    created: datetime


# --------------------------------------------------------------------- reading


def _type_name(value):
    return "null" if value is None else type(value).__name__


class _Fields:
    """Typed reads from one JSON object, each problem appended to a shared list.

    Every reader returns ``None`` when the value is unusable, after recording
    why, so a handler can read all its fields and report all problems at once.
    """

    def __init__(self, data, path, problems):
        self.data = data
        self.path = path
        self.problems = problems

    def where(self, key):
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key, problem):
        self.problems.append(f"{self.where(key)} {problem}")

    def _present(self, key, required):
        value = self.data.get(key)
        if value is None and required:
            self.fail(key, "is missing")
        return value

    def string(self, key, *, required=True):
        value = self._present(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {_type_name(value)}")
            return None
        return value

    def reference(self, key, *, required=False):
        """An expandable field: an id string, or an expanded object with an id."""
        value = self._present(key, required)
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get("id")
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "must be an id or an object with an id")
            return None
        return value

    def integer(self, key, *, minimum=None):
        value = self._present(key, required=True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, got {_type_name(value)}")
            return None
        if minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}, got {value}")
            return None
        return value

    def boolean(self, key):
        value = self._present(key, required=True)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_type_name(value)}")
            return None
        return value

    def timestamp(self, key):
        seconds = self.integer(key, minimum=0)
        if seconds is None:
            return None
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            self.fail(key, f"is not a usable Unix time: {seconds}")
            return None

    def currency(self, key):
        value = self.string(key)
        if value is None:
            return None
        try:
            return money.normalize_currency(value)
        except ValueError:
            self.fail(key, f"must be a three-letter currency code, got {value!r}")
            return None

    def amount(self, key, currency, *, minimum):
        """An integer amount in minor units, as ``Decimal`` major units."""
        minor = self.integer(key, minimum=minimum)
        if minor is None or currency is None:
            return None
        return money.to_major(minor, currency)

    def child(self, key, *, required=True):
        value = self._present(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, f"must be an object, got {_type_name(value)}")
            return None
        return _Fields(value, self.where(key), self.problems)

    def invoice_hint(self):
        """The Odoo invoice number and id our payment links put in metadata."""
        metadata = self.child("metadata", required=False)
        if metadata is None:
            return None, None
        invoice_ref = metadata.data.get(METADATA_INVOICE_REF)
        if invoice_ref is not None and not isinstance(invoice_ref, str):
            metadata.fail(METADATA_INVOICE_REF, "must be a string")
            invoice_ref = None
        invoice_ref = (invoice_ref or "").strip() or None

        invoice_id = metadata.data.get(METADATA_INVOICE_ID)
        if isinstance(invoice_id, str) and invoice_id.strip():
            text = invoice_id.strip()
            invoice_id = int(text) if text.isascii() and text.isdigit() else text
        elif isinstance(invoice_id, str):
            invoice_id = None  # empty metadata value: no hint
        if invoice_id is not None and (
            isinstance(invoice_id, bool)
            or not isinstance(invoice_id, int)
            or invoice_id < 1
        ):
            metadata.fail(
                METADATA_INVOICE_ID,
                f"must be a positive whole number, got {invoice_id!r}",
            )
            invoice_id = None
        return invoice_ref, invoice_id


# -------------------------------------------------------------------- handlers


def _payment_intent_succeeded(obj, common):
    currency = obj.currency("currency")
    invoice_ref, invoice_id = obj.invoice_hint()
    payment_intent_id = obj.string("id")
    return [
        PaymentReceived(
            **common,
            stripe_object_type="payment_intent",
            stripe_object_id=payment_intent_id,
            payment_intent_id=payment_intent_id,
            charge_id=obj.reference("latest_charge"),
            # Present in API versions before 2025-03-31 only.
            stripe_invoice_id=obj.reference("invoice"),
            customer_id=obj.reference("customer"),
            amount=obj.amount("amount_received", currency, minimum=1),
            currency=currency,
            invoice_ref=invoice_ref,
            invoice_id=invoice_id,
            created=obj.timestamp("created"),
        )
    ]


def _checkout_session_paid(obj, common):
    payment_status = obj.string("payment_status")
    if payment_status is not None and payment_status != "paid":
        # "unpaid": a delayed method (bank debit) is still pending and
        # checkout.session.async_payment_succeeded will follow;
        # "no_payment_required": nothing was charged.
        return []
    currency = obj.currency("currency")
    invoice_ref, invoice_id = obj.invoice_hint()
    return [
        PaymentReceived(
            **common,
            stripe_object_type="checkout.session",
            stripe_object_id=obj.string("id"),
            payment_intent_id=obj.reference("payment_intent"),
            charge_id=None,
            stripe_invoice_id=obj.reference("invoice"),
            customer_id=obj.reference("customer"),
            amount=obj.amount("amount_total", currency, minimum=1),
            currency=currency,
            invoice_ref=invoice_ref,
            invoice_id=invoice_id,
            created=obj.timestamp("created"),
        )
    ]


def _invoice_payment_intent(obj):
    # API versions before 2025-03-31 carry invoice.payment_intent; later ones
    # list payments in invoice.payments (only when included), so look there too.
    payment_intent_id = obj.reference("payment_intent")
    if payment_intent_id is not None:
        return payment_intent_id
    payments = obj.data.get("payments")
    rows = payments.get("data") if isinstance(payments, dict) else None
    for row in rows if isinstance(rows, list) else []:
        payment = row.get("payment") if isinstance(row, dict) else None
        if isinstance(payment, dict) and isinstance(payment.get("payment_intent"), str):
            if row.get("status") in (None, "paid"):
                return payment["payment_intent"]
    return None


def _invoice_paid(obj, common):
    currency = obj.currency("currency")
    amount_paid = obj.integer("amount_paid", minimum=0)
    if amount_paid == 0:
        # A zero-total invoice (fully discounted or credited) is "paid" without
        # any money moving: nothing to register.
        return []
    invoice_ref, invoice_id = obj.invoice_hint()
    stripe_invoice_id = obj.string("id")
    return [
        PaymentReceived(
            **common,
            stripe_object_type="invoice",
            stripe_object_id=stripe_invoice_id,
            payment_intent_id=_invoice_payment_intent(obj),
            # Present in API versions before 2025-03-31 only.
            charge_id=obj.reference("charge"),
            stripe_invoice_id=stripe_invoice_id,
            customer_id=obj.reference("customer"),
            amount=(
                money.to_major(amount_paid, currency)
                if amount_paid is not None and currency is not None
                else None
            ),
            currency=currency,
            invoice_ref=invoice_ref,
            invoice_id=invoice_id,
            created=obj.timestamp("created"),
        )
    ]


def _payment_failed(obj, common):
    currency = obj.currency("currency")
    invoice_ref, invoice_id = obj.invoice_hint()
    error = obj.child("last_payment_error", required=False)
    failure_code = decline_code = failure_message = None
    if error is not None:
        failure_code = error.string("code", required=False)
        decline_code = error.string("decline_code", required=False)
        failure_message = error.string("message", required=False)
    return [
        PaymentFailed(
            **common,
            payment_intent_id=obj.string("id"),
            charge_id=obj.reference("latest_charge"),
            customer_id=obj.reference("customer"),
            amount=obj.amount("amount", currency, minimum=1),
            currency=currency,
            invoice_ref=invoice_ref,
            invoice_id=invoice_id,
            failure_code=failure_code,
            decline_code=decline_code,
            failure_message=failure_message,
            created=obj.timestamp("created"),
        )
    ]


def _refund(refund, common, *, charge_id=None, payment_intent_id=None):
    """One ``RefundIssued`` from a refund object (alone or inside a charge)."""
    currency = refund.currency("currency")
    charge_id = refund.reference("charge") or charge_id
    payment_intent_id = refund.reference("payment_intent") or payment_intent_id
    if charge_id is None and payment_intent_id is None:
        refund.fail("charge", "and payment_intent are both missing")
    return RefundIssued(
        **common,
        refund_id=refund.string("id"),
        charge_id=charge_id,
        payment_intent_id=payment_intent_id,
        amount=refund.amount("amount", currency, minimum=1),
        currency=currency,
        status=refund.string("status"),
        reason=refund.string("reason", required=False),
        is_cumulative_total=False,
        created=refund.timestamp("created"),
    )


def _charge_refunded(obj, common):
    charge_id = obj.string("id")
    payment_intent_id = obj.reference("payment_intent")
    refunds = obj.child("refunds", required=False)
    rows = None
    if refunds is not None:
        rows = refunds.data.get("data")
        if rows is not None and not isinstance(rows, list):
            refunds.fail("data", f"must be a list, got {_type_name(rows)}")
            rows = None
    # Since API version 2022-11-15 charges no longer embed their refunds, and a
    # list with has_more is incomplete: in both cases only the charge's running
    # total (amount_refunded) is reliable.
    if rows and refunds.data.get("has_more") is False:
        listed = []
        for index, row in enumerate(rows):
            path = f"{refunds.where('data')}[{index}]"
            if not isinstance(row, dict):
                obj.problems.append(f"{path} must be an object, got {_type_name(row)}")
                continue
            listed.append(
                _refund(
                    _Fields(row, path, obj.problems),
                    common,
                    charge_id=charge_id,
                    payment_intent_id=payment_intent_id,
                )
            )
        return listed
    currency = obj.currency("currency")
    return [
        RefundIssued(
            **common,
            refund_id=None,
            charge_id=charge_id,
            payment_intent_id=payment_intent_id,
            amount=obj.amount("amount_refunded", currency, minimum=1),
            currency=currency,
            status=None,
            reason=None,
            is_cumulative_total=True,
            created=common["event_created"],
        )
    ]


def _refund_updated(obj, common):
    return [_refund(obj, common)]


def _balance_transaction(txn):
    """A ``BalanceTransaction`` from a balance transaction object, or ``None``
    after recording its problems."""
    currency = txn.currency("currency")
    txn_id = txn.string("id")
    amount = txn.integer("amount")
    fee = txn.integer("fee")
    net = txn.integer("net")
    if None in (currency, txn_id, amount, fee, net):
        return None
    if net != amount - fee:
        txn.fail("net", f"must be amount - fee ({amount - fee}), got {net}")
        return None
    return BalanceTransaction(
        txn_id=txn_id,
        amount=money.to_major(amount, currency),
        fee=money.to_major(fee, currency),
        net=money.to_major(net, currency),
        currency=currency,
    )


def _dispute_balance_transactions(obj):
    """The expanded balance transactions a dispute lists. An entry given as a
    bare id carries no amounts: it is left out (its fee cannot be known)."""
    rows = obj.data.get("balance_transactions")
    if rows is None:
        return ()
    if not isinstance(rows, list):
        obj.fail("balance_transactions", f"must be a list, got {_type_name(rows)}")
        return ()
    found = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            path = f"{obj.where('balance_transactions')}[{index}]"
            txn = _balance_transaction(_Fields(row, path, obj.problems))
            if txn is not None:
                found.append(txn)
    return tuple(found)


def _dispute(change_class):
    def handler(obj, common):
        currency = obj.currency("currency")
        return [
            change_class(
                **common,
                dispute_id=obj.string("id"),
                charge_id=obj.reference("charge", required=True),
                payment_intent_id=obj.reference("payment_intent"),
                amount=obj.amount("amount", currency, minimum=1),
                currency=currency,
                reason=obj.string("reason"),
                status=obj.string("status"),
                created=obj.timestamp("created"),
                balance_transactions=_dispute_balance_transactions(obj),
            )
        ]

    return handler


def _payout_paid(obj, common):
    currency = obj.currency("currency")
    return [
        PayoutPaid(
            **common,
            payout_id=obj.string("id"),
            amount=obj.amount("amount", currency, minimum=1),
            currency=currency,
            arrival_date=obj.timestamp("arrival_date"),
            balance_transaction_id=obj.reference("balance_transaction"),
            created=obj.timestamp("created"),
        )
    ]


_HANDLERS = {
    PAYMENT_SUCCEEDED: _payment_intent_succeeded,
    CHECKOUT_COMPLETED: _checkout_session_paid,
    CHECKOUT_ASYNC_SUCCEEDED: _checkout_session_paid,
    INVOICE_PAID: _invoice_paid,
    PAYMENT_FAILED: _payment_failed,
    CHARGE_REFUNDED: _charge_refunded,
    REFUND_UPDATED: _refund_updated,
    DISPUTE_CREATED: _dispute(DisputeOpened),
    DISPUTE_CLOSED: _dispute(DisputeClosed),
    PAYOUT_PAID: _payout_paid,
}


# ------------------------------------------------------------------ public API


def is_handled(event_type):
    """Tell whether ``map_event`` turns events of this type into changes.

    :param event_type: e.g. ``"payment_intent.succeeded"``
    :returns: ``True`` for a type in ``HANDLED_EVENT_TYPES``, ``False`` for any
        other value, including non-strings
    """
    return isinstance(event_type, str) and event_type in HANDLED_EVENT_TYPES


def _event_type(event):
    if not isinstance(event, dict):
        raise MappingError(
            [f"the event must be a JSON object, got {_type_name(event)}"]
        )
    event_id = event.get("id")
    event_type = event.get("type")
    if event.get("object", "event") != "event":
        raise MappingError(
            [f"object must be 'event', got {event.get('object')!r}"],
            event_id,
            event_type,
        )
    if not isinstance(event_type, str) or not event_type.strip():
        raise MappingError(
            [f"type must be a non-empty string, got {_type_name(event_type)}"],
            event_id,
        )
    return event_type


def map_event(event):
    """Turn one Stripe event into the changes the Odoo layer applies.

    :param event: the decoded JSON body of a webhook delivery
    :returns: a list of ``PaymentReceived``, ``PaymentFailed``,
        ``RefundIssued``, ``DisputeOpened``, ``DisputeClosed`` or
        ``PayoutPaid``; empty for a type not in ``HANDLED_EVENT_TYPES`` (the
        caller marks the event ignored) and for a handled event that moves no
        money (unpaid checkout session, zero-amount invoice)
    :raises MappingError: the event is not an object, has no type, or is of a
        handled type but misses fields or has fields of the wrong type; the
        error lists every problem found
    """
    event_type = _event_type(event)
    if event_type not in HANDLED_EVENT_TYPES:
        return []

    problems = []
    envelope = _Fields(event, "", problems)
    event_id = envelope.string("id")
    common = {
        "event_id": event_id,
        "event_type": event_type,
        "event_created": envelope.timestamp("created"),
        "livemode": envelope.boolean("livemode"),
    }
    data = envelope.child("data")
    obj = data.child("object") if data is not None else None
    changes = []
    if obj is not None:
        expected = EXPECTED_OBJECT[event_type]
        actual = obj.data.get("object")
        if actual != expected:
            # Reading a charge as a payout would only add confusing problems.
            obj.fail("object", f"must be {expected!r} for {event_type}, got {actual!r}")
        else:
            changes = _HANDLERS[event_type](obj, common)
    if problems:
        raise MappingError(problems, event_id or event.get("id"), event_type)
    return changes


def read_balance_transaction(data):
    """Read a balance transaction object as the API returns it (``GET
    /v1/balance_transactions/<id>``).

    :param data: the decoded JSON object
    :returns: a ``BalanceTransaction``
    :raises MappingError: not an object, or a field missing or of the wrong
        type, or ``net`` not equal to ``amount - fee`` (all problems listed)
    """
    if not isinstance(data, dict):
        raise MappingError(
            [f"the balance transaction must be a JSON object, got {_type_name(data)}"]
        )
    problems = []
    txn = _balance_transaction(_Fields(data, "", problems))
    if problems:
        raise MappingError(problems, data.get("id"))
    return txn


def dispute_fee(change):
    """Stripe's net dispute fee on a dispute: the fees of its balance
    transactions added up (a fee given back on a won dispute is negative).

    :param change: a ``DisputeChange``
    :returns: ``(fee, currency, txn_id)`` with ``fee`` a ``Decimal`` in major
        units and ``txn_id`` the transaction that charged it, or ``None`` when
        the dispute lists no fee, its fee was given back, or its transactions
        are in more than one currency (not added up: a person must look)
    """
    rows = [txn for txn in change.balance_transactions if txn.fee]
    if not rows or len({txn.currency for txn in rows}) != 1:
        return None
    fee = sum((txn.fee for txn in rows), Decimal(0))
    if fee <= 0:
        return None
    charged = next(txn for txn in rows if txn.fee > 0)
    return fee, charged.currency, charged.txn_id


def event_ordering_key(event):
    """A sort key telling an older event about an object from a newer one.

    Stripe does not guarantee delivery order. Keep the key of the last event
    applied to an object; an event whose key is smaller is stale and must not
    overwrite newer state. Ties on ``created`` (one-second resolution) are
    broken by the event id: deterministic, though not chronological.

    :param event: a Stripe event dict
    :returns: ``(created, id)``
    :raises MappingError: when ``created`` is not a non-negative integer or
        ``id`` is not a non-empty string (both problems reported together)
    """
    if not isinstance(event, dict):
        raise MappingError(
            [f"the event must be a JSON object, got {_type_name(event)}"]
        )
    problems = []
    envelope = _Fields(event, "", problems)
    created = envelope.integer("created", minimum=0)
    event_id = envelope.string("id")
    if problems:
        raise MappingError(problems, event.get("id"), event.get("type"))
    return (created, event_id)
