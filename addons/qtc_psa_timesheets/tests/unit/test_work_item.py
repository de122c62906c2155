"""Validation and normalisation of pushed work items, one at a time and in batches."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from qtc_psa_timesheets.lib import work_item as wi


def time_item(**overrides):
    data = {
        "external_id": "TE-1001",
        "version": 3,
        "kind": "time",
        "project_ref": "PRJ-42",
        "task_ref": "design",
        "employee_email": "Ada@Example.COM",
        "date": "2026-03-02",
        "hours": "7.50",
        "description": "Workshop preparation",
        "approved_at": "2026-03-03T10:15:00+01:00",
        "approver": "grace@example.com",
        "rate": "150.00",
        "status": "approved",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


def expense_item(**overrides):
    data = {
        "external_id": "EX-77",
        "updated_at": "2026-03-03T10:00:00Z",
        "kind": "expense",
        "project_ref": "PRJ-42",
        "employee_email": "ada@example.com",
        "date": "2026-03-02",
        "amount": 84.2,
        "currency": "eur",
        "approved_at": "2026-03-03T10:00:00Z",
        "status": "approved",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


def milestone_item(**overrides):
    data = {
        "external_id": "MS-5",
        "version": 0,
        "kind": "milestone",
        "project_ref": "PRJ-42",
        "milestone_ref": "phase-1",
        "date": "2026-03-31",
        "approved_at": "2026-03-31T17:00:00Z",
        "status": "approved",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


def problems_of(data):
    with pytest.raises(wi.WorkItemError) as caught:
        wi.validate_work_item(data)
    return {(problem["field"], problem["message"]) for problem in caught.value.problems}


# -- happy paths -------------------------------------------------------------------


def test_time_item_is_normalised():
    item = wi.validate_work_item(time_item())
    assert item == wi.WorkItem(
        external_id="TE-1001",
        kind="time",
        project_ref="PRJ-42",
        date=date(2026, 3, 2),
        status="approved",
        version=3,
        updated_at=None,
        task_ref="design",
        employee_email="ada@example.com",
        hours=Decimal("7.50"),
        description="Workshop preparation",
        billable=True,
        approved_at=datetime(2026, 3, 3, 9, 15, tzinfo=UTC),
        approver="grace@example.com",
        rate=Decimal("150.00"),
    )
    assert item.approved_at.tzinfo is UTC


def test_expense_float_amount_is_exact_and_currency_upper():
    item = wi.validate_work_item(expense_item())
    assert item.amount == Decimal("84.2")
    assert str(item.amount) == "84.2"  # not 84.2000000000000028421709...
    assert item.currency == "EUR"
    assert item.hours is None
    assert item.updated_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_milestone_without_employee_is_fine():
    item = wi.validate_work_item(milestone_item())
    assert item.milestone_ref == "phase-1"
    assert item.employee_email is None
    assert item.version == 0


def test_defaults_billable_true_description_empty():
    item = wi.validate_work_item(time_item(description=..., billable=...))
    assert item.billable is True
    assert item.description == ""


def test_nulls_of_optional_fields_mean_absent():
    item = wi.validate_work_item(
        time_item(task_ref=None, rate=None, approver=None, description=None)
    )
    assert (item.task_ref, item.rate, item.approver, item.description) == (
        None,
        None,
        None,
        "",
    )


def test_withdrawn_needs_no_approved_at():
    item = wi.validate_work_item(time_item(status="withdrawn", approved_at=...))
    assert item.status == "withdrawn"
    assert item.approved_at is None


def test_strings_are_stripped():
    item = wi.validate_work_item(time_item(project_ref="  PRJ-42 ", external_id=" A "))
    assert (item.project_ref, item.external_id) == ("PRJ-42", "A")


def test_as_dict_round_trips():
    for data in (time_item(), expense_item(), milestone_item()):
        item = wi.validate_work_item(data)
        payload = item.as_dict()
        assert wi.validate_work_item(payload) == item
    assert wi.validate_work_item(time_item()).as_dict()["approved_at"] == (
        "2026-03-03T09:15:00Z"
    )


def test_work_item_is_frozen():
    item = wi.validate_work_item(time_item())
    with pytest.raises(AttributeError):
        item.hours = Decimal(1)


# -- boundaries --------------------------------------------------------------------


@pytest.mark.parametrize("hours", ["24", 24, "0.01", 0.25, "23.999999"])
def test_hours_inside_bounds(hours):
    assert wi.validate_work_item(time_item(hours=hours)).hours == Decimal(str(hours))


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("0", "must be > 0"),
        (0, "must be > 0"),
        ("24.01", "must be <= 24"),
        (25, "must be <= 24"),
        ("-1", "must be > 0"),
        ("1.0000001", "must have at most 6 decimal places"),
        ("7,5", "is not a decimal number: '7,5'"),
        ("1e3", "is not a decimal number: '1e3'"),
        (True, "must be a number, not a boolean"),
        (float("nan"), "must be a finite number"),
        (float("inf"), "must be a finite number"),
        ([7], "must be a number, not an array"),
    ],
)
def test_hours_out_of_bounds_or_malformed(hours, message):
    assert problems_of(time_item(hours=hours)) == {("hours", message)}


def test_external_id_length_limit():
    assert wi.validate_work_item(time_item(external_id="x" * 128)).external_id == (
        "x" * 128
    )
    assert problems_of(time_item(external_id="x" * 129)) == {
        ("external_id", "must be at most 128 characters")
    }


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (-1, "must be >= 0"),
        ("3", "must be an integer, not a string"),
        (3.0, "must be an integer, not a number"),
        (True, "must be an integer, not a boolean"),
    ],
)
def test_bad_versions(version, message):
    assert problems_of(time_item(version=version)) == {("version", message)}


@pytest.mark.parametrize(
    "email", ["ada", "ada@", "@example.com", "ada@example", "a da@example.com", 42]
)
def test_bad_emails(email):
    problems = problems_of(time_item(employee_email=email))
    assert [field for field, _message in problems] == ["employee_email"]


def test_email_too_long():
    email = "a" * 250 + "@x.io"
    assert problems_of(time_item(employee_email=email)) == {
        ("employee_email", "must be at most 254 characters")
    }


@pytest.mark.parametrize("value", ["2026-3-2", "02/03/2026", "20260302", 20260302])
def test_bad_date_shapes(value):
    assert problems_of(time_item(date=value)) == {
        ("date", "must be a date as YYYY-MM-DD")
    }


def test_impossible_date():
    assert problems_of(time_item(date="2026-02-30")) == {
        ("date", "is not a real date: 2026-02-30")
    }


@pytest.mark.parametrize(
    "value",
    ["2026-03-03", "2026-03-03T10:00:00", "yesterday", "2026-03-03 10:00:00Z", 1],
)
def test_datetimes_need_a_time_and_an_offset(value):
    problems = problems_of(time_item(approved_at=value))
    assert problems == {
        (
            "approved_at",
            "must be an ISO 8601 datetime with an offset, e.g. 2026-03-01T09:00:00Z",
        )
    }


def test_offset_without_colon_and_fraction_are_read():
    item = wi.validate_work_item(time_item(approved_at="2026-03-03T10:15:00.5+0100"))
    assert item.approved_at == datetime(2026, 3, 3, 9, 15, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize("currency", ["EURO", "E1R", "", 978])
def test_bad_currency(currency):
    assert problems_of(expense_item(currency=currency)) == {
        ("currency", "must be a 3-letter ISO 4217 code")
    }


def test_rate_may_be_zero_but_not_negative():
    assert wi.validate_work_item(time_item(rate=0)).rate == Decimal(0)
    assert problems_of(time_item(rate="-0.01")) == {("rate", "must be >= 0")}


def test_expense_amount_must_be_positive():
    assert problems_of(expense_item(amount=0)) == {("amount", "must be > 0")}


def test_billable_must_be_a_boolean():
    assert problems_of(time_item(billable="yes")) == {
        ("billable", "must be true or false, not a string")
    }


def test_empty_required_string():
    assert problems_of(time_item(project_ref="   ")) == {
        ("project_ref", "must not be empty")
    }


# -- structural rules, all problems at once ----------------------------------------


def test_not_an_object():
    with pytest.raises(wi.WorkItemError) as caught:
        wi.validate_work_item(["TE-1"])
    assert caught.value.problems == (
        {"field": None, "message": "must be an object, not an array"},
    )


def test_empty_object_lists_every_missing_field():
    assert problems_of({}) == {
        ("external_id", "is required"),
        ("kind", "is required"),
        ("project_ref", "is required"),
        ("date", "is required"),
        ("status", "is required"),
        (None, "one of version or updated_at is required"),
    }


def test_all_problems_are_reported_together():
    data = time_item(
        hours="30",
        employee_email="nope",
        currency="EUR",
        status="approved",
        approved_at=...,
        colour="blue",
    )
    assert problems_of(data) == {
        ("colour", "unknown field"),
        ("hours", "must be <= 24"),
        ("employee_email", "is not an email address"),
        ("currency", "is not allowed on a time item"),
        ("approved_at", "is required when status is approved"),
    }
    with pytest.raises(wi.WorkItemError, match="invalid work item: colour: unknown"):
        wi.validate_work_item(data)


def test_version_or_updated_at_required():
    data = time_item(version=...)
    assert problems_of(data) == {(None, "one of version or updated_at is required")}
    data = time_item(version=None, updated_at=None)
    assert problems_of(data) == {(None, "one of version or updated_at is required")}


@pytest.mark.parametrize(
    ("factory", "missing", "message"),
    [
        (time_item, "hours", "is required for a time item"),
        (time_item, "employee_email", "is required for a time item"),
        (expense_item, "amount", "is required for a expense item"),
        (expense_item, "currency", "is required for a expense item"),
        (expense_item, "employee_email", "is required for a expense item"),
        (milestone_item, "milestone_ref", "is required for a milestone item"),
    ],
)
def test_kind_requirements(factory, missing, message):
    assert problems_of(factory(**{missing: ...})) == {(missing, message)}


def test_kind_requirements_hold_for_withdrawals_too():
    data = time_item(status="withdrawn", approved_at=..., hours=...)
    assert problems_of(data) == {("hours", "is required for a time item")}


@pytest.mark.parametrize(
    ("factory", "extra"),
    [
        (time_item, {"amount": "1"}),
        (time_item, {"milestone_ref": "m"}),
        (expense_item, {"hours": "1"}),
        (expense_item, {"rate": "1"}),
        (milestone_item, {"hours": "1"}),
        (milestone_item, {"amount": "1", "currency": "EUR"}),
    ],
)
def test_fields_forbidden_by_kind(factory, extra):
    kind = factory()["kind"]
    assert problems_of(factory(**extra)) == {
        (name, f"is not allowed on a {kind} item") for name in extra
    }


def test_unknown_kind_and_status():
    assert problems_of(time_item(kind="travel", status="pending")) == {
        ("kind", "must be one of time, expense, milestone"),
        ("status", "must be one of approved, withdrawn"),
    }


# -- idempotency key ---------------------------------------------------------------


def test_idempotency_key_prefers_version():
    item = wi.validate_work_item(time_item(updated_at="2026-03-03T10:00:00Z"))
    assert wi.idempotency_key(item) == "TE-1001:3"


def test_idempotency_key_from_updated_at_is_offset_independent():
    utc = wi.validate_work_item(expense_item(updated_at="2026-03-03T10:00:00Z"))
    paris = wi.validate_work_item(expense_item(updated_at="2026-03-03T11:00:00+01:00"))
    assert wi.idempotency_key(utc) == "EX-77:2026-03-03T10:00:00Z"
    assert wi.idempotency_key(paris) == wi.idempotency_key(utc)
    later = wi.validate_work_item(expense_item(updated_at="2026-03-03T10:00:00.1Z"))
    assert wi.idempotency_key(later) == "EX-77:2026-03-03T10:00:00.100000Z"


def test_format_datetime_refuses_naive():
    with pytest.raises(ValueError, match="naive"):
        wi.format_datetime(datetime(2026, 1, 1))


# -- batches -----------------------------------------------------------------------


def test_batch_keeps_going_past_bad_items():
    results = wi.validate_batch(
        [time_item(), {"external_id": "BAD-1", "kind": "time"}, "junk", expense_item()],
        max_items=10,
    )
    assert [(r.index, r.external_id, r.status) for r in results] == [
        (0, "TE-1001", "accepted"),
        (1, "BAD-1", "rejected"),
        (2, None, "rejected"),
        (3, "EX-77", "accepted"),
    ]
    assert results[0].accepted and not results[1].accepted
    assert results[0].item == wi.validate_work_item(time_item())
    assert results[1].item is None
    assert {"field": "project_ref", "message": "is required"} in results[1].reasons
    assert results[2].reasons == (
        {"field": None, "message": "must be an object, not a string"},
    )


def test_batch_marks_repeated_key_duplicate_but_not_new_version():
    results = wi.validate_batch(
        [time_item(), time_item(), time_item(version=4)], max_items=3
    )
    assert [r.status for r in results] == ["accepted", "duplicate", "accepted"]
    assert results[1].item == results[0].item
    assert not results[1].accepted


def test_batch_limits():
    assert wi.validate_batch([], max_items=1) == []
    assert len(wi.validate_batch([time_item()] * 2, max_items=2)) == 2
    with pytest.raises(wi.BatchError) as caught:
        wi.validate_batch([time_item()] * 3, max_items=2)
    assert caught.value.status_code == 413
    assert str(caught.value) == "too many items: 3 > 2; split the batch"


@pytest.mark.parametrize("items", [None, {"items": []}, "[]", 3])
def test_batch_must_be_a_list(items):
    with pytest.raises(wi.BatchError) as caught:
        wi.validate_batch(items, max_items=10)
    assert caught.value.status_code == 400


def test_items_from_body():
    assert wi.items_from_body({"items": [1]}) == [1]
    for body, message in (
        ([], "the body must be a JSON object, not an array"),
        ({}, "the body has no 'items'"),
        ({"items": [], "batch": 1}, "unknown top-level fields: batch"),
    ):
        with pytest.raises(wi.BatchError, match=message) as caught:
            wi.items_from_body(body)
        assert caught.value.status_code == 400
