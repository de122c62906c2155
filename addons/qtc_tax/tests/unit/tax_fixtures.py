"""Builders and fixture loading shared by the qtc_tax unit tests."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from qtc_tax.lib.engine import Address, DocumentType, TaxDocument, TaxLine

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

WAREHOUSE = Address(
    country="US",
    line1="100 Ravine Ln NE",
    city="Bainbridge Island",
    region="WA",
    postal_code="98110",
)
CHICAGO = Address(
    country="US",
    line1="233 S Wacker Dr",
    city="Chicago",
    region="IL",
    postal_code="60606",
)


def load(name):
    """Return the decoded JSON fixture ``name``."""
    return json.loads((FIXTURES / name).read_text())


def line(number, amount, **values):
    """Build a :class:`TaxLine` with a Decimal amount."""
    return TaxLine(number=number, amount=Decimal(amount), **values)


def document(**values):
    """Build the Chicago sales order of the AvaTax fixture, with overrides."""
    defaults = {
        "code": "SO-2026-0042",
        "type": DocumentType.SALES_ORDER,
        "date": date(2026, 3, 2),
        "currency": "USD",
        "customer_code": "CUST-1001",
        "ship_from": WAREHOUSE,
        "ship_to": CHICAGO,
        "lines": (
            line(
                "1",
                "1234.56",
                item_code="SVC-WORKSHOP",
                description="Implementation workshop",
                tax_code="P0000000",
            ),
            line(
                "2",
                "99.99",
                item_code="BOOK-01",
                description="Training manual",
                tax_code="P0000000",
            ),
            line(
                "3",
                "500.00",
                quantity=Decimal(4),
                item_code="SVC-REMOTE",
                description="Remote consulting",
                tax_code="S0000000",
            ),
        ),
    }
    defaults.update(values)
    return TaxDocument(**defaults)
