"""The AvaTax adapter over a fake transport: paths, bodies, idempotent commit,
errors sorted into unavailable and rejected."""

import json
from decimal import Decimal

import pytest

from .tax_fixtures import document, load
from qtc_tax.lib.avatax_engine import (
    PING_PATH,
    AvataxEngine,
    NoAnswer,
    Reply,
    transaction_path,
)
from qtc_tax.lib.engine import (
    DocumentType,
    TaxEngine,
    TaxEngineConfigurationError,
    TaxEngineRejected,
    TaxEngineUnavailable,
)

CREATE = "/api/v2/transactions/create"


class FakeTransport:
    """Answers queued replies in order and records every call."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, method, path, body=None, params=None):
        self.calls.append((method, path, body, params))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(data, status=200):
    return Reply(status, json.dumps(data), {})


def error(status, code, refers_to=None, headers=None):
    detail = {"code": code, "message": f"{code} happened", "severity": "Error"}
    if refers_to:
        detail["refersTo"] = refers_to
    body = {"error": {"code": code, "message": f"{code} happened", "details": [detail]}}
    return Reply(status, json.dumps(body), headers or {})


def committed_fixture(code="INV/2026/0001"):
    data = load("avatax_transaction_chicago.json")
    data.update(code=code, type="SalesInvoice", status="Committed")
    return data


def test_is_a_tax_engine_and_needs_a_company_code():
    assert isinstance(AvataxEngine(FakeTransport(), "QTC"), TaxEngine)
    with pytest.raises(ValueError, match="company code"):
        AvataxEngine(FakeTransport(), "")


def test_quote_posts_a_sales_order_and_reads_the_totals():
    transport = FakeTransport(ok(load("avatax_transaction_chicago.json")))
    result = AvataxEngine(transport, "QTC-US").quote(document())
    assert result.total_tax == Decimal("136.79")
    assert result.committed is False
    [(method, path, body, _params)] = transport.calls
    assert (method, path) == ("POST", CREATE)
    assert body["type"] == "SalesOrder"
    assert body["commit"] is False
    assert body["companyCode"] == "QTC-US"


def test_quote_of_an_invoice_document_is_still_a_sales_order():
    transport = FakeTransport(ok(load("avatax_transaction_chicago.json")))
    AvataxEngine(transport, "QTC").quote(
        document(type=DocumentType.SALES_INVOICE, code="INV-1")
    )
    body = transport.calls[0][2]
    assert (body["type"], body["code"], body["commit"]) == (
        "SalesOrder",
        "INV-1",
        False,
    )


def test_commit_posts_a_committed_sales_invoice():
    transport = FakeTransport(ok(committed_fixture()))
    result = AvataxEngine(transport, "QTC").commit(
        document(type=DocumentType.SALES_INVOICE, code="INV/2026/0001")
    )
    assert result.committed is True
    assert result.document_code == "INV/2026/0001"
    body = transport.calls[0][2]
    assert (body["type"], body["commit"]) == ("SalesInvoice", True)


def test_commit_refuses_a_sales_order():
    with pytest.raises(ValueError, match="SalesInvoice"):
        AvataxEngine(FakeTransport(), "QTC").commit(document())


def test_commit_of_an_already_committed_code_reads_the_existing_transaction():
    transport = FakeTransport(
        error(400, "DocumentCodeConflict"), ok(committed_fixture())
    )
    result = AvataxEngine(transport, "QTC").commit(
        document(type=DocumentType.SALES_INVOICE, code="INV/2026/0001")
    )
    assert result.committed is True
    assert result.total_tax == Decimal("136.79")
    assert [call[:2] for call in transport.calls] == [
        ("POST", CREATE),
        ("GET", "/api/v2/companies/QTC/transactions/INV%2F2026%2F0001"),
    ]
    assert transport.calls[1][3] == {
        "documentType": "SalesInvoice",
        "$include": "Details",
    }


def test_conflict_without_an_existing_transaction_stays_rejected():
    transport = FakeTransport(
        error(400, "DocumentCodeConflict"), error(404, "EntityNotFoundError")
    )
    with pytest.raises(TaxEngineRejected) as caught:
        AvataxEngine(transport, "QTC").commit(
            document(type=DocumentType.SALES_INVOICE, code="INV-9")
        )
    assert caught.value.code == "DocumentCodeConflict"


def test_find_returns_none_when_absent_and_raises_other_errors():
    engine = AvataxEngine(FakeTransport(error(404, "EntityNotFoundError")), "QTC")
    assert engine.find("INV-1") is None
    engine = AvataxEngine(FakeTransport(error(500, "InternalServerError")), "QTC")
    with pytest.raises(TaxEngineUnavailable):
        engine.find("INV-1")


def test_refund_references_the_original_with_negative_amounts():
    answer = committed_fixture("RINV/2026/0001")
    answer["type"] = "ReturnInvoice"
    transport = FakeTransport(ok(answer))
    AvataxEngine(transport, "QTC").refund(
        document(type=DocumentType.RETURN_INVOICE, code="RINV/2026/0001"),
        "INV/2026/0001",
    )
    body = transport.calls[0][2]
    assert body["type"] == "ReturnInvoice"
    assert body["referenceCode"] == "INV/2026/0001"
    assert body["lines"][0]["amount"] == -1234.56


def test_void_posts_doc_voided():
    transport = FakeTransport(ok({"code": "INV-1", "status": "Cancelled"}))
    assert AvataxEngine(transport, "QTC").void("INV-1") is None
    assert transport.calls == [
        (
            "POST",
            "/api/v2/companies/QTC/transactions/INV-1/void",
            {"code": "DocVoided"},
            None,
        )
    ]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (NoAnswer("timeout"), TaxEngineUnavailable),
        (error(503, "ServiceNotReady"), TaxEngineUnavailable),
        (error(429, "RateLimitExceededError"), TaxEngineUnavailable),
        (error(401, "AuthenticationException"), TaxEngineConfigurationError),
    ],
)
def test_failures_are_sorted(reply, expected):
    engine = AvataxEngine(FakeTransport(reply), "QTC")
    with pytest.raises(expected):
        engine.quote(document())


def test_timeout_names_its_reason():
    engine = AvataxEngine(FakeTransport(NoAnswer("timeout")), "QTC")
    with pytest.raises(TaxEngineUnavailable) as caught:
        engine.quote(document())
    assert caught.value.code == "timeout"


def test_invalid_address_names_the_fields():
    reply = error(400, "InvalidAddress", refers_to="Addresses.ShipTo.PostalCode")
    engine = AvataxEngine(FakeTransport(reply), "QTC")
    with pytest.raises(TaxEngineRejected) as caught:
        engine.quote(document())
    assert caught.value.fields == ("ship_to.postal_code",)


def test_ping_checks_authentication():
    engine = AvataxEngine(FakeTransport(ok({"authenticated": True})), "QTC")
    assert engine.ping() == {"authenticated": True}
    engine = AvataxEngine(FakeTransport(ok({"authenticated": False})), "QTC")
    with pytest.raises(TaxEngineRejected) as caught:
        engine.ping()
    assert caught.value.fields == ("avatax_account_id", "avatax_license_key")
    engine = AvataxEngine(FakeTransport(Reply(200, "not json", {})), "QTC")
    with pytest.raises(TaxEngineUnavailable):
        engine.ping()
    assert PING_PATH == "/api/v2/utilities/ping"


def test_transaction_path_encodes_and_requires_codes():
    assert (
        transaction_path("A B", "X/1") == "/api/v2/companies/A%20B/transactions/X%2F1"
    )
    with pytest.raises(ValueError):
        transaction_path("QTC", "")
