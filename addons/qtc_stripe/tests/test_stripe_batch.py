"""The volume path: a worker applies several stored Stripe events in one job
transaction (payments in bulk, the rest one by one), each job ending as if
its event had been applied alone."""

import json
from unittest.mock import patch

import psycopg2

from odoo import fields, sql_db
from odoo.addons.qtc_connector_base.lib import resources as resources_lib
from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent
from odoo.tests import tagged
from odoo.tools import mute_logger

from .. import const
from ..applier import StripeBatch
from .common import StripeCase, new_id


@tagged("post_install", "-at_install")
class TestStripeBatch(StripeCase):
    def paying(self, invoice, amount_minor=None, **kwargs):
        """A payment_intent.succeeded event naming ``invoice``."""
        return self.payment_intent_event(
            amount_minor
            if amount_minor is not None
            else round(invoice.amount_total * 100),
            metadata={"odoo_invoice": invoice.name},
            **kwargs,
        )

    def jobs_of(self, events):
        return self.env["qtc.job"].search([("event_id", "in", events.ids)])

    def assert_paid_once(self, invoice):
        payments = self.stripe_payments().filtered(
            lambda p: invoice in p.reconciled_invoice_ids
        )
        self.assertEqual(len(payments), 1, f"{invoice.name}: {payments}")
        self.assertEqual(invoice.payment_state, "paid")
        return payments

    # ------------------------------------------------------------- happy path

    def test_several_payments_are_applied_by_one_job(self):
        invoices = [self.invoice(100.0 + n) for n in range(5)]
        charges = [new_id("ch") for _invoice in invoices]
        stored = self.store(
            *(
                self.paying(invoice, charge=charge)
                for invoice, charge in zip(invoices, charges, strict=True)
            )
        )
        events = self.env["qtc.event"].browse(list(stored.values()))
        self.assertEqual(len(self.jobs_of(events)), 5, "one job per stored event")

        self.assertEqual(self.run_jobs(), 1, "the first job applied all five")

        self.assertEqual(events.mapped("state"), ["done"] * 5)
        jobs = self.jobs_of(events)
        self.assertEqual(set(jobs.mapped("state")), {"done"})
        self.assertEqual(set(jobs.mapped("attempts")), {1})
        lead = jobs.sorted("id")[0]
        self.assertEqual((lead.progress_done, lead.progress_total), (5, 5))
        bindings = self.env["qtc.binding"]
        for invoice, charge, event in zip(invoices, charges, events, strict=True):
            payment = self.assert_paid_once(invoice)
            self.assertEqual(payment.state, "paid")
            self.assertEqual(payment.amount, invoice.amount_total)
            self.assertEqual(payment.partner_id, invoice.partner_id)
            self.assertIn(payment, invoice.matched_payment_ids)
            self.assertEqual(
                bindings._qtc_to_internal(self.backend, "charge", charge), payment
            )
            # Each event keeps its own trail, under its own job.
            self.assertEqual(
                sorted(event.trace_ids.mapped("operation")), ["created", "updated"]
            )
            self.assertEqual(event.trace_ids.job_id, event.job_ids)
            self.assertEqual(
                event.trace_ids.mapped("correlation_id"), [event.correlation_id] * 2
            )
            self.assertIn(payment.name, event.result)
            self.assertEqual(event.job_ids.result, event.result)
        self.assertEqual(len(self.stripe_payments()), 5)

    def test_partial_payment_in_a_batch_leaves_the_rest_open(self):
        full, partial = self.invoice(80.0), self.invoice(100.0)
        events = self.apply(self.paying(full), self.paying(partial, 4000))
        self.assertEqual(events.mapped("state"), ["done", "done"])
        self.assertEqual(full.payment_state, "paid")
        self.assertEqual(partial.payment_state, "partial")
        self.assertEqual(partial.amount_residual, 60.0)
        self.assertIn("(partial)", events[1].result)

    # ---------------------------------------------------------- bad events

    def test_one_bad_event_among_good_ones_stops_only_itself(self):
        first, second, paid = (
            self.invoice(100.0),
            self.invoice(200.0),
            self.invoice(50.0),
        )
        self.apply(self.paying(paid))
        self.assertEqual(paid.payment_state, "paid")
        payments_before = len(self.stripe_payments())
        stored = self.store(
            self.paying(first),
            self.paying(second, 30000),  # overpayment
            self.paying(paid),  # names an invoice already paid: unapplied cash
            self.event("plan.created", {"object": "plan", "id": "plan_1"}),
        )
        good, over, unapplied, other = self.env["qtc.event"].browse(
            list(stored.values())
        )

        self.assertEqual(self.run_jobs(), 1)

        self.assertEqual(good.state, "done", good.error_message)
        self.assert_paid_once(first)
        self.assertEqual(other.state, "ignored")
        self.assertEqual(other.job_ids.state, "done")
        for event, category in ((over, "overpayment"), (unapplied, "unapplied_cash")):
            self.assertEqual(event.state, "failed")
            self.assertEqual(event.job_ids.state, "failed")
            self.assertEqual(event.job_ids.error_kind, "business")
            exception = self.exception_of(event)
            self.assertEqual(exception.category, category)
            self.assertEqual(exception.job_id, event.job_ids)
        self.assertEqual(second.payment_state, "not_paid")
        self.assertEqual(len(self.stripe_payments()), payments_before + 1)

        # Finance links the unapplied payment to the invoice it pays: only
        # that event is applied, nothing else moves.
        target = self.invoice(50.0)
        exception = self.exception_of(unapplied)
        exception.link_ref = target
        exception.action_link()
        self.run_jobs()
        self.assertEqual(unapplied.state, "done", unapplied.error_message)
        self.assert_paid_once(target)
        self.assertEqual(over.state, "failed")
        self.assertEqual(len(self.stripe_payments()), payments_before + 2)

    def test_bad_lead_event_fails_alone_and_the_rest_still_batch(self):
        over_invoice = self.invoice(100.0)
        invoices = [self.invoice(10.0 + n) for n in range(3)]
        stored = self.store(
            self.paying(over_invoice, 15000),
            *(self.paying(invoice) for invoice in invoices),
        )
        over, *good = self.env["qtc.event"].browse(list(stored.values()))

        # The bad event leads: it runs alone and fails as before; the next
        # job takes the three others together.
        self.assertEqual(self.run_jobs(), 2)

        self.assertEqual(over.state, "failed")
        self.assertEqual(over.job_ids.state, "failed")
        self.assertEqual(self.exception_of(over).category, "overpayment")
        self.assertEqual([event.state for event in good], ["done"] * 3)
        for invoice in invoices:
            self.assert_paid_once(invoice)
        self.assertEqual(over_invoice.payment_state, "not_paid")

    # ----------------------------------------------------------- duplicates

    def test_same_money_twice_in_one_batch_is_posted_once(self):
        invoice, other = self.invoice(100.0), self.invoice(70.0)
        intent_id = new_id("pi")
        metadata = {"odoo_invoice": invoice.name}
        stored = self.store(
            self.payment_intent_event(
                10000, payment_intent_id=intent_id, metadata=metadata
            ),
            self.paying(other),
            self.checkout_event(10000, intent_id, metadata=metadata),
            self.invoice_paid_event(10000, intent_id),
        )
        events = self.env["qtc.event"].browse(list(stored.values()))
        self.assertEqual(self.run_jobs(), 1)
        self.assertEqual(events.mapped("state"), ["done"] * 4)
        payment = self.assert_paid_once(invoice)
        self.assert_paid_once(other)
        self.assertEqual(len(self.stripe_payments()), 2)
        for event in events[2:]:
            self.assertIn("already recorded", event.result)
            skipped = event.trace_ids
            self.assertEqual(skipped.operation, "skipped")
            self.assertEqual(skipped.res_id, payment.id)

    def test_event_already_applied_is_skipped_in_bulk(self):
        invoice, other = self.invoice(100.0), self.invoice(40.0)
        intent_id = new_id("pi")
        first = self.apply(
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        payment = self.assert_paid_once(invoice)
        # The same money reported again (another event id), with new work.
        again = self.payment_intent_event(
            10000, payment_intent_id=intent_id, metadata={"odoo_invoice": invoice.name}
        )
        events = self.apply(again, self.paying(other))
        self.assertEqual(events.mapped("state"), ["done", "done"])
        self.assertIn(payment.name, events[0].result)
        self.assertEqual(events[0].trace_ids.operation, "skipped")
        self.assert_paid_once(other)
        self.assertEqual(len(self.stripe_payments()), 2)
        self.assertEqual(first.state, "done")

    def test_redelivered_events_store_once_and_pay_once(self):
        invoices = [self.invoice(20.0 + n) for n in range(3)]
        payloads = [self.paying(invoice) for invoice in invoices]
        first = self.store(*payloads)
        again = self.store(*payloads)
        self.assertEqual(len(first), 3)
        self.assertEqual(again, {}, "every redelivery acknowledged, nothing new")
        self.run_jobs()
        for invoice in invoices:
            self.assert_paid_once(invoice)

    # --------------------------------------------------------------- order

    def test_refund_waiting_on_a_payment_of_the_same_batch(self):
        first = self.invoice(100.0)
        # An invoice with its credit note already issued (posted while the
        # invoice was a draft, so the two are not reconciled with each other):
        # the payment pays the invoice, the refund goes to the credit note.
        refunded = self.init_invoice(
            "out_invoice", partner=self.partner_a, amounts=[60.0], taxes=[]
        )
        credit_note = refunded._reverse_moves(
            [{"ref": "Refund", "invoice_date": refunded.invoice_date}]
        )
        credit_note.action_post()
        refunded.action_post()
        self.assertEqual(refunded.payment_state, "not_paid")
        intent_id = new_id("pi")
        orphan_intent = new_id("pi")
        stored = self.store(
            self.paying(first),
            # Queued before its payment: applied after the batch's payments.
            self.refund_event(6000, payment_intent_id=intent_id),
            self.payment_intent_event(
                6000,
                payment_intent_id=intent_id,
                metadata={"odoo_invoice": refunded.name},
            ),
            # Its payment is nowhere yet: waits.
            self.refund_event(1000, payment_intent_id=orphan_intent),
        )
        pay, refund, pay_refunded, orphan = self.env["qtc.event"].browse(
            list(stored.values())
        )

        self.assertEqual(self.run_jobs(), 1)

        self.assertEqual(pay.state, "done")
        self.assertEqual(pay_refunded.state, "done")
        self.assertEqual(refund.state, "done", refund.error_message)
        outbound = self.stripe_payments(payment_type="outbound")
        self.assertEqual(outbound.amount, 60.0)
        self.assertEqual(credit_note.payment_state, "paid")
        self.assertEqual(refunded.payment_state, "paid")
        # The orphan refund waits with the backoff of its own job.
        job = orphan.job_ids
        self.assertEqual(orphan.state, "received")
        self.assertEqual((job.state, job.attempts), ("pending", 1))
        self.assertGreater(job.eta, fields.Datetime.now())
        self.assertIn("not recorded yet", job.error_message)
        self.assertFalse(self.exception_of(orphan))

    def test_refund_leading_the_queue_waits_as_before(self):
        invoice = self.invoice(100.0)
        intent_id = new_id("pi")
        stored = self.store(
            self.refund_event(10000, payment_intent_id=intent_id),
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                metadata={"odoo_invoice": invoice.name},
            ),
        )
        refund, payment = self.env["qtc.event"].browse(list(stored.values()))
        self.run_jobs()
        self.assertEqual(payment.state, "done")
        self.assertEqual(refund.state, "received")
        self.assertEqual(refund.job_ids.attempts, 1)
        self.assertTrue(refund.job_ids.eta)

    # ------------------------------------------------------ crash mid-batch

    def test_crash_mid_batch_leaves_nothing_and_the_retry_applies_once(self):
        invoices = [self.invoice(30.0 + n) for n in range(4)]
        stored = self.store(*(self.paying(invoice) for invoice in invoices))
        events = self.env["qtc.event"].browse(list(stored.values()))
        calls = []
        original = StripeBatch._bind_all

        def dying(batch, plans, payments):
            calls.append(len(plans))
            if len(calls) == 1:
                # The database connection under the batch dies after the
                # payments were created and posted, before the commit.
                raise psycopg2.OperationalError("server closed the connection")
            return original(batch, plans, payments)

        with patch.object(StripeBatch, "_bind_all", dying):
            self.assertEqual(self.run_jobs(limit=1), 1)
            self.assertEqual(calls, [4])
            jobs = self.jobs_of(events).sorted("id")
            lead, others = jobs[0], jobs[1:]
            # The lead is retried later; nothing of the batch remains.
            self.assertEqual((lead.state, lead.error_kind), ("pending", "transient"))
            self.assertEqual(set(others.mapped("state")), {"pending"})
            self.assertEqual(set(others.mapped("attempts")), {0})
            self.assertEqual(set(events.mapped("state")), {"received"})
            self.assertFalse(self.stripe_payments())
            self.assertFalse(
                self.env["qtc.binding"].search(
                    [
                        ("backend_id", "=", self.backend.id),
                        ("external_type", "=", "payment"),
                    ]
                )
            )
            self.assertEqual({i.payment_state for i in invoices}, {"not_paid"})

            lead.sudo().write({"eta": fields.Datetime.now()})
            self.run_jobs()
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual(set(self.jobs_of(events).mapped("state")), {"done"})
        for invoice in invoices:
            self.assert_paid_once(invoice)

    def test_bulk_write_refused_falls_back_to_one_by_one(self):
        invoices = [self.invoice(45.0 + n) for n in range(3)]
        stored = self.store(*(self.paying(invoice) for invoice in invoices))
        events = self.env["qtc.event"].browse(list(stored.values()))
        calls = []
        original = type(self.backend)._stripe_reconcile_many

        def refusing(backend, pairs):
            calls.append(len(pairs))
            if len(pairs) > 1:
                raise psycopg2.IntegrityError("refused in bulk")
            return original(backend, pairs)

        with patch.object(type(self.backend), "_stripe_reconcile_many", refusing):
            self.assertEqual(self.run_jobs(), 1)
        self.assertEqual(calls, [3, 1, 1, 1])
        self.assertEqual(events.mapped("state"), ["done"] * 3)
        for invoice in invoices:
            self.assert_paid_once(invoice)

    def test_entry_numbers_taken_meanwhile_retry_the_whole_batch(self):
        earlier = self.invoice(12.0)
        self.apply(self.paying(earlier))
        taken = self.assert_paid_once(earlier).move_id.name
        invoices = [self.invoice(60.0 + n) for n in range(3)]
        stored = self.store(*(self.paying(invoice) for invoice in invoices))
        events = self.env["qtc.event"].browse(list(stored.values()))
        original = type(self.backend)._stripe_reconcile_many

        def colliding(backend, pairs):
            # What a concurrent transaction posting in the same journal causes:
            # a number this snapshot computed is already used by a posted entry.
            backend.env.flush_all()
            backend.env.cr.execute(
                "UPDATE account_move SET name = %s WHERE id = %s",
                (taken, pairs[0][0].move_id.id),
            )
            return original(backend, pairs)

        with (
            patch.object(type(self.backend), "_stripe_reconcile_many", colliding),
            mute_logger("odoo.sql_db"),  # the refused statement is logged
        ):
            self.assertEqual(self.run_jobs(limit=1), 1)
        jobs = self.jobs_of(events).sorted("id")
        lead = jobs[0]
        self.assertEqual((lead.state, lead.error_kind), ("pending", "transient"))
        self.assertIn("numbered entries", lead.error_message)
        self.assertGreater(lead.eta, fields.Datetime.now())
        self.assertEqual(set(jobs[1:].mapped("state")), {"pending"})
        self.assertEqual(len(self.stripe_payments()), 1, "nothing of the batch kept")
        self.assertFalse(self.env["qtc.exception"].search([("job_id", "in", jobs.ids)]))

        lead.sudo().write({"eta": fields.Datetime.now()})
        self.run_jobs()
        self.assertEqual(set(events.mapped("state")), {"done"})
        for invoice in invoices:
            self.assert_paid_once(invoice)

    # ------------------------------------------------------------ resources

    def test_each_job_declares_its_money_customer_and_invoice(self):
        invoice = self.invoice(50.0)
        event = self.payment_intent_event(
            5000,
            customer=self.customer_id,
            metadata={"odoo_invoice": invoice.name, "odoo_invoice_id": invoice.id},
        )
        stored = self.store(event)
        job = self.jobs_of(self.env["qtc.event"].browse(list(stored.values())))
        backend = self.backend.id
        self.assertEqual(
            job.resources.split("\n"),
            [
                f"account.move:{invoice.id}",
                f"stripe:{backend}:{self.customer_id}",
                f"stripe:{backend}:{event['data']['object']['id']}",
            ],
        )

    def test_a_batch_leaves_out_a_job_whose_invoice_another_job_holds(self):
        """Another worker runs a job paying the second invoice: the lead's
        batch takes the third one but leaves the second to run later."""
        invoices = [self.invoice(100.0 + n) for n in range(3)]
        stored = self.store(*(self.paying(invoice) for invoice in invoices))
        events = self.env["qtc.event"].browse(list(stored.values()))
        jobs = self.jobs_of(events).sorted("id")
        other_worker = sql_db.db_connect(self.env.cr.dbname).cursor()
        try:
            self.assertTrue(resources_lib.try_lock(other_worker, jobs[1].resources))
            self.assertEqual(self.run_jobs(limit=1), 1)
            self.assertEqual(jobs.mapped("state"), ["done", "pending", "done"])
            self.assertEqual(invoices[1].payment_state, "not_paid")
        finally:
            other_worker.rollback()
            other_worker.close()
        self.run_jobs()
        self.assertEqual(set(jobs.mapped("state")), {"done"})
        for invoice in invoices:
            self.assert_paid_once(invoice)

    # ----------------------------------------------------- base batch jobs

    def test_batch_job_of_stored_events_uses_the_bulk_path(self):
        good, over = self.invoice(25.0), self.invoice(10.0)
        payloads = [self.paying(good), self.paying(over, 5000)]
        stored = self.backend._qtc_store_events(
            [InboundEvent(p["id"], p["type"], json.dumps(p)) for p in payloads],
            batch=True,
        )
        events = self.env["qtc.event"].browse(list(stored.values()))
        job = self.env["qtc.job"].search([("method_name", "=", "_qtc_process_batch")])
        self.assertEqual(sorted(job.record_ids), sorted(events.ids))
        self.run_jobs()
        self.assertEqual(job.state, "done")
        self.assertEqual(events.mapped("state"), ["done", "failed"])
        self.assert_paid_once(good)
        self.assertEqual(self.exception_of(events[1]).category, "overpayment")

    def test_batch_size_is_bounded(self):
        self.assertGreater(const.BATCH_SIZE, 1)
        invoices = [self.invoice(5.0 + n) for n in range(5)]
        self.store(*(self.paying(invoice) for invoice in invoices))
        with patch.object(const, "BATCH_SIZE", 2):
            self.assertEqual(self.run_jobs(), 3, "2 + 2 + 1 events")
        for invoice in invoices:
            self.assert_paid_once(invoice)
