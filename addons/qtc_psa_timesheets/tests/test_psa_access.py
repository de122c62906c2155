"""PSA work items and the unbilled-work report are company data: a QTC User
reads those of their own companies only."""

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import PsaCase


@tagged("post_install", "-at_install")
class TestPsaCompanyRules(PsaCase):
    def test_qtc_user_of_another_company_reads_no_item_nor_unbilled_work(self):
        self.push(self.time_item())
        item = self.item_record()
        report = self.env["qtc.psa.unbilled.report"].search([("item_id", "=", item.id)])
        self.assertTrue(item and report)
        other = self.env["res.company"].create({"name": "PSA other company"})
        users = {
            company: new_test_user(
                self.env,
                f"qtc_psa_finance_{company.id}",
                groups="qtc_connector_base.group_qtc_user",
                company_id=company.id,
                company_ids=company.ids,
            )
            for company in (item.company_id, other)
        }
        insider, outsider = users[item.company_id], users[other]
        for row in (item, report):
            with self.subTest(model=row._name):
                Model = self.env[row._name]
                self.assertEqual(
                    Model.with_user(insider).search([("id", "=", row.id)]), row
                )
                self.assertFalse(
                    Model.with_user(outsider).search([("id", "=", row.id)])
                )
                with self.assertRaises(AccessError):
                    row.with_user(outsider).read(["id"])
