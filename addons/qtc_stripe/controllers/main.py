"""Stripe's webhook endpoint: one URL per backend, handled by the base."""

from odoo import http
from odoo.addons.qtc_connector_base.controllers.main import receive_webhook


class StripeWebhookController(http.Controller):
    @http.route(
        "/qtc/stripe/<int:backend_id>/webhook",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def stripe_webhook(self, backend_id, **_kwargs):
        """Verify the ``Stripe-Signature``, store the event, answer 2xx.

        Nothing is applied in the request: the event's job does that, so an
        event that cannot be applied never makes Stripe see a 5xx.
        """
        return receive_webhook(backend_id, provider="stripe")
