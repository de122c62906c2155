"""Revenue assurance of the time-to-invoice hand-off: approved time never
invoiced and invoices the PSA was not told about, built on purpose; the
approved-to-invoiced service level; Harvest's approved items reconciled with
the timesheets through its API (mocked in the shapes Harvest documents)."""

from datetime import date
from urllib.parse import parse_qs, urlsplit

import responses

from odoo import fields
from odoo.tests import new_test_user, tagged

from .common import PsaCase
from .test_harvest import API, TOKEN, entry

CALLBACK = "https://psa.example.com/odoo/billing"
KIND_HARVEST = "psa_harvest_items"


@tagged("post_install", "-at_install")
class TestPsaAssurance(PsaCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env, "psa_assurance_owner", groups="qtc_connector_base.group_qtc_user"
        )

    def check(self, code):
        checks = self.env["qtc.assurance.check"]
        return checks.create(
            {
                "name": code,
                "code": code,
                "company_id": self.env.company.id,
                "owner_user_id": self.owner.id,
            }
        )

    def measure(self, check, hours_later=1):
        check._qtc_assurance_compute(
            now=fields.Datetime.add(fields.Datetime.now(), hours=hours_later)
        )
        return self.env[check.res_model].browse(check.snapshot_id.res_ids)

    def breach(self, check):
        return self.env["qtc.exception"].search(
            [("res_model", "=", check._name), ("res_id", "=", check.id)]
        )

    def test_approved_time_never_invoiced_is_found_until_invoiced(self):
        self.push(
            self.time_item(),
            self.time_item(external_id="TE-2", hours="3", billable=False),
        )
        check = self.check("psa_unbilled_time")
        self.assertEqual(self.measure(check), self.item_record("TE-1"))
        self.assertEqual(check.last_amount, 750.0)  # 7.5 h at 100
        exception = self.breach(check)
        self.assertEqual(len(exception), 1)
        self.assertEqual(len(exception.activity_ids), 1)
        self.assertEqual(exception.activity_ids.user_id, self.owner)
        invoice = self.order._create_invoices()
        self.assertFalse(self.measure(check, hours_later=2), "on a draft invoice")
        invoice.button_cancel()
        self.assertEqual(
            self.measure(check, hours_later=3),
            self.item_record("TE-1"),
            "a cancelled invoice bills nothing",
        )
        self.order._create_invoices().action_post()
        self.assertFalse(self.measure(check, hours_later=4))
        self.assertEqual(check.state, "ok")
        self.assertEqual(self.breach(check).mapped("state"), ["resolved"])

    def test_invoice_not_reported_to_the_psa_until_its_write_back_goes(self):
        self.backend.psa_push_billing_url = CALLBACK
        self.push(self.time_item())
        invoice = self.order._create_invoices()
        invoice.action_post()
        check = self.check("psa_billing_unsent")
        self.assertEqual(self.measure(check), invoice)
        self.assertEqual(check.last_amount, invoice.amount_total_signed)
        with responses.mock as rsps:
            rsps.add(responses.POST, CALLBACK, json={"ok": True})
            self.run_jobs()
        self.assertEqual(self.item_record("TE-1").writeback_state, "sent")
        self.assertFalse(self.measure(check, hours_later=2))
        self.assertEqual(self.breach(check).state, "resolved")

    def test_approved_to_invoiced_service_level(self):
        self.push(self.time_item())
        self.order._create_invoices().action_post()
        sla = self.env["qtc.flow.sla"].create(
            {
                "name": "Approved time to invoiced",
                "flow": "psa_approved_to_invoiced",
                "target_hours": 24,
                "company_id": self.env.company.id,
            }
        )
        sla._qtc_sla_compute()
        self.assertEqual(sla.last_count, 1)
        self.assertEqual(sla.snapshot_ids.backend_id, self.backend)
        self.assertEqual(sla.state, "ok")


@tagged("post_install", "-at_install")
class TestHarvestReconciliation(PsaCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.harvest = cls._qtc_make_backend(
            name="Harvest",
            provider="harvest",
            harvest_account_id="4242",
            psa_expense_product_id=cls.product_expense.id,
        )
        cls.harvest._qtc_set_secret("harvest_token", TOKEN)
        cls.env["qtc.value.map.line"].create(
            {
                "map_id": cls.env.ref(
                    "qtc_psa_timesheets.qtc_value_map_psa_project"
                ).id,
                "external_value": "77",
                "res_id": cls.project.id,
            }
        )

    @staticmethod
    def expense(expense_id, amount, closed=True):
        return {
            "id": expense_id,
            "spent_date": "2026-03-02",
            "user": {"id": 1, "name": "Ada"},
            "project": {"id": 77, "name": "Data platform"},
            "expense_category": {"name": "Travel"},
            "total_cost": amount,
            "notes": "Train",
            "billable": True,
            "is_closed": closed,
            "is_billed": False,
            "updated_at": "2026-03-03T08:00:00Z",
        }

    @staticmethod
    def listing(resource, records):
        return {resource: records, "links": {"next": None}, "next_page": None}

    def sync(self, entries, expenses):
        """Import what Harvest approved, as the scheduled sync does."""
        with responses.mock as rsps:
            rsps.get(
                f"{API}/users",
                json={"users": [{"id": 1, "email": "ada@example.com"}]},
            )
            rsps.get(f"{API}/time_entries", json=self.listing("time_entries", entries))
            rsps.get(f"{API}/expenses", json=self.listing("expenses", expenses))
            self.harvest._harvest_sync()
            self.run_jobs()

    def reconcile(self, entries, expenses):
        def window(request):
            query = parse_qs(urlsplit(request.url).query)
            wanted = {"from": ["2026-03-01"], "to": ["2026-03-07"]}
            return all(query.get(k) == v for k, v in wanted.items()), "window"

        with responses.mock as rsps:
            rsps.get(
                f"{API}/time_entries",
                match=[window],
                json=self.listing("time_entries", entries),
            )
            rsps.get(
                f"{API}/expenses",
                match=[window],
                json=self.listing("expenses", expenses),
            )
            run = self.env["qtc.reconciliation.run"]._qtc_request(
                self.harvest, KIND_HARVEST, date(2026, 3, 1), date(2026, 3, 7)
            )
            self.run_jobs()
        return run

    def test_harvest_items_and_timesheets_differ_both_ways(self):
        stamp = "2026-03-03T09:00:00Z"
        self.sync(
            [entry(11, stamp, 2.0), entry(12, stamp, 3.0), entry(13, stamp, 1.5)],
            [self.expense(31, 84.2)],
        )
        imported = self.env["qtc.psa.item"].search(
            [("backend_id", "=", self.harvest.id)]
        )
        self.assertEqual(len(imported), 4)
        run = self.reconcile(
            [
                entry(11, stamp, 2.0),
                entry(12, stamp, 3.5),  # hours changed at Harvest
                entry(14, stamp, 1.0),  # approved, never imported
                entry(15, stamp, 4.0, closed=False),  # not approved: not due
                entry(16, stamp, 4.0, billed=True),  # billed in Harvest itself
            ],
            [self.expense(31, 84.2)],
        )  # entry 13 is no longer approved at Harvest
        self.assertEqual(run.state, "done", run.error_message)
        self.assertEqual((run.external_count, run.odoo_count), (4, 4))
        self.assertEqual(run.matched_count, 2)
        self.assertEqual(run.external_totals, "4 records, 84.20 USD, 6.5 h")
        self.assertEqual(
            {line.key: line.difference for line in run.line_ids},
            {
                "harvest:time_entry:12": "quantity",
                "harvest:time_entry:14": "missing_in_odoo",
                "harvest:time_entry:13": "missing_externally",
            },
        )
        lines = {line.key: line for line in run.line_ids}
        self.assertIn("3.5 h", lines["harvest:time_entry:12"].exception_id.details)
        self.assertIn(
            "Odoo: timesheet of item", lines["harvest:time_entry:12"].odoo_label
        )
        self.assertEqual(
            lines["harvest:time_entry:13"].record_ref,
            imported.filtered(lambda i: i.external_id == "harvest:time_entry:13"),
        )
        # Harvest and Odoo agree again: the open differences resolve.
        again = self.reconcile(
            [entry(11, stamp, 2.0), entry(12, stamp, 3.0), entry(13, stamp, 1.5)],
            [self.expense(31, 84.2)],
        )
        self.assertEqual(again.difference_count, 0)
        self.assertEqual(set(run.line_ids.exception_id.mapped("state")), {"resolved"})

    def test_harvest_down_retries_the_run(self):
        with responses.mock as rsps:
            rsps.get(f"{API}/time_entries", status=503)
            run = self.env["qtc.reconciliation.run"]._qtc_request(
                self.harvest, KIND_HARVEST, date(2026, 3, 1), date(2026, 3, 7)
            )
            self.run_jobs()
        self.assertEqual(run.state, "pending")
        self.assertEqual(run.job_id.state, "pending", "queued again with backoff")
        self.assertGreater(run.job_id.attempts, 0)
