import json
import logging

from odoo.tests import tagged

from ..lib.outbound_message import ack_response
from .common import ORG_ID, OUTBOUND_TOKEN, SalesforceHttpCase, fixture_bytes

SOAP = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
# The one answer to every unauthenticated request (token, org, backend).
REFUSED = "invalid endpoint token or unknown backend"


@tagged("post_install", "-at_install")
class TestOutboundMessage(SalesforceHttpCase):
    def setUp(self):
        super().setUp()
        self.path = f"/qtc/salesforce/{self.backend.id}/outbound/{OUTBOUND_TOKEN}"
        self.body = fixture_bytes("outbound_two_opportunities.xml")

    def post(self, body, path=None):
        return self.url_open(path or self.path, data=body, headers=SOAP)

    def events(self):
        return self.env["qtc.event"].search([("backend_id", "=", self.backend.id)])

    def assert_fault(self, response, status, text):
        self.assertEqual(response.status_code, status)
        self.assertTrue(response.headers["Content-Type"].startswith("text/xml"))
        self.assertIn(b"<faultcode>soapenv:Client</faultcode>", response.content)
        self.assertIn(text.encode(), response.content)
        self.assertNotIn(OUTBOUND_TOKEN.encode(), response.content)

    # ------------------------------------------------------------ refusals

    def test_wrong_token_is_a_fault_and_nothing_is_stored(self):
        path = f"/qtc/salesforce/{self.backend.id}/outbound/{OUTBOUND_TOKEN[:-1]}x"
        response = self.post(self.body, path)
        self.assert_fault(response, 401, REFUSED)
        self.assertFalse(self.events())

    def test_backend_without_token_refuses_everything(self):
        self.env["qtc.credential"].search(
            [("backend_id", "=", self.backend.id)]
        ).filtered(lambda c: c.key == "salesforce_outbound_token").unlink()
        self.env.registry.clear_cache()
        response = self.post(self.body)
        self.assert_fault(response, 401, REFUSED)
        self.assertFalse(self.events())

    def test_other_org_is_a_fault_and_nothing_is_stored(self):
        self.backend.salesforce_org_id = "00D5e000000ZZZZEAG"
        response = self.post(self.body)
        self.assert_fault(response, 401, REFUSED)
        self.assertFalse(self.events(), "not even kept as a malformed event")

    def test_backend_without_org_id_refuses(self):
        self.backend.salesforce_org_id = False
        response = self.post(self.body)
        self.assert_fault(response, 401, REFUSED)
        self.assertFalse(self.events())

    def test_malformed_xml_is_a_400_fault_kept_for_audit(self):
        response = self.post(self.body[:-40])
        self.assert_fault(response, 400, "malformed message: malformed XML")
        event = self.events()
        self.assertEqual(len(event), 1)
        self.assertEqual(event.event_type, "malformed")
        self.assertEqual(event.state, "failed")
        self.assertFalse(event.job_ids, "nothing is processed")

    def test_doctype_is_refused_before_parsing(self):
        attack = (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
        )
        response = self.post(attack)
        self.assert_fault(response, 400, "DOCTYPE and ENTITY declarations")
        self.assertFalse(self.events().filtered(lambda e: e.event_type != "malformed"))
        self.assertFalse(self.events().job_ids)

    def test_oversized_body_is_413(self):
        self.backend.max_body_bytes = 500
        response = self.post(self.body)
        self.assert_fault(response, 413, "body exceeds the size limit")
        self.assertFalse(self.events())

    def test_unknown_inactive_archived_or_other_backend_answers_alike(self):
        # Was 404 for an unknown or inactive backend and a 401 fault for a
        # wrong token: an id could be told to exist. Now one answer for all.
        wrong_token = self.post(
            self.body, f"/qtc/salesforce/{self.backend.id}/outbound/not-the-token"
        )
        other = self.env["qtc.backend"].create(
            {"name": "Not Salesforce", "state": "active"}
        )
        probes = {
            "unknown": self.post(
                self.body, f"/qtc/salesforce/999999/outbound/{OUTBOUND_TOKEN}"
            ),
            "other provider": self.post(
                self.body, f"/qtc/salesforce/{other.id}/outbound/{OUTBOUND_TOKEN}"
            ),
        }
        self.backend.salesforce_org_id = "00D5e000000ZZZZEAG"
        probes["other org"] = self.post(self.body)
        self.backend.salesforce_org_id = ORG_ID
        self.backend.action_disable()
        probes["disabled"] = self.post(self.body)
        self.backend.action_activate()
        self.backend.active = False
        probes["archived"] = self.post(self.body)
        for name, response in probes.items():
            self.assertEqual(response.status_code, 401, name)
            self.assertEqual(response.content, wrong_token.content, name)
            self.assertEqual(
                response.headers["Content-Type"], wrong_token.headers["Content-Type"]
            )
        self.assert_fault(wrong_token, 401, REFUSED)
        self.assertFalse(self.events())

    def test_token_is_masked_in_the_request_log(self):
        # The server's access log line, as Odoo writes it to its log.
        lines = []

        class Keep(logging.Handler):
            def emit(self, record):
                lines.append(self.format(record))

        logger = logging.getLogger("werkzeug")
        handler, level = Keep(), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            self.assertEqual(self.post(self.body).status_code, 200)
            self.post(
                self.body,
                f"/qtc/salesforce/{self.backend.id}/outbound/x{OUTBOUND_TOKEN}",
            )
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        self.assertEqual(len(lines), 2, (lines, logger.disabled, logger.filters))
        text = "\n".join(lines)
        self.assertIn(f"/qtc/salesforce/{self.backend.id}/outbound/***", text)
        self.assertNotIn(OUTBOUND_TOKEN, text)

    def test_generic_webhook_route_cannot_bypass_the_url_token(self):
        # A Salesforce backend has a webhook secret (the base's QtcCase sets
        # one), yet a correctly signed request on the generic route is refused.
        response = self.post_signed(
            f"/qtc/webhook/{self.backend.id}", {"id": "x", "type": "Opportunity"}
        )
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self.events())

    # ------------------------------------------------------------- accepted

    def test_notifications_are_stored_and_acknowledged(self):
        response = self.post(self.body)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, ack_response(True))
        events = self.events().sorted("external_id")
        self.assertEqual(
            events.mapped("external_id"), ["04l5e00000Gx7QzAAJ", "04l5e00000Gx7R0AAJ"]
        )
        self.assertEqual(
            events.mapped("event_type"),
            ["Opportunity.notification", "Opportunity.notification"],
        )
        payload = json.loads(events[0].payload)
        self.assertEqual(payload["attributes"], {"type": "Opportunity"})
        self.assertEqual(payload["Id"], "0065e00000AbCdEAAV")
        self.assertEqual(payload["Name"], "Acme & Co - ERP rollout")
        self.assertEqual(payload["Amount"], "48000.0")
        self.assertIsNone(json.loads(events[1].payload)["Description"])
        self.assertEqual(events.job_ids.mapped("state"), ["pending", "pending"])
        self.assertTrue(all(e.signature_verified for e in events))

    def test_redelivered_notifications_are_acknowledged_once_stored(self):
        self.assertEqual(self.post(self.body).status_code, 200)
        response = self.post(self.body)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, ack_response(True))
        events = self.events()
        self.assertEqual(len(events), 2)
        self.assertEqual(len(events.job_ids), 2)

    def test_fifteen_character_org_id_matches(self):
        self.backend.salesforce_org_id = ORG_ID[:15]
        self.assertEqual(self.post(self.body).status_code, 200)
        self.assertEqual(len(self.events()), 2)
