"""REST error bodies: every documented shape, and the ones nobody documents."""

import pytest

from qtc_salesforce.lib.rest_errors import ApiError, error_from_object, parse_error_body


def test_rest_error_array():
    body = (
        b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]'
    )
    (error,) = parse_error_body(body)
    assert error == ApiError("INVALID_SESSION_ID", "Session expired or invalid", ())
    assert error.auth_failure and not error.retryable and not error.restart_query


def test_error_with_fields_and_several_errors():
    body = (
        "[{\"message\":\"No such column 'Foo__c' on entity 'Opportunity'.\","
        '"errorCode":"INVALID_FIELD","fields":["Foo__c"]},'
        '{"message":"second","errorCode":"MALFORMED_QUERY"}]'
    )
    assert parse_error_body(body) == (
        ApiError(
            "INVALID_FIELD",
            "No such column 'Foo__c' on entity 'Opportunity'.",
            ("Foo__c",),
        ),
        ApiError("MALFORMED_QUERY", "second", ()),
    )


def test_oauth_error_object():
    (error,) = parse_error_body(
        {"error": "invalid_grant", "error_description": "expired authorization code"}
    )
    assert error == ApiError("invalid_grant", "expired authorization code", ())


def test_collection_status_code():
    assert error_from_object(
        {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}
    ) == ApiError("UNABLE_TO_LOCK_ROW", "locked", ())


@pytest.mark.parametrize(
    "code, retryable, restart",
    [
        ("UNABLE_TO_LOCK_ROW", True, False),
        ("REQUEST_LIMIT_EXCEEDED", True, False),
        ("SERVER_UNAVAILABLE", True, False),
        ("INVALID_QUERY_LOCATOR", False, True),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", False, False),
    ],
)
def test_classification(code, retryable, restart):
    error = ApiError(code, "x")
    assert error.retryable is retryable
    assert error.restart_query is restart
    assert error.auth_failure is False


def test_html_outage_page():
    (error,) = parse_error_body(b"<html><body>Service Unavailable</body></html>")
    assert error == ApiError(
        "UNKNOWN_ERROR", "<html><body>Service Unavailable</body></html>"
    )


def test_empty_and_odd_bodies():
    assert parse_error_body(b"") == (ApiError("UNKNOWN_ERROR", "empty body"),)
    assert parse_error_body("[]") == (ApiError("UNKNOWN_ERROR", "[]"),)
    assert parse_error_body("42") == (ApiError("UNKNOWN_ERROR", "42"),)
    assert parse_error_body([{"foo": 1}, "x"]) == (
        ApiError("UNKNOWN_ERROR", '[{"foo": 1}, "x"]'),
    )
    assert parse_error_body([{"message": "no code"}]) == (
        ApiError("UNKNOWN_ERROR", "no code"),
    )


def test_long_messages_cut_and_invalid_utf8_tolerated():
    (error,) = parse_error_body(b"\xff" + b"x" * 1000)
    assert len(error.message) == 500 and error.message.startswith("\ufffd")
