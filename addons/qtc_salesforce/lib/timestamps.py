"""Salesforce date and datetime strings, read strictly and written for SOQL.

Salesforce writes datetimes in two shapes: the REST API as
``2026-01-01T10:00:00.000+0000`` and Outbound Messages as
``2026-01-01T10:00:00.000Z``. Both mean an instant; we turn them into aware
``datetime`` objects in UTC so comparisons (the sync watermark above all) never
mix naive and aware values or two time zones. Dates (``CloseDate``,
``ScheduleDate``) are plain ``YYYY-MM-DD``.

The parsers are deliberately stricter than ``datetime.fromisoformat``: a date
where a datetime is expected, or a datetime without an offset, is an error and
not a silent guess at the time zone.
"""

import re
from datetime import UTC, date, datetime, timedelta, timezone

_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
    r"(Z|[+-]\d{2}:?\d{2})$"
)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_datetime(value):
    """Read a Salesforce datetime string as an aware UTC ``datetime``.

    :param value: e.g. ``2026-01-01T10:00:00.000+0000`` or ``...000Z``
    :returns: the instant, with ``tzinfo=UTC``
    :raises ValueError: for anything else (no offset, a bare date, bad numbers)
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a datetime string, got {type(value).__name__}")
    match = _DATETIME_RE.match(value)
    if not match:
        raise ValueError(f"not a Salesforce datetime: {value[:40]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    microsecond = int((fraction or "0").ljust(6, "0"))
    if offset == "Z":
        tzinfo = UTC
    else:
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if delta >= timedelta(hours=24):
            raise ValueError(f"not a Salesforce datetime: {value[:40]!r}")
        tzinfo = timezone(-delta if offset[0] == "-" else delta)
    try:
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            microsecond,
            tzinfo=tzinfo,
        )
    except ValueError:
        raise ValueError(f"not a Salesforce datetime: {value[:40]!r}") from None
    return parsed.astimezone(UTC)


def parse_date(value):
    """Read a Salesforce date string (``YYYY-MM-DD``) as a ``date``.

    :raises ValueError: for anything else, including a full datetime
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {type(value).__name__}")
    match = _DATE_RE.match(value)
    if not match:
        raise ValueError(f"not a Salesforce date: {value[:40]!r}")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise ValueError(f"not a Salesforce date: {value[:40]!r}") from None


def format_soql_datetime(moment):
    """Write an aware datetime as a SOQL datetime literal in UTC.

    Fractions of a second are dropped (floored): a watermark filter
    ``SystemModstamp > literal`` then re-reads at most the records of the same
    second, which deduplication absorbs, and never skips one.

    :param moment: an aware ``datetime``
    :returns: e.g. ``2026-01-01T00:00:00Z``
    :raises ValueError: for a naive datetime (its zone would be a guess)
    """
    if not isinstance(moment, datetime):
        raise ValueError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: give the time zone (UTC) explicitly")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_soql_date(day):
    """Write a ``date`` as a SOQL date literal (``YYYY-MM-DD``).

    :raises ValueError: for a datetime or anything that is not a date
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"expected a date, got {type(day).__name__}")
    return day.isoformat()
