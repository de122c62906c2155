"""Harvest API v2 time entries and expenses, mapped onto push-API work items.

Harvest does not push; we poll ``GET /v2/time_entries`` and ``GET /v2/expenses``
with ``updated_since`` and turn each record into the same work-item dict a PSA
would push (see ``work_item.py``), so one validation and one apply path serve
both. This module is pure: the Odoo layer does the HTTP and hands the decoded
pages in.

What Harvest says, and how we read it (Harvest API v2 reference, "The time entry
object" and "The expense object"):

- Approval: ``is_closed`` is "whether the time entry has been approved via
  Timesheet Approval" (for expenses: approved, or closed for another reason).
  Harvest v2 has no ``approval_status`` and no approval timestamp or approver on
  these objects, so a closed record becomes ``status: approved`` with
  ``approved_at`` set to its ``updated_at`` (approving a timesheet closes, and
  therefore updates, its entries), and ``approver`` is left out.
- An open record becomes ``status: withdrawn``. Harvest has no "unapproved"
  event: a reopened entry simply stops being closed. Emitting open records as
  withdrawn lets Odoo remove what it imported before the reopening, while a record
  Odoo never saw is a no-op (``billing_rules.correction_action``).
- ``is_billed``: Harvest itself invoiced the record. Importing it would bill the
  customer twice, so it is a problem for a person, never an item.
- ``is_locked`` says why a record cannot be edited (approved, invoiced, archived
  project); it adds nothing the two flags above do not already say.
- Users are ids; emails come from ``GET /v2/users`` (:func:`user_email_map`). An
  approved record of a user without a known email is a problem, not a guess.
- Expenses carry no currency (it is the client's); the caller passes the account
  currency and, optionally, one per project.

External ids are namespaced (``harvest:time_entry:<id>``, ``harvest:expense:<id>``)
because Harvest numbers each resource separately.

Pagination follows ``links.next`` (cursor based), falling back to ``next_page``.
The ``updated_since`` watermark (:class:`WatermarkTracker`) only advances once a
whole listing has been processed: Harvest sorts time entries by ``spent_date``,
not ``updated_at``, so a later page can hold a record updated before the newest
one of an earlier page, and advancing page by page could skip it after a crash.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import work_item as wi

SOURCE_TIME_ENTRY = "time_entry"
SOURCE_EXPENSE = "expense"
# Re-read this much before the watermark: clocks differ, and a record updated
# while a listing ran may carry a timestamp just below the watermark. The
# idempotency key makes the re-read records no-ops.
DEFAULT_OVERLAP = timedelta(minutes=5)
DEFAULT_MAX_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class MapResult:
    """The outcome of mapping a list of Harvest records.

    :param items: work-item dicts, ready for ``work_item.validate_batch``
    :param problems: records a person must look at, each
        ``{"source", "source_id", "field", "message"}``
    :param skipped: records left out on purpose (running timer, nothing to bill),
        same shape as problems; worth a log line, not an exception
    """

    items: tuple = ()
    problems: tuple = ()
    skipped: tuple = ()


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page: its URL, decoded body, and the URL of the next one."""

    url: str
    data: dict
    next_url: str | None


class _Skip(Exception):
    """A record is left out on purpose (internal signal of the mappers)."""


class _Problem(Exception):
    """A record cannot be mapped (internal signal of the mappers)."""

    def __init__(self, field_name, message):
        super().__init__(message)
        self.field_name = field_name


def external_id_for(source, harvest_id):
    """Return the work-item external id of a Harvest record.

    :param source: ``time_entry`` or ``expense``
    :param harvest_id: the record's Harvest id
    :returns: e.g. ``harvest:time_entry:636709355``
    """
    return f"harvest:{source}:{harvest_id}"


def user_email_map(users):
    """Build the ``user id -> email`` map from ``GET /v2/users`` records.

    :param users: the ``users`` array of one or more pages
    :returns: ``{id: lower-cased email}``; users without an email are left out
    """
    emails = {}
    for user in users:
        if not isinstance(user, dict):
            continue
        user_id, email = user.get("id"), user.get("email")
        if _is_id(user_id) and isinstance(email, str) and email.strip():
            emails[user_id] = email.strip().lower()
    return emails


def map_time_entry(entry, user_emails, *, use_rounded_hours=False):
    """Map one Harvest time entry onto a work-item dict.

    :param entry: a ``/v2/time_entries`` record
    :param user_emails: ``{harvest user id: email}`` (see :func:`user_email_map`)
    :param use_rounded_hours: bill ``rounded_hours`` (Harvest's invoice rounding
        setting) instead of ``hours``
    :returns: ``(item, None, None)``, ``(None, problem, None)`` or
        ``(None, None, skip)``; exactly one is set
    """
    return _map_one(
        SOURCE_TIME_ENTRY,
        entry,
        _time_entry_item,
        user_emails,
        use_rounded_hours=use_rounded_hours,
    )


def map_expense(expense, user_emails, currency=None, *, project_currencies=None):
    """Map one Harvest expense onto a work-item dict.

    :param expense: a ``/v2/expenses`` record
    :param user_emails: ``{harvest user id: email}``
    :param currency: the currency of expenses whose project is not in
        ``project_currencies`` (the Harvest account's currency)
    :param project_currencies: ``{harvest project id: currency code}``
    :returns: ``(item, None, None)``, ``(None, problem, None)`` or
        ``(None, None, skip)``; exactly one is set
    """
    return _map_one(
        SOURCE_EXPENSE,
        expense,
        _expense_item,
        user_emails,
        currency=currency,
        project_currencies=project_currencies or {},
    )


def map_time_entries(entries, user_emails, *, use_rounded_hours=False):
    """Map a list of time entries (one page's ``time_entries``).

    :param entries: ``/v2/time_entries`` records
    :param user_emails: ``{harvest user id: email}``
    :param use_rounded_hours: see :func:`map_time_entry`
    :returns: a :class:`MapResult`
    """
    return _map_all(
        entries,
        lambda entry: map_time_entry(
            entry, user_emails, use_rounded_hours=use_rounded_hours
        ),
    )


def map_expenses(expenses, user_emails, currency=None, *, project_currencies=None):
    """Map a list of expenses (one page's ``expenses``).

    :param expenses: ``/v2/expenses`` records
    :param user_emails: ``{harvest user id: email}``
    :param currency: see :func:`map_expense`
    :param project_currencies: see :func:`map_expense`
    :returns: a :class:`MapResult`
    """
    return _map_all(
        expenses,
        lambda expense: map_expense(
            expense, user_emails, currency, project_currencies=project_currencies
        ),
    )


def _map_all(records, map_one):
    if not isinstance(records, list):
        raise ValueError(f"expected a list of records, not {type(records).__name__}")
    items, problems, skipped = [], [], []
    for record in records:
        item, problem, skip = map_one(record)
        if item is not None:
            items.append(item)
        elif problem is not None:
            problems.append(problem)
        else:
            skipped.append(skip)
    return MapResult(tuple(items), tuple(problems), tuple(skipped))


def _map_one(source, record, build, user_emails, **options):
    record_id = record.get("id") if isinstance(record, dict) else None
    try:
        if not isinstance(record, dict):
            raise _Problem(None, "the record is not an object")
        if not _is_id(record_id):
            raise _Problem("id", "missing or not an integer")
        item = build(record, user_emails, **options)
    except _Problem as problem:
        return None, _report(source, record_id, problem.field_name, str(problem)), None
    except _Skip as skip:
        return None, None, _report(source, record_id, None, str(skip))
    return item, None, None


def _report(source, source_id, field_name, message):
    return {
        "source": source,
        "source_id": source_id,
        "field": field_name,
        "message": message,
    }


def _common_fields(source, record, user_emails):
    """The fields time entries and expenses share, checked the same way."""
    closed = record.get("is_closed") is True
    if record.get("is_billed") is True:
        raise _Problem(
            "is_billed",
            "already invoiced in Harvest; importing it would bill it twice",
        )
    updated_at = record.get("updated_at")
    if not isinstance(updated_at, str) or not updated_at:
        raise _Problem("updated_at", "missing")
    project = record.get("project")
    if not isinstance(project, dict) or not _is_id(project.get("id")):
        raise _Problem("project", "missing project id")
    user = record.get("user")
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        raise _Problem("user", "missing user id")
    email = user_emails.get(user["id"])
    if email is None:
        message = (
            f"Harvest user {user['id']} ({user.get('name') or 'no name'}) has no "
            "known email; refresh the users from /v2/users"
        )
        if not closed:
            # Never imported (it could not have been without an email), and not
            # approved: nothing to bill and nothing to remove.
            raise _Skip(f"not approved, and {message}")
        raise _Problem("user", message)
    item = {
        "external_id": external_id_for(source, record["id"]),
        "updated_at": updated_at,
        "project_ref": str(project["id"]),
        "employee_email": email,
        "date": record.get("spent_date"),
        "description": record.get("notes") or "",
        "billable": record.get("billable") is not False,
        "status": wi.STATUS_APPROVED if closed else wi.STATUS_WITHDRAWN,
    }
    if closed:
        item["approved_at"] = updated_at
    return item


def _time_entry_item(entry, user_emails, *, use_rounded_hours):
    if entry.get("is_running") is True:
        raise _Skip("timer still running")
    hours_field = "rounded_hours" if use_rounded_hours else "hours"
    hours = _decimal_field(entry, hours_field)
    if hours is None:
        raise _Problem(hours_field, "missing")
    if hours == 0:
        raise _Skip("no hours tracked")
    item = _common_fields(SOURCE_TIME_ENTRY, entry, user_emails)
    item["kind"] = wi.KIND_TIME
    item["hours"] = str(hours)
    task = entry.get("task")
    if isinstance(task, dict) and _is_id(task.get("id")):
        item["task_ref"] = str(task["id"])
    rate = _decimal_field(entry, "billable_rate")
    if rate is not None:
        item["rate"] = str(rate)
    return item


def _expense_item(expense, user_emails, *, currency, project_currencies):
    amount = _decimal_field(expense, "total_cost")
    if amount is None:
        raise _Problem("total_cost", "missing")
    if amount == 0:
        raise _Skip("zero amount")
    item = _common_fields(SOURCE_EXPENSE, expense, user_emails)
    project_id = expense["project"]["id"]
    expense_currency = project_currencies.get(project_id, currency)
    if not expense_currency:
        raise _Problem(
            "currency", f"no currency known for Harvest project {project_id}"
        )
    item["kind"] = wi.KIND_EXPENSE
    item["amount"] = str(amount)
    item["currency"] = expense_currency
    category = expense.get("expense_category")
    category_name = category.get("name") if isinstance(category, dict) else None
    notes = expense.get("notes") or ""
    if category_name:
        item["description"] = f"{category_name}: {notes}" if notes else category_name
    return item


def _decimal_field(record, name):
    value = record.get(name)
    if value is None:
        return None
    try:
        return wi.parse_decimal(value)
    except ValueError as error:
        raise _Problem(name, str(error)) from None


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# -- pagination --------------------------------------------------------------------


def next_page_url(page, current_url=None):
    """Return the URL of the page after ``page``, or ``None`` on the last page.

    ``links.next`` is used when present (Harvest recommends it; it carries the
    cursor). Without it, ``next_page`` is set as the ``page`` parameter of
    ``current_url``.

    :param page: a decoded list response
    :param current_url: the URL ``page`` was fetched from (for ``next_page``)
    :returns: an absolute URL or ``None``
    :raises ValueError: if ``page`` is not an object, or only ``next_page`` is
        given and ``current_url`` is missing
    """
    if not isinstance(page, dict):
        raise ValueError("a page must be a JSON object")
    links = page.get("links")
    if isinstance(links, dict):
        next_link = links.get("next")
        if isinstance(next_link, str) and next_link:
            return next_link
    next_number = page.get("next_page")
    if next_number is None:
        return None
    if not _is_id(next_number):
        raise ValueError(f"next_page is not a page number: {next_number!r}")
    if not current_url:
        raise ValueError("next_page without links.next needs the current URL")
    parts = urlsplit(current_url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("page", "cursor")
    ]
    query.append(("page", str(next_number)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def iter_pages(fetch, first_url, *, max_pages=DEFAULT_MAX_PAGES):
    """Walk a paginated listing, one :class:`Page` at a time.

    The caller can store ``page.next_url`` after processing each page to resume an
    interrupted listing where it stopped.

    :param fetch: ``callable(url) -> decoded JSON``; does the HTTP (and raises on
        HTTP errors)
    :param first_url: the URL of the first page (or of the page to resume from)
    :param max_pages: a safety stop
    :returns: an iterator of :class:`Page`
    :raises ValueError: if a URL comes back twice (a loop) or ``max_pages`` is hit
    """
    url, seen = first_url, set()
    while url:
        if url in seen:
            raise ValueError(f"pagination loop: {url} was already fetched")
        if len(seen) >= max_pages:
            raise ValueError(f"more than {max_pages} pages; stopping")
        seen.add(url)
        data = fetch(url)
        next_url = next_page_url(data, url)
        yield Page(url, data, next_url)
        url = next_url


def list_params(updated_since=None, *, per_page=None, overlap=DEFAULT_OVERLAP):
    """Return the query parameters of a listing that resumes from a watermark.

    :param updated_since: the stored watermark (aware ``datetime``) or ``None`` for
        a full listing
    :param per_page: records per page (Harvest's maximum is 2000), or ``None``
    :param overlap: how far before the watermark to start (see module docstring)
    :returns: a ``dict`` for the query string
    """
    params = {}
    if updated_since is not None:
        params["updated_since"] = wi.format_datetime(updated_since - overlap)
    if per_page is not None:
        params["per_page"] = str(per_page)
    return params


@dataclass
class WatermarkTracker:
    """Track the ``updated_since`` watermark across one listing.

    Call :meth:`page_done` after each page is fully processed (its items stored),
    and :meth:`finish` once the listing is exhausted; only then does ``value``
    move. An interrupted listing leaves the previous watermark in place (resume it
    from the stored ``next_url``, or start again: re-read records are no-ops).

    The new watermark is the newest ``updated_at`` seen, but never later than
    ``started_at`` (when the listing began): a record updated while the listing
    ran may have been read in its older state, and must be read again next time.

    :param previous: the stored watermark, or ``None``
    :param started_at: when this listing began (aware ``datetime``)
    """

    previous: object
    started_at: object
    newest_seen: object = None
    finished: bool = False
    pages: int = field(default=0)

    @property
    def value(self):
        """The watermark to store: the new one after :meth:`finish`, else the
        previous one."""
        if not self.finished or self.newest_seen is None:
            return self.previous
        candidate = min(self.newest_seen, self.started_at)
        if self.previous is not None and candidate < self.previous:
            return self.previous
        return candidate

    def page_done(self, records):
        """Record that every record of one page has been processed.

        :param records: the page's records; those without a readable
            ``updated_at`` are ignored here (the mapper reports them)
        :raises RuntimeError: if the listing was already finished
        """
        if self.finished:
            raise RuntimeError("the listing is finished; start a new tracker")
        for record in records:
            if not isinstance(record, dict):
                continue
            try:
                updated_at = wi.parse_datetime(record.get("updated_at"))
            except ValueError:
                continue
            if self.newest_seen is None or updated_at > self.newest_seen:
                self.newest_seen = updated_at
        self.pages += 1

    def finish(self):
        """Mark the listing as fully processed and return the new watermark.

        :returns: the value to store (see :attr:`value`)
        """
        self.finished = True
        return self.value
