from datetime import datetime

import responses

from odoo.tests import tagged

from .common import (
    EMPTY_PAGE,
    INSTANCE,
    SalesforceCase,
    fixture_json,
)

PAGE2_URL = f"{INSTANCE}/services/data/v62.0/query/01gRO0000016PIAYA2-2"


@tagged("post_install", "-at_install")
class TestDeltaSync(SalesforceCase):
    def sync_jobs(self):
        return self.env["qtc.job"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("method_name", "=", "_salesforce_sync_page"),
            ],
            order="id",
        )

    def run_sync(self):
        """Run the sweep's page jobs only (event jobs are tested elsewhere)."""
        for _round in range(10):
            self.cancel_jobs("_qtc_process")
            if not self.run_jobs():
                return

    def opportunity_events(self):
        return self.env["qtc.event"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("event_type", "=", "Opportunity.sync"),
            ]
        )

    @responses.activate
    def test_failure_mid_walk_keeps_the_watermark_at_the_last_stored_page(self):
        self.mock_token()
        queries = self.route_queries(
            [
                ("FROM Account ", EMPTY_PAGE),
                ("FROM Contact ", EMPTY_PAGE),
                ("FROM Opportunity ", fixture_json("opportunity_query_page1.json")),
            ]
        )
        unavailable = responses.get(
            PAGE2_URL,
            status=503,
            json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}],
        )
        self.backend.action_salesforce_sync_now()
        self.run_sync()

        self.assertEqual(len(queries), 3)
        self.assertNotIn("SystemModstamp >", queries[2], "first sweep reads all")
        self.assertIn("WHERE IsWon = true ORDER BY SystemModstamp, Id", queries[2])
        self.assertEqual(
            self.backend.salesforce_watermark, datetime(2026, 4, 2, 8, 30, 0)
        )
        self.assertEqual(len(self.opportunity_events()), 2)
        page2_job = self.sync_jobs()[-1]
        self.assertEqual(page2_job.state, "pending")
        self.assertEqual(page2_job.error_kind, "transient")
        self.assertEqual(
            page2_job.args,
            ["Opportunity", PAGE2_URL[len(INSTANCE) :], page2_job.args[2]],
        )
        self.assertFalse(self.backend.salesforce_last_sweep_at)
        # Page 2 headers asked for the largest batch.
        self.assertEqual(
            unavailable.calls[0].request.headers["Sforce-Query-Options"],
            "batchSize=2000",
        )

        # Salesforce is back: the retry reads page 2 and the sweep completes.
        responses.replace(
            responses.GET, PAGE2_URL, json=fixture_json("opportunity_query_page2.json")
        )
        self.env.cr.execute(
            "UPDATE qtc_job SET eta = NULL WHERE id = %s", [page2_job.id]
        )
        self.run_sync()
        self.assertEqual(page2_job.state, "done")
        self.assertEqual(
            self.backend.salesforce_watermark, datetime(2026, 4, 5, 17, 45, 30)
        )
        self.assertEqual(len(self.opportunity_events()), 3)
        self.assertTrue(self.backend.salesforce_last_sweep_at)
        self.assertFalse(self.backend.salesforce_sweep_warning)

        # The next sweep starts at the watermark; already stored records are
        # not stored twice.
        responses.replace(
            responses.GET, PAGE2_URL, json=fixture_json("opportunity_query_page2.json")
        )
        self.backend.action_salesforce_sync_now()
        self.run_sync()
        self.assertIn("SystemModstamp > 2026-04-05T17:45:30Z", queries[-1])
        self.assertEqual(len(self.opportunity_events()), 3)

    @responses.activate
    def test_expired_query_locator_restarts_from_the_watermark(self):
        self.mock_token()
        queries = self.route_queries(
            [
                ("FROM Account ", EMPTY_PAGE),
                ("FROM Contact ", EMPTY_PAGE),
                ("FROM Opportunity ", fixture_json("opportunity_query_page1.json")),
            ]
        )
        responses.get(
            PAGE2_URL,
            status=400,
            json=[
                {
                    "errorCode": "INVALID_QUERY_LOCATOR",
                    "message": "invalid query locator",
                }
            ],
        )
        self.backend.action_salesforce_sync_now()
        self.cancel_jobs("_qtc_process")
        for _step in range(4):  # Account, Contact, Opportunity p1, p2 (expired)
            self.run_jobs(limit=1)
            self.cancel_jobs("_qtc_process")
        restart = self.sync_jobs()[-1]
        self.assertEqual(restart.args[:2], ["Opportunity", None])
        self.assertEqual(restart.state, "pending")
        self.run_jobs(limit=1)
        self.assertIn("SystemModstamp > 2026-04-02T08:30:00Z", queries[-1])

    @responses.activate
    def test_unordered_page_is_refused_and_the_watermark_stays(self):
        self.mock_token()
        page = fixture_json("opportunity_query_page1.json")
        page["records"].reverse()
        self.route_queries(
            [
                ("FROM Account ", EMPTY_PAGE),
                ("FROM Contact ", EMPTY_PAGE),
                ("FROM Opportunity ", page),
            ]
        )
        self.backend.action_salesforce_sync_now()
        self.run_sync()
        failed = self.sync_jobs()[-1]
        self.assertEqual(failed.state, "failed")
        self.assertEqual(failed.exception_ids.category, "remote_rejected")
        self.assertFalse(self.backend.salesforce_watermark)
        self.assertFalse(self.opportunity_events())

    def test_a_sweep_in_flight_is_not_started_twice(self):
        first = self.backend._salesforce_enqueue_sweep()
        self.assertEqual(self.backend._salesforce_enqueue_sweep(), first)
        self.assertEqual(len(self.sync_jobs()), 1)

    def test_cron_sweeps_active_salesforce_backends_only(self):
        self.env["qtc.backend"].search(
            [("id", "!=", self.backend.id), ("provider", "=", "salesforce")]
        ).write({"state": "disabled"})
        self.assertEqual(self.env["qtc.backend"]._salesforce_cron_sweep(), 1)
        self.assertEqual(len(self.sync_jobs()), 1)
        self.backend.action_disable()
        self.assertEqual(self.env["qtc.backend"]._salesforce_cron_sweep(), 0)
