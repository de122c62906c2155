"""``POST /qtc/psa/<backend>/reconciliation_totals`` over HTTP: signed, capped
and answered like the push API, then reconciled with the timesheets Odoo
holds, item by item, differences both ways."""

import json
import time

from odoo.addons.qtc_connector_base.tests.common import OLD_SECRET, QtcHttpCase
from odoo.tests import tagged

from ..lib import work_item as wi
from .common import PsaSetupMixin

PATH = "/qtc/psa/{}/reconciliation_totals"
UNAUTHENTICATED = {"error": "invalid signature or unknown backend"}


def totals(*items, **extra):
    return {"period": {"from": "2026-03-01", "to": "2026-03-31"}, "items": list(items)}


def reported(external_id, hours, day="2026-03-02"):
    return {"external_id": external_id, "kind": "time", "date": day, "hours": hours}


@tagged("post_install", "-at_install")
class TestPsaReconciliationTotals(PsaSetupMixin, QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write({"provider": "psa_push"})
        cls._psa_setup()
        cls.path = PATH.format(cls.backend.id)

    def events(self):
        return self.env["qtc.event"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("event_type", "=", "reconciliation.totals"),
            ]
        )

    def runs(self):
        return self.env["qtc.reconciliation.run"].search(
            [("backend_id", "=", self.backend.id)]
        )

    def push_items(self, *items):
        self.backend._psa_store_items(wi.validate_batch(list(items)))
        self.run_jobs()

    # ------------------------------------------------------- authentication

    def test_every_unauthenticated_request_gets_the_same_401(self):
        body = json.dumps(totals(reported("TE-1", "7.5"))).encode()
        harvest = self._qtc_make_backend(name="Harvest", provider="harvest")
        answers = [
            self.url_open(
                self.path, data=body, headers={"Content-Type": "application/json"}
            ),
            self.post_signed(self.path, body, secrets=OLD_SECRET),
            self.post_signed(self.path, body, timestamp=int(time.time()) - 3600),
            self.post_signed(PATH.format(999999), body),
            self.post_signed(PATH.format(harvest.id), body),
        ]
        for response in answers:
            self.assertEqual(response.status_code, 401)
            self.assertEqual(response.json(), UNAUTHENTICATED)
        self.assertFalse(self.events())

    def test_body_over_the_cap_is_refused_before_it_is_read(self):
        self.backend.max_body_bytes = 200
        body = json.dumps(
            totals(*[reported(f"TE-{n}", "1") for n in range(20)])
        ).encode()
        response = self.post_signed(self.path, body)
        self.assertEqual(response.status_code, 413)
        self.assertFalse(self.events())

    def test_invalid_totals_are_refused_with_every_problem(self):
        response = self.post_signed(self.path, b"not json")
        self.assertEqual(response.status_code, 400)
        body = {
            "period": {"from": "2026-03-31", "to": "2026-03-01"},
            "items": [{"external_id": "TE-1", "kind": "time", "date": "2026-03-02"}],
            "totals": {"time_hours": "9"},
        }
        response = self.post_signed(self.path, body)
        self.assertEqual(response.status_code, 400)
        problems = response.json()["problems"]
        self.assertIn("period: to is before from", problems)
        self.assertIn("items[0].hours: a number is required", problems)
        self.assertFalse(self.events())

    # -------------------------------------------------------- reconciliation

    def test_pushed_totals_are_reconciled_with_the_timesheets(self):
        self.push_items(
            self.time_item(external_id="TE-1", hours="7.5"),
            self.time_item(external_id="TE-2", hours="2.5"),
            self.time_item(external_id="TE-3", hours="1"),
        )
        body = totals(
            reported("TE-1", "7.5"),
            reported("TE-2", "3"),  # the PSA says 3 h, Odoo holds 2.5
            reported("TE-9", "4"),  # approved in the PSA, never received
        )  # TE-3 is not approved in the PSA any more
        body["totals"] = {"time_hours": "14.5"}
        response = self.post_signed(self.path, body)
        self.assertEqual(response.status_code, 202)
        answer = response.json()
        self.assertEqual((answer["status"], answer["items"]), ("accepted", 3))
        self.assertTrue(answer["id"].startswith("totals:2026-03-01:2026-03-31:"))
        again = self.post_signed(self.path, body)
        self.assertEqual(again.json()["status"], "duplicate")
        self.assertEqual(len(self.events()), 1)

        self.run_jobs()
        run = self.runs()
        self.assertEqual(len(run), 1)
        self.assertEqual(run.kind, "psa_pushed_totals")
        self.assertEqual(run.event_id, self.events())
        self.assertEqual(run.state, "done", run.error_message)
        self.assertEqual(run.external_totals, "3 records, 14.5 h")
        self.assertEqual(run.odoo_totals, "3 records, 11 h")
        self.assertEqual(
            {line.key: line.difference for line in run.line_ids},
            {
                "TE-2": "quantity",
                "TE-9": "missing_in_odoo",
                "TE-3": "missing_externally",
            },
        )
        exceptions = run.line_ids.exception_id
        self.assertEqual(len(exceptions), 3)
        self.assertEqual(set(exceptions.mapped("category")), {"reconciliation"})
