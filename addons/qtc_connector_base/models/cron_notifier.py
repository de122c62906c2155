"""Wake Odoo's cron workers without opening a connection per event.

Odoo's cron workers LISTEN on a connection to the ``postgres`` database, so a
trigger is announced there (NOTIFY is per database). Odoo's own ``_notifydb`` opens
a fresh connection for each notification because its pool never keeps connections
to ``postgres``; at webhook rates that connect costs more than the whole ingest. One
autocommit connection per process, reused under a lock, makes it a single round trip.
"""

import logging
import os
import threading

import psycopg2
from psycopg2 import sql

from odoo import sql_db

_logger = logging.getLogger(__name__)

NOTIFY_FUNCTION = os.getenv("ODOO_NOTIFY_FUNCTION", "pg_notify")

_lock = threading.Lock()
_state = {"pid": None, "conn": None}


def _connection():
    # A forked worker must not reuse its parent's socket.
    if _state["pid"] != os.getpid() or _state["conn"] is None or _state["conn"].closed:
        _, params = sql_db.connection_info_for("postgres")
        conn = psycopg2.connect(**params)
        conn.autocommit = True
        _state.update(pid=os.getpid(), conn=conn)
    return _state["conn"]


def notify_cron_workers(dbname):
    """Announce that crons of ``dbname`` have triggers due now. Never raises: a
    lost notification only delays the job until the cron's next poll."""
    statement = sql.SQL("SELECT {}('cron_trigger', %s)").format(
        sql.Identifier(NOTIFY_FUNCTION)
    )
    with _lock:
        for attempt in (1, 2):
            try:
                with _connection().cursor() as cr:
                    cr.execute(statement, (dbname,))
                return
            except psycopg2.Error:
                _state["conn"] = None  # reconnect once, then give up quietly
                if attempt == 2:
                    _logger.warning("could not wake cron workers", exc_info=True)
