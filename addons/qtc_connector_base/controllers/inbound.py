"""What every inbound (webhook) route does before and around its handler.

Order, for every backend id alike:

1. a ``Content-Length`` over the route's cap -> 413, nothing read;
2. a backend with accepted sender networks, and a sender outside them -> the
   route's one unauthenticated answer, nothing read;
3. the body read up to the route's cap (chunked included) -> 413 past it; a
   form content type is never parsed by Odoo, and is answered 415 (no sender
   of ours sends forms);
4. the handler: an unknown, inactive, archived or other-provider backend, a
   bad, expired or missing signature -> the route's one unauthenticated
   answer (same status, same body: nothing tells an id that exists from one
   that does not); then the backend's own cap (413, to an authenticated
   sender only), parsing (400), storing (2xx).

Steps 1-3 run from ``ir.http._pre_dispatch`` (see ``models/ir_http.py``), before
Odoo reads form fields from the body, for routes declared with
``inbound_route``. The route's cap before authentication is the largest cap of
the backends it serves (``qtc.backend._qtc_inbound_ceiling``), the same for
every id.
"""

import logging
import socket

from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import abort

from odoo import http
from odoo.http import request

from ..lib.inbound import read_capped, sender_allowed, spend_like_a_verification

_logger = logging.getLogger(__name__)

UNAUTHORIZED = "invalid signature or unknown backend"
TOO_LARGE = "body exceeds the size limit"
GENERIC_PATH = "/qtc/webhook/{}"
MAX_ID = 2**31 - 1
# Content types Odoo would parse into form fields: refused, never parsed.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Admitted:
    """A request that passed steps 1-3: its body and the backend's cached
    configuration (``None`` for an unknown id)."""

    def __init__(self, body, config):
        self.body = body
        self.config = config


def json_answer(status, message):
    return request.make_json_response({"error": message}, status=status)


class InboundRoute:
    """One family of inbound routes: which backends it serves and how it
    answers a refusal.

    :param provider: the provider whose backends the route serves; ``None``
        for the generic route (backends whose webhook path is the generic one)
    :param too_large: the 413 message
    :param answer: ``(status, message) -> response`` in the sender's format
        (JSON by default)
    :param unauthorized: the message of the one unauthenticated answer
    """

    def __init__(
        self,
        provider=None,
        too_large=TOO_LARGE,
        answer=json_answer,
        unauthorized=UNAUTHORIZED,
    ):
        self.provider = provider
        self.too_large_message = too_large
        self.unauthorized_message = unauthorized
        self._answer = answer

    def answer(self, status, message):
        return self._answer(status, message)

    def unauthorized(self):
        """The one answer to every unauthenticated failure of this route."""
        return self.answer(401, self.unauthorized_message)

    def too_large(self):
        return self.answer(413, self.too_large_message)

    def serves(self, config, backend_id):
        """True for an active, unarchived backend this route is for."""
        if not config or not config.active or config.state != "active":
            return False
        if self.provider:
            return config.provider == self.provider
        return config.webhook_path == GENERIC_PATH.format(backend_id)

    # -------------------------------------------------------- before Odoo

    def admit(self, backend_id):
        """Steps 1-3 (module docstring); idempotent (a request retried after a
        serialization failure keeps what was read).

        :returns: the ``Admitted`` request
        :raises HTTPException: carrying the refusal (413 or unauthenticated)
        """
        admitted = getattr(request, "qtc_inbound", None)
        if admitted is not None:
            return admitted
        backends = request.env["qtc.backend"].sudo()
        ceiling = backends._qtc_inbound_ceiling(self.provider)
        httprequest = request.httprequest
        declared = httprequest.content_length
        if declared is not None and declared > ceiling:
            self._refuse_unread(self.too_large())
        # Ids past PostgreSQL's integer range exist nowhere (and must not
        # reach a query): they are unknown ids like any other.
        config = (
            backends._qtc_webhook_config(backend_id)
            if isinstance(backend_id, int) and 0 < backend_id <= MAX_ID
            else None
        )
        networks = config.sender_networks if config else ()
        if not sender_allowed(httprequest.remote_addr, networks):
            _logger.warning(
                "inbound request for backend %s from %s refused: not an "
                "accepted sender network",
                backend_id,
                httprequest.remote_addr,
            )
            self._refuse_unread(self.unauthorized())
        # Werkzeug's stream stops at the declared length, or at the end of a
        # chunked body; read_capped stops one byte past the cap.
        wrapped = httprequest._HTTPRequest__wrapped
        body = read_capped(wrapped.stream, ceiling, declared)
        if body is None:
            self._refuse_unread(self.too_large())
        # What Odoo reads next finds the body already read, and no form.
        wrapped._cached_data = body
        wrapped.form = ImmutableMultiDict()
        wrapped.files = ImmutableMultiDict()
        if httprequest.mimetype in FORM_TYPES:
            request.session.can_save = False
            abort(self.answer(415, "unsupported content type"))
        request.qtc_inbound = Admitted(body, config)
        return request.qtc_inbound

    def _refuse_unread(self, response):
        """Answer now without reading (more of) the body, and close the read
        side so the server does not drain the rest of it either."""
        request.session.can_save = False
        environ = request.httprequest._HTTPRequest__environ
        sock = environ.get("socket") or environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        abort(response)

    # ------------------------------------------------------- in the handler

    def refuse(self, admitted):
        """The unauthenticated answer, after as much work as a failed
        signature check costs (see ``spend_like_a_verification``)."""
        spend_like_a_verification(admitted.body)
        return self.unauthorized()


def inbound_route(path, route):
    """``http.route`` for a webhook: POST, public, no CSRF, no session, and
    ``route``'s checks before Odoo parses the request (``ir.http``)."""
    return http.route(
        path,
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
        qtc_inbound=route,
    )


def admitted_request(route, backend_id):
    """The admitted request of the current call (steps 1-3 done by
    ``ir.http``), or done now for a route not declared with
    ``inbound_route`` (there, Odoo may already have parsed a form body).

    :raises HTTPException: carrying the refusal
    """
    return route.admit(backend_id)
