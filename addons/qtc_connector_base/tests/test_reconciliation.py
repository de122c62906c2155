"""Reconciliation runs: both sides summed and matched, one exception per
difference listing both sides, the same difference found again updates it,
a fixed one resolves by itself. The placeholder kind is given its sides here,
as a connector would read them."""

from datetime import date, timedelta
from decimal import Decimal

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..lib.errors import BusinessError
from ..lib.reconcile import Entry
from .common import QtcCase

SIDES = {"external": [], "odoo": [], "error": None}
NIGHTLY = {"days": 3}


def _kinds_for(self, backend):
    return [("none", NIGHTLY["days"])] if backend.provider == "none" else []


def _sides(self):
    if SIDES["error"]:
        raise SIDES["error"]
    return list(SIDES["external"]), list(SIDES["odoo"]), {"external_name": "Ledger"}


def theirs(key, amount, day=date(2026, 3, 2)):
    return Entry(
        key=key,
        label=f"entry {key}",
        amount=Decimal(amount),
        currency="USD",
        day=day,
        external_ref=("ledger_entry", key),
    )


def ours(key, amount, record, day=date(2026, 3, 2)):
    return Entry(
        key=key,
        label=record.display_name,
        amount=Decimal(amount),
        currency="USD",
        day=day,
        record=(record._name, record.id),
    )


@tagged("post_install", "-at_install")
class TestReconciliation(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance = new_test_user(
            cls.env, "reco_finance", groups="qtc_connector_base.group_qtc_user"
        )
        cls.partner = cls.env["res.partner"].create({"name": "Matched record"})
        cls.extra = cls.env["res.partner"].create({"name": "Odoo-only record"})

    def setUp(self):
        super().setUp()
        runs = self.env["qtc.reconciliation.run"]
        for name, func in (
            ("_qtc_kinds_for", _kinds_for),
            ("_qtc_reconcile_sides", _sides),
        ):
            patcher = self.patch_model_method(runs, name, func)
            patcher.start()
            self.addCleanup(patcher.stop)
        SIDES.update(external=[], odoo=[], error=None)
        NIGHTLY["days"] = 3

    def run_window(self, date_from=date(2026, 3, 1), date_to=date(2026, 3, 7)):
        run = self.env["qtc.reconciliation.run"]._qtc_request(
            self.backend, "none", date_from, date_to
        )
        self.run_jobs()
        return run

    def open_reconciliation_exceptions(self):
        return self.env["qtc.exception"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("category", "=", "reconciliation"),
                ("state", "=", "open"),
            ]
        )

    def test_differences_both_ways_each_open_one_exception_listing_both_sides(self):
        SIDES["external"] = [theirs("A", "100"), theirs("B", "40"), theirs("C", "5")]
        SIDES["odoo"] = [
            ours("A", "100", self.partner),
            ours("C", "7", self.partner),
            ours("Z", "9", self.extra),
        ]
        run = self.run_window()
        self.assertEqual(run.state, "done")
        self.assertEqual(
            (run.external_count, run.odoo_count, run.matched_count), (3, 3, 1)
        )
        self.assertEqual(run.difference_count, 3)
        self.assertEqual(run.external_totals, "3 records, 145.00 USD")
        self.assertEqual(run.odoo_totals, "3 records, 116.00 USD")
        lines = {line.key: line for line in run.line_ids}
        self.assertEqual(lines["B"].difference, "missing_in_odoo")
        self.assertEqual(lines["C"].difference, "amount")
        self.assertEqual(lines["Z"].difference, "missing_externally")
        self.assertEqual(lines["Z"].record_ref, self.extra)
        exceptions = self.open_reconciliation_exceptions()
        self.assertEqual(len(exceptions), 3)
        self.assertEqual(run.line_ids.exception_id, exceptions)
        amount = lines["C"].exception_id
        self.assertIn("Ledger: entry C, 5.00 USD", amount.details)
        self.assertIn("Odoo: Matched record, 7.00 USD", amount.details)
        missing = lines["B"].exception_id
        self.assertIn("Odoo: nothing", missing.details)
        self.assertEqual(
            (missing.external_type, missing.external_id), ("ledger_entry", "B")
        )

    def test_the_same_difference_again_updates_its_exception(self):
        SIDES["external"] = [theirs("B", "40")]
        first = self.run_window()
        again = self.run_window()
        exception = self.open_reconciliation_exceptions()
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.occurrences, 2)
        self.assertEqual(first.line_ids.exception_id, again.line_ids.exception_id)

    def test_a_fixed_difference_resolves_but_one_outside_the_window_stays(self):
        SIDES["external"] = [theirs("B", "40"), theirs("OLD", "1", date(2026, 2, 1))]
        self.run_window(date(2026, 2, 1), date(2026, 3, 7))
        fixed, old = (
            self.open_reconciliation_exceptions().filtered(lambda e, k=key: k in e.name)
            for key in (": B:", ": OLD:")
        )
        SIDES["external"] = [theirs("B", "40")]
        SIDES["odoo"] = [ours("B", "40", self.partner)]
        run = self.run_window()
        self.assertEqual(run.difference_count, 0)
        self.assertEqual(fixed.state, "resolved")
        self.assertIn("No longer differs", fixed.resolution)
        self.assertEqual(old.state, "open", "2026-02-01 was not reconciled again")

    def test_a_configuration_problem_fails_the_run_with_its_reason(self):
        SIDES["error"] = BusinessError("No credentials.", category="configuration")
        run = self.run_window()
        self.assertEqual(run.state, "failed")
        self.assertEqual(run.error_message, "No credentials.")
        self.assertEqual(run.job_id.state, "done")
        exception = self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id), ("name", "=", "No credentials.")]
        )
        self.assertEqual(exception.category, "configuration")

    def test_only_offered_kinds_are_requested(self):
        with self.assertRaises(UserError):
            self.env["qtc.reconciliation.run"]._qtc_request(
                self.backend, "none", date(2026, 3, 7), date(2026, 3, 1)
            )
        NIGHTLY["days"] = 0
        self.env["qtc.reconciliation.run"]._qtc_cron_nightly()
        self.assertFalse(self.env["qtc.reconciliation.run"].search([]))

    def test_asking_twice_before_it_runs_queues_one_run(self):
        runs = self.env["qtc.reconciliation.run"]
        window = (date(2026, 3, 1), date(2026, 3, 7))
        first = runs._qtc_request(self.backend, "none", *window)
        second = runs._qtc_request(self.backend, "none", *window)
        self.assertEqual(second, first)
        self.assertEqual(len(runs.search([("backend_id", "=", self.backend.id)])), 1)
        self.run_jobs()
        self.assertEqual(first.state, "done")

    def test_nightly_cron_queues_each_kind_over_its_days_ending_yesterday(self):
        self.env["qtc.reconciliation.run"]._qtc_cron_nightly()
        run = self.env["qtc.reconciliation.run"].search(
            [("backend_id", "=", self.backend.id)]
        )
        self.assertEqual(len(run), 1)
        self.assertEqual(run.date_to - run.date_from, timedelta(days=2))
        self.assertEqual(run.job_id.method_name, "_qtc_reconcile_execute")
        self.assertEqual(run.state, "pending")

    def test_wizard_runs_for_qtc_users_only(self):
        clerk = new_test_user(self.env, "reco_clerk", groups="base.group_user")
        values = {
            "backend_id": self.backend.id,
            "kind": "none",
            "date_from": date(2026, 3, 1),
            "date_to": date(2026, 3, 7),
        }
        with self.assertRaises(AccessError):
            self.env["qtc.reconciliation.wizard"].with_user(clerk).create(
                values
            ).action_run()
        SIDES["external"] = [theirs("B", "40")]
        action = (
            self.env["qtc.reconciliation.wizard"]
            .with_user(self.finance)
            .create(values)
            .action_run()
        )
        run = self.env["qtc.reconciliation.run"].browse(action["res_id"])
        self.assertEqual(run.requested_by_id, self.finance)
        self.assertEqual(run.job_id.user_id, self.finance)
        self.run_jobs()
        self.assertEqual(run.state, "done")
        self.assertEqual(run.difference_count, 1)
        with self.assertRaises(AccessError):
            run.with_user(self.finance).write({"difference_count": 0})
        with self.assertRaises(AccessError):
            run.with_user(clerk).action_run_again()
