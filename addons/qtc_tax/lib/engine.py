"""The tax engine interface, and the canonical documents and results it speaks.

Odoo orders and invoices are translated once into a :class:`TaxDocument`; every
engine (Avalara AvaTax through ``avatax.py``, the offline :class:`RateTableEngine`
of ``rate_table.py``, whatever comes next) answers with a :class:`TaxResult`. The
Odoo layer never sees an engine's own shapes, so switching engines or falling back
to the rate table when AvaTax is down changes nothing above this interface.

Conventions:

- Money, quantities and rates are ``Decimal``; a float anywhere is refused at
  construction, because a float amount is already a rounding error.
- A line's ``amount`` is the line total (quantity times unit price, after
  discount), as tax engines expect, not a unit price.
- Rates are fractions: ``Decimal("0.0625")`` is 6.25 %.
- Refund documents carry positive amounts like the credit note they come from;
  the engine returns negative taxes for them.

Errors come in two kinds because they are handled in two ways:
:class:`TaxEngineUnavailable` (timeouts, 5xx, 429: retry later, count towards the
circuit breaker, fall back) and :class:`TaxEngineRejected` (the document itself is
wrong: an address that does not resolve, a missing exemption; a person must fix
the data, retrying will not help).
"""

import abc
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


class DocumentType(StrEnum):
    """The kinds of document a tax engine is asked about (AvaTax's names)."""

    SALES_ORDER = "SalesOrder"  # a quote: never recorded by the engine
    SALES_INVOICE = "SalesInvoice"  # a posted invoice: committed
    RETURN_INVOICE = "ReturnInvoice"  # a refund of a committed invoice


# -- errors ------------------------------------------------------------------------


class TaxEngineError(Exception):
    """Base class of the errors a tax engine raises.

    :param message: what went wrong, safe to show and log (no credentials)
    :param code: the engine's error code, if it gave one
    :param status: the HTTP status, or ``None`` (no response, or not HTTP)
    """

    def __init__(self, message, *, code=None, status=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class TaxEngineUnavailable(TaxEngineError):
    """A transient failure: timeout, connection error, 5xx, 429. Retry later.

    :param retry_after: seconds the engine asked us to wait (``Retry-After``), or
        ``None`` to let the backoff schedule decide
    """

    def __init__(self, message, *, code=None, status=None, retry_after=None):
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class TaxEngineRejected(TaxEngineError):
    """The engine refused the document: the data must change before a retry helps.

    :param fields: the document fields concerned, in our names (``ship_to``,
        ``exemption_number``, ``lines[0].tax_code`` ...), most relevant first
    :param details: the engine's detail messages, for the exception queue
    """

    def __init__(self, message, *, code=None, status=None, fields=(), details=()):
        super().__init__(message, code=code, status=status)
        self.fields = tuple(fields)
        self.details = tuple(details)


class TaxEngineConfigurationError(TaxEngineRejected):
    """The engine refused our credentials or account (401, 403).

    A rejection, since retrying does not help, but one for an administrator rather
    than for the finance user who owns the document.
    """


# -- documents ---------------------------------------------------------------------


def _require_decimal(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{owner}.{name} must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{owner}.{name} must be finite, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address, as tax engines want it.

    :param country: ISO 3166-1 alpha-2, upper case (``US``)
    :param region: state or province code (``CA``), empty if none
    """

    country: str
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""

    def __post_init__(self):
        if not isinstance(self.country, str) or not _COUNTRY_RE.match(self.country):
            raise ValueError(
                f"Address.country must be an ISO 3166 alpha-2 code, not "
                f"{self.country!r}"
            )


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One line of a document.

    :param number: the line's identifier within the document (unique)
    :param amount: the line total, tax excluded (``Decimal``)
    :param quantity: informative for most engines (``Decimal``)
    :param tax_code: the engine's product tax code (``SW054000``), or empty
    """

    number: str
    amount: Decimal
    quantity: Decimal = Decimal(1)
    item_code: str = ""
    description: str = ""
    tax_code: str = ""

    def __post_init__(self):
        if not isinstance(self.number, str) or not self.number:
            raise ValueError("TaxLine.number must be a non-empty string")
        object.__setattr__(
            self, "amount", _require_decimal("TaxLine", "amount", self.amount)
        )
        object.__setattr__(
            self, "quantity", _require_decimal("TaxLine", "quantity", self.quantity)
        )


@dataclass(frozen=True, slots=True)
class TaxDocument:
    """An order or invoice, in the form every engine is asked about.

    :param code: our document reference (the engine's transaction code); unique
        per document, so committing twice cannot create two transactions
    :param type: a :class:`DocumentType`
    :param date: the document date (``datetime.date``)
    :param currency: ISO 4217, upper case
    :param customer_code: the customer's stable reference (partner ref or id)
    :param ship_from: our :class:`Address`
    :param ship_to: the customer's :class:`Address`
    :param lines: :class:`TaxLine` objects (a list is turned into a tuple)
    :param exemption_number: the customer's exemption certificate number, if any
    :param entity_use_code: the engine's entity/use code for exempt customers
    """

    code: str
    type: DocumentType
    date: date
    currency: str
    customer_code: str
    ship_from: Address
    ship_to: Address
    lines: tuple = field(default=())
    exemption_number: str | None = None
    entity_use_code: str | None = None

    def __post_init__(self):
        if not isinstance(self.code, str) or not self.code:
            raise ValueError("TaxDocument.code must be a non-empty string")
        object.__setattr__(self, "type", DocumentType(self.type))
        # A datetime is a date subclass, but would leak a time into the engine's
        # date field (and a time zone question into the tax date): refused.
        if not isinstance(self.date, date) or isinstance(self.date, datetime):
            raise TypeError("TaxDocument.date must be a datetime.date")
        if not isinstance(self.currency, str) or not _CURRENCY_RE.match(self.currency):
            raise ValueError(
                f"TaxDocument.currency must be an ISO 4217 code, not {self.currency!r}"
            )
        if not isinstance(self.customer_code, str) or not self.customer_code:
            raise ValueError("TaxDocument.customer_code must be a non-empty string")
        for name in ("ship_from", "ship_to"):
            if not isinstance(getattr(self, name), Address):
                raise TypeError(f"TaxDocument.{name} must be an Address")
        lines = tuple(self.lines)
        if not lines:
            raise ValueError("TaxDocument.lines must not be empty")
        if not all(isinstance(line, TaxLine) for line in lines):
            raise TypeError("TaxDocument.lines must hold TaxLine objects")
        numbers = [line.number for line in lines]
        if len(set(numbers)) != len(numbers):
            raise ValueError("TaxDocument.lines must have unique numbers")
        object.__setattr__(self, "lines", lines)


# -- results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JurisdictionTax:
    """The tax of one jurisdiction on one line.

    :param name: e.g. ``CALIFORNIA``, ``LOS ANGELES``
    :param type: ``Country``, ``State``, ``County``, ``City`` or ``Special``
    :param rate: the rate applied, as a fraction
    :param tax: the tax amount, rounded by the engine
    """

    name: str
    type: str
    rate: Decimal
    tax: Decimal


@dataclass(frozen=True, slots=True)
class TaxLineResult:
    """The tax of one document line: the total and its split by jurisdiction."""

    line_number: str
    tax: Decimal
    details: tuple = ()


@dataclass(frozen=True, slots=True)
class TaxResult:
    """An engine's answer for one document.

    :param document_code: the document's code
    :param total_tax: the document's tax total
    :param lines: :class:`TaxLineResult` objects, in document order
    :param engine_transaction_id: the engine's own id of the transaction, if any
    :param committed: True when the engine recorded the transaction for filing
    """

    document_code: str
    total_tax: Decimal
    lines: tuple = ()
    engine_transaction_id: str | None = None
    committed: bool = False

    def line(self, number):
        """Return the :class:`TaxLineResult` of line ``number``.

        :raises KeyError: if there is no such line
        """
        for line in self.lines:
            if line.line_number == number:
                return line
        raise KeyError(number)


@dataclass(frozen=True, slots=True)
class AddressResult:
    """The outcome of an address validation.

    :param valid: True when the engine could resolve the address
    :param address: the normalised :class:`Address` when valid, else ``None``
    :param messages: the engine's explanations (why it is invalid, or warnings)
    :param fields: our address field names the messages point at
    :param resolution_quality: the engine's precision label, if any
    :param latitude: ``Decimal`` or ``None``
    :param longitude: ``Decimal`` or ``None``
    """

    valid: bool
    address: Address | None = None
    messages: tuple = ()
    fields: tuple = ()
    resolution_quality: str | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None


# -- the interface -----------------------------------------------------------------


class TaxEngine(abc.ABC):
    """What the Odoo layer needs from a tax engine.

    Implementations raise :class:`TaxEngineUnavailable` for transient failures and
    :class:`TaxEngineRejected` for documents the engine refuses; nothing else
    escapes for an engine-side problem.
    """

    @abc.abstractmethod
    def quote(self, doc):
        """Compute the tax of a document without recording it (orders, drafts).

        :param doc: a :class:`TaxDocument`
        :returns: a :class:`TaxResult` with ``committed=False``
        """

    @abc.abstractmethod
    def commit(self, doc):
        """Compute and record the tax of a posted invoice, for filing.

        Committing the same document code again must not record it twice.

        :param doc: a :class:`TaxDocument` of type ``SalesInvoice``
        :returns: a :class:`TaxResult` with ``committed=True``
        """

    @abc.abstractmethod
    def void(self, document_code):
        """Void a committed transaction (the invoice was cancelled).

        :param document_code: the code the document was committed under
        :returns: ``None``
        """

    @abc.abstractmethod
    def refund(self, doc, original_code):
        """Record the refund of (part of) a committed invoice.

        :param doc: a :class:`TaxDocument` of type ``ReturnInvoice``, positive
            amounts (the engine turns them into a negative transaction)
        :param original_code: the code of the committed invoice refunded
        :returns: a :class:`TaxResult` with negative taxes and ``committed=True``
        """

    @abc.abstractmethod
    def validate_address(self, address):
        """Check and normalise an address.

        :param address: an :class:`Address`
        :returns: an :class:`AddressResult`
        """
