"""Cash application: metadata first, then customer + exact amount, else a person."""

from decimal import Decimal

import pytest

from .stripe_fixtures import object_event
from qtc_stripe.lib import mapper
from qtc_stripe.lib.matching import (
    MatchMethod,
    MatchResult,
    MatchStatus,
    OpenInvoice,
    match_payment,
    match_received,
)

ACME = "partner:7"
GLOBEX = "partner:9"

INV_1 = OpenInvoice(1, "INV/2025/00001", ACME, "EUR", Decimal("100.00"))
INV_2 = OpenInvoice(2, "INV/2025/00002", ACME, "EUR", Decimal("250.00"))
INV_3 = OpenInvoice(3, "INV/2025/00003", ACME, "USD", Decimal("100.00"))
INV_4 = OpenInvoice(4, "INV/2025/00004", GLOBEX, "EUR", Decimal("100.00"))
OPEN = [INV_1, INV_2, INV_3, INV_4]


# ------------------------------------------------------------------- metadata


def test_metadata_id_exact():
    result = match_payment(Decimal("100.00"), "eur", OPEN, invoice_id=1)
    assert result == MatchResult(
        status=MatchStatus.EXACT,
        reason="Payment of 100.00 EUR pays INV/2025/00001 in full "
        "(named by its id in the payment's metadata).",
        invoice=INV_1,
        method=MatchMethod.INVOICE_ID,
        difference=Decimal("0.00"),
    )
    assert result.requires_review is False


def test_metadata_number_partial():
    result = match_payment(Decimal("40.5"), "EUR", OPEN, invoice_ref="INV/2025/00002")
    assert result.status is MatchStatus.PARTIAL
    assert result.invoice == INV_2
    assert result.method is MatchMethod.INVOICE_REF
    assert result.difference == Decimal("-209.50")
    assert result.reason == (
        "Payment of 40.50 EUR pays part of INV/2025/00002 (named by its number in "
        "the payment's metadata): 250.00 EUR was open, 209.50 EUR stays open."
    )
    assert result.requires_review is False


def test_metadata_overpayment_requires_a_person():
    result = match_payment(
        Decimal("120.00"), "eur", OPEN, invoice_ref="INV/2025/00001", invoice_id=1
    )
    assert result.status is MatchStatus.OVERPAYMENT
    assert result.invoice == INV_1
    assert result.method is MatchMethod.INVOICE_ID
    assert result.difference == Decimal("20.00")
    assert result.requires_review is True
    assert result.reason == (
        "Payment of 120.00 EUR is 20.00 EUR more than the 100.00 EUR open on "
        "INV/2025/00001 (named by its id in the payment's metadata). A person must "
        "decide what to do with the excess: refund it, keep it as customer credit "
        "or apply it to another invoice."
    )


def test_overpayment_by_one_cent():
    result = match_payment(Decimal("100.01"), "eur", OPEN, invoice_id=1)
    assert result.status is MatchStatus.OVERPAYMENT
    assert result.difference == Decimal("0.01")


def test_underpayment_by_one_cent():
    result = match_payment(Decimal("99.99"), "eur", OPEN, invoice_id=1)
    assert result.status is MatchStatus.PARTIAL
    assert result.difference == Decimal("-0.01")


def test_metadata_wins_over_customer_and_amount():
    # INV_4 (Globex) is named; INV_1 (Acme) has the same amount and would win
    # by customer + amount. The metadata decides.
    result = match_payment(Decimal("100"), "eur", OPEN, invoice_id=4, partner_key=ACME)
    assert (result.status, result.invoice) == (MatchStatus.EXACT, INV_4)


def test_metadata_names_an_invoice_that_is_not_open():
    result = match_payment(
        Decimal("100.00"), "eur", OPEN, invoice_id=99, partner_key=ACME
    )
    assert result.status is MatchStatus.UNAPPLIED
    assert result.invoice is None
    assert result.method is None
    assert result.difference is None
    assert result.requires_review is True
    # Not silently moved to INV_1, though it has the same amount: a paid
    # invoice named again smells of a double payment.
    assert result.candidates == (INV_1, INV_2)
    assert result.reason == (
        "The payment's metadata names invoice id 99, which is not among the open "
        "invoices: it may be paid already, cancelled or in another company. Check "
        "for a double payment before applying it by hand."
    )


def test_metadata_number_not_open_without_customer_suggests_same_amount():
    result = match_payment(Decimal("100.00"), "eur", OPEN, invoice_ref="INV/2024/9")
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == (INV_1, INV_4)
    assert result.reason.startswith(
        "The payment's metadata names invoice INV/2024/9, which is not among"
    )


def test_metadata_id_and_number_disagree():
    result = match_payment(
        Decimal("100.00"), "eur", OPEN, invoice_id=1, invoice_ref="INV/2025/00002"
    )
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == (INV_1, INV_2)
    assert result.reason == (
        "The payment's metadata disagrees with itself: invoice id 1 is "
        "INV/2025/00001 but the invoice number given is INV/2025/00002. Decide "
        "which invoice it pays."
    )


def test_metadata_number_shared_by_two_open_invoices_is_ambiguous():
    twin = OpenInvoice(11, "INV/2025/00001", GLOBEX, "EUR", Decimal("100.00"))
    result = match_payment(
        Decimal("100.00"), "eur", [*OPEN, twin], invoice_ref="INV/2025/00001"
    )
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == (INV_1, twin)
    assert "2 open invoices carry that number" in result.reason


def test_metadata_invoice_in_another_currency():
    result = match_payment(Decimal("100.00"), "eur", OPEN, invoice_id=3)
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == (INV_3,)
    assert result.reason == (
        "The payment is in EUR but INV/2025/00003, named in its metadata, is in "
        "USD. Apply it by hand."
    )


# ----------------------------------------------------- customer + exact amount


def test_customer_and_exact_amount_single_fit():
    result = match_payment(Decimal("250"), "eur", OPEN, partner_key=ACME)
    assert result == MatchResult(
        status=MatchStatus.EXACT,
        reason="Payment of 250.00 EUR pays INV/2025/00002 in full (the only open "
        "invoice of this customer for exactly this amount).",
        invoice=INV_2,
        method=MatchMethod.CUSTOMER_AMOUNT,
        difference=Decimal("0"),
    )


def test_customer_amount_ignores_other_currencies_and_customers():
    # INV_3 (Acme, USD 100) and INV_4 (Globex, EUR 100) must not compete.
    result = match_payment(Decimal("100.00"), "eur", OPEN, partner_key=ACME)
    assert (result.status, result.invoice) == (MatchStatus.EXACT, INV_1)


def test_customer_with_two_invoices_of_that_amount_is_ambiguous():
    twin = OpenInvoice(12, "INV/2025/00012", ACME, "EUR", Decimal("100.0"))
    result = match_payment(Decimal("100.00"), "eur", [*OPEN, twin], partner_key=ACME)
    assert result.status is MatchStatus.UNAPPLIED
    assert result.invoice is None
    assert result.candidates == (INV_1, twin)
    assert result.reason == (
        "The payment names no invoice and 2 open invoices of this customer are "
        "exactly 100.00 EUR: INV/2025/00001, INV/2025/00012. Pick the one it pays."
    )


def test_customer_without_exact_amount_lists_its_open_invoices():
    result = match_payment(Decimal("120.00"), "eur", OPEN, partner_key=ACME)
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == (INV_1, INV_2)
    assert result.reason == (
        "The payment names no invoice and none of the customer's 2 open invoice(s) "
        "in EUR is exactly 120.00 EUR. Apply it by hand."
    )


def test_customer_without_open_invoices_in_that_currency():
    result = match_payment(Decimal("100.00"), "usd", OPEN, partner_key=GLOBEX)
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == ()
    assert result.reason == (
        "The payment names no invoice and the customer has no open invoice in USD. "
        "Keep it as customer credit or refund it."
    )


def test_unknown_customer_suggests_invoices_of_exactly_that_amount():
    result = match_payment(Decimal("100.00"), "eur", OPEN)
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == (INV_1, INV_4)
    assert result.reason == (
        "The payment names no invoice and its customer is not known in Odoo. "
        "2 open invoice(s) of exactly 100.00 EUR are listed as suggestions: "
        "INV/2025/00001, INV/2025/00004."
    )


def test_unknown_customer_and_no_amount_fits():
    result = match_payment(Decimal("1.00"), "eur", OPEN)
    assert result == MatchResult(
        status=MatchStatus.UNAPPLIED,
        reason="The payment names no invoice and its customer is not known in Odoo.",
    )


def test_no_candidates_at_all():
    result = match_payment(Decimal("1.00"), "eur", [], partner_key=ACME)
    assert result.status is MatchStatus.UNAPPLIED
    assert result.candidates == ()


# ----------------------------------------------------------- inputs and types


def test_dict_candidates_are_accepted():
    candidates = [
        {
            "id": 5,
            "name": "INV/2025/00005",
            "partner_key": 7,
            "currency": "jpy",
            "amount_residual": Decimal("5000"),
        }
    ]
    result = match_payment(Decimal("5000"), "JPY", candidates, partner_key=7)
    assert result.status is MatchStatus.EXACT
    assert result.invoice == OpenInvoice(5, "INV/2025/00005", 7, "JPY", Decimal("5000"))
    assert result.reason.startswith("Payment of 5,000 JPY pays INV/2025/00005")


def test_three_decimal_currency_amounts():
    invoice = OpenInvoice(6, "INV/2025/00006", ACME, "KWD", Decimal("1.250"))
    result = match_payment(Decimal("1.2"), "kwd", [invoice], invoice_id=6)
    assert result.status is MatchStatus.PARTIAL
    assert result.reason.endswith("1.250 KWD was open, 0.050 KWD stays open.")


def test_match_received_reads_a_mapped_payment():
    event = object_event(
        "payment_intent.succeeded",
        "payment_intent",
        amount_received=25_000,
        currency="eur",
        metadata={"odoo_invoice": "INV/2025/00002", "odoo_invoice_id": "2"},
    )
    (payment,) = mapper.map_event(event)
    result = match_received(payment, OPEN, partner_key=ACME)
    assert (result.status, result.invoice, result.method) == (
        MatchStatus.EXACT,
        INV_2,
        MatchMethod.INVOICE_ID,
    )


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (100.0, TypeError),
        ("100", TypeError),
        (True, TypeError),
        (Decimal("0"), ValueError),
        (Decimal("-5"), ValueError),
        (Decimal("NaN"), ValueError),
    ],
)
def test_invalid_payment_amount(amount, error):
    with pytest.raises(error):
        match_payment(amount, "eur", OPEN)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"invoice_id": 0}, ValueError),
        ({"invoice_id": "1"}, ValueError),
        ({"invoice_id": True}, ValueError),
        ({"invoice_ref": 1}, TypeError),
    ],
)
def test_invalid_metadata_arguments(kwargs, error):
    with pytest.raises(error):
        match_payment(Decimal("1"), "eur", OPEN, **kwargs)


@pytest.mark.parametrize(
    ("candidate", "error", "message"),
    [
        ({"id": 1, "name": "X"}, ValueError, "lacks"),
        (
            {
                "id": 1,
                "name": "X",
                "partner_key": 1,
                "currency": "eur",
                "amount_residual": 10.0,
            },
            TypeError,
            "amount_residual must be a Decimal",
        ),
        (
            {
                "id": 1,
                "name": "X",
                "partner_key": 1,
                "currency": "eur",
                "amount_residual": Decimal("0"),
            },
            ValueError,
            "must be positive",
        ),
        (
            {
                "id": 0,
                "name": "X",
                "partner_key": 1,
                "currency": "eur",
                "amount_residual": Decimal("1"),
            },
            ValueError,
            "positive integer",
        ),
        (
            {
                "id": 1,
                "name": " ",
                "partner_key": 1,
                "currency": "eur",
                "amount_residual": Decimal("1"),
            },
            ValueError,
            "name must be",
        ),
        (
            {
                "id": 1,
                "name": "X",
                "partner_key": 1,
                "currency": "euro",
                "amount_residual": Decimal("1"),
            },
            ValueError,
            "ISO 4217",
        ),
        (("INV/1", 100), TypeError, "OpenInvoice or a dict"),
    ],
)
def test_invalid_candidates(candidate, error, message):
    with pytest.raises(error, match=message):
        match_payment(Decimal("1"), "eur", [candidate])
