"""Shared set-up of the qtc_tax Odoo tests: a US company and customer, an
AvaTax backend, and a fake AvaTax answering AvaTax-shaped JSON through
``responses`` (shapes taken from the lib's fixture)."""

import copy
import json
import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import requests
import responses

from odoo import Command, fields
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.qtc_connector_base.tests.common import QtcTestMixin

BASE_URL = "https://sandbox-rest.avatax.com"
CREATE_URL = f"{BASE_URL}/api/v2/transactions/create"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
D = Decimal
# The Chicago jurisdictions of the fixture: (name, jurisType, type, rate).
CHICAGO = [
    ("ILLINOIS", "STA", "State", D("0.0625")),
    ("COOK", "CTY", "County", D("0.0175")),
    ("CHICAGO", "CIT", "City", D("0.0125")),
    ("REGIONAL TRANSPORT. AUTHORITY (RTA)", "STJ", "Special", D("0.01")),
]
EXEMPT_TAX_CODE = "S0000000"


def load_fixture(name):
    return json.loads((FIXTURES / name).read_text())


def cents(value):
    return D(value).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def avatax_error(status, code, refers_to=None):
    detail = {"code": code, "message": f"{code} raised", "severity": "Error"}
    if refers_to:
        detail["refersTo"] = refers_to
    body = {"error": {"code": code, "message": f"{code} raised", "details": [detail]}}
    return (status, {"Content-Type": "application/json"}, json.dumps(body))


class FakeAvatax:
    """A small AvaTax: computes Chicago taxes for any request (half up per line
    and jurisdiction, as AvaTax does), keeps committed transactions, refuses a
    committed code twice (``DocumentCodeConflict``), reads and voids them.

    ``fail`` (``callable(body) -> reply or None``) injects failures;
    ``answer`` (``callable(body) -> dict or None``) replaces the computed answer;
    ``lose_next_commit`` records the next commit but answers a timeout.
    """

    def __init__(self):
        self.transactions = {}
        self.creates = []
        self.voids = []
        self.gets = []
        self.fail = None
        self.answer = None
        self.lose_next_commit = False
        self._next_id = 85026437000

    def register(self):
        responses.add_callback(responses.POST, CREATE_URL, callback=self._create)
        responses.add_callback(
            responses.POST,
            re.compile(
                rf"{re.escape(BASE_URL)}/api/v2/companies/[^/]+/transactions/[^/]+/void"
            ),
            callback=self._void,
        )
        responses.add_callback(
            responses.GET,
            re.compile(
                rf"{re.escape(BASE_URL)}/api/v2/companies/[^/]+/transactions/[^/?]+"
            ),
            callback=self._get,
        )
        return self

    # -- answers -------------------------------------------------------------------

    def compute(self, body):
        """An AvaTax ``TransactionModel`` for the request ``body``."""
        template = load_fixture("avatax_transaction_chicago.json")
        exempt = bool(body.get("exemptionNo") or body.get("entityUseCode"))
        lines = []
        total = D(0)
        for line in body["lines"]:
            amount = D(repr(line["amount"]))
            taxed = not exempt and line.get("taxCode") != EXEMPT_TAX_CODE
            details = []
            for name, juris_type, kind, rate in CHICAGO:
                tax = cents(amount * rate) if taxed else D("0.00")
                details.append(
                    {
                        "jurisName": name,
                        "jurisType": juris_type,
                        "jurisdictionType": kind,
                        "rate": float(rate),
                        "tax": float(tax),
                        "taxCalculated": float(tax),
                    }
                )
            line_tax = sum((D(repr(d["tax"])) for d in details), D(0))
            total += line_tax
            lines.append(
                {
                    **{k: v for k, v in template["lines"][0].items() if k != "details"},
                    "lineNumber": line["number"],
                    "lineAmount": line["amount"],
                    "quantity": line["quantity"],
                    "tax": float(line_tax),
                    "details": details,
                }
            )
        self._next_id += 1
        answer = {
            **{k: v for k, v in template.items() if k not in ("lines", "summary")},
            "id": self._next_id,
            "code": body["code"],
            "type": body["type"],
            "status": "Committed" if body["commit"] else "Temporary",
            "totalTax": float(total),
            "lines": lines,
        }
        return answer

    def _create(self, request):
        body = json.loads(request.body)
        self.creates.append(body)
        if self.fail:
            failure = self.fail(body)
            if failure is not None:
                return failure
        key = (body["code"], body["type"])
        if body["commit"] and key in self.transactions:
            if self.transactions[key]["status"] == "Committed":
                return avatax_error(400, "DocumentCodeConflict")
        answer = (self.answer and self.answer(body)) or self.compute(body)
        if body["commit"]:
            self.transactions[key] = answer
            if self.lose_next_commit:
                self.lose_next_commit = False
                return requests.exceptions.ReadTimeout("answer lost")
        return (200, {"Content-Type": "application/json"}, json.dumps(answer))

    def _get(self, request):
        self.gets.append(request.url)
        code = requests.utils.unquote(request.path_url.split("?")[0].split("/")[-1])
        document_type = "SalesInvoice"
        if "documentType=" in request.url:
            document_type = request.url.split("documentType=")[1].split("&")[0]
        answer = self.transactions.get((code, document_type))
        if not answer:
            return avatax_error(404, "EntityNotFoundError")
        return (200, {"Content-Type": "application/json"}, json.dumps(answer))

    def _void(self, request):
        parts = request.path_url.split("/")
        code = requests.utils.unquote(parts[-2])
        self.voids.append(code)
        answer = self.transactions.get((code, "SalesInvoice"))
        if not answer:
            return avatax_error(404, "EntityNotFoundError")
        answer["status"] = "Cancelled"
        return (200, {"Content-Type": "application/json"}, json.dumps(answer))

    # -- what was sent -------------------------------------------------------------

    def committed(self):
        return {
            key: answer
            for key, answer in self.transactions.items()
            if answer["status"] == "Committed"
        }


class QtcTaxCase(QtcTestMixin, AccountTestInvoicingCommon):
    """A US company shipping from Washington, a Chicago customer, an AvaTax
    backend (hold policy, breaker after 3 failures) and three products whose
    prices are the lines of the fixture."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The accounting test user configures the engine too.
        cls.env.user.groups_id |= cls.env.ref("qtc_connector_base.group_qtc_manager")
        us = cls.env.ref("base.us")
        cls.env.company.partner_id.write(
            {
                "street": "100 Ravine Ln NE",
                "city": "Bainbridge Island",
                "state_id": cls.env.ref("base.state_us_48").id,
                "zip": "98110",
                "country_id": us.id,
            }
        )
        cls.customer = cls.partner_a
        cls.customer.write(
            {
                "street": "233 S Wacker Dr",
                "city": "Chicago",
                "state_id": cls.env.ref("base.state_us_14").id,
                "zip": "60606",
                "country_id": us.id,
            }
        )
        cls.workshop = cls._create_product(
            name="Implementation workshop",
            default_code="SVC-WORKSHOP",
            lst_price=1234.56,
            tax_engine_code="P0000000",
        )
        cls.manual = cls._create_product(
            name="Training manual",
            default_code="BOOK-01",
            lst_price=99.99,
            tax_engine_code="P0000000",
        )
        cls.consulting = cls._create_product(
            name="Remote consulting",
            default_code="SVC-REMOTE",
            lst_price=500.0,
            tax_engine_code=EXEMPT_TAX_CODE,
        )
        cls.backend = cls._qtc_make_backend(
            name="AvaTax test",
            provider="avatax",
            avatax_account_id="1100012345",
            avatax_company_code="QTC-US",
            tax_breaker_threshold=3,
            tax_breaker_window=600,
            tax_breaker_cooldown=300,
        )
        cls.backend._qtc_set_secret("avatax_license_key", "LICENSE-KEY-0123456789")

    @classmethod
    def _qtc_make_illinois_rate_table(cls):
        """A rate-table backend with Chicago's jurisdictions (and a zero-rated
        services code), after the AvaTax backend in sequence."""
        us = cls.env.ref("base.us")
        illinois = cls.env.ref("base.state_us_14")
        rates = [
            ("ILLINOIS", "State", 6.25, False),
            ("COOK", "County", 1.75, False),
            ("CHICAGO", "City", 1.25, False),
            ("REGIONAL TRANSPORT. AUTHORITY (RTA)", "Special", 1.0, False),
            ("IL SERVICES", "State", 0.0, "S0000000"),
        ]
        return cls._qtc_make_backend(
            name="Rate table test",
            provider="tax_rate_table",
            sequence=20,
            tax_rate_ids=[
                Command.create(
                    {
                        "country_id": us.id,
                        "state_id": illinois.id,
                        "name": name,
                        "jurisdiction_type": kind,
                        "rate": rate,
                        "tax_code": code,
                    }
                )
                for name, kind, rate, code in rates
            ],
        )

    def setUp(self):
        super().setUp()
        self.fake = FakeAvatax()

    # -- helpers -------------------------------------------------------------------

    def make_invoice(self, products=None, partner=None, move_type="out_invoice"):
        products = (
            products
            if products is not None
            else [self.workshop, self.manual, self.consulting]
        )
        return self.init_invoice(
            move_type, partner=partner or self.customer, products=products
        )

    def run_due_jobs(self):
        """Run every pending job now, including those scheduled for later (the
        engine "came back" before their time)."""
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE qtc_job SET eta = %s WHERE state = 'pending' AND eta IS NOT NULL",
            (fields.Datetime.now() - timedelta(seconds=1),),
        )
        self.env.invalidate_all()
        return self.run_jobs()

    def jobs(self, move, kind=None, state=None):
        domain = [("identity_key", "like", f"qtc_tax:%:{move.id}")]
        if kind:
            domain = [("identity_key", "=", f"qtc_tax:{kind}:{move.id}")]
        if state:
            domain.append(("state", "=", state))
        return self.env["qtc.job"].search(domain)

    def tax_amounts(self, move):
        """``{tax name: amount}`` of the move's tax journal items, positive."""
        sign = -1 if move.is_inbound() else 1
        amounts = {}
        for line in move.line_ids.filtered("tax_line_id"):
            name = line.tax_line_id.name
            amounts[name] = round(
                amounts.get(name, 0.0) + line.amount_currency * sign, 2
            )
        return amounts

    def renumbered_fixture(self, move, mutate=None):
        """The lib's Chicago fixture with the invoice's line numbers, as the
        answer to a quote of ``move`` (products in fixture order)."""
        numbers = [
            str(line.id)
            for line in move.invoice_line_ids.filtered(
                lambda line: line.display_type == "product"
            )
        ]

        def answer(body):
            data = copy.deepcopy(load_fixture("avatax_transaction_chicago.json"))
            for line, number in zip(data["lines"], numbers, strict=True):
                line["lineNumber"] = number
            data.update(code=body["code"], type=body["type"])
            if mutate:
                mutate(data)
            return data

        return answer
