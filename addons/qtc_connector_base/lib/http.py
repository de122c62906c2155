"""The outbound HTTP client every connector calls remote APIs through.

One ``requests.Session`` per backend (connection reuse), a timeout on every call,
an optional per-backend rate limit, a correlation id header so the remote side's
logs can be joined with ours, and an ``Idempotency-Key`` where the caller gives one.

Where requests may go is decided before anything is sent
(``destinations.DestinationPolicy``): the provider's own hosts only for a
request carrying the backend's credentials, https only for production
backends, and no loopback, private, link-local, shared, multicast or metadata
address. That last check is made again on every connection, on the address
the socket actually connects to (after DNS resolution, by a transport adapter
that resolves, checks and connects to the checked address while keeping the
host name for TLS and the ``Host`` header): a name that resolves to a public
address for a check and to an internal one for the connection gains nothing.
Redirects are never followed for a request other than GET (its body would be
sent again elsewhere); a GET follows at most ``MAX_REDIRECTS``, each hop
checked like the first, and credentials are dropped when the host changes.

Failures are classified for the job runner:

- timeouts, connection errors, 429 and 5xx -> ``RetryableError`` (with the
  ``Retry-After`` delay when the server sent one);
- any other 4xx, and a redirect answered to a request that is not a GET ->
  ``HttpBusinessError`` (a ``BusinessError`` carrying the status and a redacted
  excerpt of the body), unless the caller listed the status in ``passthrough``
  to handle it (e.g. 401 to refresh a token);
- a destination the policy refuses -> ``OutboundRefused`` (a configuration
  ``BusinessError`` saying what to change); nothing was sent.

Logs name the method, the URL without its query string, the status and the time
taken; bodies only at DEBUG level and redacted. No secret reaches a log line.
"""

import email.utils
import json
import logging
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection as urllib3_connection
from urllib3 import connectionpool as urllib3_pools
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .destinations import DestinationPolicy, OutboundRefused, secret_in_request
from .errors import BusinessError, RetryableError
from .redact import redact_mapping, redact_text

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read
CORRELATION_HEADER = "X-Correlation-Id"
BODY_EXCERPT = 500
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


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


class _CheckedConnectMixin:
    """Resolve the host, check every address with the policy, and connect to
    a checked address. The host name stays the connection's ``host`` (TLS
    server name, certificate check, ``Host`` header): only the address the
    socket connects to is pinned."""

    qtc_policy = DestinationPolicy()
    qtc_resolver = staticmethod(socket.getaddrinfo)

    def _new_conn(self):
        host = self._dns_host
        infos = self.qtc_resolver(host, self.port, 0, socket.SOCK_STREAM)
        addresses = []
        for _family, _type, _proto, _canonname, sockaddr in infos:
            address = sockaddr[0]
            # Every address the name has must pass: a name answering one
            # public and one internal address is refused, not tried in turn.
            self.qtc_policy.check_address(host, self.port, address)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise NewConnectionError(self, f"{host} resolves to no address")
        last_error = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    last_error = exc
        finally:
            self._dns_host = host
        raise last_error


def checked_adapter(policy, resolver=None, **kwargs):
    """A ``requests`` transport adapter whose connections are checked by
    ``policy`` at connect time (see ``_CheckedConnectMixin``).

    :param resolver: ``socket.getaddrinfo``-like function (tests)
    """
    attrs = {"qtc_policy": policy}
    if resolver is not None:
        attrs["qtc_resolver"] = staticmethod(resolver)
    http_connection = type(
        "CheckedHTTPConnection",
        (_CheckedConnectMixin, urllib3_connection.HTTPConnection),
        attrs,
    )
    https_connection = type(
        "CheckedHTTPSConnection",
        (_CheckedConnectMixin, urllib3_connection.HTTPSConnection),
        attrs,
    )
    pool_classes = {
        "http": type(
            "CheckedHTTPConnectionPool",
            (urllib3_pools.HTTPConnectionPool,),
            {"ConnectionCls": http_connection},
        ),
        "https": type(
            "CheckedHTTPSConnectionPool",
            (urllib3_pools.HTTPSConnectionPool,),
            {"ConnectionCls": https_connection},
        ),
    }

    class CheckedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **pool_kwargs):
            super().init_poolmanager(*args, **pool_kwargs)
            self.poolmanager.pool_classes_by_scheme = dict(pool_classes)

        def proxy_manager_for(self, proxy, **proxy_kwargs):
            if proxy.lower().startswith("socks"):
                # A SOCKS proxy resolves and connects by itself: nothing
                # could be checked.
                raise OutboundRefused(
                    "SOCKS proxies are not supported for connector requests: "
                    "use an HTTP(S) proxy."
                )
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            manager.pool_classes_by_scheme = dict(pool_classes)
            return manager

    return CheckedAdapter(**kwargs)


def checked_session(policy, session=None, resolver=None):
    """``session`` (or a new one) with checked adapters for http and https."""
    session = session or requests.Session()
    adapter = checked_adapter(policy, resolver=resolver)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class HttpClient:
    """Send requests for one backend.

    :param secrets: the backend's secret values, masked in any logged text
        and, with ``policy.secrets_to_provider_only``, refused in requests to
        hosts that are not the provider's
    :param rate_limiter: an object with ``acquire()`` (``TokenBucket``) or None
    :param timeout: default ``(connect, read)`` timeout in seconds
    :param session: a ``requests.Session`` to reuse (one per backend); its
        http and https adapters are replaced by checked ones
    :param policy: the ``DestinationPolicy``; by default any public http(s)
        address, nothing internal
    :param resolver: ``socket.getaddrinfo``-like function (tests)
    """

    def __init__(
        self,
        secrets=(),
        rate_limiter=None,
        timeout=DEFAULT_TIMEOUT,
        session=None,
        policy=None,
        resolver=None,
    ):
        self.secrets = tuple(secrets)
        self.rate_limiter = rate_limiter
        self.timeout = timeout
        self.policy = policy or DestinationPolicy()
        self.session = checked_session(self.policy, session, resolver)

    def check(self, method, url, headers=None, **kwargs):
        """Refuse a request the policy does not allow, before sending it.

        :raises OutboundRefused: what to change, without secrets
        """
        carries_secret = self.policy.scans_for_secrets and secret_in_request(
            self.secrets,
            url,
            headers=headers,
            params=kwargs.get("params"),
            auth=kwargs.get("auth"),
            body=kwargs.get("data") or _json_text(kwargs.get("json")),
        )
        try:
            self.policy.check_url(url, carries_secret=carries_secret)
        except OutboundRefused as exc:
            masked = redact_text(str(exc), self.secrets)
            _logger.warning("%s %s refused: %s", method, strip_query(url), masked)
            raise OutboundRefused(
                masked,
                suggested_action=exc.suggested_action,
            ) from None

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
        :raises OutboundRefused: the destination is not allowed (nothing sent)
        :raises RetryableError: timeout, connection error, 429, 5xx
        :raises HttpBusinessError: other 4xx; a redirect of a request that is
            not a GET
        """
        headers = dict(headers or {})
        correlation_id = correlation_id or uuid.uuid4().hex
        headers.setdefault(CORRELATION_HEADER, correlation_id)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        self.check(method, url, headers, **kwargs)
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        response = self._send(
            method, url, headers, timeout or self.timeout, correlation_id, kwargs
        )
        hops = 0
        while method.upper() == "GET" and _redirect_target(response):
            hops += 1
            target = urljoin(response.url or url, _redirect_target(response))
            if hops > MAX_REDIRECTS:
                raise HttpBusinessError(
                    f"GET {self.shown(url)} was redirected more than "
                    f"{MAX_REDIRECTS} times",
                    status=response.status_code,
                )
            if urlsplit(target).netloc.lower() != urlsplit(url).netloc.lower():
                # Credentials were meant for the first host only.
                headers.pop("Authorization", None)
                kwargs.pop("auth", None)
            self.check(method, target, headers, **kwargs)
            url = target
            response = self._send(
                method, url, headers, timeout or self.timeout, correlation_id, kwargs
            )
        return self._classify(method, url, response, passthrough)

    def shown(self, url):
        """``url`` as logs and errors show it: no query, no known secret."""
        # Some APIs put a token in the path: mask known secrets there too.
        return redact_text(strip_query(url), self.secrets)

    def _send(self, method, url, headers, timeout, correlation_id, kwargs):
        shown_url = self.shown(url)
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                **kwargs,
            )
        except OutboundRefused as exc:
            # Refused at connect time (the name resolved to an internal
            # address): nothing was sent.
            masked = redact_text(str(exc), self.secrets)
            _logger.warning("%s %s refused: %s", method, shown_url, masked)
            raise OutboundRefused(
                masked, suggested_action=exc.suggested_action
            ) from None
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
        except requests.RequestException as exc:
            reason = type(exc).__name__
            _logger.warning(
                "%s %s not sent: %s [%s]", method, shown_url, reason, correlation_id
            )
            raise OutboundRefused(
                f"{method} {shown_url} could not be sent ({reason}): correct the URL."
            ) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        _logger.info(
            "%s %s -> %s in %.0f ms [%s]",
            method,
            shown_url,
            response.status_code,
            elapsed_ms,
            correlation_id,
        )
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("response body: %s", self.excerpt(response))
        return response

    def _classify(self, method, url, response, passthrough):
        shown_url = self.shown(url)
        status = response.status_code
        if status in passthrough:
            return response
        if status in REDIRECT_STATUSES and _redirect_target(response):
            # Not followed: the body would be sent again to another place.
            target = self.shown(urljoin(url, _redirect_target(response)))
            raise HttpBusinessError(
                f"{method} {shown_url} was redirected ({status}) to {target}; "
                f"only GET requests follow redirects: use the final URL",
                status=status,
                category="configuration",
            )
        if status < 400:
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


def _redirect_target(response):
    if response.status_code in REDIRECT_STATUSES:
        return response.headers.get("Location") or None
    return None


def _json_text(value):
    if value is None:
        return None
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
