"""A backend's outbound requests: internal addresses, https in production,
secrets only to their provider, and what only the server configuration can
allow. Mocked with ``responses``; one real local socket for the check made
at connect time."""

import http.server
import threading
from contextlib import contextmanager
from unittest.mock import patch

import responses

from odoo import tools
from odoo.tests import tagged

from ..exceptions import HttpBusinessError
from ..lib.destinations import OutboundRefused
from .common import TEST_SECRET, QtcCase


@contextmanager
def server_options(**options):
    """Run with these QTC server options (as if in the configuration file)."""
    with patch.dict(tools.config.options, options):
        yield


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *_args):
        pass


@tagged("post_install", "-at_install")
class TestOutboundPolicy(QtcCase):
    @responses.activate
    def test_internal_addresses_are_refused_with_what_to_change(self):
        for url in ("http://127.0.0.1:5432/", "http://169.254.169.254/latest/"):
            responses.post(url, status=200)
            with self.subTest(url=url), self.assertRaises(OutboundRefused) as caught:
                self.backend._qtc_request("POST", url, data=b"{}")
            message = str(caught.exception)
            self.assertIn("Use the system's public https address", message)
            self.assertIn("qtc_allowed_hosts", message)
            self.assertEqual(caught.exception.category, "configuration")
        self.assertFalse(responses.calls, "nothing was sent")

    @responses.activate
    def test_production_backend_sends_nothing_in_clear(self):
        self.backend.environment = "production"
        responses.post("http://partner.example/hook", status=200)
        with self.assertRaises(OutboundRefused) as caught:
            self.backend._qtc_request("POST", "http://partner.example/hook")
        self.assertIn("Use the https:// address", str(caught.exception))
        self.assertFalse(responses.calls)

    @responses.activate
    def test_stored_secret_goes_nowhere_without_provider_hosts(self):
        url = "https://partner.example/hook"
        responses.post(url, status=200)
        self.backend._qtc_request("POST", url, json={"ok": True})
        with self.assertRaises(OutboundRefused) as caught:
            self.backend._qtc_request("POST", url, json={"leak": TEST_SECRET})
        self.assertNotIn(TEST_SECRET, str(caught.exception))
        self.assertEqual(len(responses.calls), 1)

    @responses.activate
    def test_post_is_not_redirected(self):
        url = "https://partner.example/hook"
        responses.post(url, status=307, headers={"Location": "https://x.example/"})
        with self.assertRaises(HttpBusinessError) as caught:
            self.backend._qtc_request("POST", url, data=b"{}")
        self.assertEqual(caught.exception.status, 307)
        self.assertEqual(len(responses.calls), 1)

    def test_server_configuration_allows_what_the_ui_cannot(self):
        url = "http://127.0.0.1:8443/"
        self.assertTrue(self.backend._qtc_outbound_url_problem(url))
        self.assertFalse(
            [f for f in self.backend._fields if "allowed" in f],
            "no backend field can widen the destinations",
        )
        with server_options(qtc_allowed_hosts="127.0.0.1:8443"):
            self.assertIsNone(self.backend._qtc_outbound_url_problem(url))
        with server_options(qtc_allowed_networks="127.0.0.0/8"):
            self.assertIsNone(self.backend._qtc_outbound_url_problem(url))
        with patch.dict("os.environ", {"QTC_ALLOWED_HOSTS": "127.0.0.1:8443"}):
            self.assertIsNone(self.backend._qtc_outbound_url_problem(url))

    def test_unreadable_server_option_names_itself(self):
        with server_options(qtc_allowed_networks="10.0.0.0/33"):
            problem = self.backend._qtc_outbound_url_problem("https://a.example/")
        self.assertIn("qtc_allowed_networks", problem)
        with server_options(qtc_allowed_hosts="http://bad"):
            problem = self.backend._qtc_outbound_url_problem("https://a.example/")
        self.assertIn("qtc_allowed_hosts", problem)

    def test_name_resolving_to_loopback_is_refused_at_connect_time(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        server.hits = 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://localhost:{server.server_address[1]}/"
        # The URL names no address: only the connection can tell.
        self.assertIsNone(self.backend._qtc_outbound_url_problem(url))
        with self.assertRaises(OutboundRefused) as caught:
            self.backend._qtc_request("GET", url)
        self.assertIn(
            "localhost (127.0.0.1) is a loopback address", str(caught.exception)
        )
        self.assertEqual(server.hits, 0)
        with server_options(qtc_allowed_networks="127.0.0.0/8"):
            self.assertEqual(self.backend._qtc_request("GET", url).text, "hello")
        self.assertEqual(server.hits, 1)
