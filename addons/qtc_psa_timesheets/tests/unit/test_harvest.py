"""Harvest v2 time entries and expenses mapped onto work items; pagination and
the updated_since watermark."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from qtc_psa_timesheets.lib import harvest
from qtc_psa_timesheets.lib import work_item as wi

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EMAILS = {1782959: "ada@example.com", 1795421: "grace@example.com"}


def load(name):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def entries_page():
    return load("harvest_time_entries.json")


@pytest.fixture
def expenses_page():
    return load("harvest_expenses.json")


def entry(**overrides):
    base = {
        "id": 1,
        "spent_date": "2026-03-02",
        "user": {"id": 1782959, "name": "Ada Lovelace"},
        "project": {"id": 10, "name": "P", "code": "P"},
        "task": {"id": 20, "name": "T"},
        "hours": 2.0,
        "rounded_hours": 2.25,
        "notes": "n",
        "is_closed": True,
        "is_billed": False,
        "is_running": False,
        "billable": True,
        "billable_rate": 100.0,
        "updated_at": "2026-03-03T09:00:00Z",
    }
    base.update(overrides)
    return base


# -- time entries ------------------------------------------------------------------


def test_time_entries_page(entries_page):
    result = harvest.map_time_entries(entries_page["time_entries"], EMAILS)
    assert [item["external_id"] for item in result.items] == [
        "harvest:time_entry:636709355",
        "harvest:time_entry:636708723",
        "harvest:time_entry:636708724",
    ]
    assert result.items[0] == {
        "external_id": "harvest:time_entry:636709355",
        "updated_at": "2026-03-03T09:15:02Z",
        "project_ref": "14307913",
        "employee_email": "ada@example.com",
        "date": "2026-03-02",
        "description": "Workshop preparation",
        "billable": True,
        "status": "approved",
        "approved_at": "2026-03-03T09:15:02Z",
        "kind": "time",
        "hours": "7.5",
        "task_ref": "8083365",
        "rate": "150.0",
    }
    # Non-billable, no rate, null notes.
    second = result.items[1]
    assert (second["billable"], second["description"], second["hours"]) == (
        False,
        "",
        "1.07",
    )
    assert "rate" not in second
    # Open entry: emitted as a withdrawal, no approved_at.
    third = result.items[2]
    assert third["status"] == "withdrawn"
    assert "approved_at" not in third
    assert third["employee_email"] == "grace@example.com"

    assert result.problems == (
        {
            "source": "time_entry",
            "source_id": 636708726,
            "field": "is_billed",
            "message": "already invoiced in Harvest; importing it would bill it twice",
        },
        {
            "source": "time_entry",
            "source_id": 636708727,
            "field": "user",
            "message": "Harvest user 9999999 (Contractor X) has no known email; "
            "refresh the users from /v2/users",
        },
    )
    assert result.skipped == (
        {
            "source": "time_entry",
            "source_id": 636708725,
            "field": None,
            "message": "timer still running",
        },
    )


def test_mapped_time_entries_validate(entries_page):
    result = harvest.map_time_entries(entries_page["time_entries"], EMAILS)
    results = wi.validate_batch(list(result.items), max_items=100)
    assert [r.status for r in results] == ["accepted"] * 3
    first = results[0].item
    assert first.hours == Decimal("7.5")
    assert first.rate == Decimal("150.0")
    assert wi.idempotency_key(first) == (
        "harvest:time_entry:636709355:2026-03-03T09:15:02Z"
    )


def test_rounded_hours_option():
    item, problem, skip = harvest.map_time_entry(
        entry(), EMAILS, use_rounded_hours=True
    )
    assert (problem, skip) == (None, None)
    assert item["hours"] == "2.25"
    item, _, _ = harvest.map_time_entry(entry(), EMAILS)
    assert item["hours"] == "2.0"


def test_unknown_user_on_open_entry_is_skipped_not_a_problem():
    item, problem, skip = harvest.map_time_entry(
        entry(is_closed=False, user={"id": 5, "name": "Temp"}), EMAILS
    )
    assert item is None and problem is None
    assert skip["message"].startswith("not approved, and Harvest user 5 (Temp)")


def test_zero_hours_is_skipped():
    _, problem, skip = harvest.map_time_entry(entry(hours=0.0), EMAILS)
    assert problem is None
    assert skip["message"] == "no hours tracked"


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ("junk", None, "the record is not an object"),
        (entry(id=None), "id", "missing or not an integer"),
        (entry(id="12"), "id", "missing or not an integer"),
        (entry(id=True), "id", "missing or not an integer"),
        (entry(updated_at=None), "updated_at", "missing"),
        (entry(project=None), "project", "missing project id"),
        (entry(user={"name": "x"}), "user", "missing user id"),
        (entry(hours=None), "hours", "missing"),
        (entry(hours="lots"), "hours", "is not a decimal number: 'lots'"),
        (entry(billable_rate=True), "billable_rate", "must be a number, not a boolean"),
    ],
)
def test_malformed_entries_are_problems(record, field, message):
    item, problem, skip = harvest.map_time_entry(record, EMAILS)
    assert item is None and skip is None
    assert (problem["field"], problem["message"]) == (field, message)
    assert problem["source"] == "time_entry"


def test_map_time_entries_needs_a_list():
    with pytest.raises(ValueError, match="expected a list of records, not dict"):
        harvest.map_time_entries({"time_entries": []}, EMAILS)


# -- expenses ----------------------------------------------------------------------


def test_expenses_page(expenses_page):
    result = harvest.map_expenses(
        expenses_page["expenses"],
        EMAILS,
        "eur",
        project_currencies={14308069: "USD"},
    )
    assert result.items == (
        {
            "external_id": "harvest:expense:15296442",
            "updated_at": "2026-03-03T09:20:00Z",
            "project_ref": "14307913",
            "employee_email": "ada@example.com",
            "date": "2026-03-02",
            "description": "Travel: Train to client site",
            "billable": True,
            "status": "approved",
            "approved_at": "2026-03-03T09:20:00Z",
            "kind": "expense",
            "amount": "84.2",
            "currency": "eur",
        },
        {
            "external_id": "harvest:expense:15296443",
            "updated_at": "2026-03-03T09:21:00Z",
            "project_ref": "14308069",
            "employee_email": "ada@example.com",
            "date": "2026-03-02",
            "description": "Mileage",
            "billable": True,
            "status": "approved",
            "approved_at": "2026-03-03T09:21:00Z",
            "kind": "expense",
            "amount": "13.68",
            "currency": "USD",
        },
    )
    assert result.problems == ()
    assert [skip["message"] for skip in result.skipped] == ["zero amount"]
    validated = [wi.validate_work_item(item) for item in result.items]
    assert [(v.amount, v.currency) for v in validated] == [
        (Decimal("84.2"), "EUR"),
        (Decimal("13.68"), "USD"),
    ]


def test_expense_without_known_currency_is_a_problem(expenses_page):
    result = harvest.map_expenses(expenses_page["expenses"][:1], EMAILS)
    assert result.items == ()
    assert result.problems == (
        {
            "source": "expense",
            "source_id": 15296442,
            "field": "currency",
            "message": "no currency known for Harvest project 14307913",
        },
    )


def test_billed_expense_is_a_problem(expenses_page):
    billed = dict(expenses_page["expenses"][0], is_billed=True)
    item, problem, _ = harvest.map_expense(billed, EMAILS, "EUR")
    assert item is None
    assert problem["field"] == "is_billed"


def test_user_email_map():
    users = [
        {"id": 1, "email": " Ada@Example.com "},
        {"id": 2, "email": None},
        {"id": "3", "email": "x@example.com"},
        "junk",
        {"id": 4, "email": "grace@example.com"},
    ]
    assert harvest.user_email_map(users) == {
        1: "ada@example.com",
        4: "grace@example.com",
    }


# -- pagination --------------------------------------------------------------------


def test_next_page_prefers_links_next(entries_page):
    url = harvest.next_page_url(entries_page, "https://api.harvestapp.com/v2/x")
    assert url == entries_page["links"]["next"]


def test_next_page_from_next_page_number():
    page = {"next_page": 3, "links": {"next": None}}
    url = harvest.next_page_url(
        page, "https://api.harvestapp.com/v2/time_entries?page=2&per_page=100"
    )
    parts = urlsplit(url)
    assert parts.path == "/v2/time_entries"
    assert parse_qs(parts.query) == {"per_page": ["100"], "page": ["3"]}


def test_next_page_none_on_last_page(expenses_page):
    assert harvest.next_page_url(expenses_page) is None
    assert harvest.next_page_url({"next_page": None}) is None


def test_next_page_errors():
    with pytest.raises(ValueError, match="needs the current URL"):
        harvest.next_page_url({"next_page": 2})
    with pytest.raises(ValueError, match="not a page number"):
        harvest.next_page_url({"next_page": "2"}, "https://x/v2/y")
    with pytest.raises(ValueError, match="must be a JSON object"):
        harvest.next_page_url([])


def test_iter_pages_follows_links_and_reports_next_url():
    pages = {
        "u1": {"time_entries": [1], "links": {"next": "u2"}},
        "u2": {"time_entries": [2], "links": {"next": "u3"}},
        "u3": {"time_entries": [3], "links": {"next": None}, "next_page": None},
    }
    fetched = []

    def fetch(url):
        fetched.append(url)
        return pages[url]

    walked = [(page.url, page.next_url) for page in harvest.iter_pages(fetch, "u1")]
    assert walked == [("u1", "u2"), ("u2", "u3"), ("u3", None)]
    assert fetched == ["u1", "u2", "u3"]


def test_iter_pages_stops_on_a_loop_and_on_max_pages():
    loop = {"a": {"links": {"next": "b"}}, "b": {"links": {"next": "a"}}}
    with pytest.raises(ValueError, match="pagination loop: a was already fetched"):
        list(harvest.iter_pages(loop.__getitem__, "a"))
    chain = {str(n): {"links": {"next": str(n + 1)}} for n in range(10)}
    with pytest.raises(ValueError, match="more than 3 pages"):
        list(harvest.iter_pages(chain.__getitem__, "0", max_pages=3))


def test_list_params():
    assert harvest.list_params() == {}
    since = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert harvest.list_params(since, per_page=2000) == {
        "updated_since": "2026-03-01T11:55:00Z",
        "per_page": "2000",
    }
    assert harvest.list_params(since, overlap=timedelta(0)) == {
        "updated_since": "2026-03-01T12:00:00Z"
    }


# -- watermark ---------------------------------------------------------------------

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STARTED = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def test_watermark_advances_only_when_the_listing_is_finished(entries_page):
    tracker = harvest.WatermarkTracker(previous=T0, started_at=STARTED)
    tracker.page_done(entries_page["time_entries"])
    assert tracker.value == T0  # page 2 may hold older updates: not yet
    tracker.page_done([{"updated_at": "2026-03-02T00:00:00Z"}])
    assert tracker.finish() == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert tracker.value == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert tracker.pages == 2
    with pytest.raises(RuntimeError):
        tracker.page_done([])


def test_interrupted_listing_keeps_the_previous_watermark(entries_page):
    tracker = harvest.WatermarkTracker(previous=T0, started_at=STARTED)
    tracker.page_done(entries_page["time_entries"])
    # ... the worker dies here: finish() is never called.
    assert tracker.value == T0


def test_watermark_never_passes_the_listing_start():
    tracker = harvest.WatermarkTracker(previous=T0, started_at=STARTED)
    tracker.page_done([{"updated_at": "2026-03-05T12:00:07Z"}])  # Harvest clock ahead
    assert tracker.finish() == STARTED


def test_watermark_never_goes_back_and_ignores_bad_records():
    tracker = harvest.WatermarkTracker(previous=T0, started_at=STARTED)
    tracker.page_done(
        [{"updated_at": "2026-02-01T00:00:00Z"}, {"updated_at": "garbage"}, {}, "x"]
    )
    assert tracker.finish() == T0
    empty = harvest.WatermarkTracker(previous=None, started_at=STARTED)
    assert empty.finish() is None
