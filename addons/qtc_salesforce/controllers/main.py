"""The Outbound Message endpoint.

Salesforce cannot sign an Outbound Message, so the endpoint URL carries a long
secret token: ``/qtc/salesforce/<backend id>/outbound/<token>``. The flow is
the base's (``receive_webhook``) with the token passed to the provider's
verify hook: the base's inbound checks (route cap, sender networks, body read
before Odoo parses it) -> compare the token in constant time -> parse the SOAP
envelope and check the org -> store every Notification (its id is the
idempotency key) -> answer ``Ack`` true. A wrong token or org, and an unknown,
inactive, archived or other-provider backend, all get the same SOAP fault and
nothing is stored; a malformed body is kept as a failed event.

The token is masked (``***``) in the server's request log.
"""

import logging
import re

from odoo import http
from odoo.addons.qtc_connector_base.const import KEPT_HEADERS
from odoo.addons.qtc_connector_base.controllers.inbound import admitted_request
from odoo.addons.qtc_connector_base.controllers.main import (
    InboundRoute,
    inbound_route,
    receiver_misconfigured,
    store_malformed,
)
from odoo.addons.qtc_connector_base.exceptions import QtcError
from odoo.addons.qtc_connector_base.lib import signature
from odoo.addons.qtc_connector_base.lib.logmask import mask_in_request_log
from odoo.http import request

from .. import const
from ..lib import outbound_message
from ..models.qtc_backend import WrongOrganization

_logger = logging.getLogger(__name__)

OUTBOUND_PATH_TOKEN = re.compile(r"/qtc/salesforce/[^/\s]*/outbound/([^/?#\s\"]+)")
mask_in_request_log(OUTBOUND_PATH_TOKEN)


def soap_answer(status, message):
    code = "Server" if status >= 500 else "Client"
    return request.make_response(
        outbound_message.soap_fault(message, code),
        headers=[("Content-Type", const.SOAP_CONTENT_TYPE)],
        status=status,
    )


OUTBOUND_ROUTE = InboundRoute(
    const.PROVIDER,
    answer=soap_answer,
    unauthorized="invalid endpoint token or unknown backend",
)


class SalesforceController(http.Controller):
    @inbound_route(
        "/qtc/salesforce/<int:backend_id>/outbound/<string:token>", OUTBOUND_ROUTE
    )
    def salesforce_outbound(self, backend_id, token, **_kwargs):
        route = OUTBOUND_ROUTE
        admitted = admitted_request(route, backend_id)
        refused = receiver_misconfigured(route)
        if refused:
            return refused
        config = admitted.config
        if not route.serves(config, backend_id):
            return route.refuse(admitted)
        # Narrow sudo boundary: the sender is not a user; the backend and its
        # token are read as superuser only to authenticate and store events.
        backends = request.env["qtc.backend"].sudo()
        backend = backends.browse(backend_id).with_context(salesforce_url_token=token)
        body = admitted.body
        headers = request.httprequest.headers
        try:
            backend._qtc_webhook_verify(body, headers, config)
        except signature.SignatureError as exc:
            _logger.warning(
                "outbound message for backend %s refused: %s", backend_id, exc
            )
            return route.unauthorized()
        except QtcError as exc:  # a stored token that cannot be opened
            _logger.error(
                "backend %s cannot verify outbound messages: %s", backend_id, exc
            )
            return route.unauthorized()
        if len(body) > config.max_body_bytes:
            return backend._qtc_webhook_error(413, route.too_large_message)
        try:
            events = backend._qtc_webhook_parse(body, headers)
        except WrongOrganization as exc:
            _logger.warning(
                "outbound message for backend %s refused: %s", backend_id, exc
            )
            return route.unauthorized()
        except ValueError as exc:
            message = str(exc)[:500]
            store_malformed(backend, body, message)
            return backend._qtc_webhook_error(400, f"malformed message: {message}")
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        stored = backend._qtc_store_events(events, kept, config)
        return backend._qtc_webhook_answer(events, stored)
