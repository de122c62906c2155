"""The PSA side of the reconciliation of approved billable work with Odoo.

Two sources, one shape (:class:`Fact`: the item's external id, kind, hours
or amount, work date):

- Harvest, read through its API v2 (``GET /v2/time_entries`` and
  ``GET /v2/expenses`` with ``from``/``to`` on the spent date): a closed
  (approved), billable record not billed in Harvest itself is work Odoo must
  hold, under the external id the sync gives it (``harvest:time_entry:<id>``);
- a push PSA, which calls ``POST /qtc/psa/<backend>/reconciliation_totals``
  with its approved billable items of a period (:func:`parse_totals`; the
  contract is in ``static/api/openapi.yaml``).
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from . import harvest
from . import work_item as wi

KINDS = (wi.KIND_TIME, wi.KIND_EXPENSE, wi.KIND_MILESTONE)
MAX_TOTALS_ITEMS = 50_000
MAX_PERIOD_DAYS = 366
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Fact:
    """One approved billable item as the PSA reports it."""

    external_id: str
    kind: str
    day: date | None
    hours: Decimal | None = None
    amount: Decimal | None = None
    currency: str | None = None
    label: str = ""


@dataclass(frozen=True)
class PushedTotals:
    """A validated reconciliation totals body."""

    date_from: date
    date_to: date
    facts: tuple


class TotalsError(ValueError):
    """A totals body that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


# ------------------------------------------------------------------ Harvest


def harvest_time_facts(entries, *, use_rounded_hours=False):
    """The approved billable time entries of a ``/v2/time_entries`` listing.

    Left out: open (not approved) entries, non-billable ones, running timers
    and entries billed in Harvest itself (the sync refuses those: importing
    them would bill twice).
    """
    facts = []
    field_name = "rounded_hours" if use_rounded_hours else "hours"
    for entry in entries or ():
        if not _counts(entry) or entry.get("is_running") is True:
            continue
        hours = _decimal(entry.get(field_name))
        if hours is None or hours == 0:
            continue
        project = entry.get("project") or {}
        facts.append(
            Fact(
                external_id=harvest.external_id_for(
                    harvest.SOURCE_TIME_ENTRY, entry["id"]
                ),
                kind=wi.KIND_TIME,
                day=_date(entry.get("spent_date")),
                hours=hours,
                label=f"time entry {entry['id']} ({project.get('name') or '?'})",
            )
        )
    return facts


def harvest_expense_facts(expenses, currency):
    """The approved billable expenses of a ``/v2/expenses`` listing.

    :param currency: the account's currency (Harvest expenses carry none)
    """
    facts = []
    for expense in expenses or ():
        if not _counts(expense):
            continue
        amount = _decimal(expense.get("total_cost"))
        if amount is None or amount == 0:
            continue
        facts.append(
            Fact(
                external_id=harvest.external_id_for(
                    harvest.SOURCE_EXPENSE, expense["id"]
                ),
                kind=wi.KIND_EXPENSE,
                day=_date(expense.get("spent_date")),
                amount=amount,
                currency=currency,
                label=f"expense {expense['id']}",
            )
        )
    return facts


def _counts(record):
    return (
        isinstance(record, dict)
        and isinstance(record.get("id"), int)
        and record.get("is_closed") is True
        and record.get("billable") is not False
        and record.get("is_billed") is not True
    )


# --------------------------------------------------------------- push PSAs


def parse_totals(body, max_items=MAX_TOTALS_ITEMS):
    """Validate a reconciliation totals body.

    ``{"period": {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}, "items": [{
    "external_id", "kind", "date", "hours" (time), "amount" and "currency"
    (expense)}], "totals": {"time_hours", "expense_amount"}}``; ``totals`` is
    optional and, when given, must equal the sums of the items (a PSA that
    sends both proves its list complete).

    :raises TotalsError: listing every problem
    """
    problems = []
    if not isinstance(body, dict):
        raise TotalsError(["the body must be a JSON object"])
    period = body.get("period")
    date_from = date_to = None
    if not isinstance(period, dict):
        problems.append("period: an object with from and to is required")
    else:
        date_from = _required_date(period.get("from"), "period.from", problems)
        date_to = _required_date(period.get("to"), "period.to", problems)
        if date_from and date_to:
            if date_to < date_from:
                problems.append("period: to is before from")
            elif (date_to - date_from).days >= MAX_PERIOD_DAYS:
                problems.append(f"period: at most {MAX_PERIOD_DAYS} days")
    items = body.get("items")
    facts = []
    if not isinstance(items, list):
        problems.append("items: a list is required (empty for no work)")
        items = []
    elif len(items) > max_items:
        problems.append(f"items: at most {max_items} per call; split the period")
        items = []
    seen = set()
    for position, item in enumerate(items):
        fact = _read_item(item, f"items[{position}]", problems)
        if fact is None:
            continue
        if fact.external_id in seen:
            problems.append(f"items[{position}].external_id: listed twice")
            continue
        seen.add(fact.external_id)
        if date_from and date_to and fact.day and not date_from <= fact.day <= date_to:
            problems.append(f"items[{position}].date: outside the period")
        facts.append(fact)
    _check_totals(body.get("totals"), facts, problems)
    if problems:
        raise TotalsError(problems)
    return PushedTotals(date_from, date_to, tuple(facts))


def _read_item(item, where, problems):
    if not isinstance(item, dict):
        problems.append(f"{where}: an object is required")
        return None
    before = len(problems)
    external_id = item.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip():
        problems.append(f"{where}.external_id: required")
    elif len(external_id) > wi.MAX_EXTERNAL_ID_LENGTH:
        problems.append(f"{where}.external_id: too long")
    kind = item.get("kind")
    if kind not in KINDS:
        problems.append(f"{where}.kind: one of {', '.join(KINDS)}")
    day = _required_date(item.get("date"), f"{where}.date", problems)
    hours = amount = currency = None
    if kind == wi.KIND_TIME:
        hours = _required_decimal(item.get("hours"), f"{where}.hours", problems)
    elif kind == wi.KIND_EXPENSE:
        amount = _required_decimal(item.get("amount"), f"{where}.amount", problems)
        currency = item.get("currency")
        if not isinstance(currency, str) or not _CURRENCY_RE.match(currency.upper()):
            problems.append(f"{where}.currency: a 3-letter code is required")
            currency = None
        else:
            currency = currency.upper()
    if len(problems) > before:
        return None
    return Fact(
        external_id=external_id.strip(),
        kind=kind,
        day=day,
        hours=hours,
        amount=amount,
        currency=currency,
        label=f"{kind} item {external_id.strip()}",
    )


def _check_totals(totals, facts, problems):
    if totals is None:
        return
    if not isinstance(totals, dict):
        problems.append("totals: an object is required when given")
        return
    sums = {
        "time_hours": sum((f.hours for f in facts if f.hours is not None), Decimal(0)),
        "expense_amount": sum(
            (f.amount for f in facts if f.amount is not None), Decimal(0)
        ),
    }
    for name, expected in sums.items():
        if name not in totals:
            continue
        given = _required_decimal(totals[name], f"totals.{name}", problems)
        if given is not None and given != expected:
            problems.append(
                f"totals.{name}: {given} but the items add up to {expected}"
            )


def _required_date(value, where, problems):
    parsed = _date(value)
    if parsed is None:
        problems.append(f"{where}: a YYYY-MM-DD date is required")
    return parsed


def _required_decimal(value, where, problems):
    if isinstance(value, bool) or value is None:
        problems.append(f"{where}: a number is required")
        return None
    try:
        number = wi.parse_decimal(value)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if number < 0:
        problems.append(f"{where}: must not be negative")
        return None
    return number


def _decimal(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return wi.parse_decimal(value)
    except ValueError:
        return None


def _date(value):
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
