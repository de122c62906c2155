"""OAuth 2.0 token requests for Salesforce: JWT bearer and client credentials.

The JWT bearer flow lets a server obtain an access token for a pre-authorised
integration user without a password or a refresh token: we sign a short JWT
with the private key whose certificate is uploaded to the connected app, and
post it to ``/services/oauth2/token``. Salesforce's documented claims:

- header ``{"alg":"RS256"}`` (RSA with SHA-256 is the only algorithm it takes);
- ``iss``: the connected app's consumer key;
- ``sub``: the Salesforce username to act as;
- ``aud``: ``https://login.salesforce.com``, ``https://test.salesforce.com``
  for a sandbox, or an Experience Cloud site URL;
- ``exp``: seconds since the epoch, at most 3 minutes ahead.

Each part is base64url-encoded without padding; the signature covers
``header.claims``. The client-credentials body is here too because both flows
end at the same token endpoint and the Odoo layer chooses one per backend.
``parse_token_response`` reads the answer of either flow.

Nothing secret reaches an error message: a key that cannot be read yields a
sentence about the key, never its bytes, and the access token is hidden from
``repr``.
"""

import base64
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_CREDENTIALS_GRANT_TYPE = "client_credentials"
# Salesforce refuses assertions whose exp lies more than 3 minutes ahead.
MAX_LIFETIME_SECONDS = 180
MIN_RSA_KEY_BITS = 2048


class JwtBearerError(ValueError):
    """The assertion cannot be built: bad key, bad claim, bad audience."""


class TokenError(Exception):
    """The token endpoint refused the request.

    :ivar error: the OAuth error code (``invalid_grant``, ``invalid_client``...)
    :ivar description: Salesforce's ``error_description``, safe to show
    """

    def __init__(self, error, description=""):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AccessToken:
    """A token endpoint's answer; ``access_token`` stays out of ``repr``."""

    access_token: str = field(repr=False)
    instance_url: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type name
    scope: str = ""
    issued_at: int | None = None
    identity_url: str = ""


def audience_for(sandbox):
    """The ``aud`` claim for production (``False``) or a sandbox (``True``)."""
    return SANDBOX_LOGIN_URL if sandbox else LOGIN_URL


def load_private_key(pem, passphrase=None):
    """Load the RSA private key that signs assertions.

    :param pem: PEM text or bytes (PKCS#1 or PKCS#8, optionally encrypted)
    :param passphrase: the passphrase of an encrypted key, text or bytes
    :returns: an ``RSAPrivateKey``
    :raises JwtBearerError: when the key is missing, not PEM, encrypted without
        a passphrase, not decrypted by the passphrase, not RSA or under 2048
        bits; the message never contains the key
    """
    if isinstance(pem, str):
        pem = pem.encode()
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    if not isinstance(pem, bytes) or not pem.strip():
        raise JwtBearerError("no private key configured")
    if b"-----BEGIN" not in pem or b"PRIVATE KEY-----" not in pem:
        raise JwtBearerError("the private key is not a PEM private key")
    # The library's own messages are generic, but chaining is cut anyway
    # (``from None``) so no traceback can carry a fragment of the key.
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise JwtBearerError(
                "a passphrase was given but the private key is not encrypted"
            ) from None
        raise JwtBearerError(
            "the private key is encrypted: a passphrase is required"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if passphrase:
            raise JwtBearerError(
                "the private key cannot be read: wrong passphrase or damaged key"
            ) from None
        raise JwtBearerError("the private key cannot be read (damaged PEM)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise JwtBearerError("the private key must be an RSA key (RS256)")
    if key.key_size < MIN_RSA_KEY_BITS:
        raise JwtBearerError(
            f"the RSA key has {key.key_size} bits; at least {MIN_RSA_KEY_BITS} "
            "are required"
        )
    return key


def build_assertion(
    consumer_key,
    username,
    private_key,
    *,
    audience=LOGIN_URL,
    now=None,
    lifetime=MAX_LIFETIME_SECONDS,
):
    """Build and sign the JWT bearer assertion.

    :param consumer_key: the connected app's consumer key (``iss``)
    :param username: the integration user's Salesforce username (``sub``)
    :param private_key: an ``RSAPrivateKey`` or PEM text/bytes of one
    :param audience: ``LOGIN_URL``, ``SANDBOX_LOGIN_URL`` or a site URL;
        a trailing slash is dropped (Salesforce compares the value exactly)
    :param now: current time in epoch seconds, injectable for tests
    :param lifetime: seconds until ``exp``, 1 to 180
    :returns: the compact JWT ``header.claims.signature``
    :raises JwtBearerError: for an empty issuer or subject, a non-https
        audience, a lifetime outside 1..180 or an unusable key
    """
    if not isinstance(consumer_key, str) or not consumer_key.strip():
        raise JwtBearerError("the consumer key (iss) is empty")
    if not isinstance(username, str) or not username.strip():
        raise JwtBearerError("the username (sub) is empty")
    audience = normalize_audience(audience)
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 1 <= lifetime <= MAX_LIFETIME_SECONDS
    ):
        raise JwtBearerError(
            f"lifetime must be 1 to {MAX_LIFETIME_SECONDS} seconds, got {lifetime!r}"
        )
    if not isinstance(private_key, rsa.RSAPrivateKey):
        private_key = load_private_key(private_key)
    issued = int(time.time() if now is None else now)
    header = {"alg": "RS256"}
    claims = {
        "iss": consumer_key.strip(),
        "sub": username.strip(),
        "aud": audience,
        "exp": issued + lifetime,
    }
    signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}"
    signature = private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64url(signature)}"


def normalize_audience(audience):
    """Validate an ``aud`` value: an https origin, no path beyond ``/``.

    :raises JwtBearerError: for anything else
    """
    if not isinstance(audience, str):
        raise JwtBearerError("the audience must be a URL string")
    value = audience.strip().rstrip("/")
    parts = urlsplit(value)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise JwtBearerError(
            f"the audience must be an https URL such as {LOGIN_URL}, "
            f"got {audience[:80]!r}"
        )
    return value


def token_url(base_url):
    """The token endpoint under a login URL or My Domain URL.

    :raises JwtBearerError: when ``base_url`` is not an https URL
    """
    return normalize_audience(base_url) + TOKEN_PATH


def token_request_body(assertion):
    """The form body that trades a signed assertion for an access token.

    :param assertion: the output of ``build_assertion``
    :returns: a dict to post form-encoded (``data=`` in requests)
    :raises JwtBearerError: when ``assertion`` is not a compact JWT
    """
    if not isinstance(assertion, str) or assertion.count(".") != 2:
        raise JwtBearerError("the assertion is not a compact JWT")
    return {"grant_type": JWT_BEARER_GRANT_TYPE, "assertion": assertion}


def client_credentials_body(client_id, client_secret):
    """The form body of the client-credentials flow.

    Salesforce only accepts this flow on the org's My Domain token endpoint
    (``https://<domain>.my.salesforce.com/services/oauth2/token``), not on
    the login hosts, and only for a connected app with a run-as user set.

    :raises JwtBearerError: when the id or the secret is empty
    """
    if not isinstance(client_id, str) or not client_id.strip():
        raise JwtBearerError("the client id is empty")
    if not isinstance(client_secret, str) or not client_secret:
        raise JwtBearerError("the client secret is empty")
    return {
        "grant_type": CLIENT_CREDENTIALS_GRANT_TYPE,
        "client_id": client_id.strip(),
        "client_secret": client_secret,
    }


def parse_token_response(payload):
    """Read the token endpoint's JSON answer (already decoded).

    :param payload: the decoded JSON object
    :returns: an ``AccessToken``
    :raises TokenError: for an OAuth error answer
        (``{"error": ..., "error_description": ...}``) or an answer without
        ``access_token`` or a usable https ``instance_url``
    """
    if not isinstance(payload, dict):
        raise TokenError("invalid_response", "the token answer is not a JSON object")
    if "error" in payload:
        error_code = str(payload.get("error") or "unknown_error")
        raise TokenError(error_code, str(payload.get("error_description") or ""))
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError("invalid_response", "the token answer has no access_token")
    instance_url = payload.get("instance_url")
    try:
        instance_url = normalize_audience(instance_url)
    except JwtBearerError:
        raise TokenError(
            "invalid_response", "the token answer has no https instance_url"
        ) from None
    issued_at = payload.get("issued_at")
    # Salesforce sends issued_at as a string of epoch milliseconds.
    issued_at = int(issued_at) if str(issued_at or "").isdigit() else None
    return AccessToken(
        access_token=token,
        instance_url=instance_url,
        token_type=str(payload.get("token_type") or "Bearer"),
        scope=str(payload.get("scope") or ""),
        issued_at=issued_at,
        identity_url=str(payload.get("id") or ""),
    )


def b64url(data):
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value):
    # Compact separators: the encoded form is what gets signed, keep it small
    # and deterministic.
    return b64url(json.dumps(value, separators=(",", ":")).encode())
