"""Inbound bodies read with a cap, sender allow-lists, and the request-log
mask for secrets in URL paths."""

import io
import logging
import re

import pytest

from qtc_connector_base.lib import logmask
from qtc_connector_base.lib.destinations import parse_networks
from qtc_connector_base.lib.inbound import (
    read_capped,
    sender_allowed,
    spend_like_a_verification,
)


class CountingStream(io.RawIOBase):
    """An endless body that counts what was read from it."""

    def __init__(self, size=None):
        self.size = size
        self.read_bytes = 0

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            raise AssertionError("an unbounded read")
        if self.size is not None:
            n = min(n, self.size - self.read_bytes)
        self.read_bytes += n
        return b"a" * n


def test_body_within_the_cap_is_read_whole():
    assert read_capped(io.BytesIO(b"x" * 1000), 1000) == b"x" * 1000
    assert read_capped(io.BytesIO(b""), 10) == b""


def test_endless_body_is_refused_one_byte_past_the_cap():
    stream = CountingStream()
    assert read_capped(stream, 200_000) is None
    assert stream.read_bytes == 200_001


def test_declared_length_over_the_cap_reads_nothing():
    stream = CountingStream()
    assert read_capped(stream, 1000, declared=1001) is None
    assert stream.read_bytes == 0
    assert read_capped(CountingStream(size=10), 1000, declared=10) == b"a" * 10


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("203.0.113.9", "", True),
        ("203.0.113.9", "203.0.113.0/24", True),
        ("198.51.100.1", "203.0.113.0/24", False),
        ("::ffff:203.0.113.9", "203.0.113.0/24", True),
        ("2001:db8::1", "203.0.113.0/24\n2001:db8::/32", True),
        ("", "203.0.113.0/24", False),
        (None, "203.0.113.0/24", False),
    ],
)
def test_sender_allow_list(address, networks, allowed):
    assert sender_allowed(address, parse_networks(networks)) is allowed


def test_refusal_spends_one_hmac():
    assert len(spend_like_a_verification(b"body")) == 64
    assert spend_like_a_verification(b"body") != spend_like_a_verification(b"body")


def test_request_log_line_is_masked():
    name = "qtc.test.requestlog"
    pattern = re.compile(r"/qtc/salesforce/[^/\s]*/outbound/([^/?#\s\"]+)")
    logmask.mask_in_request_log(pattern, logger_name=name)
    logmask.mask_in_request_log(pattern, logger_name=name)  # idempotent
    logger = logging.getLogger(name)
    assert logger.filters.count(logmask._FILTER) == 1
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            '%s - - [%s] "%s" %s %s',
            "127.0.0.1",
            "now",
            "POST /qtc/salesforce/7/outbound/sfob-secret-token?x=1 HTTP/1.1",
            401,
            "-",
        )
        logger.info("POST /qtc/salesforce/7/outbound/another-token HTTP/1.1")
        logger.info('"%s"', "GET /qtc/health HTTP/1.1")
    finally:
        logger.removeHandler(handler)
    assert "sfob-secret-token" not in records[0]
    assert "/qtc/salesforce/7/outbound/***?x=1 HTTP/1.1" in records[0]
    assert records[1] == "POST /qtc/salesforce/7/outbound/*** HTTP/1.1"
    assert records[2] == '"GET /qtc/health HTTP/1.1"'
