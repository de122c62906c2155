"""Two lists of the same business facts, one from an external system and one
from Odoo, summed and matched record by record.

A reconciliation job (Salesforce won deals vs confirmed orders, PSA approved
time vs timesheets, tax engine commits vs posted invoices, Stripe balance
transactions vs payments) reads both sides over a date window into
:class:`Entry` lists keyed the same way; :func:`compare` pairs them by key and
reports every difference, in both directions:

- ``missing_in_odoo``: the external system has it, Odoo does not;
- ``missing_externally``: Odoo has it, the external system does not;
- ``currency``: both have it, in different currencies;
- ``amount``: both have it, amounts differ by more than the tolerance;
- ``quantity``: both have it, quantities (hours) differ.

Money is ``Decimal``; sums are kept per currency, because a window may mix
currencies and adding euros to dollars would hide a difference.
"""

from dataclasses import dataclass, field
from decimal import Decimal

MISSING_IN_ODOO = "missing_in_odoo"
MISSING_EXTERNALLY = "missing_externally"
CURRENCY = "currency"
AMOUNT = "amount"
QUANTITY = "quantity"
DIFFERENCE_KINDS = (MISSING_IN_ODOO, MISSING_EXTERNALLY, CURRENCY, AMOUNT, QUANTITY)

DEFAULT_AMOUNT_TOLERANCE = Decimal("0.005")
DEFAULT_QUANTITY_TOLERANCE = Decimal("0.0001")


@dataclass(frozen=True)
class Entry:
    """One fact on one side.

    :ivar key: what both sides agree on (an opportunity id, a document code)
    :ivar label: the fact in words, for the person reading the difference
    :ivar amount: ``Decimal`` or ``None`` when the side has no amount
    :ivar currency: ISO code, or ``None``
    :ivar quantity: ``Decimal`` (hours, units) or ``None``
    :ivar day: the ``date`` the fact belongs to (for the window), or ``None``
    :ivar record: ``(model, id)`` of the Odoo record, Odoo side only
    :ivar external_ref: ``(type, id)`` a person may link to an Odoo record
    """

    key: str
    label: str
    amount: Decimal | None = None
    currency: str | None = None
    quantity: Decimal | None = None
    day: object = None
    record: tuple | None = None
    external_ref: tuple | None = None


@dataclass(frozen=True)
class Difference:
    """A key whose two sides disagree (one side may be ``None``)."""

    kind: str
    key: str
    external: Entry | None
    odoo: Entry | None

    @property
    def day(self):
        """The date of the fact, from whichever side has it."""
        return (self.external and self.external.day) or (self.odoo and self.odoo.day)


@dataclass
class Totals:
    """Count, amount per currency and quantity of one side."""

    count: int = 0
    amounts: dict = field(default_factory=dict)
    quantity: Decimal = Decimal(0)

    def add(self, entry):
        self.count += 1
        if entry.amount is not None:
            currency = entry.currency or ""
            self.amounts[currency] = self.amounts.get(currency, Decimal(0)) + Decimal(
                entry.amount
            )
        if entry.quantity is not None:
            self.quantity += Decimal(entry.quantity)

    def amount_in(self, currency):
        """The sum in ``currency`` (0 when the side has none in it)."""
        return self.amounts.get(currency or "", Decimal(0))

    def text(self):
        """e.g. ``3 records, 1,200.00 USD + 80.00 EUR, 12.5 h``."""
        parts = [f"{self.count} record{'s' if self.count != 1 else ''}"]
        money = " + ".join(
            f"{amount:,.2f} {currency}".strip()
            for currency, amount in sorted(self.amounts.items())
        )
        if money:
            parts.append(money)
        if self.quantity:
            parts.append(f"{self.quantity.normalize():f} h")
        return ", ".join(parts)


@dataclass
class Comparison:
    """What :func:`compare` found."""

    external: Totals
    odoo: Totals
    matched: int
    differences: list


def compare(
    external,
    odoo,
    *,
    amount_tolerance=DEFAULT_AMOUNT_TOLERANCE,
    quantity_tolerance=DEFAULT_QUANTITY_TOLERANCE,
):
    """Sum both sides and pair their entries by key.

    A key twice on one side is itself a difference: the second entry is
    reported as missing on the other side, so nothing is silently merged.

    :param external: ``Entry`` list read from the external system
    :param odoo: ``Entry`` list read from Odoo
    :returns: a :class:`Comparison`; differences ordered by key
    """
    totals_external, totals_odoo = Totals(), Totals()
    by_key_external, by_key_odoo = {}, {}
    differences = []
    for entry in external:
        totals_external.add(entry)
        if entry.key in by_key_external:
            differences.append(Difference(MISSING_IN_ODOO, entry.key, entry, None))
            continue
        by_key_external[entry.key] = entry
    for entry in odoo:
        totals_odoo.add(entry)
        if entry.key in by_key_odoo:
            differences.append(Difference(MISSING_EXTERNALLY, entry.key, None, entry))
            continue
        by_key_odoo[entry.key] = entry
    matched = 0
    for key in sorted(set(by_key_external) | set(by_key_odoo)):
        theirs, ours = by_key_external.get(key), by_key_odoo.get(key)
        if ours is None:
            differences.append(Difference(MISSING_IN_ODOO, key, theirs, None))
            continue
        if theirs is None:
            differences.append(Difference(MISSING_EXTERNALLY, key, None, ours))
            continue
        kind = _disagreement(theirs, ours, amount_tolerance, quantity_tolerance)
        if kind:
            differences.append(Difference(kind, key, theirs, ours))
        else:
            matched += 1
    differences.sort(key=lambda difference: difference.key)
    return Comparison(totals_external, totals_odoo, matched, differences)


def _disagreement(theirs, ours, amount_tolerance, quantity_tolerance):
    if (
        theirs.currency
        and ours.currency
        and theirs.currency.upper() != ours.currency.upper()
    ):
        return CURRENCY
    if (
        theirs.amount is not None
        and ours.amount is not None
        and abs(Decimal(theirs.amount) - Decimal(ours.amount)) > amount_tolerance
    ):
        return AMOUNT
    if (
        theirs.quantity is not None
        and ours.quantity is not None
        and abs(Decimal(theirs.quantity) - Decimal(ours.quantity)) > quantity_tolerance
    ):
        return QUANTITY
    return None


def describe(entry, side_name):
    """One line for a person: ``Salesforce: <label>, 1,200.00 USD, 7.5 h``, or
    ``<side>: nothing`` for a missing side."""
    if entry is None:
        return f"{side_name}: nothing"
    parts = [entry.label]
    if entry.amount is not None:
        parts.append(f"{Decimal(entry.amount):,.2f} {entry.currency or ''}".strip())
    if entry.quantity is not None:
        parts.append(f"{Decimal(entry.quantity).normalize():f} h")
    return f"{side_name}: " + ", ".join(parts)
