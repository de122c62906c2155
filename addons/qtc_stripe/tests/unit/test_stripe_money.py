"""Minor units <-> Decimal major units, per Stripe's currency exponents."""

from decimal import Decimal

import pytest

from qtc_stripe.lib import money

ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
THREE_DECIMAL = "BHD JOD KWD OMR TND".split()


def test_tables_are_stripes_documented_lists():
    assert money.ZERO_DECIMAL_CURRENCIES == frozenset(ZERO_DECIMAL)
    assert money.THREE_DECIMAL_CURRENCIES == frozenset(THREE_DECIMAL)


@pytest.mark.parametrize("code", ZERO_DECIMAL)
def test_zero_decimal_currencies(code):
    assert money.currency_exponent(code) == 0
    assert money.currency_exponent(code.lower()) == 0
    assert money.to_major(1099, code) == Decimal("1099")


@pytest.mark.parametrize("code", THREE_DECIMAL)
def test_three_decimal_currencies(code):
    assert money.currency_exponent(code) == 3
    assert money.to_major(1099, code.lower()) == Decimal("1.099")


@pytest.mark.parametrize("code", ["USD", "EUR", "GBP", "CHF", "HUF", "ISK", "TWD"])
def test_other_currencies_have_two_decimals(code):
    assert money.currency_exponent(code) == 2


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [
        (1099, "usd", "10.99"),
        (1000, "USD", "10.00"),
        (1, "Usd", "0.01"),
        (0, "usd", "0.00"),
        (-250, "usd", "-2.50"),
        (1099, "jpy", "1099"),
        (1, "JPY", "1"),
        (5_000_000, "jpy", "5000000"),
        (1099, "kwd", "1.099"),
        (10, "KWD", "0.010"),
        (1_000, "kwd", "1.000"),
    ],
)
def test_to_major(minor, currency, major):
    result = money.to_major(minor, currency)
    assert isinstance(result, Decimal)
    # str() checks the exponent too: 10.00, not 10 or 10.0.
    assert str(result) == major


def test_to_major_is_exact_for_huge_amounts():
    minor = 12_345_678_901_234_567_890_123_456_789_012
    assert str(money.to_major(minor, "usd")) == "123456789012345678901234567890.12"


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [
        (Decimal("10.99"), "usd", 1099),
        (Decimal("10.990"), "USD", 1099),
        (Decimal("10"), "usd", 1000),
        (10, "usd", 1000),
        (Decimal("0.01"), "usd", 1),
        (Decimal("-2.5"), "usd", -250),
        (Decimal("1099"), "jpy", 1099),
        (Decimal("1E+3"), "JPY", 1000),
        (Decimal("1099.0"), "jpy", 1099),
        (Decimal("1.099"), "kwd", 1099),
        (Decimal("0.01"), "KWD", 10),
        (
            Decimal("123456789012345678901234567890.12"),
            "usd",
            12345678901234567890123456789012,
        ),
    ],
)
def test_to_minor(major, currency, minor):
    result = money.to_minor(major, currency)
    assert type(result) is int
    assert result == minor


@pytest.mark.parametrize("currency", ["usd", "jpy", "kwd", "bhd", "eur"])
def test_round_trip(currency):
    for minor in (0, 1, 9, 10, 99, 100, 101, 1099, 123_456_789, -1, -1099):
        assert money.to_minor(money.to_major(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (Decimal("10.999"), "usd"),
        (Decimal("0.001"), "usd"),
        (Decimal("1.5"), "jpy"),
        (Decimal("0.1"), "JPY"),
        (Decimal("1.0995"), "kwd"),
    ],
)
def test_to_minor_refuses_to_round(amount, currency):
    with pytest.raises(ValueError, match="refusing to round money"):
        money.to_minor(amount, currency)


@pytest.mark.parametrize(
    "amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Inf")]
)
def test_to_minor_rejects_non_finite(amount):
    with pytest.raises(ValueError, match="not a finite number"):
        money.to_minor(amount, "usd")


@pytest.mark.parametrize("amount", [10.99, 10.0, True, False, "10.99", None, [1]])
def test_to_minor_rejects_non_decimal(amount):
    with pytest.raises(TypeError):
        money.to_minor(amount, "usd")


def test_to_minor_float_message_says_why():
    with pytest.raises(TypeError, match="float cannot hold"):
        money.to_minor(0.1, "usd")


@pytest.mark.parametrize(
    "amount", [10.99, 1099.0, True, False, "1099", Decimal("1099"), None]
)
def test_to_major_rejects_non_integers(amount):
    with pytest.raises(TypeError, match="integer in minor units"):
        money.to_major(amount, "usd")


@pytest.mark.parametrize("currency", ["", "US", "USDD", "U$D", "12A", "ÜSD", "u s"])
def test_invalid_currency_codes(currency):
    with pytest.raises(ValueError, match="three-letter ISO 4217"):
        money.to_major(100, currency)
    with pytest.raises(ValueError, match="three-letter ISO 4217"):
        money.to_minor(Decimal(1), currency)


@pytest.mark.parametrize("currency", [None, 840, b"usd"])
def test_non_string_currency(currency):
    with pytest.raises(TypeError):
        money.to_major(100, currency)


def test_normalize_currency():
    assert money.normalize_currency(" eur ") == "EUR"
    assert money.normalize_currency("Kwd") == "KWD"
