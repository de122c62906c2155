from odoo import fields, models


class AccountPayment(models.Model):
    # Payments and refunds are created from Stripe events: traceable.
    _name = "account.payment"
    _inherit = ["account.payment", "qtc.trace.mixin"]

    stripe_refunded_payment_id = fields.Many2one(
        "account.payment",
        string="Refund of (Stripe)",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The Stripe payment this outbound payment refunds.",
    )
    stripe_refund_payment_ids = fields.One2many(
        "account.payment",
        "stripe_refunded_payment_id",
        string="Stripe refunds",
        readonly=True,
    )
    stripe_refund_ledger = fields.Json(
        readonly=True,
        copy=False,
        help="What Stripe reported about this payment's refunds: each refund id "
        "with its amount and status, and the charge's cumulative refunded total. "
        "The booked refunds are brought up to it, never added twice.",
    )
