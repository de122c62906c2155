"""AvaTax's list of a company's transactions over a date window, for the
reconciliation of committed tax documents with Odoo's posted invoices.

``GET /api/v2/companies/{companyCode}/transactions`` (AvaTax REST v2,
ListTransactionsByCompany) answers a FetchResult ``{"@recordsetCount": n,
"value": [TransactionModel, ...], "@nextLink": ...}``. AvaTax looks at the
last 30 days when no ``date`` criterion is given, so the window is always in
``$filter`` (``date ge '...' and date le '...'``, its documented filter
syntax); pages follow ``$top``/``$skip`` (at most 1,000 records a page).

A committed document is a ``SalesInvoice`` or ``ReturnInvoice`` whose status
is ``Committed``; voided ones are ``Cancelled`` and quotes (``SalesOrder``)
are never recorded, so neither belongs to the comparison.
"""

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

PAGE_SIZE = 1000
COMMITTED_TYPES = ("SalesInvoice", "ReturnInvoice")
COMMITTED_STATUS = "Committed"


@dataclass(frozen=True)
class ListedTransaction:
    """What the reconciliation compares of one AvaTax transaction."""

    code: str
    type: str
    status: str
    day: date | None
    total_amount: Decimal | None
    total_tax: Decimal | None
    currency: str | None

    @property
    def committed(self):
        """A recorded invoice or refund (not a quote, not voided)."""
        return self.type in COMMITTED_TYPES and self.status == COMMITTED_STATUS


def list_path(company_code):
    """``/api/v2/companies/<companyCode>/transactions``, the code encoded.

    :raises ValueError: for an empty company code
    """
    if not company_code:
        raise ValueError("an AvaTax company code is required")
    return f"/api/v2/companies/{quote(company_code, safe='')}/transactions"


def list_params(date_from, date_to, skip=0, top=PAGE_SIZE):
    """Query parameters of one page of the window.

    :raises ValueError: for a window that is not two ordered dates
    """
    if not isinstance(date_from, date) or not isinstance(date_to, date):
        raise ValueError("the window needs two dates")
    if date_to < date_from:
        raise ValueError("the window ends before it starts")
    return {
        "$filter": (
            f"date ge '{date_from.isoformat()}' and date le '{date_to.isoformat()}'"
        ),
        "$top": str(top),
        "$skip": str(skip),
        "$orderBy": "date ASC, code ASC",
    }


def parse_page(body):
    """The transactions of one page and whether another page follows.

    :param body: the decoded JSON (or its text)
    :returns: ``(transactions, more)``
    :raises ValueError: the answer is not a FetchResult
    """
    data = json.loads(body, parse_float=Decimal) if isinstance(body, str) else body
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise ValueError("not a list of transactions (no 'value' array)")
    transactions = []
    for position, row in enumerate(data["value"]):
        if not isinstance(row, dict) or not isinstance(row.get("code"), str):
            raise ValueError(f"transaction {position} has no code")
        transactions.append(
            ListedTransaction(
                code=row["code"],
                type=str(row.get("type") or ""),
                status=str(row.get("status") or ""),
                day=_date(row.get("date")),
                total_amount=_decimal(row.get("totalAmount")),
                total_tax=_decimal(row.get("totalTax")),
                currency=(row.get("currencyCode") or None),
            )
        )
    more = bool(data.get("@nextLink")) or len(data["value"]) >= PAGE_SIZE
    return transactions, more and bool(data["value"])


def _decimal(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _date(value):
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
