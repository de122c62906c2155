import os
from contextlib import contextmanager
from unittest.mock import patch

import psycopg2
import requests
import responses
from cryptography.fernet import Fernet

from odoo import tools
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..exceptions import (
    BusinessError,
    KeyConfigError,
    RetryableError,
    UndecryptableSecret,
)
from ..lib.secretbox import MisplacedSecret
from .common import TEST_SECRET, QtcCase, captured_logs

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@contextmanager
def encryption_key(value):
    """Run with ``value`` as the only configured key (config option cleared)."""
    with (
        patch.dict(os.environ, {"QTC_ENCRYPTION_KEY": value}),
        patch.dict(tools.config.options, {"qtc_encryption_key": ""}),
    ):
        yield


@tagged("post_install", "-at_install")
class TestBackendCredentials(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance = new_test_user(
            cls.env, "qtc_finance", groups="qtc_connector_base.group_qtc_user"
        )
        cls.admin = new_test_user(
            cls.env, "qtc_admin", groups="qtc_connector_base.group_qtc_manager"
        )

    def _credential(self, key):
        return self.env["qtc.credential"].search(
            [("backend_id", "=", self.backend.id), ("key", "=", key)]
        )

    def test_secret_is_encrypted_at_rest_and_write_only(self):
        self.backend.with_user(self.admin).webhook_secret = "whsec_typed_in_form"
        stored = self._credential("webhook_secret")
        self.assertNotIn("whsec_typed_in_form", stored.ciphertext)
        self.assertEqual(
            self.backend._qtc_get_secret("webhook_secret"), "whsec_typed_in_form"
        )
        self.backend.invalidate_recordset()
        self.assertFalse(self.backend.with_user(self.admin).webhook_secret)
        self.assertIn("Webhook signing secret: set", self.backend.secrets_summary)
        self.cr.execute("SELECT * FROM qtc_credential")
        self.assertNotIn("whsec_typed_in_form", repr(self.cr.fetchall()))

    def test_finance_user_cannot_read_credentials(self):
        with self.assertRaises(AccessError):
            self.env["qtc.credential"].with_user(self.finance).search([])
        backend = self.backend.with_user(self.finance)
        self.assertEqual(backend.name, "Test backend", "the backend itself is readable")
        with self.assertRaises(AccessError):
            backend.read(["webhook_secret"])
        with self.assertRaises(AccessError):
            backend.write({"webhook_secret": "x"})

    def test_missing_key_fails_closed(self):
        with encryption_key(""), self.assertRaises(KeyConfigError) as caught:
            self.backend._qtc_set_secret("api_key", "sk_test_plain")
        self.assertIn("qtc_encryption_key", str(caught.exception))
        self.assertFalse(
            self._credential("api_key"), "nothing stored, not even plaintext"
        )
        with encryption_key(""), self.assertRaises(KeyConfigError):
            self.backend._qtc_get_secret("webhook_secret")

    def test_invalid_key_is_reported_without_echoing_it(self):
        with (
            encryption_key("not-a-fernet-key-at-all"),
            self.assertRaises(KeyConfigError) as caught,
        ):
            self.backend._qtc_set_secret("api_key", "sk_test_plain")
        self.assertNotIn("not-a-fernet-key-at-all", str(caught.exception))

    def test_wrong_key_fails_closed_with_a_clear_error(self):
        with encryption_key(KEY_A):
            self.backend._qtc_set_secret("api_key", "sk_test_plain")
        with encryption_key(KEY_B), self.assertRaises(UndecryptableSecret) as caught:
            self.backend._qtc_get_secret("api_key")
        message = str(caught.exception)
        self.assertIn("api_key", message)
        self.assertNotIn("sk_test_plain", message)

    def test_key_rotation_loses_nothing(self):
        self.env["qtc.credential"].search([]).unlink()  # only KEY_A secrets below
        with encryption_key(KEY_A):
            self.backend._qtc_set_secret("api_key", "sk_test_plain")
        with encryption_key(f"{KEY_B},{KEY_A}"):
            self.assertEqual(self.backend._qtc_get_secret("api_key"), "sk_test_plain")
            rotated = self.env["qtc.credential"]._qtc_rotate_encryption()
        self.assertGreaterEqual(rotated, 1)
        with encryption_key(KEY_B):
            self.assertEqual(self.backend._qtc_get_secret("api_key"), "sk_test_plain")
        with encryption_key(KEY_A), self.assertRaises(UndecryptableSecret):
            self.backend._qtc_get_secret("api_key")

    def test_rotation_fails_closed_on_a_secret_no_key_opens(self):
        with encryption_key(KEY_A):
            self.backend._qtc_set_secret("api_key", "sk_test_plain")
        before = self._credential("api_key").ciphertext
        with encryption_key(KEY_B), self.assertRaises(UndecryptableSecret):
            self.env["qtc.credential"]._qtc_rotate_encryption()
        self.assertEqual(self._credential("api_key").ciphertext, before)

    def test_ciphertext_copied_to_another_backend_or_name_is_refused(self):
        # A manager may write the credential table: copying a ciphertext into
        # another row must not make Odoo open the secret there.
        other = self._qtc_make_backend(name="Other backend")
        self.backend._qtc_set_secret("api_key", "sk_live_the_target_secret")
        source = self._credential("api_key")
        target = self.env["qtc.credential"].search(
            [("backend_id", "=", other.id), ("key", "=", "webhook_secret")]
        )
        target.with_user(self.admin).ciphertext = source.ciphertext
        self.env.registry.clear_cache()
        with self.assertRaises(MisplacedSecret) as caught:
            other._qtc_get_secret("webhook_secret")
        message = str(caught.exception)
        self.assertIn("webhook_secret of backend Other backend", message)
        self.assertIn("copied from another credential", message)
        self.assertNotIn("sk_live_the_target_secret", message)
        self.assertNotIn("sk_live_the_target_secret", other._qtc_known_secrets())
        # Same backend, another name.
        self.env["qtc.credential"].with_user(self.admin).create(
            {
                "backend_id": self.backend.id,
                "key": "other_api_key",
                "ciphertext": source.ciphertext,
            }
        )
        with self.assertRaises(MisplacedSecret):
            self.backend._qtc_get_secret("other_api_key")
        self.assertEqual(
            self.backend._qtc_get_secret("api_key"), "sk_live_the_target_secret"
        )

    def test_previous_webhook_secret_is_rebound_to_its_new_name(self):
        self.backend._qtc_set_secret("webhook_secret", "whsec_next_value_0001")
        previous = self._credential("webhook_secret_previous")
        self.assertEqual(
            self.backend._qtc_get_secret("webhook_secret_previous"), TEST_SECRET
        )
        # Renaming a row by hand (without re-encrypting) does not work.
        previous.key = "webhook_secret_stolen"
        with self.assertRaises(MisplacedSecret):
            self.backend._qtc_get_secret("webhook_secret_stolen")

    def test_unreadable_current_secret_is_replaced_not_kept(self):
        self._credential(
            "webhook_secret"
        ).ciphertext = "qtc2:000000000000:AAAAAAAAAAAAAAAAAAAA"
        self.backend._qtc_set_secret("webhook_secret", "whsec_fresh_value_0002")
        self.assertFalse(self._credential("webhook_secret_previous"))
        self.assertEqual(
            self.backend._qtc_webhook_secrets(), ["whsec_fresh_value_0002"]
        )

    def test_upgrade_rebinds_unbound_credentials(self):
        self.env["qtc.credential"].search([]).unlink()
        fernet = Fernet(KEY_A)
        with encryption_key(f"{KEY_B},{KEY_A}"):
            credentials = self.env["qtc.credential"].create(
                [
                    {
                        "backend_id": self.backend.id,
                        "key": "api_key",
                        "ciphertext": fernet.encrypt(b"sk_old_format_1").decode(),
                    },
                    {
                        "backend_id": self.backend.id,
                        "key": "lost_key",
                        "ciphertext": Fernet(Fernet.generate_key())
                        .encrypt(b"nobody-can-open")
                        .decode(),
                    },
                ]
            )
            with self.assertRaises(UndecryptableSecret) as caught:
                self.backend._qtc_get_secret("api_key")
            self.assertIn("odoo -u qtc_connector_base", str(caught.exception))
            migrate = self._migration()
            with captured_logs() as lines:
                migrate(self.env.cr, "18.0.1.1.0")
            self.assertTrue(credentials[0].ciphertext.startswith("qtc2:"))
            self.assertEqual(self.backend._qtc_get_secret("api_key"), "sk_old_format_1")
            self.assertTrue(credentials[1].ciphertext.startswith("gAAAAA"), "left")
            self.assertTrue([line for line in lines if "lost_key" in line])
            self.assertEqual(
                self.env["qtc.credential"]._qtc_bind_unbound(),
                (0, ["lost_key of backend Test backend"]),
            )
        with encryption_key(""), self.assertRaises(KeyConfigError):
            self.env["qtc.credential"]._qtc_bind_unbound()

    def _migration(self):
        import importlib.util

        from odoo.modules import get_module_path

        path = (
            f"{get_module_path('qtc_connector_base')}/migrations/18.0.1.2.0/"
            "post-migrate.py"
        )
        spec = importlib.util.spec_from_file_location("qtc_base_post_migrate", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.migrate

    def test_missing_secret_is_a_configuration_error(self):
        with self.assertRaises(BusinessError) as caught:
            self.backend._qtc_get_secret("api_key")
        self.assertEqual(caught.exception.category, "configuration")
        self.assertIsNone(self.backend._qtc_get_secret("api_key", required=False))

    def test_new_webhook_secret_keeps_previous_for_the_window(self):
        self.backend._qtc_set_secret("webhook_secret", "whsec_second")
        self.assertEqual(
            self.backend._qtc_webhook_secrets(), ["whsec_second", TEST_SECRET]
        )
        self.backend.action_end_secret_rotation()
        self.assertEqual(self.backend._qtc_webhook_secrets(), ["whsec_second"])

    def test_test_connection_reports_in_chatter(self):
        action = self.backend.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("Connection test", self.backend.message_ids[0].body)

    def test_retention_cannot_be_shorter_than_redelivery_windows(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.IntegrityError):
            with self.cr.savepoint():
                self.backend.write({"event_retention_days": 3})

    @responses.activate
    def test_outbound_request_redacts_secrets_and_classifies_failures(self):
        self.backend._qtc_set_secret("api_key", "sk_live_do_not_log_me")
        url = "https://api.example.test/v1/things"
        responses.add(responses.GET, url, json={"ok": True})
        responses.add(
            responses.POST,
            url,
            status=400,
            body='{"error": "bad key sk_live_do_not_log_me"}',
        )
        responses.add(responses.PUT, url, status=503, headers={"Retry-After": "12"})
        responses.add(responses.PATCH, url, body=requests.Timeout())
        backend = self.backend.with_context(qtc_correlation_id="corr-xyz")
        with captured_logs() as lines:
            self.assertEqual(backend._qtc_request("GET", url).json(), {"ok": True})
            with self.assertRaises(BusinessError) as rejected:
                backend._qtc_request("POST", url, json={})
            with self.assertRaises(RetryableError) as unavailable:
                backend._qtc_request("PUT", url)
            with self.assertRaises(RetryableError):
                backend._qtc_request("PATCH", url)
        self.assertEqual(
            responses.calls[0].request.headers["X-Correlation-Id"], "corr-xyz"
        )
        self.assertEqual(unavailable.exception.delay, 12.0)
        self.assertEqual(rejected.exception.status, 400)
        self.assertNotIn("sk_live_do_not_log_me", rejected.exception.body_excerpt)
        self.assertIn("***", rejected.exception.body_excerpt)
        self.assertFalse([line for line in lines if "sk_live_do_not_log_me" in line])
