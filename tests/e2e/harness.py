"""Shared pieces of the demo driver and the fault suite (plain Python, no Odoo).

- ``Rpc``: Odoo's JSON-RPC (``/jsonrpc``), as a logged-in user would call it;
- ``qtc_signed`` / ``stripe_signed``: request headers signed with the documented
  schemes, through the addons' own ``lib/signature.py`` modules;
- ``SalesforceStandIn``: a loopback HTTPS server answering the Salesforce REST
  calls the connector makes (token, SOQL query, sObject Collections, limits),
  with a switch to answer 503 for a while and a per-record delay;
- ``make_tls_files``: a local certificate authority and a 127.0.0.1 server
  certificate for the stand-in, and a CA bundle for the Odoo server's
  ``REQUESTS_CA_BUNDLE``: the bundle already configured in the environment
  (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``, ``CURL_CA_BUNDLE``), the usual
  public roots and that CA, so the stand-in is trusted in addition to what was
  trusted before, never instead;
- ``JobWatch``: what the jobs a driver waits for are going through (the last
  error of a retrying job), and the permanent failures to stop on at once;
- ``OdooServer``: an Odoo process with HTTP workers (``docker/odoo_local.py``),
  its worker processes, and their PostgreSQL backends;
- ``outbound_message``: a Salesforce Outbound Message SOAP envelope.

Everything talks to 127.0.0.1 only.
"""

import datetime
import importlib.util
import itertools
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import requests

ROOT = Path(__file__).resolve().parents[2]
ADDONS = ROOT / "addons"
LAUNCHER = ROOT / "docker" / "odoo_local.py"
STATE_DIR = ROOT / ".qtc"
API_VERSION = "v61.0"
# Environment variables naming a CA bundle file that Odoo's outbound requests
# (or Python's ssl module) would otherwise use.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
PEM_CERTIFICATE_RE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", re.DOTALL
)


def _load(name, path):
    """Import a plain module of an addon by path (the addons import odoo;
    their lib/ modules do not)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


qtc_signature = _load(
    "qtc_signature", ADDONS / "qtc_connector_base" / "lib" / "signature.py"
)
stripe_signature = _load(
    "stripe_signature", ADDONS / "qtc_stripe" / "lib" / "signature.py"
)


def qtc_signed(body, secret):
    """Headers of a JSON body signed with ``X-QTC-Signature``."""
    return {
        "Content-Type": "application/json",
        qtc_signature.HEADER: qtc_signature.sign(body, secret),
    }


def stripe_signed(body, secret):
    """Headers of a JSON body signed with ``Stripe-Signature``."""
    return {
        "Content-Type": "application/json",
        stripe_signature.HEADER: stripe_signature.sign(body, secret),
    }


# ------------------------------------------------------------------ JSON-RPC


class RpcError(Exception):
    pass


class Rpc:
    """``execute_kw`` over ``/jsonrpc`` as ``login``."""

    _ids = itertools.count(1)

    def __init__(self, url, db, login="admin", password="admin", timeout=120):  # noqa: S107 - the demo database's documented login
        self.url = url.rstrip("/")
        self.db = db
        self.password = password
        self.timeout = timeout
        self.session = requests.Session()
        self.uid = self._call("common", "login", db, login, password)
        if not self.uid:
            raise RpcError(f"login {login!r} refused by database {db!r}")

    def _call(self, service, method, *args):
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": next(self._ids),
            "params": {"service": service, "method": method, "args": list(args)},
        }
        response = self.session.post(
            f"{self.url}/jsonrpc", json=payload, timeout=self.timeout
        )
        response.raise_for_status()
        answer = response.json()
        if answer.get("error"):
            data = answer["error"].get("data") or {}
            raise RpcError(data.get("message") or answer["error"].get("message"))
        return answer["result"]

    def __call__(self, model, method, *args, **kwargs):
        return self._call(
            "object",
            "execute_kw",
            self.db,
            self.uid,
            self.password,
            model,
            method,
            list(args),
            kwargs,
        )

    def search_read(self, model, domain, fields, **kwargs):
        return self(model, "search_read", domain, fields=fields, **kwargs)

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        rows = self.search_read(
            "ir.model.data",
            [("module", "=", module), ("name", "=", name)],
            ["res_id"],
        )
        if not rows:
            raise RpcError(f"no record {xmlid} (is the demo data installed?)")
        return rows[0]["res_id"]


# A retrying job whose error says this will not get better by waiting.
_PERMANENT_ERRORS = (
    (
        re.compile(r"SSLError|CERTIFICATE_VERIFY_FAILED|certificate verify failed"),
        "SSL certificate failure",
        "Odoo does not trust the remote system's certificate. For the demo "
        "stand-in, start Odoo with REQUESTS_CA_BUNDLE set to the bundle "
        "`python3 tests/e2e/harness.py ca-bundle` prints (bash docker/run.sh "
        "does so in local mode).",
    ),
    (
        re.compile(
            r"\b(401|403)\b|invalid_grant|invalid_client|INVALID_SESSION_ID|"
            r"[Aa]uthentication failed|[Uu]nauthori[sz]ed"
        ),
        "authentication failure",
        "The remote system refused the backend's credentials: check them on "
        "the backend form.",
    ),
)


class JobFailure(Exception):
    """A job the driver waits for failed in a way waiting will not fix."""


def permanent_cause(job):
    """Why waiting for ``job`` is pointless, or ``None``.

    :param job: a ``qtc.job`` as read (state, attempts, max_attempts,
        error_kind, error_message)
    :returns: ``(cause, hint)``: a failed job (business error), a dead job, or a
        retrying job whose error is an SSL certificate or authentication failure
    """
    message = job.get("error_message") or ""
    if job["state"] == "failed":
        return "business error (job failed)", (
            "Its exception in Quote-to-Cash ▸ Exceptions says what to fix."
        )
    if job["state"] == "dead":
        return f"dead job (gave up after {job['attempts']} attempts)", (
            "Fix the cause, then Retry the job."
        )
    if job["state"] == "pending":
        for pattern, cause, hint in _PERMANENT_ERRORS:
            if pattern.search(message):
                return cause, hint
    return None


class JobWatch:
    """Reports what the jobs a driver waits for are going through.

    ``check(domain)`` prints the last error of each retrying job once per
    attempt, and raises ``JobFailure`` with that error when the cause is
    permanent (see ``permanent_cause``).
    """

    FIELDS = ("name", "state", "attempts", "max_attempts", "error_kind")

    def __init__(self, rpc, out=print):
        self.rpc = rpc
        self.out = out
        self.reported = set()
        self.last_error = None

    def check(self, domain):
        jobs = self.rpc.search_read(
            "qtc.job",
            [
                *domain,
                ("state", "in", ("pending", "failed", "dead")),
                # A job queued again by a person has no error kind until it
                # fails again: its old message is history.
                ("error_kind", "!=", False),
                ("error_message", "!=", False),
            ],
            [*self.FIELDS, "error_message"],
            order="id",
        )
        for job in jobs:
            error = (job["error_message"] or "").strip()
            found = permanent_cause(job)
            if found:
                cause, hint = found
                raise JobFailure(
                    f"{cause}: job {job['name']!r} (attempt {job['attempts']} of "
                    f"{job['max_attempts']}): {error}\n{hint}"
                )
            self.last_error = f"job {job['name']!r}: {error}"
            key = (job["id"], job["attempts"])
            if key not in self.reported:
                self.reported.add(key)
                self.out(
                    f"   ... job {job['name']!r} is retrying (attempt "
                    f"{job['attempts']} of {job['max_attempts']}): {error}"
                )
        return jobs


def wait_until(predicate, timeout, interval=0.5, what="condition"):
    """Poll ``predicate`` until it returns a true value; return that value.

    :raises TimeoutError: after ``timeout`` seconds
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------- TLS files


def standin_dir():
    """Where the stand-in's TLS files live (``QTC_STANDIN_DIR`` overrides)."""
    return Path(os.environ.get("QTC_STANDIN_DIR") or STATE_DIR / "standin")


def configured_ca_bundles(environ=None, exclude=()):
    """The CA bundle files the environment already chose, in order, each once.

    :param exclude: paths to leave out (the bundle being written)
    """
    environ = os.environ if environ is None else environ
    excluded = {Path(path).resolve() for path in exclude}
    found = []
    for name in CA_BUNDLE_VARIABLES:
        value = environ.get(name)
        if not value or not Path(value).is_file():
            continue
        path = Path(value).resolve()
        if path not in excluded and path not in found:
            found.append(path)
    return found


def combined_ca_bundle(*pem_texts):
    """The certificates of ``pem_texts`` in one bundle, each once, in order."""
    seen = set()
    blocks = []
    for text in pem_texts:
        for block in PEM_CERTIFICATE_RE.findall(text):
            key = "".join(block.split())
            if key not in seen:
                seen.add(key)
                blocks.append(block)
    return "\n".join(blocks) + "\n"


def write_ca_bundle(ca_path, bundle_path, environ=None):
    """Write the bundle Odoo trusts for the demo: the bundles the environment
    configured, the public roots (certifi) and the stand-in's CA.

    :returns: the configured bundles that were included
    """
    import certifi

    bundle_path = Path(bundle_path)
    configured = configured_ca_bundles(environ, exclude=[bundle_path])
    texts = [path.read_text(errors="replace") for path in configured]
    texts += [Path(certifi.where()).read_text(), Path(ca_path).read_text()]
    temporary = bundle_path.with_suffix(".tmp")
    temporary.write_text(combined_ca_bundle(*texts))
    temporary.replace(bundle_path)
    return configured


def make_tls_files(directory=None, environ=None, bundle=True):
    """A CA and a server certificate for 127.0.0.1 signed by it, created once
    in ``directory``, and the CA bundle for Odoo (``write_ca_bundle``, written
    again on each call: the environment's bundles may have changed).

    :param bundle: write the bundle; a driver that only serves the stand-in
        leaves the bundle a running Odoo reads as ``docker/run.sh`` wrote it
    :returns: ``{"cert": path, "key": path, "ca": path, "bundle": path}``
    """
    directory = Path(directory or standin_dir())
    files = {
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "ca": directory / "ca.pem",
        "bundle": directory / "ca-bundle.pem",
    }
    if not all(files[name].is_file() for name in ("cert", "key", "ca")):
        make_certificates(files)
    if bundle or not files["bundle"].is_file():
        write_ca_bundle(files["ca"], files["bundle"], environ)
    return {name: str(path) for name, path in files.items()}


def make_certificates(files, ca_name="QTC local stand-in CA"):
    """The stand-in's CA (it may only vouch for 127.0.0.1) and its server
    certificate and key, written to ``files`` (``cert``, ``key``, ``ca``)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files["ca"].parent.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # The CA may only vouch for the loopback address.
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[
                    x509.IPAddress(ipaddress.ip_network("127.0.0.1/32"))
                ],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files["ca"].write_bytes(ca_cert.public_bytes(pem))
    files["cert"].write_bytes(cert.public_bytes(pem))
    files["key"].write_bytes(
        key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(files["key"], 0o600)


# ------------------------------------------------------- Salesforce stand-in

_FROM_RE = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)
_ID_RE = re.compile(r"\bId\s*=\s*'(\w+)'")


class StandIn:
    """A loopback HTTPS JSON server: ``fail_for(seconds)`` answers 503 to every
    call until then; ``calls`` counts requests by kind. Subclasses route
    requests in ``_route(handler, path, body)``."""

    def __init__(self, port, tls_files):
        self.calls = {}
        self._fail_until = 0.0
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                standin._serve(self)

            do_GET = do_PATCH = do_DELETE = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]  # port 0: any free port
        self.instance_url = f"https://127.0.0.1:{self.port}"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_files["cert"], tls_files["key"])
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def fail_for(self, seconds):
        self._fail_until = time.monotonic() + seconds

    def failing(self):
        return time.monotonic() < self._fail_until

    def _count(self, kind):
        with self._lock:
            self.calls[kind] = self.calls.get(kind, 0) + 1

    def _serve(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.failing():
            self._count("503")
            return self._answer(handler, 503, self.outage_body)
        return self._route(handler, urlsplit(handler.path), body)

    outage_body = {"error": "stand-in outage"}

    def _answer(self, handler, status, body, headers=()):
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


class SalesforceStandIn(StandIn):
    """The Salesforce REST endpoints the connector calls (token, SOQL query,
    sObject Collections, limits), serving the opportunities and accounts it is
    given. ``delay[record id] = seconds`` holds the answer of a query for that
    record."""

    outage_body = [{"errorCode": "SERVER_UNAVAILABLE", "message": "stand-in outage"}]

    def __init__(self, port, tls_files, org_id):
        super().__init__(port, tls_files)
        self.org_id = org_id
        self.records = {}
        self.delay = {}
        self.written = []

    def add(self, record):
        """Serve ``record`` (an Opportunity with its Account, or an Account)."""
        with self._lock:
            self.records[record["Id"]] = record
            if isinstance(record.get("Account"), dict):
                self.records.setdefault(record["Account"]["Id"], record["Account"])

    def _route(self, handler, path, body):
        if path.path == "/services/oauth2/token" and handler.command == "POST":
            self._count("token")
            return self._answer(
                handler,
                200,
                {
                    "access_token": "00Dstandin!token",
                    "instance_url": self.instance_url,
                    "token_type": "Bearer",
                    "scope": "api",
                    "issued_at": str(int(time.time() * 1000)),
                    "id": f"{self.instance_url}/id/{self.org_id}/005000000000001AAA",
                },
            )
        if handler.headers.get("Authorization") != "Bearer 00Dstandin!token":
            self._count("401")
            return self._answer(
                handler,
                401,
                [{"errorCode": "INVALID_SESSION_ID", "message": "no session"}],
            )
        api = f"/services/data/{API_VERSION}"
        if path.path == f"{api}/query":
            self._count("query")
            soql_text = parse_qs(path.query).get("q", [""])[0]
            return self._query(handler, soql_text)
        if path.path == f"{api}/composite/sobjects":
            self._count("writeback")
            records = json.loads(body or b"{}").get("records") or []
            with self._lock:
                self.written.extend(records)
            return self._answer(
                handler,
                200,
                [{"id": r.get("id"), "success": True, "errors": []} for r in records],
            )
        if path.path == f"{api}/limits":
            self._count("limits")
            return self._answer(
                handler, 200, {"DailyApiRequests": {"Max": 100000, "Remaining": 99000}}
            )
        self._count("404")
        return self._answer(
            handler, 404, [{"errorCode": "NOT_FOUND", "message": handler.path}]
        )

    def _query(self, handler, soql_text):
        objects = _FROM_RE.findall(soql_text)
        sobject = objects[-1] if objects else ""
        match = _ID_RE.search(soql_text)
        records = []
        if match:
            record_id = match.group(1)
            pause = self.delay.get(record_id)
            if pause:
                time.sleep(pause)
            with self._lock:
                record = self.records.get(record_id)
            if record and record["attributes"]["type"] == sobject:
                records.append(record)
        page = {"totalSize": len(records), "done": True, "records": records}
        return self._answer(handler, 200, page)

    def _answer(self, handler, status, body, headers=()):
        usage = ("Sforce-Limit-Info", "api-usage=10/100000")
        super()._answer(handler, status, body, (*headers, usage))


class AvaTaxStandIn(StandIn):
    """The AvaTax REST calls the tax connector makes: ``transactions/create``
    (quote, or commit with ``"commit": true``), ``void``, ``utilities/ping``.
    Every line is taxed at ``rate``. ``commits[code]`` counts the committed
    creations of each document code."""

    def __init__(self, port, tls_files, rate="0.0500"):
        super().__init__(port, tls_files)
        self.rate = Decimal(rate)
        self.commits = {}
        self._ids = itertools.count(1)

    outage_body = {"error": {"code": "ServiceUnavailable", "message": "stand-in"}}

    def _route(self, handler, path, body):
        if path.path == "/api/v2/utilities/ping":
            self._count("ping")
            return self._answer(handler, 200, {"authenticated": True, "version": "x"})
        if path.path.endswith("/void"):
            self._count("void")
            return self._answer(handler, 200, {"status": "Cancelled"})
        if path.path == "/api/v2/transactions/create":
            request_body = json.loads(body or b"{}")
            commit = bool(request_body.get("commit"))
            self._count("commit" if commit else "quote")
            lines = []
            total = Decimal(0)
            for line in request_body.get("lines") or []:
                tax = (Decimal(str(line.get("amount") or 0)) * self.rate).quantize(
                    Decimal("0.01")
                )
                total += tax
                lines.append(
                    {
                        "lineNumber": line.get("number"),
                        "tax": float(tax),
                        "details": [
                            {
                                "jurisName": "STAND-IN STATE",
                                "jurisdictionType": "State",
                                "rate": float(self.rate),
                                "tax": float(tax),
                            }
                        ],
                    }
                )
            code = request_body.get("code") or f"quote-{next(self._ids)}"
            if commit:
                with self._lock:
                    self.commits[code] = self.commits.get(code, 0) + 1
            return self._answer(
                handler,
                201,
                {
                    "id": next(self._ids),
                    "code": code,
                    "status": "Committed" if commit else "Saved",
                    "totalTax": float(total),
                    "lines": lines,
                },
            )
        self._count("404")
        return self._answer(handler, 404, {"error": {"code": "NotFound"}})


def _attributes(sobject, record_id):
    return {
        "type": sobject,
        "url": f"/services/data/{API_VERSION}/sobjects/{sobject}/{record_id}",
    }


def opportunity_record(
    opportunity_id, account_id, name, account_name, lines, modstamp, state_code="CA"
):
    """A won opportunity as the REST query returns it (account and line items
    inside). ``lines``: ``[(line id, product code, quantity, unit price,
    billing type)]``."""
    items = [
        {
            "attributes": _attributes("OpportunityLineItem", line_id),
            "Id": line_id,
            "PricebookEntry": {
                "attributes": {"type": "PricebookEntry", "url": "/pbe"},
                "Product2": {
                    "attributes": {"type": "Product2", "url": "/p2"},
                    "ProductCode": code,
                },
            },
            "Quantity": float(quantity),
            "UnitPrice": float(price),
            "Discount": None,
            "Description": None,
            "Billing_Type__c": billing,
        }
        for line_id, code, quantity, price, billing in lines
    ]
    return {
        "attributes": _attributes("Opportunity", opportunity_id),
        "Id": opportunity_id,
        "AccountId": account_id,
        "Name": name,
        "CloseDate": modstamp[:10],
        "CurrencyIsoCode": "USD",
        "StageName": "Closed Won",
        "Amount": sum(q * p for _i, _c, q, p, _b in lines),
        "IsWon": True,
        "Description": None,
        "Pricebook2Id": None,
        "SystemModstamp": f"{modstamp}.000+0000",
        "LastModifiedDate": f"{modstamp}.000+0000",
        "Account": {
            "attributes": _attributes("Account", account_id),
            "Id": account_id,
            "Name": account_name,
            "BillingStreet": "500 Howard Street",
            "BillingCity": "San Francisco",
            "BillingPostalCode": "94105",
            "BillingStateCode": state_code,
            "BillingCountryCode": "US",
            "Phone": "+1 415 555 0100",
            "Website": "https://customer.example.com",
            "CurrencyIsoCode": "USD",
            "SystemModstamp": f"{modstamp}.000+0000",
        },
        "OpportunityLineItems": {
            "totalSize": len(items),
            "done": True,
            "records": items,
        },
    }


_SF_NS = "urn:sobject.enterprise.soap.sforce.com"
_ENVELOPE_NS = (
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def outbound_message(org_id, notifications, instance_url):
    """An Outbound Message envelope: ``notifications`` is ``[(notification id,
    opportunity record)]``; each carries a few of the opportunity's fields, as
    an Outbound Message does."""
    parts = []
    for notification_id, record in notifications:
        parts.append(
            f"""   <Notification>
    <Id>{escape(notification_id)}</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="{_SF_NS}">
     <sf:Id>{escape(record["Id"])}</sf:Id>
     <sf:AccountId>{escape(record["AccountId"])}</sf:AccountId>
     <sf:Amount>{record["Amount"]}</sf:Amount>
     <sf:IsWon>true</sf:IsWon>
     <sf:Name>{escape(record["Name"])}</sf:Name>
     <sf:StageName>Closed Won</sf:StageName>
     <sf:SystemModstamp>{escape(record["SystemModstamp"][:19])}.000Z</sf:SystemModstamp>
    </sObject>
   </Notification>"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope {_ENVELOPE_NS}>
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{escape(org_id)}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>{escape(instance_url)}/services/Soap/c/61.0</EnterpriseUrl>
   <PartnerUrl>{escape(instance_url)}/services/Soap/u/61.0</PartnerUrl>
{chr(10).join(parts)}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
""".encode()


# -------------------------------------------------------------- Odoo server


def odoo_addons_path(extra=()):
    import odoo

    package = Path(odoo.__file__).parent
    paths = [package / "addons"]
    if (package.parent / "addons").is_dir():
        paths.append(package.parent / "addons")
    paths += [ADDONS, *extra]
    return ",".join(str(p) for p in paths)


def odoo_env(key, ca_bundle=None):
    env = {**os.environ, "TZ": "UTC", "QTC_ENCRYPTION_KEY": key}
    env.pop("ODOO_PGAPPNAME", None)  # backends are found by "odoo-<pid>"
    if ca_bundle:
        env["REQUESTS_CA_BUNDLE"] = ca_bundle
    return env


def database_exists(db):
    import psycopg2

    with psycopg2.connect(dbname="postgres") as conn, conn.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
        return bool(cr.fetchone())


def create_database(db, key, modules, log_path, extra_addons=()):
    """Drop ``db`` and create it with ``modules`` and the demo data."""
    env = odoo_env(key)
    drop_database(db, key)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        subprocess.run(
            [
                sys.executable,
                str(LAUNCHER),
                "-d",
                db,
                "--addons-path",
                odoo_addons_path(extra_addons),
                "-i",
                modules,
                "--stop-after-init",
                "--max-cron-threads=0",
                "--log-level=warn",
                "--http-port=0",
            ],
            env=env,
            cwd="/",
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def drop_database(db, key):
    """Drop ``db`` if it exists."""
    subprocess.run(
        [sys.executable, "-m", "odoo", "db", "drop", db],
        capture_output=True,
        env=odoo_env(key),
        cwd="/",
        check=False,
    )


class OdooServer:
    """``docker/odoo_local.py`` with ``--workers``: a master process, HTTP
    workers, cron workers (running the job queue's worker crons) and the
    websocket process. The master replaces a worker that dies."""

    def __init__(
        self,
        db,
        port,
        key,
        *,
        workers=2,
        cron_threads=2,
        ca_bundle=None,
        extra_addons=(),
        extra_env=None,
        append_log=False,
    ):
        self.db = db
        self.port = port
        self.log_path = STATE_DIR / f"e2e-server-{port}.log"
        STATE_DIR.mkdir(exist_ok=True)
        self.log = open(self.log_path, "a" if append_log else "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(LAUNCHER),
                "-d",
                db,
                "--addons-path",
                odoo_addons_path(extra_addons),
                "--workers",
                str(workers),
                "--max-cron-threads",
                str(cron_threads),
                "--http-port",
                str(port),
                "--gevent-port",
                str(port + 1),
                "--db-filter",
                f"^{db}$",
                "--log-level",
                "warn",
                "--limit-time-real",
                "600",
                "--limit-time-cpu",
                "300",
            ],
            env={**odoo_env(key, ca_bundle), **(extra_env or {})},
            cwd="/",
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self.healthy, 120, 0.3, "the Odoo server to answer")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Odoo did not start; see {self.log_path}") from None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def healthy(self):
        try:
            return requests.get(f"{self.url}/web/health", timeout=2).ok
        except requests.RequestException:
            return False

    def children(self):
        """Pids of the master's worker processes (HTTP and cron), not the
        websocket process (a separate script run)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and b"gevent" not in cmdline:
                pids.append(int(entry.name))
        return sorted(pids)

    def kill_worker(self, pid):
        """``kill -9`` one worker process."""
        try:
            os.kill(pid, signal.SIGKILL)
            return True
        except ProcessLookupError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def log_errors(path, since=0):
    """ERROR/CRITICAL lines of a server log from byte offset ``since``."""
    with open(path, "rb") as handle:
        handle.seek(since)
        text = handle.read().decode(errors="replace")
    return [
        line for line in text.splitlines() if re.search(r" (ERROR|CRITICAL) ", line)
    ]


if __name__ == "__main__":
    # ``python3 tests/e2e/harness.py ca-bundle``: create the stand-in's TLS
    # files when missing, write the CA bundle for Odoo (the environment's
    # configured bundles, the public roots, the stand-in's CA) and print its
    # path (used by docker/run.sh).
    if sys.argv[1:] != ["ca-bundle"]:
        sys.exit("usage: harness.py ca-bundle")
    print(make_tls_files()["bundle"])
