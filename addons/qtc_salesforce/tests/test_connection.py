import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs

import responses

from odoo import fields
from odoo.addons.qtc_connector_base.exceptions import (
    BusinessError,
    RetryableError,
    UndecryptableSecret,
)
from odoo.addons.qtc_connector_base.lib.destinations import OutboundRefused
from odoo.exceptions import ValidationError
from odoo.tests import new_test_user, tagged

from .common import API, INSTANCE, TOKEN_URL, SalesforceCase

LIMITS = {"DailyApiRequests": {"Max": 15000, "Remaining": 14975}}


@tagged("post_install", "-at_install")
class TestConnection(SalesforceCase):
    def token_calls(self):
        return [c for c in responses.calls if c.request.url == TOKEN_URL]

    @responses.activate
    def test_connection_reports_remaining_daily_requests(self):
        self.mock_token("00Dtoken-A")
        responses.get(
            f"{API}/limits",
            json=LIMITS,
            headers={"Sforce-Limit-Info": "api-usage=25/15000"},
        )
        message = self.backend._qtc_test_connection()
        self.assertEqual(
            message,
            f"Connected to {INSTANCE}: 14975 of 15000 daily API requests remaining.",
        )
        form = parse_qs(self.token_calls()[0].request.body)
        self.assertEqual(
            form["grant_type"], ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        )
        claims_part = form["assertion"][0].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(claims_part + "=="))
        self.assertEqual(claims["aud"], "https://test.salesforce.com")
        self.assertEqual(claims["sub"], "integration@acme.example.sandbox")
        self.assertEqual(
            responses.calls[1].request.headers["Authorization"], "Bearer 00Dtoken-A"
        )
        self.assertEqual(self.backend.salesforce_api_used, 25)
        self.assertEqual(self.backend.salesforce_api_max, 15000)

    @responses.activate
    def test_expired_token_is_refreshed_once_then_the_call_succeeds(self):
        handed = self.mock_token("00Dtoken-old", "00Dtoken-new")

        def limits(request):
            if request.headers["Authorization"] == "Bearer 00Dtoken-old":
                body = [
                    {
                        "message": "Session expired or invalid",
                        "errorCode": "INVALID_SESSION_ID",
                    }
                ]
                return (401, {}, json.dumps(body))
            return (200, {}, json.dumps(LIMITS))

        responses.add_callback(responses.GET, f"{API}/limits", callback=limits)
        self.backend._salesforce_token()  # cached, then expires at Salesforce
        response = self.backend._salesforce_call("GET", "limits")
        self.assertEqual(response.json(), LIMITS)
        self.assertEqual(handed, ["00Dtoken-old", "00Dtoken-new"])
        # The new token is cached: the next call needs no token request.
        self.backend._salesforce_call("GET", "limits")
        self.assertEqual(len(self.token_calls()), 2)

    @responses.activate
    def test_second_401_is_a_configuration_error_not_a_loop(self):
        self.mock_token("00Dtoken-1", "00Dtoken-2", "00Dtoken-3")
        body = [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        responses.get(f"{API}/limits", json=body, status=401)
        with self.assertRaises(BusinessError) as caught:
            self.backend._salesforce_call("GET", "limits")
        self.assertEqual(caught.exception.category, "configuration")
        self.assertEqual(len(self.token_calls()), 2, "one refresh only")
        limit_calls = [c for c in responses.calls if c.request.url.endswith("/limits")]
        self.assertEqual(len(limit_calls), 2)

    @responses.activate
    def test_refused_credentials_are_a_configuration_error(self):
        responses.post(
            TOKEN_URL,
            status=400,
            json={
                "error": "invalid_grant",
                "error_description": "user hasn't approved this consumer",
            },
        )
        with self.assertRaises(BusinessError) as caught:
            self.backend._salesforce_call("GET", "limits")
        self.assertEqual(caught.exception.category, "configuration")
        self.assertIn(
            "invalid_grant: user hasn't approved this consumer", str(caught.exception)
        )

    def test_missing_private_key_is_a_configuration_error_without_a_call(self):
        self.env["qtc.credential"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("key", "=", "salesforce_private_key"),
            ]
        ).unlink()
        with (
            responses.RequestsMock() as mocked,
            self.assertRaises(BusinessError) as caught,
        ):
            self.backend._salesforce_call("GET", "limits")
        self.assertEqual(caught.exception.category, "configuration")
        self.assertEqual(len(mocked.calls), 0)

    @responses.activate
    def test_request_limit_exceeded_is_retried_later(self):
        self.mock_token()
        body = [
            {
                "message": "TotalRequests Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ]
        responses.get(f"{API}/limits", json=body, status=403)
        with self.assertRaises(RetryableError) as caught:
            self.backend._salesforce_call("GET", "limits")
        self.assertEqual(caught.exception.delay, 1800)
        self.assertIn("REQUEST_LIMIT_EXCEEDED", str(caught.exception))

    @responses.activate
    def test_request_limit_exceeded_in_a_job_leaves_it_pending(self):
        self.mock_token()
        body = [
            {
                "message": "TotalRequests Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ]
        responses.get(f"{API}/query", json=body, status=403)
        job = self.backend._salesforce_enqueue_sweep()
        self.run_jobs()
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.error_kind, "transient")
        self.assertGreater(job.eta, fields.Datetime.now() + timedelta(seconds=1700))

    @responses.activate
    def test_calls_stop_before_the_reserve_is_spent(self):
        self.mock_token()
        responses.get(
            f"{API}/limits",
            json=LIMITS,
            headers={"Sforce-Limit-Info": "api-usage=13500/15000"},
        )
        self.backend._salesforce_call("GET", "limits")
        with self.assertRaises(RetryableError) as caught:
            self.backend._salesforce_call("GET", "limits")
        self.assertEqual(caught.exception.delay, 1800)
        limit_calls = [c for c in responses.calls if c.request.url.endswith("/limits")]
        self.assertEqual(len(limit_calls), 1, "the second call was not made")
        # An old reading no longer blocks: the next call refreshes it.
        self.backend._salesforce_state_write(
            {"salesforce_api_usage_at": fields.Datetime.now() - timedelta(hours=2)}
        )
        self.backend._salesforce_call("GET", "limits")
        self.assertEqual(
            len([c for c in responses.calls if c.request.url.endswith("/limits")]), 2
        )

    @responses.activate
    def test_server_error_is_retryable(self):
        self.mock_token()
        responses.get(f"{API}/limits", status=503, body="Service Unavailable")
        with self.assertRaises(RetryableError):
            self.backend._salesforce_call("GET", "limits")

    @responses.activate
    def test_client_credentials_flow_posts_to_my_domain(self):
        self.backend.salesforce_auth_flow = "client_credentials"
        self.backend._qtc_set_secret("salesforce_client_secret", "cs-secret-value-123")
        responses.post(
            f"{INSTANCE}/services/oauth2/token",
            json={"access_token": "00Dcc", "instance_url": INSTANCE},
        )
        responses.get(f"{API}/limits", json=LIMITS)
        self.backend._salesforce_call("GET", "limits")
        form = parse_qs(responses.calls[0].request.body)
        self.assertEqual(form["grant_type"], ["client_credentials"])
        self.assertEqual(form["client_id"], ["3MVG9-test-consumer-key"])

    def test_settings_are_validated(self):
        for values in (
            {"salesforce_api_version": "61"},
            {"salesforce_org_id": "00D12345"},
            {"salesforce_opportunity_filter": "IsWon = true OR Amount > 5"},
            {"salesforce_order_field": "Odoo Order"},
            {"salesforce_instance_url": "http://acme.my.salesforce.com"},
        ):
            with self.subTest(values=values), self.assertRaises(ValidationError):
                with self.env.cr.savepoint():
                    self.backend.write(values)

    def test_instance_url_must_be_a_salesforce_host(self):
        for url in (
            "https://attacker.example",
            "https://acme.my.salesforce.com.attacker.example",
            "https://127.0.0.1:8443",
            "https://10.0.0.5",
        ):
            with self.subTest(url=url), self.assertRaises(ValidationError) as caught:
                with self.env.cr.savepoint():
                    self.backend.salesforce_instance_url = url
            message = str(caught.exception)
            self.assertIn("is not a host of Salesforce", message)
            self.assertIn("https://acme.my.salesforce.com", message)
            self.assertIn("qtc_allowed_hosts", message)
        for url in (
            "https://acme.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://na42.salesforce.com",
        ):
            self.backend.salesforce_instance_url = url

    @responses.activate
    def test_a_manager_cannot_make_odoo_send_another_secret_away(self):
        # The attack: copy another credential's ciphertext into the consumer
        # secret row, point the instance URL at one's own host, press Test
        # connection. Each step is refused on its own.
        manager = new_test_user(
            self.env, "sf_manager", groups="qtc_connector_base.group_qtc_manager"
        )
        stripe_like = self._qtc_make_backend(name="Payments")
        stripe_like._qtc_set_secret("api_key", "sk_live_the_crown_jewels_0001")
        backend = self.backend.with_user(manager)
        backend.write(
            {
                "salesforce_auth_flow": "client_credentials",
                "salesforce_client_secret": "x",
            }
        )
        credentials = self.env["qtc.credential"].with_user(manager)
        stolen = credentials.search(
            [("backend_id", "=", stripe_like.id), ("key", "=", "api_key")]
        )
        row = credentials.search(
            [
                ("backend_id", "=", self.backend.id),
                ("key", "=", "salesforce_client_secret"),
            ]
        )
        row.ciphertext = stolen.ciphertext
        with self.assertRaises(ValidationError):
            with self.env.cr.savepoint():
                backend.salesforce_instance_url = "https://collector.attacker.example"
        responses.post(
            "https://collector.attacker.example/services/oauth2/token", json={}
        )
        # Even with the URL forced past the form (SQL), nothing leaves.
        self.env.cr.execute(
            "UPDATE qtc_backend SET salesforce_instance_url = %s WHERE id = %s",
            ("https://collector.attacker.example", self.backend.id),
        )
        self.backend.invalidate_recordset()
        with self.assertRaises(UndecryptableSecret) as caught:
            self.backend._qtc_get_secret("salesforce_client_secret")
        self.assertIn("copied from another credential", str(caught.exception))
        action = backend.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertNotIn("crown_jewels", action["params"]["message"])
        self.assertFalse(responses.calls, "no request reached any host")
        # With a readable secret of its own the foreign host is still refused.
        self.backend._qtc_set_secret("salesforce_client_secret", "cs-own-secret-1")
        with self.assertRaises(OutboundRefused) as refused:
            self.backend._salesforce_fetch_token()
        self.assertIn(
            "collector.attacker.example is not a host of Salesforce",
            str(refused.exception),
        )
        self.assertFalse(responses.calls)

    def test_sweep_warning(self):
        self.assertEqual(
            self.backend.salesforce_sweep_warning, "No delta sync has completed yet."
        )
        self.backend._salesforce_state_write(
            {"salesforce_last_sweep_at": fields.Datetime.now() - timedelta(hours=7)}
        )
        self.backend.invalidate_recordset()
        self.assertIn(
            "7 hours ago (threshold 6 h)", self.backend.salesforce_sweep_warning
        )
        self.backend._salesforce_state_write(
            {"salesforce_last_sweep_at": fields.Datetime.now() - timedelta(hours=1)}
        )
        self.backend.invalidate_recordset()
        self.assertFalse(self.backend.salesforce_sweep_warning)
