"""Write status back to Salesforce with sObject Collections, 200 records a call.

When Odoo has turned an opportunity into an order (or invoiced it), the
connector updates fields on the Salesforce records: order number, status,
invoiced amount. sObject Collections updates up to 200 records in one call::

    PATCH /services/data/vXX.X/composite/sobjects
    {"allOrNone": false,
     "records": [{"attributes": {"type": "Opportunity"},
                  "id": "0065e00000AbCdEAAV", "ERP_Status__c": "Ordered"}]}

and answers with one result per record, in request order::

    [{"id": "0065e00000AbCdEAAV", "success": true, "errors": []},
     {"success": false,
      "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "...",
                  "fields": []}]}]

With ``allOrNone`` false (our default) each record succeeds or fails on its
own, so one locked record does not hold back 199 others; the failed ones are
retried alone. ``build_update_requests`` chunks the updates (records of one
type kept together: Salesforce processes a request in per-type chunks and
accepts at most ten) and ``parse_update_results`` pairs each result with the
record it answers, since failed results carry no id.
"""

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from .rest_errors import UNKNOWN_ERROR, ApiError, error_from_object, parse_error_body
from .soql import SoqlError, validate_identifier

MAX_RECORDS_PER_REQUEST = 200
MAX_TYPE_CHUNKS_PER_REQUEST = 10
COLLECTIONS_PATH = "composite/sobjects"
_SALESFORCE_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


class WritebackError(ValueError):
    """An update that cannot be sent, or an answer that does not match it."""


@dataclass(frozen=True)
class RecordUpdate:
    """Field values to set on one Salesforce record."""

    sobject_type: str
    record_id: str
    fields: dict


@dataclass(frozen=True)
class CollectionRequest:
    """One PATCH body and the ids of its records, in body order."""

    body: dict
    record_ids: tuple


@dataclass(frozen=True)
class RecordError:
    """Why one record was not updated."""

    record_id: str
    error_code: str
    message: str
    fields: tuple = ()

    @property
    def retryable(self):
        """True for lock contention, limits and all-or-none rollbacks."""
        return ApiError(self.error_code, self.message).retryable


@dataclass(frozen=True)
class CollectionResult:
    """The outcome of one request: ids updated, and errors (one or more per id)."""

    successes: tuple
    errors: tuple

    @property
    def failed_ids(self):
        """Ids with at least one error, in request order, each once."""
        return tuple(dict.fromkeys(error.record_id for error in self.errors))


def build_update_requests(
    updates, all_or_none=False, chunk_size=MAX_RECORDS_PER_REQUEST
):
    """Chunk updates into sObject Collections PATCH bodies.

    :param updates: ``RecordUpdate`` objects
    :param all_or_none: Salesforce's ``allOrNone``: roll back a whole request
        when one record fails
    :param chunk_size: records per request, 1 to 200
    :returns: a list of ``CollectionRequest``; records of one type are
        grouped (first-seen type order, input order within a type) and a
        request never holds more than ten types
    :raises WritebackError: for an invalid type, id, field name or value, an
        update without fields, an ``id``/``attributes`` field, or an id that
        appears twice (Salesforce refuses duplicates; merge them first)
    """
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not 1 <= chunk_size <= MAX_RECORDS_PER_REQUEST
    ):
        raise WritebackError(
            f"chunk_size must be 1 to {MAX_RECORDS_PER_REQUEST}, got {chunk_size!r}"
        )
    if not isinstance(all_or_none, bool):
        raise WritebackError("all_or_none must be a bool")
    by_type = {}
    seen_ids = set()
    for update in updates:
        record = _record_body(update)
        # 15- and 18-character forms of one id name the same record.
        key = update.record_id[:15]
        if key in seen_ids:
            raise WritebackError(
                f"record {update.record_id} appears twice; merge its updates"
            )
        seen_ids.add(key)
        by_type.setdefault(update.sobject_type, []).append(record)

    requests = []
    batch, types = [], set()
    for sobject_type, records in by_type.items():
        for record in records:
            new_type = sobject_type not in types
            if len(batch) == chunk_size or (
                new_type and len(types) == MAX_TYPE_CHUNKS_PER_REQUEST
            ):
                requests.append(_request(batch, all_or_none))
                batch, types = [], set()
            batch.append(record)
            types.add(sobject_type)
    if batch:
        requests.append(_request(batch, all_or_none))
    return requests


def parse_update_results(request, response):
    """Pair the results of a collection update with the records sent.

    :param request: the ``CollectionRequest`` that was sent
    :param response: the decoded JSON answer: the per-record result list,
        or an error list when the whole request was refused (400)
    :returns: a ``CollectionResult``
    :raises WritebackError: when the answer has a different number of
        results, a successful result names another id, or the answer is not
        a list
    """
    ids = request.record_ids
    if not isinstance(response, list):
        raise WritebackError(
            f"collection answer must be a JSON list, got {type(response).__name__}"
        )
    if response and all(
        isinstance(item, dict) and "success" not in item for item in response
    ):
        # The request as a whole was refused: every record carries the reason.
        reasons = parse_error_body(response)
        errors = tuple(
            RecordError(record_id, reason.error_code, reason.message, reason.fields)
            for record_id in ids
            for reason in reasons
        )
        return CollectionResult(successes=(), errors=errors)
    if len(response) != len(ids):
        raise WritebackError(
            f"{len(response)} results for {len(ids)} records; cannot pair them"
        )
    successes, errors = [], []
    for record_id, item in zip(ids, response, strict=True):
        if not isinstance(item, dict) or not isinstance(item.get("success"), bool):
            raise WritebackError(f"result for {record_id} has no success flag")
        if item["success"]:
            returned = item.get("id")
            if returned and returned[:15] != record_id[:15]:
                raise WritebackError(
                    f"result for {record_id} names {str(returned)[:18]}; the "
                    "results are not in request order"
                )
            successes.append(record_id)
            continue
        reasons = [
            reason
            for reason in (error_from_object(raw) for raw in item.get("errors") or ())
            if reason
        ]
        if not reasons:
            reasons = [ApiError(UNKNOWN_ERROR, "failed without an error message")]
        errors.extend(
            RecordError(record_id, reason.error_code, reason.message, reason.fields)
            for reason in reasons
        )
    return CollectionResult(successes=tuple(successes), errors=tuple(errors))


def _request(records, all_or_none):
    return CollectionRequest(
        body={"allOrNone": all_or_none, "records": list(records)},
        record_ids=tuple(record["id"] for record in records),
    )


def _record_body(update):
    if not isinstance(update, RecordUpdate):
        raise WritebackError(f"expected a RecordUpdate, got {type(update).__name__}")
    try:
        validate_identifier(update.sobject_type)
    except SoqlError as error:
        raise WritebackError(f"sObject type: {error}") from None
    if not isinstance(update.record_id, str) or not _SALESFORCE_ID_RE.match(
        update.record_id
    ):
        raise WritebackError(f"{str(update.record_id)[:40]!r} is not a Salesforce id")
    if not isinstance(update.fields, dict) or not update.fields:
        raise WritebackError(f"record {update.record_id}: no fields to update")
    body = {"attributes": {"type": update.sobject_type}, "id": update.record_id}
    for name, value in update.fields.items():
        if not isinstance(name, str) or name.lower() in ("id", "attributes"):
            raise WritebackError(
                f"record {update.record_id}: {name!r} cannot be set by an update"
            )
        try:
            validate_identifier(name)
        except SoqlError as error:
            raise WritebackError(f"record {update.record_id}: {error}") from None
        body[name] = _json_value(value, update.record_id, name)
    return body


def _json_value(value, record_id, name):
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WritebackError(f"record {record_id}: {name} is {value}")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise WritebackError(f"record {record_id}: {name} is {value}")
        number = float(value)
        # JSON carries binary floats; refuse a Decimal that would change.
        if Decimal(repr(number)) != value:
            raise WritebackError(
                f"record {record_id}: {name} {value} cannot be sent exactly"
            )
        return number
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise WritebackError(f"record {record_id}: {name} is a naive datetime")
        moment = value.astimezone(UTC)
        return (
            moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        )
    if isinstance(value, date):
        return value.isoformat()
    raise WritebackError(
        f"record {record_id}: {name} has a {type(value).__name__} value"
    )
