"""Tax rates and true-ups are company data; a true-up records what the engine
answered, which finance users settle but do not rewrite."""

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import QtcTaxCase


@tagged("post_install", "-at_install")
class TestTaxAccess(QtcTaxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.setup_other_company(name="Tax other company")["company"]
        cls.finance = new_test_user(
            cls.env,
            "qtc_tax_finance",
            groups="qtc_connector_base.group_qtc_user,account.group_account_invoice",
            company_id=cls.env.company.id,
            company_ids=cls.env.company.ids,
        )

    def rate(self, backend):
        return self.env["qtc.tax.rate"].create(
            {
                "backend_id": backend.id,
                "country_id": self.env.ref("base.us").id,
                "name": "STATE",
                "rate": 5.0,
            }
        )

    def trueup(self, company):
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "company_id": company.id,
                "partner_id": self.customer.id,
                "invoice_line_ids": [
                    (0, 0, {"name": "Work", "quantity": 1, "price_unit": 100})
                ],
            }
        )
        return self.env["qtc.tax.trueup"].create(
            {"move_id": invoice.id, "odoo_tax": 5.0, "engine_tax": 7.5}
        )

    def test_qtc_user_reads_own_company_rates_and_trueups_only(self):
        backend_other = self._qtc_make_backend(
            name="Rates of the other company",
            provider="tax_rate_table",
            company_id=self.other.id,
        )
        pairs = [
            (self.rate(self.backend), self.rate(backend_other)),
            (self.trueup(self.env.company), self.trueup(self.other)),
        ]
        for mine, other in pairs:
            with self.subTest(model=mine._name):
                found = (
                    self.env[mine._name]
                    .with_user(self.finance)
                    .search([("id", "in", (mine | other).ids)])
                )
                self.assertEqual(found, mine)
                with self.assertRaises(AccessError):
                    other.with_user(self.finance).read(["id"])

    def test_finance_settles_a_trueup_but_does_not_rewrite_it(self):
        trueup = self.trueup(self.env.company).with_user(self.finance)
        for values in (
            {"engine_tax": 5.0},
            {"move_id": self.trueup(self.env.company).move_id.id},
        ):
            with self.subTest(values=values), self.assertRaises(AccessError):
                trueup.write(values)
        trueup.write({"note": "Customer informed"})
        trueup.action_settle()
        self.assertEqual((trueup.state, trueup.engine_tax), ("done", 7.5))

    def test_trueup_moved_to_another_company_is_refused_after_the_write(self):
        manager = new_test_user(
            self.env,
            "qtc_tax_manager_own",
            groups="qtc_connector_base.group_qtc_manager,account.group_account_invoice",
            company_id=self.env.company.id,
            company_ids=self.env.company.ids,
        )
        trueup = self.trueup(self.env.company).with_user(manager)
        other_invoice = self.trueup(self.other).move_id
        with self.assertRaises(AccessError):
            trueup.write({"move_id": other_invoice.id})
