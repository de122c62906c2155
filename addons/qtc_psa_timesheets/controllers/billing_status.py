"""The billing status pull endpoint: ``POST /qtc/psa/<backend_id>/billing_status``.

For PSAs that poll instead of receiving the billing callback. Same order and
answers as the push endpoint (``main.py``): cap the body -> check the backend ->
authenticate the raw body (base HMAC scheme) -> parse -> answer. The body is
``{"external_ids": [...]}``; each id is answered with the invoice that billed
it, ``not_invoiced`` or ``unknown``. POST, not GET: the signature covers the
body, and a query string would travel unsigned. Published in
``static/api/openapi.yaml``.
"""

from odoo import http
from odoo.addons.qtc_connector_base.controllers.main import (
    inbound_route,
    json_response,
)

from ..lib import billing_writeback as billing
from .main import STATUS_ROUTE, _error, read_signed_json


class PsaBillingStatusController(http.Controller):
    @inbound_route("/qtc/psa/<int:backend_id>/billing_status", STATUS_ROUTE)
    def psa_billing_status(self, backend_id, **_kwargs):
        backend, _config, data, error = read_signed_json(
            backend_id, "billing status", STATUS_ROUTE
        )
        if error:
            return error
        try:
            external_ids = billing.parse_status_request(
                data, max_ids=backend.psa_batch_max
            )
        except billing.StatusRequestError as exc:
            return _error(exc.status_code, str(exc))
        # The backend is the superuser's (see read_signed_json); the
        # authenticated PSA is answered about this backend's items only.
        items = backend.env["qtc.psa.item"].search(
            [("backend_id", "=", backend.id), ("external_id", "in", external_ids)]
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
