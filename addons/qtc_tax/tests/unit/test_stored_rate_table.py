"""The rate table as the Odoo layer uses it: table built from rows, commits kept
by the caller."""

from decimal import Decimal

import pytest

from .tax_fixtures import document
from qtc_tax.lib.engine import DocumentType, TaxEngineRejected
from qtc_tax.lib.rate_table import StoredRateTableEngine, build_table

D = Decimal
ROWS = [
    ("us", "il", "", "ILLINOIS", "State", D("0.0625")),
    ("US", "IL", None, "COOK", "County", D("0.0175")),
    ("US", "IL", "S0000000", "NONE", "State", D("0")),
    ("US", "", "", "FEDERAL", "Country", D("0.01")),
]


def test_build_table_groups_rows_per_key():
    assert build_table(ROWS) == {
        ("US", "IL", "*"): [
            ("ILLINOIS", "State", D("0.0625")),
            ("COOK", "County", D("0.0175")),
        ],
        ("US", "IL", "S0000000"): [("NONE", "State", D("0"))],
        ("US", "*", "*"): [("FEDERAL", "Country", D("0.01"))],
    }


def test_build_table_needs_a_country():
    with pytest.raises(ValueError, match="no country"):
        build_table([("", "IL", "", "X", "State", D("0.01"))])


def test_commit_twice_gives_the_same_answer():
    engine = StoredRateTableEngine(build_table(ROWS))
    doc = document(type=DocumentType.SALES_INVOICE, code="INV-1")
    first = engine.commit(doc)
    assert first.committed is True
    assert first.engine_transaction_id == "rate_table:INV-1"
    # Line 1: 1234.56 * 0.0625 = 77.16, * 0.0175 = 21.60 (21.6048).
    assert first.line("1").tax == D("98.76")
    assert StoredRateTableEngine(build_table(ROWS)).commit(doc) == first


def test_commit_refuses_other_types():
    with pytest.raises(ValueError):
        StoredRateTableEngine(build_table(ROWS)).commit(document())


def test_void_and_refund_need_no_memory():
    engine = StoredRateTableEngine(build_table(ROWS))
    assert engine.void("never-committed") is None
    with pytest.raises(ValueError):
        engine.void("")
    refund = engine.refund(
        document(type=DocumentType.RETURN_INVOICE, code="RINV-1"), "INV-1"
    )
    assert refund.line("1").tax == D("-98.76")
    assert refund.committed is True
    with pytest.raises(ValueError):
        engine.refund(document(type=DocumentType.RETURN_INVOICE, code="R"), "")
    with pytest.raises(ValueError):
        engine.refund(document(), "INV-1")


def test_missing_rule_is_still_rejected():
    engine = StoredRateTableEngine(build_table(ROWS[:2]))
    doc = document(
        type=DocumentType.SALES_INVOICE,
        code="INV-2",
        ship_to=document().ship_to.__class__(country="CA", region="ON"),
    )
    with pytest.raises(TaxEngineRejected) as caught:
        engine.commit(doc)
    assert caught.value.fields == ("ship_to",)
