"""Closed-won opportunities over a window, read for the reconciliation with
Odoo's confirmed orders.

Two SOQL queries (REST ``query`` resource, Salesforce's documented result
shape ``{"totalSize", "done", "records", "nextRecordsUrl"}``):

- the deals the backend's filter calls won (``IsWon = true`` by default)
  whose ``CloseDate`` falls in the window;
- the same fields for given ids, to learn what became of a deal that Odoo
  holds an order for but that the first query did not return (closed in
  another window, or no longer won).

Every name and value goes through ``soql``'s gates, as the sync's queries do.
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from . import soql

RECONCILE_FIELDS = (
    "Id",
    "Name",
    "Amount",
    "CurrencyIsoCode",
    "CloseDate",
    "IsWon",
    "StageName",
)
_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


@dataclass(frozen=True)
class WonDeal:
    """What the reconciliation compares of one opportunity."""

    id: str
    name: str
    amount: Decimal | None
    currency: str | None
    close_date: date | None
    is_won: bool
    stage: str


def won_in_window_query(
    date_from, date_to, opportunity_filter=soql.DEFAULT_OPPORTUNITY_FILTER
):
    """SOQL of the won deals closed between two dates (both included).

    :param opportunity_filter: the backend's filter (administrator text)
    :raises soql.SoqlError: for an invalid filter or dates
    """
    if not isinstance(date_from, date) or not isinstance(date_to, date):
        raise soql.SoqlError("the window needs two dates")
    conditions = (
        *soql.parse_filter(opportunity_filter),
        soql.Condition("CloseDate", ">=", date_from),
        soql.Condition("CloseDate", "<=", date_to),
    )
    where = soql.render_conditions(conditions)
    return (
        f"SELECT {', '.join(RECONCILE_FIELDS)} FROM Opportunity"  # noqa: S608
        f" WHERE {where} ORDER BY CloseDate, Id"
    )


def by_ids_queries(opportunity_ids):
    """SOQL reading given opportunities, in chunks the query URL accepts.

    :raises soql.SoqlError: for a value that is not a Salesforce id
    """
    ids = tuple(dict.fromkeys(opportunity_ids))
    for record_id in ids:
        if not isinstance(record_id, str) or not _ID_RE.match(record_id):
            raise soql.SoqlError(f"not a Salesforce id: {str(record_id)[:40]!r}")
    queries = []
    for start in range(0, len(ids), soql.MAX_IDS_PER_QUERY):
        chunk = ids[start : start + soql.MAX_IDS_PER_QUERY]
        where = soql.Condition("Id", "IN", chunk).render()
        queries.append(
            f"SELECT {', '.join(RECONCILE_FIELDS)} FROM Opportunity"  # noqa: S608
            f" WHERE {where} ORDER BY Id"
        )
    return queries


def read_deal(record, default_currency=None):
    """A :class:`WonDeal` from one query record.

    :param default_currency: for orgs whose records carry no
        ``CurrencyIsoCode`` (single currency)
    :raises ValueError: the record has no usable ``Id``
    """
    if not isinstance(record, dict) or not _ID_RE.match(str(record.get("Id") or "")):
        raise ValueError("an opportunity record without an Id")
    amount = record.get("Amount")
    try:
        amount = None if amount is None else Decimal(str(amount))
    except InvalidOperation:
        amount = None
    close = record.get("CloseDate")
    try:
        close_date = date.fromisoformat(close) if isinstance(close, str) else None
    except ValueError:
        close_date = None
    currency = record.get("CurrencyIsoCode") or default_currency
    return WonDeal(
        id=record["Id"],
        name=str(record.get("Name") or ""),
        amount=amount,
        currency=currency.upper() if isinstance(currency, str) else None,
        close_date=close_date,
        is_won=record.get("IsWon") is True,
        stage=str(record.get("StageName") or ""),
    )
