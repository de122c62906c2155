"""The push API: ``POST /qtc/psa/<backend_id>/work_items``.

Same order as the base's webhook (``receive_webhook``): the base's inbound
checks (route cap, sender networks, body read before Odoo parses it) ->
authenticate the raw body with the base HMAC scheme -> the backend's own cap
-> parse -> store every accepted item as one event, all in one SQL statement
-> answer at once. The answer lists every item (accepted, duplicate, rejected
with reasons); a bad item never sinks its batch. Nothing is applied inside the
request. The contract is published in ``static/api/openapi.yaml`` and
``static/api/work_items.schema.json``.
"""

import json
import logging

from odoo import http
from odoo.addons.qtc_connector_base.const import KEPT_HEADERS
from odoo.addons.qtc_connector_base.controllers.inbound import admitted_request
from odoo.addons.qtc_connector_base.controllers.main import (
    InboundRoute,
    inbound_route,
    json_response,
    receiver_misconfigured,
)
from odoo.addons.qtc_connector_base.exceptions import QtcError
from odoo.addons.qtc_connector_base.lib import signature
from odoo.http import request

from .. import const
from ..lib import work_item as wi

_logger = logging.getLogger(__name__)

PUSH_ROUTE = InboundRoute(
    const.PROVIDER_PUSH, too_large="body exceeds the size limit; split the batch"
)
STATUS_ROUTE = InboundRoute(
    const.PROVIDER_PUSH, too_large="body exceeds the size limit; split the request"
)


def _error(status, message):
    return json_response({"error": message}, status=status)


def read_signed_json(backend_id, endpoint, route):
    """What every PSA endpoint does before its own work, in this order: the
    base's inbound checks -> check the backend -> authenticate the raw body
    (base HMAC scheme) -> the backend's cap -> parse the JSON. Every
    unauthenticated failure gets the route's one answer.

    Narrow sudo boundary: the caller is not a user; the backend and its secrets
    are read as superuser only to authenticate, and the backend returned is
    the superuser's so the endpoint can store or read this backend's items.

    :param endpoint: what the caller asked for, for the log
    :param route: the endpoint's ``InboundRoute``
    :returns: ``(backend, config, data, None)``, or ``(None, None, None,
        error_response)`` when the request stops here
    """
    admitted = admitted_request(route, backend_id)
    refused = receiver_misconfigured(route)
    if refused:
        return None, None, None, refused
    config = admitted.config
    if not route.serves(config, backend_id):
        return None, None, None, route.refuse(admitted)
    backend = request.env["qtc.backend"].sudo().browse(backend_id)
    body = admitted.body
    try:
        backend._qtc_webhook_verify(body, request.httprequest.headers, config)
    except signature.SignatureError as exc:
        _logger.warning("PSA %s for backend %s rejected: %s", endpoint, backend_id, exc)
        return None, None, None, route.unauthorized()
    except QtcError as exc:  # a stored secret that cannot be opened
        _logger.error(
            "PSA %s for backend %s unverifiable: %s", endpoint, backend_id, exc
        )
        return None, None, None, route.unauthorized()
    if len(body) > config.max_body_bytes:
        return None, None, None, route.too_large()
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, None, None, _error(400, f"malformed JSON: {exc}")
    return backend, config, data, None


class PsaController(http.Controller):
    @inbound_route("/qtc/psa/<int:backend_id>/work_items", PUSH_ROUTE)
    def psa_work_items(self, backend_id, **_kwargs):
        backend, config, data, error = read_signed_json(backend_id, "push", PUSH_ROUTE)
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
