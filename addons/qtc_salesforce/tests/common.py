"""Shared set-up of the Salesforce tests: a connected sandbox backend, products
for the fixtures' product codes, and helpers that answer like Salesforce."""

import copy
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent
from odoo.addons.qtc_connector_base.tests.common import QtcCase, QtcHttpCase

FIXTURES = Path(__file__).resolve().parent / "fixtures"
INSTANCE = "https://acme.my.salesforce.com"
TOKEN_URL = "https://test.salesforce.com/services/oauth2/token"
API = f"{INSTANCE}/services/data/v61.0"
ORG_ID = "00D5e000000KQ2eEAG"
OUTBOUND_TOKEN = "sfob-3c5e0b7a9d214f6e8a1b2c3d4e5f6a7b"
LIMIT_INFO = "api-usage=25/15000"
EMPTY_PAGE = {"totalSize": 0, "done": True, "records": []}
ACME_OPPORTUNITY = "0065e00000AbCdEAAV"
ACME_ACCOUNT = "0015e00000ZkM3hAAF"
MILESTONE_LINE = "00k5e00000Lm1AAAAZ"


def fixture_json(name):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_bytes(name):
    return (FIXTURES / name).read_bytes()


def acme_record():
    """The first opportunity of the query fixture (account and two lines)."""
    return copy.deepcopy(fixture_json("opportunity_query_page1.json")["records"][0])


def query_page(records, done=True, next_url=None):
    page = {"totalSize": len(records), "done": done, "records": records}
    if next_url:
        page["nextRecordsUrl"] = next_url
    return page


class SalesforceMixin:
    @classmethod
    def _salesforce_setup(cls):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        cls.backend.write(
            {
                "name": "Salesforce test org",
                "provider": "salesforce",
                "environment": "sandbox",
                "salesforce_instance_url": INSTANCE,
                "salesforce_consumer_key": "3MVG9-test-consumer-key",
                "salesforce_username": "integration@acme.example.sandbox",
                "salesforce_org_id": ORG_ID,
                "salesforce_tax_id_field": "VAT_Number__c",
                "salesforce_confirm_orders": True,
                "salesforce_read_schedules": False,
            }
        )
        cls.backend._qtc_set_secret("salesforce_private_key", pem)
        cls.backend._qtc_set_secret("salesforce_outbound_token", OUTBOUND_TOKEN)
        env = cls.env
        for code in ("EUR", "USD"):
            env.ref(f"base.{code}").active = True
        cls.eur = env.ref("base.EUR")
        cls.eur_pricelist = env["product.pricelist"].create(
            {"name": "EUR list", "currency_id": cls.eur.id}
        )
        Product = env["product.product"]
        cls.product_milestones = Product.create(
            {
                "name": "Implementation",
                "default_code": "IMPL-MS",
                "type": "service",
                "invoice_policy": "delivery",
                "service_type": "milestones",
                "service_tracking": "task_in_project",
            }
        )
        cls.product_consulting = Product.create(
            {
                "name": "Consulting",
                "default_code": "CONS-HR",
                "type": "service",
                "invoice_policy": "delivery",
                "service_type": "manual",
                "service_tracking": "no",
            }
        )
        cls.product_support = Product.create(
            {
                "name": "Support",
                "default_code": "SUPPORT-Y",
                "type": "service",
                "invoice_policy": "order",
                "service_tracking": "no",
            }
        )

    def setUp(self):
        super().setUp()
        self.backend._salesforce_forget_token()
        self.addCleanup(self.backend._salesforce_forget_token)

    # ------------------------------------------------------------- mocks

    def mock_token(self, *tokens):
        """Answer the token endpoint with each token in turn (the last one
        repeats). Returns the list of tokens handed out."""
        handed = []
        queue = list(tokens or ("00Dtoken-1",))

        def callback(request):
            token = queue.pop(0) if len(queue) > 1 else queue[0]
            handed.append(token)
            body = {
                "access_token": token,
                "instance_url": INSTANCE,
                "token_type": "Bearer",
                "scope": "api",
                "issued_at": "1775000000000",
                "id": f"https://test.salesforce.com/id/{ORG_ID}/0055e000001AbCdAAK",
            }
            return (200, {}, json.dumps(body))

        responses.add_callback(responses.POST, TOKEN_URL, callback=callback)
        return handed

    def route_queries(self, routes, limit_info=LIMIT_INFO):
        """Answer ``GET .../query`` by the first route whose text is in the SOQL.

        :param routes: ``[(text, body)]`` or ``[(text, (status, body))]``
        :returns: the list of SOQL texts received
        """
        received = []

        def callback(request):
            query = parse_qs(urlsplit(request.url).query).get("q", [""])[0]
            received.append(query)
            for needle, answer in routes:
                if needle in query:
                    status, body = (
                        answer if isinstance(answer, tuple) else (200, answer)
                    )
                    headers = {"Sforce-Limit-Info": limit_info}
                    return (status, headers, json.dumps(body))
            error = [{"errorCode": "MALFORMED_QUERY", "message": query[:80]}]
            return (400, {}, json.dumps(error))

        responses.add_callback(responses.GET, f"{API}/query", callback=callback)
        return received

    # ----------------------------------------------------------- helpers

    def store_sync_event(self, record, suffix=""):
        """Store a record as a sweep would and return the ``qtc.event``."""
        sobject = record["attributes"]["type"]
        external_id = f"sync:{sobject}:{record['Id']}:{record.get('SystemModstamp')}"
        external_id += suffix
        self.backend._qtc_store_events(
            [InboundEvent(external_id, f"{sobject}.sync", json.dumps(record))]
        )
        return self.env["qtc.event"].search(
            [("backend_id", "=", self.backend.id), ("external_id", "=", external_id)]
        )

    def binding(self, external_type, external_id):
        return self.env["qtc.binding"]._qtc_lookup(
            self.backend, external_type, external_id
        )

    def order_of(self, opportunity_id=ACME_OPPORTUNITY):
        return self.env["qtc.binding"]._qtc_to_internal(
            self.backend, "Opportunity", opportunity_id
        )

    def cancel_jobs(self, method_name):
        self.env["qtc.job"].search(
            [("method_name", "=", method_name), ("state", "=", "pending")]
        ).action_cancel()


class SalesforceCase(SalesforceMixin, QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._salesforce_setup()


class SalesforceHttpCase(SalesforceMixin, QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._salesforce_setup()
