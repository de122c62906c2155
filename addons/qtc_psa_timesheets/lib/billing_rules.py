"""Pure billing decisions for pushed work items: what to bill, and what to do next.

Three questions the Odoo layer asks for every validated :class:`~.work_item.WorkItem`,
answered here without touching the database so they can be tested exhaustively:

- :func:`is_billable`: does the item count towards the invoice at all?
- :func:`decide`: at what price? The sale order line is the contract. A PSA rate
  that disagrees with it is never billed silently: the ``bill_order_price`` policy
  bills the contract price and flags the difference for a person, the ``raise``
  policy refuses the item.
- :func:`correction_action`: a new delivery of an item Odoo already knows, what
  happens to the record it produced? Once an item has been invoiced its timesheet
  must not change under the invoice; a change that matters for billing then needs
  a credit note, which is a person's decision (``CREDIT_NOTE_REQUIRED``).

Money is ``Decimal`` throughout and rounded once, at the end, half up to the
currency's minor unit.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from . import work_item as wi

POLICY_BILL_ORDER_PRICE = "bill_order_price"
POLICY_RAISE = "raise"
POLICIES = (POLICY_BILL_ORDER_PRICE, POLICY_RAISE)

# The fields whose change alters what was (or will be) invoiced. A new version that
# changes only the others (a description typo) can update an invoiced item in place.
BILLING_FIELDS = (
    "kind",
    "project_ref",
    "task_ref",
    "employee_email",
    "date",
    "hours",
    "billable",
    "rate",
    "amount",
    "currency",
    "milestone_ref",
    "status",
)


class Action(StrEnum):
    """What to do with the Odoo record of an item when a new delivery arrives."""

    CREATE = "create"
    UPDATE = "update"
    REMOVE = "remove"
    NOOP = "noop"
    STALE = "stale"
    CREDIT_NOTE_REQUIRED = "credit_note_required"


class RateMismatchError(ValueError):
    """The PSA rate differs from the sale order price under the ``raise`` policy.

    :param item_rate: the rate the PSA sent
    :param order_price: the unit price on the sale order line
    """

    def __init__(self, item_rate, order_price):
        super().__init__(
            f"the PSA rate {item_rate} differs from the sale order price {order_price}"
        )
        self.item_rate = item_rate
        self.order_price = order_price


class CurrencyMismatchError(ValueError):
    """An expense is in another currency than the sale order it is billed on."""


class OrderingError(ValueError):
    """Two deliveries of one item cannot be ordered (one has only a version, the
    other only ``updated_at``): the PSA changed its scheme, a person must look."""


@dataclass(frozen=True, slots=True)
class BillingDecision:
    """How one item is billed.

    :param billable: False when the item does not count (not approved or not
        billable); the amounts are then zero
    :param quantity: hours for time, 1 for expenses and milestones
    :param unit_price: the price billed per unit (never rounded)
    :param subtotal: ``quantity * unit_price`` rounded to the currency's minor unit
    :param rate_mismatch: True when the PSA rate differed from the order price
    :param rate_difference: PSA rate minus order price, per unit (0 when equal)
    :param amount_difference: the difference over the quantity, rounded; what the
        customer would have paid more (or less) at the PSA rate
    """

    billable: bool
    quantity: Decimal
    unit_price: Decimal
    subtotal: Decimal
    rate_mismatch: bool = False
    rate_difference: Decimal = Decimal(0)
    amount_difference: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class PreviousState:
    """What Odoo knows about an item from its last applied delivery.

    :param item: the last :class:`~.work_item.WorkItem` applied (a withdrawn item
        means its record was removed)
    :param invoiced: True when the record it produced is on a posted invoice
    """

    item: wi.WorkItem
    invoiced: bool = False


def is_billable(item):
    """Tell whether an item counts towards the customer's invoice.

    :param item: a :class:`~.work_item.WorkItem`
    :returns: True when it is approved and billable
    """
    return item.status == wi.STATUS_APPROVED and item.billable


def round_money(amount, decimals=2):
    """Round an amount half up to ``decimals`` places (the currency's minor unit).

    :param amount: a ``Decimal``
    :param decimals: 2 for most currencies, 0 for JPY, 3 for KWD
    :returns: the rounded ``Decimal``
    """
    return amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _money(value, name):
    # Floats are refused: a price that went through a float is already wrong.
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite amount >= 0, not {value}")
    return value


def decide(item, order_line_price, policy, *, order_currency=None, decimals=2):
    """Decide how an item is billed against its sale order line.

    Time is billed ``hours * price``: the order line's price, whatever the PSA rate
    says (the contract wins). Expenses are re-invoiced at cost: one unit at the
    item's amount. Milestones are one unit at the order price (Odoo's milestone
    lines take it from there).

    :param item: a :class:`~.work_item.WorkItem`
    :param order_line_price: the sale order line's unit price (``Decimal``); may be
        ``None`` for an expense, which does not use it
    :param policy: ``bill_order_price`` (bill the order price and flag a differing
        PSA rate) or ``raise`` (refuse the item when the rates differ)
    :param order_currency: the sale order's currency; an expense in another
        currency is refused (no silent conversion)
    :param decimals: the currency's minor unit, for rounding
    :returns: a :class:`BillingDecision`
    :raises ValueError: unknown policy; :class:`RateMismatchError` under ``raise``;
        :class:`CurrencyMismatchError`
    :raises TypeError: if a price is not a ``Decimal`` (a float, say)
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown rate policy {policy!r}; use one of {POLICIES}")
    zero = round_money(Decimal(0), decimals)

    if item.kind == wi.KIND_EXPENSE:
        if order_currency is not None and item.currency != order_currency:
            raise CurrencyMismatchError(
                f"the expense is in {item.currency}, the sale order in {order_currency}"
            )
        if not is_billable(item):
            return BillingDecision(False, Decimal(1), item.amount, zero)
        return BillingDecision(
            True, Decimal(1), item.amount, round_money(item.amount, decimals)
        )

    price = _money(order_line_price, "order_line_price")
    quantity = item.hours if item.kind == wi.KIND_TIME else Decimal(1)
    if not is_billable(item):
        return BillingDecision(False, quantity, price, zero)

    subtotal = round_money(quantity * price, decimals)
    if item.kind != wi.KIND_TIME or item.rate is None or item.rate == price:
        return BillingDecision(True, quantity, price, subtotal)
    if policy == POLICY_RAISE:
        raise RateMismatchError(item.rate, price)
    difference = item.rate - price
    return BillingDecision(
        True,
        quantity,
        price,
        subtotal,
        rate_mismatch=True,
        rate_difference=difference,
        amount_difference=round_money(quantity * difference, decimals),
    )


def _ordering(previous, new):
    """Return -1, 0 or 1 as ``new`` is older than, level with or newer than
    ``previous``."""
    if previous.version is not None and new.version is not None:
        left, right = previous.version, new.version
    elif previous.updated_at is not None and new.updated_at is not None:
        left, right = previous.updated_at, new.updated_at
    else:
        raise OrderingError(
            f"cannot order two deliveries of {new.external_id}: one carries only a "
            "version, the other only updated_at"
        )
    return (right > left) - (right < left)


def billing_fields_equal(left, right):
    """Tell whether two items would be billed identically.

    :param left: a :class:`~.work_item.WorkItem`
    :param right: another one
    :returns: True when every field of ``BILLING_FIELDS`` is equal
    """
    return all(getattr(left, name) == getattr(right, name) for name in BILLING_FIELDS)


def is_early_withdrawal(previous_state, new_item):
    """Whether a delivery is a withdrawal of an item never seen before.

    It changes nothing (``correction_action`` says ``NOOP``), but the item must
    be recorded: deliveries arrive out of order, and the approval it withdraws,
    arriving later with an older version, must then be ``STALE`` rather than
    create what was withdrawn.

    :param previous_state: a :class:`PreviousState`, or ``None`` if never seen
    :param new_item: the new :class:`~.work_item.WorkItem`
    """
    return previous_state is None and new_item.status == wi.STATUS_WITHDRAWN


def correction_action(previous_state, new_item):
    """Decide what a new delivery of an item does to the record Odoo holds for it.

    - never seen: ``CREATE`` if approved; ``NOOP`` if withdrawn (nothing to remove);
    - same idempotency key as the last applied: ``NOOP``;
    - older than the last applied: ``STALE`` (deliveries can arrive out of order);
    - last applied was a withdrawal (record removed): ``CREATE`` if approved again,
      else ``NOOP``;
    - already invoiced: ``UPDATE`` when nothing billing-relevant changed, else
      ``CREDIT_NOTE_REQUIRED`` (a withdrawal included);
    - otherwise ``REMOVE`` for a withdrawal, ``UPDATE`` for a new approved version.

    :param previous_state: a :class:`PreviousState`, or ``None`` if never seen
    :param new_item: the new :class:`~.work_item.WorkItem`
    :returns: an :class:`Action`
    :raises ValueError: if the two items have different external ids
    :raises OrderingError: if the deliveries cannot be ordered
    """
    approved = new_item.status == wi.STATUS_APPROVED
    if previous_state is None:
        return Action.CREATE if approved else Action.NOOP
    previous = previous_state.item
    if previous.external_id != new_item.external_id:
        raise ValueError(
            f"items {previous.external_id!r} and {new_item.external_id!r} differ"
        )
    if wi.idempotency_key(previous) == wi.idempotency_key(new_item):
        return Action.NOOP
    order = _ordering(previous, new_item)
    if order < 0:
        return Action.STALE
    if order == 0:
        # Level under another key: one delivery carries a version and the other
        # only the same updated_at. The same state, so nothing changes.
        return Action.NOOP
    if previous.status == wi.STATUS_WITHDRAWN:
        return Action.CREATE if approved else Action.NOOP
    if previous_state.invoiced:
        if approved and billing_fields_equal(previous, new_item):
            return Action.UPDATE
        return Action.CREDIT_NOTE_REQUIRED
    return Action.UPDATE if approved else Action.REMOVE
