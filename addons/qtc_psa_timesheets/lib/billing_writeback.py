"""The billing write-back contract: what Odoo tells a PSA about the invoice that
billed its work items, and what a PSA may ask about them.

Why: a PSA that also invoices (or shows "unbilled" work to its users) must know
that Odoo has billed an item, or the same hours are billed twice in two systems.
Two ways, both published in ``static/api/openapi.yaml``:

- push: when a customer invoice that bills imported items is posted, cancelled
  or reversed by a credit note, Odoo POSTs one signed JSON document per invoice
  (:func:`callback_body`) to the backend's billing callback URL;
- pull: a PSA that prefers polling POSTs a signed list of external ids
  (:func:`parse_status_request`) and gets each item's invoice back
  (:func:`status_answer`).

Plain Python: the Odoo side gathers the records and calls these functions.
"""

import json
from decimal import Decimal

# What happened to the invoice, as the PSA is told.
INVOICE_POSTED = "posted"
INVOICE_CANCELLED = "cancel"
INVOICE_REVERSED = "reversed"
INVOICE_STATES = (INVOICE_POSTED, INVOICE_CANCELLED, INVOICE_REVERSED)

# Per-item answers of the pull endpoint.
STATUS_INVOICED = "invoiced"
STATUS_NOT_INVOICED = "not_invoiced"
STATUS_UNKNOWN = "unknown"
STATUSES = (STATUS_INVOICED, STATUS_NOT_INVOICED, STATUS_UNKNOWN)

MAX_EXTERNAL_ID_LENGTH = 128


class StatusRequestError(ValueError):
    """The pull request is unusable as a whole.

    :param message: what is wrong, safe to return to the caller
    :param status_code: the HTTP status to answer with (400 or 413)
    """

    def __init__(self, message, status_code=400):
        super().__init__(message)
        self.status_code = status_code


def idempotency_key(invoice_id, state, revision):
    """The key of one write-back: the invoice, its new state, and how many
    times its state was written back before.

    The revision matters: an invoice posted, cancelled, reset and posted again
    is posted twice, and the second "posted" is news to the PSA, not a repeat.
    Retries of one write-back reuse its key, so the PSA applies it once.

    :returns: e.g. ``"odoo-invoice-42-posted-1"``
    """
    if state not in INVOICE_STATES:
        raise ValueError(f"unknown invoice state {state!r}")
    return f"odoo-invoice-{int(invoice_id)}-{state}-{int(revision)}"


def format_decimal(value):
    """A quantity or amount as an exact decimal string: ``7.5`` -> ``"7.5"``,
    ``10.0`` -> ``"10"`` (floats are rounded to 6 places first, the precision
    work items are accepted with)."""
    number = Decimal(repr(round(float(value), 6)))
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def item_entry(external_id, kind, version=None, updated_at=None, **measure):
    """One item of a callback body.

    :param version: the PSA's version of the billed delivery, or ``None``
    :param updated_at: its ``updated_at`` (ISO 8601 UTC string) when the PSA
        orders deliveries by time, or ``None``
    :param measure: what was billed: ``hours`` (time), ``amount`` and
        ``currency`` (expense) or ``quantity`` (milestone); numbers become
        decimal strings
    """
    entry = {
        "external_id": external_id,
        "version": version,
        "updated_at": updated_at,
        "kind": kind,
    }
    for name, value in sorted(measure.items()):
        if value is None:
            continue
        entry[name] = value if isinstance(value, str) else format_decimal(value)
    return entry


def callback_body(number, invoice_date, state, items):
    """The JSON document POSTed to the billing callback URL.

    :param number: the invoice number (``INV/2026/00001``)
    :param invoice_date: a ``date`` (or ISO string)
    :param state: one of ``INVOICE_STATES``
    :param items: :func:`item_entry` dicts; sorted by external id so the same
        write-back always produces the same bytes
    :raises ValueError: an unknown state, or no items (nothing to tell)
    """
    if state not in INVOICE_STATES:
        raise ValueError(f"unknown invoice state {state!r}")
    if not items:
        raise ValueError("a billing write-back needs at least one item")
    if invoice_date is not None and not isinstance(invoice_date, str):
        invoice_date = invoice_date.isoformat()
    return {
        "invoice": {"number": number, "date": invoice_date, "state": state},
        "items": sorted(items, key=lambda entry: entry["external_id"]),
    }


def encode(body):
    """The exact bytes sent and signed (compact, key order as built)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def parse_status_request(data, max_ids):
    """The external ids a pull request asks about: ``{"external_ids": [...]}``.

    Duplicates are asked once, in first-seen order.

    :param data: the decoded JSON body
    :param max_ids: the most ids one request may carry (backend setting)
    :returns: a list of external ids
    :raises StatusRequestError: (400) not an object with exactly a non-empty
        ``external_ids`` array of non-empty strings; (413) too many ids
    """
    if not isinstance(data, dict):
        raise StatusRequestError("the body must be a JSON object")
    unknown = sorted(set(data) - {"external_ids"}, key=str)
    if unknown:
        raise StatusRequestError(f"unknown top-level fields: {', '.join(unknown)}")
    ids = data.get("external_ids")
    if not isinstance(ids, list):
        raise StatusRequestError("'external_ids' must be an array of strings")
    if not ids:
        raise StatusRequestError("'external_ids' is empty")
    if len(ids) > max_ids:
        raise StatusRequestError(
            f"too many external_ids: {len(ids)} > {max_ids}; split the request",
            status_code=413,
        )
    wanted = []
    seen = set()
    for position, value in enumerate(ids):
        if not isinstance(value, str) or not value.strip():
            raise StatusRequestError(
                f"external_ids[{position}] must be a non-empty string"
            )
        if len(value) > MAX_EXTERNAL_ID_LENGTH:
            raise StatusRequestError(
                f"external_ids[{position}] is longer than "
                f"{MAX_EXTERNAL_ID_LENGTH} characters"
            )
        if value not in seen:
            seen.add(value)
            wanted.append(value)
    return wanted


def status_entry(external_id, invoice=None):
    """One answer of the pull endpoint.

    :param invoice: ``None`` for an item Odoo never received, ``{}`` for a
        received item no invoice ever billed, else ``{"number", "date",
        "state"}`` of the last invoice that billed it (a cancelled or reversed
        one leaves the item ``not_invoiced``, and says which invoice it was)
    """
    if invoice is None:
        return {"external_id": external_id, "status": STATUS_UNKNOWN, "invoice": None}
    if not invoice:
        return {
            "external_id": external_id,
            "status": STATUS_NOT_INVOICED,
            "invoice": None,
        }
    if invoice["state"] not in INVOICE_STATES:
        raise ValueError(f"unknown invoice state {invoice['state']!r}")
    date = invoice.get("date")
    if date is not None and not isinstance(date, str):
        date = date.isoformat()
    return {
        "external_id": external_id,
        "status": STATUS_INVOICED
        if invoice["state"] == INVOICE_POSTED
        else STATUS_NOT_INVOICED,
        "invoice": {
            "number": invoice["number"],
            "date": date,
            "state": invoice["state"],
        },
    }


def status_answer(external_ids, known):
    """The pull endpoint's answer, one entry per asked id, in request order.

    :param known: ``{external_id: invoice dict or {}}`` of the received items
        (see :func:`status_entry`)
    """
    return {
        "items": [
            status_entry(external_id, known.get(external_id))
            for external_id in external_ids
        ]
    }
