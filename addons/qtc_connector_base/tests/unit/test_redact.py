"""Redaction of credentials from mappings (by key name) and text (by value)."""

import pytest

from qtc_connector_base.lib import redact
from qtc_connector_base.lib.redact import MASK, is_sensitive_key, redact_mapping


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "authorisation",
        "Proxy-Authorization",
        "password",
        "db_passwd",
        "client_secret",
        "webhook_secret",
        "access_token",
        "refresh_token",
        "TOKEN",
        "api_key",
        "api-key",
        "apikey",
        "X-API-KEY",
        "private_key",
        "private-key",
        "stripe-signature",
        "Cookie",
        "Set-Cookie",
        "session_id",
        "client_assertion",
    ],
)
def test_sensitive_keys(key):
    assert is_sensitive_key(key) is True


@pytest.mark.parametrize(
    "key",
    ["id", "amount", "currency", "email", "name", "author", "Idempotency-Key", 42],
)
def test_ordinary_keys(key):
    assert is_sensitive_key(key) is False


def test_mask_value():
    assert MASK == "***"


def test_nested_sensitive_keys_masked_at_any_depth():
    payload = {
        "id": "evt_1",
        "headers": {"Authorization": "Bearer abc", "Content-Type": "json"},
        "data": {
            "object": {
                "customer": {"name": "ACME", "api_key": "k-123"},
                "lines": [
                    {"amount": 100, "token": "tok_1"},
                    [{"password": "p", "note": "keep"}],
                ],
            }
        },
    }
    assert redact_mapping(payload) == {
        "id": "evt_1",
        "headers": {"Authorization": MASK, "Content-Type": "json"},
        "data": {
            "object": {
                "customer": {"name": "ACME", "api_key": MASK},
                "lines": [
                    {"amount": 100, "token": MASK},
                    [{"password": MASK, "note": "keep"}],
                ],
            }
        },
    }


def test_sensitive_key_masks_whole_subtree():
    # Whatever sits under a credential key, even a structure, is hidden.
    assert redact_mapping({"secret": {"a": 1, "b": [1, 2]}}) == {"secret": MASK}


def test_sensitive_key_with_empty_or_none_value_is_masked_too():
    assert redact_mapping({"token": None, "password": ""}) == {
        "token": MASK,
        "password": MASK,
    }


def test_redact_mapping_returns_a_copy_and_leaves_input_intact():
    payload = {"user": {"password": "hunter22"}, "items": [{"token": "t"}]}
    result = redact_mapping(payload)
    assert payload == {"user": {"password": "hunter22"}, "items": [{"token": "t"}]}
    assert result is not payload
    assert result["user"] is not payload["user"]
    assert result["items"] is not payload["items"]


def test_non_sensitive_data_left_intact():
    payload = {"id": 7, "ok": True, "amount": 12.5, "tags": ["a", "b"], "n": None}
    assert redact_mapping(payload) == payload


@pytest.mark.parametrize("value", ["text", 5, None, 1.5])
def test_scalars_are_returned_unchanged(value):
    assert redact_mapping(value) == value


def test_list_at_top_level():
    assert redact_mapping([{"password": "x"}, "plain"]) == [{"password": MASK}, "plain"]


# -- redact_text ----------------------------------------------------------------


def test_every_occurrence_is_masked():
    text = "key=abcd1234 then again abcd1234 and abcd1234."
    assert redact.redact_text(text, ["abcd1234"]) == ("key=*** then again *** and ***.")


def test_several_secrets_are_all_masked():
    text = "user sk_live_AAAA pass hunter2222"
    assert redact.redact_text(text, ["sk_live_AAAA", "hunter2222"]) == (
        "user *** pass ***"
    )


@pytest.mark.parametrize("order", [["abcd", "abcdefgh"], ["abcdefgh", "abcd"]])
def test_longest_secret_is_masked_first(order):
    # If "abcd" went first, "abcdefgh" would become "***efgh": half a secret.
    assert redact.redact_text("x abcdefgh y abcd z", order) == "x *** y *** z"


def test_secrets_shorter_than_four_are_ignored():
    assert redact.redact_text("abc ab a 123", ["abc", "ab", "a", "123"]) == (
        "abc ab a 123"
    )


def test_four_character_secret_is_masked():
    assert redact.redact_text("pin 1234 ok", ["1234"]) == "pin *** ok"


def test_empty_and_none_secrets_are_ignored():
    assert redact.redact_text("nothing here", ["", None]) == "nothing here"


def test_no_secrets_returns_text_unchanged():
    assert redact.redact_text("plain", []) == "plain"


@pytest.mark.parametrize("text", ["", None])
def test_empty_text_returned_as_is(text):
    assert redact.redact_text(text, ["abcdef"]) is text


def test_secrets_may_be_any_iterable():
    assert redact.redact_text("a-secret-value", iter(["secret"])) == "a-***-value"
    assert redact.redact_text("a-secret-value", ("secret",)) == "a-***-value"


def test_duplicate_secrets_are_harmless():
    assert redact.redact_text("token1234", ["token1234", "token1234"]) == "***"


def test_matching_is_case_sensitive():
    # Secrets are exact values; a differently-cased string is another string.
    assert redact.redact_text("ABCDEF", ["abcdef"]) == "ABCDEF"
