"""Revenue assurance arithmetic: periods, breaches, ages, trends."""

from datetime import date, datetime

import pytest

from qtc_connector_base.lib import assurance


def test_period_keys_name_day_iso_week_and_month():
    moment = datetime(2026, 3, 4, 23, 59)
    assert assurance.period_key(moment, "day") == "2026-03-04"
    assert assurance.period_key(moment, "week") == "2026-W10"
    assert assurance.period_key(moment, "month") == "2026-03"
    # An ISO week crosses the year: 2027-01-01 is in week 53 of 2026.
    assert assurance.period_key(date(2027, 1, 1), "week") == "2026-W53"


def test_period_key_refuses_an_unknown_period():
    with pytest.raises(ValueError):
        assurance.period_key(date(2026, 3, 4), "quarter")


def test_week_start_is_the_monday():
    assert assurance.week_start(date(2026, 3, 8)) == date(2026, 3, 2)
    assert assurance.week_start(datetime(2026, 3, 2, 0, 0)) == date(2026, 3, 2)


@pytest.mark.parametrize(
    ("measure", "threshold", "expected"),
    [
        ("count", 2, True),
        ("count", 3, False),
        ("amount", 99.99, True),
        ("amount", 100.0, False),
        ("age", 47, True),
        ("age", 48, False),
    ],
)
def test_breach_is_strictly_above_the_threshold(measure, threshold, expected):
    assert assurance.is_breached(measure, threshold, 3, 100.0, 48.0) is expected


def test_an_empty_check_is_never_breached():
    assert not assurance.is_breached("count", -1, 0, 0.0, 0.0)
    assert not assurance.is_breached("amount", -5, 0, 0.0, 0.0)


def test_measure_refuses_an_unknown_measure():
    with pytest.raises(ValueError):
        assurance.measure_value("mood", 1, 1.0, 1.0)


def test_age_hours_counts_from_since_to_now():
    now = datetime(2026, 3, 4, 12, 0)
    assert assurance.age_hours(datetime(2026, 3, 3, 12, 0), now) == 24.0
    assert assurance.age_hours(None, now) == 0.0
    assert assurance.age_hours(datetime(2026, 3, 5), now) == 0.0


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (None, "-"),
        (0, "-"),
        (0.001, "1 min"),
        (0.75, "45 min"),
        (5.2, "5 h"),
        (47.4, "47 h"),
        (47.6, "2 d"),
        (48, "2 d"),
        (76, "3 d 4 h"),
    ],
)
def test_ages_read_as_people_say_them(hours, text):
    assert assurance.format_age(hours) == text


def test_sparkline_scales_from_zero_to_the_largest_value():
    assert assurance.sparkline([]) == ""
    assert assurance.sparkline([0, 0, 0]) == "▁▁▁"
    assert assurance.sparkline([0, 7, 14]) == "▁▅█"
    assert assurance.sparkline([None, -3, 2]) == "▁▁█"


def test_weekly_series_keeps_the_last_value_of_each_week_and_carries_it():
    points = [
        (date(2026, 2, 16), 5),  # week of 16 Feb
        (date(2026, 2, 18), 7),  # same week, later: wins
        (date(2026, 3, 3), 2),  # week of 2 Mar
    ]
    series = assurance.weekly_series(points, 4, date(2026, 3, 4))
    # Weeks of 9 Feb (nothing yet), 16 Feb, 23 Feb (carried), 2 Mar.
    assert series == [0.0, 7, 7, 2]


def test_percentile_interpolates_like_postgresql():
    assert assurance.percentile([], 0.5) is None
    assert assurance.percentile([4.0], 0.9) == 4.0
    assert assurance.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert assurance.percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)


def test_parse_iso_date():
    assert assurance.parse_iso_date("2026-03-01") == date(2026, 3, 1)
    for bad in (None, 20260301, "01/03/2026"):
        with pytest.raises(ValueError):
            assurance.parse_iso_date(bad)
