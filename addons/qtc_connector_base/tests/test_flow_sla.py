"""Flow service levels: p50/p90 per backend and week, the current week
against the target, breaches like checks. The placeholder flow is given
samples here, as a connector's query would give them."""

from datetime import datetime, timedelta

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from ..lib import assurance
from .common import QtcCase

# Samples the patched query returns: (backend id, res id, hours, ended at).
SAMPLES = []


def _samples_query(self, since):
    return (
        "res.partner",
        SQL(
            """
            SELECT s.backend_id, s.res_id, s.ended_at - make_interval(
                       secs => s.hours * 3600) AS started_at, s.ended_at
              FROM unnest(%s::int[], %s::int[], %s::float[], %s::timestamp[])
                   AS s(backend_id, res_id, hours, ended_at)
            """,
            [row[0] for row in SAMPLES],
            [row[1] for row in SAMPLES],
            [row[2] for row in SAMPLES],
            [row[3] for row in SAMPLES],
        ),
    )


@tagged("post_install", "-at_install")
class TestFlowSla(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.owner = new_test_user(
            cls.env, "sla_owner", groups="qtc_connector_base.group_qtc_user"
        )
        cls.other_backend = cls._qtc_make_backend(name="Second backend")
        cls.sla = cls.env["qtc.flow.sla"].create(
            {
                "name": "Test flow",
                "flow": "none",
                "target_hours": 10.0,
                "percentile": "p90",
                "owner_user_id": cls.owner.id,
            }
        )

    def setUp(self):
        super().setUp()
        patcher = self.patch_model_method(
            self.env["qtc.flow.sla"], "_qtc_flow_query", _samples_query
        )
        patcher.start()
        self.addCleanup(patcher.stop)
        SAMPLES.clear()
        # A Wednesday noon: the week started on Monday.
        self.now = datetime(2026, 3, 4, 12, 0)
        self.monday = assurance.week_start(self.now)

    def sample(self, backend, res_id, hours, days_ago=0):
        SAMPLES.append((backend.id, res_id, hours, self.now - timedelta(days=days_ago)))

    def test_p50_p90_per_backend_and_week_and_the_week_overall(self):
        for res_id, hours in enumerate((1, 2, 3, 4, 20), start=1):
            self.sample(self.backend, res_id, hours)
        self.sample(self.other_backend, 10, 5)
        self.sample(self.backend, 11, 7, days_ago=7)  # last week
        self.sla._qtc_sla_compute(now=self.now)
        rows = self.sla.snapshot_ids
        this_week = rows.filtered(lambda r: r.week == self.monday)
        mine = this_week.filtered(lambda r: r.backend_id == self.backend)
        self.assertEqual(mine.count, 5)
        self.assertAlmostEqual(mine.p50_hours, 3.0)
        self.assertAlmostEqual(mine.p90_hours, 13.6, places=2)
        self.assertEqual(mine.slow_count, 1)
        theirs = this_week.filtered(lambda r: r.backend_id == self.other_backend)
        self.assertEqual((theirs.count, theirs.p50_hours), (1, 5.0))
        last_week = rows.filtered(lambda r: r.week == self.monday - timedelta(days=7))
        self.assertEqual(last_week.count, 1)
        # The card: this week over every backend.
        self.assertEqual(self.sla.last_count, 6)
        self.assertAlmostEqual(self.sla.last_p50_hours, 3.5)
        self.assertEqual(self.sla.slow_res_ids, [5])
        self.assertEqual(len(self.sla.trend_data), self.sla.weeks)
        self.assertEqual(self.sla.trend_data[-2], 7.0)

    def test_recomputing_a_week_rewrites_its_row(self):
        self.sample(self.backend, 1, 2)
        self.sla._qtc_sla_compute(now=self.now)
        self.sample(self.backend, 2, 4)
        self.sla._qtc_sla_compute(now=self.now)
        self.assertEqual(len(self.sla.snapshot_ids), 1)
        self.assertEqual(self.sla.snapshot_ids.count, 2)

    def test_slower_than_target_breaches_then_resolves(self):
        for res_id in range(1, 11):
            self.sample(self.backend, res_id, 12)
        self.sla._qtc_sla_compute(now=self.now)
        self.assertEqual(self.sla.state, "breach")
        exception = self.sla.exception_id
        self.assertEqual(exception.category, "assurance")
        self.assertEqual(exception.activity_ids.user_id, self.owner)
        self.assertEqual(len(self.sla.slow_res_ids), 10)
        action = self.sla.action_open_records()
        self.assertEqual(action["domain"], [("id", "in", list(range(1, 11)))])
        SAMPLES.clear()
        for res_id in range(1, 11):
            self.sample(self.backend, res_id, 2)
        self.sla._qtc_sla_compute(now=self.now + timedelta(hours=1))
        self.assertEqual(self.sla.state, "ok")
        self.assertEqual(exception.state, "resolved")
        self.assertFalse(exception.activity_ids)

    def test_the_target_applies_to_the_chosen_percentile(self):
        for res_id, hours in enumerate((1, 1, 1, 1, 1, 1, 1, 1, 30, 30), start=1):
            self.sample(self.backend, res_id, hours)
        self.sla.percentile = "p50"
        self.sla._qtc_sla_compute(now=self.now)
        self.assertEqual(self.sla.state, "ok")
        self.sla.percentile = "p90"
        self.sla._qtc_sla_compute(now=self.now)
        self.assertEqual(self.sla.state, "breach")

    def test_public_methods_refuse_users_outside_qtc(self):
        clerk = new_test_user(self.env, "sla_clerk", groups="base.group_user")
        sla = self.sla.with_user(clerk)
        for method in ("action_compute", "action_open_records", "action_view_history"):
            with self.assertRaises(AccessError, msg=method):
                getattr(sla, method)()
        with self.assertRaises(AccessError):
            self.sla.with_user(self.owner).target_hours = 1
