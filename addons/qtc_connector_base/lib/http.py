"""The outbound HTTP client every connector calls remote APIs through.

One ``requests.Session`` per backend (connection reuse), a timeout on every call,
an optional per-backend rate limit, a correlation id header so the remote side's
logs can be joined with ours, and an ``Idempotency-Key`` where the caller gives one.

Failures are classified for the job runner:

- timeouts, connection errors, 429 and 5xx -> ``RetryableError`` (with the
  ``Retry-After`` delay when the server sent one);
- any other 4xx -> ``HttpBusinessError`` (a ``BusinessError`` carrying the status
  and a redacted excerpt of the body), unless the caller listed the status in
  ``passthrough`` to handle it (e.g. 401 to refresh a token).

Logs name the method, the URL without its query string, the status and the time
taken; bodies only at DEBUG level and redacted. No secret reaches a log line.
"""

import email.utils
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import requests

from .errors import BusinessError, RetryableError
from .redact import redact_mapping, redact_text

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read
CORRELATION_HEADER = "X-Correlation-Id"
BODY_EXCERPT = 500


class HttpBusinessError(BusinessError):
    """A 4xx answer retrying will not fix; carries the status and body excerpt."""

    def __init__(self, message, status, body_excerpt="", **kwargs):
        kwargs.setdefault("category", "remote_rejected")
        super().__init__(message, **kwargs)
        self.status = status
        self.body_excerpt = body_excerpt


def parse_retry_after(value, now=None):
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date).

    :returns: a float >= 0, or ``None`` when the header is absent or unreadable
    """
    if not value:
        return None
    value = value.strip()
    # isdigit() alone accepts "²", which float() rejects: ASCII digits only.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def strip_query(url):
    """The URL without credentials, query string and fragment.

    Queries may carry tokens, and ``user:password@`` in the host part is a
    credential too.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class HttpClient:
    """Send requests for one backend.

    :param secrets: the backend's secret values, masked in any logged text
    :param rate_limiter: an object with ``acquire()`` (``TokenBucket``) or None
    :param timeout: default ``(connect, read)`` timeout in seconds
    :param session: a ``requests.Session`` to reuse (one per backend)
    """

    def __init__(
        self, secrets=(), rate_limiter=None, timeout=DEFAULT_TIMEOUT, session=None
    ):
        self.secrets = tuple(secrets)
        self.rate_limiter = rate_limiter
        self.timeout = timeout
        self.session = session or requests.Session()

    def request(
        self,
        method,
        url,
        *,
        correlation_id=None,
        idempotency_key=None,
        headers=None,
        passthrough=(),
        timeout=None,
        **kwargs,
    ):
        """Send one request and classify its outcome.

        :param passthrough: statuses returned to the caller instead of raising
        :param kwargs: passed to ``requests`` (json, data, params, auth...)
        :returns: the ``requests.Response`` (2xx, 3xx or a passthrough status)
        :raises RetryableError: timeout, connection error, 429, 5xx
        :raises HttpBusinessError: other 4xx
        """
        headers = dict(headers or {})
        correlation_id = correlation_id or uuid.uuid4().hex
        headers.setdefault(CORRELATION_HEADER, correlation_id)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        # Some APIs put a token in the path: mask known secrets there too.
        shown_url = redact_text(strip_query(url), self.secrets)
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, headers=headers, timeout=timeout or self.timeout, **kwargs
            )
        except requests.Timeout:
            _logger.warning("%s %s timed out [%s]", method, shown_url, correlation_id)
            raise RetryableError(f"{method} {shown_url} timed out") from None
        except requests.ConnectionError as exc:
            reason = redact_text(type(exc).__name__, self.secrets)
            _logger.warning(
                "%s %s unreachable: %s [%s]", method, shown_url, reason, correlation_id
            )
            raise RetryableError(
                f"{method} {shown_url} unreachable ({reason})"
            ) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status_code
        _logger.info(
            "%s %s -> %s in %.0f ms [%s]",
            method,
            shown_url,
            status,
            elapsed_ms,
            correlation_id,
        )
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("response body: %s", self.excerpt(response))
        if status in passthrough or status < 400:
            return response
        if status == 429 or status >= 500:
            delay = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"{method} {shown_url} answered {status}", delay=delay)
        excerpt = self.excerpt(response)
        raise HttpBusinessError(
            f"{method} {shown_url} was rejected with {status}",
            status=status,
            body_excerpt=excerpt,
            problems=[excerpt] if excerpt else [],
        )

    def excerpt(self, response):
        """The start of a response body with known secrets masked, and in JSON
        bodies every value under a credential-like key (an OAuth token endpoint
        returns a fresh ``access_token`` no stored secret would match)."""
        try:
            text = response.text
        except (UnicodeDecodeError, AttributeError):
            return ""
        try:
            text = json.dumps(redact_mapping(json.loads(text)))
        except ValueError:
            pass
        # Redact before cutting: a secret straddling the cut would otherwise
        # survive as an unmatched (and unmasked) prefix.
        return redact_text(text, self.secrets)[:BODY_EXCERPT]
