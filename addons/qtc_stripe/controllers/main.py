"""Stripe's webhook endpoint: one URL per backend, handled by the base."""

from odoo import http
from odoo.addons.qtc_connector_base.controllers.main import (
    InboundRoute,
    inbound_route,
    receive_webhook,
)

STRIPE_ROUTE = InboundRoute(provider="stripe")


class StripeWebhookController(http.Controller):
    @inbound_route("/qtc/stripe/<int:backend_id>/webhook", STRIPE_ROUTE)
    def stripe_webhook(self, backend_id, **_kwargs):
        """Verify the ``Stripe-Signature``, store the event, answer 2xx.

        Nothing is applied in the request: the event's job does that, so an
        event that cannot be applied never makes Stripe see a 5xx.
        """
        return receive_webhook(backend_id, route=STRIPE_ROUTE)
