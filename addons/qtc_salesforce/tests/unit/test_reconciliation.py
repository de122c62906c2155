"""The closed-won queries of the reconciliation: every value through the
SOQL gates, ids refused unless they are Salesforce ids, records read."""

from datetime import date
from decimal import Decimal

import pytest

from qtc_salesforce.lib import reconciliation as rec
from qtc_salesforce.lib import soql


def test_window_query_uses_the_backend_filter_and_the_close_dates():
    query = rec.won_in_window_query(
        date(2026, 3, 1), date(2026, 3, 31), "IsWon = true AND Type = 'New'"
    )
    assert query == (
        "SELECT Id, Name, Amount, CurrencyIsoCode, CloseDate, IsWon, StageName "
        "FROM Opportunity WHERE IsWon = true AND Type = 'New' AND CloseDate >= "
        "2026-03-01 AND CloseDate <= 2026-03-31 ORDER BY CloseDate, Id"
    )


def test_window_query_refuses_injection_and_non_dates():
    with pytest.raises(soql.SoqlError):
        rec.won_in_window_query(
            date(2026, 3, 1), date(2026, 3, 2), "IsWon = true OR Id != null"
        )
    with pytest.raises(soql.SoqlError):
        rec.won_in_window_query("2026-03-01", date(2026, 3, 2))


def test_ids_are_chunked_and_validated():
    ids = [f"0065e00000A{n:04d}AAA" for n in range(soql.MAX_IDS_PER_QUERY + 1)]
    queries = rec.by_ids_queries(ids + ids[:3])
    assert len(queries) == 2
    assert queries[1].endswith(f"WHERE Id IN ('{ids[-1]}') ORDER BY Id")
    assert rec.by_ids_queries([]) == []
    with pytest.raises(soql.SoqlError):
        rec.by_ids_queries(["0065e00000A0001AAA' OR Id != '"])


def test_read_deal_reads_amount_currency_and_close_date():
    won = rec.read_deal(
        {
            "Id": "0065e00000AbCdEAAV",
            "Name": "ERP",
            "Amount": 48000.5,
            "CurrencyIsoCode": "eur",
            "CloseDate": "2026-03-31",
            "IsWon": True,
            "StageName": "Closed Won",
        }
    )
    assert won.amount == Decimal("48000.5")
    assert won.currency == "EUR"
    assert won.close_date == date(2026, 3, 31)
    assert won.is_won
    single_currency = rec.read_deal({"Id": "0065e00000AbCdE", "Amount": None}, "USD")
    assert (single_currency.amount, single_currency.currency) == (None, "USD")
    assert not single_currency.is_won
    with pytest.raises(ValueError):
        rec.read_deal({"Id": "not an id"})
