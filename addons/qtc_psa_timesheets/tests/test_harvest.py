import json
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import responses

from odoo.addons.qtc_connector_base.exceptions import RetryableError
from odoo.tests import tagged

from .common import PsaCase

API = "https://api.harvestapp.com/v2"
TOKEN = "harvest-token-123"


def entry(entry_id, updated_at, hours=2.0, closed=True, user_id=1, billed=False):
    return {
        "id": entry_id,
        "spent_date": "2026-03-02",
        "user": {"id": user_id, "name": "Ada"},
        "project": {"id": 77, "name": "Data platform"},
        "task": {"id": 5, "name": "Architecture"},
        "hours": hours,
        "rounded_hours": hours,
        "notes": f"entry {entry_id}",
        "is_closed": closed,
        "is_billed": billed,
        "is_running": False,
        "billable": True,
        "billable_rate": None,
        "updated_at": updated_at,
    }


def page_matcher(number):
    """A ``responses`` matcher on the ``page`` query parameter (1 when absent)."""

    def match(request):
        page = parse_qs(urlsplit(request.url).query).get("page", ["1"])
        return page == [str(number)], f"not page {number}"

    return match


@tagged("post_install", "-at_install")
class TestHarvestPull(PsaCase):
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

    def mock_users(self, rsps):
        rsps.get(
            f"{API}/users",
            json={
                "users": [
                    {"id": 1, "email": "Ada@Example.com"},
                    {"id": 2, "email": None},
                ],
                "links": {"next": None},
                "next_page": None,
            },
        )

    def mock_listing(self, rsps, resource, pages):
        """Register ``pages`` of ``resource``, chained by links.next."""
        for number, records in enumerate(pages, start=1):
            last = number == len(pages)
            rsps.get(
                f"{API}/{resource}",
                match=[page_matcher(number)],
                json={
                    resource: records,
                    "links": {
                        "next": None
                        if last
                        else f"{API}/{resource}?page={number + 1}&per_page=2000"
                    },
                    "next_page": None if last else number + 1,
                },
            )

    def harvest_events(self):
        return self.env["qtc.event"].search(
            [("backend_id", "=", self.harvest.id)], order="id"
        )

    def test_sync_paginates_stores_and_advances_watermark(self):
        with responses.mock as rsps:
            self.mock_users(rsps)
            self.mock_listing(
                rsps,
                "time_entries",
                [
                    [
                        entry(11, "2026-03-03T09:00:00Z"),
                        entry(12, "2026-03-04T10:00:00Z"),
                    ],
                    [
                        entry(13, "2026-03-03T12:00:00Z"),
                        entry(14, "2026-03-03T12:00:00Z", user_id=2),  # no email
                        entry(15, "2026-03-03T13:00:00Z", billed=True),
                    ],
                ],
            )
            self.mock_listing(
                rsps,
                "expenses",
                [
                    [
                        {
                            "id": 31,
                            "spent_date": "2026-03-02",
                            "user": {"id": 1, "name": "Ada"},
                            "project": {"id": 77, "name": "Data platform"},
                            "expense_category": {"name": "Travel"},
                            "total_cost": 84.2,
                            "notes": "Train",
                            "billable": True,
                            "is_closed": True,
                            "is_billed": False,
                            "updated_at": "2026-03-03T08:00:00Z",
                        }
                    ]
                ],
            )
            summary = self.harvest._harvest_sync()
            first = rsps.calls[0].request
            self.assertEqual(first.headers["Authorization"], f"Bearer {TOKEN}")
            self.assertEqual(first.headers["Harvest-Account-Id"], "4242")
            self.assertIn("QTC", first.headers["User-Agent"])
            listing = parse_qs(urlsplit(rsps.calls[1].request.url).query)
            self.assertNotIn("updated_since", listing)  # first sync: everything
        events = self.harvest_events()
        self.assertEqual(
            events.mapped("external_id"),
            [
                "harvest:time_entry:11:2026-03-03T09:00:00Z",
                "harvest:time_entry:12:2026-03-04T10:00:00Z",
                "harvest:time_entry:13:2026-03-03T12:00:00Z",
                "harvest:expense:31:2026-03-03T08:00:00Z",
            ],
        )
        self.assertEqual(
            json.loads(events[0].payload)["employee_email"], "ada@example.com"
        )
        self.assertEqual(self.harvest.harvest_watermark, datetime(2026, 3, 4, 10, 0))
        self.assertIn("3 page(s): 4 new item(s)", summary)
        problems = self.env["qtc.exception"].search(
            [("backend_id", "=", self.harvest.id)]
        )
        self.assertEqual(
            sorted(problems.mapped("external_id")),
            ["harvest:time_entry:14", "harvest:time_entry:15"],
        )
        self.assertIn(
            "already invoiced in Harvest", " ".join(problems.mapped("details"))
        )

        # The items take the push path: jobs turn them into timesheets.
        self.run_jobs()
        self.assertEqual(self.time_line.qty_delivered, 6.0)
        expense_line = self.order.order_line.filtered("is_expense")
        self.assertEqual(expense_line.name, "Travel: Train")
        self.assertEqual(expense_line.price_unit, 84.2)
        self.assertEqual(expense_line.qty_delivered, 1.0)

        # Next sync resumes 5 minutes before the watermark; re-read records
        # are duplicates and change nothing.
        with responses.mock as rsps:
            self.mock_users(rsps)
            self.mock_listing(
                rsps, "time_entries", [[entry(12, "2026-03-04T10:00:00Z")]]
            )
            self.mock_listing(rsps, "expenses", [[]])
            summary = self.harvest._harvest_sync()
            listing = parse_qs(urlsplit(rsps.calls[1].request.url).query)
            self.assertEqual(listing["updated_since"], ["2026-03-04T09:55:00Z"])
        self.assertIn("0 new item(s), 1 duplicate(s)", summary)
        self.assertEqual(len(self.harvest_events()), 4)
        self.assertEqual(self.harvest.harvest_watermark, datetime(2026, 3, 4, 10, 0))

    def test_reopened_entry_withdraws_timesheet(self):
        with responses.mock as rsps:
            self.mock_users(rsps)
            self.mock_listing(
                rsps, "time_entries", [[entry(21, "2026-03-03T09:00:00Z")]]
            )
            self.mock_listing(rsps, "expenses", [[]])
            self.harvest._harvest_sync()
        self.run_jobs()
        self.assertEqual(self.time_line.qty_delivered, 2.0)
        with responses.mock as rsps:
            self.mock_users(rsps)
            self.mock_listing(
                rsps,
                "time_entries",
                [[entry(21, "2026-03-05T09:00:00Z", closed=False)]],
            )
            self.mock_listing(rsps, "expenses", [[]])
            self.harvest._harvest_sync()
        self.run_jobs()
        self.assertEqual(self.time_line.qty_delivered, 0.0)

    def test_rate_limited_is_retryable_and_keeps_watermark(self):
        with responses.mock as rsps:
            rsps.get(f"{API}/users", status=429, headers={"Retry-After": "15"})
            with self.assertRaises(RetryableError) as caught:
                self.harvest._harvest_sync()
        self.assertEqual(caught.exception.delay, 15)
        self.assertFalse(self.harvest.harvest_watermark)

    def test_missing_token_is_a_configuration_error(self):
        backend = self._qtc_make_backend(
            name="No token", provider="harvest", harvest_account_id="1"
        )
        with self.assertRaises(Exception) as caught:
            backend._harvest_sync()
        self.assertEqual(getattr(caught.exception, "category", None), "configuration")

    def test_cron_queues_one_job_per_active_backend(self):
        self.env["qtc.backend"]._harvest_cron_sync()
        self.env["qtc.backend"]._harvest_cron_sync()
        jobs = self.env["qtc.job"].search([("method_name", "=", "_harvest_sync")])
        self.assertEqual(jobs.backend_id, self.harvest)
        self.assertEqual(len(jobs), 1)
