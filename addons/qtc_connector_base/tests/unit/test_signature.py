"""The QTC webhook signature: what is accepted, and every way it is refused."""

import hashlib
import hmac

import pytest

from qtc_connector_base.lib import signature
from qtc_connector_base.lib.signature import (
    SignatureError,
    SignatureExpired,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
)

SECRET = "whsec_current_0123456789"
OLD_SECRET = "whsec_previous_9876543210"
BODY = b'{"id": "evt_1", "type": "invoice.paid", "amount": 1200}'
T = 1_700_000_000


def _digest(secret, timestamp, body):
    """Reference digest computed here, independently of the module under test."""
    return hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()


def test_compute_matches_reference_hmac():
    assert signature.compute(SECRET, T, BODY) == _digest(SECRET, T, BODY)


def test_sign_produces_documented_header_format():
    header = signature.sign(BODY, SECRET, timestamp=T)
    assert header == f"t={T},v1={_digest(SECRET, T, BODY)}"


def test_sign_with_several_secrets_emits_one_v1_per_secret_in_order():
    header = signature.sign(BODY, [SECRET, OLD_SECRET], timestamp=T)
    assert header == (
        f"t={T},v1={_digest(SECRET, T, BODY)},v1={_digest(OLD_SECRET, T, BODY)}"
    )


def test_sign_truncates_float_timestamp_to_integer_seconds():
    assert signature.sign(BODY, SECRET, timestamp=T + 0.9).startswith(f"t={T},")


def test_round_trip_returns_signed_timestamp():
    header = signature.sign(BODY, SECRET, timestamp=T)
    assert signature.verify(header, BODY, [SECRET], now=T) == T


def test_round_trip_with_default_clock():
    header = signature.sign(BODY, SECRET)
    timestamp = signature.verify(header, BODY, [SECRET])
    assert header.startswith(f"t={timestamp},")


def test_uppercase_hex_digest_is_accepted():
    header = f"t={T},v1={_digest(SECRET, T, BODY).upper()}"
    assert signature.verify(header, BODY, [SECRET], now=T) == T


def test_whitespace_around_items_is_tolerated():
    header = f"t={T}, v1={_digest(SECRET, T, BODY)}"
    assert signature.verify(header, BODY, [SECRET], now=T) == T


@pytest.mark.parametrize("valid_first", [True, False])
def test_two_v1_values_one_valid_is_accepted(valid_first):
    good = _digest(SECRET, T, BODY)
    bad = _digest("some-other-secret", T, BODY)
    first, second = (good, bad) if valid_first else (bad, good)
    header = f"t={T},v1={first},v1={second}"
    assert signature.verify(header, BODY, [SECRET], now=T) == T


def test_unknown_keys_are_ignored():
    header = f"t={T},v0=deadbeef,v1={_digest(SECRET, T, BODY)}"
    assert signature.verify(header, BODY, [SECRET], now=T) == T


# -- rotation -------------------------------------------------------------------


def test_receiver_with_current_and_previous_accepts_sender_still_on_previous():
    header = signature.sign(BODY, OLD_SECRET, timestamp=T)
    assert signature.verify(header, BODY, [SECRET, OLD_SECRET], now=T) == T


def test_receiver_still_on_previous_accepts_sender_signing_with_both():
    header = signature.sign(BODY, [SECRET, OLD_SECRET], timestamp=T)
    assert signature.verify(header, BODY, [OLD_SECRET], now=T) == T


def test_after_rotation_the_retired_secret_is_refused():
    header = signature.sign(BODY, OLD_SECRET, timestamp=T)
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, [SECRET], now=T)


def test_empty_entries_among_secrets_are_skipped():
    header = signature.sign(BODY, SECRET, timestamp=T)
    assert signature.verify(header, BODY, ["", None, SECRET], now=T) == T


# -- timestamp tolerance --------------------------------------------------------


def test_timestamp_exactly_at_tolerance_is_accepted():
    header = signature.sign(BODY, SECRET, timestamp=T)
    assert signature.verify(header, BODY, [SECRET], tolerance=300, now=T + 300) == T
    assert signature.verify(header, BODY, [SECRET], tolerance=300, now=T - 300) == T


def test_timestamp_older_than_tolerance_is_expired():
    header = signature.sign(BODY, SECRET, timestamp=T)
    with pytest.raises(SignatureExpired):
        signature.verify(header, BODY, [SECRET], tolerance=300, now=T + 301)


def test_default_tolerance_is_five_minutes():
    header = signature.sign(BODY, SECRET, timestamp=T)
    assert signature.DEFAULT_TOLERANCE == 300
    assert signature.verify(header, BODY, [SECRET], now=T + 300) == T
    with pytest.raises(SignatureExpired):
        signature.verify(header, BODY, [SECRET], now=T + 301)


def test_far_future_timestamp_is_refused():
    header = signature.sign(BODY, SECRET, timestamp=T + 86_400)
    with pytest.raises(SignatureExpired):
        signature.verify(header, BODY, [SECRET], now=T)


def test_expired_is_reported_even_with_a_valid_digest():
    # A captured request replayed later: the digest is genuine, the time is not.
    header = signature.sign(BODY, SECRET, timestamp=T - 3600)
    with pytest.raises(SignatureExpired):
        signature.verify(header, BODY, [SECRET], now=T)


def test_timestamp_is_part_of_the_signed_content():
    # Moving a genuine digest to a fresh timestamp must not make it valid again.
    digest = _digest(SECRET, T - 3600, BODY)
    with pytest.raises(SignatureMismatch):
        signature.verify(f"t={T},v1={digest}", BODY, [SECRET], now=T)


# -- forgeries ------------------------------------------------------------------


def test_forged_digest_is_refused():
    header = f"t={T},v1={'0' * 64}"
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, [SECRET], now=T)


def test_truncated_digest_is_refused():
    header = f"t={T},v1={_digest(SECRET, T, BODY)[:-1]}"
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, [SECRET], now=T)


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_body_changed_by_one_byte_is_refused(position):
    header = signature.sign(BODY, SECRET, timestamp=T)
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01
    with pytest.raises(SignatureMismatch):
        signature.verify(header, bytes(tampered), [SECRET], now=T)


def test_body_with_one_extra_byte_is_refused():
    header = signature.sign(BODY, SECRET, timestamp=T)
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY + b" ", [SECRET], now=T)


def test_lone_str_secret_is_one_secret_not_a_list_of_characters():
    # Regression: iterating a str made every character an accepted secret, so a
    # forger could sign with the one-character key "w".
    forged = signature.sign(BODY, "w", timestamp=T)
    with pytest.raises(SignatureMismatch):
        signature.verify(forged, BODY, SECRET, now=T)
    genuine = signature.sign(BODY, SECRET, timestamp=T)
    assert signature.verify(genuine, BODY, SECRET, now=T) == T


# -- missing and malformed headers ----------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_or_empty_header(header):
    with pytest.raises(SignatureMissing):
        signature.verify(header, BODY, [SECRET], now=T)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (f"v1={'a' * 64}", "no timestamp"),
        (f"t=,v1={'a' * 64}", "not an integer"),
        (f"t=abc,v1={'a' * 64}", "not an integer"),
        (f"t=-5,v1={'a' * 64}", "not an integer"),
        (f"t=1.5,v1={'a' * 64}", "not an integer"),
        # str.isdigit() is True for superscripts, which int() rejects.
        (f"t=\u00b2,v1={'a' * 64}", "not an integer"),
        (f"t={T}", "no v1"),
        (f"t={T},v2={'a' * 64}", "no v1"),
        (f"t={T},v1", "without '='"),
        (f"t={T},,v1={'a' * 64}", "without '='"),
        (f"{T}", "without '='"),
        # hmac.compare_digest raises TypeError on non-ASCII str.
        (f"t={T},v1=\u00e9{'a' * 63}", "not hexadecimal"),
    ],
)
def test_malformed_header(header, reason):
    with pytest.raises(SignatureMalformed, match=reason):
        signature.verify(header, BODY, [SECRET], now=T)


def test_parse_header_returns_timestamp_and_lowercased_digests():
    assert signature.parse_header("t=12,v1=ABC,v1=def") == (12, ["abc", "def"])


def test_all_failures_share_the_base_class():
    for cls in (
        SignatureMissing,
        SignatureMalformed,
        SignatureExpired,
        SignatureMismatch,
    ):
        assert issubclass(cls, SignatureError)


# -- secrets configuration ------------------------------------------------------


@pytest.mark.parametrize("secrets", [[], ["", None], ()])
def test_no_active_secret_is_a_mismatch(secrets):
    header = signature.sign(BODY, SECRET, timestamp=T)
    with pytest.raises(SignatureMismatch, match="no active signing secret"):
        signature.verify(header, BODY, secrets, now=T)


def test_bytes_and_str_secrets_sign_identically():
    assert signature.sign(BODY, SECRET.encode(), timestamp=T) == signature.sign(
        BODY, SECRET, timestamp=T
    )


def test_bytes_secret_verifies_str_signature_and_back():
    header_from_str = signature.sign(BODY, SECRET, timestamp=T)
    header_from_bytes = signature.sign(BODY, SECRET.encode(), timestamp=T)
    assert signature.verify(header_from_str, BODY, [SECRET.encode()], now=T) == T
    assert signature.verify(header_from_bytes, BODY, [SECRET], now=T) == T
    assert signature.verify(header_from_str, BODY, SECRET.encode(), now=T) == T


def test_non_ascii_str_secret_is_utf8_encoded():
    secret = "clé-secrète-ü"
    header = signature.sign(BODY, secret, timestamp=T)
    assert signature.verify(header, BODY, [secret.encode("utf-8")], now=T) == T


# -- no secret in messages ------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "garbage",
        f"t=x,v1={'a' * 64}",
        signature.sign(BODY, SECRET, timestamp=T - 10_000),
        signature.sign(BODY, "not-the-secret", timestamp=T),
        signature.sign(BODY, SECRET, timestamp=T),  # verified against another body
    ],
)
def test_error_message_never_contains_secret_or_expected_digest(header):
    with pytest.raises(SignatureError) as caught:
        signature.verify(header, BODY + b"!", [SECRET, OLD_SECRET], now=T)
    message = str(caught.value)
    assert message
    for secret in (SECRET, OLD_SECRET):
        assert secret not in message
        assert _digest(secret, T, BODY + b"!") not in message
        assert _digest(secret, T, BODY) not in message
