from datetime import date
from unittest.mock import patch

from odoo.tests import tagged

from .. import const
from ..lib import work_item as wi
from .common import ADA, PsaCase

GRACE = "grace@example.com"

# Queries of applying one batch of time items whatever its size: reading the
# events, items, bindings, value maps, employees and lock dates; one INSERT
# each for items, timesheets, bindings and traces; Odoo's own recomputation of
# the sale line and task totals; the job's claim and done update; savepoints.
# Measured: 70 queries for 50 items, 71 for 100; 10 of slack for Odoo updates.
BATCH_CONSTANT = 80
PER_ITEM_BUDGET = 0.2  # the goal: at most 0.2 queries per line


@tagged("post_install", "-at_install")
class TestPsaBatch(PsaCase):
    def jobs(self):
        return self.env["qtc.job"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("method_name", "=", "_qtc_process_batch"),
            ]
        )

    def events(self):
        return self.env["qtc.event"].search(
            [("backend_id", "=", self.backend.id)], order="id"
        )

    def event(self, key):
        return self.events().filtered(lambda event: event.external_id == key)

    def timesheet(self, external_id):
        return self.item_record(external_id).analytic_line_id

    def time_items(self, count, start=0, **values):
        return [
            self.time_item(
                external_id=f"TE-{start + n}",
                employee_email=(ADA, GRACE)[n % 2],
                hours="1.5",
                **values,
            )
            for n in range(count)
        ]

    def store(self, *items):
        return self.backend._psa_store_items(wi.validate_batch(list(items)))

    # ------------------------------------------------------------- failures

    def test_mixed_batch_one_job_and_an_exception_per_bad_item(self):
        self.backend.write(
            {
                "psa_rate_policy": "raise",
                "psa_expense_product_id": self.product_expense.id,
            }
        )
        self.env.company.sale_lock_date = date(2026, 2, 28)
        # Applied before the batch: one item invoiced, one not yet.
        self.push(self.time_item(external_id="TE-INV", hours="2"))
        self.order._create_invoices().action_post()
        self.push(self.time_item(external_id="TE-FREE", hours="1"))
        free_line = self.timesheet("TE-FREE")
        jobs_before = self.jobs()
        answers = self.store(
            self.time_item(external_id="TE-1"),
            self.time_item(external_id="TE-2", employee_email="nobody@example.com"),
            self.time_item(external_id="TE-3", project_ref="NOPE"),
            self.time_item(external_id="TE-4", date="2026-02-15"),
            self.time_item(external_id="TE-5", rate="150"),
            self.time_item(external_id="TE-INV", version=2, hours="3"),
            self.time_item(external_id="TE-FREE", version=2, status="withdrawn"),
            self.time_item(external_id="TE-6", billable=False, employee_email=GRACE),
            self.time_item(external_id="TE-1", version=2, hours="8"),
            {
                **self.time_item(
                    external_id="EX-1",
                    kind="expense",
                    amount="84.20",
                    currency=self.order.currency_id.name,
                    task_ref=None,
                    hours=None,
                    description="Train",
                )
            },
        )
        self.assertEqual({a["status"] for a in answers}, {"accepted"})
        self.run_jobs()

        jobs = self.jobs() - jobs_before
        # One job for the engagement; the item of the unmapped project names
        # no engagement of the others, so it is a job of its own.
        self.assertEqual(len(jobs), 2)
        unmapped = jobs.filtered(
            lambda j: j.resources == f"psa.project:{self.backend.id}:NOPE"
        )
        job = jobs - unmapped
        self.assertEqual(
            self.events().filtered(lambda e: e.id in unmapped.record_ids).external_id,
            "TE-3:1",
        )
        self.assertEqual(set(jobs.mapped("state")), {"done"})
        self.assertEqual(job.result, "5 applied, 0 ignored, 4 need attention")
        self.assertEqual(unmapped.result, "0 applied, 0 ignored, 1 need attention")
        self.assertFalse(jobs.event_id)  # a batch job belongs to no single event
        states = {
            event.external_id: event.state
            for event in self.events().filtered(
                lambda e: e.id in job.record_ids + unmapped.record_ids
            )
        }
        self.assertEqual(
            states,
            {
                "TE-1:1": "done",
                "TE-2:1": "failed",
                "TE-3:1": "failed",
                "TE-4:1": "failed",
                "TE-5:1": "failed",
                "TE-INV:2": "failed",
                "TE-FREE:2": "done",
                "TE-6:1": "done",
                "TE-1:2": "done",
                "EX-1:1": "done",
            },
        )
        exceptions = self.env["qtc.exception"].search(
            [("backend_id", "=", self.backend.id)]
        )
        by_event = {exc.event_id.external_id: exc for exc in exceptions}
        self.assertEqual(
            {key: exc.category for key, exc in by_event.items()},
            {
                "TE-2:1": "unknown_record",
                "TE-3:1": "mapping",
                "TE-4:1": "data",
                "TE-5:1": "rate",
                "TE-INV:2": "credit_note",
            },
        )
        self.assertIn("nobody@example.com", by_event["TE-2:1"].name)
        self.assertIn("lock date 2026-02-28", by_event["TE-4:1"].name)
        self.assertEqual(by_event["TE-5:1"].record_ref, self.time_line)
        self.assertEqual(
            by_event["TE-2:1"].correlation_id, self.event("TE-2:1").correlation_id
        )
        self.assertFalse(exceptions.job_id)  # each belongs to its event

        # The good items: TE-1 created then corrected in the same batch, TE-6
        # recorded without a sale line, TE-FREE withdrawn, the expense billed.
        te1 = self.timesheet("TE-1")
        self.assertEqual(te1.unit_amount, 8.0)
        self.assertEqual(te1.so_line, self.time_line)
        self.assertEqual(self.item_record("TE-1").version, 2)
        self.assertFalse(self.timesheet("TE-6").so_line)
        self.assertEqual(self.timesheet("TE-6").employee_id, self.employee_grace)
        self.assertFalse(free_line.exists())
        self.assertEqual(self.item_record("TE-FREE").status, "withdrawn")
        self.assertEqual(self.item_record("EX-1").sale_line_id.price_unit, 84.2)
        for key in ("TE-2", "TE-3", "TE-4", "TE-5"):
            self.assertFalse(self.item_record(key), key)
        self.assertEqual(self.timesheet("TE-INV").unit_amount, 2.0)
        # 2 h invoiced before, 8 h of TE-1 now; TE-FREE came and went.
        self.assertEqual(self.time_line.qty_delivered, 10.0)

        # One trace line per record the batch created or changed; the second
        # delivery of TE-1 and the expense took the single-item path.
        traces = self.env["qtc.trace"].search([("job_id", "=", job.id)])
        self.assertEqual(
            sorted((t.event_id.external_id, t.res_model, t.operation) for t in traces),
            [
                ("EX-1:1", "account.analytic.line", "created"),
                ("EX-1:1", "qtc.psa.item", "created"),
                ("EX-1:1", "sale.order.line", "created"),
                ("TE-1:1", "account.analytic.line", "created"),
                ("TE-1:1", "qtc.psa.item", "created"),
                ("TE-1:2", "account.analytic.line", "updated"),
                ("TE-1:2", "qtc.psa.item", "updated"),
                ("TE-6:1", "account.analytic.line", "created"),
                ("TE-6:1", "qtc.psa.item", "created"),
                ("TE-FREE:2", "account.analytic.line", "reversed"),
                ("TE-FREE:2", "qtc.psa.item", "updated"),
            ],
        )
        self.assertEqual(
            set(traces.mapped("correlation_id")),
            {self.event(key).correlation_id for key in states if states[key] == "done"},
        )

    def test_email_wildcards_do_not_match_another_employee(self):
        self.env["hr.employee"].create(
            {"name": "Axel", "work_email": "axb@example.com"}
        )
        self.push(self.time_item(employee_email="a_b@example.com"))
        exception = self.last_exception()
        self.assertEqual(exception.category, "unknown_record")
        self.assertIn("a_b@example.com", exception.name)
        self.assertFalse(self.item_record())

    def test_two_employees_with_one_email_is_an_exception(self):
        self.env["hr.employee"].create(
            {"name": "Ada bis", "work_email": "Ada@example.com"}
        )
        self.push(self.time_item())
        self.assertIn("Several employees", self.last_exception().name)
        self.assertFalse(self.item_record())

    def test_retry_of_a_batch_item_replays_its_event(self):
        self.push(
            self.time_item(external_id="TE-8"),
            self.time_item(external_id="TE-9", employee_email="new@example.com"),
        )
        exception = self.last_exception()
        self.assertEqual(exception.event_id.external_id, "TE-9:1")
        self.employee_grace.work_email = "new@example.com"
        exception.action_retry()
        self.assertEqual(exception.state, "resolved")
        self.run_jobs()
        self.assertEqual(exception.event_id.state, "done")
        self.assertEqual(self.timesheet("TE-9").employee_id, self.employee_grace)

    # ---------------------------------------------------------------- volume

    def test_a_request_of_two_engagements_is_two_jobs_that_can_run_at_once(self):
        """Two job workers, two engagements (orders) in one request: one job
        per engagement, each declaring its project and order, so the queue
        runs them on both workers at once and never beside another job of the
        same order. A later request of one engagement declares it again."""
        other_order = self.order.copy()
        other_order.action_confirm()
        other_line = other_order.order_line.filtered(
            lambda line: line.product_id == self.product_time
        )
        self.env["qtc.value.map.line"].create(
            {
                "map_id": self.env.ref(
                    "qtc_psa_timesheets.qtc_value_map_psa_project"
                ).id,
                "external_value": "PRJ-7",
                "res_id": other_line.project_id.id,
            }
        )
        other = {"project_ref": "PRJ-7", "task_ref": None}
        answers = self.store(
            self.time_item(external_id="TE-1", hours="1"),
            self.time_item(external_id="TE-2", hours="2", **other),
            self.time_item(external_id="TE-3", hours="3", task_ref=None),
            self.time_item(external_id="TE-4", hours="4", **other),
        )
        self.assertEqual({a["status"] for a in answers}, {"accepted"})
        self.store(self.time_item(external_id="TE-5", hours="5", **other))
        jobs = self.jobs()
        self.assertEqual(len(jobs), 3)
        ours = f"project.project:{self.project.id}\nsale.order:{self.order.id}"
        theirs = (
            f"project.project:{other_line.project_id.id}\nsale.order:{other_order.id}"
        )
        keys_by_resources = {}
        for job in jobs:
            events = self.env["qtc.event"].browse(job.record_ids)
            keys_by_resources.setdefault(job.resources, set()).update(
                events.mapped("external_id")
            )
        self.assertEqual(
            keys_by_resources,
            {ours: {"TE-1:1", "TE-3:1"}, theirs: {"TE-2:1", "TE-4:1", "TE-5:1"}},
        )
        self.assertFalse(jobs.channel_id, "no channel, no lane: nothing to set up")
        self.run_jobs()
        self.assertEqual(set(jobs.mapped("state")), {"done"})
        self.assertEqual(self.time_line.qty_delivered, 4.0)
        self.assertEqual(other_line.qty_delivered, 11.0)
        self.assertEqual(self.timesheet("TE-4").project_id, other_line.project_id)

    def test_one_engagement_is_one_job_on_the_backend_channel(self):
        channel = self.env["qtc.job.channel"].create(
            {"name": "PSA (test)", "capacity": 0}
        )
        self.backend.job_channel_id = channel
        self.store(
            self.time_item(external_id="TE-1"),
            self.time_item(external_id="TE-2", task_ref=None),
        )
        self.assertEqual(len(self.jobs()), 1)
        self.assertEqual(self.jobs().channel_id, channel)

    def test_an_unmapped_project_is_declared_by_its_reference(self):
        self.store(
            self.time_item(external_id="TE-1", project_ref="PRJ-UNKNOWN"),
        )
        self.assertEqual(
            self.jobs().resources, f"psa.project:{self.backend.id}:PRJ-UNKNOWN"
        )

    def test_a_milestone_declares_the_order_of_its_line(self):
        other_order = self.order.copy()
        other_order.action_confirm()
        other_line = other_order.order_line.filtered(
            lambda line: line.product_id == self.product_milestone
        )
        self.env["qtc.value.map.line"].create(
            {
                "map_id": self.env.ref(
                    "qtc_psa_timesheets.qtc_value_map_psa_milestone"
                ).id,
                "external_value": "GO-LIVE-2",
                "res_id": other_line.id,
            }
        )
        milestone = self.time_item(
            external_id="MS-1",
            kind="milestone",
            milestone_ref="GO-LIVE-2",
            task_ref=None,
            employee_email=None,
            hours=None,
        )
        self.store(milestone)
        self.assertEqual(
            set(self.jobs().resources.split("\n")),
            {
                f"project.project:{self.project.id}",
                f"sale.order:{other_order.id}",
                f"sale.order:{self.order.id}",
            },
        )

    def test_large_batch_is_applied_in_chunks_with_progress(self):
        jobs_class = type(self.env["qtc.job"])
        record_progress = jobs_class._qtc_progress
        calls = []

        def progress(jobs, done, total, message=None):
            calls.append((done, total, message))
            return record_progress(jobs, done, total, message)

        with (
            patch.object(const, "BATCH_CHUNK_SIZE", 2),
            self.patch_model_method(self.env["qtc.job"], "_qtc_progress", progress),
        ):
            self.push(*self.time_items(5))
        self.assertEqual(
            [(done, total) for done, total, _message in calls],
            [(2, 5), (4, 5), (5, 5)],
        )
        job = self.jobs()
        self.assertEqual(len(job), 1)
        job.invalidate_recordset()
        self.assertEqual((job.progress_done, job.progress_total), (5, 5))
        self.assertEqual(job.progress_message, "5 of 5 work items applied")
        self.assertEqual(job.state, "done")
        self.assertEqual(set(self.events().mapped("state")), {"done"})
        self.assertEqual(self.time_line.qty_delivered, 7.5)

    def apply_counting_queries(self, items):
        self.store(*items)
        self.env.flush_all()
        before = self.cr.sql_log_count
        self.run_jobs()
        self.env.flush_all()
        return self.cr.sql_log_count - before

    def test_queries_per_line_are_amortised(self):
        # Warm the caches a first job fills once per process (registry, views
        # of the models, the lock dates...).
        self.push(*self.time_items(2, start=1000))
        small = self.apply_counting_queries(self.time_items(50))
        large = self.apply_counting_queries(self.time_items(100, start=50))
        self.assertEqual(len(self.jobs()), 3)
        self.assertEqual(self.time_line.qty_delivered, 1.5 * 152)
        self.assertEqual(
            len(self.env["qtc.trace"].search([("job_id", "in", self.jobs().ids)])),
            2 * 152,
        )
        # 50 more lines cost at most 0.2 queries each ...
        self.assertLessEqual(large - small, PER_ITEM_BUDGET * 50)
        # ... and a batch of 50 at most 0.2 per line over the batch constant.
        with self.assertQueryCount(int(BATCH_CONSTANT + PER_ITEM_BUDGET * 50)):
            self.store(*self.time_items(50, start=150))
            self.run_jobs()
