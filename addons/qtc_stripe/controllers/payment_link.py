"""The durable payment link of an invoice: ``/qtc/stripe/pay/<id>?access_token=``.

Stripe Checkout Sessions expire within 24 hours, so the invoice email carries
this Odoo URL instead; opened, it sends the customer to a Checkout Session for
the open amount, made then when the stored one cannot be used.
"""

import logging
from urllib.parse import urlsplit

import psycopg2

from odoo import _, http
from odoo.addons.qtc_connector_base.controllers.main import GET_BODY_CAP
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.http import request
from odoo.tools import consteq

_logger = logging.getLogger(__name__)

# What a wrong or missing token is compared with when the invoice does not
# exist or has no token: the check then takes the same time as for a real one.
_NO_TOKEN = "00000000-0000-0000-0000-000000000000"  # noqa: S105 - not a secret
# Seconds a customer is asked to wait before trying again when Stripe is down.
RETRY_AFTER_SECONDS = 60


class StripePaymentLinkController(http.Controller):
    @http.route(
        "/qtc/stripe/pay/<int:invoice_id>",
        type="http",
        auth="public",
        methods=["GET"],
        save_session=False,
        # A GET takes no body: Odoo would otherwise parse a form body sent with
        # one (up to its 128 MiB default) before this handler runs.
        max_content_length=GET_BODY_CAP,
    )
    def stripe_pay(self, invoice_id, access_token=None, **_kwargs):
        """Send the customer to Stripe Checkout for the invoice's open amount.

        - wrong or missing token, or not a customer invoice: 404, whatever the
          reason, so the answer tells nothing about the invoice;
        - nothing left to pay (paid, cancelled, draft): a small page, Stripe
          is not called;
        - otherwise 303 to the invoice's current Checkout Session, or to a new
          one when it expired or asks for another amount;
        - Stripe unreachable or refusing: a page asking to try later (503), and
          an exception for finance.
        """
        invoice_sudo = self._invoice_sudo_from_token(invoice_id, access_token)
        if invoice_sudo is None or invoice_sudo.move_type != "out_invoice":
            raise request.not_found()
        if not invoice_sudo._stripe_is_payable():
            return self._page(invoice_sudo, "nothing_to_pay")
        backend_sudo = invoice_sudo._stripe_backend_sudo()
        if not backend_sudo or not backend_sudo._stripe_has_api_key():
            return self._page(invoice_sudo, "unavailable", status=503)
        try:
            with request.env.cr.savepoint():
                url = invoice_sudo._stripe_checkout_url()
                if not url or urlsplit(url).scheme != "https":
                    # Never redirect a customer to anything but Stripe's page;
                    # the odd answer is not kept on the invoice either.
                    raise BusinessError(
                        _("Stripe gave no https Checkout URL (%s).", str(url)[:100]),
                        category="remote_rejected",
                    )
        except psycopg2.Error:
            # Concurrent updates (two clicks at once) are retried by Odoo's
            # request handling; they must not become an error page.
            raise
        except Exception as exc:
            # Stripe down, refusing, or answering oddly: the customer gets a
            # page saying so, never a traceback; finance gets one exception
            # per invoice (a repeated failure reopens it, see _qtc_open).
            _logger.warning(
                "Stripe Checkout Session for %s not made: %s", invoice_sudo.name, exc
            )
            backend_sudo._stripe_open_exception(
                BusinessError(
                    _(
                        "The customer could not pay %(invoice)s online: no Stripe "
                        "Checkout page could be made.",
                        invoice=invoice_sudo.name,
                    ),
                    category=getattr(exc, "category", None) or "remote_rejected",
                    problems=[str(exc)[:500]],
                    records=[("account.move", invoice_sudo.id)],
                    suggested_action=_(
                        "Check the Stripe backend (secret key, Stripe's status); "
                        "the customer's link works again once Stripe answers."
                    ),
                )
            )
            return self._page(
                invoice_sudo,
                "try_later",
                status=503,
                headers=[("Retry-After", str(RETRY_AFTER_SECONDS))],
            )
        return request.redirect(url, code=303, local=False)

    @staticmethod
    def _invoice_sudo_from_token(invoice_id, access_token):
        """The invoice whose portal access token is ``access_token``, or
        ``None``. The token is compared in constant time before anything else
        is read or done.

        :returns: the invoice in sudo, or ``None``
        """
        # Narrow sudo: a public visitor proves access with the invoice's
        # token; only the token is read before it is checked, and the sudoed
        # record is handed on only when it matches.
        invoice_sudo = request.env["account.move"].sudo().browse(invoice_id).exists()
        expected = (invoice_sudo.access_token if invoice_sudo else None) or _NO_TOKEN
        given = access_token if isinstance(access_token, str) else ""
        matches = consteq(expected.encode(), given.encode())
        if not (matches and invoice_sudo and invoice_sudo.access_token):
            return None
        return invoice_sudo

    @staticmethod
    def _page(invoice_sudo, reason, status=200, headers=None):
        """The small page a customer sees instead of Stripe Checkout."""
        return request.render(
            "qtc_stripe.stripe_pay_page",
            {
                "reason": reason,
                "invoice_name": invoice_sudo.name,
                "company_name": invoice_sudo.company_id.name,
                "portal_url": invoice_sudo.get_portal_url(),
            },
            status=status,
            headers=headers,
        )
