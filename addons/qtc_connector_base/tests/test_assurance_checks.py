"""Revenue assurance checks: measured into snapshots, breached into ONE
exception and ONE activity per period, resolved by themselves once fixed.

The base has no real check: these tests give the placeholder code a query
(partners whose reference starts with ``LEAK-``), as a connector would."""

from datetime import UTC, datetime, timedelta

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from .common import QtcCase


def _leak_query(self, cutoff):
    return (
        "res.partner",
        SQL(
            """
            SELECT p.id AS res_id, 10.0 AS amount, p.create_date AS since
              FROM res_partner p
             WHERE p.ref LIKE %s AND p.create_date <= %s
            """,
            "LEAK-%",
            cutoff,
        ),
    )


@tagged("post_install", "-at_install")
class TestAssuranceChecks(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env, "assurance_owner", groups="qtc_connector_base.group_qtc_user"
        )
        cls.check = cls.env["qtc.assurance.check"].create(
            {
                "name": "Test leak",
                "code": "none",
                "threshold": 0,
                "owner_user_id": cls.owner.id,
                "company_id": cls.env.company.id,
            }
        )

    def setUp(self):
        super().setUp()
        patcher = self.patch_model_method(
            self.env["qtc.assurance.check"], "_qtc_check_query", _leak_query
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def leak(self, count=1):
        return self.env["res.partner"].create(
            [{"name": f"Leak {n}", "ref": f"LEAK-{n}"} for n in range(count)]
        )

    def measure(self, later=None, checks=None):
        """Measure now, or ``later`` (a timedelta) from now; to the
        microsecond, as the cron does, so records just made are counted."""
        now = datetime.now(UTC).replace(tzinfo=None) + (later or timedelta(0))
        (checks or self.check)._qtc_assurance_compute(now=now)

    def breach_exceptions(self):
        return self.env["qtc.exception"].search(
            [("res_model", "=", "qtc.assurance.check"), ("res_id", "=", self.check.id)]
        )

    # ------------------------------------------------------------ measuring

    def test_measure_counts_exactly_the_leaking_records(self):
        leaks = self.leak(2)
        self.env["res.partner"].create({"name": "Fine", "ref": "OK-1"})
        self.measure(timedelta(hours=3))
        check = self.check
        self.assertEqual(check.last_count, 2)
        self.assertEqual(check.last_amount, 20.0)
        self.assertAlmostEqual(check.last_oldest_hours, 3.0, places=1)
        self.assertEqual(check.state, "breach")
        self.assertEqual(check.snapshot_id.res_ids, sorted(leaks.ids))
        action = check.action_open_records()
        self.assertEqual(action["res_model"], "res.partner")
        self.assertEqual(
            self.env["res.partner"].search(action["domain"]), leaks.sorted("id")
        )

    def test_grace_period_leaves_young_records_out(self):
        self.leak()
        self.check.grace_hours = 6
        self.measure(timedelta(hours=5))
        self.assertEqual(self.check.last_count, 0)
        self.assertEqual(self.check.state, "ok")
        self.measure(timedelta(hours=7))
        self.assertEqual(self.check.last_count, 1)

    def test_threshold_on_amount_and_on_age(self):
        self.leak(3)
        self.check.write({"threshold_measure": "amount", "threshold": 30.0})
        self.measure()
        self.assertEqual(self.check.state, "ok", "30.0 is not above 30.0")
        self.check.threshold = 29.99
        self.measure()
        self.assertEqual(self.check.state, "breach")
        self.check.write({"threshold_measure": "age", "threshold": 48})
        self.measure(timedelta(hours=47))
        self.assertEqual(self.check.state, "ok")
        self.measure(timedelta(hours=49))
        self.assertEqual(self.check.state, "breach")

    def test_one_snapshot_a_day_and_a_weekly_trend(self):
        self.leak()
        self.measure()
        self.measure()
        self.assertEqual(len(self.check.snapshot_ids), 1)
        self.leak(3)
        self.measure(timedelta(days=8))
        snapshots = self.check.snapshot_ids.sorted("date")
        self.assertEqual(snapshots.mapped("count"), [1, 4])
        self.assertEqual(snapshots.mapped("week_last"), [True, True])
        self.assertEqual(len(self.check.trend_data), 8)
        self.assertEqual(self.check.trend_data[-1], 4)
        self.assertIn(1, self.check.trend_data[:-1])
        self.assertEqual(len(self.check.trend_text), 8)

    def test_the_latest_snapshot_of_a_week_stands_for_the_week(self):
        self.leak()
        monday = datetime(2026, 3, 2, 9, 0)
        for day in range(3):
            self.check._qtc_assurance_compute(now=monday + timedelta(days=day))
        weekly = self.check.snapshot_ids.filtered("week_last")
        self.assertEqual(weekly.date, (monday + timedelta(days=2)).date())
        self.assertEqual(len(self.check.snapshot_ids), 3)

    def test_old_snapshots_forget_their_ids_and_keep_their_figures(self):
        self.leak()
        self.measure()
        old = self.check.snapshot_id
        self.assertTrue(old.res_ids)
        self.measure(timedelta(days=40))
        self.assertNotEqual(self.check.snapshot_id, old)
        self.assertFalse(old.res_ids)
        self.assertEqual(old.count, 1)

    # -------------------------------------------------------------- breach

    def test_breach_opens_one_exception_and_one_activity_per_period(self):
        self.leak(2)
        self.measure()
        self.measure(timedelta(minutes=30))
        exception = self.breach_exceptions()
        self.assertEqual(len(exception), 1, "one exception, not one per record")
        self.assertEqual(exception.category, "assurance")
        self.assertEqual(exception.state, "open")
        self.assertEqual(exception.occurrences, 2)
        self.assertEqual(exception.record_ref, self.check)
        self.assertEqual(exception.user_id, self.owner)
        self.assertIn("Items: 2", exception.details)
        self.assertEqual(len(exception.activity_ids), 1)
        self.assertEqual(exception.activity_ids.user_id, self.owner)
        self.assertEqual(self.check.exception_id, exception)

    def test_back_under_threshold_resolves_exception_and_activity(self):
        leaks = self.leak(2)
        self.measure()
        exception = self.breach_exceptions()
        leaks.write({"ref": "FIXED"})
        self.measure(timedelta(hours=1))
        self.assertEqual(exception.state, "resolved")
        self.assertIn("Back within the threshold", exception.resolution)
        self.assertFalse(exception.activity_ids, "the activity is marked done")
        self.assertEqual(self.check.state, "ok")
        self.assertEqual(self.check.exception_id, exception, "kept: the last breach")

    def test_a_new_breach_in_the_same_period_reopens_its_exception(self):
        leaks = self.leak()
        self.measure()
        exception = self.breach_exceptions()
        leaks.write({"ref": "FIXED"})
        self.measure(timedelta(minutes=10))
        self.assertEqual(exception.state, "resolved")
        self.leak()
        self.measure(timedelta(minutes=20))
        self.assertEqual(self.breach_exceptions(), exception, "one per period")
        self.assertEqual(exception.state, "open")
        self.assertFalse(exception.resolution)
        self.assertEqual(len(exception.activity_ids), 1, "a new activity")
        self.assertEqual(exception.occurrences, 2)

    def test_an_exception_ignored_by_a_person_stays_ignored_for_the_period(self):
        self.leak()
        self.check.period = "day"
        self.measure()
        exception = self.breach_exceptions()
        self.env["qtc.exception.ignore"].create(
            {"exception_ids": exception.ids, "reason": "Known, fixed on Monday"}
        ).action_ignore()
        self.measure(timedelta(minutes=30))
        self.assertEqual(exception.state, "ignored")
        self.assertFalse(exception.activity_ids)
        self.measure(timedelta(days=1))
        self.assertEqual(len(self.breach_exceptions()), 2, "a new period, a new one")

    def test_a_breach_lasting_into_a_new_period_opens_that_periods_exception(self):
        self.leak()
        self.check.period = "day"
        self.measure()
        first = self.breach_exceptions()
        self.measure(timedelta(days=1))
        exceptions = self.breach_exceptions()
        self.assertEqual(len(exceptions), 2)
        second = exceptions - first
        self.assertEqual(first.state, "resolved")
        self.assertIn("carried over", first.resolution)
        self.assertEqual(second.state, "open")
        self.assertEqual(len(second.activity_ids), 1)

    def test_a_group_owner_gives_the_activity_to_its_first_member(self):
        group = self.env["res.groups"].create({"name": "Finance controllers"})
        first = new_test_user(self.env, "controller_a", groups="base.group_user")
        second = new_test_user(self.env, "controller_b", groups="base.group_user")
        group.users = first | second
        self.check.write({"owner_user_id": False, "owner_group_id": group.id})
        self.leak()
        self.measure()
        exception = self.breach_exceptions()
        self.assertEqual(exception.activity_ids.user_id, first)
        self.assertLessEqual((first | second).partner_id, exception.message_partner_ids)

    # ------------------------------------------------------------ schedule

    def test_cron_queues_one_job_per_company_that_measures_its_checks(self):
        self.leak()
        self.env["qtc.assurance.check"]._qtc_cron_compute()
        job = self.env["qtc.job"].search(
            [("identity_key", "=", f"qtc:assurance:checks:{self.env.company.id}")]
        )
        self.assertEqual(len(job), 1)
        self.assertIn(self.check.id, job.record_ids)
        self.assertEqual(job.method_name, "_qtc_assurance_compute")
        self.run_jobs()
        self.assertEqual(job.state, "done")
        self.assertEqual(self.check.last_count, 1)

    # -------------------------------------------------------------- access

    def test_public_methods_refuse_users_outside_qtc(self):
        clerk = new_test_user(self.env, "assurance_clerk", groups="base.group_user")
        check = self.check.with_user(clerk)
        for method in ("action_compute", "action_open_records", "action_view_history"):
            with self.assertRaises(AccessError, msg=method):
                getattr(check, method)()

    def test_a_qtc_user_measures_but_cannot_change_a_check(self):
        self.leak()
        check = self.check.with_user(self.owner)
        check.action_compute()
        self.assertEqual(self.check.last_count, 1)
        with self.assertRaises(AccessError):
            check.threshold = 10
        with self.assertRaises(AccessError):
            self.env["qtc.assurance.snapshot"].with_user(self.owner).browse(
                self.check.snapshot_id.id
            ).write({"count": 0})

    def test_checks_of_another_company_are_invisible(self):
        other = self.env["res.company"].create({"name": "Other company"})
        foreign = self.env["qtc.assurance.check"].create(
            {"name": "Other leak", "code": "none", "company_id": other.id}
        )
        checks = self.env["qtc.assurance.check"].with_user(self.owner)
        self.assertNotIn(foreign, checks.search([]))
        with self.assertRaises(AccessError):
            foreign.with_user(self.owner).action_open_records()
