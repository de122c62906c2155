"""AvaTax request bodies, transaction parsing, address resolution, error sorting."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from .tax_fixtures import CHICAGO, document, line, load
from qtc_tax.lib import avatax
from qtc_tax.lib.engine import (
    Address,
    DocumentType,
    JurisdictionTax,
    TaxEngineConfigurationError,
    TaxEngineRejected,
    TaxEngineUnavailable,
)

SHIP_FROM = {
    "line1": "100 Ravine Ln NE",
    "city": "Bainbridge Island",
    "region": "WA",
    "postalCode": "98110",
    "country": "US",
}
SHIP_TO = {
    "line1": "233 S Wacker Dr",
    "city": "Chicago",
    "region": "IL",
    "postalCode": "60606",
    "country": "US",
}
LINES = [
    {
        "number": "1",
        "quantity": 1,
        "amount": 1234.56,
        "taxCode": "P0000000",
        "itemCode": "SVC-WORKSHOP",
        "description": "Implementation workshop",
    },
    {
        "number": "2",
        "quantity": 1,
        "amount": 99.99,
        "taxCode": "P0000000",
        "itemCode": "BOOK-01",
        "description": "Training manual",
    },
    {
        "number": "3",
        "quantity": 4,
        "amount": 500,
        "taxCode": "S0000000",
        "itemCode": "SVC-REMOTE",
        "description": "Remote consulting",
    },
]


# -- transaction bodies ------------------------------------------------------------


def test_quote_body():
    body = avatax.build_create_transaction(document(), "QTC-US", commit=False)
    assert body == {
        "type": "SalesOrder",
        "code": "SO-2026-0042",
        "companyCode": "QTC-US",
        "date": "2026-03-02",
        "customerCode": "CUST-1001",
        "currencyCode": "USD",
        "commit": False,
        "addresses": {"shipFrom": SHIP_FROM, "shipTo": SHIP_TO},
        "lines": LINES,
    }
    # What goes on the wire is exactly these amounts.
    wire = json.loads(json.dumps(body), parse_float=Decimal)
    assert [item["amount"] for item in wire["lines"]] == [
        Decimal("1234.56"),
        Decimal("99.99"),
        500,
    ]


def test_commit_body_for_posted_invoice():
    doc = document(
        code="INV/2026/0007",
        type=DocumentType.SALES_INVOICE,
        exemption_number="EX-IL-4471",
        entity_use_code="E",
    )
    body = avatax.build_create_transaction(doc, "QTC-US", commit=True)
    assert body["type"] == "SalesInvoice"
    assert body["commit"] is True
    assert body["code"] == "INV/2026/0007"
    assert body["exemptionNo"] == "EX-IL-4471"
    assert body["entityUseCode"] == "E"
    assert body["lines"] == LINES


def test_optional_line_fields_are_left_out():
    doc = document(lines=[line("A", "10.10")])
    assert avatax.build_create_transaction(doc, "C", commit=False)["lines"] == [
        {"number": "A", "quantity": 1, "amount": 10.1}
    ]
    bare = document(ship_to=Address(country="US", postal_code="60606"))
    body = avatax.build_create_transaction(bare, "C", commit=False)
    assert body["addresses"]["shipTo"] == {"postalCode": "60606", "country": "US"}
    assert "exemptionNo" not in body and "entityUseCode" not in body


def test_body_refusals():
    with pytest.raises(ValueError, match="SalesOrder is a quote"):
        avatax.build_create_transaction(document(), "C", commit=True)
    refund = document(type=DocumentType.RETURN_INVOICE)
    with pytest.raises(ValueError, match="build_refund_transaction"):
        avatax.build_create_transaction(refund, "C", commit=True)
    with pytest.raises(ValueError, match="company code is required"):
        avatax.build_create_transaction(document(), "", commit=False)


def test_amount_that_a_float_cannot_carry_is_refused():
    doc = document(lines=[line("1", "0.1000000000000000055511151231257827")])
    with pytest.raises(ValueError, match="cannot be sent as a JSON number exactly"):
        avatax.build_create_transaction(doc, "C", commit=False)


def test_refund_body():
    doc = document(code="RINV/2026/0002", type=DocumentType.RETURN_INVOICE)
    body = avatax.build_refund_transaction(
        doc, "QTC-US", "INV/2026/0007", original_date=date(2026, 2, 27)
    )
    assert body["type"] == "ReturnInvoice"
    assert body["commit"] is True
    assert body["code"] == "RINV/2026/0002"
    assert body["referenceCode"] == "INV/2026/0007"
    assert body["taxOverride"] == {
        "type": "TaxDate",
        "taxDate": "2026-02-27",
        "reason": "Refund of INV/2026/0007",
    }
    assert [(item["quantity"], item["amount"]) for item in body["lines"]] == [
        (1, -1234.56),
        (1, -99.99),
        (4, -500),
    ]
    assert body["date"] == "2026-03-02"


def test_refund_refusals():
    with pytest.raises(ValueError, match="a refund is a ReturnInvoice"):
        avatax.build_refund_transaction(document(), "C", "INV-1")
    refund = document(type=DocumentType.RETURN_INVOICE)
    with pytest.raises(ValueError, match="needs the code of the refunded invoice"):
        avatax.build_refund_transaction(refund, "C", "")
    with pytest.raises(TypeError):
        avatax.build_refund_transaction(refund, "C", "INV-1", original_date="2026")
    assert "taxOverride" not in avatax.build_refund_transaction(refund, "C", "INV-1")


def test_void_body_and_path():
    assert avatax.build_void_body() == {"code": "DocVoided"}
    assert avatax.build_void_body("DocDeleted") == {"code": "DocDeleted"}
    with pytest.raises(ValueError, match="unknown void reason"):
        avatax.build_void_body("Cancelled")
    assert avatax.void_path("QTC US", "INV/2026/0007") == (
        "/api/v2/companies/QTC%20US/transactions/INV%2F2026%2F0007/void"
    )
    with pytest.raises(ValueError):
        avatax.void_path("QTC", "")


# -- transaction answers -----------------------------------------------------------


def test_multi_jurisdiction_quote_totals_to_the_cent():
    result = avatax.parse_transaction(load("avatax_transaction_chicago.json"))
    assert result.document_code == "SO-2026-0042"
    assert result.engine_transaction_id == "85026437112"
    assert result.committed is False
    assert result.total_tax == Decimal("136.79")
    assert [line.tax for line in result.lines] == [
        Decimal("126.54"),
        Decimal("10.25"),
        Decimal("0.0"),
    ]
    assert result.line("1").details == (
        JurisdictionTax("ILLINOIS", "State", Decimal("0.0625"), Decimal("77.16")),
        JurisdictionTax("COOK", "County", Decimal("0.0175"), Decimal("21.6")),
        JurisdictionTax("CHICAGO", "City", Decimal("0.0125"), Decimal("15.43")),
        JurisdictionTax(
            "REGIONAL TRANSPORT. AUTHORITY (RTA)",
            "Special",
            Decimal("0.01"),
            Decimal("12.35"),
        ),
    )
    # Every level adds up exactly: details -> line -> document.
    for result_line in result.lines:
        assert sum(d.tax for d in result_line.details) == result_line.tax
    assert sum(line.tax for line in result.lines) == result.total_tax
    # Type from jurisType when jurisdictionType is absent.
    assert result.line("3").details[0].type == "State"


def test_parse_raw_text_keeps_decimals_exact():
    raw = json.dumps(load("avatax_transaction_chicago.json"))
    result = avatax.parse_transaction(raw.encode())
    assert result.total_tax == Decimal("136.79")
    assert result.line("2").details[0].rate == Decimal("0.0625")


def test_committed_invoice():
    data = load("avatax_transaction_chicago.json")
    data.update(status="Committed", type="SalesInvoice", code="INV/2026/0007")
    result = avatax.parse_transaction(data)
    assert result.committed is True
    assert result.document_code == "INV/2026/0007"


def test_negative_taxes_of_a_refund_are_kept():
    data = {
        "id": 1,
        "code": "R-1",
        "status": "Committed",
        "totalTax": -10.25,
        "lines": [{"lineNumber": 2, "tax": -10.25, "details": []}],
    }
    result = avatax.parse_transaction(data)
    assert result.total_tax == Decimal("-10.25")
    assert result.line("2").tax == Decimal("-10.25")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("<html>Bad gateway</html>", "not a JSON object"),
        ([], "not a JSON object"),
        ({"lines": []}, "no transaction code"),
        ({"code": "X"}, "no lines"),
        ({"code": "X", "lines": ["x"]}, "line 0 is not an object"),
        ({"code": "X", "lines": [{"tax": 1}]}, "line 0 has no lineNumber"),
        ({"code": "X", "lines": [{"lineNumber": "1"}]}, "line 1 tax is missing"),
        (
            {"code": "X", "lines": [{"lineNumber": "1", "tax": "abc"}]},
            "line 1 tax is not a number",
        ),
        (
            {"code": "X", "lines": [{"lineNumber": "1", "tax": 1, "details": [{}]}]},
            "line 1 detail rate is missing",
        ),
        ({"code": "X", "lines": [], "totalTax": True}, "totalTax is missing"),
    ],
)
def test_malformed_answers_are_unavailable(data, message):
    with pytest.raises(TaxEngineUnavailable, match=message) as caught:
        avatax.parse_transaction(data)
    assert caught.value.code == "MalformedResponse"


# -- address resolution ------------------------------------------------------------


def test_resolve_address_body():
    assert avatax.build_resolve_address(CHICAGO) == SHIP_TO


def test_resolved_address():
    result = avatax.parse_address_resolution(
        {
            "address": {"line1": "1000 main", "city": "Irvine", "region": "CA"},
            "validatedAddresses": [
                {
                    "addressType": "HighriseOrBusinessComplex",
                    "line1": "1000 MAIN ST",
                    "line2": "",
                    "line3": "",
                    "city": "IRVINE",
                    "region": "CA",
                    "country": "US",
                    "postalCode": "92614-7254",
                    "latitude": 33.691385,
                    "longitude": -117.867524,
                }
            ],
            "coordinates": {"latitude": 33.691385, "longitude": -117.867524},
            "resolutionQuality": "Intersection",
        }
    )
    assert result.valid is True
    assert result.address == Address(
        country="US",
        line1="1000 MAIN ST",
        city="IRVINE",
        region="CA",
        postal_code="92614-7254",
    )
    assert result.resolution_quality == "Intersection"
    assert (result.latitude, result.longitude) == (
        Decimal("33.691385"),
        Decimal("-117.867524"),
    )
    assert result.messages == ()


def test_unresolved_address_names_the_fields():
    result = avatax.parse_address_resolution(
        {
            "address": {"line1": "123 Main Street", "postalCode": "92615"},
            "validatedAddresses": [
                {
                    "line1": "123 Main Street",
                    "city": "Irvine",
                    "region": "CA",
                    "country": "US",
                    "postalCode": "92615",
                }
            ],
            "resolutionQuality": "NotCoded",
            "messages": [
                {
                    "summary": "The address is not deliverable.",
                    "details": "The physical location exists but there are no homes.",
                    "refersTo": "Address.Line1",
                    "severity": "Error",
                    "source": "Avalara.AvaTax.Services.Address",
                },
                {
                    "summary": "The postal code is not valid.",
                    "refersTo": "Address.PostalCode",
                    "severity": "Error",
                },
            ],
        }
    )
    assert result.valid is False
    assert result.address is None
    assert result.fields == ("line1", "postal_code")
    assert result.messages == (
        "The address is not deliverable. The physical location exists but there are "
        "no homes.",
        "The postal code is not valid.",
    )


def test_address_warning_does_not_invalidate():
    result = avatax.parse_address_resolution(
        {
            "validatedAddresses": [{"line1": "1 A St", "country": "us"}],
            "messages": [{"summary": "Case changed", "severity": "Warning"}],
        }
    )
    assert result.valid is True
    assert result.address.country == "US"
    assert result.messages == ("Case changed",)


def test_address_without_candidates_is_invalid():
    assert avatax.parse_address_resolution({}).valid is False
    with pytest.raises(TaxEngineUnavailable):
        avatax.parse_address_resolution("nope")


# -- errors ------------------------------------------------------------------------


def avatax_error(code, message, details=()):
    return {"error": {"code": code, "message": message, "details": list(details)}}


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_401_is_configuration():
    error = avatax.parse_error(
        401,
        avatax_error("AuthenticationException", "Authentication failed."),
        {"Content-Type": "application/json"},
    )
    assert type(error) is TaxEngineConfigurationError
    assert isinstance(error, TaxEngineRejected)
    assert (error.status, error.code) == (401, "AuthenticationException")
    assert (
        str(error) == "AvaTax HTTP 401 AuthenticationException: Authentication failed."
    )


def test_400_invalid_address_names_the_fields():
    body = avatax_error(
        "InvalidAddress",
        "The address value was incomplete.",
        [
            {
                "code": "InvalidAddress",
                "number": 309,
                "message": "The address value was incomplete.",
                "description": "You must provide a valid postal code, line1 + city "
                "+ region, or line1 + postal code.",
                "faultCode": "Client",
                "helpLink": "http://developer.avalara.com/avatax/errors/InvalidAddress",
                "refersTo": "Addresses.ShipTo",
                "severity": "Error",
            },
            {
                "code": "InvalidPostalCode",
                "message": "The postal code is not valid.",
                "refersTo": "Addresses.ShipTo.PostalCode",
                "severity": "Error",
            },
            {
                "code": "InvalidAddress",
                "message": "Duplicate detail.",
                "refersTo": "addresses.shipTo",
            },
        ],
    )
    error = avatax.parse_error(400, body)
    assert type(error) is TaxEngineRejected
    assert error.code == "InvalidAddress"
    assert error.fields == ("ship_to", "ship_to.postal_code")
    assert error.details == (
        "The address value was incomplete.",
        "The postal code is not valid.",
        "Duplicate detail.",
    )


def test_address_code_without_target_points_at_addresses():
    body = avatax_error(
        "GetTaxError",
        "Address not geocoded.",
        [{"code": "AddressNotGeocoded", "message": "Address not geocoded."}],
    )
    error = avatax.parse_error(400, body)
    assert type(error) is TaxEngineRejected
    assert error.fields == ("addresses",)


def test_missing_exemption_points_at_the_exemption_number():
    error = avatax.parse_error(
        400, avatax_error("MissingExemptReason", "An exempt reason is required.")
    )
    assert error.fields == ("exemption_number",)


@pytest.mark.parametrize(
    ("refers_to", "field"),
    [
        ("Lines[1].TaxCode", "lines[1].tax_code"),
        ("lines[0].amount", "lines[0].amount"),
        ("Lines[2]", "lines[2]"),
        ("Lines[2].Weird", "lines[2]"),
        ("ExemptionNo", "exemption_number"),
        ("CustomerCode", "customer_code"),
        ("EntityUseCode", "entity_use_code"),
        ("Addresses.ShipFrom.Region", "ship_from.region"),
        ("Address.Line1", "addresses.line1"),
        ("Addresses[0]", "addresses"),
        ("UOM Code", "UOM Code"),
    ],
)
def test_canonical_field(refers_to, field):
    assert avatax.canonical_field(refers_to) == field


def test_429_with_retry_after_seconds():
    error = avatax.parse_error(
        429,
        avatax_error("RateLimitExceededError", "Too many requests."),
        {"retry-after": "17"},
    )
    assert type(error) is TaxEngineUnavailable
    assert (error.status, error.retry_after) == (429, 17.0)


def test_429_with_retry_after_http_date():
    error = avatax.parse_error(
        429, "", {"Retry-After": "Mon, 02 Mar 2026 12:01:30 GMT"}, now=NOW
    )
    assert error.retry_after == 90.0
    past = avatax.parse_error(
        429, "", {"Retry-After": "Mon, 02 Mar 2026 11:00:00 GMT"}, now=NOW
    )
    assert past.retry_after == 0.0
    junk = avatax.parse_error(429, "", {"Retry-After": "soon"}, now=NOW)
    assert junk.retry_after is None


def test_500_and_503_are_unavailable():
    error = avatax.parse_error(
        500, avatax_error("UnhandledException", "An unexpected error occurred.")
    )
    assert type(error) is TaxEngineUnavailable
    assert error.retry_after is None
    error = avatax.parse_error(
        503, b"<html>Service Unavailable</html>", {"Retry-After": "120"}
    )
    assert type(error) is TaxEngineUnavailable
    assert (error.code, error.retry_after) == (None, 120.0)
    assert str(error) == "AvaTax HTTP 503"


def test_transient_code_wins_over_a_4xx_status():
    error = avatax.parse_error(400, avatax_error("ServerUnreachable", "Try later."))
    assert type(error) is TaxEngineUnavailable


def test_timeout_and_408():
    error = avatax.parse_error(None, None, reason="timeout")
    assert type(error) is TaxEngineUnavailable
    assert (error.status, error.code) == (None, "timeout")
    assert str(error) == "no answer from AvaTax (timeout)"
    assert type(avatax.parse_error(408, None)) is TaxEngineUnavailable


def test_unknown_4xx_is_a_rejection_without_fields():
    error = avatax.parse_error(404, avatax_error("EntityNotFoundError", "No such."))
    assert type(error) is TaxEngineRejected
    assert error.fields == ()
    garbage = avatax.parse_error(422, "not json")
    assert type(garbage) is TaxEngineRejected
    assert garbage.code is None


def test_success_status_is_not_an_error():
    with pytest.raises(ValueError, match="HTTP 200 is not an error"):
        avatax.parse_error(200, {})


def test_parse_retry_after():
    assert avatax.parse_retry_after(None) is None
    assert avatax.parse_retry_after(" 5 ") == 5.0
    assert avatax.parse_retry_after("-5") is None


def test_parse_retry_after_refuses_non_ascii_digits():
    # "²".isdigit() is True but float("²") raises: it must read as unreadable.
    assert avatax.parse_retry_after("²") is None
    error = avatax.parse_error(503, None, {"Retry-After": "²"})
    assert isinstance(error, TaxEngineUnavailable)
    assert error.retry_after is None
