from odoo import _, fields, models
from odoo.exceptions import UserError

from .. import const


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
