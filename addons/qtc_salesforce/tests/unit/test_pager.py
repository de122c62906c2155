"""Query pages: shape checks, next URL, and the watermark rule."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qtc_salesforce.lib.pager import (
    PageWalker,
    QueryPage,
    QueryResultError,
    check_next_records_url,
    incomplete_subqueries,
    parse_page,
    watermark_after,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PAGE1 = json.loads((FIXTURES / "opportunity_query_page1.json").read_text())
PAGE2 = json.loads((FIXTURES / "opportunity_query_page2.json").read_text())
START = datetime(2026, 1, 1, tzinfo=UTC)


def account(record_id, stamp):
    return {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v62.0/sobjects/Account/{record_id}",
        },
        "Id": record_id,
        "SystemModstamp": stamp,
    }


def page(stamps, done, total, locator="01gRO0000016PIAYA2-2000"):
    response = {
        "totalSize": total,
        "done": done,
        "records": [
            account(f"0015e00000ZkM{n:02d}AAF", stamp) for n, stamp in enumerate(stamps)
        ],
    }
    if not done:
        response["nextRecordsUrl"] = f"/services/data/v62.0/query/{locator}"
    return response


# -------------------------------------------------------------- parse_page


def test_parse_real_first_page():
    parsed = parse_page(PAGE1)
    assert parsed.index == 0
    assert parsed.total_size == 3
    assert parsed.done is False
    assert parsed.next_records_url == "/services/data/v62.0/query/01gRO0000016PIAYA2-2"
    assert [r["Id"] for r in parsed.records] == [
        "0065e00000AbCdEAAV",
        "0065e00000AbCdFAAV",
    ]
    assert parsed.min_modstamp == datetime(2026, 3, 31, 14, 2, 11, tzinfo=UTC)
    assert parsed.max_modstamp == datetime(2026, 4, 2, 8, 30, tzinfo=UTC)


def test_parse_real_last_page():
    parsed = parse_page(PAGE2, index=1)
    assert parsed.done is True
    assert parsed.next_records_url is None
    assert parsed.max_modstamp == datetime(2026, 4, 5, 17, 45, 30, 250000, tzinfo=UTC)


def test_empty_result():
    parsed = parse_page({"totalSize": 0, "done": True, "records": []})
    assert parsed == QueryPage(0, (), 0, True, None, None, None)


def test_untracked_modstamp():
    response = {
        "totalSize": 1,
        "done": True,
        "records": [{"attributes": {"type": "X"}}],
    }
    assert parse_page(response, modstamp_field=None).max_modstamp is None


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("totalSize"), "totalSize is missing"),
        (lambda r: r.update(totalSize="3"), "totalSize is missing or not an integer"),
        (lambda r: r.update(totalSize=True), "totalSize is missing or not an integer"),
        (lambda r: r.update(totalSize=-1), "totalSize is negative"),
        (lambda r: r.update(done="false"), "done is missing or not a boolean"),
        (lambda r: r.pop("records"), "records is missing or not a list"),
        (
            lambda r: r.pop("nextRecordsUrl"),
            "done is false but nextRecordsUrl is missing",
        ),
        (lambda r: r.update(done=True), "done is true but nextRecordsUrl is set"),
        (lambda r: r["records"].append("x"), "page 0, record 2: not a JSON object"),
        (
            lambda r: r["records"][0].pop("attributes"),
            "page 0, record 0: no attributes.type",
        ),
        (
            lambda r: r["records"][1].pop("SystemModstamp"),
            "page 0, record 1: no SystemModstamp; select it",
        ),
        (
            lambda r: r["records"][1].update(SystemModstamp="2026-04-02"),
            "page 0, record 1: SystemModstamp '2026-04-02' is not a datetime",
        ),
        (
            lambda r: r["records"][1].update(
                SystemModstamp="2026-03-01T00:00:00.000+0000"
            ),
            "page 0, record 1: SystemModstamp goes back in time",
        ),
    ],
)
def test_parse_page_rejects(mutate, message):
    response = copy.deepcopy(PAGE1)
    mutate(response)
    with pytest.raises(QueryResultError) as caught:
        parse_page(response)
    assert message in str(caught.value)


def test_parse_page_rejects_non_object():
    with pytest.raises(QueryResultError, match="must be a JSON object"):
        parse_page([PAGE1])


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/services/data/v62.0/query/01gRO0000016PIAYA2-2000",
        "//evil.example.com/services/data/v62.0/query/01g-2000",
        "/services/data/v62.0/sobjects/User",
        "/services/data/v62.0/query/01gRO0000016PIAYA2-2000?q=x",
        "/services/data/v62.0/query/../../apexrest/x-1",
        "/services/data/v62.0/query/01gRO0000016PIAYA2",
    ],
)
def test_next_url_outside_query_resource_refused(url):
    with pytest.raises(QueryResultError, match="not a query locator path"):
        check_next_records_url(url)


def test_next_url_forms_accepted():
    for url in (
        "/services/data/v62.0/query/01gRO0000016PIAYA2-2000",
        "/services/data/v66.0/queryAll/01gRO0000016PIAYA2-500",
    ):
        assert check_next_records_url(url) == url


# ------------------------------------------------------------ watermark rule


def pages_of(*stamp_lists):
    walker = PageWalker(START)
    total = sum(len(stamps) for stamps in stamp_lists)
    for position, stamps in enumerate(stamp_lists):
        walker.accept(page(stamps, position == len(stamp_lists) - 1, total))
    return walker


STAMPS = (
    ["2026-02-01T10:00:00.000+0000", "2026-02-01T11:00:00.000+0000"],
    ["2026-02-02T10:00:00.000+0000", "2026-02-02T11:00:00.000+0000"],
    ["2026-02-03T10:00:00.000+0000"],
)


def test_watermark_moves_to_last_stored_page():
    walker = pages_of(*STAMPS)
    for stored in walker.pages:
        walker.mark_stored(stored)
    assert walker.watermark == datetime(2026, 2, 3, 10, tzinfo=UTC)


def test_watermark_never_passes_an_unstored_page():
    walker = pages_of(*STAMPS)
    walker.mark_stored(walker.pages[0])
    walker.mark_stored(walker.pages[2])  # page 1 failed to store
    assert walker.watermark == datetime(2026, 2, 1, 11, tzinfo=UTC)


def test_watermark_stays_when_first_page_unstored():
    walker = pages_of(*STAMPS)
    walker.mark_stored(1)
    walker.mark_stored(2)
    assert walker.watermark == START


def test_watermark_catches_up_once_the_gap_is_stored():
    walker = pages_of(*STAMPS)
    walker.mark_stored(0)
    walker.mark_stored(2)
    walker.mark_stored(1)
    assert walker.watermark == datetime(2026, 2, 3, 10, tzinfo=UTC)


def test_watermark_never_moves_back():
    later = datetime(2027, 1, 1, tzinfo=UTC)
    walker = PageWalker(later)
    walker.accept(page(STAMPS[0], True, 2))
    walker.mark_stored(0)
    assert walker.watermark == later


def test_watermark_from_nothing_and_empty_pages():
    assert watermark_after(None, [], set()) is None
    empty = parse_page({"totalSize": 0, "done": True, "records": []})
    assert watermark_after(None, [empty], {0}) is None
    assert watermark_after(START, [empty], {0}) == START


def test_watermark_after_uses_the_pages_given():
    first = parse_page(page(STAMPS[0], False, 3), index=0)
    second = parse_page(page(STAMPS[2], True, 3), index=1)
    assert watermark_after(START, [first, second], [0]) == datetime(
        2026, 2, 1, 11, tzinfo=UTC
    )
    assert watermark_after(START, [first, second], []) == START


# ------------------------------------------------------------------ walker


def test_walk_real_pages():
    walker = PageWalker(START)
    assert walker.next_records_url is None and not walker.done
    first = walker.accept(PAGE1)
    assert walker.next_records_url == "/services/data/v62.0/query/01gRO0000016PIAYA2-2"
    walker.mark_stored(first)
    assert walker.watermark == datetime(2026, 4, 2, 8, 30, tzinfo=UTC)
    second = walker.accept(PAGE2)
    assert second.index == 1
    assert walker.done and walker.next_records_url is None
    assert walker.watermark == datetime(2026, 4, 2, 8, 30, tzinfo=UTC)
    walker.mark_stored(second)
    assert walker.watermark == datetime(2026, 4, 5, 17, 45, 30, 250000, tzinfo=UTC)


def test_no_page_after_done():
    walker = PageWalker()
    walker.accept(PAGE2)
    with pytest.raises(QueryResultError, match="the query is done"):
        walker.accept(PAGE2)


def test_total_size_change_means_mixed_queries():
    walker = PageWalker()
    walker.accept(page(STAMPS[0], False, 3))
    with pytest.raises(QueryResultError, match="totalSize 4 differs from 3"):
        walker.accept(page(STAMPS[2], True, 4))


def test_more_records_than_total_size():
    walker = PageWalker()
    walker.accept(page(STAMPS[0], False, 3))
    with pytest.raises(QueryResultError, match="more records than totalSize 3"):
        walker.accept(page(STAMPS[1], True, 3))


def test_page_older_than_previous_refused():
    walker = PageWalker()
    walker.accept(page(STAMPS[1], False, 3))
    with pytest.raises(QueryResultError, match="records older than the previous page"):
        walker.accept(page(STAMPS[0][:1], True, 3))


def test_mark_stored_rejects_foreign_pages():
    walker = PageWalker()
    walker.accept(page(STAMPS[0], False, 3))
    foreign = parse_page(page(STAMPS[0], False, 3))
    for bad in (foreign, 1, -1, True, "0"):
        with pytest.raises(QueryResultError, match="not a page of this walk"):
            walker.mark_stored(bad)


# ------------------------------------------------------------- subqueries


def test_incomplete_subqueries():
    record = copy.deepcopy(PAGE1["records"][0])
    assert incomplete_subqueries(record) == []
    record["OpportunityLineItems"]["done"] = False
    record["OpportunityLineItems"]["nextRecordsUrl"] = (
        "/services/data/v62.0/query/01gRO0000016PIBYA2-200"
    )
    assert incomplete_subqueries(record) == [
        ("OpportunityLineItems", "/services/data/v62.0/query/01gRO0000016PIBYA2-200")
    ]
    record["OpportunityLineItems"]["nextRecordsUrl"] = "https://evil.example.com/x"
    with pytest.raises(QueryResultError):
        incomplete_subqueries(record)
