"""Mask secrets that travel in request URLs out of the server's request log.

Some senders cannot sign or send a header (Salesforce Outbound Messages): a
secret token then sits in the URL path, and the HTTP server's access log line
(``"POST /path HTTP/1.1" 200 -``, logged by werkzeug under the ``werkzeug``
logger, which Odoo writes to its log) would print it. A connector registers
the pattern of its route; the filter rewrites every matching record of that
logger before any handler sees it.
"""

import logging

MASK = "***"
REQUEST_LOGGER = "werkzeug"


class PathMaskFilter(logging.Filter):
    """Replace the first group of each registered pattern with ``***`` in a
    record's message and string arguments."""

    def __init__(self):
        super().__init__()
        self.patterns = []

    def add(self, pattern):
        """Mask what the first group of ``pattern`` (a compiled regex) matches."""
        if pattern not in self.patterns:
            self.patterns.append(pattern)

    def mask(self, text):
        for pattern in self.patterns:
            text = pattern.sub(_masker, text)
        return text

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = self.mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.mask(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                key: self.mask(value) if isinstance(value, str) else value
                for key, value in record.args.items()
            }
        return True


def _masker(match):
    start, end = match.span(1)
    whole_start = match.start(0)
    text = match.group(0)
    return text[: start - whole_start] + MASK + text[end - whole_start :]


_FILTER = PathMaskFilter()


def mask_in_request_log(pattern, logger_name=REQUEST_LOGGER):
    """Mask ``pattern``'s first group in the request log from now on
    (idempotent; the filter is installed once per logger)."""
    logger = logging.getLogger(logger_name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    _FILTER.add(pattern)
    return _FILTER
