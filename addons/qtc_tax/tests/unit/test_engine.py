"""The canonical tax documents refuse what would make a tax wrong."""

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest

from .tax_fixtures import document, line
from qtc_tax.lib import engine
from qtc_tax.lib.engine import Address, DocumentType, TaxLine


def test_document_is_frozen_and_normalised():
    doc = document(type="SalesInvoice", lines=[line("1", "10")])
    assert doc.type is DocumentType.SALES_INVOICE
    assert isinstance(doc.lines, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.code = "other"


def test_line_defaults_and_int_amounts():
    item = TaxLine(number="1", amount=10)
    assert (item.amount, item.quantity) == (Decimal(10), Decimal(1))
    assert isinstance(item.amount, Decimal)


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"amount": 10.5}, TypeError, "TaxLine.amount must be a Decimal, not float"),
        ({"amount": "10.5"}, TypeError, "TaxLine.amount must be a Decimal, not str"),
        ({"amount": True}, TypeError, "not bool"),
        ({"amount": Decimal("NaN")}, ValueError, "must be finite"),
        ({"quantity": 1.5}, TypeError, "TaxLine.quantity must be a Decimal"),
        ({"number": ""}, ValueError, "TaxLine.number must be a non-empty string"),
        ({"number": 1}, ValueError, "TaxLine.number must be a non-empty string"),
    ],
)
def test_bad_lines(values, error, message):
    arguments = {"number": "1", "amount": Decimal(1)}
    arguments.update(values)
    with pytest.raises(error, match=message):
        TaxLine(**arguments)


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"code": ""}, ValueError, "code must be a non-empty string"),
        ({"type": "PurchaseOrder"}, ValueError, "PurchaseOrder"),
        ({"date": "2026-03-02"}, TypeError, "date must be a datetime.date"),
        ({"currency": "usd"}, ValueError, "currency must be an ISO 4217 code"),
        ({"currency": "US"}, ValueError, "currency must be an ISO 4217 code"),
        ({"customer_code": ""}, ValueError, "customer_code must be a non-empty"),
        ({"ship_to": {"country": "US"}}, TypeError, "ship_to must be an Address"),
        ({"lines": ()}, ValueError, "lines must not be empty"),
        ({"lines": ({"number": "1"},)}, TypeError, "lines must hold TaxLine"),
        (
            {"lines": (line("1", "1"), line("1", "2"))},
            ValueError,
            "lines must have unique numbers",
        ),
    ],
)
def test_bad_documents(values, error, message):
    with pytest.raises(error, match=message):
        document(**values)


def test_datetime_is_refused_as_document_date():
    with pytest.raises(TypeError, match=r"date must be a datetime\.date"):
        document(date=datetime(2026, 3, 2, 23, 30))
    assert document(date=date(2026, 1, 1)).date == date(2026, 1, 1)


@pytest.mark.parametrize("country", ["us", "USA", "", None])
def test_address_country_must_be_alpha_2(country):
    with pytest.raises(ValueError, match="ISO 3166 alpha-2"):
        Address(country=country)


def test_result_line_lookup():
    result = engine.TaxResult(
        document_code="X",
        total_tax=Decimal("1.00"),
        lines=(engine.TaxLineResult("1", Decimal("1.00")),),
    )
    assert result.line("1").tax == Decimal("1.00")
    with pytest.raises(KeyError):
        result.line("2")


def test_error_classes():
    unavailable = engine.TaxEngineUnavailable("down", status=503, retry_after=30.0)
    assert isinstance(unavailable, engine.TaxEngineError)
    assert (unavailable.status, unavailable.retry_after) == (503, 30.0)
    rejected = engine.TaxEngineRejected(
        "bad", code="InvalidAddress", fields=["ship_to"]
    )
    assert rejected.fields == ("ship_to",)
    assert not isinstance(rejected, engine.TaxEngineUnavailable)
    configuration = engine.TaxEngineConfigurationError("creds", status=401)
    assert isinstance(configuration, engine.TaxEngineRejected)
    assert str(configuration) == "creds"


def test_engine_is_abstract():
    with pytest.raises(TypeError):
        engine.TaxEngine()

    class Partial(engine.TaxEngine):
        def quote(self, doc):
            return None

    with pytest.raises(TypeError):
        Partial()
