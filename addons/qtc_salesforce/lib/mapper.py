"""Salesforce records -> canonical objects, their validation, and change hashes.

The Odoo layer never reads a Salesforce payload directly: it gets frozen
dataclasses from here.

- ``CustomerAccount`` from an Account (or the ``Account`` of an opportunity);
- ``ContactPerson`` from a Contact;
- ``Engagement`` from a won Opportunity with its line items
  (``EngagementLine``) and their revenue/quantity schedules
  (``ScheduleEntry``).

Two kinds of failure are kept apart. A payload whose values cannot be read
(a quantity ``"ten"``, a date ``"31/03/2026"``, an id with a quote in it)
raises ``MappingError`` carrying every such problem. A payload that reads
fine but cannot become an order (no billing address, unknown currency,
unmapped product) is reported by ``validate_engagement``, again all problems
at once, so a finance user fixes the record in one pass instead of one
error per retry.

Both channels are accepted: REST query records (JSON numbers and booleans)
and Outbound Message records (every value a string, see
``outbound_message.SObject.as_record``). Numbers become ``Decimal`` from
their text, never through binary floating point.

``payload_hash`` gives a stable fingerprint of a record without its
``attributes`` and the fields that change on every save
(``SystemModstamp``...), so a re-delivery of the same content, including the
echo of our own write-back, is recognised and skipped.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from .soql import validate_identifier
from .timestamps import parse_date, parse_datetime

BILLING_KINDS = ("milestone", "fixed", "time")
# Picklist labels seen in orgs, compared lower-cased; extend per backend.
DEFAULT_BILLING_KIND_VALUES = {
    "milestone": "milestone",
    "milestones": "milestone",
    "fixed": "fixed",
    "fixed fee": "fixed",
    "fixed price": "fixed",
    "time": "time",
    "time & materials": "time",
    "time and materials": "time",
    "t&m": "time",
}
# Fields that change on every save without any business change.
VOLATILE_FIELDS = frozenset(
    {
        "SystemModstamp",
        "LastModifiedDate",
        "LastModifiedById",
        "LastViewedDate",
        "LastReferencedDate",
    }
)
PRODUCT_CODE_PATH = "PricebookEntry.Product2.ProductCode"
_SALESFORCE_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_COUNTRY_CODE_RE = re.compile(r"^[A-Z]{2}$")
_CURRENCY_CODE_RE = re.compile(r"^[A-Z]{3}$")


class MappingError(ValueError):
    """Values of a record that cannot be read; ``problems`` lists them all."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class MappingConfig:
    """Per-backend choices of the mapping.

    :ivar tax_id_field: Account field holding the VAT/tax id (custom in
        Salesforce, e.g. ``VAT_Number__c``); ``None`` when there is none
    :ivar billing_type_field: OpportunityLineItem field deciding the billing
        kind; ``None`` makes every line ``default_billing_kind``
    :ivar billing_kind_values: picklist value (lower case) -> billing kind
    :ivar default_billing_kind: kind of a line whose field is empty
    :ivar default_currency: the org currency, for orgs without multi-currency
        (where records carry no ``CurrencyIsoCode``)
    """

    tax_id_field: str | None = None
    billing_type_field: str | None = "Billing_Type__c"
    billing_kind_values: dict = field(
        default_factory=lambda: dict(DEFAULT_BILLING_KIND_VALUES)
    )
    default_billing_kind: str = "fixed"
    default_currency: str | None = None

    def __post_init__(self):
        for name in (self.tax_id_field, self.billing_type_field):
            if name is not None:
                validate_identifier(name)
        kinds = {self.default_billing_kind, *self.billing_kind_values.values()}
        unknown = sorted(kinds - set(BILLING_KINDS))
        if unknown:
            raise ValueError(f"unknown billing kinds {unknown}; use {BILLING_KINDS}")
        if self.default_currency is not None and not _CURRENCY_CODE_RE.match(
            self.default_currency
        ):
            raise ValueError(f"default_currency {self.default_currency!r} is not ISO")


DEFAULT_CONFIG = MappingConfig()


@dataclass(frozen=True)
class CustomerAccount:
    """A customer: who is billed, where, in which currency."""

    external_id: str
    name: str | None
    billing_street: str | None
    billing_city: str | None
    billing_zip: str | None
    billing_state_code: str | None
    billing_country_code: str | None
    phone: str | None
    website: str | None
    tax_id: str | None
    currency_code: str | None
    updated_at: object  # aware datetime (UTC) or None


@dataclass(frozen=True)
class ContactPerson:
    """A person at a customer."""

    external_id: str
    account_external_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    mobile: str | None
    title: str | None
    updated_at: object

    @property
    def name(self):
        """First and last name joined, whichever exist."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class ScheduleEntry:
    """One installment of a line item's quantity or revenue schedule."""

    external_id: str
    date: object  # datetime.date or None
    kind: str | None  # Salesforce Type: Quantity, Revenue or Both
    quantity: Decimal | None
    revenue: Decimal | None


@dataclass(frozen=True)
class EngagementLine:
    """One sold product of the engagement.

    :ivar billing_kind: ``milestone``, ``fixed`` or ``time``; ``None`` when
        the billing type value is not known (``billing_type_raw`` says what)
    :ivar discount_percent: Salesforce ``Discount`` (10 means 10 %)
    """

    external_id: str
    product_code: str | None
    description: str | None
    quantity: Decimal | None
    unit_price: Decimal | None
    discount_percent: Decimal | None
    billing_kind: str | None
    billing_type_raw: str | None
    schedules: tuple = ()


@dataclass(frozen=True)
class Engagement:
    """A won opportunity: the contract Odoo turns into an order and project.

    :ivar lines_complete: False when the line items were not selected or
        their subquery has more pages: the lines are then not all known
    """

    external_id: str
    account_external_id: str | None
    account: CustomerAccount | None
    name: str | None
    close_date: object
    currency_code: str | None
    stage: str | None
    amount: Decimal | None
    is_won: bool | None
    description: str | None
    lines: tuple
    lines_complete: bool
    updated_at: object


# ------------------------------------------------------------------ mapping


def map_account(record, config=DEFAULT_CONFIG):
    """Map an Account record to a ``CustomerAccount``.

    :raises MappingError: listing every unreadable value
    """
    reader = _Reader(record, "Account", "Account")
    account = _read_account(reader, config)
    reader.raise_problems()
    return account


def map_contact(record, config=DEFAULT_CONFIG):
    """Map a Contact record to a ``ContactPerson``.

    :raises MappingError: listing every unreadable value
    """
    del config  # same signature as the other mappers; nothing configurable yet
    reader = _Reader(record, "Contact", "Contact")
    contact = ContactPerson(
        external_id=reader.record_id("Id", required=True),
        account_external_id=reader.record_id("AccountId"),
        first_name=reader.text("FirstName"),
        last_name=reader.text("LastName"),
        email=reader.text("Email"),
        phone=reader.text("Phone"),
        mobile=reader.text("MobilePhone"),
        title=reader.text("Title"),
        updated_at=reader.updated_at(),
    )
    reader.raise_problems()
    return contact


def map_engagement(record, config=DEFAULT_CONFIG, schedules=()):
    """Map an Opportunity record (with account and line items) to an ``Engagement``.

    :param record: a REST record with ``Account`` and ``OpportunityLineItems``
        (as ``soql.opportunity_query`` selects them) or an Outbound Message
        record (no lines: ``lines_complete`` is then False)
    :param schedules: ``OpportunityLineItemSchedule`` records from
        ``soql.schedule_query``, for any lines; those of other opportunities
        are ignored. Schedules nested under a line
        (``OpportunityLineItemSchedules``) are read as well.
    :raises MappingError: listing every unreadable value of the opportunity,
        its account, lines and schedules
    """
    reader = _Reader(record, "Opportunity", "Opportunity")
    external_id = reader.record_id("Id", required=True)
    account = None
    account_record = reader.raw("Account")
    if account_record is not None:
        account = _read_account(
            reader.child(account_record, "Account", "Account"), config
        )
    schedules_by_line = _group_schedules(reader, schedules)
    lines, lines_complete = _read_lines(reader, config, schedules_by_line)
    currency = reader.currency("CurrencyIsoCode") or config.default_currency
    engagement = Engagement(
        external_id=external_id,
        account_external_id=reader.record_id("AccountId"),
        account=account,
        name=reader.text("Name"),
        close_date=reader.date("CloseDate"),
        currency_code=currency,
        stage=reader.text("StageName"),
        amount=reader.decimal("Amount"),
        is_won=reader.boolean("IsWon"),
        description=reader.text("Description", strip=False),
        lines=lines,
        lines_complete=lines_complete,
        updated_at=reader.updated_at(),
    )
    reader.raise_problems()
    return engagement


def _read_account(reader, config):
    tax_id = reader.text(config.tax_id_field) if config.tax_id_field else None
    return CustomerAccount(
        external_id=reader.record_id("Id", required=True),
        name=reader.text("Name"),
        billing_street=reader.text("BillingStreet", strip=False),
        billing_city=reader.text("BillingCity"),
        billing_zip=reader.text("BillingPostalCode"),
        billing_state_code=reader.text("BillingStateCode"),
        billing_country_code=reader.text("BillingCountryCode"),
        phone=reader.text("Phone"),
        website=reader.text("Website"),
        tax_id=tax_id,
        currency_code=reader.currency("CurrencyIsoCode") or config.default_currency,
        updated_at=reader.updated_at(),
    )


def _read_lines(reader, config, schedules_by_line):
    if "OpportunityLineItems" not in reader.record:
        return (), False
    result = reader.raw("OpportunityLineItems")
    if result is None:  # Salesforce sends null for a subquery without rows
        return (), True
    if not isinstance(result, dict) or not isinstance(result.get("records"), list):
        reader.problem("OpportunityLineItems", "not a query result")
        return (), False
    lines = []
    for position, line_record in enumerate(result["records"]):
        label = f"OpportunityLineItems[{position}]"
        line_reader = reader.child(line_record, "OpportunityLineItem", label)
        line_id = line_reader.record_id("Id", required=True)
        nested = line_reader.raw("OpportunityLineItemSchedules")
        entries = list(schedules_by_line.get(line_id, ()))
        if isinstance(nested, dict) and isinstance(nested.get("records"), list):
            for index, schedule in enumerate(nested["records"]):
                entries.append(
                    _read_schedule(
                        line_reader.child(
                            schedule,
                            "OpportunityLineItemSchedule",
                            f"{label}.OpportunityLineItemSchedules[{index}]",
                        )
                    )
                )
        raw_kind = None
        kind = config.default_billing_kind
        if config.billing_type_field:
            raw_kind = line_reader.text(config.billing_type_field)
            if raw_kind is not None:
                kind = config.billing_kind_values.get(raw_kind.strip().lower())
        lines.append(
            EngagementLine(
                external_id=line_id,
                product_code=line_reader.path_text(PRODUCT_CODE_PATH),
                description=line_reader.text("Description", strip=False),
                quantity=line_reader.decimal("Quantity"),
                unit_price=line_reader.decimal("UnitPrice"),
                discount_percent=line_reader.decimal("Discount"),
                billing_kind=kind,
                billing_type_raw=raw_kind,
                schedules=_unique_schedules(entries),
            )
        )
    complete = result.get("done") is not False
    return tuple(lines), complete


def _unique_schedules(entries):
    # The same schedule can come nested and from schedule_query: keep one.
    by_id = {}
    for entry in entries:
        by_id.setdefault(entry.external_id, entry)
    return tuple(sorted(by_id.values(), key=_schedule_order))


def _schedule_order(entry):
    # Undated entries last; the id breaks ties so the order is stable.
    return (entry.date is None, entry.date or date.min, entry.external_id or "")


def _group_schedules(reader, schedules):
    grouped = {}
    for index, schedule in enumerate(schedules or ()):
        schedule_reader = reader.child(
            schedule, "OpportunityLineItemSchedule", f"schedules[{index}]"
        )
        line_id = schedule_reader.record_id("OpportunityLineItemId", required=True)
        grouped.setdefault(line_id, []).append(_read_schedule(schedule_reader))
    return grouped


def _read_schedule(reader):
    return ScheduleEntry(
        external_id=reader.record_id("Id", required=True),
        date=reader.date("ScheduleDate"),
        kind=reader.text("Type"),
        quantity=reader.decimal("Quantity"),
        revenue=reader.decimal("Revenue"),
    )


# --------------------------------------------------------------- validation


def validate_engagement(
    engagement,
    known_currencies,
    mapped_products,
    requires_tax_id,
    config=DEFAULT_CONFIG,
):
    """Every reason this engagement cannot become an order, all at once.

    :param engagement: from ``map_engagement``
    :param known_currencies: ISO codes active in Odoo
    :param mapped_products: Salesforce product codes that map to an Odoo
        product
    :param requires_tax_id: whether the customer must have a tax id (e.g.
        B2B invoicing in the EU)
    :param config: the mapping configuration (names fields in messages)
    :returns: a list of problems, each starting with the Salesforce field it
        concerns; empty when the engagement can be applied
    """
    problems = []
    if not engagement.name:
        problems.append("Name: missing")
    problems.extend(_account_problems(engagement, requires_tax_id, config))
    currency = engagement.currency_code
    known = {code.upper() for code in known_currencies}
    if not currency:
        problems.append("CurrencyIsoCode: missing")
    elif currency.upper() not in known:
        problems.append(f"CurrencyIsoCode: {currency} is not an active currency")
    if engagement.close_date is None:
        problems.append("CloseDate: missing")
    if not engagement.lines_complete:
        problems.append(
            "OpportunityLineItems: not all line items were read (not selected, or "
            "more pages to fetch)"
        )
    elif not engagement.lines:
        problems.append("OpportunityLineItems: the opportunity has no line items")
    products = set(mapped_products)
    for position, line in enumerate(engagement.lines):
        problems.extend(_line_problems(position, line, products, config))
    return problems


def _account_problems(engagement, requires_tax_id, config):
    if not engagement.account_external_id:
        return ["AccountId: the opportunity has no account"]
    account = engagement.account
    if account is None:
        return ["Account: the account's fields were not read with the opportunity"]
    problems = []
    for field_name, value in (
        ("BillingStreet", account.billing_street),
        ("BillingCity", account.billing_city),
        ("BillingCountryCode", account.billing_country_code),
    ):
        if not value or not value.strip():
            problems.append(f"Account.{field_name}: missing (billing address)")
    country = account.billing_country_code
    if country and country.strip() and not _COUNTRY_CODE_RE.match(country):
        problems.append(
            f"Account.BillingCountryCode: {country!r} is not a two-letter ISO code"
        )
    if requires_tax_id and not account.tax_id:
        if config.tax_id_field:
            problems.append(
                f"Account.{config.tax_id_field}: tax id required but missing"
            )
        else:
            problems.append(
                "Account: a tax id is required but no tax id field is configured"
            )
    return problems


def _line_problems(position, line, products, config):
    label = f"OpportunityLineItems[{position}] ({line.external_id})"
    problems = []
    if not line.product_code:
        problems.append(f"{label}.{PRODUCT_CODE_PATH}: missing")
    elif line.product_code not in products:
        problems.append(
            f"{label}.{PRODUCT_CODE_PATH}: {line.product_code!r} is not mapped to a "
            "product"
        )
    if line.quantity is None:
        problems.append(f"{label}.Quantity: missing")
    elif line.quantity <= 0:
        problems.append(f"{label}.Quantity: must be positive, got {line.quantity}")
    if line.unit_price is None:
        problems.append(f"{label}.UnitPrice: missing")
    elif line.unit_price < 0:
        problems.append(
            f"{label}.UnitPrice: must not be negative, got {line.unit_price}"
        )
    discount = line.discount_percent
    if discount is not None and not 0 <= discount <= 100:
        problems.append(f"{label}.Discount: must be between 0 and 100, got {discount}")
    if line.billing_kind is None:
        problems.append(
            f"{label}.{config.billing_type_field}: {line.billing_type_raw!r} is not a "
            f"known billing type ({', '.join(sorted(config.billing_kind_values))})"
        )
    for index, entry in enumerate(line.schedules):
        where = f"{label}.OpportunityLineItemSchedules[{index}] ({entry.external_id})"
        if entry.date is None:
            problems.append(f"{where}.ScheduleDate: missing")
        if entry.quantity is None and entry.revenue is None:
            problems.append(f"{where}: neither Quantity nor Revenue")
    return problems


# ------------------------------------------------------------------ hashing


def payload_hash(record, ignore_fields=()):
    """A stable SHA-256 of a record's content.

    Dropped at every level: ``attributes`` (it holds the API version in its
    URL), ``nextRecordsUrl`` (a query locator changes with every query),
    ``VOLATILE_FIELDS`` and ``ignore_fields`` (pass the fields our write-back
    sets, so its echo hashes like the record before it). Key order does not
    matter; scalars are compared by text (``1500.0``, ``1500`` and
    ``"1500"`` are equal, as are ``true`` and ``"true"``), which also lets an
    Outbound Message record and a REST record with the same values match.

    :param record: a record dict (REST or ``SObject.as_record()``)
    :param ignore_fields: more field names to leave out
    :returns: 64 hex characters
    :raises TypeError: when ``record`` is not a dict or holds other types
    """
    if not isinstance(record, dict):
        raise TypeError(f"expected a record dict, got {type(record).__name__}")
    skip = VOLATILE_FIELDS | set(ignore_fields) | {"attributes", "nextRecordsUrl"}
    attributes = record.get("attributes")
    record_type = attributes.get("type") if isinstance(attributes, dict) else None
    canonical = {"type": record_type, "fields": _canonical(record, skip)}
    text = json.dumps(
        canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value, skip):
    if isinstance(value, dict):
        return {
            str(key): _canonical(item, skip)
            for key, item in value.items()
            if key not in skip
        }
    if isinstance(value, list | tuple):
        return [_canonical(item, skip) for item in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite():
            return str(number)
        # normalize() then plain notation: 1500.0 and 1500 give "1500".
        return format(number.normalize(), "f")
    raise TypeError(f"cannot hash a {type(value).__name__} value")


# ------------------------------------------------------------------ reading


class _Reader:
    """Reads typed values from one record and collects what it cannot read."""

    def __init__(self, record, sobject_type, label, problems=None):
        self.label = label
        self.problems = [] if problems is None else problems
        if not isinstance(record, dict):
            found = type(record).__name__
            self.problem(
                None, f"expected an sObject of type {sobject_type}, got {found}"
            )
            record = {}
        attributes = record.get("attributes")
        if isinstance(attributes, dict) and attributes.get("type") not in (
            None,
            sobject_type,
        ):
            found = attributes.get("type")
            self.problem(
                None, f"expected an sObject of type {sobject_type}, got {found}"
            )
        self.record = record

    def child(self, record, sobject_type, label):
        """A reader for a nested record, sharing this reader's problem list."""
        return _Reader(record, sobject_type, label, self.problems)

    def problem(self, field_name, message):
        where = f"{self.label}.{field_name}" if field_name else self.label
        self.problems.append(f"{where}: {message}")

    def raise_problems(self):
        if self.problems:
            raise MappingError(self.problems)

    def raw(self, field_name):
        return self.record.get(field_name)

    def text(self, field_name, strip=True):
        value = self.record.get(field_name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(field_name, f"expected text, got {type(value).__name__}")
            return None
        value = value.strip() if strip else value
        return value if value.strip() else None

    def path_text(self, path):
        value = self.record
        for segment in path.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(segment)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(path, f"expected text, got {type(value).__name__}")
            return None
        return value.strip() or None

    def record_id(self, field_name, required=False):
        value = self.record.get(field_name)
        if value is None or value == "":
            if required:
                self.problem(field_name, "missing")
            return None
        if not isinstance(value, str) or not _SALESFORCE_ID_RE.match(value):
            self.problem(field_name, f"{str(value)[:40]!r} is not a Salesforce id")
            return None
        return value

    def currency(self, field_name):
        value = self.text(field_name)
        if value is not None and not _CURRENCY_CODE_RE.match(value):
            self.problem(field_name, f"{value[:20]!r} is not a three-letter ISO code")
            return None
        return value

    def decimal(self, field_name):
        value = self.record.get(field_name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            self.problem(field_name, f"expected a number, got {value}")
            return None
        try:
            if isinstance(value, float):
                # repr is the shortest text that reads back as the same float:
                # 1500.5 stays 1500.5 instead of its binary expansion.
                number = Decimal(repr(value))
            elif isinstance(value, int | Decimal):
                number = Decimal(value)
            elif isinstance(value, str):
                number = Decimal(value.strip())
            else:
                raise InvalidOperation
        except InvalidOperation:
            self.problem(field_name, f"{str(value)[:40]!r} is not a number")
            return None
        if not number.is_finite():
            self.problem(field_name, f"{str(value)[:40]!r} is not a finite number")
            return None
        return number

    def date(self, field_name):
        value = self.record.get(field_name)
        if value is None or value == "":
            return None
        try:
            return parse_date(value)
        except ValueError:
            self.problem(field_name, f"{str(value)[:40]!r} is not a date (YYYY-MM-DD)")
            return None

    def datetime(self, field_name):
        value = self.record.get(field_name)
        if value is None or value == "":
            return None
        try:
            return parse_datetime(value)
        except ValueError:
            self.problem(field_name, f"{str(value)[:40]!r} is not a datetime")
            return None

    def boolean(self, field_name):
        value = self.record.get(field_name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.problem(field_name, f"{str(value)[:40]!r} is not true or false")
        return None

    def updated_at(self):
        # SystemModstamp also moves for system changes; LastModifiedDate is
        # the fallback for records (Outbound Messages) that only carry it.
        if self.record.get("SystemModstamp") in (None, ""):
            return self.datetime("LastModifiedDate")
        return self.datetime("SystemModstamp")
