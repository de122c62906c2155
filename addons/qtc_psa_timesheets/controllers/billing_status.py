"""The billing status pull endpoint: ``POST /qtc/psa/<backend_id>/billing_status``.

For PSAs that poll instead of receiving the billing callback. Same order and
answers as the push endpoint (``main.py``): check the backend -> cap the body ->
authenticate the raw body (base HMAC scheme) -> parse -> answer. The body is
``{"external_ids": [...]}``; each id is answered with the invoice that billed
it, ``not_invoiced`` or ``unknown``. POST, not GET: the signature covers the
body, and a query string would travel unsigned. Published in
``static/api/openapi.yaml``.
"""

import json
import logging

from odoo import http
from odoo.addons.qtc_connector_base.controllers.main import (
    json_response,
    read_capped_body,
)
from odoo.addons.qtc_connector_base.exceptions import QtcError
from odoo.addons.qtc_connector_base.lib import signature
from odoo.http import request

from .. import const
from ..lib import billing_writeback as billing

_logger = logging.getLogger(__name__)


def _error(status, message):
    return json_response({"error": message}, status=status)


class PsaBillingStatusController(http.Controller):
    @http.route(
        "/qtc/psa/<int:backend_id>/billing_status",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def psa_billing_status(self, backend_id, **_kwargs):
        # Narrow sudo boundary: the caller is not a user; the backend, its
        # secrets and its items are read as superuser only to authenticate and
        # answer about this backend's items.
        backends = request.env["qtc.backend"].sudo()
        config = backends._qtc_webhook_config(backend_id)
        if (
            not config
            or config.state != "active"
            or config.provider != const.PROVIDER_PUSH
        ):
            return _error(401, "invalid signature or unknown backend")
        backend = backends.browse(backend_id)
        body = read_capped_body(config.max_body_bytes)
        if body is None:
            return _error(413, "body exceeds the size limit; split the request")
        try:
            backend._qtc_webhook_verify(body, request.httprequest.headers, config)
        except signature.SignatureError as exc:
            _logger.warning(
                "PSA billing status for backend %s rejected: %s", backend_id, exc
            )
            return _error(401, "invalid signature or unknown backend")
        except QtcError as exc:  # no encryption key: fail closed
            _logger.error(
                "PSA billing status for backend %s unverifiable: %s", backend_id, exc
            )
            return _error(503, "receiver misconfigured")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"malformed JSON: {exc}")
        try:
            external_ids = billing.parse_status_request(
                data, max_ids=backend.psa_batch_max
            )
        except billing.StatusRequestError as exc:
            return _error(exc.status_code, str(exc))
        items = (
            request.env["qtc.psa.item"]
            .sudo()
            .search(
                [
                    ("backend_id", "=", backend.id),
                    ("external_id", "in", external_ids),
                ]
            )
        )
        known = {}
        for item in items:
            invoice = item.billed_invoice_id
            known[item.external_id] = (
                {
                    "number": invoice.name,
                    "date": invoice.invoice_date,
                    "state": item.billed_state,
                }
                if invoice and item.billed_state
                else {}
            )
        return json_response(billing.status_answer(external_ids, known))
