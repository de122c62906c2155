"""What a person reads when a Salesforce button refuses: every problem and
what to do, in the warning dialog (pressed over HTTP as the web client does).

The connector's business error path reachable from a button: *Apply added
lines* (``action_salesforce_apply_added_lines``) of a change-order exception
whose added line can no longer be mapped. *Sync now* only queues a sweep;
*Test connection* shows the same text in its notification (the base's test
covers it); everything else runs in jobs, whose exceptions carry the details
and suggested action.
"""

import copy

from odoo.tests import new_test_user, tagged

from .common import SalesforceHttpCase, acme_record
from .test_opportunity import line_item


@tagged("post_install", "-at_install")
class TestSalesforcePersonErrors(SalesforceHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(
            cls.env,
            "qtc_sf_pe_finance",
            groups="base.group_user,qtc_connector_base.group_qtc_user,"
            "sales_team.group_sale_salesman",
        )

    def apply(self, record):
        event = self.store_sync_event(record)
        self.run_jobs()
        self.env["qtc.job"].search(
            [
                ("method_name", "=", "_salesforce_writeback_flush"),
                ("state", "=", "pending"),
            ]
        ).action_cancel()
        return event

    def test_apply_added_lines_that_no_longer_map_says_what_to_fix(self):
        self.apply(acme_record())
        changed = copy.deepcopy(acme_record())
        changed["SystemModstamp"] = "2026-04-10T09:00:00.000+0000"
        changed["OpportunityLineItems"]["records"].append(
            line_item("00k5e00000Lm9ZZAAZ", "SUPPORT-Y", 1.0, 5000.0)
        )
        event = self.apply(changed)
        exception = event.exception_ids
        self.assertEqual(exception.category, "change_order")
        self.assertIn("added: SUPPORT-Y", exception.details)
        self.assertTrue(exception.suggested_action)
        # The product was archived since: the added line no longer maps.
        self.product_support.active = False
        error, _result = self.press_button(
            exception,
            "action_salesforce_apply_added_lines",
            login="qtc_sf_pe_finance",
        )
        self.assert_person_error(
            error,
            ["'SUPPORT-Y' is not mapped to a product"],
            "Complete the value maps (salesforce.product",
        )
        self.assertEqual(exception.state, "open")
