"""HTTP entry points of the base: the generic webhook, health and metrics.

Webhook order, the same for every provider (``receive_webhook``, after the
checks of ``inbound.py``): cap the body and check the sender -> authenticate
(signature over the raw body) -> the backend's own cap -> parse -> store the
events and queue their jobs in one statement -> answer 2xx. Nothing is applied
inside the request: a slow or failing apply never makes a sender retry or give
up. Every unauthenticated failure gets one answer per route, whatever the
backend id.
"""

import hashlib
import hmac
import logging
from datetime import UTC

from odoo import fields, http
from odoo.http import request

from ..const import KEPT_HEADERS
from ..lib import signature
from ..lib.errors import QtcError
from ..lib.secretbox import KeyConfigError
from ..models.qtc_backend import InboundEvent
from ..models.qtc_credential import secret_box
from .assurance_metrics import assurance_metric_lines
from .inbound import (
    UNAUTHORIZED,
    InboundRoute,
    admitted_request,
    inbound_route,
    json_answer,
)

_logger = logging.getLogger(__name__)

HEALTH_TOKEN_PARAM = "qtc_connector_base.health_token"  # noqa: S105 - a key name
GENERIC_ROUTE = InboundRoute()
# GET routes take no body: Odoo would otherwise parse a form body sent with one
# (up to its 128 MiB default) before the handler runs.
GET_BODY_CAP = 1024


def json_response(payload, status=200, headers=None):
    return request.make_json_response(payload, status=status, headers=headers)


def read_capped_body(limit):
    """The raw body, or None when it exceeds ``limit`` bytes.

    On a route declared with ``inbound_route`` the body was already read (up
    to the route's cap) before Odoo parsed anything; otherwise it is read here
    the same way, up to ``limit``.
    """
    admitted = getattr(request, "qtc_inbound", None)
    if admitted is None:
        admitted = InboundRoute().admit(None)
    body = admitted.body
    return body if len(body) <= limit else None


def receiver_misconfigured(route):
    """A 503 when no encryption key is configured (the same for every id: it
    is the server's state, not a backend's), else ``None``."""
    try:
        secret_box()
    except KeyConfigError as exc:
        _logger.error("webhooks cannot be verified: %s", exc)
        return route.answer(503, "receiver misconfigured")
    return None


def receive_webhook(backend_id, provider=None, route=None):
    """Accept one webhook request for ``backend_id``.

    Connectors route their own URL here (``provider`` checks the backend is of
    their kind; ``route``, the ``InboundRoute`` of their ``inbound_route``,
    gives their answers). Answers: 2xx once stored (duplicates included); the
    route's one unauthenticated answer (401) for an unknown, inactive,
    archived or other-provider backend, a sender outside the backend's
    networks, a bad, expired or missing signature (nothing stored); 413 for a
    body over the route's cap (before authentication) or the backend's cap
    (after); 400 for a malformed body (kept as a failed event for audit).
    """
    route = route or (InboundRoute(provider) if provider else GENERIC_ROUTE)
    admitted = admitted_request(route, backend_id)
    misconfigured = receiver_misconfigured(route)
    if misconfigured:
        return misconfigured
    config = admitted.config
    if not route.serves(config, backend_id):
        return route.refuse(admitted)
    # Narrow sudo boundary: the request is not a user; the backend and its
    # secrets are read as superuser only to authenticate and store the event.
    backend = request.env["qtc.backend"].sudo().browse(backend_id)
    body = admitted.body
    headers = request.httprequest.headers
    try:
        backend._qtc_webhook_verify(body, headers, config)
    except signature.SignatureError as exc:
        _logger.warning("webhook for backend %s rejected: %s", backend_id, exc)
        return route.unauthorized()
    except QtcError as exc:  # a stored secret that cannot be opened
        _logger.error("webhook for backend %s cannot be verified: %s", backend_id, exc)
        return route.unauthorized()
    if len(body) > config.max_body_bytes:
        return backend._qtc_webhook_error(413, route.too_large_message)
    try:
        events = backend._qtc_webhook_parse(body, headers)
    except ValueError as exc:
        message = str(exc)[:500]
        store_malformed(backend, body, message)
        return backend._qtc_webhook_error(400, f"malformed body: {message}")
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    stored = backend._qtc_store_events(events, kept, config)
    return backend._qtc_webhook_answer(events, stored)


def store_malformed(backend, body, message):
    """Keep an authenticated but unreadable body, so it can be inspected and
    replayed once the sender or the mapping is fixed. No job is queued."""
    digest = hashlib.sha256(body).hexdigest()
    request.env.cr.execute(
        """
        INSERT INTO qtc_event (backend_id, company_id, provider, external_id,
                               event_type, payload, signature_verified, state,
                               error_message, received_at, create_date, write_date)
        VALUES (%s, %s, %s, %s, 'malformed', %s, true, 'failed', %s, %s, %s, %s)
        ON CONFLICT (backend_id, external_id) DO NOTHING
        """,
        (
            backend.id,
            backend.company_id.id,
            backend.provider,
            f"malformed:{digest}",
            _storable_text(body.decode("utf-8", errors="replace")),
            _storable_text(message),
            fields.Datetime.now(),
            fields.Datetime.now(),
            fields.Datetime.now(),
        ),
    )


def _storable_text(text):
    """``text`` without NUL characters, which a PostgreSQL text value cannot
    hold (the body is evidence: show them as ``\\x00`` rather than fail)."""
    return text.replace("\x00", "\\x00")


def _health_token_ok():
    expected = (
        request.env["ir.config_parameter"].sudo().get_param(HEALTH_TOKEN_PARAM) or ""
    ).strip()
    given = request.httprequest.headers.get("Authorization", "")
    if given.startswith("Bearer "):
        given = given[len("Bearer ") :]
    else:
        given = ""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class QtcController(http.Controller):
    @inbound_route("/qtc/webhook/<int:backend_id>", GENERIC_ROUTE)
    def qtc_webhook(self, backend_id, **_kwargs):
        return receive_webhook(backend_id, route=GENERIC_ROUTE)

    def _qtc_health_data(self):
        backends = request.env["qtc.backend"].sudo().search([("state", "!=", "draft")])
        stats = request.env["qtc.job"].sudo()._qtc_backend_stats(backends.ids)
        rows = []
        for backend in backends:
            values = stats.get(backend.id, {})
            rows.append(
                {
                    "id": backend.id,
                    "name": backend.name,
                    "provider": backend.provider,
                    "state": backend.state,
                    "status": backends._qtc_health_status(values),
                    "jobs": {
                        state: values.get(f"job_{state}_count", 0)
                        for state in ("pending", "started", "failed", "dead")
                    },
                    "exceptions_open": values.get("exception_open_count", 0),
                    "oldest_pending_minutes": values.get("oldest_pending_minutes", 0.0),
                    "failures_24h": values.get("failures_24h", 0),
                    "last_success_at": _iso(values.get("last_success_at")),
                    "last_event_at": _iso(values.get("last_event_at")),
                }
            )
        return rows

    @http.route(
        "/qtc/health",
        type="http",
        auth="public",
        methods=["GET"],
        save_session=False,
        max_content_length=GET_BODY_CAP,
    )
    def qtc_health(self, **_kwargs):
        if not _health_token_ok():
            return json_response({"error": "unauthorized"}, status=401)
        rows = self._qtc_health_data()
        worst = "ok"
        for row in rows:
            if row["status"] == "error" or (
                row["status"] == "warning" and worst == "ok"
            ):
                worst = row["status"]
        return json_response({"status": worst, "backends": rows})

    @http.route(
        "/qtc/metrics",
        type="http",
        auth="public",
        methods=["GET"],
        save_session=False,
        max_content_length=GET_BODY_CAP,
    )
    def qtc_metrics(self, **_kwargs):
        if not _health_token_ok():
            return json_response({"error": "unauthorized"}, status=401)
        lines = []
        metrics = (
            ("qtc_jobs", "gauge", "Jobs by backend and state"),
            ("qtc_exceptions_open", "gauge", "Open exceptions"),
            ("qtc_oldest_pending_seconds", "gauge", "Age of the oldest pending job"),
            ("qtc_failures_24h", "gauge", "Failed attempts in the last 24 hours"),
            ("qtc_last_success_timestamp_seconds", "gauge", "Last job done"),
        )
        rows = self._qtc_health_data()
        for name, kind, help_text in metrics:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for row in rows:
                labels = f'backend="{row["id"]}",provider="{_label(row["provider"])}"'
                if name == "qtc_jobs":
                    lines.extend(
                        f'{name}{{{labels},state="{state}"}} {count}'
                        for state, count in row["jobs"].items()
                    )
                elif name == "qtc_exceptions_open":
                    lines.append(f"{name}{{{labels}}} {row['exceptions_open']}")
                elif name == "qtc_oldest_pending_seconds":
                    lines.append(
                        f"{name}{{{labels}}} {row['oldest_pending_minutes'] * 60:.0f}"
                    )
                elif name == "qtc_failures_24h":
                    lines.append(f"{name}{{{labels}}} {row['failures_24h']}")
                elif row["last_success_at"]:
                    when = fields.Datetime.from_string(row["last_success_at"])
                    stamp = when.replace(tzinfo=UTC).timestamp()
                    lines.append(f"{name}{{{labels}}} {stamp:.0f}")
        # Revenue assurance gauges (names in assurance_metrics.py), read as
        # superuser like the health figures above: the caller is a token.
        lines.extend(assurance_metric_lines(request.env(su=True)))
        return request.make_response(
            "\n".join(lines) + "\n",
            headers=[("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
        )


def _iso(value):
    return fields.Datetime.to_string(value) if value else None


def _label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


__all__ = [
    "GET_BODY_CAP",
    "UNAUTHORIZED",
    "InboundEvent",
    "InboundRoute",
    "inbound_route",
    "json_answer",
    "json_response",
    "read_capped_body",
    "receive_webhook",
    "receiver_misconfigured",
    "store_malformed",
]
