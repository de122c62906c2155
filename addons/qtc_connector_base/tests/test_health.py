from odoo.tests import tagged

from ..models.qtc_backend import InboundEvent
from .common import TEST_SECRET, QtcHttpCase

TOKEN = "health-token-for-tests-0123456789"


@tagged("post_install", "-at_install")
class TestHealth(QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param(
            "qtc_connector_base.health_token", TOKEN
        )
        # One pending job of the backend: an event waiting to be applied.
        cls.backend._qtc_store_events([InboundEvent("evt_health", "x", "{}")])

    def _get(self, path, token=TOKEN):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.url_open(path, headers=headers)

    def test_health_requires_the_token(self):
        for token in (None, "", "wrong", TOKEN + "x"):
            self.assertEqual(self._get("/qtc/health", token).status_code, 401)
            self.assertEqual(self._get("/qtc/metrics", token).status_code, 401)

    def test_health_reports_each_backend(self):
        response = self._get("/qtc/health")
        self.assertEqual(response.status_code, 200)
        data = response.json()
        row = next(b for b in data["backends"] if b["id"] == self.backend.id)
        self.assertEqual(row["jobs"]["pending"], 1)
        self.assertEqual(row["provider"], "none")
        self.assertIn(data["status"], ("ok", "warning", "error"))
        self.assertNotIn(TEST_SECRET, response.text)

    def test_metrics_in_prometheus_text_format(self):
        response = self._get("/qtc/metrics")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        text = response.text
        self.assertIn("# TYPE qtc_jobs gauge", text)
        self.assertIn(
            f'qtc_jobs{{backend="{self.backend.id}",provider="none",'
            'state="pending"} 1',
            text,
        )
        self.assertNotIn(TEST_SECRET, text)
