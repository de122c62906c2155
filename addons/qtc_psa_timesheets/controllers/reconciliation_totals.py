"""``POST /qtc/psa/<backend_id>/reconciliation_totals``: a push PSA reports its
approved billable items of a period, for Odoo to reconcile them with the
timesheets and delivered quantities it holds.

Same steps and answers as the push API (``read_signed_json``): the base's
inbound checks (route cap before anything is read, sender networks, form bodies
refused), check the backend, authenticate the raw body with the backend's
webhook secret (one 401 for every unauthenticated request, unknown backend
included), the backend's own cap, parse. The valid body is stored as one
event (the same body twice is a duplicate, acknowledged and ignored) whose job
queues the reconciliation; nothing is compared inside the request. The contract is in
``static/api/openapi.yaml``.
"""

import hashlib
import json

from odoo import http
from odoo.addons.qtc_connector_base.const import KEPT_HEADERS
from odoo.addons.qtc_connector_base.controllers.main import (
    InboundRoute,
    inbound_route,
    json_response,
)
from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent
from odoo.http import request

from .. import const
from ..lib import reconciliation as psa_reconciliation
from .main import read_signed_json

TOTALS_ROUTE = InboundRoute(
    const.PROVIDER_PUSH,
    too_large="body exceeds the size limit; send a shorter period",
)


class PsaReconciliationController(http.Controller):
    @inbound_route("/qtc/psa/<int:backend_id>/reconciliation_totals", TOTALS_ROUTE)
    def psa_reconciliation_totals(self, backend_id, **_kwargs):
        backend, config, data, error = read_signed_json(
            backend_id, "reconciliation totals", TOTALS_ROUTE
        )
        if error:
            return error
        try:
            totals = psa_reconciliation.parse_totals(data)
        except psa_reconciliation.TotalsError as exc:
            return json_response(
                {"error": "invalid reconciliation totals", "problems": exc.problems},
                status=400,
            )
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
        external_id = f"totals:{totals.date_from}:{totals.date_to}:{digest}"
        headers = request.httprequest.headers
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        stored = backend._qtc_store_events(
            [InboundEvent(external_id, const.EVENT_RECONCILIATION_TOTALS, payload)],
            kept,
            config,
        )
        return json_response(
            {
                "status": "accepted" if stored else "duplicate",
                "id": external_id,
                "items": len(totals.facts),
            },
            status=202,
        )
