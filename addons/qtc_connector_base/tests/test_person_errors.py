"""Business errors a person's action hits name every problem and what to do.

The base's share of the business error paths reachable from buttons (each
connector tests its own in its ``test_person_errors.py``):

- any button or web client call that lets a ``BusinessError``, ``ConfigError``
  or ``RetryableError`` escape (the web client's door converts it);
- *Test connection* of a backend whose test reads a missing secret;
- *Dry run* of the replay wizard on an event whose handler refuses it;
- the exception a failed job opens (details and suggested action filled).
"""

import json

from odoo.tests import new_test_user, tagged

from ..exceptions import (
    KeyConfigError,
    QtcUserError,
    RetryableError,
    default_suggested_action,
)
from ..lib.errors import BusinessError
from ..models.qtc_backend import InboundEvent
from .common import QtcHttpCase

PROBLEMS = [
    "product: code CONSULT-X is not mapped to a product",
    "pricelist: no pricelist in EUR",
]
ACTION = "Map CONSULT-X in Value maps, then Retry."


def refuse_with(error):
    def button(self):
        raise error

    return button


def handler_refusing(backend, event):
    raise BusinessError(
        "Order of opportunity 006X cannot be applied.",
        category="mapping",
        problems=PROBLEMS,
    )


@tagged("post_install", "-at_install")
class TestPersonErrors(QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env,
            "qtc_pe_manager",
            groups="base.group_user,qtc_connector_base.group_qtc_manager",
        )
        cls.finance = new_test_user(
            cls.env,
            "qtc_pe_finance",
            groups="base.group_user,qtc_connector_base.group_qtc_user",
        )

    def press_refusing(self, error, login="qtc_pe_manager"):
        """Press a backend button that raises ``error``."""
        backends = self.env["qtc.backend"]
        with self.patch_model_method(
            backends, "action_qtc_test_refuse", refuse_with(error)
        ):
            return self.press_button(
                self.backend, "action_qtc_test_refuse", login=login
            )

    def test_business_error_from_a_button_names_problems_and_action(self):
        error, result = self.press_refusing(
            BusinessError(
                "Order of opportunity 006X cannot be applied.",
                category="mapping",
                problems=PROBLEMS,
                suggested_action=ACTION,
            )
        )
        self.assertIsNone(result)
        text = self.assert_person_error(error, PROBLEMS, ACTION)
        self.assertTrue(text.startswith("Order of opportunity 006X cannot be applied."))
        self.assertIn("Problems:\n- product: code CONSULT-X", text)
        self.assertIn("What to do: " + ACTION, text)
        self.assertNotIn("Traceback", text)

    def test_error_without_action_gets_its_category_action(self):
        error, _result = self.press_refusing(
            BusinessError(
                "Customer cus_42 is unknown.",
                category="unknown_customer",
                problems=["customer: cus_42 is bound to no Odoo customer"],
            ),
            login="qtc_pe_finance",
        )
        self.assert_person_error(
            error,
            ["customer: cus_42 is bound to no Odoo customer"],
            default_suggested_action("unknown_customer"),
        )

    def test_raised_for_a_person_is_shown_as_raised(self):
        error, _result = self.press_refusing(
            QtcUserError(
                "Invoice INV/1 cannot be quoted.",
                category="tax",
                problems=PROBLEMS,
                suggested_action=ACTION,
            )
        )
        self.assertEqual(
            error["data"]["name"],
            "odoo.addons.qtc_connector_base.exceptions.QtcUserError",
        )
        self.assert_person_error(error, PROBLEMS, ACTION)

    def test_configuration_and_transient_errors_are_warnings(self):
        error, _result = self.press_refusing(
            KeyConfigError("No credential encryption key is configured.")
        )
        self.assert_person_error(
            error,
            ["No credential encryption key is configured."],
            "An administrator must correct the server configuration",
        )
        error, _result = self.press_refusing(
            RetryableError("GET https://api.example.com/v1 answered 503")
        )
        text = self.assert_person_error(error, action="try again in a few minutes")
        self.assertIn("answered 503", text)

    def test_orm_calls_of_the_web_client_are_converted_too(self):
        self.authenticate("qtc_pe_manager", "qtc_pe_manager")
        with self.patch_model_method(
            self.env["qtc.backend"],
            "qtc_test_lookup",
            refuse_with(BusinessError("Lookup refused.", problems=PROBLEMS)),
        ):
            answer = self.make_jsonrpc_request_raw(
                "/web/dataset/call_kw/qtc.backend/qtc_test_lookup",
                {
                    "model": "qtc.backend",
                    "method": "qtc_test_lookup",
                    "args": [self.backend.ids],
                    "kwargs": {},
                },
            )
        self.assert_person_error(
            answer["error"], PROBLEMS, default_suggested_action("data")
        )

    def make_jsonrpc_request_raw(self, route, params):
        response = self.url_open(
            route,
            data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}),
            headers={"Content-Type": "application/json"},
        )
        return response.json()

    def test_connection_test_notification_says_what_to_do(self):
        def test_reading_a_missing_secret(self):
            self._qtc_get_secret("api_key")

        with self.patch_model_method(
            self.env["qtc.backend"],
            "_qtc_test_connection",
            test_reading_a_missing_secret,
        ):
            error, action = self.press_button(
                self.backend, "action_test_connection", login="qtc_pe_manager"
            )
        self.assertIsNone(error)
        params = action["params"]
        self.assertEqual(params["type"], "danger")
        self.assertIn("has no api_key configured", params["message"])
        self.assertIn("What to do: Enter it on the backend form", params["message"])

    def _failed_event(self):
        stored = self.backend._qtc_store_events(
            [InboundEvent("evt_pe_1", "order.created", json.dumps({"id": "006X"}))]
        )
        event = self.env["qtc.event"].browse(stored["evt_pe_1"])
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_refusing
        ):
            self.run_jobs()
        event.invalidate_recordset()
        return event

    def test_failed_job_exception_has_details_and_action(self):
        event = self._failed_event()
        exception = event.exception_ids
        self.assertEqual(len(exception), 1)
        self.assertEqual(exception.name, "Order of opportunity 006X cannot be applied.")
        self.assertEqual(exception.details, "\n".join(f"- {p}" for p in PROBLEMS))
        self.assertEqual(
            exception.suggested_action, default_suggested_action("mapping")
        )

    def test_dry_run_shows_problems_and_action(self):
        event = self._failed_event()
        exception = event.exception_ids
        wizard = (
            self.env["qtc.exception.replay"]
            .with_user(self.finance)
            .create({"exception_id": exception.id, "payload": event.payload})
        )
        with self.patch_model_method(
            self.env["qtc.backend"], "_qtc_handle_event", handler_refusing
        ):
            wizard.action_dry_run()
        result = wizard.dry_run_result
        self.assertIn("It would fail: Order of opportunity 006X", result)
        for problem in PROBLEMS:
            self.assertIn(problem, result)
        self.assertIn(default_suggested_action("mapping"), result)
