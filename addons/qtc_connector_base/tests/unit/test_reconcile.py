"""Two sides summed and matched record by record, differences both ways."""

from datetime import date
from decimal import Decimal

from qtc_connector_base.lib import reconcile
from qtc_connector_base.lib.reconcile import Entry

D = Decimal


def entry(key, amount=None, currency="USD", quantity=None, **kw):
    return Entry(
        key=key,
        label=f"record {key}",
        amount=None if amount is None else D(amount),
        currency=currency,
        quantity=None if quantity is None else D(quantity),
        **kw,
    )


def test_matched_sides_have_no_difference_and_the_same_totals():
    theirs = [entry("A", "100.00"), entry("B", "50.00")]
    ours = [entry("B", "50.00"), entry("A", "100.004")]
    result = reconcile.compare(theirs, ours)
    assert result.matched == 2
    assert result.differences == []
    assert result.external.count == result.odoo.count == 2
    assert result.external.amount_in("USD") == D("150.00")
    assert result.odoo.amount_in("USD") == D("150.004")


def test_differences_both_ways_with_both_sides_kept():
    theirs = [entry("A", "100.00"), entry("ONLY-THEIRS", "20.00", day=date(2026, 3, 2))]
    ours = [entry("A", "100.00"), entry("ONLY-OURS", "30.00", record=("x", 1))]
    result = reconcile.compare(theirs, ours)
    assert result.matched == 1
    kinds = {d.key: d.kind for d in result.differences}
    assert kinds == {
        "ONLY-THEIRS": reconcile.MISSING_IN_ODOO,
        "ONLY-OURS": reconcile.MISSING_EXTERNALLY,
    }
    theirs_only = next(d for d in result.differences if d.key == "ONLY-THEIRS")
    assert theirs_only.odoo is None and theirs_only.day == date(2026, 3, 2)


def test_currency_is_compared_before_amount():
    result = reconcile.compare([entry("A", "10", "EUR")], [entry("A", "99", "usd")])
    assert [d.kind for d in result.differences] == [reconcile.CURRENCY]
    result = reconcile.compare([entry("A", "10", "EUR")], [entry("A", "10", "eur")])
    assert result.differences == []


def test_amount_and_quantity_differences():
    result = reconcile.compare(
        [entry("A", "10.00"), entry("T", None, None, "7.5")],
        [entry("A", "10.01"), entry("T", None, None, "7.25")],
    )
    assert {d.key: d.kind for d in result.differences} == {
        "A": reconcile.AMOUNT,
        "T": reconcile.QUANTITY,
    }


def test_a_side_without_an_amount_only_proves_presence():
    result = reconcile.compare([entry("A", "10.00")], [entry("A", None, None)])
    assert result.matched == 1


def test_a_key_twice_on_one_side_is_a_difference_not_merged():
    result = reconcile.compare([entry("A", "1"), entry("A", "1")], [entry("A", "1")])
    assert result.matched == 1
    assert [d.kind for d in result.differences] == [reconcile.MISSING_IN_ODOO]
    assert result.external.count == 2


def test_totals_are_kept_per_currency_and_read_in_words():
    totals = reconcile.Totals()
    for item in (entry("A", "1200", "USD"), entry("B", "80", "EUR"), entry("C")):
        totals.add(item)
    totals.add(entry("T", None, None, "12.5"))
    assert totals.text() == "4 records, 80.00 EUR + 1,200.00 USD, 12.5 h"
    assert reconcile.Totals().text() == "0 records"


def test_describe_names_the_side_and_its_figures():
    assert reconcile.describe(None, "Salesforce") == "Salesforce: nothing"
    line = reconcile.describe(entry("A", "1234.5", quantity="2"), "Odoo")
    assert line == "Odoo: record A, 1,234.50 USD, 2 h"
