"""Revenue assurance of tax: an invoice held for missing tax data and one
posted but never committed, built on purpose; committed documents reconciled
with posted invoices, against AvaTax's transaction list (mocked in its
FetchResult shape) and against the rate table's own commits."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import responses

from odoo import fields
from odoo.tests import new_test_user, tagged

from .common import BASE_URL, QtcTaxCase, avatax_error

LIST_URL = re.compile(
    rf"{re.escape(BASE_URL)}/api/v2/companies/[^/?]+/transactions(\?.*)?$"
)


@tagged("post_install", "-at_install")
class TestTaxAssurance(QtcTaxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env, "tax_assurance_owner", groups="qtc_connector_base.group_qtc_user"
        )

    def check(self, code):
        return self.env["qtc.assurance.check"].create(
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

    # --------------------------------------------------------------- checks

    @responses.activate
    def test_invoice_held_for_missing_tax_data_until_fixed(self):
        self.fake.register()
        bad_zip = self.env["res.partner"].create(
            {**self.customer.read(["street", "city", "zip"])[0], "name": "Bad ZIP"}
        )
        bad_zip.write(
            {
                "country_id": self.customer.country_id.id,
                "state_id": self.customer.state_id.id,
                "zip": "00000",
            }
        )
        self.fake.fail = lambda body: (
            avatax_error(400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode")
            if body["addresses"]["shipTo"]["postalCode"] == "00000"
            else None
        )
        held = self.make_invoice(partner=bad_zip)
        fine = self.make_invoice()
        (held | fine).action_post()
        self.assertEqual((held.state, held.tax_state), ("draft", "rejected"))
        self.assertEqual(fine.state, "posted")
        check = self.check("tax_held_invoices")
        self.assertEqual(self.measure(check), held)
        self.assertEqual(check.last_amount, held.amount_total_signed)
        self.assertEqual(len(self.breach(check).activity_ids), 1)
        bad_zip.zip = "60606"
        held.action_post()
        self.assertEqual(held.state, "posted")
        self.assertFalse(self.measure(check, hours_later=2))
        self.assertEqual(self.breach(check).state, "resolved")

    @responses.activate
    def test_posted_invoice_not_committed_until_its_commit_goes_through(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_post()
        self.assertEqual(invoice.tax_state, "quoted")
        check = self.check("tax_uncommitted_invoices")
        check.grace_hours = 2
        self.assertFalse(self.measure(check, hours_later=1))
        self.assertEqual(self.measure(check, hours_later=3), invoice)
        self.run_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        self.assertFalse(self.measure(check, hours_later=4))

    # ------------------------------------------------------- reconciliation

    def register_listing(self, requests_seen):
        """AvaTax's ListTransactionsByCompany over the fake's transactions:
        the committed ones and their status, dated by their invoice."""

        def answer(request):
            requests_seen.append(parse_qs(urlsplit(request.url).query))
            value = [
                {
                    key: transaction[key]
                    for key in (
                        "id",
                        "code",
                        "companyId",
                        "date",
                        "status",
                        "type",
                        "currencyCode",
                        "totalAmount",
                        "totalTax",
                    )
                }
                for transaction in self.fake.transactions.values()
            ]
            body = {"@recordsetCount": len(value), "value": value}
            return (200, {"Content-Type": "application/json"}, json.dumps(body))

        responses.add_callback(responses.GET, LIST_URL, callback=answer)

    def reconcile(self, backend, kind, day=None):
        day = day or fields.Date.today()
        run = self.env["qtc.reconciliation.run"]._qtc_request(backend, kind, day, day)
        self.run_jobs()
        return run

    @responses.activate
    def test_avatax_documents_and_posted_invoices_differ_both_ways(self):
        self.fake.register()
        matched, altered, uncommitted = (self.make_invoice() for _n in range(3))
        (matched | altered | uncommitted).action_post()
        uncommitted_job = self.jobs(uncommitted, "commit", "pending")
        uncommitted_job.action_cancel()
        self.run_jobs()
        self.assertEqual(uncommitted.tax_state, "quoted")
        day = matched.invoice_date
        today = day.isoformat()
        for transaction in self.fake.transactions.values():
            transaction["date"] = today
        self.fake.transactions[(altered.name, "SalesInvoice")]["totalTax"] = 140.0
        self.fake.transactions[("INV/2019/0042", "SalesInvoice")] = {
            **self.fake.transactions[(matched.name, "SalesInvoice")],
            "code": "INV/2019/0042",
        }
        seen = []
        self.register_listing(seen)
        run = self.reconcile(self.backend, "tax_avatax_committed", day)
        self.assertEqual(run.state, "done", run.error_message)
        self.assertEqual(
            seen[0]["$filter"], [f"date ge '{today}' and date le '{today}'"]
        )
        self.assertEqual((seen[0]["$top"], seen[0]["$skip"]), (["1000"], ["0"]))
        self.assertEqual((run.external_count, run.odoo_count), (3, 3))
        self.assertEqual(
            {line.key: line.difference for line in run.line_ids},
            {
                altered.name: "amount",
                uncommitted.name: "missing_externally",
                "INV/2019/0042": "missing_in_odoo",
            },
        )
        lines = {line.key: line for line in run.line_ids}
        details = lines[altered.name].exception_id.details
        self.assertIn("AvaTax: SalesInvoice", details)
        self.assertIn("140.00 USD", details)
        self.assertIn("136.79 USD", details)
        self.assertEqual(lines[uncommitted.name].record_ref, uncommitted)

    @responses.activate
    def test_avatax_refusing_the_listing_fails_the_run_with_its_reason(self):
        responses.add(
            responses.GET,
            LIST_URL,
            status=401,
            json={"error": {"code": "AuthenticationException", "message": "Nope"}},
        )
        run = self.reconcile(self.backend, "tax_avatax_committed")
        self.assertEqual(run.state, "failed")
        self.assertIn("AuthenticationException", run.error_message)
        self.assertFalse(run.line_ids)

    def test_rate_table_commits_and_posted_invoices_differ_both_ways(self):
        table = self._qtc_make_illinois_rate_table()
        self.backend.state = "disabled"
        matched, trued_up, uncommitted, cancelled = (
            self.make_invoice() for _n in range(4)
        )
        (matched | trued_up | uncommitted | cancelled).action_post()
        self.jobs(uncommitted, "commit", "pending").action_cancel()
        self.run_jobs()
        self.assertEqual(matched.tax_backend_id, table)
        self.assertEqual(trued_up.tax_state, "committed")
        # A commit whose amount no longer agrees with the invoice, and a commit
        # left on an invoice cancelled without its void.
        trued_up.tax_engine_total = 130.0
        code = cancelled.name
        cancelled.button_cancel()
        cancelled.write({"tax_state": "committed", "tax_document_code": code})
        run = self.reconcile(table, "tax_rate_table_committed", matched.invoice_date)
        self.assertEqual(run.state, "done", run.error_message)
        self.assertEqual(
            {line.key: line.difference for line in run.line_ids},
            {
                trued_up.name: "amount",
                uncommitted.name: "missing_externally",
                code: "missing_in_odoo",
            },
        )
        self.assertEqual(run.matched_count, 1)
