"""The rate-table engine: exact per-line taxes, rounding edges, lifecycle."""

from decimal import Decimal

import pytest

from .tax_fixtures import document, line
from qtc_tax.lib.engine import (
    Address,
    DocumentType,
    JurisdictionTax,
    TaxEngine,
    TaxEngineRejected,
)
from qtc_tax.lib.rate_table import RateTableEngine, round_tax

D = Decimal
CHICAGO_RATES = [
    ("ILLINOIS", "State", D("0.0625")),
    ("COOK", "County", D("0.0175")),
    ("CHICAGO", "City", D("0.0125")),
    ("REGIONAL TRANSPORT. AUTHORITY (RTA)", "Special", D("0.01")),
]
TABLE = {
    ("US", "IL", "*"): CHICAGO_RATES,
    ("US", "IL", "S0000000"): [],  # services untaxed in Illinois
    ("US", "*", "DIGITAL"): [("DIGITAL", "State", D("0.05"))],
    ("US", "CA", "*"): [("CALIFORNIA", "State", D("0.0725"))],
    ("FR", "*", "*"): [("FRANCE", "Country", D("0.20"))],
    ("JP", "*", "*"): [("JAPAN", "Country", D("0.10"))],
    ("US", "WA", "*"): [("WA", "State", D("0.05")), ("KING", "County", D("0.05"))],
}


@pytest.fixture
def engine():
    return RateTableEngine(TABLE)


def test_is_a_tax_engine(engine):
    assert isinstance(engine, TaxEngine)


def test_chicago_quote_matches_the_avatax_fixture(engine):
    result = engine.quote(document())
    assert result.committed is False
    assert result.engine_transaction_id is None
    assert [(line.line_number, line.tax) for line in result.lines] == [
        ("1", D("126.54")),
        ("2", D("10.25")),
        ("3", D("0.00")),
    ]
    assert result.total_tax == D("136.79")
    assert result.line("1").details == (
        JurisdictionTax("ILLINOIS", "State", D("0.0625"), D("77.16")),
        JurisdictionTax("COOK", "County", D("0.0175"), D("21.60")),
        JurisdictionTax("CHICAGO", "City", D("0.0125"), D("15.43")),
        JurisdictionTax(
            "REGIONAL TRANSPORT. AUTHORITY (RTA)", "Special", D("0.01"), D("12.35")
        ),
    )
    assert result.line("3").details == ()


def test_half_cents_round_up_per_jurisdiction_per_line(engine):
    # 0.10 * 0.05 = 0.005 in each of the two WA jurisdictions: each rounds up to
    # 0.01, so the line pays 0.02 (not round(0.010) = 0.01 on the combined rate).
    doc = document(
        ship_to=Address(country="US", region="WA"),
        lines=[line("1", "0.10"), line("2", "0.30"), line("3", "0.09")],
    )
    result = engine.quote(doc)
    assert [line.tax for line in result.lines] == [D("0.02"), D("0.04"), D("0.00")]
    assert [d.tax for d in result.line("1").details] == [D("0.01"), D("0.01")]
    # 0.30 * 0.05 = 0.015 -> 0.02 each:
    assert [d.tax for d in result.line("2").details] == [D("0.02"), D("0.02")]
    # 0.09 * 0.05 = 0.0045 -> 0.00: below the half cent.
    assert result.total_tax == D("0.06")


def test_half_up_is_not_bankers_rounding():
    assert round_tax(D("0.125"), 2) == D("0.13")  # half even would give 0.12
    assert round_tax(D("0.135"), 2) == D("0.14")
    assert round_tax(D("-0.125"), 2) == D("-0.13")  # symmetric for refunds
    assert round_tax(D("0.0049999"), 2) == D("0.00")
    assert round_tax(D("12.5"), 0) == D("13")


def test_total_is_the_sum_of_lines_not_the_rounded_document_tax(engine):
    # Three lines of 0.10 at 5%+5%: per line 0.005+0.005 -> 0.02, total 0.06;
    # rounding the document (0.30 * 10% = 0.03) would disagree with the lines.
    doc = document(
        ship_to=Address(country="US", region="WA"),
        lines=[line(str(n), "0.10") for n in range(1, 4)],
    )
    result = engine.quote(doc)
    assert result.total_tax == D("0.06")
    assert result.total_tax == sum(line.tax for line in result.lines)


def test_zero_decimal_currency(engine):
    doc = document(
        currency="JPY",
        ship_to=Address(country="JP"),
        lines=[line("1", "1005"), line("2", "1004")],
    )
    result = engine.quote(doc)
    assert [line.tax for line in result.lines] == [D("101"), D("100")]  # 100.5, 100.4
    assert result.total_tax == D("201")


def test_currency_decimals_override():
    engine = RateTableEngine(TABLE, currency_decimals={"USD": 3})
    result = engine.quote(document(lines=[line("1", "0.10")]))
    # 0.00625 -> 0.006, 0.00175 -> 0.002, 0.00125 -> 0.001, 0.001 -> 0.001
    assert result.total_tax == D("0.010")


def test_lookup_precedence(engine):
    assert engine.rules_for("US", "IL", "S0000000") == ()
    assert engine.rules_for("US", "IL", "P0000000") == tuple(CHICAGO_RATES)
    assert engine.rules_for("US", "IL", "DIGITAL") == tuple(CHICAGO_RATES)
    assert engine.rules_for("US", "NY", "DIGITAL") == (("DIGITAL", "State", D("0.05")),)
    assert engine.rules_for("us", "ca", "") == (("CALIFORNIA", "State", D("0.0725")),)
    assert engine.rules_for("FR", "", "") == (("FRANCE", "Country", D("0.20")),)
    assert engine.rules_for("US", "NY", "P0000000") is None


def test_exempt_customer_pays_nothing(engine):
    result = engine.quote(document(exemption_number="EX-1"))
    assert result.total_tax == D("0.00")
    assert all(line.details == () for line in result.lines)


def test_missing_rule_is_rejected_with_the_field(engine):
    with pytest.raises(TaxEngineRejected) as caught:
        engine.quote(document(ship_to=Address(country="DE")))
    assert caught.value.code == "NoTaxRule"
    assert caught.value.fields == ("ship_to",)
    assert str(caught.value) == "no tax rule for DE/*"
    doc = document(
        ship_to=Address(country="US", region="NY"),
        lines=[
            line("1", "1", tax_code="P0000000"),
            line("2", "1", tax_code="DIGITAL"),
            line("3", "1"),
        ],
    )
    with pytest.raises(TaxEngineRejected) as caught:
        engine.quote(doc)
    assert caught.value.fields == ("lines[0].tax_code", "lines[2].tax_code")
    assert str(caught.value) == "no tax rule for tax code (none), P0000000 in US/NY"


def test_missing_rule_zero_policy():
    engine = RateTableEngine(TABLE, missing="zero")
    result = engine.quote(document(ship_to=Address(country="DE")))
    assert result.total_tax == D("0.00")


def test_commit_is_idempotent_and_refuses_conflicts(engine):
    invoice = document(code="INV-1", type=DocumentType.SALES_INVOICE)
    first = engine.commit(invoice)
    assert first.committed is True
    assert first.engine_transaction_id == "rate_table:INV-1"
    assert first.total_tax == D("136.79")
    assert engine.commit(invoice) == first
    changed = document(
        code="INV-1", type=DocumentType.SALES_INVOICE, lines=[line("1", "5")]
    )
    with pytest.raises(TaxEngineRejected) as caught:
        engine.commit(changed)
    assert caught.value.code == "DocumentCodeConflict"
    with pytest.raises(ValueError, match="only a SalesInvoice is committed"):
        engine.commit(document())


def test_void_then_recommit(engine):
    invoice = document(code="INV-2", type=DocumentType.SALES_INVOICE)
    engine.commit(invoice)
    engine.void("INV-2")
    engine.void("INV-2")  # again: nothing happens
    assert engine.is_committed("INV-2") is False
    changed = document(
        code="INV-2", type=DocumentType.SALES_INVOICE, lines=[line("1", "100")]
    )
    assert engine.commit(changed).total_tax == D("10.25")
    assert engine.is_committed("INV-2") is True
    with pytest.raises(TaxEngineRejected) as caught:
        engine.void("NEVER")
    assert caught.value.code == "EntityNotFoundError"


def test_refund_mirrors_the_invoice(engine):
    engine.commit(document(code="INV-3", type=DocumentType.SALES_INVOICE))
    refund = document(code="RINV-3", type=DocumentType.RETURN_INVOICE)
    result = engine.refund(refund, "INV-3")
    assert result.committed is True
    assert result.total_tax == D("-136.79")
    assert result.line("1").details[3].tax == D("-12.35")  # -12.3456 half up
    with pytest.raises(TaxEngineRejected, match="NOPE is not a committed"):
        engine.refund(refund, "NOPE")
    with pytest.raises(ValueError, match="a refund is a ReturnInvoice"):
        engine.refund(document(), "INV-3")
    engine.void("INV-3")
    with pytest.raises(TaxEngineRejected):
        engine.refund(
            document(code="RINV-4", type=DocumentType.RETURN_INVOICE), "INV-3"
        )


def test_validate_address(engine):
    result = engine.validate_address(
        Address(country="US", region=" il ", city=" Chicago ", postal_code="60606 ")
    )
    assert result.valid is True
    assert result.address == Address(
        country="US", region="IL", city="Chicago", postal_code="60606"
    )
    no_region = engine.validate_address(Address(country="US"))
    assert (no_region.valid, no_region.fields) == (False, ("region",))
    unknown_region = engine.validate_address(Address(country="US", region="NY"))
    assert unknown_region.valid is True  # ("US", "*", "DIGITAL") covers any region
    france = engine.validate_address(Address(country="FR"))
    assert france.valid is True
    germany = engine.validate_address(Address(country="DE"))
    assert (germany.valid, germany.fields) == (False, ("country",))
    only_states = RateTableEngine({("CA", "QC", "*"): []})
    ontario = only_states.validate_address(Address(country="CA", region="ON"))
    assert (ontario.valid, ontario.messages) == (
        False,
        ("no tax rule for region ON of CA",),
    )


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ({("US", "CA"): []}, ValueError),
        ({("*", "*", "*"): []}, ValueError),
        ({("US", "", "*"): []}, ValueError),
        ({("US", "CA", "*"): [("CA", "State", 0.0725)]}, TypeError),
        ({("US", "CA", "*"): [("CA", "State", D("7.25"))]}, ValueError),
        ({("US", "CA", "*"): [("CA", "State", D("-0.01"))]}, ValueError),
    ],
)
def test_bad_tables(table, error):
    with pytest.raises(error):
        RateTableEngine(table)
    with pytest.raises(ValueError, match="missing must be"):
        RateTableEngine({}, missing="ignore")
