"""SOQL for the delta sync, built so that no configured text can inject SQL.

The scheduled sync asks Salesforce for every Account, Contact and won
Opportunity changed since the last watermark::

    SELECT ... FROM Opportunity
    WHERE SystemModstamp > 2026-01-01T00:00:00Z AND IsWon = true
    ORDER BY SystemModstamp, Id

``SystemModstamp`` is used rather than ``LastModifiedDate`` because it also
moves when automation or a system process touches the record. Ordering by
``SystemModstamp, Id`` makes pages follow the watermark, so a page stored is a
prefix of the change stream (see ``pager``).

Everything that ends up in a query goes through one of two gates:

- names (objects, fields, relationship paths) must match a strict API-name
  pattern: letters, digits and single underscores, ``__c``-style suffixes;
  nothing else can appear, so no quote, space or keyword gets through;
- values are written as typed literals: strings quoted with every SOQL escape
  applied, numbers, booleans, dates and datetimes formatted by us.

The configurable opportunity filter (``IsWon = true`` by default) is text an
administrator types; ``parse_filter`` reads it into conditions joined by
``AND`` and the query is rebuilt from those conditions, never from the text.

``parse_limit_info`` reads the ``Sforce-Limit-Info`` response header
(``api-usage=25/15000``) and ``should_throttle`` decides when the sync stops
to leave the rest of the org's daily API allowance to other integrations.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from .timestamps import (
    format_soql_date,
    format_soql_datetime,
    parse_date,
    parse_datetime,
)

# One API name: starts with a letter, letters/digits separated by single
# underscores, optionally a namespace prefix and a custom suffix joined by
# double underscores (``ns__Billing_Type__c``). 80 characters at most.
_NAME = r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*"
IDENTIFIER_RE = re.compile(rf"^(?=.{{1,80}}$){_NAME}(?:__{_NAME}){{0,2}}$")
# SOQL allows five levels of parent relationships in a field path.
MAX_PATH_DEPTH = 6

COMPARISON_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE")
LIST_OPERATORS = ("IN", "NOT IN")

ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "BillingStreet",
    "BillingCity",
    "BillingPostalCode",
    "BillingStateCode",
    "BillingCountryCode",
    "Phone",
    "Website",
    "CurrencyIsoCode",
    "SystemModstamp",
    "LastModifiedDate",
)
CONTACT_FIELDS = (
    "Id",
    "AccountId",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MobilePhone",
    "Title",
    "SystemModstamp",
    "LastModifiedDate",
)
OPPORTUNITY_FIELDS = (
    "Id",
    "AccountId",
    "Name",
    "CloseDate",
    "CurrencyIsoCode",
    "StageName",
    "Amount",
    "IsWon",
    "Description",
    "SystemModstamp",
    "LastModifiedDate",
)
# The account is read with the opportunity so one query gives the mapper
# everything validation needs (billing address, tax id).
OPPORTUNITY_ACCOUNT_FIELDS = tuple(
    f"Account.{name}" for name in ACCOUNT_FIELDS if name != "LastModifiedDate"
)
LINE_ITEM_FIELDS = (
    "Id",
    "PricebookEntry.Product2.ProductCode",
    "Quantity",
    "UnitPrice",
    "Discount",
    "Description",
)
SCHEDULE_FIELDS = (
    "Id",
    "OpportunityLineItemId",
    "ScheduleDate",
    "Type",
    "Quantity",
    "Revenue",
    "Description",
)
DEFAULT_OPPORTUNITY_FILTER = "IsWon = true"
DEFAULT_BILLING_TYPE_FIELD = "Billing_Type__c"
# A query longer than this is refused by the REST query resource's URL limits
# long before SOQL's own 100,000 characters; chunk id lists below it.
MAX_IDS_PER_QUERY = 300


class SoqlError(ValueError):
    """A name, value or filter that cannot be put in a query safely."""


class LimitInfoError(ValueError):
    """The ``Sforce-Limit-Info`` header is missing or not understood."""


@dataclass(frozen=True)
class Condition:
    """One ``field operator value`` term of a WHERE clause.

    :ivar field: a validated field path
    :ivar operator: one of ``COMPARISON_OPERATORS`` or ``LIST_OPERATORS``
    :ivar value: a Python value (str, int, Decimal, bool, None, date,
        datetime), or a tuple of them for ``IN`` / ``NOT IN``
    """

    field: str
    operator: str
    value: object

    def __post_init__(self):
        validate_field_path(self.field)
        if self.operator in LIST_OPERATORS:
            if not isinstance(self.value, tuple) or not self.value:
                raise SoqlError(f"{self.operator} needs a non-empty list of values")
            for item in self.value:
                literal(item)
        elif self.operator in COMPARISON_OPERATORS:
            literal(self.value)
            if self.operator == "LIKE" and not isinstance(self.value, str):
                raise SoqlError("LIKE compares with a string")
            if self.operator not in ("=", "!=") and (
                self.value is None or isinstance(self.value, bool)
            ):
                raise SoqlError(f"{self.operator} cannot compare with {self.value}")
        else:
            raise SoqlError(f"unsupported operator {self.operator!r}")

    def render(self):
        """The term as SOQL text."""
        if self.operator in LIST_OPERATORS:
            items = ", ".join(literal(item) for item in self.value)
            return f"{self.field} {self.operator} ({items})"
        return f"{self.field} {self.operator} {literal(self.value)}"


@dataclass(frozen=True)
class Subquery:
    """A child relationship query, e.g. an opportunity's line items."""

    relationship: str
    fields: tuple
    order_by: tuple = ("Id",)

    def render(self):
        """The subquery as SOQL text, parenthesised."""
        validate_identifier(self.relationship)
        select = ", ".join(_unique_paths(self.fields))
        order = ", ".join(validate_field_path(path) for path in self.order_by)
        # Names were validated above; no text reaches SOQL unchecked.
        text = f"SELECT {select} FROM {self.relationship}"  # noqa: S608
        return f"({text} ORDER BY {order})" if order else f"({text})"


# --------------------------------------------------------------------- names


def validate_identifier(name):
    """Return ``name`` if it is a single Salesforce API name, else raise.

    :raises SoqlError: for anything but letters, digits and the underscore
        patterns API names use (no spaces, quotes, dots, double-underscore
        runs beyond ``ns__Name__c``)
    """
    if not isinstance(name, str) or not IDENTIFIER_RE.match(name):
        raise SoqlError(f"not a Salesforce API name: {str(name)[:60]!r}")
    return name


def validate_field_path(path):
    """Return ``path`` if it is a field or a dotted relationship path.

    :raises SoqlError: for an invalid segment or more than five relationships
    """
    if not isinstance(path, str) or not path:
        raise SoqlError(f"not a field path: {str(path)[:60]!r}")
    segments = path.split(".")
    if len(segments) > MAX_PATH_DEPTH:
        raise SoqlError(f"field path {path[:60]!r} has more than five relationships")
    for segment in segments:
        if not IDENTIFIER_RE.match(segment):
            raise SoqlError(f"not a field path: {path[:60]!r}")
    return path


# -------------------------------------------------------------------- values

_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def quote_string(value):
    """Quote a string as a SOQL literal with every escape SOQL defines.

    Backslash, both quotes and the control characters SOQL names are
    escaped; other control characters cannot be written in SOQL and are
    refused. ``%`` and ``_`` are left alone: they are only wildcards in LIKE.

    :raises SoqlError: for a non-string or an unrepresentable character
    """
    if not isinstance(value, str):
        raise SoqlError(f"expected a string, got {type(value).__name__}")
    out = []
    for char in value:
        if char in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            raise SoqlError(f"control character U+{ord(char):04X} in a SOQL string")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def literal(value):
    """Write a Python value as a SOQL literal.

    :param value: str, bool, None, int, Decimal, finite float, date or an
        aware datetime
    :raises SoqlError: for any other type, NaN/infinity or a naive datetime
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise SoqlError(f"{value} cannot be written in SOQL")
        # Plain notation: SOQL does not read exponents like 1E+3.
        return format(number, "f")
    if isinstance(value, datetime):
        try:
            return format_soql_datetime(value)
        except ValueError as error:
            raise SoqlError(str(error)) from None
    if isinstance(value, date):
        return format_soql_date(value)
    raise SoqlError(f"cannot write a {type(value).__name__} as a SOQL literal")


# -------------------------------------------------------------------- filter

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z][A-Za-z0-9_.]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_UNESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
}


def parse_filter(text):
    """Read an administrator's filter into conditions joined by AND.

    Grammar: ``condition (AND condition)*`` where a condition is
    ``path op value`` (op one of ``= != <> < <= > >= LIKE``) or
    ``path [NOT] IN (value, ...)``; a value is a quoted string, a number,
    ``true``/``false``/``null``, a date ``2026-01-31`` or a datetime
    ``2026-01-31T00:00:00Z``. ``OR``, parentheses, sub-selects and functions
    are refused: the filter narrows the sync, it is not a query language.

    :param text: e.g. ``IsWon = true AND Type IN ('New', 'Renewal')``
    :returns: a tuple of ``Condition`` (empty for blank text)
    :raises SoqlError: naming the position of the first problem
    """
    if text is None or not text.strip():
        return ()
    tokens = _tokenize(text)
    conditions = []
    index = 0
    while True:
        condition, index = _parse_condition(tokens, index)
        conditions.append(condition)
        if index == len(tokens):
            return tuple(conditions)
        kind, value, position = tokens[index]
        if kind == "word" and value.upper() == "AND":
            index += 1
            if index == len(tokens):
                raise SoqlError("filter ends after AND")
            continue
        if kind == "word" and value.upper() == "OR":
            raise SoqlError(
                f"OR at position {position}: only AND-joined conditions are supported"
            )
        raise SoqlError(f"expected AND at position {position}, found {value!r}")


def render_conditions(conditions):
    """Join conditions with AND, as SOQL text ('' for none)."""
    return " AND ".join(condition.render() for condition in conditions)


def _tokenize(text):
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if not match:
            raise SoqlError(
                f"unexpected {text[position : position + 10]!r} at position {position}"
            )
        kind = match.lastgroup
        if kind != "space":
            tokens.append((kind, match.group(), position))
        position = match.end()
    return tokens


def _parse_condition(tokens, index):
    kind, field_token, position = _take(tokens, index, "a field name")
    if kind != "word" or field_token.upper() in ("AND", "OR", "NOT"):
        raise SoqlError(f"expected a field name at position {position}")
    try:
        validate_field_path(field_token)
    except SoqlError:
        raise SoqlError(
            f"not a field path at position {position}: {field_token[:60]!r}"
        ) from None
    index += 1
    kind, operator, position = _take(tokens, index, "an operator")
    upper = operator.upper()
    if kind == "word" and upper == "NOT":
        index += 1
        kind, operator, position = _take(tokens, index, "IN")
        if operator.upper() != "IN":
            raise SoqlError(f"expected IN after NOT at position {position}")
        upper = "NOT IN"
    if kind == "word" and upper in ("IN", "NOT IN"):
        values, index = _parse_list(tokens, index + 1)
        return _condition(field_token, upper, values, position), index
    if kind == "op" or (kind == "word" and upper == "LIKE"):
        operator = "!=" if operator == "<>" else upper
        value, index = _parse_value(tokens, index + 1)
        return _condition(field_token, operator, value, position), index
    raise SoqlError(f"expected an operator at position {position}, found {operator!r}")


def _condition(field_path, operator, value, position):
    try:
        return Condition(field_path, operator, value)
    except SoqlError as error:
        raise SoqlError(f"{error} (position {position})") from None


def _parse_list(tokens, index):
    kind, value, position = _take(tokens, index, "(")
    if kind != "punct" or value != "(":
        raise SoqlError(f"expected ( at position {position}")
    values = []
    index += 1
    while True:
        item, index = _parse_value(tokens, index)
        values.append(item)
        kind, value, position = _take(tokens, index, ", or )")
        index += 1
        if kind == "punct" and value == ")":
            return tuple(values), index
        if kind != "punct" or value != ",":
            raise SoqlError(f"expected , or ) at position {position}")


def _parse_value(tokens, index):
    kind, text, position = _take(tokens, index, "a value")
    index += 1
    if kind == "string":
        return _unquote(text, position), index
    if kind == "number":
        try:
            return (int(text) if "." not in text else Decimal(text)), index
        except (ValueError, InvalidOperation):  # pragma: no cover - regex-guarded
            raise SoqlError(f"bad number at position {position}") from None
    if kind == "date":
        try:
            return parse_date(text), index
        except ValueError:
            raise SoqlError(f"bad date {text!r} at position {position}") from None
    if kind == "datetime":
        try:
            return parse_datetime(text), index
        except ValueError:
            raise SoqlError(f"bad datetime {text!r} at position {position}") from None
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true", index
    if kind == "word" and text.lower() == "null":
        return None, index
    raise SoqlError(f"expected a value at position {position}, found {text!r}")


def _unquote(token, position):
    body = token[1:-1]
    out = []
    chars = iter(body)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars)
        if escaped in ("%", "_"):
            raise SoqlError(
                f"escaped LIKE wildcard at position {position} is not supported"
            )
        if escaped not in _UNESCAPES:
            raise SoqlError(f"invalid escape \\{escaped} at position {position}")
        out.append(_UNESCAPES[escaped])
    return "".join(out)


def _take(tokens, index, expected):
    if index >= len(tokens):
        raise SoqlError(f"filter ends where {expected} was expected")
    return tokens[index]


# ------------------------------------------------------------------- queries


def build_delta_query(
    sobject,
    fields,
    watermark=None,
    *,
    conditions=(),
    subqueries=(),
    lookback_seconds=0,
    limit=None,
):
    """Build ``SELECT ... WHERE SystemModstamp > watermark ... ORDER BY``.

    :param sobject: the object API name
    :param fields: field paths to select (duplicates dropped, order kept)
    :param watermark: aware datetime of the last change already stored, or
        ``None`` for a full sync (no SystemModstamp filter)
    :param conditions: more ``Condition`` terms, AND-joined
    :param subqueries: ``Subquery`` objects added to the SELECT list
    :param lookback_seconds: move the filter this far before the watermark,
        to re-read changes committed late by long Salesforce transactions
    :param limit: optional positive LIMIT
    :returns: the SOQL text
    :raises SoqlError: for an invalid name, value, limit or lookback
    """
    validate_identifier(sobject)
    select = list(_unique_paths(fields))
    if "SystemModstamp" not in select:
        # The pager reads it on every record to move the watermark.
        select.append("SystemModstamp")
    select.extend(subquery.render() for subquery in subqueries)
    where = []
    if watermark is not None:
        if not isinstance(watermark, datetime):
            raise SoqlError(
                f"watermark must be a datetime, got {type(watermark).__name__}"
            )
        if isinstance(lookback_seconds, bool) or not isinstance(lookback_seconds, int):
            raise SoqlError("lookback_seconds must be an integer")
        if lookback_seconds < 0:
            raise SoqlError("lookback_seconds cannot be negative")
        since = watermark - timedelta(seconds=lookback_seconds)
        where.append(Condition("SystemModstamp", ">", since).render())
    where.extend(condition.render() for condition in conditions)
    # Every name and literal was validated or written by this module.
    query = f"SELECT {', '.join(select)} FROM {sobject}"  # noqa: S608
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY SystemModstamp, Id"
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SoqlError(f"limit must be a positive integer, got {limit!r}")
        query += f" LIMIT {limit}"
    return query


def account_query(watermark=None, *, tax_id_field=None, extra_fields=(), fields=None):
    """The Account delta query.

    :param tax_id_field: the custom field holding the VAT/tax id, if any
    :param fields: replaces ``ACCOUNT_FIELDS`` (e.g. for an org without
        multi-currency, where ``CurrencyIsoCode`` does not exist)
    """
    selected = [*(fields or ACCOUNT_FIELDS), *extra_fields]
    if tax_id_field:
        selected.append(tax_id_field)
    return build_delta_query("Account", selected, watermark)


def contact_query(watermark=None, *, extra_fields=(), fields=None):
    """The Contact delta query (contacts of any account)."""
    return build_delta_query(
        "Contact", [*(fields or CONTACT_FIELDS), *extra_fields], watermark
    )


def opportunity_query(
    watermark=None,
    *,
    opportunity_filter=DEFAULT_OPPORTUNITY_FILTER,
    billing_type_field=DEFAULT_BILLING_TYPE_FIELD,
    tax_id_field=None,
    extra_fields=(),
    line_extra_fields=(),
    fields=None,
    account_fields=None,
):
    """The won-Opportunity delta query with its account and line items.

    :param opportunity_filter: administrator text, see ``parse_filter``;
        ``IsWon = true`` by default, blank for no extra filter
    :param billing_type_field: the line item field deciding the billing kind
        (``None`` when the org has none: every line is then ``fixed``)
    :param tax_id_field: the Account field with the VAT/tax id, if any
    :raises SoqlError: for an invalid filter, field or name
    """
    selected = [*(fields or OPPORTUNITY_FIELDS), *extra_fields]
    selected.extend(account_fields or OPPORTUNITY_ACCOUNT_FIELDS)
    if tax_id_field:
        selected.append(f"Account.{validate_identifier(tax_id_field)}")
    line_fields = [*LINE_ITEM_FIELDS, *line_extra_fields]
    if billing_type_field:
        line_fields.append(billing_type_field)
    lines = Subquery("OpportunityLineItems", tuple(line_fields))
    return build_delta_query(
        "Opportunity",
        selected,
        watermark,
        conditions=parse_filter(opportunity_filter),
        subqueries=(lines,),
    )


def schedule_query(line_item_ids):
    """The revenue/quantity schedules of some opportunity line items.

    Schedules are one level below line items, so they are read with their
    own query instead of a nested subquery.

    :param line_item_ids: up to ``MAX_IDS_PER_QUERY`` Salesforce ids
    :raises SoqlError: for no ids, too many, or a value that is not an id
    """
    ids = tuple(dict.fromkeys(line_item_ids))
    if not ids:
        raise SoqlError("no line item ids")
    if len(ids) > MAX_IDS_PER_QUERY:
        raise SoqlError(
            f"{len(ids)} ids in one query; chunk them by {MAX_IDS_PER_QUERY}"
        )
    for record_id in ids:
        if not isinstance(record_id, str) or not re.fullmatch(
            r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id
        ):
            raise SoqlError(f"not a Salesforce id: {str(record_id)[:40]!r}")
    where = Condition("OpportunityLineItemId", "IN", ids).render()
    return (
        f"SELECT {', '.join(SCHEDULE_FIELDS)} FROM OpportunityLineItemSchedule"  # noqa: S608
        f" WHERE {where} ORDER BY OpportunityLineItemId, ScheduleDate, Id"
    )


def _unique_paths(paths):
    if isinstance(paths, str):
        raise SoqlError("fields must be a list of names, not one string")
    seen = {}
    for path in paths:
        seen.setdefault(validate_field_path(path).lower(), path)
    if not seen:
        raise SoqlError("no fields to select")
    return tuple(seen.values())


# ---------------------------------------------------------------- API usage

_USAGE_RE = re.compile(r"^(\d{1,12})/(\d{1,12})$")


def parse_limit_info(header):
    """Read ``api-usage=used/max`` from a ``Sforce-Limit-Info`` header value.

    Other parts (``api-bursts=1/750``, ``per-app-api-usage=...``) are ignored.

    :returns: ``(used, max)`` as ints; ``used`` may exceed ``max`` (bursts)
    :raises LimitInfoError: when the header is absent, has no ``api-usage``
        part, has two, or the part is not ``digits/digits`` with max > 0
    """
    if not isinstance(header, str) or not header.strip():
        raise LimitInfoError("no Sforce-Limit-Info header")
    found = []
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if key.strip().lower() == "api-usage":
            if not sep:
                raise LimitInfoError(f"api-usage without a value in {header[:80]!r}")
            found.append(value.strip())
    if not found:
        raise LimitInfoError(f"no api-usage in Sforce-Limit-Info {header[:80]!r}")
    if len(found) > 1:
        raise LimitInfoError(f"api-usage given twice in {header[:80]!r}")
    match = _USAGE_RE.match(found[0])
    if not match:
        raise LimitInfoError(f"api-usage is not used/max: {found[0][:40]!r}")
    used, maximum = int(match.group(1)), int(match.group(2))
    if maximum == 0:
        raise LimitInfoError("api-usage maximum is 0")
    return used, maximum


def should_throttle(used, maximum, reserve_fraction=0.1):
    """Whether to stop calling because only the reserve is left.

    The sync stops once the calls remaining (``maximum - used``) are at or
    below ``reserve_fraction`` of the daily maximum, leaving that share to
    the org's other integrations and users.

    :param used: calls used today (from ``parse_limit_info``)
    :param maximum: the org's daily allowance, > 0
    :param reserve_fraction: share to leave untouched, 0 <= f < 1; exact
        decimal arithmetic, so 0.1 of 15000 is 1500, not 1500.0000000001
    :raises ValueError: for negative usage, a maximum <= 0 or a fraction
        outside [0, 1)
    """
    for name, value in (("used", used), ("maximum", maximum)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
    if used < 0:
        raise ValueError("used cannot be negative")
    if maximum <= 0:
        raise ValueError("maximum must be positive")
    if isinstance(reserve_fraction, bool) or not isinstance(
        reserve_fraction, int | float | Decimal | Fraction
    ):
        raise ValueError("reserve_fraction must be a number")
    reserve = Fraction(str(reserve_fraction))
    if not 0 <= reserve < 1:
        raise ValueError("reserve_fraction must be at least 0 and below 1")
    return maximum - used <= maximum * reserve
