"""AvaTax's transaction list (ListTransactionsByCompany) for the tax
reconciliation: the window in $filter, pages, committed documents only."""

import json
from datetime import date
from decimal import Decimal

import pytest

from qtc_tax.lib import avatax_listing as listing


def test_path_encodes_the_company_code():
    assert (
        listing.list_path("QTC US/1") == "/api/v2/companies/QTC%20US%2F1/transactions"
    )
    with pytest.raises(ValueError):
        listing.list_path("")


def test_params_put_the_window_in_the_filter():
    params = listing.list_params(date(2026, 3, 1), date(2026, 3, 31), skip=1000)
    assert params == {
        "$filter": "date ge '2026-03-01' and date le '2026-03-31'",
        "$top": "1000",
        "$skip": "1000",
        "$orderBy": "date ASC, code ASC",
    }
    with pytest.raises(ValueError):
        listing.list_params(date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError):
        listing.list_params("2026-03-01", date(2026, 3, 1))


def row(code, **values):
    return {
        "id": 85026437112,
        "code": code,
        "companyId": 7799660,
        "date": "2026-03-02",
        "status": "Committed",
        "type": "SalesInvoice",
        "currencyCode": "USD",
        "totalAmount": 1834.55,
        "totalTax": 136.79,
        **values,
    }


def test_page_reads_transactions_and_knows_when_more_follow():
    body = json.dumps(
        {
            "@recordsetCount": 3,
            "value": [
                row("INV/1"),
                row("INV/1", type="SalesOrder", status="Temporary"),
                row("INV/2", status="Cancelled"),
                row("RINV/3", type="ReturnInvoice", totalTax=-10.5),
            ],
            "@nextLink": "/api/v2/companies/QTC-US/transactions?$skip=4",
        }
    )
    transactions, more = listing.parse_page(body)
    assert more
    assert [t.code for t in transactions if t.committed] == ["INV/1", "RINV/3"]
    first = transactions[0]
    assert (first.day, first.total_tax, first.currency) == (
        date(2026, 3, 2),
        Decimal("136.79"),
        "USD",
    )
    assert transactions[3].total_tax == Decimal("-10.5")
    _rows, more = listing.parse_page({"value": [row("INV/9")]})
    assert not more
    assert listing.parse_page({"value": []}) == ([], False)


def test_a_page_that_is_not_a_fetch_result_is_refused():
    for body in ({"error": {}}, [], {"value": [{"id": 1}]}):
        with pytest.raises(ValueError):
            listing.parse_page(body)
