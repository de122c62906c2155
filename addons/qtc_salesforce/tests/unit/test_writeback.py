"""sObject Collections write-back: exact bodies, chunking, result pairing."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qtc_salesforce.lib.writeback import (
    CollectionRequest,
    CollectionResult,
    RecordError,
    RecordUpdate,
    WritebackError,
    build_update_requests,
    parse_update_results,
)


def opportunity_id(n):
    return f"0065e{n:010d}AAV"


def updates(count, sobject_type="Opportunity"):
    return [
        RecordUpdate(sobject_type, opportunity_id(n), {"ERP_Status__c": "Ordered"})
        for n in range(count)
    ]


# -------------------------------------------------------------------- bodies


def test_body_exact():
    (request,) = build_update_requests(
        [
            RecordUpdate(
                "Opportunity",
                "0065e00000AbCdEAAV",
                {
                    "ERP_Order_Number__c": "S00042",
                    "ERP_Status__c": "Ordered",
                    "ERP_Invoiced_Amount__c": Decimal("48000.50"),
                    "ERP_Ordered_On__c": date(2026, 4, 1),
                    "ERP_Synced_At__c": datetime(
                        2026,
                        4,
                        1,
                        12,
                        30,
                        5,
                        123456,
                        tzinfo=timezone(timedelta(hours=2)),
                    ),
                    "ERP_Closed__c": False,
                    "ERP_Note__c": None,
                    "ERP_Lines__c": 3,
                },
            )
        ]
    )
    assert request.body == {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "Opportunity"},
                "id": "0065e00000AbCdEAAV",
                "ERP_Order_Number__c": "S00042",
                "ERP_Status__c": "Ordered",
                "ERP_Invoiced_Amount__c": 48000.5,
                "ERP_Ordered_On__c": "2026-04-01",
                "ERP_Synced_At__c": "2026-04-01T10:30:05.123Z",
                "ERP_Closed__c": False,
                "ERP_Note__c": None,
                "ERP_Lines__c": 3,
            }
        ],
    }
    assert request.record_ids == ("0065e00000AbCdEAAV",)


def test_all_or_none_flag():
    (request,) = build_update_requests(updates(1), all_or_none=True)
    assert request.body["allOrNone"] is True
    with pytest.raises(WritebackError, match="all_or_none must be a bool"):
        build_update_requests(updates(1), all_or_none="false")


def test_nothing_to_send():
    assert build_update_requests([]) == []


# ------------------------------------------------------------------ chunking


@pytest.mark.parametrize(
    "count, sizes",
    [
        (1, [1]),
        (199, [199]),
        (200, [200]),
        (201, [200, 1]),
        (400, [200, 200]),
        (401, [200, 200, 1]),
    ],
)
def test_chunks_of_at_most_200(count, sizes):
    requests = build_update_requests(updates(count))
    assert [len(r.body["records"]) for r in requests] == sizes
    assert [len(r.record_ids) for r in requests] == sizes
    sent = [record["id"] for r in requests for record in r.body["records"]]
    assert sent == [opportunity_id(n) for n in range(count)]
    for request in requests:
        assert list(request.record_ids) == [
            rec["id"] for rec in request.body["records"]
        ]


def test_custom_chunk_size_and_bounds():
    assert [
        len(r.record_ids) for r in build_update_requests(updates(5), chunk_size=2)
    ] == [2, 2, 1]
    for bad in (0, 201, 2.0, True):
        with pytest.raises(WritebackError, match="chunk_size must be 1 to 200"):
            build_update_requests(updates(1), chunk_size=bad)


def test_types_grouped_to_keep_salesforce_chunks_few():
    mixed = [
        RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"A__c": 1}),
        RecordUpdate("Account", "0015e00000ZkM3hAAF", {"A__c": 2}),
        RecordUpdate("Opportunity", "0065e00000AbCdFAAV", {"A__c": 3}),
    ]
    (request,) = build_update_requests(mixed)
    assert request.record_ids == (
        "0065e00000AbCdEAAV",
        "0065e00000AbCdFAAV",
        "0015e00000ZkM3hAAF",
    )


def test_at_most_ten_types_per_request():
    many = [
        RecordUpdate(f"Type{n}__c", f"a{n:02d}5e00000AbCdEAAV", {"A__c": n})
        for n in range(11)
    ]
    requests = build_update_requests(many)
    assert [len(r.record_ids) for r in requests] == [10, 1]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "update, message",
    [
        (
            RecordUpdate("Opportunity", "0065e00000AbCdE'", {"A__c": 1}),
            "is not a Salesforce id",
        ),
        (
            RecordUpdate("Opportunity; x", "0065e00000AbCdEAAV", {"A__c": 1}),
            "sObject type: not a Salesforce API name",
        ),
        (RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {}), "no fields to update"),
        (
            RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"Id": "x"}),
            "'Id' cannot be set",
        ),
        (
            RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"attributes": {}}),
            "'attributes' cannot be set",
        ),
        (
            RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"Bad Name": 1}),
            "not a Salesforce API name",
        ),
        (
            RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"A__c": float("nan")}),
            "A__c is nan",
        ),
        (
            RecordUpdate(
                "Opportunity", "0065e00000AbCdEAAV", {"A__c": Decimal("Infinity")}
            ),
            "A__c is Infinity",
        ),
        (
            RecordUpdate(
                "Opportunity",
                "0065e00000AbCdEAAV",
                {"A__c": Decimal("0.10000000000000000001")},
            ),
            "cannot be sent exactly",
        ),
        (
            RecordUpdate(
                "Opportunity", "0065e00000AbCdEAAV", {"A__c": datetime(2026, 1, 1)}
            ),
            "naive datetime",
        ),
        (
            RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"A__c": [1]}),
            "has a list value",
        ),
        ("not an update", "expected a RecordUpdate"),
    ],
)
def test_invalid_updates_refused(update, message):
    with pytest.raises(WritebackError) as caught:
        build_update_requests([update])
    assert message in str(caught.value)


def test_duplicate_ids_refused_including_15_vs_18_characters():
    with pytest.raises(WritebackError, match="0065e00000AbCdE appears twice"):
        build_update_requests(
            [
                RecordUpdate("Opportunity", "0065e00000AbCdEAAV", {"A__c": 1}),
                RecordUpdate("Opportunity", "0065e00000AbCdE", {"B__c": 1}),
            ]
        )


# ------------------------------------------------------------------ results

REQUEST = CollectionRequest(
    body={},
    record_ids=("0065e00000AbCdEAAV", "0065e00000AbCdFAAV", "0065e00000AbCdGAAV"),
)


def test_parse_mixed_results():
    result = parse_update_results(
        REQUEST,
        [
            {"id": "0065e00000AbCdEAAV", "success": True, "errors": []},
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "UNABLE_TO_LOCK_ROW",
                        "message": "unable to obtain exclusive access to this record",
                        "fields": [],
                    }
                ],
            },
            {
                "id": None,
                "success": False,
                "errors": [
                    {
                        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "message": "Status cannot go back",
                        "fields": ["ERP_Status__c"],
                    },
                    {
                        "statusCode": "INVALID_FIELD",
                        "message": "No such column",
                        "fields": [],
                    },
                ],
            },
        ],
    )
    assert result == CollectionResult(
        successes=("0065e00000AbCdEAAV",),
        errors=(
            RecordError(
                "0065e00000AbCdFAAV",
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record",
                (),
            ),
            RecordError(
                "0065e00000AbCdGAAV",
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Status cannot go back",
                ("ERP_Status__c",),
            ),
            RecordError("0065e00000AbCdGAAV", "INVALID_FIELD", "No such column", ()),
        ),
    )
    assert result.failed_ids == ("0065e00000AbCdFAAV", "0065e00000AbCdGAAV")
    assert [error.retryable for error in result.errors] == [True, False, False]


def test_all_or_none_rollback_marks_others_retryable():
    result = parse_update_results(
        REQUEST,
        [
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "message": (
                            "Record rolled back because not all records were "
                            "valid and the request was using AllOrNone header"
                        ),
                        "fields": [],
                    }
                ],
            },
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "REQUIRED_FIELD_MISSING",
                        "message": "Required fields are missing: [StageName]",
                        "fields": ["StageName"],
                    }
                ],
            },
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "message": "Record rolled back",
                        "fields": [],
                    }
                ],
            },
        ],
    )
    assert result.successes == ()
    assert [(e.record_id, e.retryable) for e in result.errors] == [
        ("0065e00000AbCdEAAV", True),
        ("0065e00000AbCdFAAV", False),
        ("0065e00000AbCdGAAV", True),
    ]


def test_whole_request_refused_applies_to_every_record():
    result = parse_update_results(
        REQUEST,
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    assert result.successes == ()
    assert result.errors == tuple(
        RecordError(record_id, "INVALID_SESSION_ID", "Session expired or invalid", ())
        for record_id in REQUEST.record_ids
    )


def test_failure_without_error_detail():
    request = CollectionRequest(body={}, record_ids=("0065e00000AbCdEAAV",))
    result = parse_update_results(request, [{"success": False, "errors": []}])
    assert result.errors == (
        RecordError(
            "0065e00000AbCdEAAV", "UNKNOWN_ERROR", "failed without an error message"
        ),
    )


def test_fifteen_character_id_in_result_matches():
    request = CollectionRequest(body={}, record_ids=("0065e00000AbCdEAAV",))
    result = parse_update_results(request, [{"id": "0065e00000AbCdE", "success": True}])
    assert result.successes == ("0065e00000AbCdEAAV",)


@pytest.mark.parametrize(
    "response, message",
    [
        ({"success": True}, "must be a JSON list, got dict"),
        ([], "0 results for 3 records"),
        ([{"success": True}] * 2, "2 results for 3 records"),
        (
            [{"success": True}, {"success": "yes"}, {"success": True}],
            "result for 0065e00000AbCdFAAV has no success flag",
        ),
        (
            [
                {"id": "0065e00000AbCdFAAV", "success": True},
                {"success": True},
                {"success": True},
            ],
            "result for 0065e00000AbCdEAAV names 0065e00000AbCdFAAV",
        ),
    ],
)
def test_unpairable_answers(response, message):
    with pytest.raises(WritebackError) as caught:
        parse_update_results(REQUEST, response)
    assert message in str(caught.value)


def test_round_trip_of_a_201_record_write_back():
    requests = build_update_requests(updates(201))
    results = [
        parse_update_results(
            request,
            [
                {"id": record_id, "success": True, "errors": []}
                for record_id in request.record_ids
            ],
        )
        for request in requests
    ]
    assert sum(len(result.successes) for result in results) == 201
    assert results[1].successes == (opportunity_id(200),)


def test_datetime_already_utc_keeps_milliseconds():
    (request,) = build_update_requests(
        [
            RecordUpdate(
                "Opportunity",
                "0065e00000AbCdEAAV",
                {"A__c": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        ]
    )
    assert request.body["records"][0]["A__c"] == "2026-01-01T00:00:00.000Z"
