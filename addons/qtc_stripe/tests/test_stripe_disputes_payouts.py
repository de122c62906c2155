"""Money that leaves the Stripe balance: lost disputes, dispute fees, payout fees.

The Stripe journal must move as the Stripe balance does: a lost dispute takes
the disputed funds (and Stripe's dispute fee) out of it, a payout takes its
amount and its fee. Events are built from Stripe's example objects.
"""

from datetime import timedelta

import responses

from odoo import fields
from odoo.tests import tagged

from .common import EVENT_TIME, StripeCase, new_id
from .unit.stripe_fixtures import load

API = "https://api.stripe.com"


def balance_transaction(amount, fee, currency="usd", txn_id=None, **changes):
    """A Stripe balance transaction (the fixture object) with these amounts in
    minor units; ``net`` is ``amount - fee`` as Stripe computes it."""
    txn = load("balance_transaction")
    txn.update(
        id=txn_id or new_id("txn"),
        amount=amount,
        fee=fee,
        net=amount - fee,
        currency=currency,
        fee_details=[
            {
                "amount": fee,
                "currency": currency,
                "description": "Stripe fee",
                "type": "stripe_fee",
            }
        ]
        if fee
        else [],
        **changes,
    )
    return txn


@tagged("post_install", "-at_install")
class TestStripeDisputesPayouts(StripeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fee_account = cls.company_data["default_account_expense"]

    def book_fees(self, api_key=None):
        values = {
            "stripe_book_fees": True,
            "stripe_fee_account_id": self.fee_account.id,
        }
        if api_key:
            values["stripe_api_key"] = api_key
        self.backend.write(values)

    def paid_invoice(self, amount_minor=10000):
        invoice = self.invoice(amount_minor / 100)
        charge_id = new_id("ch")
        event = self.apply(
            self.payment_intent_event(
                amount_minor, charge=charge_id, metadata={"odoo_invoice": invoice.name}
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(invoice.payment_state, "paid")
        return invoice, charge_id

    def closed_event(
        self,
        charge_id,
        dispute_id,
        status,
        amount=10000,
        transactions=(),
        created=EVENT_TIME + 60,
    ):
        event = self.dispute_event(
            "charge.dispute.closed",
            charge_id,
            dispute_id,
            status,
            amount=amount,
            created=created,
        )
        event["data"]["object"]["balance_transactions"] = list(transactions)
        return event

    @staticmethod
    def withdrawal(amount, fee=1500, dispute_id=None):
        return balance_transaction(
            -amount,
            fee,
            type="adjustment",
            reporting_category="dispute",
            source=dispute_id,
            description="Chargeback withdrawal",
        )

    @staticmethod
    def reinstatement(amount, fee=-1500, dispute_id=None):
        return balance_transaction(
            amount,
            fee,
            type="adjustment",
            reporting_category="dispute_reversal",
            source=dispute_id,
            description="Chargeback reversal",
        )

    def chargebacks(self):
        return self.stripe_payments(payment_type="outbound")

    def fee_move(self, txn_id):
        return self.env["qtc.binding"]._qtc_to_internal(self.backend, "fee", txn_id)

    def stripe_balance(self):
        """What the Stripe journal holds, as Stripe's balance would: its
        liquidity and outstanding lines, not the customers' receivables nor
        the fee and transfer accounts on the other side of its entries."""
        others = (
            self.fee_account
            | self.env.company.transfer_account_id
            | self.partner_a.property_account_receivable_id
        )
        lines = self.env["account.move.line"].search(
            [
                ("journal_id", "=", self.stripe_journal.id),
                ("parent_state", "=", "posted"),
                ("account_id", "not in", others.ids),
            ]
        )
        return round(sum(lines.mapped("balance")), 2)

    def dispute_exceptions(self, dispute_id, state="open"):
        return self.env["qtc.exception"].search(
            [
                ("external_type", "=", "dispute"),
                ("external_id", "=", dispute_id),
                ("state", "=", state),
            ]
        )

    # ------------------------------------------------------------- lost

    def test_lost_dispute_takes_funds_and_fee_out_and_reopens_the_invoice(self):
        self.book_fees()
        invoice, charge_id = self.paid_invoice()
        self.assertEqual(self.stripe_balance(), 100.0)
        dispute_id = new_id("dp")
        opened = self.apply(
            self.dispute_event(
                "charge.dispute.created", charge_id, dispute_id, "needs_response"
            )
        )
        self.assertEqual(opened.state, "done", opened.error_message)
        withdrawal = self.withdrawal(10000, dispute_id=dispute_id)
        closed = self.apply(
            self.closed_event(charge_id, dispute_id, "lost", transactions=[withdrawal])
        )
        self.assertEqual(closed.state, "done", closed.error_message)

        chargeback = self.chargebacks()
        self.assertEqual(len(chargeback), 1)
        self.assertEqual(chargeback.amount, 100.0)
        self.assertEqual(chargeback.partner_id, self.partner_a)
        self.assertEqual(chargeback.payment_reference, dispute_id)
        self.assertNotIn(chargeback.state, ("draft", "canceled"))
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(
                self.backend, "dispute_loss", dispute_id
            ),
            chargeback,
        )
        # The customer owes the invoice again.
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertEqual(invoice.amount_residual, 100.0)
        self.assertEqual(invoice.stripe_dispute_status, "lost")
        # The chargeback is settled against the payment it takes back.
        original = self.stripe_payments(payment_type="inbound")
        receivable = self.partner_a.property_account_receivable_id
        lines = (original | chargeback).move_id.line_ids.filtered(
            lambda line: line.account_id == receivable
        )
        self.assertTrue(all(lines.mapped("reconciled")))

        fee_move = self.fee_move(withdrawal["id"])
        self.assertEqual(fee_move.state, "posted")
        self.assertEqual(
            fee_move.line_ids.filtered(
                lambda line: line.account_id == self.fee_account
            ).debit,
            15.0,
        )
        # +100 paid, -100 taken back, -15 dispute fee: Stripe's balance.
        self.assertEqual(self.stripe_balance(), -15.0)

        self.assertEqual(
            self.dispute_exceptions(dispute_id, "resolved").category, "dispute"
        )
        lost = self.dispute_exceptions(dispute_id)
        self.assertEqual(len(lost), 1)
        self.assertEqual(lost.severity, "high")
        self.assertIn("lost", lost.name)
        self.assertEqual(lost.record_ref, invoice)
        self.assertIn(chargeback.name, lost.details)
        self.assertIn(invoice.name, lost.details)
        self.assertIn("Fee 15.00 USD booked", closed.result)

    def test_partially_lost_dispute_reopens_only_the_disputed_amount(self):
        invoice, charge_id = self.paid_invoice(10000)
        dispute_id = new_id("dp")
        closed = self.apply(
            self.closed_event(charge_id, dispute_id, "lost", amount=4000)
        )
        self.assertEqual(closed.state, "done", closed.error_message)
        self.assertEqual(self.chargebacks().amount, 40.0)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(invoice.amount_residual, 40.0)
        self.assertEqual(self.stripe_balance(), 60.0)

    def test_lost_dispute_after_the_customer_changed_receivable_account(self):
        """The chargeback is set against the payment on the account that
        payment used, even when the customer's receivable account changed
        since (moved to doubtful debts, say)."""
        invoice, charge_id = self.paid_invoice()
        original = self.stripe_payments(payment_type="inbound")
        old_receivable = original.destination_account_id
        doubtful = self.copy_account(old_receivable, {"name": "Doubtful debts"})
        self.partner_a.property_account_receivable_id = doubtful
        dispute_id = new_id("dp")
        closed = self.apply(self.closed_event(charge_id, dispute_id, "lost"))
        self.assertEqual(closed.state, "done", closed.error_message)
        chargeback = self.chargebacks()
        self.assertEqual(chargeback.destination_account_id, old_receivable)
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertEqual(invoice.amount_residual, 100.0)
        self.assertIn(invoice.name, closed.result)
        lines = (original | chargeback).move_id.line_ids.filtered(
            lambda line: line.account_id == old_receivable
        )
        self.assertEqual(len(lines), 2)
        self.assertTrue(all(lines.mapped("reconciled")))
        self.assertFalse(
            chargeback.move_id.line_ids.filtered(
                lambda line: line.account_id == doubtful
            )
        )

    def test_lost_dispute_with_fee_booking_off_says_the_fee_is_not_booked(self):
        invoice, charge_id = self.paid_invoice()
        dispute_id = new_id("dp")
        withdrawal = self.withdrawal(10000, dispute_id=dispute_id)
        closed = self.apply(
            self.closed_event(charge_id, dispute_id, "lost", transactions=[withdrawal])
        )
        self.assertEqual(closed.state, "done", closed.error_message)
        self.assertIn("dispute fee of 15.00 USD is not booked", closed.result)
        self.assertFalse(self.fee_move(withdrawal["id"]))
        self.assertEqual(invoice.amount_residual, 100.0)
        self.assertEqual(self.stripe_balance(), 0.0)

    def test_lost_dispute_in_another_currency_is_left_to_finance(self):
        invoice, charge_id = self.paid_invoice()
        dispute_id = new_id("dp")
        event = self.closed_event(charge_id, dispute_id, "lost")
        event["data"]["object"]["currency"] = "eur"
        closed = self.apply(event)
        self.assertEqual(closed.state, "done", closed.error_message)
        self.assertIn("Not booked", closed.result)
        self.assertFalse(self.chargebacks())
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(invoice.stripe_dispute_status, "lost")
        lost = self.dispute_exceptions(dispute_id)
        self.assertEqual(lost.severity, "high")
        self.assertIn("EUR", lost.details)
        self.assertIn("by hand", lost.suggested_action)

    def test_duplicate_closed_event_books_once(self):
        self.book_fees()
        invoice, charge_id = self.paid_invoice()
        dispute_id = new_id("dp")
        withdrawal = self.withdrawal(10000, dispute_id=dispute_id)
        event = self.closed_event(
            charge_id, dispute_id, "lost", transactions=[withdrawal]
        )
        first = self.apply(event)
        self.assertEqual(first.state, "done", first.error_message)
        # Stripe delivers the same event again: stored once, nothing to run.
        self.assertFalse(self.apply(event))
        self.assertEqual(
            self.env["qtc.event"].search_count([("external_id", "=", event["id"])]), 1
        )
        # A replay of the event by a person changes nothing.
        first.action_replay()
        self.run_jobs()
        self.assertEqual(first.state, "done", first.error_message)
        self.assertEqual(len(self.chargebacks()), 1)
        # Nor does another closed event about the same dispute, later.
        later = dict(event, id=new_id("evt"), created=EVENT_TIME + 120)
        again = self.apply(later)
        self.assertEqual(again.state, "done", again.error_message)
        self.assertIn("already closed", again.result)
        self.assertEqual(len(self.chargebacks()), 1)
        self.assertEqual(invoice.amount_residual, 100.0)
        self.assertEqual(self.stripe_balance(), -15.0)
        self.assertEqual(len(self.dispute_exceptions(dispute_id)), 1)
        fees = self.env["qtc.binding"].search(
            [("backend_id", "=", self.backend.id), ("external_type", "=", "fee")]
        )
        self.assertEqual(len(fees), 1)

    def test_lost_before_created_and_before_the_payment_books_once(self):
        invoice = self.invoice(100.0)
        intent_id = new_id("pi")
        charge_id = new_id("ch")
        dispute_id = new_id("dp")
        closed = self.apply(self.closed_event(charge_id, dispute_id, "lost"))
        self.assertEqual(closed.state, "received")
        self.assertIn("not recorded yet", closed.job_ids.error_message)
        self.assertFalse(self.chargebacks())

        self.apply(
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                charge=charge_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        self.assertEqual(invoice.payment_state, "paid")
        closed.job_ids.sudo().write(
            {"eta": fields.Datetime.now() - timedelta(seconds=1)}
        )
        self.run_jobs()
        self.assertEqual(closed.state, "done", closed.error_message)
        self.assertEqual(self.chargebacks().amount, 100.0)
        self.assertEqual(invoice.amount_residual, 100.0)

        # The older "created" event arrives last: stale, changes nothing.
        opened = self.apply(
            self.dispute_event(
                "charge.dispute.created", charge_id, dispute_id, "needs_response"
            )
        )
        self.assertEqual(opened.state, "done", opened.error_message)
        self.assertIn("stale", opened.result)
        self.assertEqual(invoice.stripe_dispute_status, "lost")
        self.assertEqual(len(self.chargebacks()), 1)
        self.assertEqual(len(self.dispute_exceptions(dispute_id)), 1)

    # -------------------------------------------------------------- won

    def test_won_dispute_books_nothing(self):
        self.book_fees()
        invoice, charge_id = self.paid_invoice()
        dispute_id = new_id("dp")
        self.apply(
            self.dispute_event(
                "charge.dispute.created", charge_id, dispute_id, "needs_response"
            )
        )
        transactions = [
            self.withdrawal(10000, dispute_id=dispute_id),
            self.reinstatement(10000, dispute_id=dispute_id),
        ]
        closed = self.apply(
            self.closed_event(charge_id, dispute_id, "won", transactions=transactions)
        )
        self.assertEqual(closed.state, "done", closed.error_message)
        self.assertEqual(invoice.stripe_dispute_status, "won")
        self.assertEqual(invoice.payment_state, "paid")
        self.assertFalse(self.chargebacks())
        self.assertFalse(
            self.env["qtc.binding"].search(
                [("backend_id", "=", self.backend.id), ("external_type", "=", "fee")]
            )
        )
        self.assertEqual(self.stripe_balance(), 100.0)
        self.assertFalse(self.dispute_exceptions(dispute_id))
        self.assertEqual(len(self.dispute_exceptions(dispute_id, "resolved")), 1)

    # ----------------------------------------------------------- payouts

    @responses.activate
    def test_payout_fee_is_booked_and_the_bank_gets_the_payout(self):
        self.book_fees(api_key="sk_test_payout")
        payout_id = new_id("po")
        txn = balance_transaction(-110000, 1100, type="payout", source=payout_id)
        responses.get(f"{API}/v1/balance_transactions/{txn['id']}", json=txn)
        event = self.payout_event(110000, payout_id)
        event["data"]["object"].update(balance_transaction=txn["id"], method="instant")
        applied = self.apply(event)
        self.assertEqual(applied.state, "done", applied.error_message)
        self.assertIn("Fee 11.00 USD booked", applied.result)

        outgoing = self.stripe_payments(payment_type="outbound")
        incoming = self.env["account.payment"].search(
            [
                ("journal_id", "=", self.bank_journal.id),
                ("payment_reference", "=", payout_id),
            ]
        )
        self.assertEqual(outgoing.amount, 1100.0)
        self.assertEqual(incoming.amount, 1100.0)
        fee_move = self.fee_move(txn["id"])
        self.assertEqual(fee_move.journal_id, self.stripe_journal)
        fee_line = fee_move.line_ids.filtered(
            lambda line: line.account_id == self.fee_account
        )
        self.assertEqual(fee_line.debit, 11.0)
        # Stripe's balance lost the payout and its fee (the txn's net).
        self.assertEqual(self.stripe_balance(), -1111.0)

        calls = len(responses.calls)
        again = self.apply(dict(event, id=new_id("evt"), created=EVENT_TIME + 60))
        self.assertEqual(again.state, "done", again.error_message)
        self.assertEqual(len(responses.calls), calls)
        self.assertEqual(self.stripe_balance(), -1111.0)

    @responses.activate
    def test_unreadable_payout_balance_transaction_books_nothing(self):
        self.book_fees(api_key="sk_test_payout")
        payout_id = new_id("po")
        txn = balance_transaction(-110000, 1100, type="payout")
        txn["net"] = -110000  # not amount - fee
        responses.get(f"{API}/v1/balance_transactions/{txn['id']}", json=txn)
        event = self.payout_event(110000, payout_id)
        event["data"]["object"]["balance_transaction"] = txn["id"]
        applied = self.apply(event)
        self.assertEqual(applied.state, "failed")
        exception = self.exception_of(applied)
        self.assertEqual(exception.category, "data")
        self.assertIn("net must be amount - fee", exception.details)
        self.assertFalse(self.stripe_payments())
        self.assertFalse(self.fee_move(txn["id"]))

    @responses.activate
    def test_payout_without_fee_booking_asks_stripe_nothing(self):
        self.backend.stripe_api_key = "sk_test_payout"
        event = self.payout_event(5000, new_id("po"))
        event["data"]["object"]["balance_transaction"] = new_id("txn")
        applied = self.apply(event)
        self.assertEqual(applied.state, "done", applied.error_message)
        self.assertFalse(responses.calls)
        self.assertEqual(self.stripe_balance(), -50.0)
