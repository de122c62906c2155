from odoo import _, api, fields, models
from odoo.tools import SQL

from ..lib import mapper

CODES = [
    ("stripe_unapplied_payments", "Payments received but unapplied"),
    ("stripe_payments_unreflected", "Payment events not reflected in receivables"),
    ("stripe_invoice_unconfirmed", "Invoices missing payment confirmation"),
]
# Stripe events that bring money in, and where each carries its amount.
PAYMENT_EVENT_AMOUNTS = {
    mapper.PAYMENT_SUCCEEDED: "amount_received",
    mapper.CHECKOUT_COMPLETED: "amount_total",
    mapper.CHECKOUT_ASYNC_SUCCEEDED: "amount_total",
    mapper.INVOICE_PAID: "amount_paid",
}
# Exception categories of a payment that arrived but matches no invoice.
UNAPPLIED_CATEGORIES = ("unapplied_cash", "overpayment")


class QtcAssuranceCheck(models.Model):
    """Revenue assurance checks of the Stripe connector, on the payment
    events Stripe sent: money that matched no invoice, and money whose event
    was not applied at all (waiting, failed, dead)."""

    _inherit = "qtc.assurance.check"

    code = fields.Selection(
        selection_add=CODES, ondelete={code: "cascade" for code, _label in CODES}
    )

    @api.model
    def _qtc_check_descriptions(self):
        return {
            **super()._qtc_check_descriptions(),
            "stripe_unapplied_payments": _(
                "Payments Stripe reported that match no open invoice (unapplied "
                "cash, overpayments) and are still waiting for a person. One per "
                "payment, however many events reported it. Amount: the payment, "
                "in company currency."
            ),
            "stripe_payments_unreflected": _(
                "Payments Stripe reported whose event was not applied to "
                "receivables after the grace period: still queued, failed for "
                "another reason, or dead after its retries. Amount: the "
                "payment, in company currency."
            ),
            "stripe_invoice_unconfirmed": _(
                "Posted invoices whose customer opened the Stripe checkout (a "
                "Checkout Session was made) and whose session ran out without a "
                "payment confirmation reaching Odoo: abandoned, or confirmed at "
                "Stripe and lost on the way. Amount: what is still open. Age: "
                "since the session expired."
            ),
        }

    def _qtc_check_query(self, cutoff):
        if self.code == "stripe_unapplied_payments":
            return ("qtc.event", self._stripe_payment_events_sql(cutoff, True))
        if self.code == "stripe_payments_unreflected":
            return ("qtc.event", self._stripe_payment_events_sql(cutoff, False))
        if self.code == "stripe_invoice_unconfirmed":
            return (
                "account.move",
                SQL(
                    """
                    SELECT m.id AS res_id, m.amount_residual_signed AS amount,
                           m.stripe_payment_url_expires_at AS since
                      FROM account_move m
                     WHERE m.company_id = %s AND m.state = 'posted'
                       AND m.move_type = 'out_invoice'
                       AND m.payment_state IN ('not_paid', 'partial')
                       AND m.stripe_checkout_session_id IS NOT NULL
                       AND m.stripe_payment_url_expires_at <= %s
                    """,
                    self.company_id.id,
                    cutoff,
                ),
            )
        return super()._qtc_check_query(cutoff)

    def _stripe_payment_events_sql(self, cutoff, unapplied):
        """One row per payment (its key: the PaymentIntent, else the Stripe
        object) that no applied event settled: the first event reporting it,
        since when it arrived. ``unapplied`` picks the payments with an open
        unapplied-cash exception, else all the others."""
        company = self.company_id.id
        amount_field = SQL(
            "CASE k.event_type "
            + " ".join("WHEN %s THEN k.o->>%s" for _type in PAYMENT_EVENT_AMOUNTS)
            + " END",
            *[
                value
                for event_type, field_name in PAYMENT_EVENT_AMOUNTS.items()
                for value in (event_type, field_name)
            ],
        )
        amount = self._qtc_sql_company_amount(
            SQL(
                "CASE WHEN p.minor ~ '^[0-9]+$' AND cur.id IS NOT NULL "
                "THEN p.minor::numeric / power(10, cur.decimal_places) "
                "ELSE 0 END"
            ),
            SQL("COALESCE(cur.id, %s)", self.company_id.currency_id.id),
            SQL("p.received_at::date"),
            company,
        )
        return SQL(
            """
            WITH k AS (
                SELECT e.id, e.state, e.received_at, e.event_type,
                       e.payload::jsonb->'data'->'object' AS o
                  FROM qtc_event e
                  JOIN qtc_backend be ON be.id = e.backend_id
                 WHERE be.provider = 'stripe' AND be.company_id = %s
                   AND e.event_type IN %s
            ), keyed AS (
                SELECT k.id, k.state, k.received_at, %s AS minor,
                       upper(k.o->>'currency') AS currency,
                       CASE WHEN k.event_type = %s THEN k.o->>'id'
                            ELSE COALESCE(k.o->>'payment_intent', k.o->>'id')
                       END AS payment_key
                  FROM k
            ), pending AS (
                SELECT DISTINCT ON (payment_key) *
                  FROM keyed
                 WHERE state IN ('received', 'failed', 'dead')
                   AND payment_key IS NOT NULL
                   AND payment_key NOT IN (
                       SELECT payment_key FROM keyed
                        WHERE state = 'done' AND payment_key IS NOT NULL)
              ORDER BY payment_key, received_at, id
            ), flagged AS (
                SELECT pending.*,
                       EXISTS (
                           SELECT 1 FROM qtc_exception x
                            JOIN keyed same ON same.id = x.event_id
                           WHERE same.payment_key = pending.payment_key
                             AND x.state = 'open' AND x.category IN %s
                       ) AS unapplied
                  FROM pending
            )
            SELECT p.id AS res_id, %s AS amount, p.received_at AS since
              FROM flagged AS p
         LEFT JOIN res_currency cur ON cur.name = p.currency
             WHERE p.unapplied = %s AND p.received_at <= %s
            """,
            company,
            tuple(PAYMENT_EVENT_AMOUNTS),
            amount_field,
            mapper.PAYMENT_SUCCEEDED,
            UNAPPLIED_CATEGORIES,
            amount,
            unapplied,
            cutoff,
        )
