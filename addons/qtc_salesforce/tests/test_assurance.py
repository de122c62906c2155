"""Revenue assurance of the CRM hand-off: leaks built on purpose (a won deal
with no confirmed order, a customer bound to two CRM accounts, status never
written back), the won-to-order service level, and won deals reconciled with
confirmed orders against a Salesforce answering its documented query shape."""

import copy
import json
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import responses

from odoo import fields
from odoo.tests import new_test_user, tagged

from .common import (
    ACME_OPPORTUNITY,
    API,
    LIMIT_INFO,
    SalesforceCase,
    acme_record,
    query_page,
)

NEW_DEAL = "0065e00000NeWdLAAQ"
LOST_DEAL = "0065e00000LoStDAAQ"
KIND = "salesforce_won_orders"


def deal(opportunity_id, amount, currency="EUR", won=True, close="2026-03-20"):
    return {
        "attributes": {"type": "Opportunity"},
        "Id": opportunity_id,
        "Name": f"Deal {opportunity_id[-6:]}",
        "Amount": amount,
        "CurrencyIsoCode": currency,
        "CloseDate": close,
        "IsWon": won,
        "StageName": "Closed Won" if won else "Closed Lost",
    }


@tagged("post_install", "-at_install")
class TestSalesforceAssurance(SalesforceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env, "crm_assurance_owner", groups="qtc_connector_base.group_qtc_user"
        )

    def setUp(self):
        super().setUp()
        self.backend.salesforce_writeback_enabled = False

    def apply(self, record):
        event = self.store_sync_event(record)
        self.run_jobs()
        return event

    def check(self, code):
        check = self.env["qtc.assurance.check"].search(
            [("code", "=", code), ("company_id", "=", self.env.company.id)]
        )
        check.write({"grace_hours": 0, "threshold": 0, "owner_user_id": self.owner.id})
        return check

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

    def test_won_deal_left_as_a_draft_order_is_found_until_confirmed(self):
        self.backend.salesforce_confirm_orders = False
        event = self.apply(acme_record())
        order = self.order_of()
        self.assertEqual(order.state, "draft")
        lost = copy.deepcopy(acme_record())
        lost.update(Id="0065e00000LoSt1AAA", IsWon=False, SystemModstamp="lost")
        self.cancel_jobs("_qtc_process")
        self.store_sync_event(lost)  # marked lost: never a leak
        check = self.check("salesforce_won_no_order")
        self.assertEqual(self.measure(check), event)
        company = self.env.company
        expected = self.eur._convert(
            48000.0, company.currency_id, company, event.received_at.date()
        )
        self.assertAlmostEqual(check.last_amount, expected, places=2)
        exception = self.breach(check)
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.activity_ids.user_id, self.owner)
        order.action_confirm()
        self.assertFalse(self.measure(check, hours_later=2))
        self.assertEqual(exception.state, "resolved")

    def test_customer_bound_to_two_crm_accounts_is_a_mismatch(self):
        bindings = self.env["qtc.binding"]
        twice = self.env["res.partner"].create({"name": "Acme (twice in the CRM)"})
        once = self.env["res.partner"].create({"name": "Globex"})
        bindings._qtc_bind(self.backend, "Account", "0015e00000DuP01AAA", twice)
        bindings._qtc_bind(self.backend, "Account", "0015e00000DuP02AAA", twice)
        bindings._qtc_bind(self.backend, "Account", "0015e00000OnCe1AAA", once)
        check = self.check("salesforce_customer_duplicates")
        self.assertEqual(self.measure(check), twice)
        self.assertEqual(check.state, "breach")
        bindings._qtc_unbind(self.backend, "Account", "0015e00000DuP02AAA")
        self.assertFalse(self.measure(check, hours_later=2))
        self.assertEqual(self.breach(check).state, "resolved")

    def test_status_waiting_for_the_crm(self):
        self.apply(acme_record())
        binding = self.binding("Opportunity", ACME_OPPORTUNITY)
        binding.salesforce_writeback_pending = True
        check = self.check("salesforce_status_unsent")
        self.assertEqual(self.measure(check), self.order_of())
        binding.salesforce_writeback_pending = False
        self.assertFalse(self.measure(check, hours_later=2))

    def test_won_to_order_service_level(self):
        event = self.apply(acme_record())
        sla = self.env["qtc.flow.sla"].search(
            [
                ("flow", "=", "salesforce_won_to_order"),
                ("company_id", "=", self.env.company.id),
            ]
        )
        sla._qtc_sla_compute()
        self.assertEqual(sla.last_count, 1)
        row = sla.snapshot_ids.filtered(lambda r: r.backend_id == self.backend)
        self.assertEqual(row.count, 1)
        order = self.order_of()
        hours = (order.date_order - event.received_at).total_seconds() / 3600
        self.assertAlmostEqual(sla.last_p50_hours, max(hours, 0.0), places=2)

    # ------------------------------------------------------- reconciliation

    def confirmed_order_of_lost_deal(self):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.env["res.partner"].create({"name": "Initech"}).id,
                "order_line": [
                    (0, 0, {"product_id": self.product_support.id, "price_unit": 900})
                ],
            }
        )
        order.action_confirm()
        order.date_order = datetime(2026, 3, 15, 10, 0)
        self.env["qtc.binding"]._qtc_bind(self.backend, "Opportunity", LOST_DEAL, order)
        return order

    def reconcile(self):
        run = self.env["qtc.reconciliation.run"]._qtc_request(
            self.backend, KIND, date(2026, 3, 1), date(2026, 3, 31)
        )
        self.run_jobs()
        return run

    @responses.activate
    def test_won_deals_and_confirmed_orders_differ_both_ways(self):
        self.apply(acme_record())  # 48,000 EUR confirmed order
        lost_order = self.confirmed_order_of_lost_deal()
        self.mock_token()
        window = [
            deal(ACME_OPPORTUNITY, 50000.0, close="2026-03-31"),
            deal(NEW_DEAL, 1200.0, currency="USD"),
        ]
        received = self.route_queries(
            [
                ("CloseDate >=", query_page(window)),
                ("Id IN", query_page([deal(LOST_DEAL, 900.0, won=False)])),
            ]
        )
        run = self.reconcile()
        self.assertEqual(run.state, "done", run.error_message)
        self.assertIn(
            "WHERE IsWon = true AND CloseDate >= 2026-03-01 AND CloseDate <= "
            "2026-03-31",
            received[0],
        )
        self.assertIn(f"Id IN ('{LOST_DEAL}')", received[1])
        self.assertEqual((run.external_count, run.odoo_count), (2, 2))
        self.assertEqual(run.external_totals, "2 records, 50,000.00 EUR + 1,200.00 USD")
        self.assertEqual(run.odoo_totals, "2 records, 48,000.00 EUR + 900.00 USD")
        kinds = {line.key: line.difference for line in run.line_ids}
        self.assertEqual(
            kinds,
            {
                ACME_OPPORTUNITY: "amount",
                NEW_DEAL: "missing_in_odoo",
                LOST_DEAL: "missing_externally",
            },
        )
        lines = {line.key: line for line in run.line_ids}
        self.assertEqual(lines[LOST_DEAL].record_ref, lost_order)
        amount = lines[ACME_OPPORTUNITY].exception_id
        self.assertIn("Salesforce: won deal", amount.details)
        self.assertIn("50,000.00 EUR", amount.details)
        self.assertIn("48,000.00 EUR", amount.details)
        missing = lines[NEW_DEAL].exception_id
        self.assertEqual(
            (missing.external_type, missing.external_id), ("Opportunity", NEW_DEAL)
        )

    @responses.activate
    def test_a_deal_won_in_another_window_is_not_a_difference_and_fixes_resolve(self):
        self.apply(acme_record())
        self.confirmed_order_of_lost_deal()
        self.mock_token()
        answers = {
            "window": [deal(ACME_OPPORTUNITY, 50000.0, close="2026-03-31")],
            "ids": [deal(LOST_DEAL, 900.0, close="2026-02-27")],
        }

        def answer(request):
            query = parse_qs(urlsplit(request.url).query)["q"][0]
            rows = answers["ids"] if "Id IN" in query else answers["window"]
            headers = {"Sforce-Limit-Info": LIMIT_INFO}
            return (200, headers, json.dumps(query_page(rows)))

        responses.add_callback(responses.GET, f"{API}/query", callback=answer)
        first = self.reconcile()
        self.assertEqual(
            {line.key: line.difference for line in first.line_ids},
            {ACME_OPPORTUNITY: "amount"},
            "won on 27 February: the February run compares it",
        )
        exception = first.line_ids.exception_id
        answers["window"] = [deal(ACME_OPPORTUNITY, 48000.0, close="2026-03-31")]
        second = self.reconcile()
        self.assertEqual(second.difference_count, 0)
        self.assertEqual(exception.state, "resolved")
