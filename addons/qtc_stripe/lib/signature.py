"""Verification of the ``Stripe-Signature`` header of Stripe webhooks.

Stripe signs every webhook delivery as documented in its "verify webhook
signatures" guide::

    Stripe-Signature: t=1700000000,v1=5257a8...,v1=9f01c2...,v0=6ffbb5...

- ``t`` is the Unix time at which Stripe signed the delivery;
- each ``v1`` is ``hex(HMAC-SHA256(key=endpoint_secret, msg=f"{t}." + raw_body))``
  where the key is the whole ``whsec_...`` string as UTF-8 bytes, exactly as
  Stripe's own libraries use it;
- there are several ``v1`` values while an endpoint secret is being rolled
  (Stripe signs with the expiring and the new secret); ``v0`` is a legacy test
  scheme and is ignored.

We accept a delivery when any ``v1`` matches the signature computed with any of
the endpoint's configured secrets (more than one during our own rotation), and
when ``t`` is within ``tolerance`` seconds of our clock in either direction. The
signature is checked before the timestamp, as Stripe's libraries do, so
``SignatureExpired`` is only raised for a delivery that Stripe really signed (a
replay or a badly skewed clock), never for a forgery, which is
``SignatureMismatch``. Comparisons use ``hmac.compare_digest`` so the time taken
does not reveal how many leading characters of a guess were right.

Every failure raises a subclass of ``SignatureError``; the webhook controller
answers 400 and processes nothing. Messages are safe to log: they never contain
a secret, and never the signature we computed (which would help a forger).
"""

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE = 300
SCHEME = "v1"
# Real headers are a few hundred characters (one t, two or three signatures). A
# cap keeps a hostile header from costing more than a trivial amount of work.
MAX_HEADER_LENGTH = 4096
# ASCII digits only: str.isdigit() would also accept characters such as "²".
# Ten digits last until the year 2286; fifteen leave room without inviting
# absurdly long numbers.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")


class SignatureError(Exception):
    """The delivery is not proven to come from Stripe; process nothing."""


class SignatureMissing(SignatureError):
    """The request carries no ``Stripe-Signature`` header (or an empty one)."""


class SignatureMalformed(SignatureError):
    """The header is present but cannot be read as ``t=...,v1=...``."""


class SignatureExpired(SignatureError):
    """The signature is valid but its timestamp is outside the tolerance."""


class SignatureMismatch(SignatureError):
    """No ``v1`` signature matches any configured endpoint secret."""


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    """The parts of a ``Stripe-Signature`` header that verification uses.

    :ivar timestamp: the signed Unix time ``t``
    :ivar signatures: every ``v1`` value, in header order
    """

    timestamp: int
    signatures: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verified:
    """What a successful verification proved.

    :ivar timestamp: the signed Unix time ``t`` of the delivery
    :ivar secret_index: position in ``secrets`` of the secret that matched; a
        value above 0 means an older secret is still in use, which an
        administrator rotating secrets wants to know
    """

    timestamp: int
    secret_index: int


def _body_bytes(body):
    if isinstance(body, str):
        # Stripe signs the UTF-8 bytes it sent; a str can only be that if it was
        # decoded from the raw body, so encoding it back is exact.
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"body must be the raw request bytes, got {type(body).__name__}")


def _secret_list(secrets):
    # A bare string is one secret: iterating it would yield one-letter "secrets".
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    try:
        secret_list = list(secrets)
    except TypeError:
        raise TypeError("secrets must be a string or a list of strings") from None
    if not secret_list:
        raise ValueError("no Stripe webhook endpoint secret is configured")
    for position, secret in enumerate(secret_list):
        if not isinstance(secret, (str, bytes)):
            raise TypeError(
                f"endpoint secret #{position} must be a string, "
                f"got {type(secret).__name__}"
            )
        if not secret:
            # An empty key is a key everyone knows: refuse rather than accept
            # signatures anybody can compute.
            raise ValueError(f"endpoint secret #{position} is empty")
    return secret_list


def compute_signature(body, secret, timestamp):
    """Compute the ``v1`` signature Stripe would send for ``body`` at ``timestamp``.

    :param body: the raw request body (bytes; a str is encoded as UTF-8)
    :param secret: the endpoint secret, the full ``whsec_...`` string
    :param timestamp: Unix time in whole seconds
    :returns: the lowercase hexadecimal HMAC-SHA256
    :raises TypeError: for a body or secret of the wrong type
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("timestamp must be an integer number of seconds")
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    signed_payload = f"{timestamp}.".encode("ascii") + _body_bytes(body)
    return hmac.new(key, signed_payload, hashlib.sha256).hexdigest()


def sign(body, secrets, timestamp=None):
    """Build a ``Stripe-Signature`` header value the way Stripe does.

    Used by tests, the demo driver and the benchmarks to produce deliveries that
    ``verify`` accepts; Odoo itself never signs Stripe webhooks.

    :param body: the raw request body (bytes; a str is encoded as UTF-8)
    :param secrets: one endpoint secret, or a list to emit one ``v1`` per secret
        (what Stripe sends while a secret is being rolled)
    :param timestamp: Unix time in whole seconds; the current time when omitted
    :returns: ``"t=<timestamp>,v1=<hex>[,v1=<hex>...]"``
    :raises TypeError: for a body, secret or timestamp of the wrong type
    :raises ValueError: for an empty secret or an empty list of secrets
    """
    secret_list = _secret_list(secrets)
    if timestamp is None:
        timestamp = int(time.time())
    parts = [f"t={timestamp}"]
    parts.extend(
        f"{SCHEME}={compute_signature(body, secret, timestamp)}"
        for secret in secret_list
    )
    return ",".join(parts)


def parse_header(header):
    """Read the timestamp and the ``v1`` signatures of a header value.

    Elements are ``key=value`` pairs separated by commas, surrounding spaces
    ignored. Keys other than ``t`` and ``v1`` (``v0``, future schemes) are
    skipped. Exactly one ``t`` is required: two would leave us guessing which
    one the signature covers.

    :param header: the header value (str, or bytes as some servers give it), or
        ``None`` when the request had no such header
    :returns: a ``ParsedHeader``
    :raises SignatureMissing: ``None``, empty or blank header
    :raises SignatureMalformed: too long, not ASCII, an element without ``=``,
        no ``t``, several ``t``, a ``t`` that is not a non-negative integer, an
        empty ``v1``, or no ``v1`` at all
    """
    if header is None:
        raise SignatureMissing(f"the request has no {HEADER} header")
    if isinstance(header, (bytes, bytearray)):
        try:
            header = bytes(header).decode("ascii")
        except UnicodeDecodeError:
            raise SignatureMalformed(
                f"the {HEADER} header contains non-ASCII bytes"
            ) from None
    if not isinstance(header, str):
        raise TypeError(f"header must be a string, got {type(header).__name__}")
    if not header.strip():
        raise SignatureMissing(f"the {HEADER} header is empty")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureMalformed(
            f"the {HEADER} header is {len(header)} characters long "
            f"(more than {MAX_HEADER_LENGTH})"
        )
    if not header.isascii():
        # Also keeps hmac.compare_digest happy: it refuses non-ASCII str.
        raise SignatureMalformed(f"the {HEADER} header contains non-ASCII characters")

    timestamps = []
    signatures = []
    for element in header.split(","):
        key, separator, value = element.strip().partition("=")
        if not separator:
            raise SignatureMalformed(
                f"the {HEADER} header has an element without '=' "
                "(expected t=<unix time>,v1=<signature>)"
            )
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            if not value:
                raise SignatureMalformed(f"the {HEADER} header has an empty v1")
            signatures.append(value)

    if not timestamps:
        raise SignatureMalformed(f"the {HEADER} header has no timestamp (t=)")
    if len(timestamps) > 1:
        raise SignatureMalformed(f"the {HEADER} header has more than one timestamp")
    if not _TIMESTAMP_RE.fullmatch(timestamps[0]):
        raise SignatureMalformed(
            f"the {HEADER} timestamp is not a non-negative integer number of seconds"
        )
    if not signatures:
        raise SignatureMalformed(f"the {HEADER} header has no v1 signature")
    return ParsedHeader(timestamp=int(timestamps[0]), signatures=tuple(signatures))


def verify(header, body, secrets, tolerance=DEFAULT_TOLERANCE, now=None):
    """Prove that ``body`` was sent by Stripe to the endpoint owning ``secrets``.

    :param header: the ``Stripe-Signature`` header value, or ``None`` if absent
    :param body: the raw request body exactly as received (bytes); any change,
        even re-serialising the same JSON, breaks the signature
    :param secrets: the endpoint secret, or a list of secrets that are all
        currently accepted (the new and the old one during a rotation)
    :param tolerance: maximum distance in seconds between ``t`` and ``now``,
        in the past or in the future; ``None`` disables the check (only for
        re-checking a stored delivery, never for a live request)
    :param now: current Unix time; ``time.time()`` when omitted (tests pass it)
    :returns: a ``Verified`` with the signed timestamp and the matching secret
    :raises SignatureMissing: no header or an empty one
    :raises SignatureMalformed: the header cannot be read, or has no ``v1``
    :raises SignatureMismatch: no ``v1`` matches any of ``secrets``
    :raises SignatureExpired: authentic, but ``|now - t| > tolerance``
    :raises TypeError: body, secrets or tolerance of the wrong type (a bug in
        the caller, not a bad request)
    :raises ValueError: no secret, an empty secret, or a negative tolerance (a
        configuration problem, not a bad request)
    """
    secret_list = _secret_list(secrets)
    raw_body = _body_bytes(body)
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
    ):
        raise TypeError("tolerance must be a number of seconds or None")
    if tolerance is not None and tolerance < 0:
        raise ValueError("tolerance must not be negative")

    parsed = parse_header(header)

    matched_index = None
    for index, secret in enumerate(secret_list):
        expected = compute_signature(raw_body, secret, parsed.timestamp)
        # Compare with every candidate, without stopping at the first match, so
        # the time taken does not depend on where a valid signature sits.
        matches = [
            hmac.compare_digest(expected, candidate) for candidate in parsed.signatures
        ]
        if any(matches) and matched_index is None:
            matched_index = index
    if matched_index is None:
        raise SignatureMismatch(
            f"none of the {len(parsed.signatures)} v1 signature(s) matches the "
            f"{len(secret_list)} configured endpoint secret(s)"
        )

    if tolerance is not None:
        current = time.time() if now is None else now
        skew = current - parsed.timestamp
        if abs(skew) > tolerance:
            direction = "old" if skew > 0 else "in the future"
            # Up to millisecond precision, no trailing zeros: "300.5", "301".
            distance = f"{abs(skew):.3f}".rstrip("0").rstrip(".")
            raise SignatureExpired(
                f"the {HEADER} timestamp {parsed.timestamp} is "
                f"{distance} s {direction} (tolerance {tolerance} s)"
            )
    return Verified(timestamp=parsed.timestamp, secret_index=matched_index)
