"""Shared set-up for the base's Odoo tests and for every connector's tests."""

import contextlib
import json
import time
from unittest.mock import patch

import responses

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, TransactionCase, new_test_user
from odoo.tests.common import _super_send

from ..lib import signature
from ..lib.job_function import job_function

TEST_SECRET = "whsec_current_0123456789abcdef"
OLD_SECRET = "whsec_previous_fedcba9876543210"


class QtcTestMixin:
    """Factory helpers: a backend with a webhook secret, jobs run inline."""

    @classmethod
    def _request_handler(cls, session, prepared, /, **kwargs):
        # Odoo's test cases block every external request at Session.send; with
        # ``responses`` active the request goes on to its mocked adapter instead
        # (an unregistered URL still fails there, so nothing reaches a network).
        if getattr(responses.mock, "_patcher", None) is not None:
            return _super_send(session, prepared, **kwargs)
        return super()._request_handler(session, prepared, **kwargs)

    @classmethod
    def _qtc_make_backend(cls, **values):
        backend = cls.env["qtc.backend"].create(
            {"name": "Test backend", "state": "active", **values}
        )
        backend._qtc_set_secret("webhook_secret", TEST_SECRET)
        return backend

    def run_jobs(self, limit=100):
        """Run ready jobs in the test transaction (same paths as the workers)."""
        return self.env["qtc.job"]._qtc_run_pending_inline(limit=limit)

    @staticmethod
    def sign(body, secrets=TEST_SECRET, timestamp=None):
        return signature.sign(body, secrets, timestamp)

    @staticmethod
    def patch_model_method(model, name, func):
        """Give ``model``'s registry class a method ``name`` for the test's
        duration (a provider hook with chosen behaviour)."""
        return patch.object(type(model), name, func, create=True)

    @staticmethod
    def patch_job_function(model, name, func):
        """Give ``model``'s registry class a job function ``name`` (``func``
        marked as one) for the test's duration: a job target with chosen
        behaviour."""
        return patch.object(type(model), name, job_function(func), create=True)

    @classmethod
    def make_service_user(cls, login, groups="", company=None):
        """A technical user for a test backend: QTC service account plus
        ``groups`` (comma-separated xml ids) the test's work needs."""
        extra = {}
        if company:
            extra = {"company_id": company.id, "company_ids": [company.id]}
        return new_test_user(
            cls.env,
            login,
            groups=",".join(
                g for g in ("qtc_connector_base.group_qtc_service", groups) if g
            ),
            **extra,
        )


class QtcCase(QtcTestMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend = cls._qtc_make_backend()

    def enter_test_mode(self):
        """Make ``registry.cursor()`` share the test transaction, for code that
        opens its own cursors (the worker loop, recovery, progress)."""
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)


class QtcHttpCase(QtcTestMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend = cls._qtc_make_backend()

    def post_signed(
        self, path, payload, secrets=TEST_SECRET, timestamp=None, headers=None
    ):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        all_headers = {
            "Content-Type": "application/json",
            signature.HEADER: self.sign(body, secrets, timestamp or int(time.time())),
            **(headers or {}),
        }
        return self.url_open(path, data=body, headers=all_headers)


@contextlib.contextmanager
def captured_logs():
    """Collect every log line emitted under the ``odoo`` and base loggers."""
    import logging

    lines = []

    class Collector(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collector(level=logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("odoo", "odoo.addons", "werkzeug")]
    previous = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        for lg, level in previous:
            lg.removeHandler(handler)
            lg.setLevel(level)


class QtcTraceAssertions:
    """Checks a connector runs on each model it makes traceable."""

    TRACE_CODE = "action = records.action_qtc_trace()"

    @classmethod
    def make_trace_users(cls, login, business_groups, company=None):
        """Two users with ``business_groups`` (comma-separated xml ids): the
        first also in QTC User, the second without any QTC group.

        :returns: ``(qtc_user, plain_user)``
        """
        extra = {}
        if company:
            extra = {"company_id": company.id, "company_ids": [company.id]}
        qtc_user = new_test_user(
            cls.env,
            f"{login}_finance",
            groups=f"{business_groups},qtc_connector_base.group_qtc_user",
            **extra,
        )
        plain_user = new_test_user(
            cls.env, f"{login}_plain", groups=business_groups, **extra
        )
        return qtc_user, plain_user

    def trace_actions(self, model_name):
        return self.env["ir.actions.server"].search(
            [
                ("binding_model_id.model", "=", model_name),
                ("code", "=", self.TRACE_CODE),
            ]
        )

    def assert_trace_ui_once(self, model_name):
        """One Trace entry in the model's Action menu and one Trace button on
        its form, however many installed connectors register the model, and
        still one after the registration runs again."""
        self.assertIn("qtc.trace.mixin", self.env[model_name]._inherit_module)
        trace = self.env["qtc.trace"]
        before = self.trace_actions(model_name)
        self.assertEqual(len(before), 1, f"one Trace action on {model_name}")
        self.assertEqual(
            before.groups_id, self.env.ref("qtc_connector_base.group_qtc_user")
        )
        views = self.env["ir.ui.view"].search(
            [("model", "=", model_name), ("name", "=", f"{model_name}.form.qtc.trace")]
        )
        self.assertEqual(len(views), 1, f"one Trace button view on {model_name}")
        # Owned by a connector that registers the model (validated once it loads).
        owners = trace._qtc_traceable_models()[model_name]
        self.assertIn(views.get_external_id()[views.id].split(".")[0], owners)
        trace._qtc_sync_trace_ui()  # as the next registry load does
        self.assertEqual(self.trace_actions(model_name), before)
        self.assertEqual(
            self.env["ir.ui.view"].search(
                [
                    ("model", "=", model_name),
                    ("name", "=", f"{model_name}.form.qtc.trace"),
                ]
            ),
            views,
        )
        arch = self.env[model_name].get_view(view_type="form")["arch"]
        self.assertEqual(arch.count('name="action_qtc_trace"'), 1, arch[:200])

    def assert_trace_access(self, record, qtc_user, plain_user):
        """A QTC user opens the record's trace (returned: its steps); a user
        without the QTC groups has no Trace entry or button and reads nothing."""
        bindings = self.env["ir.actions.actions"]
        entries = bindings.with_user(qtc_user).get_bindings(record._name)["action"]
        trace_action = self.trace_actions(record._name)
        self.assertEqual(
            [a["name"] for a in entries if a["id"] == trace_action.id], ["Trace"]
        )
        plain_entries = bindings.with_user(plain_user).get_bindings(record._name)
        plain_ids = [a["id"] for a in plain_entries.get("action", ())]
        self.assertNotIn(trace_action.id, plain_ids)
        form = record.with_user(plain_user).get_view(view_type="form")["arch"]
        self.assertNotIn("action_qtc_trace", form)
        with self.assertRaises(AccessError):
            record.with_user(plain_user).action_qtc_trace()
        mine = record.with_user(qtc_user)
        self.assertGreater(mine.qtc_trace_count, 0)
        action = mine.action_qtc_trace()
        self.assertEqual(action["res_model"], "qtc.trace.step")
        return self.env["qtc.trace.step"].with_user(qtc_user).search(action["domain"])
