"""Tax results as plain JSON data, to keep an engine's answer on the invoice.

The Odoo layer stores the last quote of a document next to the hash of the
request (``cache.py``) so that an unchanged document is never quoted twice, and
re-applies the stored answer instead. Amounts are written as strings, so
``Decimal("77.16")`` comes back as exactly ``Decimal("77.16")``; a stored value
that is not what :func:`result_to_dict` wrote is refused rather than guessed at.
"""

from decimal import Decimal, InvalidOperation

from .engine import JurisdictionTax, TaxLineResult, TaxResult

CODEC_VERSION = 1


def result_to_dict(result):
    """Write a :class:`~.engine.TaxResult` as JSON-ready data.

    :param result: a :class:`~.engine.TaxResult`
    :returns: a ``dict`` of strings, booleans, lists and ``None``
    """
    return {
        "version": CODEC_VERSION,
        "document_code": result.document_code,
        "total_tax": str(result.total_tax),
        "engine_transaction_id": result.engine_transaction_id,
        "committed": bool(result.committed),
        "lines": [
            {
                "line_number": line.line_number,
                "tax": str(line.tax),
                "details": [
                    {
                        "name": detail.name,
                        "type": detail.type,
                        "rate": str(detail.rate),
                        "tax": str(detail.tax),
                    }
                    for detail in line.details
                ],
            }
            for line in result.lines
        ],
    }


def _amount(value, what):
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a decimal string, not {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be finite: {value!r}")
    return number


def result_from_dict(data):
    """Read back what :func:`result_to_dict` wrote.

    :param data: the stored ``dict``
    :returns: a :class:`~.engine.TaxResult`
    :raises ValueError: if ``data`` is not a stored result of this version
    """
    if not isinstance(data, dict) or data.get("version") != CODEC_VERSION:
        raise ValueError("not a stored tax result of this version")
    code = data.get("document_code")
    if not isinstance(code, str) or not code:
        raise ValueError("stored tax result has no document code")
    lines = data.get("lines")
    if not isinstance(lines, list):
        raise ValueError("stored tax result has no lines")
    results = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("line_number"), str):
            raise ValueError(f"stored line {index} is malformed")
        details = []
        for detail in line.get("details") or ():
            if not isinstance(detail, dict):
                raise ValueError(f"a detail of stored line {index} is malformed")
            details.append(
                JurisdictionTax(
                    name=str(detail.get("name") or ""),
                    type=str(detail.get("type") or ""),
                    rate=_amount(detail.get("rate"), f"line {index} detail rate"),
                    tax=_amount(detail.get("tax"), f"line {index} detail tax"),
                )
            )
        results.append(
            TaxLineResult(
                line_number=line["line_number"],
                tax=_amount(line.get("tax"), f"line {index} tax"),
                details=tuple(details),
            )
        )
    transaction_id = data.get("engine_transaction_id")
    return TaxResult(
        document_code=code,
        total_tax=_amount(data.get("total_tax"), "total_tax"),
        lines=tuple(results),
        engine_transaction_id=None if transaction_id is None else str(transaction_id),
        committed=bool(data.get("committed")),
    )
