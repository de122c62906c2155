"""The PSA side of reconciliations: Harvest's approved billable records, and
the totals a push PSA reports, validated with every problem listed."""

from datetime import date
from decimal import Decimal

import pytest

from qtc_psa_timesheets.lib import reconciliation as rec


def harvest_entry(entry_id, hours=2.0, **values):
    return {
        "id": entry_id,
        "spent_date": "2026-03-02",
        "project": {"id": 77, "name": "Data platform"},
        "hours": hours,
        "rounded_hours": 2.25,
        "is_closed": True,
        "is_billed": False,
        "is_running": False,
        "billable": True,
        **values,
    }


def test_harvest_time_counts_approved_billable_unbilled_stopped_entries():
    facts = rec.harvest_time_facts(
        [
            harvest_entry(1),
            harvest_entry(2, is_closed=False),
            harvest_entry(3, billable=False),
            harvest_entry(4, is_billed=True),
            harvest_entry(5, is_running=True),
            harvest_entry(6, hours=0),
            "not a record",
        ]
    )
    assert [f.external_id for f in facts] == ["harvest:time_entry:1"]
    assert facts[0].hours == Decimal("2.0")
    assert facts[0].day == date(2026, 3, 2)
    rounded = rec.harvest_time_facts([harvest_entry(1)], use_rounded_hours=True)
    assert rounded[0].hours == Decimal("2.25")


def test_harvest_expenses_carry_the_account_currency():
    facts = rec.harvest_expense_facts(
        [
            {
                "id": 31,
                "spent_date": "2026-03-02",
                "total_cost": 84.2,
                "is_closed": True,
            },
            {"id": 32, "total_cost": 10, "is_closed": False},
        ],
        "EUR",
    )
    assert [(f.external_id, f.amount, f.currency) for f in facts] == [
        ("harvest:expense:31", Decimal("84.2"), "EUR")
    ]


def body(*items, **extra):
    return {
        "period": {"from": "2026-03-01", "to": "2026-03-31"},
        "items": list(items),
    } | extra


def test_valid_totals():
    parsed = rec.parse_totals(
        body(
            {
                "external_id": "TE-1",
                "kind": "time",
                "date": "2026-03-02",
                "hours": "7.5",
            },
            {
                "external_id": "EX-1",
                "kind": "expense",
                "date": "2026-03-03",
                "amount": 84.2,
                "currency": "eur",
            },
            {"external_id": "MS-1", "kind": "milestone", "date": "2026-03-04"},
            totals={"time_hours": "7.50", "expense_amount": "84.20"},
        )
    )
    assert (parsed.date_from, parsed.date_to) == (date(2026, 3, 1), date(2026, 3, 31))
    assert [f.kind for f in parsed.facts] == ["time", "expense", "milestone"]
    assert parsed.facts[1].currency == "EUR"
    assert rec.parse_totals(body()).facts == ()


def test_every_problem_is_listed():
    with pytest.raises(rec.TotalsError) as caught:
        rec.parse_totals(
            {
                "period": {"from": "2026-04-01", "to": "2026-03-01"},
                "items": [
                    {"external_id": "TE-1", "kind": "time", "date": "2026-03-02"},
                    {"external_id": "", "kind": "coffee", "date": "yesterday"},
                    {
                        "external_id": "EX",
                        "kind": "expense",
                        "date": "2026-03-02",
                        "amount": "-5",
                        "currency": "euro",
                    },
                ],
            }
        )
    problems = caught.value.problems
    assert "period: to is before from" in problems
    assert "items[0].hours: a number is required" in problems
    assert "items[1].external_id: required" in problems
    assert "items[1].kind: one of time, expense, milestone" in problems
    assert "items[1].date: a YYYY-MM-DD date is required" in problems
    assert "items[2].amount: must not be negative" in problems
    assert "items[2].currency: a 3-letter code is required" in problems


def test_totals_must_add_up_and_items_be_unique_and_in_the_period():
    item = {"external_id": "TE-1", "kind": "time", "date": "2026-03-02", "hours": "1"}
    with pytest.raises(rec.TotalsError) as caught:
        rec.parse_totals(
            body(
                item,
                item,
                {**item, "external_id": "TE-2", "date": "2026-04-02"},
                totals={"time_hours": "5"},
            )
        )
    assert caught.value.problems == (
        "items[1].external_id: listed twice",
        "items[2].date: outside the period",
        "totals.time_hours: 5 but the items add up to 2",
    )
    for bad in (None, [], {"items": []}, {"period": {}, "items": {}}):
        with pytest.raises(rec.TotalsError):
            rec.parse_totals(bad)


def test_a_period_longer_than_a_year_is_refused():
    with pytest.raises(rec.TotalsError):
        rec.parse_totals(
            {"period": {"from": "2025-01-01", "to": "2026-03-31"}, "items": []}
        )
