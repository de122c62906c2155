import responses

from odoo.addons.qtc_connector_base.tests.common import QtcTraceAssertions
from odoo.tests import tagged

from .common import QtcTaxCase


@tagged("post_install", "-at_install")
class TestTaxTrace(QtcTraceAssertions, QtcTaxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance, cls.accountant = cls.make_trace_users(
            "tax_trace",
            "account.group_account_invoice",
            company=cls.company_data["company"],
        )

    def test_invoice_has_one_trace_entry_and_button(self):
        self.assert_trace_ui_once("account.move")

    @responses.activate
    def test_invoice_trace_shows_the_quote_then_the_commit_job(self):
        self.fake.register()
        invoice = self.make_invoice()
        invoice.action_post()
        self.run_jobs()
        self.assertEqual(invoice.tax_state, "committed")
        commit_job = self.jobs(invoice, "commit")
        self.assertEqual(commit_job.state, "done")

        steps = self.assert_trace_access(invoice, self.finance, self.accountant)
        # The quote ran inline at posting (no job); the commit in its job,
        # which has no event: the job row is found through its change.
        self.assertEqual([s.kind for s in steps], ["change", "job", "change"])
        self.assertFalse(steps[0].job_id)
        self.assertIn("quoted", steps[0].note)
        self.assertEqual(steps[1].job_id, commit_job)
        self.assertEqual(steps[1].state, "done")
        self.assertEqual(steps[2].job_id, commit_job)
        self.assertEqual(
            {(s.res_model, s.res_id) for s in steps if s.kind == "change"},
            {("account.move", invoice.id)},
        )
