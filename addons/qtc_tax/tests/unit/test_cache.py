"""The quote cache key: stable where the tax cannot change, sensitive where it can."""

import hashlib
from datetime import date
from decimal import Decimal

import pytest

from .tax_fixtures import document, line
from qtc_tax.lib import cache
from qtc_tax.lib.engine import Address, DocumentType

BASE = cache.request_hash(document())


def test_hash_shape_and_stability():
    assert len(BASE) == 64
    assert all(char in "0123456789abcdef" for char in BASE)
    assert cache.request_hash(document()) == BASE  # same input, same key


def test_hash_is_pinned():
    # A change of the canonical rendering must be deliberate (bump HASH_VERSION):
    # quotes cached under the old rendering would otherwise be misread.
    rendering = (
        '{"context":null,"document":{"a":{"$decimal":"1.5"},"d":{"$date":'
        '"2026-03-02"}},"version":"qtc-tax-request-v1"}'
    )
    expected = hashlib.sha256(rendering.encode()).hexdigest()
    assert cache.request_hash({"d": date(2026, 3, 2), "a": Decimal("1.50")}) == (
        expected
    )
    doc = document(lines=[line("1", "100")])
    assert cache.request_hash(doc, {"engine": "avatax"}) == (
        "6935aa764fef2008561e8c59c18af36765645444018aa798920c39d4dbaed6cf"
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (Decimal("100"), Decimal("100.00")),
        (Decimal("100"), Decimal("1E+2")),
        (Decimal("0"), Decimal("-0.00")),
        (Decimal("0.5"), Decimal("0.50000")),
    ],
)
def test_decimal_representation_does_not_matter(left, right):
    assert cache.request_hash(document(lines=[line("1", left)])) == cache.request_hash(
        document(lines=[line("1", right)])
    )


def test_decimal_text_is_exact():
    assert cache.decimal_text(Decimal("1234.5600")) == "1234.56"
    assert cache.decimal_text(Decimal("1E+3")) == "1000"
    long = Decimal("1.00000000000000000000000000000001")  # 33 digits > context 28
    assert cache.decimal_text(long) == "1.00000000000000000000000000000001"
    assert cache.decimal_text(Decimal("-0.10")) == "-0.1"
    with pytest.raises(ValueError):
        cache.decimal_text(Decimal("NaN"))


def test_mapping_key_order_does_not_matter():
    first = {"company": "QTC-US", "engine": "avatax", "commit": False}
    second = {"commit": False, "engine": "avatax", "company": "QTC-US"}
    assert cache.request_hash(document(), first) == cache.request_hash(
        document(), second
    )
    plain_a = {"b": {"y": 1, "x": [Decimal("1.0")]}, "a": "t"}
    plain_b = {"a": "t", "b": {"x": [Decimal("1")], "y": 1}}
    assert cache.request_hash(plain_a) == cache.request_hash(plain_b)


def test_enum_and_string_type_are_the_same():
    assert cache.request_hash(document(type="SalesOrder")) == BASE
    assert cache.request_hash(document(type=DocumentType.SALES_ORDER)) == BASE


@pytest.mark.parametrize(
    "changes",
    [
        {"code": "SO-2026-0043"},
        {"type": DocumentType.SALES_INVOICE},
        {"date": date(2026, 3, 3)},
        {"currency": "CAD"},
        {"customer_code": "CUST-1002"},
        {"exemption_number": "EX-1"},
        {"entity_use_code": "E"},
        {"ship_to": Address(country="US", region="IL", postal_code="60606")},
        {"ship_from": Address(country="US", region="CA")},
        {"lines": [line("1", "1234.57")]},
    ],
)
def test_anything_that_can_change_the_tax_changes_the_hash(changes):
    assert cache.request_hash(document(**changes)) != BASE


def test_line_fields_change_the_hash():
    doc = document()
    original = doc.lines
    variants = [
        (line("1", "1234.56", tax_code="X"), *original[1:]),
        (line("1", "1234.56", item_code="X"), *original[1:]),
        (line("9", "1234.56"), *original[1:]),
        original[:2],
        (original[1], original[0], original[2]),  # order matters: a miss, not a lie
    ]
    hashes = {cache.request_hash(document(lines=lines)) for lines in variants}
    assert len(hashes) == len(variants)
    assert BASE not in hashes


def test_context_changes_the_hash():
    assert cache.request_hash(document(), {"company": "A"}) != cache.request_hash(
        document(), {"company": "B"}
    )
    assert cache.request_hash(document(), {}) != BASE  # {} is not None


def test_floats_and_unknown_types_are_refused():
    with pytest.raises(TypeError, match="floats cannot be hashed"):
        cache.request_hash({"amount": 1.5})
    with pytest.raises(TypeError, match="cannot hash a set"):
        cache.request_hash({"tags": {"a"}})
    with pytest.raises(TypeError, match="mapping keys must be strings"):
        cache.request_hash({1: "a"})
