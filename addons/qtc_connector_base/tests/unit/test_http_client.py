"""The outbound HTTP client, mocked at the ``requests`` boundary with ``responses``.

Each outcome a remote API can produce is mapped to what the job runner needs:
a response, a ``RetryableError`` (with its delay), or an ``HttpBusinessError``;
and nothing secret reaches a log line or an error message.
"""

import email.utils
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from qtc_connector_base.lib import http
from qtc_connector_base.lib.errors import BusinessError, RetryableError
from qtc_connector_base.lib.http import HttpBusinessError, HttpClient

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_0123456789abcdef"
BASE = "https://api.example.test/v1"
URL = f"{BASE}/invoices"
URL_WITH_QUERY = f"{URL}?api_key={API_KEY}&expand=lines"
LOGGER = "qtc_connector_base.lib.http"


class CountingLimiter:
    """Stands in for ``TokenBucket``: counts ``acquire`` calls, never waits."""

    def __init__(self):
        self.calls = 0

    def acquire(self):
        self.calls += 1
        return 0.0


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def limiter():
    return CountingLimiter()


@pytest.fixture
def client(limiter):
    return HttpClient(secrets=[API_KEY, WEBHOOK_SECRET], rate_limiter=limiter)


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def assert_no_leak(text):
    """``text`` holds no known secret and no query string of the URL."""
    assert API_KEY not in text
    assert WEBHOOK_SECRET not in text
    assert "api_key=" not in text
    assert "expand=lines" not in text
    assert "?" not in text


# -- success --------------------------------------------------------------------


def test_200_returns_the_response(mocked, client, limiter, logs):
    mocked.get(URL, json={"id": "in_1"}, status=200)
    response = client.request("GET", URL_WITH_QUERY)
    assert response.status_code == 200
    assert response.json() == {"id": "in_1"}
    assert limiter.calls == 1
    # The query is still sent: stripping it is for logs only.
    assert mocked.calls[0].request.url == URL_WITH_QUERY
    assert_no_leak(logs.text)
    assert f"GET {URL} -> 200 in " in logs.text


@pytest.mark.parametrize("status", [201, 204, 304])
def test_other_non_error_statuses_are_returned(mocked, client, status):
    mocked.post(URL, status=status)
    assert client.request("POST", URL).status_code == status


def test_request_kwargs_are_passed_to_requests(mocked, client):
    mocked.post(URL, json={}, status=200)
    client.request("POST", URL, json={"amount": 100}, params={"x": "1"})
    sent = mocked.calls[0].request
    assert sent.body == b'{"amount": 100}'
    assert sent.url == f"{URL}?x=1"


def test_default_and_per_call_timeouts(mocked, limiter):
    mocked.get(URL, status=200)
    client = HttpClient(rate_limiter=limiter)
    client.request("GET", URL)
    client.request("GET", URL, timeout=(1.0, 2.0))
    assert mocked.calls[0].request.req_kwargs["timeout"] == http.DEFAULT_TIMEOUT
    assert mocked.calls[1].request.req_kwargs["timeout"] == (1.0, 2.0)
    assert http.DEFAULT_TIMEOUT == (5.0, 30.0)


def test_client_timeout_is_used_when_call_gives_none(mocked):
    mocked.get(URL, status=200)
    HttpClient(timeout=(3.0, 9.0)).request("GET", URL)
    assert mocked.calls[0].request.req_kwargs["timeout"] == (3.0, 9.0)


def test_given_session_is_reused(mocked):
    session = requests.Session()
    client = HttpClient(session=session)
    assert client.session is session
    mocked.get(URL, status=200)
    client.request("GET", URL)
    assert len(mocked.calls) == 1


def test_without_limiter_requests_still_go_out(mocked):
    mocked.get(URL, status=200)
    assert HttpClient().request("GET", URL).status_code == 200


# -- headers --------------------------------------------------------------------


def test_given_correlation_id_is_sent_and_logged(mocked, client, logs):
    mocked.get(URL, status=200)
    client.request("GET", URL, correlation_id="evt-42-corr")
    assert mocked.calls[0].request.headers["X-Correlation-Id"] == "evt-42-corr"
    assert "[evt-42-corr]" in logs.text


def test_correlation_id_is_generated_when_not_given(mocked, client, logs):
    mocked.get(URL, status=200)
    client.request("GET", URL)
    client.request("GET", URL)
    first = mocked.calls[0].request.headers[http.CORRELATION_HEADER]
    second = mocked.calls[1].request.headers[http.CORRELATION_HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second
    assert f"[{first}]" in logs.text


def test_caller_headers_are_sent_and_not_mutated(mocked, client):
    mocked.get(URL, status=200)
    headers = {"Accept": "application/json"}
    client.request("GET", URL, headers=headers, idempotency_key="idem-1")
    sent = mocked.calls[0].request.headers
    assert sent["Accept"] == "application/json"
    assert headers == {"Accept": "application/json"}


def test_idempotency_key_sent_when_given(mocked, client):
    mocked.post(URL, status=200)
    client.request("POST", URL, idempotency_key="order-7-payment-1")
    assert mocked.calls[0].request.headers["Idempotency-Key"] == "order-7-payment-1"


@pytest.mark.parametrize("idempotency_key", [None, ""])
def test_no_idempotency_key_header_when_not_given(mocked, client, idempotency_key):
    mocked.post(URL, status=200)
    client.request("POST", URL, idempotency_key=idempotency_key)
    assert "Idempotency-Key" not in mocked.calls[0].request.headers


# -- retryable failures ---------------------------------------------------------


def test_429_with_retry_after_seconds(mocked, client, limiter):
    mocked.get(URL, status=429, headers={"Retry-After": "7"})
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL_WITH_QUERY)
    assert caught.value.delay == 7.0
    assert str(caught.value) == f"GET {URL} answered 429"
    assert limiter.calls == 1


def test_429_with_http_date_retry_after(mocked, client):
    when = datetime.now(UTC) + timedelta(seconds=120)
    mocked.get(
        URL,
        status=429,
        headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)},
    )
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL)
    # The date has one-second resolution and a little time passes meanwhile.
    assert 115.0 <= caught.value.delay <= 120.0


def test_429_with_past_http_date_means_now(mocked, client):
    mocked.get(
        URL, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL)
    assert caught.value.delay == 0.0


def test_429_without_retry_after_leaves_delay_to_backoff(mocked, client):
    mocked.get(URL, status=429)
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL)
    assert caught.value.delay is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_retryable(mocked, client, status):
    mocked.get(URL, status=status, body="upstream down")
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL)
    assert str(caught.value) == f"GET {URL} answered {status}"
    assert caught.value.delay is None
    assert not isinstance(caught.value, BusinessError)


def test_503_with_retry_after(mocked, client):
    mocked.get(URL, status=503, headers={"Retry-After": "30"})
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL)
    assert caught.value.delay == 30.0


def test_timeout_is_retryable(mocked, client, limiter, logs):
    mocked.get(URL, body=requests.Timeout(f"read timed out for {URL_WITH_QUERY}"))
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL_WITH_QUERY, correlation_id="c-1")
    assert str(caught.value) == f"GET {URL} timed out"
    assert caught.value.delay is None
    # The requests exception (which names the full URL) is not chained.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True
    assert limiter.calls == 1
    assert f"GET {URL} timed out [c-1]" in logs.text
    assert_no_leak(logs.text)


def test_connect_timeout_is_reported_as_timeout(mocked, client):
    # ConnectTimeout is both a Timeout and a ConnectionError.
    mocked.get(URL, body=requests.ConnectTimeout("connect timeout"))
    with pytest.raises(RetryableError, match="timed out"):
        client.request("GET", URL)


def test_connection_error_is_retryable(mocked, client, limiter, logs):
    mocked.get(URL, body=requests.ConnectionError(f"cannot reach {URL_WITH_QUERY}"))
    with pytest.raises(RetryableError) as caught:
        client.request("GET", URL_WITH_QUERY)
    assert str(caught.value) == f"GET {URL} unreachable (ConnectionError)"
    assert caught.value.__cause__ is None
    assert limiter.calls == 1
    assert "unreachable: ConnectionError" in logs.text
    assert_no_leak(logs.text)
    assert_no_leak(str(caught.value))


def test_ssl_error_is_a_connection_error(mocked, client):
    mocked.get(URL, body=requests.exceptions.SSLError("bad certificate"))
    with pytest.raises(RetryableError, match=r"unreachable \(SSLError\)"):
        client.request("GET", URL)


# -- business failures ----------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_4xx_is_a_business_error_with_masked_excerpt(mocked, client, status, logs):
    body = (
        '{"error": {"message": "No such invoice", '
        f'"request_key": "{API_KEY}", "hint": "{WEBHOOK_SECRET}"}}}}'
    )
    mocked.post(URL, status=status, body=body)
    with pytest.raises(HttpBusinessError) as caught:
        client.request("POST", URL_WITH_QUERY)
    error = caught.value
    expected_excerpt = (
        '{"error": {"message": "No such invoice", "request_key": "***", "hint": "***"}}'
    )
    assert error.status == status
    assert error.body_excerpt == expected_excerpt
    assert error.problems == [expected_excerpt]
    assert error.category == "remote_rejected"
    assert str(error) == f"POST {URL} was rejected with {status}"
    assert error.details() == f"{error}\n- {expected_excerpt}"
    assert isinstance(error, BusinessError)
    assert not isinstance(error, RetryableError)
    assert_no_leak(error.details())
    # The body goes to DEBUG logs, redacted as well.
    assert '"request_key": "***"' in logs.text
    assert_no_leak(logs.text)


def test_4xx_with_empty_body_has_no_problem_line(mocked, client):
    mocked.delete(URL, status=404, body="")
    with pytest.raises(HttpBusinessError) as caught:
        client.request("DELETE", URL)
    assert caught.value.body_excerpt == ""
    assert caught.value.problems == []


def test_excerpt_is_capped(mocked, client):
    mocked.get(URL, status=422, body="x" * 2000)
    with pytest.raises(HttpBusinessError) as caught:
        client.request("GET", URL)
    assert caught.value.body_excerpt == "x" * http.BODY_EXCERPT
    assert http.BODY_EXCERPT == 500


def test_secret_straddling_the_excerpt_cut_is_not_partially_leaked(mocked, client):
    # Regression: the body was cut before redaction, leaving "sk_test_4e" behind.
    mocked.get(URL, status=422, body="x" * 490 + API_KEY + "tail")
    with pytest.raises(HttpBusinessError) as caught:
        client.request("GET", URL)
    assert caught.value.body_excerpt == "x" * 490 + "***" + "tail"
    assert API_KEY[:8] not in caught.value.body_excerpt


def test_passthrough_status_is_returned(mocked, client):
    mocked.get(URL, status=401, json={"error": "expired token"})
    response = client.request("GET", URL, passthrough=(401,))
    assert response.status_code == 401
    assert response.json() == {"error": "expired token"}


def test_status_not_in_passthrough_still_raises(mocked, client):
    mocked.get(URL, status=403)
    with pytest.raises(HttpBusinessError) as caught:
        client.request("GET", URL, passthrough=(401,))
    assert caught.value.status == 403


def test_passthrough_can_take_a_retryable_status(mocked, client):
    mocked.get(URL, status=503)
    assert client.request("GET", URL, passthrough=(503,)).status_code == 503


def test_http_business_error_category_can_be_overridden():
    error = HttpBusinessError("rejected", status=409, category="conflict")
    assert error.category == "conflict"
    assert error.status == 409
    assert error.body_excerpt == ""


# -- rate limiting --------------------------------------------------------------


def test_rate_limiter_acquired_once_per_request(mocked, client, limiter):
    mocked.get(URL, status=200)
    mocked.post(URL, status=422)
    for _ in range(3):
        client.request("GET", URL)
    with pytest.raises(HttpBusinessError):
        client.request("POST", URL)
    assert limiter.calls == 4
    assert len(mocked.calls) == 4


def test_rate_limiter_is_acquired_before_sending(mocked):
    order = []

    class RecordingLimiter:
        def acquire(self):
            order.append("acquire")

    def callback(request):
        order.append("send")
        return (200, {}, "")

    mocked.add_callback(responses.GET, URL, callback=callback)
    HttpClient(rate_limiter=RecordingLimiter()).request("GET", URL)
    assert order == ["acquire", "send"]


# -- logs and URLs --------------------------------------------------------------


def test_logs_never_contain_secrets_or_query_across_outcomes(mocked, client, logs):
    mocked.get(URL, status=200, body=f"ok {API_KEY}")
    mocked.post(URL, status=400, body=f"bad key {API_KEY}")
    mocked.put(URL, status=500, body=f"oops {WEBHOOK_SECRET}")
    mocked.patch(URL, body=requests.Timeout(URL_WITH_QUERY))
    mocked.delete(URL, body=requests.ConnectionError(URL_WITH_QUERY))
    client.request("GET", URL_WITH_QUERY)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises((RetryableError, HttpBusinessError)):
            client.request(method, URL_WITH_QUERY, json={"token": API_KEY})
    assert len(logs.records) >= 5
    assert_no_leak(logs.text)
    for record in logs.records:
        assert_no_leak(record.getMessage())


def test_secret_in_url_path_is_masked_in_logs_and_errors(mocked, client, logs):
    url = f"https://hooks.example.test/bot{API_KEY}/send"
    mocked.post(url, status=404)
    with pytest.raises(HttpBusinessError) as caught:
        client.request("POST", url)
    shown = "https://hooks.example.test/bot***/send"
    assert str(caught.value) == f"POST {shown} was rejected with 404"
    assert_no_leak(logs.text)


def test_credentials_in_url_are_not_logged(mocked, client, logs):
    url = "https://user:hunter2pass@api.example.test/v1/invoices"
    mocked.get(url, status=500)
    with pytest.raises(RetryableError) as caught:
        client.request("GET", url)
    assert "hunter2pass" not in logs.text
    assert "hunter2pass" not in str(caught.value)
    assert str(caught.value) == f"GET {URL} answered 500"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (URL_WITH_QUERY, URL),
        (f"{URL}#frag", URL),
        (f"{URL}?a=1#frag", URL),
        (URL, URL),
        ("https://u:p@api.example.test:8443/p?q=1", "https://api.example.test:8443/p"),
        ("https://token@api.example.test/p", "https://api.example.test/p"),
        ("/relative/path?x=1", "/relative/path"),
    ],
)
def test_strip_query(url, expected):
    assert http.strip_query(url) == expected


# -- Retry-After parsing --------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Sat, 01 Jun 2024 12:01:30 GMT", 90.0),
        ("Sat, 01 Jun 2024 11:59:00 GMT", 0.0),  # in the past: retry now
        ("Sat, 01 Jun 2024 12:00:10 -0000", 10.0),  # naive date read as UTC
        ("Sat, 01 Jun 2024 14:00:05 +0200", 5.0),
        (None, None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("\u00b2", None),  # isdigit() but not a number int()/float() read
    ],
)
def test_parse_retry_after(value, expected):
    assert http.parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_defaults_to_current_time():
    when = datetime.now(UTC) + timedelta(seconds=60)
    delay = http.parse_retry_after(email.utils.format_datetime(when, usegmt=True))
    assert 55.0 <= delay <= 60.0


@responses.activate
def test_json_token_in_an_error_body_is_masked_by_key():
    url = "https://login.example.test/services/oauth2/token"
    responses.add(
        responses.POST,
        url,
        status=400,
        json={"access_token": "00Dfresh!token", "error": "invalid_grant"},
    )
    client = HttpClient()
    with pytest.raises(HttpBusinessError) as caught:
        client.request("POST", url)
    assert "00Dfresh!token" not in caught.value.body_excerpt
    assert '"error": "invalid_grant"' in caught.value.body_excerpt
