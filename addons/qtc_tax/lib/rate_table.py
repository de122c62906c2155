"""A tax engine driven by a fixed table of rates: the offline fallback, and the
engine of companies that need no more than that.

The table maps ``(country, state, tax code)`` to the jurisdictions that tax such a
line, ``"*"`` standing for any state or any tax code::

    {
        ("US", "CA", "*"): [("CALIFORNIA", "State", Decimal("0.06")),
                            ("LOS ANGELES", "County", Decimal("0.0025"))],
        ("US", "*", "DIGITAL"): [],        # digital goods untaxed in the rest of the US
        ("FR", "*", "*"): [("FRANCE", "Country", Decimal("0.20"))],
    }

The most specific key wins (exact state and tax code, then exact state, then
exact tax code, then country only); rules do not add up across keys.

Amounts are exact: each jurisdiction's tax on each line is ``amount * rate``
rounded half up to the currency's minor unit, a line's tax is the sum of its
jurisdictions, and the document total the sum of its lines, so the total always
equals what the lines show. (Rounding the total separately could differ from the
lines by a cent, which a customer would rightly query.)

Commit, void and refund are kept in memory, per engine instance: enough for the
fallback's purpose (the Odoo layer persists what it needs) and for tests.
"""

from decimal import ROUND_HALF_UP, Decimal

from . import cache
from .engine import (
    AddressResult,
    DocumentType,
    JurisdictionTax,
    TaxEngine,
    TaxEngineRejected,
    TaxLineResult,
    TaxResult,
)

ANY = "*"
MISSING_REJECT = "reject"
MISSING_ZERO = "zero"

# ISO 4217 minor units that are not 2 (the common ones; extend per company).
CURRENCY_DECIMALS = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "VND": 0,
}


def round_tax(amount, decimals):
    """Round a tax amount half up (away from zero on a tie) to ``decimals``.

    :param amount: a ``Decimal``
    :param decimals: the currency's minor unit
    :returns: the rounded ``Decimal``
    """
    return amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _normalise_table(table):
    rules = {}
    for key, jurisdictions in table.items():
        if not (isinstance(key, tuple) and len(key) == 3):
            raise ValueError(f"rate table keys are (country, state, tax code): {key!r}")
        country, state, tax_code = key
        if not all(isinstance(part, str) and part for part in key):
            raise ValueError(f"rate table key parts must be non-empty strings: {key!r}")
        if country == ANY:
            raise ValueError(f"the country of a rate table key cannot be '*': {key!r}")
        normalised = []
        for jurisdiction in jurisdictions:
            name, kind, rate = jurisdiction
            if isinstance(rate, bool) or not isinstance(rate, (Decimal, int)):
                raise TypeError(
                    f"rate of {name} must be a Decimal, not {type(rate).__name__}"
                )
            rate = Decimal(rate)
            if not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
                raise ValueError(f"rate of {name} must be a fraction in [0, 1): {rate}")
            normalised.append((str(name), str(kind), rate))
        rules[(country.upper(), state.upper(), tax_code)] = tuple(normalised)
    return rules


class RateTableEngine(TaxEngine):
    """A :class:`~.engine.TaxEngine` computing taxes from a rate table.

    :param table: ``{(country, state or "*", tax code or "*"): [(jurisdiction
        name, jurisdiction type, rate), ...]}`` with ``Decimal`` rates
    :param missing: what a line without a matching rule does: ``reject`` (raise
        :class:`~.engine.TaxEngineRejected`, the default: silently untaxed sales
        are a liability) or ``zero`` (no tax)
    :param currency_decimals: minor units overriding :data:`CURRENCY_DECIMALS`
    :raises ValueError, TypeError: for a malformed table
    """

    def __init__(self, table, *, missing=MISSING_REJECT, currency_decimals=None):
        if missing not in (MISSING_REJECT, MISSING_ZERO):
            raise ValueError(f"missing must be 'reject' or 'zero', not {missing!r}")
        self._rules = _normalise_table(table)
        self._missing = missing
        self._decimals = dict(CURRENCY_DECIMALS, **(currency_decimals or {}))
        self._committed = {}  # document code -> (request hash, TaxResult)
        self._voided = set()

    # -- lookups -------------------------------------------------------------------

    def rules_for(self, country, state, tax_code):
        """Return the jurisdictions taxing a line, most specific key first.

        :param country: ship-to country
        :param state: ship-to region (may be empty)
        :param tax_code: the line's tax code (may be empty)
        :returns: a tuple of ``(name, type, rate)``, or ``None`` if no key matches
        """
        country, state = country.upper(), (state or "").upper()
        for key in (
            (country, state, tax_code),
            (country, state, ANY),
            (country, ANY, tax_code),
            (country, ANY, ANY),
        ):
            if key in self._rules:
                return self._rules[key]
        return None

    def decimals(self, currency):
        """Return the minor unit of ``currency`` (2 unless listed)."""
        return self._decimals.get(currency, 2)

    # -- computation ---------------------------------------------------------------

    def _compute(self, doc, sign, committed, transaction_id=None):
        decimals = self.decimals(doc.currency)
        zero = round_tax(Decimal(0), decimals)
        exempt = bool(doc.exemption_number or doc.entity_use_code)
        lines, unmatched = [], []
        for index, line in enumerate(doc.lines):
            rules = (
                ()
                if exempt
                else self.rules_for(
                    doc.ship_to.country, doc.ship_to.region, line.tax_code
                )
            )
            if rules is None:
                unmatched.append((index, line))
                rules = ()
            details = tuple(
                JurisdictionTax(
                    name=name,
                    type=kind,
                    rate=rate,
                    tax=round_tax(sign * line.amount * rate, decimals),
                )
                for name, kind, rate in rules
            )
            tax = sum((detail.tax for detail in details), zero)
            lines.append(TaxLineResult(line.number, tax, details))
        if unmatched and self._missing == MISSING_REJECT:
            raise self._no_rule_error(doc, unmatched)
        return TaxResult(
            document_code=doc.code,
            total_tax=sum((line.tax for line in lines), zero),
            lines=tuple(lines),
            engine_transaction_id=transaction_id,
            committed=committed,
        )

    def _no_rule_error(self, doc, unmatched):
        country = doc.ship_to.country
        region = (doc.ship_to.region or "").upper()
        place_known = any(
            key[0] == country and key[1] in (region, ANY) for key in self._rules
        )
        if place_known:
            # The place is taxed, just not these tax codes.
            fields = [f"lines[{index}].tax_code" for index, _line in unmatched]
            codes = sorted({line.tax_code or "(none)" for _index, line in unmatched})
            message = (
                f"no tax rule for tax code {', '.join(codes)} in "
                f"{country}/{region or '*'}"
            )
        else:
            fields = ["ship_to"]
            message = f"no tax rule for {country}/{region or '*'}"
        return TaxEngineRejected(message, code="NoTaxRule", fields=fields)

    # -- the engine interface ------------------------------------------------------

    def quote(self, doc):
        """Compute the tax of a document without recording it.

        :param doc: a :class:`~.engine.TaxDocument`
        :returns: a :class:`~.engine.TaxResult`, ``committed=False``; negative
            taxes for a ``ReturnInvoice``
        :raises TaxEngineRejected: (``NoTaxRule``) under the ``reject`` policy
        """
        sign = -1 if doc.type == DocumentType.RETURN_INVOICE else 1
        return self._compute(doc, sign, committed=False)

    def commit(self, doc):
        """Compute and record a posted invoice; committing it again is harmless.

        :param doc: a :class:`~.engine.TaxDocument` of type ``SalesInvoice``
        :returns: a :class:`~.engine.TaxResult`, ``committed=True``
        :raises ValueError: for another document type
        :raises TaxEngineRejected: ``DocumentCodeConflict`` if the code was
            committed with different content, ``NoTaxRule``
        """
        if doc.type != DocumentType.SALES_INVOICE:
            raise ValueError(f"only a SalesInvoice is committed, not a {doc.type}")
        return self._record(doc, sign=1)

    def _record(self, doc, sign):
        request = cache.request_hash(doc)
        if doc.code in self._committed and doc.code not in self._voided:
            previous_request, result = self._committed[doc.code]
            if previous_request == request:
                return result
            raise TaxEngineRejected(
                f"{doc.code} is already committed with other content; void it first",
                code="DocumentCodeConflict",
                fields=["code"],
            )
        result = self._compute(
            doc, sign, committed=True, transaction_id=f"rate_table:{doc.code}"
        )
        self._committed[doc.code] = (request, result)
        self._voided.discard(doc.code)
        return result

    def void(self, document_code):
        """Void a committed transaction; voiding it again does nothing.

        :param document_code: the committed document's code
        :raises TaxEngineRejected: (``EntityNotFoundError``) if it was never
            committed
        """
        if document_code not in self._committed:
            raise TaxEngineRejected(
                f"no committed transaction {document_code}",
                code="EntityNotFoundError",
                fields=["code"],
            )
        self._voided.add(document_code)

    def refund(self, doc, original_code):
        """Record the refund of a committed invoice, at today's table rates.

        :param doc: a :class:`~.engine.TaxDocument` of type ``ReturnInvoice``
        :param original_code: the refunded invoice's code
        :returns: a :class:`~.engine.TaxResult` with negative taxes
        :raises ValueError: for another document type
        :raises TaxEngineRejected: if the original is unknown or voided
        """
        if doc.type != DocumentType.RETURN_INVOICE:
            raise ValueError(f"a refund is a ReturnInvoice, not a {doc.type}")
        if original_code not in self._committed or original_code in self._voided:
            raise TaxEngineRejected(
                f"{original_code} is not a committed transaction",
                code="EntityNotFoundError",
                fields=["original_code"],
            )
        return self._record(doc, sign=-1)

    def is_committed(self, document_code):
        """Tell whether a code is committed and not voided."""
        return document_code in self._committed and document_code not in self._voided

    def validate_address(self, address):
        """Check an address against what the table can tax.

        The table cannot check streets; it checks that the country is taxed here
        (under the ``reject`` policy) and that a region is given where rates depend
        on it, and returns the address with its codes upper-cased and parts
        stripped.

        :param address: an :class:`~.engine.Address`
        :returns: an :class:`~.engine.AddressResult`
        """
        country = address.country.upper()
        region = address.region.strip().upper()
        keys = [key for key in self._rules if key[0] == country]
        messages, fields = [], []
        if not keys and self._missing == MISSING_REJECT:
            messages.append(f"no tax rule for country {country}")
            fields.append("country")
        if not region and any(key[1] != ANY for key in keys):
            messages.append(f"a region is required for {country}")
            fields.append("region")
        if region and keys and not any(key[1] in (region, ANY) for key in keys):
            messages.append(f"no tax rule for region {region} of {country}")
            fields.append("region")
        if messages:
            return AddressResult(False, None, tuple(messages), tuple(fields))
        normalised = type(address)(
            country=country,
            line1=address.line1.strip(),
            line2=address.line2.strip(),
            city=address.city.strip(),
            region=region,
            postal_code=address.postal_code.strip(),
        )
        return AddressResult(True, normalised)


def build_table(rows):
    """Group flat rate rows into the table :class:`RateTableEngine` takes.

    :param rows: iterable of ``(country, state, tax code, jurisdiction name,
        jurisdiction type, rate)``; an empty state or tax code means ``"*"``;
        rates are ``Decimal`` fractions
    :returns: ``{(country, state, tax code): [(name, type, rate), ...]}``, rows
        of one key in the order given
    :raises ValueError: for a row without a country
    """
    table = {}
    for country, state, tax_code, name, kind, rate in rows:
        if not country:
            raise ValueError(f"rate row {name!r} has no country")
        key = (country.upper(), (state or ANY).upper(), tax_code or ANY)
        table.setdefault(key, []).append((name, kind, rate))
    return table


class StoredRateTableEngine(RateTableEngine):
    """A rate table engine whose commits the caller keeps, not the instance.

    The Odoo layer builds a fresh engine for every call and records on the
    invoice what it committed, so nothing here remembers a document: committing
    computes the taxes (the same code twice gives the same answer, and nothing is
    recorded twice because nothing is recorded), voiding has nothing to undo, and
    a refund is computed without looking the original up.
    """

    def commit(self, doc):
        """Compute a posted invoice's taxes, ``committed=True``.

        :raises ValueError: for another document type
        :raises TaxEngineRejected: ``NoTaxRule`` under the ``reject`` policy
        """
        if doc.type != DocumentType.SALES_INVOICE:
            raise ValueError(f"only a SalesInvoice is committed, not a {doc.type}")
        return self._compute(
            doc, 1, committed=True, transaction_id=f"rate_table:{doc.code}"
        )

    def void(self, document_code):
        """Nothing is recorded by the table: voiding changes nothing."""
        if not document_code:
            raise ValueError("a document code is required")

    def refund(self, doc, original_code, original_date=None):
        """Compute a refund's (negative) taxes at today's table rates.

        :param original_date: accepted for interface parity; the table has no
            history of rates, so it is not used
        :raises ValueError: for another document type or no original code
        """
        if doc.type != DocumentType.RETURN_INVOICE:
            raise ValueError(f"a refund is a ReturnInvoice, not a {doc.type}")
        if not original_code:
            raise ValueError("a refund needs the code of the refunded invoice")
        return self._compute(
            doc, -1, committed=True, transaction_id=f"rate_table:{doc.code}"
        )
