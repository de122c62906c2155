import json
import time

import requests
import responses

from odoo.tests import new_test_user, tagged

from .common import QtcTaxCase, avatax_error


def fail_for(amount, reply):
    """Fail the requests containing a line of ``amount``; answer the others."""

    def fail(body):
        if any(line["amount"] == amount for line in body["lines"]):
            return reply() if callable(reply) else reply
        return None

    return fail


def timeout():
    return requests.exceptions.ConnectTimeout("engine asleep")


@tagged("post_install", "-at_install")
class TestOutage(QtcTaxCase):
    def make_pair(self):
        """An invoice the engine cannot answer (the manual at 99.99) and one it
        can (the workshop alone)."""
        return self.make_invoice([self.manual]), self.make_invoice([self.workshop])

    # -- hold --------------------------------------------------------------------

    @responses.activate
    def test_timeout_under_hold_keeps_the_invoice_and_posts_the_others(self):
        self.fake.register()
        self.fake.fail = fail_for(99.99, timeout)
        held, flowing = self.make_pair()
        action = (held | flowing).action_post()
        self.assertEqual(flowing.state, "posted")
        self.assertEqual(held.state, "draft")
        self.assertEqual(held.tax_state, "pending")
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn(held.display_name, action["params"]["message"])
        # Finance sees an exception, a retry job is waiting.
        exception = held.tax_exception_id
        self.assertEqual(
            (exception.category, exception.state, exception.res_id),
            ("tax", "open", held.id),
        )
        self.assertIn("no answer from AvaTax (timeout)", exception.details)
        [retry] = self.jobs(held, "hold", "pending")
        self.assertTrue(retry.eta)
        # Posting it again while the engine is down: still held, one exception.
        held.action_post()
        self.assertEqual(held.state, "draft")
        self.assertEqual(exception.occurrences, 2)
        self.assertEqual(len(self.jobs(held, "hold", "pending")), 1)
        # The engine answers again: the job re-quotes and posts it.
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(held.state, "posted")
        self.assertAlmostEqual(held.amount_tax, 10.25, places=2)
        self.assertEqual(exception.state, "resolved")
        self.run_due_jobs()
        self.assertEqual(held.tax_state, "committed")
        self.assertEqual(flowing.tax_state, "committed")

    @responses.activate
    def test_5xx_under_hold_retries_until_the_engine_answers(self):
        self.fake.register()
        self.fake.fail = fail_for(99.99, avatax_error(503, "ServiceNotReady"))
        held, flowing = self.make_pair()
        (held | flowing).action_post()
        self.assertEqual((held.state, flowing.state), ("draft", "posted"))
        # Still down at the first retry: rescheduled, not failed.
        self.run_due_jobs()
        self.assertEqual(held.state, "draft")
        self.assertEqual(held.tax_retry_count, 1)
        retry = self.jobs(held, "hold", "pending")
        self.assertEqual(len(retry), 1)
        self.assertEqual(held.tax_exception_id.job_id, retry)
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(held.state, "posted")

    @responses.activate
    def test_billing_user_without_connector_rights_posts_and_is_held(self):
        biller = new_test_user(
            self.env,
            login="qtc_tax_biller",
            groups="account.group_account_invoice",
            company_id=self.env.company.id,
        )
        self.fake.register()
        self.fake.fail = fail_for(99.99, timeout)
        held, flowing = self.make_pair()
        (held | flowing).with_user(biller).action_post()
        self.assertEqual((held.state, flowing.state), ("draft", "posted"))
        self.assertEqual(held.tax_exception_id.category, "tax")
        self.assertEqual(self.jobs(flowing, "commit").user_id, biller)
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(held.state, "posted")
        self.assertEqual(flowing.tax_state, "committed")

    # -- fallback ----------------------------------------------------------------

    @responses.activate
    def test_5xx_under_fallback_posts_with_odoo_taxes_and_trues_up(self):
        self.backend.tax_outage_policy = "fallback"
        self.fake.register()
        self.fake.fail = fail_for(99.99, avatax_error(500, "InternalServerError"))
        fallback, flowing = self.make_pair()
        action = (fallback | flowing).action_post()
        self.assertFalse(action)
        self.assertEqual((fallback.state, flowing.state), ("posted", "posted"))
        self.assertEqual(fallback.tax_state, "fallback")
        # Odoo's own 15 % sale tax stayed on the line.
        self.assertEqual(fallback.invoice_line_ids.tax_ids, self.tax_sale_a)
        self.assertAlmostEqual(fallback.amount_tax, 15.0, places=2)
        self.assertEqual(len(self.jobs(fallback, "trueup", "pending")), 1)
        # While the engine is down the true-up waits.
        self.run_jobs()
        self.assertFalse(fallback.tax_trueup_ids)
        self.fake.fail = None
        self.run_due_jobs()
        [trueup] = fallback.tax_trueup_ids
        self.assertEqual(
            (trueup.odoo_tax, trueup.engine_tax, trueup.difference),
            (15.0, 10.25, -4.75),
        )
        exception = fallback.tax_exception_id
        self.assertEqual((exception.category, exception.state), ("tax", "open"))
        self.assertIn("difference -4.75", exception.name)
        self.assertEqual(fallback.tax_state, "fallback")
        self.assertEqual(flowing.tax_state, "committed")

    @responses.activate
    def test_fallback_true_up_without_difference_commits(self):
        self.backend.tax_outage_policy = "fallback"
        self.fake.register()
        invoice = self.make_invoice([self.manual])
        # The line already carries the engine's taxes from an earlier quote.
        invoice.action_tax_quote()
        invoice.tax_quote_hash = False  # forget the cache: post calls again
        self.fake.fail = fail_for(99.99, timeout)
        invoice.action_post()
        self.assertEqual(invoice.tax_state, "fallback")
        self.fake.fail = None
        self.run_due_jobs()
        self.assertEqual(invoice.tax_trueup_ids.difference, 0.0)
        self.assertEqual(invoice.tax_trueup_ids.state, "done")
        self.run_due_jobs()
        self.assertEqual(invoice.tax_state, "committed")

    # -- circuit breaker ---------------------------------------------------------

    @responses.activate
    def test_breaker_opens_after_failures_and_a_probe_closes_it(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(503, "ServiceNotReady")
        invoices = [self.make_invoice([self.workshop]) for _index in range(4)]
        for invoice in invoices[:3]:
            invoice.action_post()
        self.assertEqual(len(self.fake.creates), 3)
        self.assertEqual(self.backend.tax_breaker_status, "open")
        # Open: straight to the policy, no call.
        invoices[3].action_post()
        self.assertEqual(len(self.fake.creates), 3)
        self.assertEqual(invoices[3].tax_state, "pending")
        self.assertIn("circuit breaker", invoices[3].tax_exception_id.details)
        # Retries wait at least for the cooldown.
        retry = self.jobs(invoices[3], "hold", "pending")
        self.assertGreaterEqual(
            (retry.eta - retry.create_date).total_seconds(),
            self.backend.tax_breaker_cooldown - 5,
        )
        # Cooldown over: one probe goes through and closes the breaker.
        state = json.loads(self.backend.tax_breaker_state)
        state["opened_at"] = time.time() - self.backend.tax_breaker_cooldown - 1
        self.env.cr.execute(
            "UPDATE qtc_backend SET tax_breaker_state = %s WHERE id = %s",
            (json.dumps(state), self.backend.id),
        )
        self.backend.invalidate_recordset()
        self.fake.fail = None
        fresh = self.make_invoice([self.workshop])
        fresh.action_post()
        self.assertEqual(fresh.state, "posted")
        self.assertEqual(len(self.fake.creates), 4)
        self.assertEqual(self.backend.tax_breaker_status, "closed")
        # The held invoices now flow on their next run.
        self.run_due_jobs()
        self.assertEqual({inv.state for inv in invoices}, {"posted"})

    @responses.activate
    def test_failed_probe_reopens_the_breaker(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(503, "ServiceNotReady")
        for _index in range(3):
            self.make_invoice([self.workshop]).action_post()
        state = json.loads(self.backend.tax_breaker_state)
        opened_at = time.time() - self.backend.tax_breaker_cooldown - 1
        state["opened_at"] = opened_at
        self.env.cr.execute(
            "UPDATE qtc_backend SET tax_breaker_state = %s WHERE id = %s",
            (json.dumps(state), self.backend.id),
        )
        self.backend.invalidate_recordset()
        probe = self.make_invoice([self.workshop])
        probe.action_post()
        self.assertEqual(len(self.fake.creates), 4)  # the probe was sent
        self.assertEqual(probe.state, "draft")
        state = json.loads(self.backend.tax_breaker_state)
        self.assertEqual(state["state"], "open")
        self.assertGreater(state["opened_at"], opened_at)

    def test_unreadable_breaker_state_does_not_block(self):
        self.env.cr.execute(
            "UPDATE qtc_backend SET tax_breaker_state = 'not json' WHERE id = %s",
            (self.backend.id,),
        )
        self.backend.invalidate_recordset()
        self.assertEqual(self.backend._tax_breaker().state, "closed")
        self.backend.action_tax_reset_breaker()
        self.assertFalse(self.backend.tax_breaker_state)
