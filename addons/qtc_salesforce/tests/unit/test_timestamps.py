"""Salesforce date and datetime strings: strict reading, SOQL writing."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from qtc_salesforce.lib.timestamps import (
    format_soql_date,
    format_soql_datetime,
    parse_date,
    parse_datetime,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-01T10:00:00.000+0000", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01T10:00:00.000Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01T10:00:00Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (
            "2026-01-01T12:30:00.250+02:30",
            datetime(2026, 1, 1, 10, 0, 0, 250000, tzinfo=UTC),
        ),
        ("2025-12-31T23:00:00.000-0100", datetime(2026, 1, 1, 0, tzinfo=UTC)),
        (
            "2024-02-29T00:00:00.123456Z",
            datetime(2024, 2, 29, 0, 0, 0, 123456, tzinfo=UTC),
        ),
    ],
)
def test_parse_datetime(text, expected):
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01",
        "2026-01-01T10:00:00",
        "2026-01-01 10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T10:00:00+2400",
        "2026-01-01T10:00:00.1234567Z",
        "yesterday",
        "",
        None,
        1767225600,
    ],
)
def test_parse_datetime_refuses(text):
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_parse_date():
    assert parse_date("2026-03-31") == date(2026, 3, 31)
    for bad in ("2026-03-31T00:00:00Z", "31/03/2026", "2026-13-01", "", None):
        with pytest.raises(ValueError):
            parse_date(bad)


def test_format_soql_datetime_floors_to_the_second_in_utc():
    moment = datetime(2026, 1, 1, 1, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_soql_datetime(moment) == "2026-01-01T00:00:00Z"


def test_format_soql_datetime_refuses_naive_and_dates():
    with pytest.raises(ValueError, match="naive datetime"):
        format_soql_datetime(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="expected a datetime"):
        format_soql_datetime(date(2026, 1, 1))


def test_format_soql_date():
    assert format_soql_date(date(2026, 1, 5)) == "2026-01-05"
    with pytest.raises(ValueError):
        format_soql_date(datetime(2026, 1, 5, tzinfo=UTC))
    with pytest.raises(ValueError):
        format_soql_date("2026-01-05")
