import logging
from datetime import timedelta

from markupsafe import Markup, escape

from odoo import _, fields, models
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.exceptions import UserError

from .. import const

_logger = logging.getLogger(__name__)

# A link that expires within this time is not worth emailing: a new one is made.
LINK_MIN_LIFETIME = timedelta(hours=1)


class AccountMove(models.Model):
    # Invoices are paid, disputed and refunded by Stripe events: traceable.
    _name = "account.move"
    _inherit = ["account.move", "qtc.trace.mixin"]

    stripe_dispute_status = fields.Selection(
        const.DISPUTE_FLAGS,
        string="Stripe dispute",
        readonly=True,
        copy=False,
        tracking=True,
        help="Set when a customer disputes the Stripe charge that paid this "
        "invoice; updated when Stripe closes the dispute.",
    )
    stripe_dispute_id = fields.Char(
        string="Stripe dispute id", readonly=True, copy=False
    )
    stripe_payment_url = fields.Char(
        string="Stripe payment link",
        readonly=True,
        copy=False,
        help="Stripe Checkout page where the customer pays this invoice.",
    )
    stripe_checkout_session_id = fields.Char(readonly=True, copy=False)
    stripe_payment_url_expires_at = fields.Datetime(
        string="Stripe payment link expires",
        readonly=True,
        copy=False,
        help="Stripe Checkout pages expire (24 hours at most after creation).",
    )
    stripe_payment_url_amount = fields.Monetary(
        string="Stripe payment link amount",
        readonly=True,
        copy=False,
        help="The open amount the Stripe payment link asks for.",
    )

    def _stripe_backend_sudo(self):
        """The active Stripe backend of the invoice's company, or an empty set."""
        self.ensure_one()
        # Narrow sudo: invoice users need not read connector configuration to
        # know whether a Stripe backend exists for the company.
        return (
            self.env["qtc.backend"]
            .sudo()
            .search(
                [
                    ("provider", "=", "stripe"),
                    ("state", "=", "active"),
                    ("company_id", "=", self.company_id.id),
                ],
                limit=1,
            )
        )

    def action_stripe_payment_link(self):
        """Create a Stripe Checkout Session for the open amount of each posted
        customer invoice and keep its URL on the invoice.

        :raises UserError: not a posted customer invoice with an open amount,
            or no active Stripe backend for the company
        """
        for invoice in self:
            if (
                invoice.move_type != "out_invoice"
                or invoice.state != "posted"
                or invoice.currency_id.is_zero(invoice.amount_residual)
            ):
                raise UserError(
                    _(
                        "%s is not a posted customer invoice with an open amount.",
                        invoice.display_name,
                    )
                )
            backend_sudo = invoice._stripe_backend_sudo()
            if not backend_sudo:
                raise UserError(
                    _(
                        "No active Stripe backend for company %s.",
                        invoice.company_id.name,
                    )
                )
            # The API key, bindings and trace are handled server-side by the
            # (already sudoed) backend; the user needs no access to them.
            backend_sudo._stripe_create_payment_link(invoice)
        return True

    # ---------------------------------------------------------------- email

    def _stripe_payment_url_is_current(self):
        """The stored link still asks for the open amount and will not expire
        soon."""
        self.ensure_one()
        return bool(
            self.stripe_payment_url
            and self.stripe_payment_url_expires_at
            and self.stripe_payment_url_expires_at
            > fields.Datetime.now() + LINK_MIN_LIFETIME
            and not self.currency_id.compare_amounts(
                self.stripe_payment_url_amount, self.amount_residual
            )
        )

    def _stripe_payment_url_for_mail(self):
        """The Stripe payment link to put in this invoice's email: the stored
        one while current, else a new one when the company's Stripe backend
        has a key. Never raises: the email must go out even when Stripe
        cannot make a link; the failure is logged and opened as an exception.

        :returns: the URL, or ``None`` (not a payable customer invoice, no
            backend able to make links, or link creation failed)
        """
        self.ensure_one()
        if (
            self.move_type != "out_invoice"
            or self.state != "posted"
            or self.payment_state not in ("not_paid", "partial")
            or self.currency_id.is_zero(self.amount_residual)
        ):
            return None
        if self._stripe_payment_url_is_current():
            return self.stripe_payment_url
        backend_sudo = self._stripe_backend_sudo()
        if not backend_sudo or not backend_sudo._stripe_has_api_key():
            return None
        try:
            with self.env.cr.savepoint():
                return backend_sudo._stripe_create_payment_link(self)
        except Exception as exc:
            # Whatever went wrong (Stripe down or refusing, no customer email,
            # a bug), the invoice email goes out: only the link is missing.
            _logger.warning(
                "Stripe payment link for %s not created, email sent without it: %s",
                self.name,
                exc,
            )
            backend_sudo._stripe_open_exception(
                BusinessError(
                    _(
                        "Stripe payment link for %(invoice)s not created; its email "
                        "went out without it.",
                        invoice=self.name,
                    ),
                    category=getattr(exc, "category", None) or "remote_rejected",
                    problems=[str(exc)[:500]],
                    records=[("account.move", self.id)],
                    suggested_action=_(
                        "Fix the cause, then create the link with the invoice's "
                        "'Stripe payment link' button and send it to the customer."
                    ),
                )
            )
            return None

    def _stripe_mail_body_with_link(self, body, url, lang=None):
        """``body`` (HTML, or plain text as ``message_post`` would escape it)
        ending with a "Pay online with Stripe" link to ``url``."""
        label = self.with_context(lang=lang).env._("Pay online with Stripe")
        link = Markup(
            '<p style="margin: 16px 0px 16px 0px;">'
            '<a href="%s" style="background-color: #635bff; padding: 8px 16px; '
            'text-decoration: none; color: #fff; border-radius: 5px;">%s</a></p>'
        ) % (url, label)
        return escape(body or "") + link
