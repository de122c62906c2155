"""HMAC-SHA256 request signatures of the QTC webhook scheme.

Header ``X-QTC-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``; ``v1`` is
``HMAC-SHA256(secret, f"{t}.".encode() + raw_body)``. Signing the timestamp with the
body makes a captured request useless after ``tolerance`` seconds (replay), and
several ``v1`` values let a sender sign with an old and a new secret during a
rotation. Verification is constant-time and accepts any of the receiver's active
secrets. Messages never contain a secret or a computed digest.
"""

import hashlib
import hmac
import time

HEADER = "X-QTC-Signature"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """The request is not authentic; answer 401 and process nothing."""


class SignatureMissing(SignatureError):
    pass


class SignatureMalformed(SignatureError):
    pass


class SignatureExpired(SignatureError):
    pass


class SignatureMismatch(SignatureError):
    pass


def compute(secret, timestamp, body):
    """Hex HMAC-SHA256 of ``f"{timestamp}." + body`` under ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(
        key, f"{int(timestamp)}.".encode() + body, hashlib.sha256
    ).hexdigest()


def sign(body, secrets, timestamp=None):
    """Header value signing ``body`` with each of ``secrets`` (str or list)."""
    if isinstance(secrets, (str, bytes)):
        secrets = [secrets]
    timestamp = int(time.time() if timestamp is None else timestamp)
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={compute(secret, timestamp, body)}" for secret in secrets)
    return ",".join(parts)


def parse_header(header):
    """Split a header into ``(timestamp, [v1 digests])``.

    :raises SignatureMissing: empty header
    :raises SignatureMalformed: no integer ``t`` or no ``v1``
    """
    if not header or not header.strip():
        raise SignatureMissing("signature header missing")
    timestamp = None
    digests = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureMalformed("signature header item without '='")
        if key == "t":
            # isdigit() alone accepts "²", which int() then rejects with a bare
            # ValueError: only ASCII digits are a timestamp.
            if not (value.isascii() and value.isdigit()):
                raise SignatureMalformed("signature timestamp is not an integer")
            timestamp = int(value)
        elif key == "v1":
            # compare_digest raises TypeError on non-ASCII str: refuse it here.
            if not value.isascii():
                raise SignatureMalformed("signature v1 is not hexadecimal")
            digests.append(value.lower())
    if timestamp is None:
        raise SignatureMalformed("signature header has no timestamp")
    if not digests:
        raise SignatureMalformed("signature header has no v1 signature")
    return timestamp, digests


def verify(header, body, secrets, tolerance=DEFAULT_TOLERANCE, now=None):
    """Check a signature header against the raw body.

    :param secrets: the receiver's active secrets (current, and previous during a
        rotation), or one str/bytes secret; empty secrets are ignored
    :returns: the signed timestamp
    :raises SignatureError: any reason the request is not authentic
    """
    if isinstance(secrets, (str, bytes)):
        # Iterating a lone str would make each character a "secret": a forger
        # could then sign with a one-character key.
        secrets = [secrets]
    timestamp, digests = parse_header(header)
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureExpired("signature timestamp outside the tolerance window")
    active = [secret for secret in secrets if secret]
    if not active:
        raise SignatureMismatch("no active signing secret configured")
    for secret in active:
        expected = compute(secret, timestamp, body)
        # Compare against every digest without short-circuiting on the digest
        # position: each comparison is constant-time on its own.
        if any(hmac.compare_digest(expected, digest) for digest in digests):
            return timestamp
    raise SignatureMismatch("signature does not match")
