"""Stripe events applied to the books: payments, refunds, disputes, payouts, fees."""

from datetime import timedelta
from unittest import SkipTest

import responses

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import EVENT_TIME, StripeCase, new_id

API = "https://api.stripe.com"


@tagged("post_install", "-at_install")
class TestStripeCashApplication(StripeCase):
    # ------------------------------------------------------------ failures

    def test_unhandled_type_is_ignored_not_failed(self):
        event = self.apply(self.event("plan.created", {"object": "plan", "id": "p1"}))
        self.assertEqual(event.state, "ignored")
        self.assertEqual(event.result, "ignored")
        self.assertFalse(self.exception_of(event))

    def test_handled_type_with_broken_fields_is_a_data_exception(self):
        broken = self.payment_intent_event(1000)
        broken["data"]["object"]["currency"] = "dollars"
        del broken["data"]["object"]["amount_received"]
        event = self.apply(broken)
        self.assertEqual(event.state, "failed")
        exception = self.exception_of(event)
        self.assertEqual(exception.category, "data")
        self.assertIn("data.object.currency must be a three-letter", exception.details)
        self.assertIn("data.object.amount_received is missing", exception.details)

    def test_live_event_on_sandbox_backend_touches_nothing(self):
        invoice = self.invoice(100.0)
        payload = self.payment_intent_event(
            10000, metadata={"odoo_invoice": invoice.name}
        )
        payload["livemode"] = True
        event = self.apply(payload)
        self.assertEqual(event.state, "failed")
        self.assertEqual(self.exception_of(event).category, "configuration")
        self.assertEqual(self.exception_of(event).severity, "high")
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertFalse(self.stripe_payments())

    def test_missing_stripe_journal_is_a_configuration_exception(self):
        invoice = self.invoice(100.0)
        self.backend.stripe_journal_id = False
        event = self.apply(
            self.payment_intent_event(10000, metadata={"odoo_invoice": invoice.name})
        )
        self.assertEqual(event.state, "failed")
        self.assertEqual(self.exception_of(event).category, "configuration")
        self.assertEqual(invoice.payment_state, "not_paid")

    def test_overpayment_raises_and_posts_nothing(self):
        invoice = self.invoice(100.0)
        event = self.apply(
            self.payment_intent_event(15000, metadata={"odoo_invoice": invoice.name})
        )
        self.assertEqual(event.state, "failed")
        exception = self.exception_of(event)
        self.assertEqual(exception.category, "overpayment")
        self.assertIn("50.00 USD more than the 100.00 USD open", exception.name)
        self.assertEqual(exception.record_ref, invoice)
        self.assertFalse(self.stripe_payments())
        self.assertEqual(invoice.payment_state, "not_paid")

    def test_ambiguous_match_lists_both_and_link_applies(self):
        self.bind_customer(self.partner_a)
        first = self.invoice(100.0)
        second = self.invoice(100.0)
        other = self.invoice(70.0)
        intent_id = new_id("pi")
        event = self.apply(
            self.payment_intent_event(
                10000, payment_intent_id=intent_id, customer=self.customer_id
            )
        )
        self.assertEqual(event.state, "failed")
        exception = self.exception_of(event)
        self.assertEqual(exception.category, "unapplied_cash")
        self.assertIn(first.name, exception.details)
        self.assertIn(second.name, exception.details)
        self.assertNotIn(other.name, exception.details)
        self.assertEqual(exception.external_type, "payment_target")
        self.assertEqual(exception.external_id, intent_id)
        self.assertFalse(self.stripe_payments())

        exception.link_ref = second
        exception.action_link()
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(second.payment_state, "paid")
        self.assertEqual(first.payment_state, "not_paid")
        self.assertEqual(exception.state, "resolved")

    def test_unknown_customer_link_then_retry_applies(self):
        invoice = self.invoice(300.0, partner=self.partner_b)
        customer_id = new_id("cus")
        event = self.apply(self.payment_intent_event(30000, customer=customer_id))
        exception = self.exception_of(event)
        self.assertEqual(exception.category, "unapplied_cash")
        self.assertEqual(exception.external_type, "customer")
        self.assertEqual(exception.external_id, customer_id)
        # The open invoice of exactly that amount is suggested.
        self.assertIn(invoice.name, exception.details)

        exception.link_ref = self.partner_b
        exception.action_link()
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(
                self.backend, "customer", customer_id
            ),
            self.partner_b,
        )
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(self.stripe_payments().partner_id, self.partner_b)

    def test_metadata_naming_a_paid_invoice_is_unapplied(self):
        invoice = self.invoice(100.0)
        self.apply(
            self.payment_intent_event(10000, metadata={"odoo_invoice_id": invoice.id})
        )
        self.assertEqual(invoice.payment_state, "paid")
        second = self.apply(
            self.payment_intent_event(10000, metadata={"odoo_invoice_id": invoice.id})
        )
        self.assertEqual(second.state, "failed")
        self.assertEqual(self.exception_of(second).category, "unapplied_cash")
        self.assertIn("not among the open invoices", self.exception_of(second).name)
        self.assertEqual(len(self.stripe_payments()), 1)

    def test_metadata_naming_a_paid_invoice_suggests_same_amount(self):
        # The named invoice alone decides when it is open; when it is not, the
        # open invoices of that amount are still listed as suggestions.
        paid = self.invoice(120.0)
        other = self.invoice(120.0, partner=self.partner_b)
        first = self.apply(
            self.payment_intent_event(12000, metadata={"odoo_invoice": paid.name})
        )
        self.assertEqual(first.state, "done", first.error_message)
        self.assertEqual(paid.payment_state, "paid")
        self.assertEqual(other.payment_state, "not_paid")
        second = self.apply(
            self.payment_intent_event(12000, metadata={"odoo_invoice": paid.name})
        )
        exception = self.exception_of(second)
        self.assertEqual(second.state, "failed")
        self.assertEqual(exception.category, "unapplied_cash")
        self.assertIn(other.name, exception.details)
        self.assertNotIn(paid.name + ":", exception.details)
        self.assertEqual(other.payment_state, "not_paid")
        self.assertEqual(len(self.stripe_payments()), 1)

    # ------------------------------------------------------------- payments

    def test_payment_by_invoice_number_is_posted_and_reconciled(self):
        invoice = self.invoice(100.0)
        intent_id = new_id("pi")
        charge_id = new_id("ch")
        event = self.apply(
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                charge=charge_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        payment = self.stripe_payments()
        self.assertEqual(len(payment), 1)
        self.assertEqual(payment.amount, 100.0)
        self.assertEqual(payment.currency_id, self.company_data["currency"])
        self.assertEqual(payment.payment_type, "inbound")
        self.assertEqual(payment.partner_id, self.partner_a)
        self.assertEqual(payment.memo, f"Stripe {intent_id}")
        self.assertEqual(payment.state, "paid")
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(invoice.amount_residual, 0.0)
        self.assertIn(payment, invoice.matched_payment_ids)
        bindings = self.env["qtc.binding"]
        self.assertEqual(
            bindings._qtc_to_internal(self.backend, "payment", intent_id), payment
        )
        self.assertEqual(
            bindings._qtc_to_internal(self.backend, "charge", charge_id), payment
        )
        traces = event.trace_ids
        self.assertEqual(
            sorted(traces.mapped("operation")), ["created", "updated"], traces
        )
        self.assertEqual(
            traces.filtered(lambda t: t.operation == "created").res_id, payment.id
        )

    def test_payment_by_invoice_id_partial_leaves_rest_open(self):
        invoice = self.invoice(100.0)
        event = self.apply(
            self.payment_intent_event(
                4000, metadata={"odoo_invoice_id": str(invoice.id)}
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(invoice.amount_residual, 60.0)
        self.assertEqual(self.stripe_payments().state, "in_process")
        self.assertIn("(partial)", event.result)

    def test_customer_and_exact_amount(self):
        self.bind_customer(self.partner_a)
        small = self.invoice(100.0)
        large = self.invoice(250.0)
        event = self.apply(self.payment_intent_event(25000, customer=self.customer_id))
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(large.payment_state, "paid")
        self.assertEqual(small.payment_state, "not_paid")

    def test_zero_decimal_currency(self):
        jpy = self.setup_other_currency("JPY", rounding=1.0)
        invoice = self.invoice(5000.0, currency=jpy)
        event = self.apply(
            self.payment_intent_event(
                5000, currency="jpy", metadata={"odoo_invoice": invoice.name}
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        payment = self.stripe_payments()
        self.assertEqual(payment.amount, 5000.0)
        self.assertEqual(payment.currency_id, jpy)
        self.assertEqual(invoice.payment_state, "paid")

    def test_same_payment_through_three_event_types_is_posted_once(self):
        invoice = self.invoice(100.0)
        intent_id = new_id("pi")
        metadata = {"odoo_invoice": invoice.name}
        events = self.apply(
            self.payment_intent_event(
                10000, payment_intent_id=intent_id, metadata=metadata
            ),
            self.checkout_event(10000, intent_id, metadata=metadata),
            self.invoice_paid_event(10000, intent_id),
        )
        self.assertEqual(events.mapped("state"), ["done"] * 3)
        self.assertEqual(len(self.stripe_payments()), 1)
        self.assertEqual(invoice.payment_state, "paid")
        skipped = self.env["qtc.trace"].search(
            [("event_id", "in", events.ids), ("operation", "=", "skipped")]
        )
        self.assertEqual(len(skipped), 2)
        self.assertEqual(skipped.mapped("res_id"), [self.stripe_payments().id] * 2)

    def test_replay_of_an_applied_event_changes_nothing(self):
        invoice = self.invoice(100.0)
        event = self.apply(
            self.payment_intent_event(10000, metadata={"odoo_invoice": invoice.name})
        )
        event.action_replay()
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(len(self.stripe_payments()), 1)

    def test_payment_failed_tells_the_invoice(self):
        invoice = self.invoice(100.0)
        event = self.apply(
            self.payment_intent_event(
                10000,
                metadata={"odoo_invoice": invoice.name},
                event_type="payment_intent.payment_failed",
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        self.assertIn("card_declined / insufficient_funds", event.result)
        message = invoice.message_ids[:1]
        self.assertIn("insufficient funds", message.body)
        self.assertFalse(self.stripe_payments())
        self.assertEqual(invoice.payment_state, "not_paid")

    def test_payment_failed_without_invoice_is_done(self):
        event = self.apply(
            self.payment_intent_event(10000, event_type="payment_intent.payment_failed")
        )
        self.assertEqual(event.state, "done")
        self.assertIn("no invoice named", event.result)

    def test_payment_stripe_coexistence(self):
        if "payment.transaction" not in self.env or "stripe" not in dict(
            self.env["payment.provider"]._fields["code"].selection
        ):
            raise SkipTest(
                "Odoo's payment_stripe is not installed in this database; "
                "coexistence only applies when it is."
            )
        invoice = self.invoice(100.0)
        # Odoo's Stripe provider, copied into the test company.
        provider = (
            self.env.ref("payment.payment_provider_stripe")
            .sudo()
            .copy(
                {
                    "company_id": self.env.company.id,
                    "state": "test",
                    "stripe_publishable_key": "pk_test_coexistence",
                    "stripe_secret_key": "sk_test_coexistence",
                }
            )
        )
        intent_id = new_id("pi")
        transaction = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": provider.id,
                    "payment_method_id": self.env.ref("payment.payment_method_card").id,
                    "amount": 100.0,
                    "currency_id": invoice.currency_id.id,
                    "partner_id": self.partner_a.id,
                    "reference": new_id("tx"),
                    "provider_reference": intent_id,
                    "state": "pending",
                }
            )
        )
        event = self.apply(
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        # Odoo's transaction is still pending: wait, never post beside it.
        self.assertEqual(event.state, "received")
        self.assertFalse(self.stripe_payments())
        transaction.state = "done"
        event.job_ids.sudo().write({"eta": False})
        self.run_jobs()
        self.assertEqual(event.state, "done", event.error_message)
        self.assertFalse(self.stripe_payments())
        self.assertIn("payment_stripe", event.result)

    # -------------------------------------------------------------- refunds

    def _paid_invoice(self, amount_minor=10000):
        invoice = self.invoice(amount_minor / 100)
        intent_id = new_id("pi")
        charge_id = new_id("ch")
        self.apply(
            self.payment_intent_event(
                amount_minor,
                payment_intent_id=intent_id,
                charge=charge_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        self.assertEqual(invoice.payment_state, "paid")
        return invoice, intent_id, charge_id

    def _credit_note(self, invoice):
        credit_note = invoice._reverse_moves(
            [{"ref": f"Refund {invoice.name}", "invoice_date": invoice.invoice_date}]
        )
        credit_note.action_post()
        return credit_note

    def refund_payments(self):
        return self.stripe_payments(payment_type="outbound")

    def test_refund_before_its_payment_waits_then_applies(self):
        invoice = self.invoice(100.0)
        intent_id = new_id("pi")
        refund_event = self.apply(self.refund_event(10000, payment_intent_id=intent_id))
        job = refund_event.job_ids
        self.assertEqual(refund_event.state, "received")
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.attempts, 1)
        self.assertTrue(job.eta)
        self.assertIn("not recorded yet", job.error_message)
        self.assertFalse(self.exception_of(refund_event))

        self.apply(
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        credit_note = self._credit_note(invoice)
        job.sudo().write({"eta": fields.Datetime.now() - timedelta(seconds=1)})
        self.run_jobs()
        self.assertEqual(refund_event.state, "done", refund_event.error_message)
        refund = self.refund_payments()
        self.assertEqual(refund.amount, 100.0)
        self.assertEqual(refund.partner_id, self.partner_a)
        self.assertEqual(
            refund.stripe_refunded_payment_id,
            self.stripe_payments(payment_type="inbound"),
        )
        self.assertEqual(credit_note.payment_state, "paid")

    def test_refund_without_credit_note_raises_then_retry_applies(self):
        invoice, intent_id, _charge = self._paid_invoice()
        event = self.apply(self.refund_event(10000, payment_intent_id=intent_id))
        self.assertEqual(event.state, "failed")
        exception = self.exception_of(event)
        self.assertEqual(exception.category, "credit_note")
        self.assertIn(invoice.name, exception.details)
        self.assertFalse(self.refund_payments())

        credit_note = self._credit_note(invoice)
        exception.action_retry()
        self.run_jobs()
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(self.refund_payments().amount, 100.0)
        self.assertEqual(credit_note.payment_state, "paid")

    def test_refund_found_by_charge_and_redelivery_books_once(self):
        invoice, _intent, charge_id = self._paid_invoice()
        credit_note = self._credit_note(invoice)
        refund_id = new_id("re")
        first = self.apply(
            self.refund_event(3000, charge=charge_id, refund_id=refund_id)
        )
        again = self.apply(
            self.refund_event(3000, charge=charge_id, refund_id=refund_id)
        )
        self.assertEqual(first.state, "done", first.error_message)
        self.assertEqual(again.state, "done", again.error_message)
        self.assertEqual(self.refund_payments().mapped("amount"), [30.0])
        self.assertEqual(credit_note.amount_residual, 70.0)
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(self.backend, "refund", refund_id),
            self.refund_payments(),
        )

    def test_cumulative_totals_are_never_added_twice(self):
        invoice, intent_id, charge_id = self._paid_invoice()
        self._credit_note(invoice)
        self.apply(self.charge_refunded_event(3000, charge_id, intent_id))
        self.assertEqual(self.refund_payments().mapped("amount"), [30.0])
        # The individual refund behind that total changes nothing.
        self.apply(self.refund_event(3000, payment_intent_id=intent_id))
        self.assertEqual(self.refund_payments().mapped("amount"), [30.0])
        # A stale, smaller total changes nothing either.
        self.apply(self.charge_refunded_event(2000, charge_id, intent_id))
        self.assertEqual(self.refund_payments().mapped("amount"), [30.0])
        # A second partial refund: the total grows to 50, 20 more are booked.
        self.apply(self.charge_refunded_event(5000, charge_id, intent_id))
        self.assertEqual(sorted(self.refund_payments().mapped("amount")), [20.0, 30.0])

    def test_pending_then_failed_refund_books_nothing(self):
        invoice, intent_id, _charge = self._paid_invoice()
        self._credit_note(invoice)
        refund_id = new_id("re")
        pending = self.apply(
            self.refund_event(
                10000,
                payment_intent_id=intent_id,
                refund_id=refund_id,
                status="pending",
            )
        )
        self.assertIn("booked once it succeeds", pending.result)
        failed = self.apply(
            self.refund_event(
                10000, payment_intent_id=intent_id, refund_id=refund_id, status="failed"
            )
        )
        self.assertEqual(failed.state, "done")
        self.assertFalse(self.refund_payments())

    def test_refund_failing_after_booking_is_a_reconciliation_exception(self):
        invoice, intent_id, _charge = self._paid_invoice()
        self._credit_note(invoice)
        refund_id = new_id("re")
        self.apply(
            self.refund_event(10000, payment_intent_id=intent_id, refund_id=refund_id)
        )
        failed = self.apply(
            self.refund_event(
                10000, payment_intent_id=intent_id, refund_id=refund_id, status="failed"
            )
        )
        self.assertEqual(failed.state, "failed")
        self.assertEqual(self.exception_of(failed).category, "reconciliation")

    # ------------------------------------------------------------- disputes

    def test_dispute_opened_then_closed(self):
        invoice, _intent, charge_id = self._paid_invoice()
        invoice.invoice_user_id = self.env.user
        dispute_id = new_id("dp")
        opened = self.apply(
            self.dispute_event(
                "charge.dispute.created", charge_id, dispute_id, "needs_response"
            )
        )
        self.assertEqual(opened.state, "done", opened.error_message)
        self.assertEqual(invoice.stripe_dispute_status, "open")
        self.assertEqual(invoice.stripe_dispute_id, dispute_id)
        activity = invoice.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.env.user)
        self.assertIn(dispute_id, activity.summary)
        exception = self.env["qtc.exception"].search(
            [("external_type", "=", "dispute"), ("external_id", "=", dispute_id)]
        )
        self.assertEqual(exception.category, "dispute")
        self.assertEqual(exception.severity, "high")
        self.assertEqual(exception.state, "open")
        self.assertEqual(exception.record_ref, invoice)

        closed = self.apply(
            self.dispute_event(
                "charge.dispute.closed",
                charge_id,
                dispute_id,
                "won",
                created=EVENT_TIME + 60,
            )
        )
        self.assertEqual(closed.state, "done", closed.error_message)
        self.assertEqual(invoice.stripe_dispute_status, "won")
        self.assertEqual(exception.state, "resolved")
        self.assertIn("won", exception.resolution)
        self.assertFalse(invoice.activity_ids)
        bodies = "".join(invoice.message_ids.mapped("body"))
        self.assertIn(f"Stripe dispute {dispute_id} closed: won.", bodies)

    def test_stale_dispute_event_never_overwrites(self):
        invoice, _intent, charge_id = self._paid_invoice()
        dispute_id = new_id("dp")
        self.apply(
            self.dispute_event(
                "charge.dispute.closed",
                charge_id,
                dispute_id,
                "lost",
                created=EVENT_TIME + 60,
            )
        )
        stale = self.apply(
            self.dispute_event(
                "charge.dispute.created", charge_id, dispute_id, "needs_response"
            )
        )
        self.assertEqual(stale.state, "done")
        self.assertIn("stale", stale.result)
        self.assertEqual(invoice.stripe_dispute_status, "lost")
        # Only the lost dispute's exception: the stale opening added none.
        exception = self.env["qtc.exception"].search([("external_id", "=", dispute_id)])
        self.assertEqual(len(exception), 1)
        self.assertIn("lost", exception.name)
        self.assertFalse(self.exception_of(stale))

    def test_dispute_before_its_payment_waits(self):
        event = self.apply(
            self.dispute_event(
                "charge.dispute.created", new_id("ch"), new_id("dp"), "needs_response"
            )
        )
        self.assertEqual(event.state, "received")
        self.assertEqual(event.job_ids.state, "pending")
        self.assertIn("not recorded yet", event.job_ids.error_message)

    # -------------------------------------------------------------- payouts

    def test_payout_moves_money_to_the_bank_journal_once(self):
        payout_id = new_id("po")
        event = self.apply(self.payout_event(110000, payout_id))
        self.assertEqual(event.state, "done", event.error_message)
        outgoing = self.stripe_payments()
        incoming = self.env["account.payment"].search(
            [
                ("journal_id", "=", self.bank_journal.id),
                ("payment_reference", "=", payout_id),
            ]
        )
        self.assertEqual(outgoing.payment_type, "outbound")
        self.assertEqual(outgoing.amount, 1100.0)
        self.assertEqual(incoming.payment_type, "inbound")
        self.assertEqual(incoming.amount, 1100.0)
        self.assertEqual(outgoing.paired_internal_transfer_payment_id, incoming)
        transfer = self.env.company.transfer_account_id
        transfer_lines = (outgoing | incoming).move_id.line_ids.filtered(
            lambda line: line.account_id == transfer
        )
        self.assertEqual(len(transfer_lines), 2)
        self.assertEqual(sum(transfer_lines.mapped("balance")), 0.0)
        if transfer.reconcile:
            self.assertTrue(all(transfer_lines.mapped("reconciled")))

        again = self.apply(self.payout_event(110000, payout_id))
        self.assertEqual(again.state, "done")
        self.assertEqual(len(self.stripe_payments()), 1)

    def test_payout_without_bank_journal_is_a_configuration_exception(self):
        self.backend.stripe_bank_journal_id = False
        event = self.apply(self.payout_event(1000, new_id("po")))
        self.assertEqual(self.exception_of(event).category, "configuration")
        self.assertFalse(self.stripe_payments())

    # ----------------------------------------------------------------- fees

    @responses.activate
    def test_fee_booked_from_the_balance_transaction(self):
        fee_account = self.company_data["default_account_expense"]
        self.backend.write(
            {
                "stripe_book_fees": True,
                "stripe_fee_account_id": fee_account.id,
                "stripe_api_key": "sk_test_fee",
            }
        )
        invoice = self.invoice(100.0)
        charge_id = new_id("ch")
        txn_id = new_id("txn")
        responses.get(
            f"{API}/v1/charges/{charge_id}",
            json={"id": charge_id, "object": "charge", "balance_transaction": txn_id},
        )
        responses.get(
            f"{API}/v1/balance_transactions/{txn_id}",
            json={"id": txn_id, "amount": 10000, "fee": 320, "currency": "usd"},
        )
        event = self.apply(
            self.payment_intent_event(
                10000, charge=charge_id, metadata={"odoo_invoice": invoice.name}
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        self.assertIn("Fee 3.20 USD booked", event.result)
        fee_move = self.env["qtc.binding"]._qtc_to_internal(self.backend, "fee", txn_id)
        self.assertEqual(fee_move.state, "posted")
        fee_line = fee_move.line_ids.filtered(
            lambda line: line.account_id == fee_account
        )
        self.assertEqual(fee_line.debit, 3.2)
        self.assertEqual(
            responses.calls[0].request.headers["Authorization"][:6], "Basic "
        )

    # ------------------------------------------------------------ outbound

    @responses.activate
    def test_connection_test_reads_the_balance(self):
        self.backend.stripe_api_key = "sk_test_conn"
        responses.get(
            f"{API}/v1/balance", json={"object": "balance", "livemode": False}
        )
        self.assertEqual(
            self.backend._qtc_test_connection(), "Connected to Stripe (test mode)."
        )
        responses.get(f"{API}/v1/balance", status=401, json={"error": {}})
        with self.assertRaises(Exception) as caught:
            self.backend._qtc_test_connection()
        self.assertIn("401", str(caught.exception))
        self.assertNotIn("sk_test_conn", str(caught.exception))

    def test_connection_test_without_key(self):
        with self.assertRaises(Exception) as caught:
            self.backend._qtc_test_connection()
        # Named as the form labels it, not by its storage key.
        self.assertIn("Stripe secret key", str(caught.exception))

    @responses.activate
    def test_payment_link_creates_customer_and_checkout_session(self):
        self.backend.stripe_api_key = "sk_test_link"
        invoice = self.invoice(123.45)
        customer_id = new_id("cus")
        session_url = "https://checkout.stripe.com/c/pay/cs_test_link"
        responses.post(f"{API}/v1/customers", json={"id": customer_id})
        responses.post(
            f"{API}/v1/checkout/sessions",
            json={"id": "cs_test_link", "url": session_url},
        )
        invoice.action_stripe_payment_link()
        self.assertEqual(invoice.stripe_payment_url, session_url)
        self.assertEqual(invoice.stripe_checkout_session_id, "cs_test_link")
        customer_call, session_call = responses.calls
        self.assertTrue(customer_call.request.headers["Idempotency-Key"])
        body = session_call.request.body
        self.assertIn(f"customer={customer_id}", body)
        self.assertIn("line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=12345", body)
        self.assertIn(f"metadata%5Bodoo_invoice_id%5D={invoice.id}", body)
        self.assertIn("payment_intent_data%5Bmetadata%5D%5Bodoo_invoice%5D=", body)
        self.assertIn(
            f"checkout-{invoice.id}-12345-USD",
            session_call.request.headers["Idempotency-Key"],
        )
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(
                self.backend, "customer", customer_id
            ),
            self.partner_a,
        )
        # A second link reuses the bound customer: no new customer call.
        invoice.action_stripe_payment_link()
        self.assertEqual(
            [call.request.url for call in responses.calls[2:]],
            [f"{API}/v1/checkout/sessions"],
        )

    @responses.activate
    def test_payment_link_by_an_invoicing_user_without_qtc_rights(self):
        self.backend.stripe_api_key = "sk_test_link"
        clerk = self.env["res.users"].create(
            {
                "name": "Billing clerk",
                "login": "stripe_billing_clerk",
                "email": "clerk@example.com",
                "groups_id": [
                    fields.Command.set(
                        [
                            self.env.ref("account.group_account_invoice").id,
                            self.env.ref("base.group_user").id,
                        ]
                    )
                ],
                "company_id": self.env.company.id,
                "company_ids": [fields.Command.set(self.env.company.ids)],
            }
        )
        self.assertFalse(clerk.has_group("qtc_connector_base.group_qtc_user"))
        invoice = self.invoice(10.0)
        self.bind_customer(self.partner_a)
        responses.post(
            f"{API}/v1/checkout/sessions",
            json={"id": "cs_test_clerk", "url": "https://checkout.stripe.com/c/x"},
        )
        invoice.with_user(clerk).action_stripe_payment_link()
        self.assertEqual(invoice.stripe_checkout_session_id, "cs_test_clerk")
        # The link was made without handing the clerk any credential.
        with self.assertRaises(AccessError):
            self.env["qtc.credential"].with_user(clerk).search([])
        with self.assertRaises(AccessError):
            self.backend.with_user(clerk).read(["stripe_api_key"])

    def test_payment_link_refused_on_draft_invoice(self):
        draft = self.init_invoice("out_invoice", amounts=[10.0], taxes=[])
        with self.assertRaises(Exception) as caught:
            draft.action_stripe_payment_link()
        self.assertIn("not a posted customer invoice", str(caught.exception))

    @responses.activate
    def test_daily_reconciliation_pages_and_reports_mismatches(self):
        self.backend.stripe_api_key = "sk_test_reco"
        _invoice, _intent, charge_id = self._paid_invoice()
        unknown_charge = new_id("ch")
        responses.get(
            f"{API}/v1/balance_transactions",
            match=[
                responses.matchers.query_param_matcher(
                    {
                        "created[gte]": "1700006400",
                        "created[lt]": "1700092800",
                        "limit": "100",
                    }
                )
            ],
            json={
                "object": "list",
                "has_more": True,
                "data": [
                    {
                        "id": "txn_1",
                        "type": "charge",
                        "source": charge_id,
                        "amount": 10000,
                        "currency": "usd",
                    },
                ],
            },
        )
        responses.get(
            f"{API}/v1/balance_transactions",
            match=[
                responses.matchers.query_param_matcher(
                    {
                        "created[gte]": "1700006400",
                        "created[lt]": "1700092800",
                        "limit": "100",
                        "starting_after": "txn_1",
                    }
                )
            ],
            json={
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": "txn_2",
                        "type": "charge",
                        "source": unknown_charge,
                        "amount": 500,
                        "currency": "usd",
                    },
                    {
                        "id": "txn_3",
                        "type": "adjustment",
                        "source": "adj_1",
                        "amount": -5,
                        "currency": "usd",
                    },
                ],
            },
        )
        result = self.backend._stripe_reconcile_day("2023-11-15")
        self.assertEqual(result, "3 balance transactions checked, 1 mismatches.")
        exception = self.env["qtc.exception"].search(
            [("category", "=", "reconciliation"), ("backend_id", "=", self.backend.id)]
        )
        self.assertEqual(exception.external_id, "txn_2")
        self.assertIn(unknown_charge, exception.name)
