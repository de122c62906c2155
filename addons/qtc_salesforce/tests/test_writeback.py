import json

import responses

from odoo.tests import tagged

from .common import ACME_ACCOUNT, ACME_OPPORTUNITY, API, SalesforceCase, acme_record

COLLECTIONS = f"{API}/composite/sobjects"


def ok_results(request):
    records = json.loads(request.body)["records"]
    body = [{"id": r["id"], "success": True, "errors": []} for r in records]
    return (200, {}, json.dumps(body))


@tagged("post_install", "-at_install")
class TestWriteback(SalesforceCase):
    def setUp(self):
        super().setUp()
        event = self.store_sync_event(acme_record())
        # Only the event's job; its write-back job is cancelled so each test
        # decides when write-back runs.
        self.run_jobs(limit=1)
        self.assertEqual(event.state, "done", event.error_message)
        self.cancel_jobs("_salesforce_writeback_flush")
        self.order = self.order_of()

    def writeback_jobs(self, state=None):
        domain = [
            ("backend_id", "=", self.backend.id),
            ("method_name", "=", "_salesforce_writeback_flush"),
        ]
        if state:
            domain.append(("state", "=", state))
        return self.env["qtc.job"].search(domain, order="id")

    def test_confirmation_queues_one_write_back_job(self):
        self.assertEqual(len(self.writeback_jobs("cancelled")), 1)
        self.assertTrue(
            self.binding("Opportunity", ACME_OPPORTUNITY).salesforce_writeback_pending
        )
        # Several triggers before the job runs still make one job.
        self.order._salesforce_request_writeback()
        self.order._salesforce_request_writeback()
        self.assertEqual(len(self.writeback_jobs("pending")), 1)

    @responses.activate
    def test_write_back_body_and_no_second_call_for_the_same_values(self):
        self.mock_token()
        patch = responses.add_callback(
            responses.PATCH, COLLECTIONS, callback=ok_results
        )
        result = self.backend._salesforce_writeback_flush()
        self.assertEqual(len(patch.calls), 1)
        body = json.loads(patch.calls[0].request.body)
        self.assertEqual(body["allOrNone"], False)
        self.assertEqual(
            body["records"],
            [
                {
                    "attributes": {"type": "Opportunity"},
                    "id": ACME_OPPORTUNITY,
                    "Odoo_Order__c": self.order.name,
                    "Odoo_Invoice_Status__c": "ordered",
                    "Odoo_Balance_Due__c": 0.0,
                },
                {
                    "attributes": {"type": "Account"},
                    "id": ACME_ACCOUNT,
                    "Odoo_Balance_Due__c": 0.0,
                },
            ],
        )
        self.assertEqual(
            result, "2 record(s) written, 0 to retry, 0 refused, 1 call(s)"
        )
        binding = self.binding("Opportunity", ACME_OPPORTUNITY)
        self.assertFalse(binding.salesforce_writeback_pending)
        self.assertTrue(binding.salesforce_written_hash)
        # Nothing changed since: flagged again, the same values are not re-sent.
        self.order._salesforce_request_writeback()
        result = self.backend._salesforce_writeback_flush()
        self.assertEqual(len(patch.calls), 1)
        self.assertEqual(
            result, "0 record(s) written, 0 to retry, 0 refused, 0 call(s)"
        )
        self.assertFalse(binding.salesforce_writeback_pending)

    @responses.activate
    def test_503_is_retried_by_the_job_then_written(self):
        self.mock_token()
        failing = responses.patch(COLLECTIONS, status=503, body="Service Unavailable")
        self.order._salesforce_request_writeback()
        job = self.writeback_jobs("pending")
        self.run_jobs()
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.error_kind, "transient")
        binding = self.binding("Opportunity", ACME_OPPORTUNITY)
        self.assertTrue(binding.salesforce_writeback_pending)
        responses.remove(failing)
        responses.add_callback(responses.PATCH, COLLECTIONS, callback=ok_results)
        self.env.cr.execute("UPDATE qtc_job SET eta = NULL WHERE id = %s", [job.id])
        self.run_jobs()
        self.assertEqual(job.state, "done", job.error_message)
        self.assertFalse(binding.salesforce_writeback_pending)

    @responses.activate
    def test_write_back_waits_for_the_events_ready_to_apply(self):
        """Opportunities applied while a write-back job is pending join its
        flush: one call for all of them, not one per gap between events."""
        self.mock_token()
        patch = responses.add_callback(
            responses.PATCH, COLLECTIONS, callback=ok_results
        )
        self.order._salesforce_request_writeback()
        flush = self.writeback_jobs("pending")
        later = []
        for number in (2, 3):
            record = acme_record()
            record["Id"] = f"0065e00000AbC{number:02d}AAV"
            record["Name"] = f"Acme & Co - phase {number}"
            for line in record["OpportunityLineItems"]["records"]:
                line["Id"] = line["Id"][:-2] + f"{number:02d}"
            later.append(record["Id"])
            # Stored after the write-back job was queued: a later job id.
            self.store_sync_event(record)
        self.assertGreater(
            flush.priority,
            self.env["qtc.job"]
            .search([("method_name", "=", "_qtc_process")], order="id desc", limit=1)
            .priority,
        )
        self.run_jobs()
        self.assertEqual(flush.state, "done", flush.error_message)
        self.assertEqual(len(patch.calls), 1)
        sent = [r["id"] for r in json.loads(patch.calls[0].request.body)["records"]]
        self.assertEqual(sorted(sent), sorted([ACME_OPPORTUNITY, *later, ACME_ACCOUNT]))
        for opportunity_id in later:
            self.assertFalse(
                self.binding("Opportunity", opportunity_id).salesforce_writeback_pending
            )

    @responses.activate
    def test_two_hundred_records_per_call(self):
        self.mock_token()
        patch = responses.add_callback(
            responses.PATCH, COLLECTIONS, callback=ok_results
        )
        Binding = self.env["qtc.binding"]
        for number in range(201):
            Binding.create(
                {
                    "backend_id": self.backend.id,
                    "external_type": "Opportunity",
                    "external_id": f"0065e00000Zz{number:03d}AAV",
                    "res_model": "sale.order",
                    "res_id": self.order.id,
                    "salesforce_writeback_pending": True,
                }
            )
        self.backend.salesforce_account_balance_field = False
        result = self.backend._salesforce_writeback_flush()
        sizes = [len(json.loads(c.request.body)["records"]) for c in patch.calls]
        self.assertEqual(sizes, [200, 2])
        self.assertEqual(
            result, "202 record(s) written, 0 to retry, 0 refused, 2 call(s)"
        )

    @responses.activate
    def test_locked_record_is_retried_later_refused_one_opens_an_exception(self):
        self.mock_token()
        other = self.env["qtc.binding"].create(
            {
                "backend_id": self.backend.id,
                "external_type": "Opportunity",
                "external_id": "0065e00000Zz999AAV",
                "res_model": "sale.order",
                "res_id": self.order.id,
                "salesforce_writeback_pending": True,
            }
        )
        self.backend.salesforce_account_balance_field = False
        answers = {
            ACME_OPPORTUNITY: {
                "success": False,
                "errors": [
                    {
                        "statusCode": "UNABLE_TO_LOCK_ROW",
                        "message": "unable to obtain exclusive access to this record",
                        "fields": [],
                    }
                ],
            },
            other.external_id: {
                "success": False,
                "errors": [
                    {
                        "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                        "message": "Odoo_Order__c is read only",
                        "fields": ["Odoo_Order__c"],
                    }
                ],
            },
        }

        def results(request):
            records = json.loads(request.body)["records"]
            return (200, {}, json.dumps([answers[r["id"]] for r in records]))

        responses.add_callback(responses.PATCH, COLLECTIONS, callback=results)
        self.cancel_jobs("_salesforce_writeback_flush")
        result = self.backend._salesforce_writeback_flush()
        self.assertEqual(
            result, "0 record(s) written, 1 to retry, 1 refused, 1 call(s)"
        )
        self.assertTrue(
            self.binding("Opportunity", ACME_OPPORTUNITY).salesforce_writeback_pending
        )
        self.assertFalse(other.salesforce_writeback_pending)
        retry = self.writeback_jobs("pending")
        self.assertEqual(len(retry), 1)
        self.assertTrue(retry.eta)
        exception = self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id), ("category", "=", "remote_rejected")]
        )
        self.assertIn(
            "0065e00000Zz999AAV: INVALID_FIELD_FOR_INSERT_UPDATE: "
            "Odoo_Order__c is read only",
            exception.details,
        )

    def test_posted_invoice_queues_the_write_back(self):
        self.cancel_jobs("_salesforce_writeback_flush")
        binding = self.binding("Opportunity", ACME_OPPORTUNITY)
        binding.salesforce_writeback_pending = False
        # Deliver the consulting line by hand so something is invoiceable.
        consulting = self.order.order_line.filtered(
            lambda sol: sol.product_id == self.product_consulting
        )
        consulting.qty_delivered = 10
        invoice = self.order._create_invoices()
        self.assertFalse(self.writeback_jobs("pending"))
        invoice.action_post()
        self.assertTrue(binding.salesforce_writeback_pending)
        self.assertEqual(len(self.writeback_jobs("pending")), 1)
        values = self.order._salesforce_writeback_values(self.backend)
        self.assertEqual(values["Odoo_Invoice_Status__c"], "invoiced")
        self.assertEqual(values["Odoo_Balance_Due__c"], invoice.amount_residual_signed)
