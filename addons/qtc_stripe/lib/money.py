"""Stripe amounts in minor units <-> ``Decimal`` amounts in major units.

Stripe's API gives every amount as an integer in the currency's smallest unit:
``1099`` USD is 10.99 dollars, ``1099`` JPY is 1,099 yen (the yen has no minor
unit), ``1099`` KWD is 1.099 dinars (three decimals). Getting the exponent wrong
books a payment 100 times too large or too small, so the table lives here once.

The tables follow Stripe's "supported currencies" documentation:

- zero-decimal: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF;
- three-decimal: BHD JOD KWD OMR TND;
- every other currency has two decimals in the API. Stripe's special cases (ISK,
  HUF and TWD, which it handles as zero-decimal only for some payouts or
  charges) are still represented with two decimals in API amounts, so two is
  right for them here too.

Conversions are exact: ``Decimal`` in, ``Decimal`` out, no float anywhere. A
float, a bool (``True`` is an ``int`` in Python) or a value that would need
rounding is refused rather than silently changed: money that does not add up
must stop and be looked at.
"""

from decimal import Context, Decimal

ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def normalize_currency(currency):
    """Return the ISO 4217 code in upper case (Stripe sends lower case).

    :param currency: a three-letter code in any case, e.g. ``"usd"``
    :returns: e.g. ``"USD"``
    :raises TypeError: when ``currency`` is not a string
    :raises ValueError: when it is not exactly three ASCII letters
    """
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a string, got {type(currency).__name__}")
    code = currency.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"currency {currency!r} is not a three-letter ISO 4217 code")
    return code


def currency_exponent(currency):
    """Number of decimals Stripe uses for ``currency`` in API amounts.

    :param currency: a three-letter code in any case
    :returns: 0, 2 or 3
    :raises TypeError, ValueError: as ``normalize_currency``
    """
    code = normalize_currency(currency)
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def to_major(amount_minor, currency):
    """Convert a Stripe integer amount to a ``Decimal`` in major units.

    The result carries exactly the currency's number of decimals, so
    ``to_major(1000, "usd")`` is ``Decimal("10.00")`` and ``str()`` of it reads
    like an amount. Negative amounts (balance debits) are converted as well.

    :param amount_minor: the integer Stripe sent, e.g. ``1099``
    :param currency: a three-letter code in any case
    :returns: e.g. ``Decimal("10.99")`` for USD, ``Decimal("1099")`` for JPY,
        ``Decimal("1.099")`` for KWD
    :raises TypeError: for a bool, float, ``Decimal``, string or anything else
        that is not an ``int``, and for a non-string currency
    :raises ValueError: for an invalid currency code
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(
            "a Stripe amount must be an integer in minor units, "
            f"got {type(amount_minor).__name__}"
        )
    exponent = currency_exponent(currency)
    # Built from a string with an explicit exponent: exact whatever the size of
    # the number, unlike arithmetic, which rounds to the context precision.
    return Decimal(f"{amount_minor}E-{exponent}")


def to_minor(amount, currency):
    """Convert a major-unit amount to the integer Stripe expects.

    :param amount: a ``Decimal`` (or an ``int`` of whole major units)
    :param currency: a three-letter code in any case
    :returns: e.g. ``1099`` for ``Decimal("10.99")`` USD, ``1099`` for
        ``Decimal("1099")`` JPY, ``1099`` for ``Decimal("1.099")`` KWD
    :raises TypeError: for a float, bool, string or any non-``Decimal``,
        non-``int`` value, and for a non-string currency
    :raises ValueError: for NaN or infinity, for an amount with more decimals
        than the currency has (``Decimal("10.999")`` USD, ``Decimal("1.5")``
        JPY), and for an invalid currency code
    """
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        hint = ""
        if isinstance(amount, float):
            hint = " (a float cannot hold most decimal amounts exactly)"
        raise TypeError(
            f"amount must be a Decimal or an int, got {type(amount).__name__}{hint}"
        )
    exponent = currency_exponent(currency)
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    # scaleb only moves the exponent, but it rounds the coefficient to the
    # context precision: give it as many digits as the value has.
    precision = Context(prec=max(28, len(value.as_tuple().digits)))
    minor = value.scaleb(exponent, context=precision)
    if minor != minor.to_integral_value():
        raise ValueError(
            f"amount {amount} has more than {exponent} decimal(s), the precision "
            f"of {normalize_currency(currency)}; refusing to round money"
        )
    return int(minor)
