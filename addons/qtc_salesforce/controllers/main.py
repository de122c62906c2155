"""The Outbound Message endpoint.

Salesforce cannot sign an Outbound Message, so the endpoint URL carries a long
secret token: ``/qtc/salesforce/<backend id>/outbound/<token>``. The flow is
the base's (``receive_webhook``) with the token passed to the provider's
verify hook: cap the body -> compare the token in constant time -> parse the
SOAP envelope and check the org -> store every Notification (its id is the
idempotency key) -> answer ``Ack`` true. A wrong token or org gets a SOAP
fault and nothing is stored; a malformed body is kept as a failed event.
"""

import logging

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.addons.qtc_connector_base.const import KEPT_HEADERS
from odoo.addons.qtc_connector_base.controllers.main import (
    read_capped_body,
    store_malformed,
)
from odoo.addons.qtc_connector_base.exceptions import QtcError
from odoo.addons.qtc_connector_base.lib import signature
from odoo.http import request

from .. import const
from ..models.qtc_backend import WrongOrganization

_logger = logging.getLogger(__name__)


class SalesforceController(http.Controller):
    @http.route(
        "/qtc/salesforce/<int:backend_id>/outbound/<string:token>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def salesforce_outbound(self, backend_id, token, **_kwargs):
        # Narrow sudo boundary: the sender is not a user; the backend and its
        # token are read as superuser only to authenticate and store events.
        backends = request.env["qtc.backend"].sudo()
        config = backends._qtc_webhook_config(backend_id)
        if not config or config.state != "active" or config.provider != const.PROVIDER:
            raise NotFound()
        backend = backends.browse(backend_id).with_context(salesforce_url_token=token)
        body = read_capped_body(config.max_body_bytes)
        if body is None:
            return backend._qtc_webhook_error(413, "body exceeds the size limit")
        headers = request.httprequest.headers
        try:
            backend._qtc_webhook_verify(body, headers, config)
        except signature.SignatureError as exc:
            _logger.warning(
                "outbound message for backend %s refused: %s", backend_id, exc
            )
            return backend._qtc_webhook_error(401, "invalid endpoint token")
        except QtcError as exc:
            _logger.error(
                "backend %s cannot verify outbound messages: %s", backend_id, exc
            )
            return backend._qtc_webhook_error(503, "receiver misconfigured")
        try:
            events = backend._qtc_webhook_parse(body, headers)
        except WrongOrganization as exc:
            _logger.warning(
                "outbound message for backend %s refused: %s", backend_id, exc
            )
            return backend._qtc_webhook_error(401, "unknown organization")
        except ValueError as exc:
            message = str(exc)[:500]
            store_malformed(backend, body, message)
            return backend._qtc_webhook_error(400, f"malformed message: {message}")
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        stored = backend._qtc_store_events(events, kept, config)
        return backend._qtc_webhook_answer(events, stored)
