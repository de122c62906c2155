"""Shared set-up for the base's Odoo tests and for every connector's tests."""

import contextlib
import json
import time
from unittest.mock import patch

import responses

from odoo.tests import HttpCase, TransactionCase
from odoo.tests.common import _super_send

from ..lib import signature

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
        duration (a job target with chosen behaviour)."""
        return patch.object(type(model), name, func, create=True)


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
