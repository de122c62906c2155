"""JWT bearer assertions: exact header and claims, a signature that verifies."""

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from qtc_salesforce.lib.jwt_bearer import (
    JWT_BEARER_GRANT_TYPE,
    LOGIN_URL,
    SANDBOX_LOGIN_URL,
    AccessToken,
    JwtBearerError,
    TokenError,
    audience_for,
    b64url,
    build_assertion,
    client_credentials_body,
    load_private_key,
    parse_token_response,
    token_request_body,
    token_url,
)

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
CONSUMER_KEY = (
    "3MVG9A2kN3Bn17huXZp1OQhPe8y4_ozAQZZCKxsWbef9GjSnHGOunHSwhnY1BWz_"
    "5vHkTL9BeLMriIX5EUKaw"
)
USERNAME = "integration@acme.example.com"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_pem(rsa_key):
    return rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def decode_part(part):
    padded = part + "=" * (-len(part) % 4)
    return base64.urlsafe_b64decode(padded)


def split(assertion):
    header, claims, signature = assertion.split(".")
    return header, claims, signature


def test_header_and_claims_exact(rsa_key):
    assertion = build_assertion(CONSUMER_KEY, USERNAME, rsa_key, now=NOW)
    header, claims, _ = split(assertion)
    assert decode_part(header) == b'{"alg":"RS256"}'
    assert header == "eyJhbGciOiJSUzI1NiJ9"  # the value Salesforce's guide shows
    assert json.loads(decode_part(claims)) == {
        "iss": CONSUMER_KEY,
        "sub": USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": NOW + 180,
    }


def test_signature_verifies_with_public_key(rsa_key):
    assertion = build_assertion(CONSUMER_KEY, USERNAME, rsa_key, now=NOW)
    header, claims, signature = split(assertion)
    rsa_key.public_key().verify(
        decode_part(signature),
        f"{header}.{claims}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert len(decode_part(signature)) == 256  # 2048-bit RSA signature


def test_tampered_claims_fail_verification(rsa_key):
    assertion = build_assertion(CONSUMER_KEY, USERNAME, rsa_key, now=NOW)
    header, _, signature = split(assertion)
    forged = b64url(b'{"iss":"x","sub":"admin@acme.example.com"}')
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(
            decode_part(signature),
            f"{header}.{forged}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )


def test_no_padding_anywhere(rsa_key):
    for user in ("a@b.c", "ab@b.c", "abc@b.c"):  # vary lengths mod 3
        assertion = build_assertion(CONSUMER_KEY, user, rsa_key, now=NOW)
        assert "=" not in assertion
        assert "+" not in assertion and "/" not in assertion


def test_sandbox_audience_and_short_lifetime(rsa_pem):
    assertion = build_assertion(
        CONSUMER_KEY,
        USERNAME,
        rsa_pem,
        audience=audience_for(sandbox=True),
        now=NOW + 0.9,
        lifetime=60,
    )
    claims = json.loads(decode_part(split(assertion)[1]))
    assert claims["aud"] == "https://test.salesforce.com"
    assert claims["exp"] == NOW + 60


def test_audience_helpers():
    assert audience_for(False) == LOGIN_URL == "https://login.salesforce.com"
    assert audience_for(True) == SANDBOX_LOGIN_URL


def test_trailing_slash_dropped_from_audience(rsa_key):
    assertion = build_assertion(
        CONSUMER_KEY, USERNAME, rsa_key, audience="https://login.salesforce.com/"
    )
    assert json.loads(decode_part(split(assertion)[1]))["aud"] == LOGIN_URL


@pytest.mark.parametrize(
    "audience",
    ["http://login.salesforce.com", "login.salesforce.com", "", "https://", None],
)
def test_bad_audience_rejected(rsa_key, audience):
    with pytest.raises(JwtBearerError, match="audience"):
        build_assertion(CONSUMER_KEY, USERNAME, rsa_key, audience=audience)


@pytest.mark.parametrize("lifetime", [0, 181, -5, 180.0, True])
def test_lifetime_bounds(rsa_key, lifetime):
    with pytest.raises(JwtBearerError, match="lifetime must be 1 to 180"):
        build_assertion(CONSUMER_KEY, USERNAME, rsa_key, lifetime=lifetime)


def test_lifetime_boundaries_accepted(rsa_key):
    for lifetime in (1, 180):
        assertion = build_assertion(
            CONSUMER_KEY, USERNAME, rsa_key, now=NOW, lifetime=lifetime
        )
        assert json.loads(decode_part(split(assertion)[1]))["exp"] == NOW + lifetime


def test_default_now_is_the_clock(rsa_key, monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.7)
    assertion = build_assertion(CONSUMER_KEY, USERNAME, rsa_key)
    assert json.loads(decode_part(split(assertion)[1]))["exp"] == 1_800_000_180


@pytest.mark.parametrize("issuer, subject", [("", USERNAME), (CONSUMER_KEY, "  ")])
def test_empty_issuer_or_subject(rsa_key, issuer, subject):
    with pytest.raises(JwtBearerError, match="is empty"):
        build_assertion(issuer, subject, rsa_key)


# ------------------------------------------------------------------- keys


def test_encrypted_key_with_passphrase(rsa_key):
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"s3cret-pass"),
    )
    loaded = load_private_key(pem.decode(), passphrase="s3cret-pass")
    assert loaded.private_numbers() == rsa_key.private_numbers()


def test_encrypted_key_without_or_with_wrong_passphrase(rsa_key):
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret-pass"),
    )
    with pytest.raises(JwtBearerError) as missing:
        load_private_key(pem)
    assert (
        str(missing.value) == "the private key is encrypted: a passphrase is required"
    )
    with pytest.raises(JwtBearerError) as wrong:
        load_private_key(pem, passphrase=b"nope")
    assert str(wrong.value) == (
        "the private key cannot be read: wrong passphrase or damaged key"
    )
    assert wrong.value.__cause__ is None and wrong.value.__suppress_context__


def test_passphrase_for_unencrypted_key(rsa_pem):
    with pytest.raises(JwtBearerError, match="not encrypted"):
        load_private_key(rsa_pem, passphrase="x")


def test_damaged_key_message_never_contains_the_key(rsa_pem):
    lines = rsa_pem.decode().splitlines()
    damaged = "\n".join([lines[0], lines[1][:20] + "!!!!" + lines[1][24:], *lines[2:]])
    with pytest.raises(JwtBearerError) as caught:
        build_assertion(CONSUMER_KEY, USERNAME, damaged)
    message = str(caught.value)
    assert message == "the private key cannot be read (damaged PEM)"
    for line in lines[1:-1]:
        assert line[:16] not in message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    "pem, expected",
    [
        ("", "no private key configured"),
        (None, "no private key configured"),
        (
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "the private key is not a PEM private key",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "the private key is not a PEM private key",
        ),
    ],
)
def test_unreadable_key_messages(pem, expected):
    with pytest.raises(JwtBearerError) as caught:
        load_private_key(pem)
    assert str(caught.value) == expected


def test_non_rsa_key_rejected():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(JwtBearerError, match="must be an RSA key"):
        load_private_key(pem)


def test_short_rsa_key_rejected():
    # Deliberately weak: the loader must refuse it.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = weak.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(JwtBearerError) as caught:
        load_private_key(pem)
    assert str(caught.value) == (
        "the RSA key has 1024 bits; at least 2048 are required"
    )


# ------------------------------------------------------------- request bodies


def test_token_request_body(rsa_key):
    assertion = build_assertion(CONSUMER_KEY, USERNAME, rsa_key, now=NOW)
    assert token_request_body(assertion) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": assertion,
    }
    assert JWT_BEARER_GRANT_TYPE == "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.mark.parametrize("assertion", ["", "abc", "a.b", None, "a.b.c.d"])
def test_token_request_body_rejects_non_jwt(assertion):
    with pytest.raises(JwtBearerError, match="not a compact JWT"):
        token_request_body(assertion)


def test_client_credentials_body():
    assert client_credentials_body(" 3MVGclient ", "secret value") == {
        "grant_type": "client_credentials",
        "client_id": "3MVGclient",
        "client_secret": "secret value",
    }
    with pytest.raises(JwtBearerError, match="client secret is empty"):
        client_credentials_body("3MVGclient", "")
    with pytest.raises(JwtBearerError, match="client id is empty"):
        client_credentials_body(" ", "x")


def test_token_url():
    assert token_url("https://acme.my.salesforce.com/") == (
        "https://acme.my.salesforce.com/services/oauth2/token"
    )
    with pytest.raises(JwtBearerError):
        token_url("http://acme.my.salesforce.com")


# -------------------------------------------------------------- token answer


def test_parse_token_response_success():
    token = parse_token_response(
        {
            "access_token": "00D5e000000KQ2e!AQ4AQSecretTokenValue",
            "scope": "api",
            "instance_url": "https://acme.my.salesforce.com",
            "id": "https://login.salesforce.com/id/00D5e000000KQ2eEAG/0055e000001AbCdAAK",
            "token_type": "Bearer",
            "issued_at": "1767225600123",
        }
    )
    assert token == AccessToken(
        access_token="00D5e000000KQ2e!AQ4AQSecretTokenValue",
        instance_url="https://acme.my.salesforce.com",
        token_type="Bearer",
        scope="api",
        issued_at=1767225600123,
        identity_url=(
            "https://login.salesforce.com/id/00D5e000000KQ2eEAG/0055e000001AbCdAAK"
        ),
    )
    assert "SecretTokenValue" not in repr(token)


def test_parse_token_response_oauth_error():
    with pytest.raises(TokenError) as caught:
        parse_token_response(
            {
                "error": "invalid_grant",
                "error_description": "user hasn't approved this consumer",
            }
        )
    assert caught.value.error == "invalid_grant"
    assert caught.value.description == "user hasn't approved this consumer"
    assert str(caught.value) == "invalid_grant: user hasn't approved this consumer"


@pytest.mark.parametrize(
    "payload, description",
    [
        ([], "the token answer is not a JSON object"),
        (
            {"instance_url": "https://a.my.salesforce.com"},
            "the token answer has no access_token",
        ),
        ({"access_token": "x"}, "the token answer has no https instance_url"),
        (
            {"access_token": "x", "instance_url": "http://a.my.salesforce.com"},
            "the token answer has no https instance_url",
        ),
    ],
)
def test_parse_token_response_invalid(payload, description):
    with pytest.raises(TokenError) as caught:
        parse_token_response(payload)
    assert caught.value.error == "invalid_response"
    assert caught.value.description == description
