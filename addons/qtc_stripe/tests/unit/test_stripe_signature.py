"""Stripe-Signature verification: the happy path and every way to fail it."""

import json

import pytest

from .stripe_fixtures import load, make_event
from qtc_stripe.lib import signature
from qtc_stripe.lib.signature import (
    SignatureError,
    SignatureExpired,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
    Verified,
)

SECRET = "whsec_test_secret"
OLD_SECRET = "whsec_other_secret"
T = 1_700_000_000
BODY = b'{"id":"evt_test","object":"event"}'
# Computed outside Python with:
#   printf '%s' '1700000000.{"id":"evt_test","object":"event"}' \
#     | openssl dgst -sha256 -hmac whsec_test_secret
# It pins Stripe's scheme: "<t>." + raw body, keyed by the whole whsec_ string.
KNOWN_V1 = "8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724"
KNOWN_V1_OLD = "de49e0b75c93959e4e37eb1c62bc49476d56c68a09af39740a2e2325560d2009"


def fixture_body():
    """A realistic body: the fixture payment_intent event as Stripe would send."""
    event = make_event("payment_intent.succeeded", load("payment_intent"))
    return json.dumps(event, indent=2).encode("utf-8")


def assert_no_secret(error, *secrets):
    """No message may reveal a secret or a signature computed with one."""
    text = str(error)
    for secret in secrets:
        assert secret not in text
    assert KNOWN_V1 not in text
    assert KNOWN_V1_OLD not in text


# ----------------------------------------------------------------- happy paths


def test_sign_matches_independent_hmac():
    assert signature.sign(BODY, SECRET, T) == f"t={T},v1={KNOWN_V1}"
    assert signature.compute_signature(BODY, SECRET, T) == KNOWN_V1


def test_sign_with_two_secrets_emits_two_v1_in_order():
    assert signature.sign(BODY, [SECRET, OLD_SECRET], T) == (
        f"t={T},v1={KNOWN_V1},v1={KNOWN_V1_OLD}"
    )


def test_valid_signature_is_accepted():
    header = f"t={T},v1={KNOWN_V1}"
    assert signature.verify(header, BODY, [SECRET], now=T) == Verified(T, 0)


def test_valid_signature_on_fixture_event_body():
    body = fixture_body()
    header = signature.sign(body, SECRET, T)
    assert signature.verify(header, body, SECRET, now=T + 10) == Verified(T, 0)


def test_single_secret_string_is_not_split_into_characters():
    # A bare string is one secret; iterating it would try "w", "h", "s"...
    assert signature.verify(f"t={T},v1={KNOWN_V1}", BODY, SECRET, now=T).timestamp == T


def test_header_as_bytes_and_spaces_around_elements_are_accepted():
    header = f" t={T} , v0=00ff , v1={KNOWN_V1} ".encode("ascii")
    assert signature.verify(header, BODY, SECRET, now=T) == Verified(T, 0)


def test_str_body_is_verified_as_its_utf8_bytes():
    body = '{"name":"Zoë"}'
    header = signature.sign(body.encode("utf-8"), SECRET, T)
    assert signature.verify(header, body, SECRET, now=T) == Verified(T, 0)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_valid_v1_among_several_is_enough(position):
    forged = ["0" * 64, "ab" * 32]
    values = [*forged]
    values.insert(position, KNOWN_V1)
    header = f"t={T}," + ",".join(f"v1={value}" for value in values) + ",v0=1234"
    assert signature.verify(header, BODY, [SECRET], now=T) == Verified(T, 0)


def test_rotation_old_secret_still_accepted_and_reported():
    header = signature.sign(BODY, OLD_SECRET, T)
    assert signature.verify(header, BODY, [SECRET, OLD_SECRET], now=T) == Verified(T, 1)


def test_rotation_new_secret_reported_first():
    header = signature.sign(BODY, SECRET, T)
    assert signature.verify(header, BODY, [SECRET, OLD_SECRET], now=T) == Verified(T, 0)


def test_rotation_stripe_signing_with_both_secrets():
    # While Stripe rolls the endpoint secret it sends one v1 per secret; a
    # receiver that only knows the old one must still accept.
    header = signature.sign(BODY, [SECRET, OLD_SECRET], T)
    assert signature.verify(header, BODY, [OLD_SECRET], now=T) == Verified(T, 0)
    assert signature.verify(header, BODY, [SECRET], now=T) == Verified(T, 0)


def test_sign_without_timestamp_uses_current_time():
    header = signature.sign(BODY, SECRET)
    verified = signature.verify(header, BODY, SECRET)
    assert verified.secret_index == 0
    assert header.startswith(f"t={verified.timestamp},v1=")


# ------------------------------------------------------------------- timestamp


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 299, 300, 300.0])
def test_timestamp_within_tolerance_is_accepted(offset):
    header = signature.sign(BODY, SECRET, T)
    assert signature.verify(header, BODY, SECRET, now=T + offset).timestamp == T


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (301, "301 s old"),
        (300.5, "300.5 s old"),
        (86_400, "86400 s old"),
        (-301, "301 s in the future"),
        (-3_600, "3600 s in the future"),
    ],
)
def test_timestamp_beyond_tolerance_is_expired(offset, words):
    header = signature.sign(BODY, SECRET, T)
    with pytest.raises(SignatureExpired) as caught:
        signature.verify(header, BODY, SECRET, now=T + offset)
    assert str(caught.value) == (
        f"the Stripe-Signature timestamp {T} is {words} (tolerance 300 s)"
    )
    assert_no_secret(caught.value, SECRET)


def test_custom_tolerance():
    header = signature.sign(BODY, SECRET, T)
    assert signature.verify(header, BODY, SECRET, tolerance=10, now=T + 10) == (
        Verified(T, 0)
    )
    with pytest.raises(SignatureExpired):
        signature.verify(header, BODY, SECRET, tolerance=10, now=T + 11)


def test_tolerance_none_disables_the_time_check():
    header = signature.sign(BODY, SECRET, T)
    verified = signature.verify(header, BODY, SECRET, tolerance=None, now=T + 10**6)
    assert verified == Verified(T, 0)


@pytest.mark.parametrize(
    ("tolerance", "error"), [(-1, ValueError), ("300", TypeError), (True, TypeError)]
)
def test_invalid_tolerance_is_a_caller_error(tolerance, error):
    header = signature.sign(BODY, SECRET, T)
    with pytest.raises(error):
        signature.verify(header, BODY, SECRET, tolerance=tolerance, now=T)


def test_forged_and_expired_reports_mismatch_not_expiry():
    # Expiry is only reported for deliveries Stripe really signed.
    header = signature.sign(BODY, "whsec_attacker", T)
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, SECRET, now=T + 10_000)


def test_timestamp_changed_in_header_breaks_the_signature():
    # t is part of the signed payload: moving it forward to dodge the
    # tolerance must not work.
    header = f"t={T + 1000},v1={KNOWN_V1}"
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, SECRET, now=T + 1000)


# ---------------------------------------------------------- forged or altered


def test_signature_with_wrong_secret_is_rejected():
    header = signature.sign(BODY, "whsec_attacker", T)
    with pytest.raises(SignatureMismatch) as caught:
        signature.verify(header, BODY, [SECRET, OLD_SECRET], now=T)
    assert str(caught.value) == (
        "none of the 1 v1 signature(s) matches the 2 configured endpoint secret(s)"
    )
    assert_no_secret(caught.value, SECRET, OLD_SECRET)


def test_made_up_signatures_are_rejected():
    header = f"t={T},v1={'0' * 64},v1=not-even-hex,v0={KNOWN_V1}"
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, SECRET, now=T)


def test_truncated_signature_is_rejected():
    header = f"t={T},v1={KNOWN_V1[:-1]}"
    with pytest.raises(SignatureMismatch):
        signature.verify(header, BODY, SECRET, now=T)


@pytest.mark.parametrize("index", [0, 10, len(BODY) - 1])
def test_body_altered_by_one_byte_is_rejected(index):
    altered = bytearray(BODY)
    altered[index] ^= 0x01
    header = f"t={T},v1={KNOWN_V1}"
    with pytest.raises(SignatureMismatch):
        signature.verify(header, bytes(altered), SECRET, now=T)


@pytest.mark.parametrize(
    "altered", [BODY + b"\n", BODY[:-1], b" " + BODY, BODY.replace(b":", b": ")]
)
def test_body_with_added_or_removed_bytes_is_rejected(altered):
    with pytest.raises(SignatureMismatch):
        signature.verify(f"t={T},v1={KNOWN_V1}", altered, SECRET, now=T)


def test_reserialised_json_is_rejected():
    # The controller must verify the raw body, not json.dumps(json.loads(body)).
    body = fixture_body()
    header = signature.sign(body, SECRET, T)
    reserialised = json.dumps(json.loads(body)).encode("utf-8")
    assert reserialised != body
    with pytest.raises(SignatureMismatch):
        signature.verify(header, reserialised, SECRET, now=T)


# ------------------------------------------------------- missing or malformed


@pytest.mark.parametrize("header", [None, "", "   ", b""])
def test_missing_header(header):
    with pytest.raises(SignatureMissing):
        signature.verify(header, BODY, SECRET, now=T)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (f"v1={KNOWN_V1}", "the Stripe-Signature header has no timestamp (t=)"),
        (
            f"t=abc,v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t=,v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t=-5,v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t={T}.5,v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t=+{T},v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t={'9' * 16},v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t={T},t={T + 1},v1={KNOWN_V1}",
            "the Stripe-Signature header has more than one timestamp",
        ),
        (f"t={T}", "the Stripe-Signature header has no v1 signature"),
        (f"t={T},v0={KNOWN_V1}", "the Stripe-Signature header has no v1 signature"),
        (f"t={T},v1=", "the Stripe-Signature header has an empty v1"),
        (
            "garbage",
            "the Stripe-Signature header has an element without '=' "
            "(expected t=<unix time>,v1=<signature>)",
        ),
        (
            f"t={T},,v1={KNOWN_V1}",
            "the Stripe-Signature header has an element without '=' "
            "(expected t=<unix time>,v1=<signature>)",
        ),
        (
            f"t={T};v1={KNOWN_V1}",
            "the Stripe-Signature timestamp is not a non-negative integer "
            "number of seconds",
        ),
        (
            f"t={T},v1={KNOWN_V1}é",
            "the Stripe-Signature header contains non-ASCII characters",
        ),
        (
            f"t=\uff11\uff17,v1={KNOWN_V1}",
            "the Stripe-Signature header contains non-ASCII characters",
        ),
        (
            f"t={T},v1=é".encode("latin-1"),
            "the Stripe-Signature header contains non-ASCII bytes",
        ),
    ],
)
def test_malformed_header(header, message):
    with pytest.raises(SignatureMalformed) as caught:
        signature.verify(header, BODY, SECRET, now=T)
    assert str(caught.value) == message
    assert_no_secret(caught.value, SECRET)


def test_overlong_header_is_malformed():
    header = f"t={T}," + ",".join([f"v1={'0' * 64}"] * 80)
    assert len(header) > signature.MAX_HEADER_LENGTH
    with pytest.raises(SignatureMalformed, match="characters long"):
        signature.verify(header, BODY, SECRET, now=T)


def test_all_errors_share_the_base_class():
    for error in (
        SignatureMissing,
        SignatureMalformed,
        SignatureExpired,
        SignatureMismatch,
    ):
        assert issubclass(error, SignatureError)
    assert not issubclass(SignatureError, ValueError)


def test_parse_header_returns_every_v1_in_order():
    parsed = signature.parse_header(f"t={T},v1=aa,v0=cc,v1=bb,v2=dd")
    assert parsed == signature.ParsedHeader(timestamp=T, signatures=("aa", "bb"))


# ----------------------------------------------------------- caller mistakes


@pytest.mark.parametrize(
    ("secrets", "error"),
    [
        ([], ValueError),
        ("", ValueError),
        ([SECRET, ""], ValueError),
        (None, TypeError),
        ([SECRET, 42], TypeError),
    ],
)
def test_secret_configuration_errors_are_not_signature_errors(secrets, error):
    # A misconfigured endpoint is our fault, not the sender's: it must not be
    # answered as a bad signature, and an empty key must never verify anything.
    header = signature.sign(BODY, SECRET, T)
    with pytest.raises(error) as caught:
        signature.verify(header, BODY, secrets, now=T)
    assert not isinstance(caught.value, SignatureError)


def test_decoded_json_body_is_refused():
    with pytest.raises(TypeError, match="raw request bytes"):
        signature.verify(f"t={T},v1={KNOWN_V1}", json.loads(BODY), SECRET, now=T)


def test_sign_rejects_non_integer_timestamp():
    with pytest.raises(TypeError):
        signature.sign(BODY, SECRET, 1.5)
    with pytest.raises(TypeError):
        signature.sign(BODY, SECRET, "1700000000")
