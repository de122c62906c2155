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
        # Narrow sudo boundary: the caller is not a user; the backend and its
        # secrets are read as superuser only to authenticate and store items.
        backends = request.env["qtc.backend"].sudo()
        config = backends._qtc_webhook_config(backend_id)
        if (
            not config
            or config.state != "active"
            or config.provider != const.PROVIDER_PUSH
        ):
            # The published contract answers 401 here: an unknown backend is
            # indistinguishable from a wrong secret to an outsider.
            return _error(401, "invalid signature or unknown backend")
        backend = backends.browse(backend_id)
        body = read_capped_body(config.max_body_bytes)
        if body is None:
            return _error(413, "body exceeds the size limit; split the batch")
        headers = request.httprequest.headers
        try:
            backend._qtc_webhook_verify(body, headers, config)
        except signature.SignatureError as exc:
            _logger.warning("PSA push to backend %s rejected: %s", backend_id, exc)
            return _error(401, "invalid signature or unknown backend")
        except QtcError as exc:  # no encryption key: fail closed
            _logger.error("PSA push to backend %s unverifiable: %s", backend_id, exc)
            return _error(503, "receiver misconfigured")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"malformed JSON: {exc}")
        try:
            items = wi.items_from_body(data)
            results = wi.validate_batch(items, max_items=backend.psa_batch_max)
        except wi.BatchError as exc:
            return _error(exc.status_code, str(exc))
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        answers = backend._psa_store_items(results, kept, config)
        return json_response({"items": answers})
