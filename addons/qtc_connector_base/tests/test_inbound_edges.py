"""The generic webhook route at its edges, over real HTTP: one answer for every
unauthenticated failure, the body cap applied before anything is read (chunked
and form bodies too), sender networks checked first."""

import json
import time
from unittest.mock import patch
from urllib.parse import urlsplit

from odoo import tools
from odoo.tests import tagged

from ..lib import signature
from . import http_probe
from .common import TEST_SECRET, QtcHttpCase

FORM = "application/x-www-form-urlencoded"


@tagged("post_install", "-at_install")
class TestInboundEdges(QtcHttpCase):
    def setUp(self):
        super().setUp()
        self.path = f"/qtc/webhook/{self.backend.id}"
        self.Event = self.env["qtc.event"]
        self.ceiling = self.env["qtc.backend"]._qtc_inbound_ceiling(None)
        url = urlsplit(self.base_url())
        self.host, self.port = url.hostname, url.port

    def probe(self, path, total, **kwargs):
        return http_probe.send_body(self.host, self.port, path, total, **kwargs)

    def unknown_id(self):
        self.env.cr.execute("SELECT COALESCE(max(id), 0) + 1000 FROM qtc_backend")
        return self.env.cr.fetchone()[0]

    def answer(self, response):
        return (
            response.status_code,
            response.headers.get("Content-Type"),
            response.content,
        )

    # -------------------------------------------------------- enumeration

    def test_every_unauthenticated_failure_gets_the_same_answer(self):
        payload = {"id": "evt_probe", "type": "x"}
        body = json.dumps(payload).encode()
        draft = self._qtc_make_backend(name="Draft", state="draft")
        disabled = self._qtc_make_backend(name="Disabled", state="disabled")
        archived = self._qtc_make_backend(name="Archived")
        archived.active = False
        no_secret = self.env["qtc.backend"].create(
            {"name": "No secret", "state": "active"}
        )
        probes = {
            "unknown id": self.post_signed(
                f"/qtc/webhook/{self.unknown_id()}", payload
            ),
            "id past the integer range": self.post_signed(
                f"/qtc/webhook/{2**31}", payload
            ),
            "draft": self.post_signed(f"/qtc/webhook/{draft.id}", payload),
            "disabled": self.post_signed(f"/qtc/webhook/{disabled.id}", payload),
            "archived": self.post_signed(f"/qtc/webhook/{archived.id}", payload),
            "no secret": self.post_signed(f"/qtc/webhook/{no_secret.id}", payload),
            "bad signature": self.post_signed(self.path, payload, secrets="nope"),
            "expired signature": self.post_signed(
                self.path, payload, timestamp=int(time.time()) - 3600
            ),
            "missing signature": self.url_open(
                self.path, data=body, headers={"Content-Type": "application/json"}
            ),
            "garbled signature": self.url_open(
                self.path, data=body, headers={signature.HEADER: "t=x,v1=zz"}
            ),
        }
        answers = {name: self.answer(r) for name, r in probes.items()}
        expected = answers["unknown id"]
        self.assertEqual(expected[0], 401)
        self.assertEqual(
            json.loads(expected[2]), {"error": "invalid signature or unknown backend"}
        )
        for name, answer in answers.items():
            self.assertEqual(answer, expected, f"{name} answers like an unknown id")
        self.assertFalse(self.Event.search([("external_id", "=", "evt_probe")]))

    def test_too_large_before_authentication_is_the_same_for_every_id(self):
        over = self.ceiling + 1
        for path in (self.path, f"/qtc/webhook/{self.unknown_id()}"):
            declared = self.probe(path, over, headers={"Content-Type": FORM})
            chunked = self.probe(path, over, chunked=True)
            self.assertEqual(declared.status, 413, path)
            self.assertEqual(chunked.status, 413, path)
            self.assertEqual(declared.body, chunked.body)
        first = self.probe(self.path, over)
        second = self.probe(f"/qtc/webhook/{self.unknown_id()}", over)
        self.assertEqual((first.status, first.body), (second.status, second.body))
        self.assertEqual(
            json.loads(first.body), {"error": "body exceeds the size limit"}
        )

    def test_malformed_but_authenticated_answer_needs_the_secret(self):
        # A 400 only comes after a valid signature: without the secret every
        # id, existing or not, gets the one refusal.
        body = b'{"id": "evt_bad", "type": '
        self.assertEqual(self.post_signed(self.path, body).status_code, 400)
        other = self.post_signed(f"/qtc/webhook/{self.unknown_id()}", body)
        forged = self.post_signed(self.path, body, secrets="not-the-secret")
        self.assertEqual(self.answer(other), self.answer(forged))
        self.assertEqual(other.status_code, 401)

    # ------------------------------------------------------ caps before reading

    def test_declared_oversized_body_is_refused_without_reading_it(self):
        # The body is 32 times the cap; the answer comes before it is sent.
        total = self.ceiling * 32
        for content_type in ("application/json", FORM, "multipart/form-data; b=x"):
            probe = self.probe(self.path, total, headers={"Content-Type": content_type})
            self.assertEqual(probe.status, 413, content_type)
            self.assertFalse(probe.finished_sending)
            self.assertLess(probe.sent, self.ceiling, "the server read none of it")

    def test_chunked_oversized_body_is_refused_after_the_cap(self):
        total = self.ceiling * 32
        for content_type in ("application/json", FORM):
            probe = self.probe(
                self.path,
                total,
                chunked=True,
                headers={"Content-Type": content_type},
            )
            self.assertEqual(probe.status, 413, content_type)
            self.assertFalse(probe.finished_sending)
            # What went out before the answer: the cap, plus what the two
            # kernels' socket buffers held on the way (a few MiB at most).
            self.assertLess(probe.sent, self.ceiling + 8 * 1024 * 1024)
        self.assertFalse(self.Event.search([("backend_id", "=", self.backend.id)]))

    def test_form_body_under_the_cap_is_refused_unparsed_for_every_id(self):
        # Odoo parses form bodies before a controller runs unless prevented:
        # the webhook reads the raw body itself and refuses the form type.
        body = json.dumps({"id": "evt_form", "type": "x"}).encode()
        headers = {"Content-Type": FORM, signature.HEADER: self.sign(body)}
        known = self.url_open(self.path, data=body, headers=headers)
        unknown = self.url_open(
            f"/qtc/webhook/{self.unknown_id()}", data=body, headers=headers
        )
        self.assertEqual(known.status_code, 415)
        self.assertEqual(self.answer(known), self.answer(unknown))
        self.assertFalse(self.Event.search([("external_id", "=", "evt_form")]))

    def test_chunked_body_under_the_cap_is_accepted(self):
        body = json.dumps({"id": "evt_chunked", "type": "x"}).encode()
        response = self.url_open(
            self.path,
            data=iter([body[:10], body[10:]]),
            headers={signature.HEADER: self.sign(body)},
        )
        self.assertEqual(response.status_code, 200)

    def test_get_routes_refuse_a_form_body(self):
        # Odoo parses a form body of any request before the handler, up to its
        # 128 MiB default; the public GET routes take 1 KiB at most: a declared
        # body over it is refused unread, a chunked one is read no further
        # (the handler then answers as to a request without a token).
        for chunked, expected in ((False, 413), (True, 401)):
            probe = self.probe(
                "/qtc/health",
                8 * 1024 * 1024,
                chunked=chunked,
                method="GET",
                headers={"Content-Type": FORM},
            )
            self.assertEqual(probe.status, expected, f"chunked={chunked}")
            self.assertFalse(probe.finished_sending)
            self.assertLess(probe.sent, 4 * 1024 * 1024)

    # ------------------------------------------------------- sender networks

    def test_sender_outside_the_networks_is_refused_before_reading(self):
        self.backend.sender_networks = "203.0.113.0/24\n2001:db8::/32"
        payload = {"id": "evt_outside", "type": "x"}
        refused = self.post_signed(self.path, payload)
        unknown = self.post_signed(f"/qtc/webhook/{self.unknown_id()}", payload)
        self.assertEqual(self.answer(refused), self.answer(unknown))
        self.assertFalse(self.Event.search([("external_id", "=", "evt_outside")]))
        # A body below the cap but far larger than socket buffers: the answer
        # arrives while it is still being sent.
        probe = self.probe(self.path, self.ceiling - 1, chunked=True)
        self.assertEqual(probe.status, 401)
        self.assertFalse(probe.finished_sending)

    def test_sender_inside_the_networks_is_accepted(self):
        self.backend.sender_networks = "203.0.113.0/24, 127.0.0.0/8"
        response = self.post_signed(self.path, {"id": "evt_inside", "type": "x"})
        self.assertEqual(response.status_code, 200)

    def test_behind_a_proxy_the_forwarded_address_is_checked(self):
        self.backend.sender_networks = "203.0.113.0/24"
        forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "erp.test"}
        payload = {"id": "evt_proxied", "type": "x"}
        # Without proxy_mode the forwarded header is a claim anybody can make:
        # the socket's address (here 127.0.0.1) is what counts.
        self.assertEqual(
            self.post_signed(self.path, payload, headers=forwarded).status_code, 401
        )
        with patch.dict(tools.config.options, {"proxy_mode": True}):
            response = self.post_signed(self.path, payload, headers=forwarded)
            self.assertEqual(response.status_code, 200)
            outside = {**forwarded, "X-Forwarded-For": "198.51.100.1"}
            response = self.post_signed(
                self.path, {"id": "evt_proxied_2", "type": "x"}, headers=outside
            )
            self.assertEqual(response.status_code, 401)

    def test_sender_networks_are_validated(self):
        from odoo.exceptions import ValidationError

        with self.assertRaises(ValidationError) as caught:
            self.backend.sender_networks = "203.0.113.0/24\nnot-a-network"
        self.assertIn("not-a-network", str(caught.exception))

    def test_signed_request_still_works_with_the_secret(self):
        response = self.post_signed(
            self.path, {"id": "evt_ok", "type": "x"}, secrets=TEST_SECRET
        )
        self.assertEqual(response.status_code, 200)
