"""The Stripe endpoint over HTTP: signatures as Stripe sends them, storage,
idempotency, and 2xx for every authentic event whatever becomes of it."""

import json
import time
from datetime import timedelta

from odoo import fields
from odoo.addons.qtc_connector_base.tests.common import OLD_SECRET, TEST_SECRET
from odoo.tests import tagged

from ..lib import signature
from .common import StripeHttpCase


@tagged("post_install", "-at_install")
class TestStripeWebhook(StripeHttpCase):
    def events(self):
        self.env.invalidate_all()
        return self.env["qtc.event"].search([("backend_id", "=", self.backend.id)])

    def assertRejected(self, response, status=401):
        self.assertEqual(response.status_code, status, response.text)
        self.assertFalse(self.events())

    # ----------------------------------------------------------- rejections

    def test_forged_signature_is_rejected(self):
        response = self.post_event(
            self.payment_intent_event(1000), secrets="whsec_forged_secret"
        )
        self.assertRejected(response)
        self.assertEqual(
            response.json(), {"error": "invalid signature or unknown backend"}
        )

    def test_tampered_body_is_rejected(self):
        event = self.payment_intent_event(1000)
        body = json.dumps(event).encode()
        header = self.stripe_sign(body)
        event["data"]["object"]["amount_received"] = 999999
        self.assertRejected(self.post_event(event, header=header))

    def test_expired_signature_is_rejected(self):
        old = int(time.time()) - 310
        self.assertRejected(
            self.post_event(self.payment_intent_event(1000), timestamp=old)
        )

    def test_signature_from_the_future_is_rejected(self):
        later = int(time.time()) + 310
        self.assertRejected(
            self.post_event(self.payment_intent_event(1000), timestamp=later)
        )

    def test_missing_and_malformed_headers_are_rejected(self):
        event = self.payment_intent_event(1000)
        self.assertRejected(self.post_event(event, header=False))
        self.assertRejected(self.post_event(event, header="t=abc,v1=00"))
        self.assertRejected(self.post_event(event, header=f"t={int(time.time())}"))

    def test_qtc_scheme_header_is_not_accepted_for_stripe(self):
        body = json.dumps(self.payment_intent_event(1000)).encode()
        response = self.url_open(
            self.webhook_path,
            data=body,
            headers={
                "X-QTC-Signature": self.sign(body),
                "Content-Type": "application/json",
            },
        )
        self.assertRejected(response)

    def test_unknown_other_provider_or_archived_backend_answers_like_a_forgery(self):
        # Was 404 for another provider's or an unknown id and 401 for a bad
        # signature: ids could be enumerated. Now one answer for all.
        generic = self._qtc_make_backend(name="Generic")
        body = json.dumps(self.payment_intent_event(1000)).encode()
        signed = {signature.HEADER: self.stripe_sign(body)}
        forged = self.post_event(body, secrets="whsec_forged_secret")
        probes = {
            "other provider": self.url_open(
                f"/qtc/stripe/{generic.id}/webhook", data=body, headers=signed
            ),
            "unknown": self.url_open(
                "/qtc/stripe/999999/webhook", data=body, headers=signed
            ),
        }
        self.backend.active = False
        probes["archived"] = self.url_open(self.webhook_path, data=body, headers=signed)
        for name, response in probes.items():
            self.assertEqual(response.status_code, 401, name)
            self.assertEqual(response.content, forged.content, name)
        self.assertFalse(self.events())

    def test_stripe_backend_is_not_served_by_the_generic_route(self):
        body = json.dumps(self.payment_intent_event(1000)).encode()
        response = self.url_open(
            f"/qtc/webhook/{self.backend.id}",
            data=body,
            headers={signature.HEADER: self.stripe_sign(body)},
        )
        self.assertRejected(response)

    def test_body_that_is_not_an_event_is_400_and_kept(self):
        response = self.post_event(b"{not json")
        self.assertEqual(response.status_code, 400)
        response = self.post_event({"id": "ch_1", "type": "x", "object": "charge"})
        self.assertEqual(response.status_code, 400)
        self.assertIn("object must be 'event'", response.json()["error"])
        self.assertEqual(self.events().mapped("state"), ["failed", "failed"])

    # ----------------------------------------------------------- acceptance

    def test_multi_signature_header_is_accepted(self):
        body = json.dumps(self.payment_intent_event(1000)).encode()
        header = self.stripe_sign(body, ["whsec_expiring_at_stripe", TEST_SECRET])
        response = self.post_event(body, header=header)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(len(self.events()), 1)

    def test_secret_rotation(self):
        new_secret = "whsec_rotated_new_0123456789"
        self.backend._qtc_set_secret("webhook_secret", new_secret)
        ok_new = self.post_event(self.payment_intent_event(1000), secrets=new_secret)
        ok_old = self.post_event(self.payment_intent_event(1000), secrets=TEST_SECRET)
        self.assertEqual(ok_new.status_code, 200, ok_new.text)
        self.assertEqual(ok_old.status_code, 200, ok_old.text)
        self.backend.sudo().webhook_secret_previous_until = (
            fields.Datetime.now() - timedelta(seconds=1)
        )
        late_old = self.post_event(self.payment_intent_event(1000), secrets=TEST_SECRET)
        self.assertEqual(late_old.status_code, 401)
        never = self.post_event(self.payment_intent_event(1000), secrets=OLD_SECRET)
        self.assertEqual(never.status_code, 401)
        self.assertEqual(len(self.events()), 2)

    def test_duplicate_delivery_stores_once_and_pays_once(self):
        invoice = self.invoice(100.0)
        event = self.payment_intent_event(
            10000, metadata={"odoo_invoice": invoice.name}
        )
        first = self.post_event(event)
        second = self.post_event(event)
        self.assertEqual(first.json(), {"received": 1, "new": 1, "duplicates": 0})
        self.assertEqual(second.json(), {"received": 1, "new": 0, "duplicates": 1})
        stored = self.events()
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored.external_id, event["id"])
        self.assertEqual(stored.event_type, "payment_intent.succeeded")
        self.assertEqual(len(stored.job_ids), 1)
        self.run_jobs()
        self.assertEqual(stored.state, "done", stored.error_message)
        self.assertEqual(len(self.stripe_payments()), 1)
        self.assertEqual(invoice.payment_state, "paid")

    def test_unhandled_type_is_acknowledged_and_ignored(self):
        response = self.post_event(
            self.event("customer.created", {"object": "customer"})
        )
        self.assertEqual(response.status_code, 200)
        self.run_jobs()
        self.assertEqual(self.events().state, "ignored")

    def test_event_that_cannot_be_applied_is_still_2xx(self):
        response = self.post_event(self.payment_intent_event(77700))
        self.assertEqual(response.status_code, 200)
        self.run_jobs()
        stored = self.events()
        self.assertEqual(stored.state, "failed")
        self.assertEqual(stored.exception_ids.category, "unapplied_cash")

    def test_webhook_url_is_the_stripe_route(self):
        self.assertTrue(
            self.backend.webhook_url.endswith(f"/qtc/stripe/{self.backend.id}/webhook")
        )
