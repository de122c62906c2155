import copy
import json
from datetime import date

import responses

from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent
from odoo.tests import tagged
from odoo.tools import html2plaintext

from .common import (
    ACME_ACCOUNT,
    ACME_OPPORTUNITY,
    EMPTY_PAGE,
    MILESTONE_LINE,
    SalesforceCase,
    acme_record,
    query_page,
)


def line_item(line_id, code, quantity, price, discount=None, kind=None):
    return {
        "attributes": {"type": "OpportunityLineItem"},
        "Id": line_id,
        "PricebookEntry": {
            "attributes": {"type": "PricebookEntry"},
            "Product2": {"attributes": {"type": "Product2"}, "ProductCode": code},
        },
        "Quantity": quantity,
        "UnitPrice": price,
        "Discount": discount,
        "Description": None,
        "Billing_Type__c": kind,
    }


@tagged("post_install", "-at_install")
class TestOpportunity(SalesforceCase):
    def setUp(self):
        super().setUp()
        # Write-back has its own tests; here it would only call out.
        self.backend.salesforce_writeback_enabled = False

    def traces(self, record, operation=None):
        domain = [("res_model", "=", record._name), ("res_id", "=", record.id)]
        if operation:
            domain.append(("operation", "=", operation))
        return self.env["qtc.trace"].search(domain)

    def apply(self, record, suffix=""):
        event = self.store_sync_event(record, suffix)
        self.cancel_jobs("_salesforce_writeback_flush")
        self.run_jobs()
        self.cancel_jobs("_salesforce_writeback_flush")
        return event

    def later(self, record, stamp):
        record = copy.deepcopy(record)
        record["SystemModstamp"] = stamp
        return record

    # ------------------------------------------------------------ creation

    def test_won_opportunity_becomes_a_confirmed_order_with_its_project(self):
        event = self.apply(acme_record())
        self.assertEqual(event.state, "done", event.error_message)
        order = self.order_of()
        self.assertEqual(order.state, "sale")
        self.assertEqual(order.client_order_ref, "Acme & Co - ERP rollout")
        self.assertEqual(order.currency_id, self.eur)
        self.assertEqual(order.pricelist_id, self.eur_pricelist)
        self.assertEqual(order.origin, f"Salesforce {ACME_OPPORTUNITY}")
        partner = order.partner_id
        self.assertEqual(partner.name, "Acme & Co GmbH")
        self.assertTrue(partner.is_company)
        self.assertEqual(partner.street, "Hauptstrasse 1")
        self.assertEqual(partner.street2, "Gebäude B")
        self.assertEqual(partner.country_id.code, "DE")
        self.assertEqual(partner.vat, "DE123456789")
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(
                self.backend, "Account", ACME_ACCOUNT
            ),
            partner,
        )
        lines = order.order_line.sorted("id")
        self.assertEqual(
            lines.product_id, self.product_milestones | self.product_consulting
        )
        self.assertEqual(lines.mapped("product_uom_qty"), [3.0, 100.0])
        self.assertEqual(lines.mapped("price_unit"), [12000.0, 150.0])
        self.assertEqual(lines.mapped("discount"), [0.0, 20.0])
        self.assertEqual(order.amount_untaxed, 36000.0 + 12000.0)
        # Odoo's service products made the project, task and milestone.
        self.assertTrue(lines[0].project_id)
        self.assertTrue(lines[0].task_id)
        milestone = self.env["project.milestone"].search(
            [("sale_line_id", "=", lines[0].id)]
        )
        self.assertEqual(len(milestone), 1)
        self.assertEqual(milestone.quantity_percentage, 1.0)
        # Trace from the event: partner and order created, order confirmed.
        operations = (
            self.env["qtc.trace"]
            .search([("event_id", "=", event.id)])
            .mapped(lambda t: (t.res_model, t.operation))
        )
        self.assertIn(("res.partner", "created"), operations)
        self.assertIn(("sale.order", "created"), operations)
        self.assertIn(("sale.order.line", "created"), operations)
        self.assertIn(("project.project", "created"), operations)

    @responses.activate
    def test_schedules_become_dated_milestones(self):
        self.backend.salesforce_read_schedules = True
        self.mock_token()
        schedules = [
            {
                "attributes": {"type": "OpportunityLineItemSchedule"},
                "Id": "00o5e00000Sc1AAAAZ",
                "OpportunityLineItemId": MILESTONE_LINE,
                "ScheduleDate": "2026-04-30",
                "Type": "Quantity",
                "Quantity": 1.0,
                "Revenue": None,
                "Description": None,
            },
            {
                "attributes": {"type": "OpportunityLineItemSchedule"},
                "Id": "00o5e00000Sc1ABAAZ",
                "OpportunityLineItemId": MILESTONE_LINE,
                "ScheduleDate": "2026-06-30",
                "Type": "Quantity",
                "Quantity": 2.0,
                "Revenue": None,
                "Description": None,
            },
        ]
        queries = self.route_queries(
            [("FROM OpportunityLineItemSchedule", query_page(schedules))]
        )
        event = self.apply(acme_record())
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(len(queries), 1)
        self.assertIn(f"OpportunityLineItemId IN ('{MILESTONE_LINE}')", queries[0])
        line = self.order_of().order_line.filtered(
            lambda sol: sol.product_id == self.product_milestones
        )
        milestones = self.env["project.milestone"].search(
            [("sale_line_id", "=", line.id)], order="deadline"
        )
        self.assertEqual(
            milestones.mapped("deadline"), [date(2026, 4, 30), date(2026, 6, 30)]
        )
        self.assertEqual(
            [round(m.quantity_percentage, 4) for m in milestones], [0.3333, 0.6667]
        )
        self.assertEqual(milestones.project_id, line.project_id)

    # --------------------------------------------------------- idempotency

    def test_identical_redelivery_and_write_back_echo_change_nothing(self):
        self.apply(acme_record())
        order = self.order_of()
        write_date = order.write_date
        line_count = len(order.order_line)
        # The echo of our write-back: new SystemModstamp, our fields set.
        echo = self.later(acme_record(), "2026-04-10T09:00:00.000+0000")
        echo["Odoo_Order__c"] = order.name
        echo["Odoo_Invoice_Status__c"] = "ordered"
        echo["Odoo_Balance_Due__c"] = 0.0
        event = self.apply(echo)
        self.assertEqual(event.state, "done")
        self.assertEqual(event.result, "skipped: identical")
        self.assertEqual(len(order.order_line), line_count)
        self.assertEqual(order.write_date, write_date)
        self.assertEqual(len(self.traces(order, "skipped")), 1)
        self.assertEqual(
            self.env["sale.order"].search_count([("origin", "=", order.origin)]), 1
        )

    def test_stale_update_is_skipped(self):
        self.apply(self.later(acme_record(), "2026-04-10T09:00:00.000+0000"))
        order = self.order_of()
        older = self.later(acme_record(), "2026-04-01T09:00:00.000+0000")
        older["Name"] = "Old name"
        event = self.apply(older)
        self.assertEqual(event.result, "skipped: stale")
        self.assertEqual(order.client_order_ref, "Acme & Co - ERP rollout")
        self.assertTrue(self.traces(order, "skipped"))

    # ---------------------------------------------------------- validation

    def test_every_validation_problem_is_reported_at_once_and_nothing_created(self):
        record = acme_record()
        record["CurrencyIsoCode"] = "XAF"  # not active in Odoo
        record["Account"]["BillingStreet"] = None
        record["Account"]["BillingCity"] = ""
        lines = record["OpportunityLineItems"]["records"]
        lines[0]["PricebookEntry"]["Product2"]["ProductCode"] = "NOPE-1"
        lines[1]["Quantity"] = 0
        lines[1]["Discount"] = 120
        partners_before = self.env["res.partner"].search_count([])
        event = self.apply(record)
        self.assertEqual(event.state, "failed")
        exception = event.exception_ids
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.category, "data")
        self.assertIn("6 problem(s)", exception.name)
        for expected in (
            "Account.BillingStreet: missing (billing address)",
            "Account.BillingCity: missing (billing address)",
            "CurrencyIsoCode: XAF is not an active currency",
            "'NOPE-1' is not mapped to a product",
            "OpportunityLineItems[1] (00k5e00000Lm1ABAAZ).Quantity: must be positive",
        ):
            self.assertIn(expected, exception.details)
        self.assertIn("Discount: must be between 0 and 100, got 120", exception.details)
        self.assertFalse(self.order_of())
        self.assertEqual(self.env["res.partner"].search_count([]), partners_before)
        self.assertEqual(exception.external_type, "Opportunity")

    def test_unmapped_product_is_a_mapping_exception_fixed_by_the_map(self):
        record = acme_record()
        record["OpportunityLineItems"]["records"][1]["PricebookEntry"]["Product2"][
            "ProductCode"
        ] = "SF-CONSULTING"
        event = self.apply(record)
        exception = event.exception_ids
        self.assertEqual(exception.category, "mapping")
        self.assertIn("'SF-CONSULTING' is not mapped to a product", exception.details)
        value_map = self.env["qtc.value.map"].create(
            {
                "name": "Salesforce products",
                "code": "salesforce.product",
                "backend_id": self.backend.id,
                "target_model": "product.product",
                "line_ids": [
                    (
                        0,
                        0,
                        {
                            "external_value": "SF-CONSULTING",
                            "res_id": self.product_consulting.id,
                        },
                    )
                ],
            }
        )
        self.assertTrue(value_map)
        exception.action_retry()
        self.run_jobs()
        self.assertEqual(event.state, "done", event.error_message)
        self.assertIn(self.product_consulting, self.order_of().order_line.product_id)

    def test_milestone_billing_needs_a_milestone_product(self):
        record = acme_record()
        record["OpportunityLineItems"]["records"][1]["Billing_Type__c"] = "Milestone"
        event = self.apply(record)
        self.assertIn(
            "billed by milestone but product [CONS-HR] Consulting is not invoiced on "
            "milestones",
            event.exception_ids.details,
        )

    # ----------------------------------------------------- re-delivery

    def test_redelivery_updates_a_draft_order(self):
        self.backend.salesforce_confirm_orders = False
        self.apply(acme_record())
        order = self.order_of()
        self.assertEqual(order.state, "draft")
        changed = self.later(acme_record(), "2026-04-10T09:00:00.000+0000")
        items = changed["OpportunityLineItems"]["records"]
        items[1]["Quantity"] = 120.0
        del items[0]
        items.append(line_item("00k5e00000Lm9ZZAAZ", "SUPPORT-Y", 1.0, 5000.0))
        event = self.apply(changed)
        self.assertEqual(event.state, "done", event.error_message)
        lines = order.order_line.sorted("id")
        self.assertEqual(
            lines.product_id, self.product_consulting | self.product_support
        )
        self.assertEqual(lines.mapped("product_uom_qty"), [120.0, 1.0])
        self.assertEqual(len(order.order_line), 2)

    def test_change_to_a_confirmed_order_raises_a_change_order(self):
        self.apply(acme_record())
        order = self.order_of()
        before = [
            (line.product_id.id, line.product_uom_qty) for line in order.order_line
        ]
        changed = self.later(acme_record(), "2026-04-10T09:00:00.000+0000")
        items = changed["OpportunityLineItems"]["records"]
        items[1]["Quantity"] = 80.0
        items.append(line_item("00k5e00000Lm9ZZAAZ", "SUPPORT-Y", 1.0, 5000.0))
        event = self.apply(changed)
        self.assertEqual(event.state, "failed")
        exception = event.exception_ids
        self.assertEqual(exception.category, "change_order")
        self.assertEqual(exception.record_ref, order)
        self.assertIn(
            "added: SUPPORT-Y x 1 at 5000.00 (00k5e00000Lm9ZZAAZ)", exception.details
        )
        self.assertIn(
            "changed: [CONS-HR] Consulting: quantity 100 -> 80", exception.details
        )
        self.assertEqual(
            [(line.product_id.id, line.product_uom_qty) for line in order.order_line],
            before,
        )
        self.assertTrue(exception.salesforce_can_apply_lines)

        exception.action_salesforce_apply_added_lines()
        self.assertEqual(exception.state, "resolved")
        support = order.order_line.filtered(
            lambda sol: sol.product_id == self.product_support
        )
        self.assertEqual(support.product_uom_qty, 1.0)
        consulting = order.order_line.filtered(
            lambda sol: sol.product_id == self.product_consulting
        )
        self.assertEqual(
            consulting.product_uom_qty, 100.0, "reductions are not applied"
        )
        self.assertIn(
            "Not applied: changed: [CONS-HR] Consulting: quantity 100 -> 80",
            html2plaintext(order.message_ids[0].body),
        )
        # The same delivery again is now known: no new exception.
        again = self.apply(changed, suffix=":again")
        self.assertEqual(again.result, "skipped: identical")

    def test_removed_line_on_confirmed_order_cannot_be_applied_as_added(self):
        self.apply(acme_record())
        changed = self.later(acme_record(), "2026-04-10T09:00:00.000+0000")
        del changed["OpportunityLineItems"]["records"][1]
        exception = self.apply(changed).exception_ids
        self.assertIn(
            "removed: [CONS-HR] Consulting x 100 (00k5e00000Lm1ABAAZ)",
            exception.details,
        )
        self.assertFalse(exception.salesforce_can_apply_lines)

    # ---------------------------------------------- notifications, contacts

    @responses.activate
    def test_replay_of_a_swept_record_reads_it_again_from_salesforce(self):
        """A QTC Manager edits the stored record (here: the product code that
        failed) and replays it: the replay applies the opportunity as
        Salesforce has it now, not the edit."""
        record = acme_record()
        record["OpportunityLineItems"]["records"][1]["PricebookEntry"]["Product2"][
            "ProductCode"
        ] = "SF-CONSULTING"
        event = self.apply(record)
        self.assertEqual(event.exception_ids.category, "mapping")
        edited = copy.deepcopy(record)
        edited["OpportunityLineItems"]["records"][1]["PricebookEntry"]["Product2"][
            "ProductCode"
        ] = "SUPPORT-Y"
        manager = self.env.ref("base.user_admin")
        event.with_user(manager)._qtc_edit_payload(json.dumps(edited))
        self.mock_token()
        queries = self.route_queries(
            [("FROM Opportunity ", query_page([acme_record()]))]
        )
        event.with_user(manager).action_replay()
        self.cancel_jobs("_salesforce_writeback_flush")
        self.run_jobs()
        self.assertEqual(len(queries), 1)
        self.assertIn(f"Id = '{ACME_OPPORTUNITY}'", queries[0])
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(event.payload_origin, "reread")
        self.assertEqual(json.loads(event.payload)["Id"], ACME_OPPORTUNITY)
        products = self.order_of().order_line.product_id
        self.assertIn(self.product_consulting, products, "Salesforce's version")
        self.assertNotIn(self.product_support, products, "not the edit")

    @responses.activate
    def test_notification_reads_the_full_opportunity_first(self):
        self.mock_token()
        queries = self.route_queries(
            [("FROM Opportunity ", query_page([acme_record()]))]
        )
        partial = {
            "attributes": {"type": "Opportunity"},
            "Id": ACME_OPPORTUNITY,
            "Name": "Acme & Co - ERP rollout",
        }
        self.backend._qtc_store_events(
            [
                InboundEvent(
                    "04l5e00000Gx7QzAAJ",
                    "Opportunity.notification",
                    json.dumps(partial),
                )
            ]
        )
        self.cancel_jobs("_salesforce_writeback_flush")
        self.run_jobs()
        self.cancel_jobs("_salesforce_writeback_flush")
        self.assertEqual(len(queries), 1)
        self.assertIn(
            f"WHERE IsWon = true AND Id = '{ACME_OPPORTUNITY}' ORDER BY", queries[0]
        )
        self.assertIn("(SELECT Id, PricebookEntry.Product2.ProductCode", queries[0])
        self.assertEqual(len(self.order_of().order_line), 2)

    @responses.activate
    def test_notification_of_an_opportunity_no_longer_won_is_ignored(self):
        self.mock_token()
        self.route_queries([("FROM Opportunity ", EMPTY_PAGE)])
        self.backend._qtc_store_events(
            [
                InboundEvent(
                    "04l5e00000Gx7QzAAJ",
                    "Opportunity.notification",
                    json.dumps({"Id": ACME_OPPORTUNITY}),
                )
            ]
        )
        self.run_jobs()
        event = self.env["qtc.event"].search(
            [("external_id", "=", "04l5e00000Gx7QzAAJ")]
        )
        self.assertEqual(event.state, "ignored")
        self.assertFalse(self.order_of())

    @responses.activate
    def test_contact_before_its_account_reads_the_account(self):
        self.mock_token()
        account = copy.deepcopy(acme_record()["Account"])
        account["LastModifiedDate"] = "2026-03-30T09:00:00.000+0000"
        self.route_queries([("FROM Account ", query_page([account]))])
        contact = {
            "attributes": {"type": "Contact"},
            "Id": "0035e00000Ct1AAAAZ",
            "AccountId": ACME_ACCOUNT,
            "FirstName": "Ada",
            "LastName": "Muster",
            "Email": "ada@acme.example.com",
            "Phone": None,
            "MobilePhone": "+49 170 0000000",
            "Title": "CFO",
            "SystemModstamp": "2026-03-30T10:00:00.000+0000",
        }
        event = self.apply(contact)
        self.assertEqual(event.state, "done", event.error_message)
        person = self.env["qtc.binding"]._qtc_to_internal(
            self.backend, "Contact", "0035e00000Ct1AAAAZ"
        )
        self.assertEqual(person.name, "Ada Muster")
        self.assertEqual(person.function, "CFO")
        self.assertEqual(person.parent_id.name, "Acme & Co GmbH")
        self.assertEqual(person.parent_id.vat, "DE123456789")
        # The same contact again: skipped, not duplicated.
        again = self.apply(contact, suffix=":again")
        self.assertEqual(again.result, "skipped: identical")

    def test_newer_account_update_is_applied(self):
        account = copy.deepcopy(acme_record()["Account"])
        self.apply(account)
        partner = self.env["qtc.binding"]._qtc_to_internal(
            self.backend, "Account", ACME_ACCOUNT
        )
        newer = copy.deepcopy(account)
        newer["SystemModstamp"] = "2026-04-01T00:00:00.000+0000"
        newer["Phone"] = "+49 30 7654321"
        newer["BillingCountryCode"] = "FR"
        newer["BillingStateCode"] = None
        self.assertEqual(self.apply(newer).state, "done")
        self.assertEqual(partner.phone, "+49 30 7654321")
        self.assertEqual(partner.country_id.code, "FR")
        self.assertTrue(self.traces(partner, "updated"))

    def test_payment_term_and_pricelist_come_from_value_maps(self):
        self.backend.salesforce_payment_term_field = "Payment_Terms__c"
        term = self.env.ref("account.account_payment_term_30days")
        special = self.env["product.pricelist"].create(
            {"name": "EUR partners", "currency_id": self.eur.id}
        )
        record = acme_record()
        record["Payment_Terms__c"] = "Net 30"
        record["Pricebook2Id"] = "01s5e000000PbPaAAK"
        event = self.apply(record)
        self.assertEqual(event.exception_ids.category, "mapping")
        self.assertIn(
            "Payment_Terms__c: 'Net 30' is not mapped in salesforce.payment_term",
            event.exception_ids.details,
        )
        ValueMap = self.env["qtc.value.map"]
        ValueMap.create(
            {
                "name": "Payment terms",
                "code": "salesforce.payment_term",
                "target_model": "account.payment.term",
                "line_ids": [(0, 0, {"external_value": "Net 30", "res_id": term.id})],
            }
        )
        ValueMap.create(
            {
                "name": "Price books",
                "code": "salesforce.pricelist",
                "target_model": "product.pricelist",
                "line_ids": [
                    (
                        0,
                        0,
                        {"external_value": "01s5e000000PbPaAAK", "res_id": special.id},
                    )
                ],
            }
        )
        event.exception_ids.action_retry()
        self.run_jobs()
        self.assertEqual(event.state, "done", event.error_message)
        order = self.order_of()
        self.assertEqual(order.payment_term_id, term)
        self.assertEqual(order.pricelist_id, special)
        self.assertEqual(order.currency_id, self.eur)
