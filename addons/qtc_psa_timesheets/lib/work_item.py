"""Validate and normalise the work items a PSA pushes to Odoo.

A PSA (or our own Harvest poller, see ``harvest.py``) sends approved time, expenses
and milestone completions as JSON objects, a batch at a time. This module is the
one place that decides whether such an object is acceptable, and turns it into an
immutable :class:`WorkItem` with typed values: ``Decimal`` hours and money (never
floats), aware UTC datetimes, a lower-cased email, an upper-cased currency.

Why every problem is collected instead of stopping at the first: a rejected item
is kept for replay and shown to a person (the PSA developer in the push response,
a finance user in the exception queue); one answer listing everything wrong lets
them fix it in one round trip. Why one bad item does not sink its batch: the other
items are independent facts about approved work, and holding them back only delays
invoicing.

The model is "full state": every delivery of an item carries all of its fields,
including a withdrawal (``status: withdrawn``), so the kind-specific requirements
hold whatever the status. Ordering between deliveries of the same item comes from
``version`` (an integer the PSA increments) or, when the PSA has none, from
``updated_at``; :func:`idempotency_key` combines it with the external id.

The tables below (``FIELDS``, ``REQUIRED_FIELDS``, ``REQUIRED_BY_KIND`` ...) are the
contract. ``static/api/work_items.schema.json`` publishes the same contract to PSA
developers, and a unit test keeps the two in agreement.
"""

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

KIND_TIME = "time"
KIND_EXPENSE = "expense"
KIND_MILESTONE = "milestone"
KINDS = (KIND_TIME, KIND_EXPENSE, KIND_MILESTONE)

STATUS_APPROVED = "approved"
STATUS_WITHDRAWN = "withdrawn"
STATUSES = (STATUS_APPROVED, STATUS_WITHDRAWN)

# Every field an item may carry, in the order the schema documents them.
FIELDS = (
    "external_id",
    "version",
    "updated_at",
    "kind",
    "project_ref",
    "task_ref",
    "employee_email",
    "date",
    "hours",
    "description",
    "billable",
    "approved_at",
    "approver",
    "rate",
    "amount",
    "currency",
    "milestone_ref",
    "status",
)
# Required whatever the kind and status.
REQUIRED_FIELDS = ("external_id", "kind", "project_ref", "date", "status")
# At least one of these orders the deliveries of one item.
ONE_OF_REQUIRED = ("version", "updated_at")
REQUIRED_BY_KIND = {
    KIND_TIME: ("employee_email", "hours"),
    KIND_EXPENSE: ("employee_email", "amount", "currency"),
    KIND_MILESTONE: ("milestone_ref",),
}
# Fields that make no sense for a kind: sending them is a mistake worth reporting
# (an expense with hours was probably mapped from the wrong PSA object).
FORBIDDEN_BY_KIND = {
    KIND_TIME: ("amount", "currency", "milestone_ref"),
    KIND_EXPENSE: ("hours", "rate", "milestone_ref"),
    KIND_MILESTONE: ("hours", "rate", "amount", "currency"),
}
REQUIRED_BY_STATUS = {
    STATUS_APPROVED: ("approved_at",),
    STATUS_WITHDRAWN: (),
}

MAX_EXTERNAL_ID_LENGTH = 128
MAX_REF_LENGTH = 128
MAX_EMAIL_LENGTH = 254
MAX_APPROVER_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 4000
MAX_HOURS = Decimal(24)
# Guards against absurd precision ("1e-30" hours) without rounding anything away.
MAX_DECIMAL_PLACES = 6
DEFAULT_MAX_ITEMS = 500

# Result statuses of one item in a batch (the push API's per-item answer).
ITEM_ACCEPTED = "accepted"
ITEM_DUPLICATE = "duplicate"
ITEM_REJECTED = "rejected"
ITEM_STATUSES = (ITEM_ACCEPTED, ITEM_DUPLICATE, ITEM_REJECTED)

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A datetime with a time part and an explicit offset (RFC 3339 profile of ISO 8601).
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$"
)
_DECIMAL_STRING_RE = re.compile(r"^-?\d+(\.\d+)?$")
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")


class WorkItemError(ValueError):
    """A work item was refused; ``problems`` lists every reason, not just the first.

    :param problems: ``[{"field": ..., "message": ...}, ...]``; ``field`` is the
        item field concerned, or ``None`` for the item as a whole
    """

    def __init__(self, problems):
        self.problems = tuple(dict(problem) for problem in problems)
        summary = "; ".join(
            f"{problem['field'] or 'item'}: {problem['message']}"
            for problem in self.problems
        )
        super().__init__(f"invalid work item: {summary}")


class BatchError(ValueError):
    """The batch as a whole is unusable (not a list, too many items).

    :param message: what is wrong, safe to return to the caller
    :param status_code: the HTTP status the push endpoint should answer with
    """

    def __init__(self, message, status_code=400):
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One validated, normalised work item. Build it with :func:`validate_work_item`.

    Datetimes are aware and in UTC; money and hours are ``Decimal``; optional
    fields that were absent (or ``null``) are ``None``, ``description`` is ``""``.
    """

    external_id: str
    kind: str
    project_ref: str
    date: date
    status: str
    version: int | None = None
    updated_at: datetime | None = None
    task_ref: str | None = None
    employee_email: str | None = None
    hours: Decimal | None = None
    description: str = ""
    billable: bool = True
    approved_at: datetime | None = None
    approver: str | None = None
    rate: Decimal | None = None
    amount: Decimal | None = None
    currency: str | None = None
    milestone_ref: str | None = None

    def as_dict(self):
        """Return the item as a JSON-ready dict that validates back to an equal item.

        Decimals become strings (exact), dates and datetimes ISO 8601 strings; the
        absent optional fields are left out.

        :returns: a ``dict`` keyed by the names in ``FIELDS``
        """
        payload = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, datetime):
                value = format_datetime(value)
            elif isinstance(value, date):
                value = value.isoformat()
            payload[name] = value
        return payload


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one item of a batch.

    :param index: position of the item in the batch (0-based)
    :param external_id: the item's external id when it could be read, else ``None``
    :param status: ``accepted``, ``duplicate`` (same idempotency key earlier in the
        same batch) or ``rejected``
    :param item: the :class:`WorkItem` when accepted or duplicate, else ``None``
    :param reasons: the problems (``{"field", "message"}``) when rejected
    """

    index: int
    external_id: str | None
    status: str
    item: WorkItem | None = None
    reasons: tuple = ()

    @property
    def accepted(self):
        """True when the item is valid and new in this batch."""
        return self.status == ITEM_ACCEPTED


def format_datetime(value):
    """Write an aware datetime as the canonical UTC string used in keys and payloads.

    :param value: an aware ``datetime``
    :returns: e.g. ``2026-03-01T08:00:00Z`` (microseconds kept when not zero)
    :raises ValueError: if ``value`` is naive
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime: an offset is required")
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


def idempotency_key(item):
    """Return the key that identifies one delivery of one item.

    Two deliveries with the same key are the same fact; the push endpoint answers
    ``duplicate`` for the second. ``version`` is preferred over ``updated_at`` when
    the PSA sends both, because it is the PSA's own ordering.

    :param item: a :class:`WorkItem`
    :returns: ``"<external_id>:<version>"`` or ``"<external_id>:<updated_at UTC>"``
    """
    if item.version is not None:
        return f"{item.external_id}:{item.version}"
    return f"{item.external_id}:{format_datetime(item.updated_at)}"


def validate_work_item(data):
    """Check one pushed work item and return it normalised.

    :param data: the decoded JSON object of one item
    :returns: a frozen :class:`WorkItem`
    :raises WorkItemError: listing every problem found (unknown fields, missing or
        malformed values, kind and status rules)
    """
    if not isinstance(data, dict):
        raise WorkItemError(
            [{"field": None, "message": f"must be an object, not {_json_type(data)}"}]
        )
    problems = []
    values = {}

    def problem(field, message):
        problems.append({"field": field, "message": message})

    for name in sorted(set(data) - set(FIELDS), key=str):
        problem(str(name), "unknown field")

    def present(name):
        return data.get(name) is not None

    def read(name, parser):
        if not present(name):
            return
        try:
            values[name] = parser(data[name])
        except ValueError as error:
            problem(name, str(error))

    read("external_id", _string_reader(MAX_EXTERNAL_ID_LENGTH))
    read("version", _read_version)
    read("updated_at", _read_datetime)
    read("kind", _choice_reader(KINDS))
    read("project_ref", _string_reader(MAX_REF_LENGTH))
    read("task_ref", _string_reader(MAX_REF_LENGTH))
    read("employee_email", _read_email)
    read("date", _read_date)
    read(
        "hours", _decimal_reader(minimum=Decimal(0), exclusive=True, maximum=MAX_HOURS)
    )
    read("description", _text_reader(MAX_DESCRIPTION_LENGTH))
    read("billable", _read_bool)
    read("approved_at", _read_datetime)
    read("approver", _string_reader(MAX_APPROVER_LENGTH))
    read("rate", _decimal_reader(minimum=Decimal(0)))
    read("amount", _decimal_reader(minimum=Decimal(0), exclusive=True))
    read("currency", _read_currency)
    read("milestone_ref", _string_reader(MAX_REF_LENGTH))
    read("status", _choice_reader(STATUSES))

    for name in REQUIRED_FIELDS:
        if not present(name):
            problem(name, "is required")
    if not any(present(name) for name in ONE_OF_REQUIRED):
        problem(None, "one of version or updated_at is required")

    # Kind and status rules only make sense once the kind and status are known.
    kind = values.get("kind")
    if kind is not None:
        for name in REQUIRED_BY_KIND[kind]:
            if not present(name):
                problem(name, f"is required for a {kind} item")
        for name in FORBIDDEN_BY_KIND[kind]:
            if present(name):
                problem(name, f"is not allowed on a {kind} item")
    status = values.get("status")
    if status is not None:
        for name in REQUIRED_BY_STATUS[status]:
            if not present(name):
                problem(name, f"is required when status is {status}")

    if problems:
        raise WorkItemError(problems)
    values.setdefault("description", "")
    values.setdefault("billable", True)
    return WorkItem(**values)


def items_from_body(body):
    """Take the item list out of a decoded push request body ``{"items": [...]}``.

    :param body: the decoded JSON body
    :returns: the value of ``items`` (checked later by :func:`validate_batch`)
    :raises BatchError: (400) if the body is not an object with exactly ``items``
    """
    if not isinstance(body, dict):
        raise BatchError(f"the body must be a JSON object, not {_json_type(body)}")
    if "items" not in body:
        raise BatchError("the body has no 'items'")
    unknown = sorted(set(body) - {"items"}, key=str)
    if unknown:
        raise BatchError(f"unknown top-level fields: {', '.join(map(str, unknown))}")
    return body["items"]


def validate_batch(items, max_items=DEFAULT_MAX_ITEMS):
    """Validate every item of a batch independently.

    A bad item is reported and the others go on; only problems of the batch itself
    raise. An item whose idempotency key already appeared earlier in the batch is
    reported ``duplicate`` (the first one stays ``accepted``).

    :param items: the decoded ``items`` array
    :param max_items: the most items one batch may carry (backend setting)
    :returns: a list of :class:`ItemResult`, one per item, in batch order
    :raises BatchError: (400) if ``items`` is not a list, (413) if it is too long
    """
    if not isinstance(items, list):
        raise BatchError(f"'items' must be an array, not {_json_type(items)}")
    if len(items) > max_items:
        raise BatchError(
            f"too many items: {len(items)} > {max_items}; split the batch",
            status_code=413,
        )
    results = []
    seen_keys = set()
    for index, data in enumerate(items):
        external_id = None
        if isinstance(data, dict) and isinstance(data.get("external_id"), str):
            external_id = data["external_id"]
        try:
            item = validate_work_item(data)
        except WorkItemError as error:
            results.append(
                ItemResult(index, external_id, ITEM_REJECTED, reasons=error.problems)
            )
            continue
        key = idempotency_key(item)
        status = ITEM_DUPLICATE if key in seen_keys else ITEM_ACCEPTED
        seen_keys.add(key)
        results.append(ItemResult(index, item.external_id, status, item=item))
    return results


# -- value readers: each returns the normalised value or raises ValueError ---------


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _string_reader(max_length):
    def read(value):
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return read


def _text_reader(max_length):
    def read(value):
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return read


def _choice_reader(choices):
    def read(value):
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return read


def _read_version(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {_json_type(value)}")
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _read_bool(value):
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_json_type(value)}")
    return value


def _read_email(value):
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_json_type(value)}")
    value = value.strip().lower()
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL_RE.match(value):
        raise ValueError("is not an email address")
    return value


def _read_currency(value):
    if not isinstance(value, str) or not _CURRENCY_RE.match(value):
        raise ValueError("must be a 3-letter ISO 4217 code")
    return value.upper()


def _read_date(value):
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"is not a real date: {value}") from None


def parse_datetime(value):
    """Read an ISO 8601 datetime that carries an offset, as an aware UTC datetime.

    :param value: e.g. ``2026-03-01T09:00:00Z`` or ``2026-03-01T10:00:00+01:00``
    :returns: the instant, with ``tzinfo=UTC``
    :raises ValueError: for a bare date, a datetime without offset, or garbage
    """
    return _read_datetime(value)


def _read_datetime(value):
    if not isinstance(value, str) or not _DATETIME_RE.match(value):
        raise ValueError(
            "must be an ISO 8601 datetime with an offset, e.g. 2026-03-01T09:00:00Z"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"is not a real datetime: {value}") from None
    return parsed.astimezone(UTC)


def parse_decimal(value):
    """Read a JSON number or decimal string as an exact ``Decimal``.

    Floats go through their shortest ``repr`` so ``7.1`` stays ``Decimal("7.1")``;
    booleans, NaN and infinities are refused.

    :param value: ``int``, ``float``, ``Decimal`` or a string like ``"7.50"``
    :returns: a finite ``Decimal``
    :raises ValueError: for anything else
    """
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str):
        if not _DECIMAL_STRING_RE.match(value):
            raise ValueError(f"is not a decimal number: {value[:40]!r}")
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex already checked it
            raise ValueError(f"is not a decimal number: {value[:40]!r}") from None
    raise ValueError(f"must be a number, not {_json_type(value)}")


def _decimal_reader(minimum=None, exclusive=False, maximum=None):
    def read(value):
        number = parse_decimal(value)
        if -number.as_tuple().exponent > MAX_DECIMAL_PLACES:
            raise ValueError(f"must have at most {MAX_DECIMAL_PLACES} decimal places")
        if minimum is not None:
            if exclusive and number <= minimum:
                raise ValueError(f"must be > {minimum}")
            if not exclusive and number < minimum:
                raise ValueError(f"must be >= {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be <= {maximum}")
        return number

    return read
