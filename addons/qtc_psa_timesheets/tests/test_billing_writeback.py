import json
from datetime import timedelta

import responses

from odoo import fields
from odoo.addons.qtc_connector_base.lib import signature
from odoo.addons.qtc_connector_base.tests.common import TEST_SECRET
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import PsaCase

CALLBACK = "https://psa.example.com/hooks/odoo-billing"
BILLING_SECRET = "billing_secret_0123456789"


@tagged("post_install", "-at_install")
class TestBillingWriteBack(PsaCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend.write(
            {
                "psa_push_billing_url": CALLBACK,
                "psa_expense_product_id": cls.product_expense.id,
            }
        )

    def setUp(self):
        super().setUp()
        responses.start()
        self.addCleanup(responses.stop)
        self.addCleanup(responses.reset)

    def writeback_jobs(self):
        return self.env["qtc.job"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("method_name", "=", "_psa_send_billing"),
            ],
            order="id",
        )

    def push_and_invoice(self):
        """Two time items and an expense, invoiced and posted."""
        self.push(
            self.time_item(),
            self.time_item(external_id="TE-2", hours="2.5", version=None)
            | {"updated_at": "2026-03-03T10:00:00Z"},
            {
                "external_id": "EX-1",
                "version": 2,
                "kind": "expense",
                "project_ref": "PRJ-42",
                "employee_email": "ada@example.com",
                "date": "2026-03-02",
                "amount": "84.20",
                "currency": self.order.currency_id.name,
                "description": "Train",
                "approved_at": "2026-03-03T09:00:00Z",
                "status": "approved",
            },
        )
        self.assertFalse(self.writeback_jobs())  # importing sends nothing
        invoice = self.order._create_invoices()
        self.assertFalse(self.writeback_jobs())  # a draft sends nothing
        invoice.action_post()
        return invoice

    def sent_body(self, call):
        return json.loads(call.request.body)

    # ---------------------------------------------------------------- posted

    def test_posted_invoice_sends_one_signed_callback(self):
        self.backend.psa_push_billing_secret = BILLING_SECRET
        responses.add(responses.POST, CALLBACK, json={"ok": True})
        invoice = self.push_and_invoice()
        jobs = self.writeback_jobs()
        self.assertEqual(len(jobs), 1)
        items = self.env["qtc.psa.item"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(set(items.mapped("billed_invoice_id")), {invoice})
        self.assertEqual(set(items.mapped("billed_state")), {"posted"})
        self.assertEqual(set(items.mapped("writeback_state")), {"pending"})
        self.run_jobs()
        self.assertEqual(jobs.state, "done")
        self.assertEqual(len(responses.calls), 1)
        request = responses.calls[0].request
        body = json.loads(request.body)
        self.assertEqual(
            body,
            {
                "invoice": {
                    "number": invoice.name,
                    "date": invoice.invoice_date.isoformat(),
                    "state": "posted",
                },
                "items": [
                    {
                        "external_id": "EX-1",
                        "version": 2,
                        "updated_at": None,
                        "kind": "expense",
                        "amount": "84.2",
                        "currency": invoice.currency_id.name,
                    },
                    {
                        "external_id": "TE-1",
                        "version": 1,
                        "updated_at": None,
                        "kind": "time",
                        "hours": "7.5",
                    },
                    {
                        "external_id": "TE-2",
                        "version": None,
                        "updated_at": "2026-03-03T10:00:00Z",
                        "kind": "time",
                        "hours": "2.5",
                    },
                ],
            },
        )
        # Signed with the dedicated secret over the exact bytes sent; the
        # webhook secret does not verify it.
        header = request.headers[signature.HEADER]
        signature.verify(header, request.body, [BILLING_SECRET])
        with self.assertRaises(signature.SignatureMismatch):
            signature.verify(header, request.body, [TEST_SECRET])
        self.assertEqual(
            request.headers["Idempotency-Key"], f"odoo-invoice-{invoice.id}-posted-1"
        )
        self.assertEqual(request.headers["Content-Type"], "application/json")
        self.assertEqual(set(items.mapped("writeback_state")), {"sent"})
        self.assertEqual(
            self.env["qtc.psa.item"].search_count(
                [("id", "in", items.ids), ("writeback_state", "=", "sent")]
            ),
            3,
        )
        # Billed items are not in "Approved, not invoiced".
        self.assertFalse(
            self.env["qtc.psa.unbilled.report"].search(
                [("backend_id", "=", self.backend.id)]
            )
        )

    def test_webhook_secret_signs_when_no_dedicated_secret(self):
        responses.add(responses.POST, CALLBACK, json={})
        self.push_and_invoice()
        self.run_jobs()
        request = responses.calls[0].request
        signature.verify(request.headers[signature.HEADER], request.body, TEST_SECRET)

    def test_no_callback_url_sends_nothing_but_records_the_invoice(self):
        self.backend.psa_push_billing_url = False
        invoice = self.push_and_invoice()
        self.assertFalse(self.writeback_jobs())
        self.run_jobs()
        self.assertFalse(responses.calls)
        item = self.item_record("TE-1")
        self.assertEqual(item.billed_invoice_id, invoice)
        self.assertEqual(item.billed_state, "posted")
        self.assertFalse(item.writeback_state)
        self.assertEqual(invoice.psa_writeback_revision, 0)

    def test_invoice_without_psa_items_sends_nothing(self):
        line = self.milestone_line
        line.qty_delivered = 1
        invoice = self.order._create_invoices()
        invoice.action_post()
        self.assertFalse(self.writeback_jobs())

    # ---------------------------------------------------------------- failures

    def test_503_is_retried_with_backoff_then_sent(self):
        responses.add(responses.POST, CALLBACK, status=503)
        responses.add(responses.POST, CALLBACK, json={})
        invoice = self.push_and_invoice()
        self.run_jobs()
        job = self.writeback_jobs()
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.error_kind, "transient")
        self.assertEqual(job.attempts, 1)
        self.assertGreater(job.eta, fields.Datetime.now())
        self.assertEqual(self.item_record("TE-1").writeback_state, "pending")
        self.assertFalse(self.last_exception())
        # Once the backoff is over, the same document is sent again under the
        # same idempotency key.
        job.sudo().write({"eta": fields.Datetime.now() - timedelta(seconds=1)})
        self.run_jobs()
        self.assertEqual(job.state, "done")
        self.assertEqual(len(responses.calls), 2)
        first, second = (call.request for call in responses.calls)
        self.assertEqual(first.body, second.body)
        self.assertEqual(
            first.headers["Idempotency-Key"], second.headers["Idempotency-Key"]
        )
        self.assertEqual(
            second.headers["Idempotency-Key"], f"odoo-invoice-{invoice.id}-posted-1"
        )
        self.assertEqual(self.item_record("TE-1").writeback_state, "sent")

    def test_timeout_is_retried(self):
        import requests

        responses.add(responses.POST, CALLBACK, body=requests.Timeout("slow"))
        self.push_and_invoice()
        self.run_jobs()
        job = self.writeback_jobs()
        self.assertEqual((job.state, job.error_kind), ("pending", "transient"))

    def test_400_is_a_business_exception(self):
        responses.add(
            responses.POST, CALLBACK, status=400, json={"error": "unknown item TE-2"}
        )
        invoice = self.push_and_invoice()
        self.run_jobs()
        job = self.writeback_jobs()
        self.assertEqual((job.state, job.error_kind), ("failed", "business"))
        self.assertEqual(len(responses.calls), 1)  # not retried
        exception = self.last_exception()
        self.assertEqual(exception.job_id, job)
        self.assertEqual(exception.category, "remote_rejected")
        self.assertIn("400", exception.name)
        self.assertIn("unknown item TE-2", exception.details)
        self.assertNotIn(TEST_SECRET, exception.details or "")
        item = self.item_record("TE-1")
        self.assertEqual(item.writeback_state, "failed")
        # The invoice stays recorded: the failure is about telling the PSA.
        self.assertEqual(item.billed_invoice_id, invoice)
        self.assertEqual(
            self.env["qtc.psa.item"].search(
                [
                    ("backend_id", "=", self.backend.id),
                    ("writeback_state", "=", "failed"),
                ]
            ),
            self.env["qtc.psa.item"].search([("backend_id", "=", self.backend.id)]),
        )

    def test_url_removed_before_the_job_runs_is_a_configuration_exception(self):
        self.push_and_invoice()
        self.backend.psa_push_billing_url = False
        self.run_jobs()
        self.assertEqual(self.writeback_jobs().state, "failed")
        self.assertEqual(self.last_exception().category, "configuration")
        self.assertFalse(responses.calls)

    # ---------------------------------------------------- cancel and reverse

    def test_cancel_sends_state_cancel(self):
        responses.add(responses.POST, CALLBACK, json={})
        invoice = self.push_and_invoice()
        self.run_jobs()
        invoice.button_cancel()
        jobs = self.writeback_jobs()
        self.assertEqual(len(jobs), 2)
        self.run_jobs()
        self.assertEqual(jobs.mapped("state"), ["done", "done"])
        body = self.sent_body(responses.calls[1])
        self.assertEqual(body["invoice"]["state"], "cancel")
        self.assertEqual(body["invoice"]["number"], invoice.name)
        self.assertEqual(
            [item["external_id"] for item in body["items"]], ["EX-1", "TE-1", "TE-2"]
        )
        self.assertEqual(
            responses.calls[1].request.headers["Idempotency-Key"],
            f"odoo-invoice-{invoice.id}-cancel-2",
        )
        item = self.item_record("TE-1")
        self.assertEqual(
            (item.billed_invoice_id, item.billed_state), (invoice, "cancel")
        )
        # The time is waiting for an invoice again.
        report = self.env["qtc.psa.unbilled.report"].search(
            [("backend_id", "=", self.backend.id), ("kind", "=", "time")]
        )
        self.assertEqual(len(report), 2)
        # Re-invoiced: a new "posted" for the new invoice.
        invoice_2 = self.order._create_invoices()
        invoice_2.action_post()
        self.run_jobs()
        body = self.sent_body(responses.calls[-1])
        self.assertEqual(
            (body["invoice"]["number"], body["invoice"]["state"]),
            (invoice_2.name, "posted"),
        )
        self.assertEqual(self.item_record("TE-1").billed_invoice_id, invoice_2)

    def test_deleting_a_reset_invoice_sends_state_cancel(self):
        responses.add(responses.POST, CALLBACK, json={})
        invoice = self.push_and_invoice()
        number = invoice.name
        self.run_jobs()
        invoice.button_draft()
        self.assertEqual(len(self.writeback_jobs()), 1)  # a draft tells nothing
        invoice.unlink()
        self.run_jobs()
        self.assertEqual(self.writeback_jobs().mapped("state"), ["done", "done"])
        body = self.sent_body(responses.calls[-1])
        self.assertEqual(
            (body["invoice"]["number"], body["invoice"]["state"]), (number, "cancel")
        )
        self.assertEqual(len(body["items"]), 3)
        item = self.item_record("TE-1")
        self.assertEqual(item.billed_state, "cancel")
        self.assertFalse(item.billed_invoice_id)

    def test_callback_url_must_be_http(self):
        with self.assertRaises(ValidationError):
            self.backend.psa_push_billing_url = "ftp://psa.example.com/billing"
        with self.assertRaises(ValidationError):
            self.backend.psa_push_billing_url = "https://"

    def test_callback_url_to_an_internal_address_is_refused(self):
        for url, kind in (
            ("http://127.0.0.1:5432/", "a loopback address"),
            ("http://169.254.169.254/", "a cloud metadata address"),
            ("https://10.0.0.8/billing", "a private address"),
        ):
            with self.subTest(url=url), self.assertRaises(ValidationError) as caught:
                with self.env.cr.savepoint():
                    self.backend.psa_push_billing_url = url
            message = str(caught.exception)
            self.assertIn(kind, message)
            self.assertIn("Use the system's public https address", message)
            self.assertIn("qtc_allowed_networks", message)

    def test_production_callback_must_be_https(self):
        self.backend.psa_push_billing_url = "http://psa.example.com/billing"
        with self.assertRaises(ValidationError) as caught:
            self.backend.environment = "production"
        self.assertIn("Use the https:// address", str(caught.exception))

    def test_callback_forced_to_an_internal_address_sends_nothing(self):
        # Past the form (SQL): the send refuses it, the job stops with an
        # exception saying what to change, nothing is retried.
        responses.add(responses.POST, "http://127.0.0.1:5432/", json={})
        self.push_and_invoice()
        self.env.cr.execute(
            "UPDATE qtc_backend SET psa_push_billing_url = %s WHERE id = %s",
            ("http://127.0.0.1:5432/", self.backend.id),
        )
        self.backend.invalidate_recordset()
        self.env.registry.clear_cache()
        self.run_jobs()
        job = self.writeback_jobs()
        self.assertEqual((job.state, job.error_kind), ("failed", "business"))
        self.assertFalse(responses.calls)
        exception = self.last_exception()
        self.assertEqual(exception.category, "configuration")
        self.assertIn("127.0.0.1 is a loopback address", exception.name)

    def test_callback_redirect_is_not_followed(self):
        responses.add(
            responses.POST,
            CALLBACK,
            status=307,
            headers={"Location": "http://169.254.169.254/latest/meta-data/"},
        )
        self.push_and_invoice()
        self.run_jobs()
        job = self.writeback_jobs()
        self.assertEqual(job.state, "failed")
        self.assertEqual(len(responses.calls), 1, "the body was not sent again")
        self.assertIn("only GET requests follow redirects", self.last_exception().name)

    def test_cancelling_a_never_posted_draft_sends_nothing(self):
        self.push(self.time_item())
        invoice = self.order._create_invoices()
        invoice.button_cancel()
        self.assertFalse(self.writeback_jobs())
        self.assertFalse(self.item_record("TE-1").billed_invoice_id)

    def test_full_credit_note_sends_state_reversed(self):
        responses.add(responses.POST, CALLBACK, json={})
        invoice = self.push_and_invoice()
        self.run_jobs()
        credit_note = invoice._reverse_moves(
            [{"invoice_date": invoice.invoice_date}], cancel=False
        )
        self.assertEqual(len(self.writeback_jobs()), 1)  # a draft credit note
        credit_note.action_post()
        self.assertEqual(invoice.payment_state, "reversed")
        self.run_jobs()
        self.assertEqual(len(self.writeback_jobs()), 2)
        body = self.sent_body(responses.calls[-1])
        self.assertEqual(body["invoice"]["state"], "reversed")
        self.assertEqual(body["invoice"]["number"], invoice.name)
        self.assertEqual(self.item_record("TE-2").billed_state, "reversed")

    def test_partial_credit_note_changes_nothing(self):
        responses.add(responses.POST, CALLBACK, json={})
        invoice = self.push_and_invoice()
        self.run_jobs()
        credit_note = invoice._reverse_moves([{"invoice_date": invoice.invoice_date}])
        credit_note.invoice_line_ids[1:].unlink()
        credit_note.action_post()
        self.assertNotEqual(invoice.payment_state, "reversed")
        self.assertEqual(len(self.writeback_jobs()), 1)
        self.assertEqual(self.item_record("TE-1").billed_state, "posted")

    def test_milestone_units_invoiced_are_billed_oldest_first(self):
        responses.add(responses.POST, CALLBACK, json={})
        milestone = {
            "version": 1,
            "kind": "milestone",
            "project_ref": "PRJ-42",
            "milestone_ref": "GO-LIVE",
            "approved_at": "2026-03-03T09:00:00Z",
            "status": "approved",
        }
        self.push(
            milestone | {"external_id": "MS-1", "date": "2026-03-02"},
            milestone | {"external_id": "MS-2", "date": "2026-03-05"},
        )
        self.assertEqual(self.milestone_line.qty_delivered, 2.0)
        # Invoice one unit only.
        invoice = self.order._create_invoices()
        invoice.invoice_line_ids.filtered(
            lambda line: self.milestone_line in line.sale_line_ids
        ).quantity = 1
        invoice.action_post()
        self.run_jobs()
        body = self.sent_body(responses.calls[0])
        self.assertEqual(
            body["items"],
            [
                {
                    "external_id": "MS-1",
                    "version": 1,
                    "updated_at": None,
                    "kind": "milestone",
                    "quantity": "1",
                }
            ],
        )
        self.assertFalse(self.item_record("MS-2").billed_invoice_id)
        invoice_2 = self.order._create_invoices()
        invoice_2.action_post()
        self.run_jobs()
        self.assertEqual(self.item_record("MS-2").billed_invoice_id, invoice_2)
        self.assertEqual(self.item_record("MS-1").billed_invoice_id, invoice)

    def test_other_backend_items_go_to_their_own_url_only(self):
        other_url = "https://other-psa.example.com/billing"
        other = self._qtc_make_backend(
            name="Other PSA", provider="psa_push", psa_push_billing_url=other_url
        )
        responses.add(responses.POST, CALLBACK, json={})
        responses.add(responses.POST, other_url, json={})
        self.push(self.time_item())
        self.push(self.time_item(external_id="OT-1", hours="1"), backend=other)
        invoice = self.order._create_invoices()
        invoice.action_post()
        self.assertEqual(
            self.env["qtc.job"].search_count(
                [("method_name", "=", "_psa_send_billing")]
            ),
            2,
        )
        self.run_jobs()
        by_url = {
            call.request.url: self.sent_body(call)["items"] for call in responses.calls
        }
        self.assertEqual([i["external_id"] for i in by_url[CALLBACK]], ["TE-1"])
        self.assertEqual([i["external_id"] for i in by_url[other_url]], ["OT-1"])

    def test_accountant_without_qtc_rights_can_post(self):
        responses.add(responses.POST, CALLBACK, json={})
        self.push(self.time_item())
        invoice = self.order._create_invoices()
        accountant = self.env["res.users"].create(
            {
                "name": "Accountant",
                "login": "psa_wb_accountant",
                "groups_id": [
                    (6, 0, [self.env.ref("account.group_account_invoice").id])
                ],
            }
        )
        invoice.with_user(accountant).action_post()
        job = self.writeback_jobs()
        self.assertEqual(len(job), 1)
        self.assertEqual(self.item_record("TE-1").billed_invoice_id, invoice)
        self.run_jobs()
        self.assertEqual(job.state, "done")
        self.assertEqual(len(responses.calls), 1)
