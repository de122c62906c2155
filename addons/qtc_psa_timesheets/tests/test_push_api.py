import json
import time

from odoo.addons.qtc_connector_base.tests.common import OLD_SECRET, QtcHttpCase
from odoo.tests import tagged

from .common import PsaSetupMixin

PATH = "/qtc/psa/{}/work_items"


@tagged("post_install", "-at_install")
class TestPsaPushApi(PsaSetupMixin, QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write({"provider": "psa_push", "psa_batch_max": 5})
        cls._psa_setup()
        cls.path = PATH.format(cls.backend.id)

    def events(self):
        return self.env["qtc.event"].search(
            [("backend_id", "=", self.backend.id)], order="id"
        )

    def assert_nothing_stored(self):
        self.assertFalse(self.events())

    # ------------------------------------------------------------- failures

    def test_missing_signature_401(self):
        body = json.dumps({"items": [self.time_item()]}).encode()
        response = self.url_open(
            self.path, data=body, headers={"Content-Type": "application/json"}
        )
        self.assertEqual(response.status_code, 401)
        self.assertEqual(
            response.json(), {"error": "invalid signature or unknown backend"}
        )
        self.assert_nothing_stored()

    def test_wrong_secret_401(self):
        response = self.post_signed(
            self.path, {"items": [self.time_item()]}, secrets=OLD_SECRET
        )
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_stored()

    def test_expired_signature_401(self):
        response = self.post_signed(
            self.path, {"items": [self.time_item()]}, timestamp=int(time.time()) - 3600
        )
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_stored()

    def test_body_tampered_after_signing_401(self):
        body = json.dumps({"items": [self.time_item()]}).encode()
        header = self.sign(body, timestamp=int(time.time()))
        response = self.url_open(
            self.path,
            data=body.replace(b"7.5", b"75"),
            headers={"Content-Type": "application/json", "X-QTC-Signature": header},
        )
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_stored()

    def test_unknown_other_provider_inactive_or_archived_backend_401(self):
        other = self._qtc_make_backend(name="Other")
        harvest = self._qtc_make_backend(name="Harvest", provider="harvest")
        payload = {"items": [self.time_item()]}
        forged = self.post_signed(self.path, payload, secrets=OLD_SECRET)
        probes = {
            path: self.post_signed(path, payload)
            for path in (
                PATH.format(other.id),
                PATH.format(harvest.id),
                PATH.format(999999),
            )
        }
        self.backend.action_disable()
        probes["disabled"] = self.post_signed(self.path, payload)
        self.backend.action_activate()
        self.backend.active = False
        probes["archived"] = self.post_signed(self.path, payload)
        for name, response in probes.items():
            self.assertEqual(response.status_code, 401, name)
            self.assertEqual(response.content, forged.content, name)
        self.assertFalse(self.env["qtc.event"].search([]))

    def test_oversized_before_authentication_is_the_same_for_every_id(self):
        ceiling = self.env["qtc.backend"]._qtc_inbound_ceiling("psa_push")
        big = b'{"items": [], "pad": "' + b"a" * ceiling + b'"}'
        known = self.url_open(self.path, data=big)
        unknown = self.url_open(PATH.format(999999), data=big)
        self.assertEqual(known.status_code, 413)
        self.assertEqual(known.content, unknown.content)
        self.assertEqual(
            known.json(), {"error": "body exceeds the size limit; split the batch"}
        )

    def test_malformed_json_400(self):
        response = self.post_signed(self.path, b'{"items": [')
        self.assertEqual(response.status_code, 400)
        self.assertTrue(response.json()["error"].startswith("malformed JSON:"))
        self.assert_nothing_stored()

    def test_body_without_items_400(self):
        response = self.post_signed(self.path, {"work": []})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"error": "the body has no 'items'"})
        response = self.post_signed(self.path, {"items": {"a": 1}})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json(), {"error": "'items' must be an array, not an object"}
        )
        self.assert_nothing_stored()

    def test_too_many_items_413(self):
        items = [self.time_item(external_id=f"TE-{n}") for n in range(6)]
        response = self.post_signed(self.path, {"items": items})
        self.assertEqual(response.status_code, 413)
        self.assertEqual(
            response.json(), {"error": "too many items: 6 > 5; split the batch"}
        )
        self.assert_nothing_stored()

    def test_oversized_body_413(self):
        self.backend.max_body_bytes = 200
        response = self.post_signed(self.path, {"items": [self.time_item()]})
        self.assertEqual(response.status_code, 413)
        self.assert_nothing_stored()

    # -------------------------------------------------------------- batches

    def test_mixed_batch_answers_each_item(self):
        bad = self.time_item(external_id="TE-BAD", hours=None, rate=-1)
        items = [
            self.time_item(),
            bad,
            self.time_item(),  # the same delivery twice in one batch
            "not an object",
            self.time_item(external_id="TE-2", version=4),
        ]
        response = self.post_signed(self.path, {"items": items})
        self.assertEqual(response.status_code, 200)
        answers = response.json()["items"]
        self.assertEqual(
            [(a["external_id"], a["status"]) for a in answers],
            [
                ("TE-1", "accepted"),
                ("TE-BAD", "rejected"),
                ("TE-1", "duplicate"),
                (None, "rejected"),
                ("TE-2", "accepted"),
            ],
        )
        self.assertEqual(
            answers[1]["reasons"],
            [
                {"field": "rate", "message": "must be >= 0"},
                {"field": "hours", "message": "is required for a time item"},
            ],
        )
        self.assertEqual(
            answers[3]["reasons"],
            [{"field": None, "message": "must be an object, not a string"}],
        )
        self.assertEqual(answers[0]["reasons"], [])
        events = self.events()
        self.assertEqual(events.mapped("external_id"), ["TE-1:1", "TE-2:4"])
        self.assertEqual(set(events.mapped("event_type")), {"work_item.time"})
        self.assertEqual(json.loads(events[0].payload)["hours"], "7.5")
        # One job for the whole request, applying both events together.
        jobs = self.env["qtc.job"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs.record_ids, events.ids)
        self.assertEqual(jobs.name, "Process 2 events")
        self.assertFalse(events.job_ids)  # a batch job belongs to no single event

        # The whole batch again: nothing new.
        again = self.post_signed(self.path, {"items": items}).json()["items"]
        self.assertEqual(
            [a["status"] for a in again],
            ["duplicate", "rejected", "duplicate", "rejected", "duplicate"],
        )
        self.assertEqual(self.events(), events)

    def test_pushed_items_are_applied_by_jobs(self):
        response = self.post_signed(self.path, {"items": [self.time_item()]})
        self.assertEqual(response.json()["items"][0]["status"], "accepted")
        self.run_jobs()
        self.assertEqual(self.events().state, "done")
        self.assertEqual(self.time_line.qty_delivered, 7.5)
