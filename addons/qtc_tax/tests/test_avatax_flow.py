import responses

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import CREATE_URL, QtcTaxCase, avatax_error


@tagged("post_install", "-at_install")
class TestAvataxFlow(QtcTaxCase):
    # -- failure paths first ---------------------------------------------------

    @responses.activate
    def test_invalid_address_is_a_tax_error_naming_the_fields(self):
        self.fake.register()
        self.fake.fail = lambda body: avatax_error(
            400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode"
        )
        invoice = self.make_invoice()
        with self.assertRaises(UserError) as caught:
            invoice.action_post()
        error = caught.exception
        self.assertEqual(error.category, "tax")
        self.assertIn("ship_to.postal_code", str(error))
        self.assertIn(
            "ship_to.postal_code: ZIP of the delivery address of partner_a",
            error.problems,
        )
        self.assertEqual(error.records, [("account.move", invoice.id)])
        self.assertEqual(invoice.state, "draft")
        # A rejection says the engine is up: the breaker stays closed.
        self.assertEqual(self.backend.tax_breaker_status, "closed")

    @responses.activate
    def test_missing_country_is_named_before_any_call(self):
        self.fake.register()
        self.customer.country_id = False
        invoice = self.make_invoice()
        with self.assertRaises(UserError) as caught:
            invoice.action_tax_quote()
        self.assertIn(
            "ship_to.country: partner_a has no country.", caught.exception.problems
        )
        self.assertEqual(self.fake.creates, [])

    @responses.activate
    def test_missing_license_key_is_a_configuration_error(self):
        self.fake.register()
        self.env["qtc.credential"].sudo().search(
            [("backend_id", "=", self.backend.id), ("key", "=", "avatax_license_key")]
        ).unlink()
        invoice = self.make_invoice()
        with self.assertRaises(UserError) as caught:
            invoice.action_tax_quote()
        self.assertEqual(caught.exception.category, "configuration")
        self.assertIn("AvaTax license key", "\n".join(caught.exception.problems))
        self.assertEqual(self.fake.creates, [])

    def test_vendor_bills_are_not_taxed_by_the_engine(self):
        bill = self.init_invoice("in_invoice", amounts=[100.0])
        self.assertFalse(bill.tax_backend_id)
        bill.action_post()
        self.assertEqual(bill.tax_state, "none")

    # -- quote -------------------------------------------------------------------

    @responses.activate
    def test_quote_applies_the_fixture_to_the_cent(self):
        self.fake.register()
        invoice = self.make_invoice()
        self.fake.answer = self.renumbered_fixture(invoice)
        invoice.action_tax_quote()
        self.assertEqual(invoice.tax_state, "quoted")
        self.assertAlmostEqual(invoice.amount_tax, 136.79, places=2)
        self.assertAlmostEqual(invoice.tax_engine_total, 136.79, places=2)
        self.assertAlmostEqual(invoice.amount_untaxed, 1834.55, places=2)
        self.assertEqual(
            self.tax_amounts(invoice),
            {
                "AvaTax ILLINOIS STA 6.25%": 83.41,
                "AvaTax COOK CTY 1.75%": 23.35,
                "AvaTax CHICAGO CIT 1.25%": 16.68,
                "AvaTax REGIONAL TRANSPORT. AUTHORITY (RTA) STJ 1%": 13.35,
            },
        )
        workshop, manual, consulting = invoice.invoice_line_ids
        self.assertEqual(len(workshop.tax_ids), 4)
        self.assertEqual(manual.tax_ids, workshop.tax_ids)
        self.assertFalse(consulting.tax_ids)  # exempt: no tax, not a 0 % tax
        tax = workshop.tax_ids.filtered(lambda t: "ILLINOIS" in t.name)
        self.assertEqual(
            (tax.amount_type, tax.amount, tax.type_tax_use, tax.company_id),
            ("percent", 6.25, "sale", invoice.company_id),
        )
        self.assertEqual(
            tax.tax_group_id, invoice.company_id.account_sale_tax_id.tax_group_id
        )
        [body] = self.fake.creates
        self.assertEqual((body["type"], body["commit"]), ("SalesOrder", False))
        self.assertEqual(body["companyCode"], "QTC-US")
        self.assertEqual(body["addresses"]["shipFrom"]["region"], "WA")
        self.assertEqual(body["addresses"]["shipTo"]["postalCode"], "60606")
        self.assertEqual(
            [(line["amount"], line.get("taxCode")) for line in body["lines"]],
            [(1234.56, "P0000000"), (99.99, "P0000000"), (500, "S0000000")],
        )
        request = responses.calls[0].request
        self.assertTrue(request.headers["Authorization"].startswith("Basic "))

    @responses.activate
    def test_taxes_are_reused_across_invoices(self):
        self.fake.register()
        first = self.make_invoice()
        first.action_tax_quote()
        second = self.make_invoice([self.workshop])
        second.action_tax_quote()
        self.assertEqual(
            first.invoice_line_ids[0].tax_ids, second.invoice_line_ids[0].tax_ids
        )
        self.assertEqual(
            self.env["account.tax"].search_count(
                [("qtc_engine_key", "like", "avatax|%")]
            ),
            4,
        )

    @responses.activate
    def test_unchanged_invoice_is_not_quoted_twice(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_tax_quote()
        invoice.action_tax_quote()
        self.assertEqual(len(self.fake.creates), 1)
        # A hand-edited tax is repaired from the cached answer, still no call.
        invoice.invoice_line_ids[0].tax_ids = self.tax_sale_a
        invoice.action_tax_quote()
        self.assertEqual(len(self.fake.creates), 1)
        self.assertAlmostEqual(invoice.amount_tax, 136.79, places=2)
        # Posting an unchanged quoted invoice reuses it too.
        invoice.action_post()
        self.assertEqual(len(self.fake.creates), 1)
        # A changed price is a new request.
        draft = self.make_invoice()
        draft.action_tax_quote()
        draft.invoice_line_ids[0].price_unit = 1000.0
        draft.action_tax_quote()
        self.assertEqual(len(self.fake.creates), 3)
        self.assertAlmostEqual(draft.amount_tax, 112.75, places=2)

    @responses.activate
    def test_engine_rounding_differences_are_aligned_to_the_cent(self):
        self.fake.register()
        invoice = self.make_invoice()

        def cook_rounds_up(data):
            # The engine rounds Cook's 21.6048 up to 21.61 (Odoo: 21.60).
            data["lines"][0]["details"][1]["tax"] = 21.61
            data["lines"][0]["tax"] = 126.55
            data["totalTax"] = 136.80

        self.fake.answer = self.renumbered_fixture(invoice, cook_rounds_up)
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertAlmostEqual(invoice.amount_tax, 136.80, places=2)
        self.assertAlmostEqual(invoice.amount_total, 1971.35, places=2)
        self.assertEqual(self.tax_amounts(invoice)["AvaTax COOK CTY 1.75%"], 23.36)
        receivable = invoice.line_ids.filtered(
            lambda line: line.display_type == "payment_term"
        )
        self.assertAlmostEqual(sum(receivable.mapped("balance")), 1971.35, places=2)

    @responses.activate
    def test_engine_total_not_matching_its_lines_still_agrees(self):
        self.fake.register()
        invoice = self.make_invoice()

        def total_off_by_two_cents(data):
            data["totalTax"] = 136.81

        self.fake.answer = self.renumbered_fixture(invoice, total_off_by_two_cents)
        invoice.action_tax_quote()
        self.assertAlmostEqual(invoice.amount_tax, 136.81, places=2)
        self.assertEqual(self.tax_amounts(invoice)["AvaTax ILLINOIS STA 6.25%"], 83.43)

    @responses.activate
    def test_exemption_certificate_is_sent(self):
        self.fake.register()
        self.customer.write(
            {"tax_exemption_number": "EX-2026-17", "tax_entity_use_code": "E"}
        )
        invoice = self.make_invoice()
        invoice.action_tax_quote()
        [body] = self.fake.creates
        self.assertEqual(body["exemptionNo"], "EX-2026-17")
        self.assertEqual(body["entityUseCode"], "E")
        self.assertEqual(invoice.amount_tax, 0.0)
        self.assertFalse(invoice.invoice_line_ids.tax_ids)

    # -- commit, void, refund ----------------------------------------------------

    @responses.activate
    def test_post_commits_once_with_the_invoice_number(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.tax_state, "quoted")
        self.assertEqual(len(self.jobs(invoice, "commit", "pending")), 1)
        self.run_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        self.assertEqual(invoice.tax_document_code, invoice.name)
        self.assertAlmostEqual(invoice.tax_engine_total, 136.79, places=2)
        commits = [body for body in self.fake.creates if body["commit"]]
        self.assertEqual(len(commits), 1)
        self.assertEqual(
            (commits[0]["type"], commits[0]["code"]), ("SalesInvoice", invoice.name)
        )
        self.assertEqual(list(self.fake.committed()), [(invoice.name, "SalesInvoice")])
        # Asking again: nothing to commit, nothing sent.
        with self.assertRaises(UserError):
            invoice.action_tax_commit()
        self.assertEqual(
            self.env["qtc.trace"].search_count(
                [("res_model", "=", "account.move"), ("res_id", "=", invoice.id)]
            ),
            2,  # quoted, committed
        )

    @responses.activate
    def test_commit_retry_after_a_lost_answer_records_one_transaction(self):
        self.fake.register()
        self.fake.lose_next_commit = True
        invoice = self.make_invoice()
        invoice.action_post()
        self.run_jobs()
        # The engine recorded it but the answer was lost: retry scheduled.
        self.assertEqual(invoice.tax_state, "pending")
        self.assertEqual(len(self.jobs(invoice, "commit", "pending")), 1)
        self.run_due_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        commits = [body for body in self.fake.creates if body["commit"]]
        self.assertEqual(len(commits), 2)  # the retry was refused as a duplicate
        self.assertEqual(len(self.fake.committed()), 1)
        self.assertEqual(len(self.fake.gets), 1)  # and read back instead
        self.assertAlmostEqual(invoice.tax_engine_total, 136.79, places=2)

    @responses.activate
    def test_cancel_voids_the_committed_transaction(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_post()
        self.run_jobs()
        code = invoice.name
        invoice.button_cancel()
        self.assertEqual(invoice.state, "cancel")
        self.assertEqual(invoice.tax_state, "voided")
        self.run_jobs()
        self.assertEqual(self.fake.voids, [code])
        self.assertEqual(self.fake.committed(), {})
        [void_call] = [c for c in responses.calls if c.request.url.endswith("/void")]
        self.assertEqual(
            void_call.request.url,
            "https://sandbox-rest.avatax.com/api/v2/companies/QTC-US/transactions/"
            + code.replace("/", "%2F")
            + "/void",
        )

    @responses.activate
    def test_reset_to_draft_voids_and_repost_commits_again(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_post()
        self.run_jobs()
        invoice.button_draft()
        self.assertEqual(invoice.tax_state, "voided")
        invoice.action_post()
        self.run_due_jobs()
        self.run_due_jobs()
        self.assertEqual(self.fake.voids, [invoice.name])
        self.assertEqual(invoice.tax_state, "committed")
        self.assertEqual(len(self.fake.committed()), 1)

    @responses.activate
    def test_credit_note_refunds_the_original(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_post()
        self.run_jobs()
        refund = invoice._reverse_moves()
        self.assertEqual(refund.move_type, "out_refund")
        self.assertEqual(refund.tax_backend_id, self.backend)
        refund.action_post()
        self.assertAlmostEqual(refund.amount_tax, 136.79, places=2)
        self.run_jobs()
        self.assertEqual(refund.tax_state, "committed")
        [body] = [b for b in self.fake.creates if b["type"] == "ReturnInvoice"]
        self.assertEqual(body["code"], refund.name)
        self.assertEqual(body["referenceCode"], invoice.name)
        self.assertEqual(body["lines"][0]["amount"], -1234.56)
        self.assertEqual(body["taxOverride"]["taxDate"], "2019-01-01")
        self.assertAlmostEqual(refund.tax_engine_total, 136.79, places=2)

    # -- connection test -----------------------------------------------------------

    @responses.activate
    def test_connection_pings_with_the_credentials(self):
        responses.add(
            responses.GET,
            "https://sandbox-rest.avatax.com/api/v2/utilities/ping",
            json={"version": "26.3.0", "authenticated": True},
        )
        action = self.backend.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("26.3.0", action["params"]["message"])
        responses.replace(
            responses.GET,
            "https://sandbox-rest.avatax.com/api/v2/utilities/ping",
            json={"version": "26.3.0", "authenticated": False},
        )
        action = self.backend.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertNotIn("LICENSE-KEY", action["params"]["message"])

    def test_production_uses_the_production_url(self):
        self.assertEqual(
            self.backend.avatax_base_url, "https://sandbox-rest.avatax.com"
        )
        self.backend.environment = "production"
        self.assertEqual(self.backend.avatax_base_url, "https://rest.avatax.com")
        self.assertEqual(CREATE_URL[:31], "https://sandbox-rest.avatax.com")
