"""Concurrency conflicts: how the job runner tells them apart and logs them.

Two transactions that change the same row at once make PostgreSQL refuse one of
them: ``could not serialize access due to concurrent update`` (Odoo runs
transactions in repeatable read), or a deadlock when each waits for the other.
Nothing is wrong with the work; run again in a fresh transaction, it succeeds.
The job runner does exactly that, at once (``qtc_job._qtc_perform``).

Odoo's cursor logs every failed statement as an ERROR (``bad query: ...``)
before the error reaches the code that handles it. While a job's work runs,
:func:`conflicts_handled` keeps those lines out of the log for conflicts only:
the runner logs the conflict itself, as what it is, with the statement. A
statement whose text carries :data:`RETRIED_MARK` is treated the same way
anywhere: storing an event while the same event is stored by another request
(its request is then run again by Odoo, which logs that at INFO, and finds a
duplicate).
"""

import contextlib
import logging
import threading

import psycopg2.errors

from .lib.errors import ConcurrencyConflict

# What PostgreSQL answers when concurrent transactions collide; Odoo's own
# request retry treats the same three as worth running again.
DATABASE_CONFLICTS = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
STATEMENT_EXCERPT = 160
# In a statement's text: its conflicts are retried by whoever runs it.
RETRIED_MARK = "/* qtc: conflicts retried by the caller */"

_state = threading.local()


def is_conflict(exc):
    """True when ``exc``, or the error it was raised from, is a collision with
    a concurrent transaction rather than a fault of the work itself."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (*DATABASE_CONFLICTS, ConcurrencyConflict)):
            return True
        if exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            exc = None if exc.__suppress_context__ else exc.__context__
        seen += 1
    return False


def describe(exc):
    """A short description of the conflict for the log: the error's first
    line and, when Odoo's cursor ran it, the start of the statement."""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    statement = getattr(_state, "statement", None)
    _state.statement = None
    if statement:
        return f"{first_line} (on: {statement})"
    return first_line


class _ConflictLogFilter(logging.Filter):
    """Drops ``odoo.sql_db``'s ERROR for a conflicting statement in a thread
    that runs a job's work (see the module doc); keeps every other line."""

    def filter(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) != 2 or not isinstance(args[1], DATABASE_CONFLICTS):
            return True
        query = args[0]
        if isinstance(query, bytes):
            query = query.decode(errors="replace")
        query = str(query)
        in_job = getattr(_state, "active", False)
        if not in_job and RETRIED_MARK not in query:
            return True
        if in_job:
            query = query.replace(RETRIED_MARK, "")
            _state.statement = " ".join(query.split())[:STATEMENT_EXCERPT]
        return False


@contextlib.contextmanager
def conflicts_handled():
    """While active in this thread, conflicting statements are not logged as
    errors by Odoo's cursor: the caller retries them and logs them itself."""
    previous = getattr(_state, "active", False)
    _state.active = True
    _state.statement = None
    try:
        yield
    finally:
        _state.active = previous


def _install_filter():
    sql_logger = logging.getLogger("odoo.sql_db")
    if not any(type(f).__name__ == "_ConflictLogFilter" for f in sql_logger.filters):
        sql_logger.addFilter(_ConflictLogFilter())


_install_filter()
