"""Avalara AvaTax REST v2: request bodies from our documents, results from its
answers, and its errors sorted into "retry later" and "fix the data".

Pure on purpose: the Odoo layer owns the one HTTP seam (credentials, timeout,
retries, the circuit breaker) and calls these functions on either side of it, so
every shape below is tested without a network.

Endpoints (AvaTax REST v2 reference):

- ``POST /api/v2/transactions/create`` (:data:`CREATE_TRANSACTION_PATH`), body
  :func:`build_create_transaction`: a quote is a ``SalesOrder`` (never recorded),
  a posted invoice a ``SalesInvoice`` with ``commit: true``, a refund a
  ``ReturnInvoice`` (:func:`build_refund_transaction`): negative amounts, the
  refunded invoice as ``referenceCode``, and a ``TaxDate`` override so the refund
  is taxed at the rates of the original invoice, not today's.
- ``POST /api/v2/companies/{companyCode}/transactions/{transactionCode}/void``
  (:func:`void_path`), body ``{"code": "DocVoided"}`` (:func:`build_void_body`).
- ``POST /api/v2/addresses/resolve`` (:data:`RESOLVE_ADDRESS_PATH`), body
  :func:`build_resolve_address`, answer :func:`parse_address_resolution`.

Numbers: our ``Decimal`` values are written as JSON numbers (AvaTax's type),
and only when the float that JSON serialisation goes through reproduces them
exactly; otherwise a ``ValueError`` is raised rather than a rounded amount sent.
Answers are read back into ``Decimal`` through the number's shortest text, so
``0.0625`` stays ``0.0625`` (or pass ``parse_float=Decimal`` to ``json.loads``).

Errors: AvaTax answers ``{"error": {"code", "message", "details": [{"code",
"message", "refersTo", "severity", ...}]}}``. :func:`parse_error` turns it, with the
HTTP status and headers, into :class:`~.engine.TaxEngineUnavailable` (timeouts,
5xx, 429 with its ``Retry-After``, AvaTax's own "server unreachable" codes) or
:class:`~.engine.TaxEngineRejected` with our field names (``ship_to``,
``exemption_number``, ``lines[0].tax_code``) so the exception queue can point a
finance user at what to fix.
"""

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from .engine import (
    Address,
    AddressResult,
    DocumentType,
    JurisdictionTax,
    TaxEngineConfigurationError,
    TaxEngineRejected,
    TaxEngineUnavailable,
    TaxLineResult,
    TaxResult,
)

CREATE_TRANSACTION_PATH = "/api/v2/transactions/create"
RESOLVE_ADDRESS_PATH = "/api/v2/addresses/resolve"

# VoidTransactionModel.code values.
VOID_REASONS = (
    "Unspecified",
    "PostFailed",
    "DocDeleted",
    "DocVoided",
    "AdjustmentCancelled",
)

# Error codes (AvaTax ErrorCodeId) that mean "try again later" whatever the status.
TRANSIENT_CODES = frozenset(
    {
        "ServerConfiguration",
        "ServerUnreachable",
        "ServiceNotReady",
        "InternalServerError",
        "UnhandledException",
        "RemoteServerError",
        "TimeoutRequested",
        "RequestLimitExceeded",
        "ConcurrentRequestLimitExceeded",
        "RateLimitExceededError",
    }
)
# Codes that mean our credentials or account are wrong: for an administrator.
CONFIGURATION_CODES = frozenset(
    {
        "AuthenticationException",
        "AuthorizationException",
        "BasicAuthIncorrect",
        "BearerTokenInvalid",
        "InactiveAccount",
        "InactiveUserError",
        "AccountExpiredException",
        "AccountInvalidException",
        "CompanyInvalidException",
        "PermissionRequired",
        "SubscriptionRequired",
    }
)
# Business codes whose details may not say which field: the field they imply.
ADDRESS_CODES = frozenset(
    {
        "InvalidAddress",
        "AddressNotGeocoded",
        "AddressLocationNotFound",
        "AddressConflictException",
        "AddressRangeError",
        "MissingAddress",
        "NotEnoughAddressesInfo",
        "InvalidPostalCode",
        "InvalidCountry",
        "InvalidCountryRegion",
        "InvalidAddressTextCase",
    }
)
EXEMPTION_CODES = frozenset(
    {
        "MissingExemptReason",
        "InvalidExemptReason",
        "NoExemptionNoOrCustomerUsageType",
        "InvalidExemptionOperation",
    }
)

# jurisType codes of a transaction line detail, when jurisdictionType is absent.
JURIS_TYPES = {
    "CNT": "Country",
    "STA": "State",
    "CTY": "County",
    "CIT": "City",
    "STJ": "Special",
}

# AvaTax paths (refersTo, lower-cased) -> our TaxDocument field names.
_HEADER_FIELDS = {
    "exemptionno": "exemption_number",
    "entityusecode": "entity_use_code",
    "customerusagetype": "entity_use_code",
    "customercode": "customer_code",
    "currencycode": "currency",
    "date": "date",
    "code": "code",
    "lines": "lines",
}
_LINE_FIELDS = {
    "amount": "amount",
    "quantity": "quantity",
    "taxcode": "tax_code",
    "itemcode": "item_code",
    "description": "description",
    "number": "number",
}
_ADDRESS_PARTS = {
    "line1": "line1",
    "line2": "line2",
    "city": "city",
    "region": "region",
    "postalcode": "postal_code",
    "country": "country",
}
_LINE_RE = re.compile(r"^lines?\[(\d+)\]\.?(\w*)$")


# -- requests ----------------------------------------------------------------------


def _json_number(value):
    """Write a Decimal as an int or float that serialises to exactly its value."""
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ValueError(f"{value} cannot be sent as a JSON number exactly")
    return number


def address_body(address):
    """Write an :class:`~.engine.Address` as an AvaTax ``AddressLocationInfo``.

    :param address: an :class:`~.engine.Address`
    :returns: a ``dict`` without the empty parts
    """
    body = {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "region": address.region,
        "postalCode": address.postal_code,
        "country": address.country,
    }
    return {key: value for key, value in body.items() if value}


def _transaction_body(doc, company_code, commit, sign):
    if not company_code:
        raise ValueError("an AvaTax company code is required")
    body = {
        "type": str(doc.type),
        "code": doc.code,
        "companyCode": company_code,
        "date": doc.date.isoformat(),
        "customerCode": doc.customer_code,
        "currencyCode": doc.currency,
        "commit": commit,
        "addresses": {
            "shipFrom": address_body(doc.ship_from),
            "shipTo": address_body(doc.ship_to),
        },
        "lines": [],
    }
    for line in doc.lines:
        line_body = {
            "number": line.number,
            "quantity": _json_number(line.quantity),
            "amount": _json_number(sign * line.amount),
        }
        if line.tax_code:
            line_body["taxCode"] = line.tax_code
        if line.item_code:
            line_body["itemCode"] = line.item_code
        if line.description:
            line_body["description"] = line.description
        body["lines"].append(line_body)
    if doc.exemption_number:
        body["exemptionNo"] = doc.exemption_number
    if doc.entity_use_code:
        body["entityUseCode"] = doc.entity_use_code
    return body


def build_create_transaction(doc, company_code, commit):
    """Build the body of ``POST /api/v2/transactions/create`` for an order or
    invoice.

    :param doc: a :class:`~.engine.TaxDocument` of type ``SalesOrder`` (a quote)
        or ``SalesInvoice``
    :param company_code: the AvaTax company code of the backend
    :param commit: True to record the invoice for filing (posted invoices)
    :returns: a JSON-ready ``dict``
    :raises ValueError: for a committed ``SalesOrder`` (AvaTax never records
        orders), a ``ReturnInvoice`` (use :func:`build_refund_transaction`), an
        amount that cannot be sent exactly, or a missing company code
    """
    if doc.type == DocumentType.RETURN_INVOICE:
        raise ValueError("refunds are built with build_refund_transaction")
    if doc.type == DocumentType.SALES_ORDER and commit:
        raise ValueError("a SalesOrder is a quote and cannot be committed")
    return _transaction_body(doc, company_code, bool(commit), Decimal(1))


def build_refund_transaction(doc, company_code, original_code, original_date=None):
    """Build the ``transactions/create`` body of a refund (a ``ReturnInvoice``).

    Amounts are negated (AvaTax expects negative amounts on returns; our credit
    notes carry positive ones), the transaction is committed, and it points at
    the refunded invoice through ``referenceCode``. With ``original_date`` the tax
    date is overridden so the refund uses the rates the invoice was taxed at.

    :param doc: a :class:`~.engine.TaxDocument` of type ``ReturnInvoice``
    :param company_code: the AvaTax company code
    :param original_code: the code the refunded invoice was committed under
    :param original_date: the refunded invoice's date, or ``None``
    :returns: a JSON-ready ``dict``
    :raises ValueError: for another document type or a missing original code
    """
    if doc.type != DocumentType.RETURN_INVOICE:
        raise ValueError(f"a refund is a ReturnInvoice, not a {doc.type}")
    if not original_code:
        raise ValueError("a refund needs the code of the refunded invoice")
    body = _transaction_body(doc, company_code, True, Decimal(-1))
    body["referenceCode"] = original_code
    if original_date is not None:
        if not isinstance(original_date, date):
            raise TypeError("original_date must be a datetime.date")
        body["taxOverride"] = {
            "type": "TaxDate",
            "taxDate": original_date.isoformat(),
            "reason": f"Refund of {original_code}",
        }
    return body


def build_void_body(reason="DocVoided"):
    """Build the body of the void call.

    :param reason: a value of :data:`VOID_REASONS`; ``DocVoided`` for a cancelled
        invoice
    :returns: ``{"code": reason}``
    :raises ValueError: for an unknown reason
    """
    if reason not in VOID_REASONS:
        raise ValueError(f"unknown void reason {reason!r}")
    return {"code": reason}


def void_path(company_code, document_code):
    """Return the path of the void call, with both codes URL-encoded.

    :param company_code: the AvaTax company code
    :param document_code: the transaction code (our document code)
    :returns: ``/api/v2/companies/<company>/transactions/<code>/void``
    """
    if not company_code or not document_code:
        raise ValueError("the company code and the document code are required")
    return (
        f"/api/v2/companies/{quote(company_code, safe='')}"
        f"/transactions/{quote(document_code, safe='')}/void"
    )


def build_resolve_address(address):
    """Build the body of ``POST /api/v2/addresses/resolve``.

    :param address: an :class:`~.engine.Address`
    :returns: a JSON-ready ``dict``
    """
    return address_body(address)


# -- answers -----------------------------------------------------------------------


def _decimal(value, what):
    if isinstance(value, bool) or value is None:
        raise _malformed(f"{what} is missing or not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except ArithmeticError:
            raise _malformed(f"{what} is not a number: {value[:40]!r}") from None
        if number.is_finite():
            return number
    raise _malformed(f"{what} is not a number: {value!r}"[:120])


def _malformed(message):
    # A 2xx answer we cannot read: the engine (or a proxy in front of it) is not
    # giving usable answers. Treated as unavailable, so it is retried and counts
    # towards the circuit breaker instead of blaming the document.
    return TaxEngineUnavailable(
        f"unreadable AvaTax answer: {message}", code="MalformedResponse"
    )


def _load(body):
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body, parse_float=Decimal)
        except ValueError:
            return None
    return body


def parse_transaction(response_json):
    """Read an AvaTax ``TransactionModel`` into a :class:`~.engine.TaxResult`.

    :param response_json: the decoded answer of ``transactions/create`` (a
        ``dict``, or the raw text/bytes)
    :returns: a :class:`~.engine.TaxResult`; ``committed`` is True when AvaTax
        reports the status ``Committed``
    :raises TaxEngineUnavailable: (code ``MalformedResponse``) if the answer does
        not have the shape of a transaction
    """
    data = _load(response_json)
    if not isinstance(data, dict):
        raise _malformed("not a JSON object")
    code = data.get("code")
    if not isinstance(code, str) or not code:
        raise _malformed("no transaction code")
    lines = data.get("lines")
    if not isinstance(lines, list):
        raise _malformed("no lines")
    results = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise _malformed(f"line {index} is not an object")
        number = line.get("lineNumber")
        if number is None or isinstance(number, (dict, list, bool)):
            raise _malformed(f"line {index} has no lineNumber")
        details = []
        for detail in line.get("details") or ():
            if not isinstance(detail, dict):
                raise _malformed(f"a detail of line {number} is not an object")
            juris_type = detail.get("jurisdictionType") or JURIS_TYPES.get(
                detail.get("jurisType"), detail.get("jurisType") or ""
            )
            details.append(
                JurisdictionTax(
                    name=detail.get("jurisName")
                    or detail.get("jurisdictionName")
                    or "",
                    type=str(juris_type),
                    rate=_decimal(detail.get("rate"), f"line {number} detail rate"),
                    tax=_decimal(detail.get("tax"), f"line {number} detail tax"),
                )
            )
        results.append(
            TaxLineResult(
                line_number=str(number),
                tax=_decimal(line.get("tax"), f"line {number} tax"),
                details=tuple(details),
            )
        )
    transaction_id = data.get("id")
    return TaxResult(
        document_code=code,
        total_tax=_decimal(data.get("totalTax"), "totalTax"),
        lines=tuple(results),
        engine_transaction_id=None if transaction_id is None else str(transaction_id),
        committed=data.get("status") == "Committed",
    )


def _address_field(refers_to):
    """Map an AvaTax address message target to our Address field name."""
    tail = refers_to.rsplit(".", 1)[-1].lower()
    return _ADDRESS_PARTS.get(tail)


def parse_address_resolution(response_json):
    """Read an AvaTax ``AddressResolutionModel`` into an
    :class:`~.engine.AddressResult`.

    The address is valid when AvaTax returned a validated address and no message
    of severity ``Error``.

    :param response_json: the decoded answer of ``addresses/resolve``
    :returns: an :class:`~.engine.AddressResult`
    :raises TaxEngineUnavailable: (code ``MalformedResponse``) if the answer is
        not an object
    """
    data = _load(response_json)
    if not isinstance(data, dict):
        raise _malformed("not a JSON object")
    messages, fields, has_error = [], [], False
    for message in data.get("messages") or ():
        if not isinstance(message, dict):
            continue
        text = message.get("summary") or message.get("details") or ""
        if message.get("details") and message.get("summary"):
            text = f"{message['summary']} {message['details']}"
        messages.append(text)
        has_error = has_error or message.get("severity") in ("Error", "Exception")
        name = _address_field(message.get("refersTo") or "")
        if name and name not in fields:
            fields.append(name)
    address = None
    validated = data.get("validatedAddresses") or ()
    if validated and isinstance(validated[0], dict):
        first = validated[0]
        country = (first.get("country") or "").upper()
        try:
            address = Address(
                country=country,
                line1=first.get("line1") or "",
                line2=first.get("line2") or "",
                city=first.get("city") or "",
                region=first.get("region") or "",
                postal_code=first.get("postalCode") or "",
            )
        except ValueError:
            address = None
    coordinates = data.get("coordinates") or {}
    latitude = coordinates.get("latitude") if isinstance(coordinates, dict) else None
    longitude = coordinates.get("longitude") if isinstance(coordinates, dict) else None
    valid = address is not None and not has_error
    return AddressResult(
        valid=valid,
        address=address if valid else None,
        messages=tuple(messages),
        fields=tuple(fields),
        resolution_quality=data.get("resolutionQuality"),
        latitude=None if latitude is None else _decimal(latitude, "latitude"),
        longitude=None if longitude is None else _decimal(longitude, "longitude"),
    )


# -- errors ------------------------------------------------------------------------


def parse_retry_after(value, now=None):
    """Read a ``Retry-After`` header: seconds, or an HTTP date.

    :param value: the header value, or ``None``
    :param now: the current time (aware ``datetime``), for an HTTP date
    :returns: seconds to wait (``float`` >= 0), or ``None`` if absent or unreadable
    """
    if value is None:
        return None
    value = str(value).strip()
    # isdigit() alone accepts "²", which float() rejects: ASCII digits only.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _header(headers, name):
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def canonical_field(refers_to):
    """Map an AvaTax ``refersTo`` path to our :class:`~.engine.TaxDocument` field.

    :param refers_to: e.g. ``Addresses.ShipTo.PostalCode``, ``ExemptionNo``,
        ``Lines[1].TaxCode``
    :returns: e.g. ``ship_to.postal_code``, ``exemption_number``,
        ``lines[1].tax_code``; the AvaTax path itself when it is not known
    """
    path = refers_to.strip()
    lowered = path.lower().replace(" ", "")
    line = _LINE_RE.match(lowered)
    if line:
        index, attribute = line.groups()
        name = _LINE_FIELDS.get(attribute)
        return f"lines[{index}].{name}" if name else f"lines[{index}]"
    for marker, name in (("shipfrom", "ship_from"), ("shipto", "ship_to")):
        if marker in lowered:
            part = _address_field(lowered)
            return f"{name}.{part}" if part else name
    if lowered in _HEADER_FIELDS:
        return _HEADER_FIELDS[lowered]
    if lowered.startswith("address"):
        part = _address_field(lowered)
        return f"addresses.{part}" if part else "addresses"
    return path


def parse_error(status, body, headers=None, *, now=None, reason=None):
    """Classify a failed AvaTax call.

    :param status: the HTTP status, or ``None`` when no response came (timeout,
        connection refused)
    :param body: the response body (decoded ``dict``, text or bytes), or ``None``
    :param headers: the response headers (any mapping; looked up
        case-insensitively), for ``Retry-After``
    :param now: the current time, to read a ``Retry-After`` HTTP date
    :param reason: what happened when there was no response (``timeout``)
    :returns: a :class:`~.engine.TaxEngineUnavailable` (retry later) or a
        :class:`~.engine.TaxEngineRejected` (fix the data; its subclass
        :class:`~.engine.TaxEngineConfigurationError` for credentials and account)
    :raises ValueError: if ``status`` is not an error status
    """
    if status is None:
        return TaxEngineUnavailable(
            f"no answer from AvaTax ({reason or 'no response'})",
            code=reason or "NoResponse",
        )
    if not isinstance(status, int) or status < 400:
        raise ValueError(f"HTTP {status} is not an error")

    data = _load(body)
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    details = tuple(
        detail for detail in error.get("details") or () if isinstance(detail, dict)
    )
    detail_texts = tuple(
        detail.get("message") or detail.get("description") or "" for detail in details
    )
    summary = f"AvaTax HTTP {status}"
    if code:
        summary += f" {code}"
    if message:
        summary += f": {message}"
    retry_after = parse_retry_after(_header(headers, "retry-after"), now)

    if status in (408, 429) or status >= 500 or code in TRANSIENT_CODES:
        return TaxEngineUnavailable(
            summary, code=code, status=status, retry_after=retry_after
        )
    if status in (401, 403) or code in CONFIGURATION_CODES:
        return TaxEngineConfigurationError(
            summary, code=code, status=status, details=detail_texts
        )

    fields = []
    for detail in details:
        refers_to = detail.get("refersTo")
        if isinstance(refers_to, str) and refers_to.strip():
            name = canonical_field(refers_to)
            if name not in fields:
                fields.append(name)
    detail_codes = {detail.get("code") for detail in details} | {code}
    if not fields and detail_codes & ADDRESS_CODES:
        fields.append("addresses")
    if not fields and detail_codes & EXEMPTION_CODES:
        fields.append("exemption_number")
    return TaxEngineRejected(
        summary, code=code, status=status, fields=fields, details=detail_texts
    )
