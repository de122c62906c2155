"""Walk REST query results page by page and decide how far the watermark moves.

A query answers with at most about 2,000 records::

    {"totalSize": 3222, "done": false,
     "nextRecordsUrl": "/services/data/v62.0/query/01gRO0000016PIAYA2-2000",
     "records": [{"attributes": {"type": "Account", "url": "..."}, ...}]}

and the next page is fetched from ``nextRecordsUrl`` until ``done`` is true.
The Odoo layer does the HTTP; this module reads each answer, checks it is
coherent, tells which URL to fetch next, and keeps the rule that protects the
sync from losing changes:

    the new watermark is the greatest ``SystemModstamp`` among the pages that
    were stored, counting only the unbroken run of stored pages from the
    first one; a page that was not stored stops the watermark before it.

The queries are ordered by ``SystemModstamp, Id``, so every record on a later
page is at least as recent as every record on an earlier page. Moving the
watermark past an unstored page would skip its records for good; stopping
before it means the next run reads it again (and the stored pages after it,
which deduplication absorbs). Pages that arrive out of order, or a
``nextRecordsUrl`` pointing anywhere but this org's query resource (the layer
sends its bearer token there), are refused.
"""

import re
from dataclasses import dataclass

from .timestamps import parse_datetime

MODSTAMP_FIELD = "SystemModstamp"
_NEXT_URL_RE = re.compile(
    r"^/services/data/v\d{1,3}\.\d/query(?:All)?/[A-Za-z0-9]{1,40}-\d{1,9}$"
)


class QueryResultError(ValueError):
    """A query answer that is not shaped or ordered as the sync relies on."""


@dataclass(frozen=True)
class QueryPage:
    """One page of a query result.

    :ivar index: 0 for the first page, then 1, 2...
    :ivar records: the records as Salesforce sent them (attributes included)
    :ivar total_size: ``totalSize``, the size of the whole result
    :ivar done: no page follows
    :ivar next_records_url: the checked relative URL of the next page
    :ivar max_modstamp: greatest ``SystemModstamp`` on the page (UTC), or
        ``None`` for an empty page or when not tracked
    """

    index: int
    records: tuple
    total_size: int
    done: bool
    next_records_url: str | None
    max_modstamp: object = None
    min_modstamp: object = None


def parse_page(response, index=0, modstamp_field=MODSTAMP_FIELD):
    """Read and check one query answer.

    :param response: the decoded JSON object
    :param index: position of this page in the walk
    :param modstamp_field: field read on every record for the watermark;
        ``None`` for queries that do not drive one
    :returns: a ``QueryPage``
    :raises QueryResultError: for a missing or mistyped key, ``done`` false
        without a next URL (or true with one), a next URL outside the query
        resource, a record without ``attributes.type`` or without a valid
        modstamp, or records not in modstamp order
    """
    if not isinstance(response, dict):
        raise QueryResultError("a query answer must be a JSON object")
    total_size = response.get("totalSize")
    done = response.get("done")
    records = response.get("records")
    if isinstance(total_size, bool) or not isinstance(total_size, int):
        raise QueryResultError("totalSize is missing or not an integer")
    if total_size < 0:
        raise QueryResultError("totalSize is negative")
    if not isinstance(done, bool):
        raise QueryResultError("done is missing or not a boolean")
    if not isinstance(records, list):
        raise QueryResultError("records is missing or not a list")
    next_url = response.get("nextRecordsUrl")
    if done and next_url:
        raise QueryResultError("done is true but nextRecordsUrl is set")
    if not done:
        next_url = check_next_records_url(next_url)
    else:
        next_url = None

    previous = None
    low = high = None
    for position, record in enumerate(records):
        where = f"page {index}, record {position}"
        if not isinstance(record, dict):
            raise QueryResultError(f"{where}: not a JSON object")
        attributes = record.get("attributes")
        if not isinstance(attributes, dict) or not attributes.get("type"):
            raise QueryResultError(f"{where}: no attributes.type")
        if modstamp_field is None:
            continue
        stamp = _modstamp(record, modstamp_field, where)
        if previous is not None and stamp < previous:
            raise QueryResultError(
                f"{where}: {modstamp_field} goes back in time; the query must be "
                f"ordered by {modstamp_field}, Id"
            )
        previous = stamp
        low = stamp if low is None else low
        high = stamp
    return QueryPage(
        index=index,
        records=tuple(records),
        total_size=total_size,
        done=done,
        next_records_url=next_url,
        max_modstamp=high,
        min_modstamp=low,
    )


def check_next_records_url(url):
    """Return ``url`` if it is a relative query-locator path, else raise.

    :raises QueryResultError: for a missing URL, an absolute URL (another
        host would receive our bearer token) or any other path
    """
    if not isinstance(url, str) or not url:
        raise QueryResultError("done is false but nextRecordsUrl is missing")
    if not _NEXT_URL_RE.match(url):
        raise QueryResultError(
            f"nextRecordsUrl {url[:100]!r} is not a query locator path"
        )
    return url


def watermark_after(current, pages, stored_indexes):
    """The watermark after a walk, given which pages were stored.

    :param current: the watermark before the walk (aware datetime or None)
    :param pages: the ``QueryPage`` objects in fetch order
    :param stored_indexes: indexes of the pages whose records were all
        stored (committed)
    :returns: the greatest modstamp over the leading run of stored pages,
        never earlier than ``current``
    """
    stored = set(stored_indexes)
    best = current
    for page in pages:
        if page.index not in stored:
            break
        if page.max_modstamp is not None and (best is None or page.max_modstamp > best):
            best = page.max_modstamp
    return best


def incomplete_subqueries(record):
    """Child relationship results of a record that have more pages.

    A subquery (an opportunity's line items) is itself a query result; past
    a couple of hundred children Salesforce pages it too. A record with an
    incomplete subquery must not be mapped as if it had all its children.

    :returns: ``[(relationship, nextRecordsUrl), ...]`` in key order
    :raises QueryResultError: for a next URL outside the query resource
    """
    found = []
    for key, value in record.items():
        if isinstance(value, dict) and "records" in value and "done" in value:
            if value.get("done") is False:
                found.append((key, check_next_records_url(value.get("nextRecordsUrl"))))
    return found


class PageWalker:
    """Follow one query through its pages and track the safe watermark.

    Usage by the Odoo layer::

        walker = PageWalker(watermark=backend_watermark)
        page = walker.accept(first_json)
        while True:
            store(page.records)            # its own transaction
            walker.mark_stored(page)
            if walker.next_records_url is None:
                break
            page = walker.accept(get(walker.next_records_url))
        backend_watermark = walker.watermark

    No I/O happens here; the walker only remembers what it was given.
    """

    def __init__(self, watermark=None, modstamp_field=MODSTAMP_FIELD):
        self.start_watermark = watermark
        self.modstamp_field = modstamp_field
        self._pages = []
        self._stored = set()
        self._records_seen = 0

    @property
    def pages(self):
        """The pages accepted so far, in order."""
        return tuple(self._pages)

    @property
    def done(self):
        """True once the last accepted page says ``done``."""
        return bool(self._pages) and self._pages[-1].done

    @property
    def next_records_url(self):
        """The URL to fetch next, or ``None`` when the walk is over."""
        if not self._pages:
            return None
        return self._pages[-1].next_records_url

    @property
    def watermark(self):
        """The watermark the stored pages allow (see ``watermark_after``)."""
        return watermark_after(self.start_watermark, self._pages, self._stored)

    def accept(self, response):
        """Take the answer to the last ``next_records_url`` (or the first).

        :returns: the parsed ``QueryPage``
        :raises QueryResultError: for an answer after the last page, a
            ``totalSize`` that changed, more records than ``totalSize``, or
            records older than the previous page's last one
        """
        if self.done:
            raise QueryResultError("the query is done; no page follows")
        page = parse_page(response, len(self._pages), self.modstamp_field)
        if self._pages:
            previous = self._pages[-1]
            if page.total_size != previous.total_size:
                raise QueryResultError(
                    f"page {page.index}: totalSize {page.total_size} differs from "
                    f"{previous.total_size}; pages of two queries were mixed"
                )
            last_stamp = self._last_modstamp()
            if (
                last_stamp is not None
                and page.min_modstamp is not None
                and page.min_modstamp < last_stamp
            ):
                raise QueryResultError(
                    f"page {page.index}: records older than the previous page; "
                    "the query must be ordered by SystemModstamp, Id"
                )
        if self._records_seen + len(page.records) > page.total_size:
            raise QueryResultError(
                f"page {page.index}: more records than totalSize {page.total_size}"
            )
        self._records_seen += len(page.records)
        self._pages.append(page)
        return page

    def mark_stored(self, page):
        """Record that every record of ``page`` is committed.

        :raises QueryResultError: for a page this walker did not accept
        """
        index = page.index if isinstance(page, QueryPage) else page
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < len(self._pages)
            or (isinstance(page, QueryPage) and self._pages[index] is not page)
        ):
            raise QueryResultError("mark_stored: not a page of this walk")
        self._stored.add(index)

    def _last_modstamp(self):
        for page in reversed(self._pages):
            if page.max_modstamp is not None:
                return page.max_modstamp
        return None


def _modstamp(record, field_name, where):
    value = record.get(field_name)
    if value is None:
        raise QueryResultError(
            f"{where}: no {field_name}; select it so the watermark can move"
        )
    try:
        return parse_datetime(value)
    except ValueError:
        raise QueryResultError(
            f"{where}: {field_name} {str(value)[:40]!r} is not a datetime"
        ) from None
