"""Revenue assurance of cash application: a payment left unapplied, a payment
event never applied, an invoice whose checkout ran out without confirmation,
the payment-to-applied service level, and the daily balance reconciliation
with differences both ways (Stripe mocked in its documented shapes)."""

from datetime import UTC, date, datetime, timedelta

import responses

from odoo import fields
from odoo.tests import new_test_user, tagged

from .common import EVENT_TIME, StripeCase, new_id

API = "https://api.stripe.com"
DAY = date(2023, 11, 14)  # EVENT_TIME's UTC day
DAY_START = int(datetime(2023, 11, 14, tzinfo=UTC).timestamp())


@tagged("post_install", "-at_install")
class TestStripeAssurance(StripeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env,
            "stripe_assurance_owner",
            groups="qtc_connector_base.group_qtc_user",
        )

    def check(self, code):
        return self.env["qtc.assurance.check"].create(
            {
                "name": code,
                "code": code,
                "company_id": self.env.company.id,
                "owner_user_id": self.owner.id,
            }
        )

    def measure(self, check, hours_later=1):
        check._qtc_assurance_compute(
            now=fields.Datetime.add(fields.Datetime.now(), hours=hours_later)
        )
        return self.env[check.res_model].browse(check.snapshot_id.res_ids)

    def breach(self, check):
        return self.env["qtc.exception"].search(
            [("res_model", "=", check._name), ("res_id", "=", check.id)]
        )

    # --------------------------------------------------------------- checks

    def test_payment_left_unapplied_counts_once_until_linked(self):
        self.bind_customer(self.partner_a)
        self.invoice(100.0)
        target = self.invoice(100.0)
        intent_id = new_id("pi")
        first = self.apply(
            self.payment_intent_event(
                10000, payment_intent_id=intent_id, customer=self.customer_id
            )
        )
        # The same money reported again by its Checkout Session.
        self.apply(self.checkout_event(10000, intent_id))
        self.assertEqual(first.state, "failed")
        unapplied = self.check("stripe_unapplied_payments")
        unreflected = self.check("stripe_payments_unreflected")
        self.assertEqual(self.measure(unapplied), first, "one payment, one item")
        self.assertEqual(unapplied.last_amount, 100.0)
        self.assertFalse(self.measure(unreflected), "counted as unapplied only")
        exception = self.breach(unapplied)
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.activity_ids.user_id, self.owner)

        cash = self.exception_of(first)
        cash.link_ref = target
        cash.action_link()
        self.run_jobs()
        self.assertEqual(target.payment_state, "paid")
        self.assertFalse(self.measure(unapplied, hours_later=2))
        self.assertEqual(exception.state, "resolved")

    def test_payment_event_waiting_to_be_applied_counts_after_the_grace(self):
        invoice = self.invoice(50.0)
        stored = self.store(
            self.payment_intent_event(
                5000, metadata={"odoo_invoice": invoice.name}, currency="usd"
            )
        )
        event = self.env["qtc.event"].browse(list(stored.values()))
        check = self.check("stripe_payments_unreflected")
        check.grace_hours = 2
        self.assertFalse(self.measure(check, hours_later=1))
        self.assertEqual(self.measure(check, hours_later=3), event)
        self.assertEqual(check.last_amount, 50.0)
        self.run_jobs()
        self.assertEqual(invoice.payment_state, "paid")
        self.assertFalse(self.measure(check, hours_later=4))
        self.assertEqual(self.breach(check).state, "resolved")

    def test_invoice_whose_checkout_ran_out_without_confirmation(self):
        invoice = self.invoice(80.0)
        paid = self.invoice(20.0)
        expired = fields.Datetime.now() - timedelta(hours=1)
        # What the Checkout Session answered: the connector's own fields.
        (invoice | paid).sudo().write(
            {
                "stripe_checkout_session_id": new_id("cs_test"),
                "stripe_payment_url_expires_at": expired,
            }
        )
        self.apply(
            self.payment_intent_event(2000, metadata={"odoo_invoice": paid.name})
        )
        check = self.check("stripe_invoice_unconfirmed")
        self.assertEqual(self.measure(check), invoice)
        self.assertEqual(check.last_amount, 80.0)
        self.apply(
            self.payment_intent_event(8000, metadata={"odoo_invoice": invoice.name})
        )
        self.assertFalse(self.measure(check, hours_later=2))

    def test_payment_to_applied_service_level(self):
        invoice = self.invoice(100.0)
        self.apply(
            self.payment_intent_event(10000, metadata={"odoo_invoice": invoice.name})
        )
        sla = self.env["qtc.flow.sla"].create(
            {
                "name": "Payment received to applied",
                "flow": "stripe_payment_to_applied",
                "target_hours": 1,
                "company_id": self.env.company.id,
            }
        )
        sla._qtc_sla_compute()
        self.assertEqual(sla.last_count, 1)
        self.assertEqual(sla.snapshot_ids.backend_id, self.backend)
        self.assertEqual(sla.state, "ok")
        self.assertEqual(sla.res_model, "account.payment")

    # ------------------------------------------------------- reconciliation

    def paid(self, amount_minor):
        """An invoice paid through Stripe; returns its charge id."""
        invoice = self.invoice(amount_minor / 100)
        charge_id = new_id("ch")
        self.apply(
            self.payment_intent_event(
                amount_minor, charge=charge_id, metadata={"odoo_invoice": invoice.name}
            )
        )
        self.assertEqual(invoice.payment_state, "paid")
        return charge_id

    def mock_balance(self, transactions):
        responses.get(
            f"{API}/v1/balance_transactions",
            match=[
                responses.matchers.query_param_matcher(
                    {
                        "created[gte]": str(DAY_START),
                        "created[lt]": str(DAY_START + 86400),
                        "limit": "100",
                    }
                )
            ],
            json={"object": "list", "has_more": False, "data": transactions},
        )

    @staticmethod
    def txn(txn_id, source, amount):
        return {
            "id": txn_id,
            "object": "balance_transaction",
            "type": "charge",
            "source": source,
            "amount": amount,
            "currency": "usd",
            "created": EVENT_TIME,
        }

    @responses.activate
    def test_balance_and_payments_differ_both_ways(self):
        self.backend.stripe_api_key = "sk_test_assurance"
        short = self.paid(10000)  # Stripe says 90.00
        unknown_at_stripe = self.paid(2500)
        other_day = self.paid(4000)
        stray = new_id("ch")
        self.mock_balance(
            [self.txn("txn_a", short, 9000), self.txn("txn_b", stray, 700)]
        )
        responses.get(
            f"{API}/v1/charges/{unknown_at_stripe}",
            status=404,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"No such charge: '{unknown_at_stripe}'",
                    "param": "id",
                }
            },
        )
        responses.get(
            f"{API}/v1/charges/{other_day}",
            json={"id": other_day, "object": "charge", "created": EVENT_TIME + 86400},
        )
        run = self.env["qtc.reconciliation.run"]._stripe_run_day(self.backend, DAY)
        self.assertEqual(run.summary, "2 balance transactions checked, 3 mismatches.")
        self.assertEqual(
            {line.key: line.difference for line in run.line_ids},
            {
                short: "amount",
                stray: "missing_in_odoo",
                unknown_at_stripe: "missing_externally",
            },
        )
        lines = {line.key: line for line in run.line_ids}
        self.assertIn(
            "Stripe does not list", lines[unknown_at_stripe].exception_id.name
        )
        self.assertIn("is not recorded in Odoo", lines[stray].exception_id.name)
        self.assertIn("90.00 USD", lines[short].exception_id.details)
        self.assertIn("100.00 USD", lines[short].exception_id.details)

        # The next check of that day finds Stripe and Odoo agreeing.
        responses.reset()
        self.mock_balance(
            [
                self.txn("txn_a", short, 10000),
                self.txn("txn_c", unknown_at_stripe, 2500),
            ]
        )
        responses.get(
            f"{API}/v1/charges/{other_day}",
            json={"id": other_day, "object": "charge", "created": EVENT_TIME + 86400},
        )
        again = self.env["qtc.reconciliation.run"]._stripe_run_day(self.backend, DAY)
        self.assertEqual(again.difference_count, 0)
        self.assertEqual(again.matched_count, 2)
        self.assertEqual(
            set(run.line_ids.exception_id.mapped("state")),
            {"resolved"},
            "the stray charge left Stripe's list too: nothing left to record",
        )
