"""Shared set-up for the base's Odoo tests and for every connector's tests."""

import base64
import contextlib
import json
import os
import re
import time
import unittest
from pathlib import Path
from unittest.mock import patch

import responses

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, TransactionCase, new_test_user
from odoo.tests import common as odoo_test_common
from odoo.tests.common import ChromeBrowser, _find_executable, _super_send
from odoo.tools import config

from ..lib import signature
from ..lib.job_function import job_function

TEST_SECRET = "whsec_current_0123456789abcdef"
# Server errors the web client shows in its warning dialog (message only, no
# traceback): web/static/src/core/errors/error_dialogs.js.
WARNING_DIALOG_ERRORS = (
    "odoo.exceptions.UserError",
    "odoo.exceptions.ValidationError",
    "odoo.exceptions.AccessError",
)
OLD_SECRET = "whsec_previous_fedcba9876543210"


class QtcTestMixin:
    """Factory helpers: a backend with a webhook secret, jobs run inline."""

    # External types the base's tests bind on their provider-less backend.
    TEST_BINDING_MODELS = {"Account": ("res.partner",), "customer": ("res.partner",)}

    @classmethod
    def declare_test_binding_models(cls, types=None):
        """Let provider-less backends bind ``types`` (``{external type:
        models}``) during the class's tests, as a connector declares its own
        in ``qtc.backend._qtc_binding_models``."""
        backend_class = type(cls.env["qtc.backend"])
        original = backend_class._qtc_binding_models
        declared = dict(types or cls.TEST_BINDING_MODELS)

        def _qtc_binding_models(self):
            if self.provider != "none":
                return original(self)
            return dict(declared)

        patcher = patch.object(
            backend_class, "_qtc_binding_models", _qtc_binding_models
        )
        patcher.start()
        cls.addClassCleanup(patcher.stop)

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


class QtcButtonMixin:
    """For an ``HttpCase``: press buttons as the web client does and check
    what a refused one shows the person."""

    def press_button(self, records, method, *args, login=None):
        """Call ``method`` on ``records`` as the web client's button does
        (``/web/dataset/call_button``), as ``login`` (password = login).

        :returns: ``(error, result)`` of the JSON-RPC answer; ``error`` is what
            the web client turns into its dialog, ``None`` on success
        """
        if login:
            self.authenticate(login, login)
        if getattr(responses.mock, "_patcher", None) is not None:
            # The test mocks remote systems; the button goes to the test server.
            responses.add_passthru(self.base_url())
        response = self.url_open(
            f"/web/dataset/call_button/{records._name}/{method}",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "id": 1,
                    "params": {
                        "model": records._name,
                        "method": method,
                        "args": [records.ids, *args],
                        "kwargs": {},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200, response.text[:300])
        answer = response.json()
        return answer.get("error"), answer.get("result")

    def assert_person_error(self, error, problems=(), action=None):
        """``error`` (a JSON-RPC error) opens the web client's warning dialog
        and its text names the message, each of ``problems`` and ``action``.

        :returns: the dialog's text
        """
        self.assertTrue(error, "the button should have been refused")
        data = error["data"]
        shown_as = data["name"]
        if shown_as not in WARNING_DIALOG_ERRORS:
            # A subclass: the web client reads the class to show it as.
            shown_as = (data.get("context") or {}).get("exception_class")
        self.assertIn(shown_as, WARNING_DIALOG_ERRORS, data["name"])
        # The warning dialog shows the first argument (data.message otherwise).
        text = data["arguments"][0]
        self.assertEqual(text, data["message"])
        for problem in problems:
            self.assertIn(problem, text)
        if action:
            self.assertIn(action, text)
        if problems or action:
            self.assertIn("\n\n", text, "message, problems and action apart")
        return text


class QtcHttpCase(QtcButtonMixin, QtcTestMixin, HttpCase):
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


SCREENSHOT_SIGNAL = "qtc-screenshot:"


class QtcTourCase(HttpCase):
    """Browser tests: an Odoo tour run in headless Chromium.

    ``run_tour(url, tour, login)`` starts the tour; each ``screenshotSteps(name)``
    of the tour (``static/tests/tours/qtc_tour_utils.js``) saves the page as
    ``<screenshots>/tours/<tour>/<nn>-<name>.png``, where ``<screenshots>`` is
    Odoo's ``--screenshots`` directory (the test command passes
    ``.qtc/screenshots``). Without a Chrome or Chromium binary the tour is
    skipped, unless ``QTC_REQUIRE_BROWSER`` is set (the test command sets it
    after installing Chromium): then it fails.
    """

    def run_tour(self, url, tour, login, **kwargs):
        """Run ``tour`` from ``url`` as ``login``.

        :returns: the screenshots saved, in order (``Path``)
        """
        try:
            _find_executable()
            if odoo_test_common.websocket is None:
                raise unittest.SkipTest(
                    "the Python package websocket-client is missing"
                )
        except unittest.SkipTest as skip:
            if os.environ.get("QTC_REQUIRE_BROWSER"):
                self.fail(f"no browser for the tours: {skip}")
            raise
        folder = Path(config["screenshots"]) / "tours" / tour
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        saved = []
        original = ChromeBrowser._handle_console

        def handle_console(browser, type, args=None, stackTrace=None, **kw):
            text = (args or [{}])[0].get("value")
            if isinstance(text, str) and text.startswith(SCREENSHOT_SIGNAL):
                name = re.sub(r"[^\w-]", "_", text[len(SCREENSHOT_SIGNAL) :])
                path = folder / f"{len(saved) + 1:02d}-{name}.png"
                saved.append(path)
                capture = browser._websocket_send(
                    "Page.captureScreenshot", with_future=True
                )

                def save(future):
                    path.write_bytes(base64.b64decode(future.result()["data"]))
                    # The tour waits for this mark before its next step.
                    browser._websocket_send(
                        "Runtime.evaluate",
                        params={
                            "expression": "document.body.dataset.qtcScreenshot = "
                            + json.dumps(text[len(SCREENSHOT_SIGNAL) :])
                        },
                    )

                capture.add_done_callback(save)
            return original(browser, type, args=args, stackTrace=stackTrace, **kw)

        with patch.object(ChromeBrowser, "_handle_console", handle_console):
            self.start_tour(url, tour, login=login, **kwargs)
        return saved
