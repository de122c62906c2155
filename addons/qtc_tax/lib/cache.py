"""A stable fingerprint of a tax request, to cache quotes.

An order is re-quoted every time it is saved, mostly unchanged. The Odoo layer
keeps the last answer with the hash of the request that produced it, and calls the
engine only when the hash changes. The hash must therefore change with anything
that can change the tax, and only with that:

- it is a SHA-256 of a canonical JSON rendering: object keys sorted, so the order
  of a mapping's keys never matters;
- ``Decimal`` values are written without their exponent noise: ``100``,
  ``100.0`` and ``1E+2`` are the same amount; ``-0`` is ``0``;
- dates are ISO strings, enums their value, dataclasses their fields by name;
- sequences keep their order: swapping two lines is a cache miss, never a wrong
  hit (a miss costs one quote);
- floats are refused: a float amount has already been rounded somewhere.

A version tag is hashed in, so changing this rendering invalidates old entries
instead of colliding with them. ``context`` carries what is not in the document
but changes the answer (the engine, its company code, the commit flag).
"""

import dataclasses
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

HASH_VERSION = "qtc-tax-request-v1"


def decimal_text(value):
    """Write a Decimal canonically: exact, no exponent, no trailing zeros.

    :param value: a finite ``Decimal``
    :returns: e.g. ``"100"`` for ``Decimal("100.00")``, ``"0.5"`` for ``"0.50"``
    :raises ValueError: for NaN or infinity
    """
    if not value.is_finite():
        raise ValueError(f"cannot hash {value}")
    if value == 0:
        return "0"
    # format(..., "f") is exact (normalize() would round to the context's 28
    # digits); then drop the trailing zeros of the fraction by hand.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def canonical(value):
    """Turn a document (or any value of it) into plain JSON-ready data.

    :param value: a dataclass, mapping, sequence, ``Decimal``, date, enum, str,
        int, bool or ``None``
    :returns: nested ``dict``/``list``/``str``/``int``/``bool``/``None``
    :raises TypeError: for a float or an unsupported type
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return canonical(value.value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return {"$decimal": decimal_text(value)}
    if isinstance(value, float):
        raise TypeError("floats cannot be hashed for a tax request; use Decimal")
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$type": type(value).__name__,
            **{
                item.name: canonical(getattr(value, item.name))
                for item in dataclasses.fields(value)
            },
        }
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mapping keys must be strings, not {key!r}")
            result[key] = canonical(item)
        return result
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    raise TypeError(f"cannot hash a {type(value).__name__}")


def request_hash(doc, context=None):
    """Return the cache key of a tax request.

    :param doc: a :class:`~.engine.TaxDocument` (or a plain mapping)
    :param context: what else changes the answer (engine, company code ...), as a
        mapping of plain values, or ``None``
    :returns: 64 lower-case hex characters
    :raises TypeError: if the document holds a float or an unsupported value
    """
    payload = {
        "version": HASH_VERSION,
        "document": canonical(doc),
        "context": canonical(context),
    }
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
