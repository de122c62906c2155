"""Inbound request bodies read with a cap, and sender allow-lists.

A webhook route must decide on a body's size without reading more of it than
its cap, whatever the sender declares: ``Content-Length`` (refused at once
when over the cap), chunked transfer (read until one byte past the cap, then
refused) or a form content type (never parsed). ``read_capped`` is that
reading; the Odoo side calls it before Odoo's own request parsing runs.
"""

import hashlib
import hmac
import os

from .destinations import in_networks

CHUNK_BYTES = 64 * 1024


def read_capped(stream, limit, declared=None):
    """The body from ``stream``, or ``None`` when it is larger than ``limit``.

    At most ``limit + 1`` bytes are read (the extra byte proves the excess);
    with a ``declared`` length over ``limit``, nothing is read.

    :param stream: a file-like object (``read(size)``), ending at the body's end
    :param declared: the ``Content-Length`` the sender declared, if any
    """
    if declared is not None and declared > limit:
        return None
    parts, total = [], 0
    while total <= limit:
        chunk = stream.read(min(CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    if total > limit:
        return None
    return b"".join(parts)


def sender_allowed(address, networks):
    """True when ``networks`` is empty (no allow-list) or holds ``address``."""
    return not networks or in_networks(address or "", networks)


def spend_like_a_verification(body):
    """Compute one HMAC-SHA256 over ``body`` under a throw-away key: a request
    refused before its signature was checked (unknown backend) then takes
    about as long as one whose signature was checked and failed."""
    return hmac.new(os.urandom(32), body or b"", hashlib.sha256).hexdigest()
