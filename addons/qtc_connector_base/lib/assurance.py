"""Revenue assurance arithmetic: periods, breaches, ages and trends.

Pure on purpose: the Odoo layer measures (one SQL statement per check) and
stores; what a measure means against its threshold, which period a breach
belongs to, and how a figure reads on a finance user's card are decided here.

Periods: a breach opens ONE exception per check and period. A period is named
by a key that sorts and compares as text (``2026-03-02`` for a day, the
Monday ``2026-W10`` for an ISO week, ``2026-03`` for a month), computed from a
UTC timestamp so every server agrees on it.
"""

from datetime import date, datetime, timedelta

PERIOD_DAY = "day"
PERIOD_WEEK = "week"
PERIOD_MONTH = "month"
PERIODS = (PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH)

MEASURE_COUNT = "count"
MEASURE_AMOUNT = "amount"
MEASURE_AGE = "age"
MEASURES = (MEASURE_COUNT, MEASURE_AMOUNT, MEASURE_AGE)

# Block characters of a text sparkline, lowest to highest.
SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def period_key(moment, period):
    """The key of the period ``moment`` falls in.

    :param moment: a ``datetime`` (naive UTC, as Odoo stores them) or a ``date``
    :param period: ``day``, ``week`` (ISO week, Monday first) or ``month``
    :returns: e.g. ``2026-03-04``, ``2026-W10``, ``2026-03``
    :raises ValueError: for another period
    """
    day = moment.date() if isinstance(moment, datetime) else moment
    if period == PERIOD_DAY:
        return day.isoformat()
    if period == PERIOD_WEEK:
        year, week, _weekday = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == PERIOD_MONTH:
        return f"{day.year}-{day.month:02d}"
    raise ValueError(f"unknown period {period!r}")


def week_start(moment):
    """The Monday of ``moment``'s ISO week, as a ``date``."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def measure_value(measure, count, amount, oldest_hours):
    """The figure a threshold is compared with.

    :param measure: ``count``, ``amount`` or ``age`` (hours of the oldest item)
    :raises ValueError: for another measure
    """
    if measure == MEASURE_COUNT:
        return float(count or 0)
    if measure == MEASURE_AMOUNT:
        return float(amount or 0.0)
    if measure == MEASURE_AGE:
        return float(oldest_hours or 0.0)
    raise ValueError(f"unknown measure {measure!r}")


def is_breached(measure, threshold, count, amount, oldest_hours):
    """True when the measured figure is above the threshold.

    A check with nothing to count is never breached, whatever its threshold
    (a negative threshold would otherwise flag an empty check).
    """
    if not count:
        return False
    return measure_value(measure, count, amount, oldest_hours) > float(threshold or 0)


def age_hours(since, now):
    """Hours from ``since`` to ``now`` (0 when ``since`` is empty or later)."""
    if not since:
        return 0.0
    return max(0.0, (now - since).total_seconds() / 3600.0)


def format_age(hours):
    """An age the way a person says it: ``45 min``, ``5 h``, ``3 d 4 h``, ``-``.

    :param hours: a number of hours (``None`` or 0 give ``-``)
    """
    if not hours or hours <= 0:
        return "-"
    minutes = round(hours * 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    whole_hours = round(hours)
    if whole_hours < 48:
        return f"{whole_hours} h"
    days, rest = divmod(whole_hours, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


def format_duration(hours):
    """A lead time the way a person says it: ``< 1 min`` for an instant step,
    else as :func:`format_age` (``-`` when there is none)."""
    if hours is None:
        return "-"
    if hours < 1 / 60:
        return "< 1 min"
    return format_age(hours)


def sparkline(values):
    """A one-line text chart of ``values`` (oldest first), e.g. ``▁▃▅█``.

    Scaled from 0 to the largest value, so an all-zero history stays flat at
    the bottom and a single spike stands out.
    """
    points = [max(0.0, float(value or 0.0)) for value in values]
    if not points:
        return ""
    top = max(points)
    if top <= 0:
        return SPARK_LEVELS[0] * len(points)
    last = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[round(value / top * last)] for value in points)


def weekly_series(points, weeks, today):
    """The last value of each of the ``weeks`` weeks ending with ``today``'s.

    :param points: ``[(date, value)]`` in any order (e.g. daily snapshots)
    :param weeks: how many weeks, oldest first in the result
    :param today: a ``date`` in the last week
    :returns: a list of ``weeks`` values; a week without a point carries the
        previous week's value forward (0 before the first point)
    """
    last_by_week = {}
    for day, value in sorted(points, key=lambda point: point[0]):
        last_by_week[week_start(day)] = value
    current = week_start(today)
    series = []
    previous = 0.0
    for offset in range(weeks - 1, -1, -1):
        start = current - timedelta(weeks=offset)
        previous = last_by_week.get(start, previous)
        series.append(previous)
    return series


def percentile(sorted_values, fraction):
    """The ``fraction`` percentile by linear interpolation (as PostgreSQL's
    ``percentile_cont``), or ``None`` for no values."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * weight


def parse_iso_date(value):
    """A ``date`` from ``YYYY-MM-DD``.

    :raises ValueError: for anything else
    """
    if not isinstance(value, str):
        raise ValueError("a date must be a YYYY-MM-DD string")
    return date.fromisoformat(value)
