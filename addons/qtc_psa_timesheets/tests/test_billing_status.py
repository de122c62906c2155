import json
import time

from odoo.addons.qtc_connector_base.tests.common import OLD_SECRET, QtcHttpCase
from odoo.tests import tagged

from ..lib import work_item as wi
from .common import PsaSetupMixin

PATH = "/qtc/psa/{}/billing_status"


@tagged("post_install", "-at_install")
class TestPsaBillingStatus(PsaSetupMixin, QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write({"provider": "psa_push", "psa_batch_max": 3})
        cls._psa_setup()
        cls.path = PATH.format(cls.backend.id)

    def setUp(self):
        super().setUp()
        self.backend._psa_store_items(
            wi.validate_batch(
                [
                    self.time_item(),
                    self.time_item(external_id="TE-2", hours="1"),
                ]
            )
        )
        self.run_jobs()

    def ask(self, *external_ids, **kwargs):
        return self.post_signed(
            self.path, {"external_ids": list(external_ids)}, **kwargs
        )

    # ---------------------------------------------------------------- valid

    def test_each_id_is_answered_in_order(self):
        response = self.ask("TE-9", "TE-1", "TE-2")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(),
            {
                "items": [
                    {"external_id": "TE-9", "status": "unknown", "invoice": None},
                    {"external_id": "TE-1", "status": "not_invoiced", "invoice": None},
                    {"external_id": "TE-2", "status": "not_invoiced", "invoice": None},
                ]
            },
        )
        invoice = self.order._create_invoices()
        invoice.action_post()
        expected_invoice = {
            "number": invoice.name,
            "date": invoice.invoice_date.isoformat(),
            "state": "posted",
        }
        response = self.ask("TE-2", "TE-1", "TE-2")
        self.assertEqual(
            response.json(),
            {
                "items": [
                    {
                        "external_id": "TE-2",
                        "status": "invoiced",
                        "invoice": expected_invoice,
                    },
                    {
                        "external_id": "TE-1",
                        "status": "invoiced",
                        "invoice": expected_invoice,
                    },
                ]
            },
        )
        invoice.button_cancel()
        answer = self.ask("TE-1").json()["items"][0]
        self.assertEqual(answer["status"], "not_invoiced")
        self.assertEqual(answer["invoice"], dict(expected_invoice, state="cancel"))

    def test_items_of_another_backend_are_unknown(self):
        other = self._qtc_make_backend(name="Other PSA", provider="psa_push")
        response = self.post_signed(PATH.format(other.id), {"external_ids": ["TE-1"]})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["items"][0]["status"], "unknown")

    # ------------------------------------------------------------- failures

    def test_forged_signature_401(self):
        response = self.ask("TE-1", secrets=OLD_SECRET)
        self.assertEqual(response.status_code, 401)
        self.assertEqual(
            response.json(), {"error": "invalid signature or unknown backend"}
        )

    def test_missing_or_stale_signature_401(self):
        body = json.dumps({"external_ids": ["TE-1"]}).encode()
        response = self.url_open(
            self.path, data=body, headers={"Content-Type": "application/json"}
        )
        self.assertEqual(response.status_code, 401)
        response = self.ask("TE-1", timestamp=int(time.time()) - 3600)
        self.assertEqual(response.status_code, 401)

    def test_body_tampered_after_signing_401(self):
        body = json.dumps({"external_ids": ["TE-1"]}).encode()
        header = self.sign(body, timestamp=int(time.time()))
        response = self.url_open(
            self.path,
            data=body.replace(b"TE-1", b"TE-2"),
            headers={"Content-Type": "application/json", "X-QTC-Signature": header},
        )
        self.assertEqual(response.status_code, 401)

    def test_unknown_inactive_or_harvest_backend_401(self):
        harvest = self._qtc_make_backend(name="Harvest", provider="harvest")
        self.assertEqual(
            self.post_signed(
                PATH.format(harvest.id), {"external_ids": ["TE-1"]}
            ).status_code,
            401,
        )
        self.assertEqual(
            self.post_signed(
                PATH.format(999999), {"external_ids": ["TE-1"]}
            ).status_code,
            401,
        )
        self.backend.action_disable()
        self.assertEqual(self.ask("TE-1").status_code, 401)

    def test_malformed_400(self):
        response = self.post_signed(self.path, b'{"external_ids": [')
        self.assertEqual(response.status_code, 400)
        self.assertTrue(response.json()["error"].startswith("malformed JSON:"))
        response = self.post_signed(self.path, {"external_ids": "TE-1"})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json(), {"error": "'external_ids' must be an array of strings"}
        )
        response = self.post_signed(self.path, {"external_ids": ["TE-1", None]})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json(),
            {"error": "external_ids[1] must be a non-empty string"},
        )

    def test_too_many_ids_or_oversized_body_413(self):
        response = self.ask("A", "B", "C", "D")
        self.assertEqual(response.status_code, 413)
        self.assertEqual(
            response.json(),
            {"error": "too many external_ids: 4 > 3; split the request"},
        )
        self.backend.max_body_bytes = 20
        response = self.ask("TE-1")
        self.assertEqual(response.status_code, 413)

    def test_get_is_not_allowed(self):
        response = self.url_open(self.path)
        self.assertEqual(response.status_code, 405)
