"""Who runs what: registered job functions only, stored jobs nobody rewrites,
audited manager actions, jobs run as their user and never as the superuser."""

import json

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from ..lib.job_function import is_job_function
from ..models.qtc_backend import InboundEvent
from ..models.qtc_job import JOB_TARGET_FIELDS
from .common import QtcCase

PARAM = "qtc_connector_base.test_param_set_by_a_job"


def write_partner(records, values):
    records.write(values)


class JobSecurityCase(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Job = cls.env["qtc.job"]
        cls.partner = cls.env["res.partner"].create({"name": "Security target"})
        cls.runner = new_test_user(
            cls.env,
            "qtc_sec_runner",
            groups="base.group_user,base.group_partner_manager",
        )
        cls.finance = new_test_user(
            cls.env, "qtc_sec_finance", groups="qtc_connector_base.group_qtc_user"
        )
        cls.manager = new_test_user(
            cls.env, "qtc_sec_manager", groups="qtc_connector_base.group_qtc_manager"
        )
        cls.service = cls.make_service_user(
            "qtc_sec_service", "base.group_partner_manager"
        )
        cls.backend.technical_user_id = cls.service

    def setUp(self):
        super().setUp()
        self.seen = []

        def record_env(records, values=None):
            env = records.env
            self.seen.append((env.uid, env.su, env.company.id))
            if values:
                records.write(values)
            return "seen"

        for name, func in (
            ("_qtc_test_write", write_partner),
            ("_qtc_test_seen", record_env),
        ):
            patcher = self.patch_job_function(self.partner, name, func)
            patcher.start()
            self.addCleanup(patcher.stop)

    def _enqueue(self, method="_qtc_test_write", args=None, **kwargs):
        if args is None:
            args = [{"comment": "from job"}]
        if "backend" not in kwargs and "event" not in kwargs:
            kwargs.setdefault("user", self.runner)
        return self.Job._qtc_enqueue(self.partner, method, args, **kwargs)

    def _insert_job(self, model, method, args=None, user=None):
        """A job row as only raw SQL could write it (what an attacker would
        need the database for)."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            INSERT INTO qtc_job (name, state, model_name, method_name, record_ids,
                                 args, kwargs, priority, attempts, max_attempts,
                                 max_backoff, company_id, user_id, create_date,
                                 write_date)
            VALUES ('forged', 'pending', %s, %s, '[]', %s, '{}', 0, 0, 3, 10,
                    %s, %s, now() at time zone 'utc', now() at time zone 'utc')
            RETURNING id
            """,
            (
                model,
                method,
                json.dumps(args or []),
                self.env.company.id,
                (user or self.runner).id,
            ),
        )
        return self.Job.browse(self.env.cr.fetchone()[0])


@tagged("post_install", "-at_install")
class TestJobFunctions(JobSecurityCase):
    def test_the_base_job_targets_are_registered(self):
        events = type(self.env["qtc.event"])
        self.assertTrue(is_job_function(events, "_qtc_process"))
        self.assertTrue(is_job_function(events, "_qtc_process_batch"))
        self.assertFalse(is_job_function(events, "write"))
        self.assertFalse(is_job_function(events, "_qtc_edit_payload"))

    def test_enqueue_refuses_a_method_that_is_not_a_job_function(self):
        before = self.Job.search_count([])
        for model, method in (
            ("res.partner", "write"),
            ("res.partner", "unlink"),
            ("ir.config_parameter", "set_param"),
            ("qtc.event", "_qtc_edit_payload"),
        ):
            with self.assertRaisesRegex(ValueError, "not a registered job function"):
                self.Job._qtc_enqueue(self.env[model], method, user=self.runner)
        self.assertEqual(self.Job.search_count([]), before, "nothing queued")

    def test_runner_refuses_an_unregistered_method_and_runs_nothing(self):
        job = self._insert_job(
            "ir.config_parameter", "set_param", [PARAM, "set"], user=self.runner
        )
        self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.error_kind, "business")
        self.assertIn("ir.config_parameter.set_param", job.error_message)
        self.assertIn("not a registered job function", job.error_message)
        self.assertFalse(self.env["ir.config_parameter"].get_param(PARAM))
        self.assertEqual(job.exception_ids.category, "configuration")

    def test_runner_refuses_a_model_that_does_not_exist(self):
        job = self._insert_job("qtc.no.such.model", "_qtc_process")
        self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(job.state, "failed")
        self.assertIn("qtc.no.such.model._qtc_process", job.error_message)


@tagged("post_install", "-at_install")
class TestStoredJobs(JobSecurityCase):
    def test_no_one_changes_what_a_job_runs_or_as_whom(self):
        job = self._enqueue(backend=self.backend)
        other = self.env["res.company"].create({"name": "Other QTC company"})
        forged = {
            "name": "renamed",
            "model_name": "ir.config_parameter",
            "method_name": "set_param",
            "record_ids": [self.runner.id],
            "args": [PARAM, "set"],
            "kwargs": {"value": "set"},
            "user_id": False,
            "company_id": other.id,
            "backend_id": False,
            "event_id": False,
            "identity_key": "forged",
            "correlation_id": "forged",
            "depends_on_id": False,
        }
        self.assertEqual(set(forged), JOB_TARGET_FIELDS)
        for field_name, value in forged.items():
            for env_job in (job.with_user(self.manager), job):  # manager, superuser
                with self.assertRaises(AccessError, msg=field_name):
                    env_job.write({field_name: value})
        job.invalidate_recordset()
        self.assertEqual(
            (job.model_name, job.method_name, job.user_id),
            ("res.partner", "_qtc_test_write", self.service),
        )

    def test_a_manager_tunes_priority_and_attempts_only(self):
        job = self._enqueue()
        as_manager = job.with_user(self.manager)
        as_manager.write({"priority": 1, "max_attempts": 9, "max_backoff": 60})
        self.assertEqual((job.priority, job.max_attempts), (1, 9))
        for values in (
            {"state": "done"},
            {"attempts": 0},
            {"eta": fields.Datetime.now()},
            {"result": "forged"},
            {"cancel_requested": True},
        ):
            with self.assertRaises(AccessError, msg=str(values)):
                as_manager.write(values)
        with self.assertRaises(AccessError):
            job.with_user(self.finance).write({"priority": 1})
        self.assertEqual(job.state, "pending")

    def test_jobs_are_never_created_or_copied_through_the_orm(self):
        values = {
            "name": "forged",
            "model_name": "res.partner",
            "method_name": "_qtc_test_write",
        }
        for jobs in (self.Job, self.Job.with_user(self.manager)):
            with self.assertRaises(AccessError):
                jobs.create(values)
        job = self._enqueue()
        with self.assertRaises(AccessError):
            job.with_user(self.manager).copy()

    def test_a_queued_job_is_cancelled_before_it_is_deleted(self):
        job = self._enqueue()
        with self.assertRaises(UserError):
            job.with_user(self.manager).unlink()
        job.with_user(self.manager).action_cancel()
        job.with_user(self.manager).unlink()
        self.assertFalse(job.exists())


@tagged("post_install", "-at_install")
class TestQueueActions(JobSecurityCase):
    def test_requeue_and_cancel_are_manager_actions(self):
        job = self._enqueue()
        failed = self._enqueue(args=[{"ref": "failed"}])
        failed.write({"state": "failed"})
        for user in (self.finance, self.runner):
            with self.assertRaises(AccessError):
                job.with_user(user).action_cancel()
            with self.assertRaises(AccessError):
                failed.with_user(user).action_requeue()
        self.assertEqual((job.state, failed.state), ("pending", "failed"))
        self.assertFalse((job | failed).audit_ids)

    def test_cancel_writes_an_audit_line(self):
        job = self._enqueue()
        job.with_user(self.manager).action_cancel()
        self.assertEqual(job.state, "cancelled")
        audit = job.audit_ids
        self.assertEqual(
            (audit.action, audit.user_id, audit.previous_state),
            ("cancel", self.manager, "pending"),
        )
        self.assertTrue(audit.create_date)
        self.assertEqual(self.run_jobs(), 0)

    def test_requeue_writes_an_audit_line_and_refuses_a_done_job(self):
        job = self._enqueue()
        job.write({"state": "dead", "attempts": 5})
        job.with_user(self.manager).action_requeue()
        self.assertEqual((job.state, job.attempts), ("pending", 0))
        self.assertEqual(
            (job.audit_ids.action, job.audit_ids.user_id), ("requeue", self.manager)
        )
        self.run_jobs()
        self.assertEqual(job.state, "done")
        self.partner.comment = False
        with self.assertRaisesRegex(UserError, "never runs again"):
            job.with_user(self.manager).action_requeue()
        self.assertEqual(self.run_jobs(), 0)
        self.assertFalse(self.partner.comment, "the done job did not run again")

    def test_a_manager_of_another_company_cannot_touch_its_jobs(self):
        other = self.env["res.company"].create({"name": "QTC other company"})
        outsider = new_test_user(
            self.env,
            "qtc_sec_outsider",
            groups="qtc_connector_base.group_qtc_manager",
            company_id=other.id,
            company_ids=[other.id],
        )
        job = self._enqueue()
        self.assertEqual(job.company_id, self.env.company)
        with self.assertRaises(AccessError):
            job.with_user(outsider).action_cancel()
        self.assertEqual(job.state, "pending")


@tagged("post_install", "-at_install")
class TestRunAs(JobSecurityCase):
    def test_a_job_runs_as_the_user_who_queued_it(self):
        job = self.Job.with_user(self.runner)._qtc_enqueue(
            self.partner, "_qtc_test_seen", [{"ref": "as runner"}]
        )
        self.assertEqual(job.sudo().user_id, self.runner)
        self.run_jobs()
        self.assertEqual(self.seen, [(self.runner.id, False, self.env.company.id)])
        self.assertEqual(self.partner.write_uid, self.runner)

    def test_webhook_work_runs_as_the_backend_technical_user(self):
        seen = []

        def handler(backend, event):
            seen.append((backend.env.uid, backend.env.su))
            return "ok"

        stored = self.backend._qtc_store_events([InboundEvent("evt_as", "x", "{}")])
        event = self.env["qtc.event"].browse(stored["evt_as"])
        self.assertEqual(event.job_ids.user_id, self.service)
        with self.patch_model_method(self.backend, "_qtc_handle_event", handler):
            self.run_jobs()
        self.assertEqual(seen, [(self.service.id, False)])
        self.assertEqual(event.state, "done")

    def test_system_work_of_a_backend_runs_as_its_technical_user(self):
        # Queued by the superuser (a cron, a script) for a backend.
        job = self.Job._qtc_enqueue(
            self.partner, "_qtc_test_seen", backend=self.backend
        )
        self.assertEqual(job.user_id, self.service)
        self.run_jobs()
        self.assertEqual(self.seen[0][:2], (self.service.id, False))

    def test_a_portal_customers_action_queues_work_for_the_technical_user(self):
        portal = new_test_user(self.env, "qtc_sec_portal", groups="base.group_portal")
        job = (
            self.Job.with_user(portal)
            .sudo()
            ._qtc_enqueue(self.partner, "_qtc_test_seen", backend=self.backend)
        )
        self.assertEqual(job.user_id, self.service)

    def test_system_work_without_a_backend_or_user_is_refused(self):
        with self.assertRaisesRegex(ValueError, "technical user"):
            self.Job._qtc_enqueue(self.partner, "_qtc_test_seen")

    def test_a_job_whose_user_is_archived_fails_and_runs_nothing(self):
        job = self._enqueue("_qtc_test_seen", [{"ref": "never"}])
        self.runner.active = False
        self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(self.seen, [])
        self.assertEqual(job.state, "failed")
        self.assertIn("archived", job.error_message)
        self.assertIn(self.runner.name, job.error_message)
        self.assertFalse(self.partner.ref)

    def test_a_backend_without_technical_user_runs_nothing(self):
        self.backend.technical_user_id = False
        stored = self.backend._qtc_store_events([InboundEvent("evt_nobody", "x", "{}")])
        event = self.env["qtc.event"].browse(stored["evt_nobody"])
        self.assertFalse(event.job_ids.user_id)
        self.run_jobs()
        job = event.job_ids
        self.assertEqual(job.state, "failed")
        self.assertIn("has no technical user", job.error_message)

    def test_a_job_never_runs_as_the_superuser(self):
        job = self._insert_job(
            "res.partner", "_qtc_test_seen", user=self.env.ref("base.user_root")
        )
        self.run_jobs()
        job.invalidate_recordset()
        self.assertEqual(self.seen, [])
        self.assertEqual(job.state, "failed")
        self.assertIn("does not run as anyone else", job.error_message)


@tagged("post_install", "-at_install")
class TestServiceUsers(JobSecurityCase):
    def test_each_company_has_a_service_user_and_a_new_one_gets_its_own(self):
        service = self.env.company.qtc_service_user_id
        self.assertTrue(service.active)
        self.assertTrue(service.has_group("qtc_connector_base.group_qtc_service"))
        for group in (
            "qtc_connector_base.group_qtc_user",
            "base.group_system",
            "base.group_erp_manager",
        ):
            self.assertFalse(service.has_group(group), group)
        self.assertFalse(service._is_superuser())
        company = self.env["res.company"].create({"name": "QTC new company"})
        new_service = company.qtc_service_user_id
        self.assertTrue(new_service)
        self.assertNotEqual(new_service, service)
        self.assertEqual(new_service.company_ids, company)
        backend = self.env["qtc.backend"].create(
            {"name": "New company backend", "company_id": company.id}
        )
        self.assertEqual(backend.technical_user_id, new_service)

    def test_the_technical_user_is_a_service_account_set_by_a_manager(self):
        backend = self.env["qtc.backend"].create({"name": "Default user backend"})
        self.assertEqual(
            backend.technical_user_id, self.env.company.qtc_service_user_id
        )
        for user in (self.env.ref("base.user_admin"), self.runner):
            with self.assertRaises(ValidationError):
                backend.technical_user_id = user
        with self.assertRaises(AccessError):
            backend.with_user(self.finance).technical_user_id = self.service
        backend.with_user(self.manager).technical_user_id = self.service
        self.assertEqual(backend.technical_user_id, self.service)
