"""The push API: ``POST /qtc/psa/<backend_id>/work_items``.

Same order as the base's webhook (``receive_webhook``): authenticate the raw
body with the base HMAC scheme -> cap its size -> parse -> store every accepted
item as one event, all in one SQL statement -> answer at once. The answer lists
every item (accepted, duplicate, rejected with reasons); a bad item never sinks
its batch. Nothing is applied inside the request. The contract is published in
``static/api/openapi.yaml`` and ``static/api/work_items.schema.json``.
"""

import json
import logging

from odoo import http
from odoo.addons.qtc_connector_base.const import KEPT_HEADERS
from odoo.addons.qtc_connector_base.controllers.main import (
    json_response,
    read_capped_body,
)
from odoo.addons.qtc_connector_base.exceptions import QtcError
from odoo.addons.qtc_connector_base.lib import signature
from odoo.http import request

from .. import const
from ..lib import work_item as wi

_logger = logging.getLogger(__name__)


def _error(status, message):
    return json_response({"error": message}, status=status)


def read_signed_json(backend_id, endpoint, too_large):
    """What every PSA endpoint does before its own work, in this order: check
    the backend -> cap the body -> authenticate the raw body (base HMAC
    scheme) -> parse the JSON.

    Narrow sudo boundary: the caller is not a user; the backend and its secrets
    are read as superuser only to authenticate, and the backend returned is
    the superuser's so the endpoint can store or read this backend's items.

    :param endpoint: what the caller asked for, for the log
    :param too_large: the 413 answer's message
    :returns: ``(backend, config, data, None)``, or ``(None, None, None,
        error_response)`` when the request stops here
    """
    backends = request.env["qtc.backend"].sudo()
    config = backends._qtc_webhook_config(backend_id)
    if not config or config.state != "active" or config.provider != const.PROVIDER_PUSH:
        # The published contract answers 401 here: an unknown backend is
        # indistinguishable from a wrong secret to an outsider.
        return None, None, None, _error(401, "invalid signature or unknown backend")
    backend = backends.browse(backend_id)
    body = read_capped_body(config.max_body_bytes)
    if body is None:
        return None, None, None, _error(413, too_large)
    try:
        backend._qtc_webhook_verify(body, request.httprequest.headers, config)
    except signature.SignatureError as exc:
        _logger.warning("PSA %s for backend %s rejected: %s", endpoint, backend_id, exc)
        return None, None, None, _error(401, "invalid signature or unknown backend")
    except QtcError as exc:  # no encryption key: fail closed
        _logger.error(
            "PSA %s for backend %s unverifiable: %s", endpoint, backend_id, exc
        )
        return None, None, None, _error(503, "receiver misconfigured")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, None, None, _error(400, f"malformed JSON: {exc}")
    return backend, config, data, None


class PsaController(http.Controller):
    @http.route(
        "/qtc/psa/<int:backend_id>/work_items",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def psa_work_items(self, backend_id, **_kwargs):
        backend, config, data, error = read_signed_json(
            backend_id, "push", "body exceeds the size limit; split the batch"
        )
        if error:
            return error
        try:
            items = wi.items_from_body(data)
            results = wi.validate_batch(items, max_items=backend.psa_batch_max)
        except wi.BatchError as exc:
            return _error(exc.status_code, str(exc))
        headers = request.httprequest.headers
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        answers = backend._psa_store_items(results, kept, config)
        return json_response({"items": answers})
