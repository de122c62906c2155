"""The finance dashboard's cards and the Prometheus gauges, with real
checks: business words, amounts with their currency, access for QTC users
only, gauges over HTTP behind the health token."""

from odoo.addons.qtc_connector_base.tests.common import QtcHttpCase
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import AssuranceCase

TOKEN = "assurance-metrics-token-0123456789"


@tagged("post_install", "-at_install")
class TestAssuranceDashboard(AssuranceCase):
    def test_cards_speak_business_words_with_amounts_in_currency(self):
        invoice = self.init_invoice("out_invoice", amounts=[1234.5], taxes=[])
        check = self.measure(
            self.check("invoice_draft_stuck", name="Invoices stuck in draft")
        )
        self.assertEqual(self.counted(check), invoice)
        data = self.env["qtc.assurance.dashboard"].with_user(self.owner)
        data = data.qtc_dashboard_data()
        card = next(c for c in data["checks"] if c["id"] == check.id)
        self.assertEqual(card["name"], "Invoices stuck in draft")
        self.assertEqual(card["count"], 1)
        self.assertEqual(card["state_label"], "Over threshold")
        currency = self.env.company.currency_id
        self.assertIn("1,234.50", card["amount_text"])
        self.assertIn(currency.symbol, card["amount_text"])
        self.assertEqual(
            card["threshold_text"], "Alert when number of items is above 0"
        )
        self.assertEqual(len(card["trend"]), 8)
        self.assertNotIn("_", card["description"], "no field names in the words")

    def test_measure_now_from_the_dashboard_and_click_through(self):
        invoice = self.init_invoice("out_invoice", amounts=[10.0], taxes=[])
        check = self.check("invoice_draft_stuck")
        dashboard = self.env["qtc.assurance.dashboard"].with_user(self.owner)
        dashboard.qtc_dashboard_measure()
        self.assertEqual(check.last_count, 1)
        action = check.with_user(self.owner).action_open_records()
        self.assertEqual(
            self.env[action["res_model"]].search(action["domain"]), invoice
        )

    def test_the_dashboard_refuses_users_outside_qtc(self):
        clerk = new_test_user(self.env, "dashboard_clerk", groups="base.group_user")
        dashboard = self.env["qtc.assurance.dashboard"].with_user(clerk)
        with self.assertRaises(AccessError):
            dashboard.qtc_dashboard_data()
        with self.assertRaises(AccessError):
            dashboard.qtc_dashboard_measure()


@tagged("post_install", "-at_install")
class TestAssuranceMetrics(QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param(
            "qtc_connector_base.health_token", TOKEN
        )
        company = cls.env.company
        cls.check = cls.env["qtc.assurance.check"].search(
            [("code", "=", "invoice_draft_stuck"), ("company_id", "=", company.id)]
        )
        cls.check.write({"grace_hours": 0, "threshold": 0})
        cls.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": cls.env["res.partner"].create({"name": "M"}).id,
                "invoice_line_ids": [(0, 0, {"name": "Metered", "price_unit": 42.0})],
            }
        )
        cls.check._qtc_assurance_compute()
        cls.sla = cls.env["qtc.flow.sla"].search(
            [("flow", "=", "invoice_to_paid"), ("company_id", "=", company.id)]
        )
        cls.sla._qtc_sla_compute()

    def metrics(self, token=TOKEN):
        return self.url_open(
            "/qtc/metrics", headers={"Authorization": f"Bearer {token}"}
        )

    def test_gauges_of_checks_and_service_levels(self):
        response = self.metrics()
        self.assertEqual(response.status_code, 200)
        text = response.text
        company = self.env.company.id
        labels = f'check="invoice_draft_stuck",company="{company}"'
        self.assertIn("# TYPE qtc_assurance_items gauge", text)
        self.assertIn(f"qtc_assurance_items{{{labels}}} {self.check.last_count}", text)
        self.assertGreaterEqual(self.check.last_count, 1)
        self.assertIn(f"qtc_assurance_breached{{{labels}}} 1", text)
        currency = self.env.company.currency_id.name
        self.assertIn(
            f'qtc_assurance_amount{{check="invoice_draft_stuck",company="{company}",'
            f'currency="{currency}"}}',
            text,
        )
        self.assertIn(
            f'qtc_flow_target_seconds{{flow="invoice_to_paid",company="{company}"}} '
            f"{round(self.sla.target_hours * 3600)}",
            text,
        )
        self.assertIn(
            f'qtc_flow_lead_time_p90_seconds{{flow="invoice_to_paid",'
            f'company="{company}",backend="all"}}',
            text,
        )
        self.assertIn("# TYPE qtc_reconciliation_differences gauge", text)

    def test_gauges_need_the_token(self):
        for token in ("", "wrong"):
            response = self.metrics(token)
            self.assertEqual(response.status_code, 401)
            self.assertNotIn("qtc_assurance_items", response.text)


@tagged("post_install", "-at_install")
class TestAssuranceDashboardTour(QtcHttpCase):
    def test_dashboard_in_a_browser(self):
        company = self.env.company
        check = self.env["qtc.assurance.check"].search(
            [("code", "=", "invoice_draft_stuck"), ("company_id", "=", company.id)]
        )
        check.write({"grace_hours": 0, "threshold": 0})
        self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.env["res.partner"].create({"name": "Tour"}).id,
                "invoice_line_ids": [(0, 0, {"name": "Toured", "price_unit": 9.0})],
            }
        )
        self.env["qtc.assurance.check"].search([])._qtc_assurance_compute()
        self.assertEqual(check.state, "breach")
        self.start_tour(
            "/odoo/action-qtc_connector_base.qtc_assurance_dashboard_action",
            "qtc_assurance_dashboard_tour",
            login="admin",
        )
