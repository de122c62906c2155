from datetime import timedelta
from urllib.parse import urlencode

from markupsafe import Markup, escape

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.access import check_action
from odoo.exceptions import AccessError, UserError

from .. import const

# A Checkout Session that expires within this time is not handed to a customer
# any more (too little time to pay): a new one is made.
SESSION_MIN_LIFETIME = timedelta(minutes=30)
# The Odoo route that sends a customer to a current Checkout Session.
PAY_ROUTE = "/qtc/stripe/pay"
INVOICING_GROUP = "account.group_account_invoice"
# What Stripe answered, stored by the connector alone (with superuser rights):
# the durable payment link emailed to customers redirects to the stored
# Checkout URL, so no user may set it, nor the dispute Stripe reported.
STRIPE_RECORDED_FIELDS = frozenset(
    {
        "stripe_payment_url",
        "stripe_checkout_session_id",
        "stripe_payment_url_expires_at",
        "stripe_payment_url_amount",
        "stripe_dispute_status",
        "stripe_dispute_id",
    }
)


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
    stripe_pay_link = fields.Char(
        string="Online payment link",
        compute="_compute_stripe_pay_link",
        help="The link emailed to the customer: it does not expire. Opened, it "
        "leads to a Stripe Checkout page for the open amount, made then if the "
        "current one expired or asks for another amount.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._stripe_check_recorded_fields(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._stripe_check_recorded_fields(vals)
        return super().write(vals)

    def _stripe_check_recorded_fields(self, vals):
        """Refuse a user's value for a field only Stripe's answers set."""
        touched = STRIPE_RECORDED_FIELDS.intersection(vals)
        if touched and not self.env.su:
            raise AccessError(
                _(
                    "%(fields)s record what Stripe answered: only the Stripe "
                    "connector sets them.",
                    fields=", ".join(sorted(touched)),
                )
            )

    @api.depends("move_type", "access_token")
    def _compute_stripe_pay_link(self):
        for move in self:
            move.stripe_pay_link = (
                move._stripe_pay_link_url()
                if move.move_type == "out_invoice" and move.access_token
                else False
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

    def _stripe_is_payable(self):
        """A posted customer invoice with an amount still to pay."""
        self.ensure_one()
        return (
            self.move_type == "out_invoice"
            and self.state == "posted"
            and self.payment_state in ("not_paid", "partial")
            and not self.currency_id.is_zero(self.amount_residual)
        )

    def _stripe_pay_link_url(self):
        """The durable payment link of the invoice (absolute URL), holding its
        portal access token. Makes the token when the invoice has none."""
        self.ensure_one()
        query = urlencode({"access_token": self._portal_ensure_token()})
        return f"{self.get_base_url()}{PAY_ROUTE}/{self.id}?{query}"

    def action_stripe_payment_link(self):
        """Give each posted customer invoice its durable payment link and a
        Stripe Checkout Session for its open amount (the current one while it
        is valid, else a new one), shown on the Stripe tab.

        :raises UserError: not a posted customer invoice with an open amount,
            or no active Stripe backend for the company
        :raises AccessError: the user may not edit the invoices (invoicing
            rights and write access to them)
        """
        check_action(self, INVOICING_GROUP, "write", _("make a Stripe payment link"))
        for invoice in self:
            if not invoice._stripe_is_payable():
                raise UserError(
                    _(
                        "%s is not a posted customer invoice with an open amount.",
                        invoice.display_name,
                    )
                )
            invoice._portal_ensure_token()
            invoice._stripe_checkout_url()
        return True

    # ------------------------------------------------------ Checkout Session

    def _stripe_checkout_session_is_current(self):
        """The stored Checkout Session still asks for the open amount and has
        time left for the customer to pay."""
        self.ensure_one()
        return bool(
            self.stripe_payment_url
            and self.stripe_payment_url_expires_at
            and self.stripe_payment_url_expires_at
            > fields.Datetime.now() + SESSION_MIN_LIFETIME
            and not self.currency_id.compare_amounts(
                self.stripe_payment_url_amount, self.amount_residual
            )
        )

    def _stripe_checkout_url(self):
        """The URL of a Stripe Checkout Session paying the open amount: the
        stored one while current, else a new one, stored on the invoice.

        Sessions are made only when the stored one cannot be used, so clicks
        on the payment link do not each create one; the invoice row is locked
        first so two clicks at once make one session (the second waits, then
        its request is retried by Odoo and finds the new session).

        :returns: the Checkout URL
        :raises UserError: no active Stripe backend for the company
        :raises BusinessError, RetryableError: Stripe refused or is unreachable
            (see ``qtc.backend._stripe_api``)
        """
        self.ensure_one()
        if self._stripe_checkout_session_is_current():
            return self.stripe_payment_url
        backend_sudo = self._stripe_backend_sudo()
        if not backend_sudo:
            raise UserError(
                _("No active Stripe backend for company %s.", self.company_id.name)
            )
        self.env.cr.execute(
            "SELECT id FROM account_move WHERE id = %s FOR NO KEY UPDATE", [self.id]
        )
        # The API key, bindings and trace are handled server-side by the
        # (already sudoed) backend; the caller needs no access to them.
        return backend_sudo._stripe_create_payment_link(self)

    # ---------------------------------------------------------------- email

    def _stripe_pay_link_to_offer(self):
        """The durable payment link to offer the customer (invoice email,
        portal page), or ``None``: not a payable customer invoice, or no
        active Stripe backend with a secret key for its company. Asks Stripe
        nothing: the Checkout Session is made when the customer opens the
        link.
        """
        self.ensure_one()
        if not self._stripe_is_payable():
            return None
        backend_sudo = self._stripe_backend_sudo()
        if not backend_sudo or not backend_sudo._stripe_has_api_key():
            return None
        return self._stripe_pay_link_url()

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
