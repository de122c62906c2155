import json
import time

from odoo.tests import tagged

from ..lib import signature
from .common import OLD_SECRET, TEST_SECRET, QtcHttpCase, captured_logs


@tagged("post_install", "-at_install")
class TestWebhook(QtcHttpCase):
    def setUp(self):
        super().setUp()
        self.path = f"/qtc/webhook/{self.backend.id}"
        self.Event = self.env["qtc.event"]

    def _events(self, external_id):
        return self.Event.search(
            [("backend_id", "=", self.backend.id), ("external_id", "=", external_id)]
        )

    def test_signed_event_is_stored_with_its_job(self):
        response = self.post_signed(
            self.path, {"id": "evt_1", "type": "thing.happened"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"received": 1, "new": 1, "duplicates": 0})
        event = self._events("evt_1")
        self.assertEqual(event.state, "received")
        self.assertEqual(event.event_type, "thing.happened")
        self.assertTrue(event.signature_verified)
        self.assertTrue(event.correlation_id)
        self.assertEqual(json.loads(event.payload)["id"], "evt_1")
        self.assertEqual(event.job_ids.state, "pending")
        self.assertEqual(event.job_ids.method_name, "_qtc_process")
        self.assertEqual(event.job_ids.correlation_id, event.correlation_id)

    def test_duplicate_is_acknowledged_and_changes_nothing(self):
        payload = {"id": "evt_dup", "type": "thing.happened"}
        self.post_signed(self.path, payload)
        response = self.post_signed(self.path, payload)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"received": 1, "new": 0, "duplicates": 1})
        event = self._events("evt_dup")
        self.assertEqual(len(event), 1)
        self.assertEqual(len(event.job_ids), 1)

    def test_forged_signature_is_rejected_and_nothing_stored(self):
        response = self.post_signed(
            self.path, {"id": "evt_forged", "type": "x"}, secrets="not-the-secret"
        )
        self.assertEqual(response.status_code, 401)
        self.assertEqual(
            response.json(), {"error": "invalid signature or unknown backend"}
        )
        self.assertFalse(self._events("evt_forged"))

    def test_expired_signature_is_rejected(self):
        response = self.post_signed(
            self.path, {"id": "evt_old", "type": "x"}, timestamp=int(time.time()) - 301
        )
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self._events("evt_old"))

    def test_missing_signature_is_rejected(self):
        body = json.dumps({"id": "evt_unsigned", "type": "x"}).encode()
        response = self.url_open(
            self.path, data=body, headers={"Content-Type": "application/json"}
        )
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self._events("evt_unsigned"))

    def test_body_signed_then_altered_is_rejected(self):
        body = json.dumps({"id": "evt_alt", "type": "x", "amount": 100}).encode()
        header = self.sign(body)
        altered = body.replace(b"100", b"900")
        response = self.url_open(
            self.path, data=altered, headers={signature.HEADER: header}
        )
        self.assertEqual(response.status_code, 401)

    def test_body_over_the_backend_cap_is_refused_once_authenticated(self):
        # Under the route's cap (the largest of all backends), over this
        # backend's: refused after the signature is checked (the sender knows
        # the secret; nobody else learns the backend's own cap).
        self.backend.max_body_bytes = 1000
        big = json.dumps({"id": "evt_big", "type": "x", "pad": "a" * 2000}).encode()
        response = self.post_signed(self.path, big)
        self.assertEqual(response.status_code, 413)
        self.assertFalse(self._events("evt_big"))

    def test_malformed_body_gets_400_and_is_kept_for_audit(self):
        body = b'{"id": "evt_bad", "type": '
        response = self.post_signed(self.path, body)
        self.assertEqual(response.status_code, 400)
        self.assertIn(
            "malformed body: body is not valid JSON", response.json()["error"]
        )
        kept = self.Event.search(
            [("backend_id", "=", self.backend.id), ("event_type", "=", "malformed")]
        )
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept.payload, body.decode())
        self.assertEqual(kept.state, "failed")
        self.assertFalse(kept.job_ids, "nothing is processed")

    def test_malformed_body_with_nul_bytes_is_kept_not_a_500(self):
        # PostgreSQL text cannot hold NUL: the kept copy shows it escaped.
        body = b'{"id": "evt_nul", \x00 "type": "x"}'
        response = self.post_signed(self.path, body)
        self.assertEqual(response.status_code, 400)
        kept = self.Event.search(
            [("backend_id", "=", self.backend.id), ("event_type", "=", "malformed")]
        )
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept.payload, '{"id": "evt_nul", \\x00 "type": "x"}')
        self.assertEqual(kept.state, "failed")

    def test_missing_fields_are_named(self):
        response = self.post_signed(self.path, {"type": "x"})
        self.assertEqual(response.status_code, 400)
        self.assertIn("missing field(s): id", response.json()["error"])

    def test_unknown_inactive_or_archived_backend_gets_the_one_refusal(self):
        # Was 404 for these and 401 for a bad signature: an id could be told
        # to exist. Every unauthenticated failure now gets the same answer.
        response = self.post_signed("/qtc/webhook/999999", {"id": "e", "type": "x"})
        self.assertEqual(response.status_code, 401)
        self.backend.action_disable()
        response = self.post_signed(self.path, {"id": "evt_off", "type": "x"})
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self._events("evt_off"))
        self.backend.action_activate()
        self.backend.active = False
        response = self.post_signed(self.path, {"id": "evt_archived", "type": "x"})
        self.assertEqual(response.status_code, 401, "an archived backend takes nothing")
        self.assertFalse(self._events("evt_archived"))

    def test_secret_rotation_accepts_both_then_only_the_new(self):
        # The backend's current secret becomes the previous one.
        self.backend._qtc_set_secret("webhook_secret", "whsec_brand_new_secret_value")
        for n, secret in enumerate((TEST_SECRET, "whsec_brand_new_secret_value")):
            response = self.post_signed(
                self.path, {"id": f"evt_rot_{n}", "type": "x"}, secrets=secret
            )
            self.assertEqual(response.status_code, 200, f"secret #{n} accepted")
        self.backend.action_end_secret_rotation()
        response = self.post_signed(
            self.path, {"id": "evt_rot_old", "type": "x"}, secrets=TEST_SECRET
        )
        self.assertEqual(response.status_code, 401)
        response = self.post_signed(
            self.path,
            {"id": "evt_rot_new", "type": "x"},
            secrets="whsec_brand_new_secret_value",
        )
        self.assertEqual(response.status_code, 200)

    def test_expired_rotation_window_rejects_the_old_secret(self):
        self.backend.secret_rotation_hours = 0
        self.backend._qtc_set_secret("webhook_secret", "whsec_next_secret_value")
        response = self.post_signed(
            self.path, {"id": "evt_late", "type": "x"}, secrets=TEST_SECRET
        )
        self.assertEqual(response.status_code, 401)

    def test_sender_signing_with_old_and_new_secrets_is_accepted(self):
        response = self.post_signed(
            self.path, {"id": "evt_two", "type": "x"}, secrets=[OLD_SECRET, TEST_SECRET]
        )
        self.assertEqual(response.status_code, 200)

    def test_secret_never_in_responses_or_logs(self):
        with captured_logs() as lines:
            responses = [
                self.post_signed(self.path, {"id": "evt_log", "type": "x"}),
                self.post_signed(
                    self.path, {"id": "evt_log2", "type": "x"}, secrets="bad"
                ),
                self.post_signed(self.path, b"not json"),
            ]
        for response in responses:
            self.assertNotIn(TEST_SECRET, response.text)
        self.assertTrue(lines, "the requests were logged")
        self.assertFalse([line for line in lines if TEST_SECRET in line])

    def test_accepting_an_event_costs_one_statement(self):
        backend = self.backend
        # Steady state of a server process: configuration and cron ids cached.
        config = backend._qtc_webhook_config(backend.id)
        self.env["qtc.job"]._qtc_worker_cron_ids()
        body = json.dumps({"id": "evt_sql", "type": "x"}).encode()
        headers = {signature.HEADER: self.sign(body)}
        backend._qtc_webhook_verify(body, headers, config)  # warm field caches
        events = backend._qtc_webhook_parse(body, headers)
        with self.assertQueryCount(1):
            stored = backend._qtc_store_events(events, {}, config)
        self.assertEqual(list(stored), ["evt_sql"])
        with self.assertQueryCount(1):
            again = backend._qtc_store_events(events, {}, config)
        self.assertEqual(again, {})
        self.assertEqual(len(self._events("evt_sql")), 1)
