"""The job queue: work stored in PostgreSQL, run by ``ir.cron`` workers.

States::

    pending --claim--> started --success--> done
       ^                  |  \\--business error--> failed --requeue--> pending
       |                  |   \\--transient error, attempts left--> pending (eta)
       |                  |    \\--transient error, no attempts left--> dead
       |                  \\--cancel requested--> cancelled (work rolled back)
       \\--recovery: worker died (stale heartbeat, lock free)--/

How a job never runs twice:

- Claim: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks one ready pending job; two
  workers never pick the same row. The claim commits ``started`` at once.
- Liveness: while it runs, the worker holds a transaction-level advisory lock on
  the job id on a separate connection. If the worker dies, PostgreSQL drops the
  connection and the lock. Recovery (its cron, and every busy worker loop at
  most every few seconds) only takes back a started job whose heartbeat is stale
  AND whose lock it can take, so a slow but alive job is never started a second
  time.
- Atomic completion: the job's work and its ``done`` state commit in one
  transaction. A worker killed before that commit leaves no effect behind; one
  killed after it leaves a done job. Either way the retry applies the work once.
- Requeue refuses a started job, and a done one (its work is committed: it
  never runs again); cancel of a started job only sets a flag the runner checks
  before it commits, rolling the work back.

Who runs what (see ``readme/SECURITY.md``):

- A job runs a *job function* only (``lib/job_function.py``): a method marked
  in code. ``_qtc_enqueue`` refuses any other, and so does the runner.
- What a job runs, on which records, with which arguments, as which user and
  company, for which backend and event, is fixed when it is queued: no ORM or
  RPC write changes it, and jobs are never created through the ORM.
- A job runs as the user who queued it. Work queued by the system (webhooks,
  crons, follow-ups) runs as its backend's technical user. A job whose user is
  missing or archived fails; the runner never falls back to the superuser.
- Requeue and cancel are QTC Manager actions, each written in an audit line.

How two jobs never write the same records at once:

- A job declares the resources it writes when it is queued (``resources``:
  ``sale.order:42``, see ``lib/resources.py``). At claim, the worker takes one
  advisory lock per resource on the job's lock connection, next to the job's
  own lock, before the claim commits; a job whose resources another running
  job holds is skipped and the next ready one is tried, so jobs on other
  resources keep every worker busy. PostgreSQL drops the locks with a dead
  worker's connection, exactly like the job's own lock.
- Within a resource, jobs start in queue order (priority, then id): a job is
  not a candidate while an earlier ready pending job shares a resource with it.
- Undeclared collisions still happen (two jobs updating one row): PostgreSQL
  refuses one transaction with a serialization failure or a deadlock. That is
  no outage: the runner runs the work again at once in a fresh transaction, a
  few times with a short random pause, logging it as such (``conflicts.py``);
  only then does the usual backoff take over.

Each job runs in its own transaction: the runner's ``commit()`` calls below are
that boundary, written once, here.
"""

import json
import logging
import os
import random
import socket
import threading
import time
import traceback
from datetime import timedelta

import psycopg2
import requests

from odoo import SUPERUSER_ID, _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError

from .. import const
from ..access import GROUP_MANAGER, GROUP_USER, check_action
from ..conflicts import conflicts_handled, describe, is_conflict
from ..lib import backoff
from ..lib import resources as resources_lib
from ..lib.errors import BusinessError, ConfigError, RetryableError
from ..lib.job_function import is_job_function
from .cron_notifier import notify_cron_workers
from .qtc_job_progress import RESET_SQL, UPSERT_SQL

_logger = logging.getLogger(__name__)

# When this process's worker loop last looked for dead workers' jobs (monotonic).
_last_recovery_check = 0.0

TRANSIENT_ERRORS = (
    RetryableError,
    requests.Timeout,
    requests.ConnectionError,
    psycopg2.OperationalError,  # includes serialization failures, killed backends
)
BUSINESS_ERRORS = (BusinessError, ConfigError, UserError, ValidationError, AccessError)


# What a job runs, on what, as whom and for what: fixed when it is queued, and
# refused on every write, whoever writes.
JOB_TARGET_FIELDS = frozenset(
    {
        "name",
        "model_name",
        "method_name",
        "record_ids",
        "args",
        "kwargs",
        "user_id",
        "company_id",
        "backend_id",
        "event_id",
        "identity_key",
        "correlation_id",
        "depends_on_id",
    }
)
# What a QTC Manager may still tune on a stored job. Every other field (state,
# attempts, eta, outcome) is the queue's bookkeeping, written by its own code.
JOB_MANAGER_FIELDS = frozenset(
    {"priority", "channel_id", "max_attempts", "max_backoff"}
)

# A worker cron is any scheduled action running this code on qtc.job: duplicate
# "QTC: job worker 1" to add workers (each cron runs in one thread at a time).
WORKER_CODE = "model._qtc_run_worker("

# The next candidate: ready, its channel not full, not one already passed over
# by this claim (``skip``: its resources are held; ``full``: channels found
# full), and no earlier ready pending job shares a resource with it (queue
# order within a resource).
_CLAIM_SQL = """
    SELECT j.id, j.channel_id, COALESCE(c.capacity, 0), j.resources
      FROM qtc_job j
 LEFT JOIN qtc_job_channel c ON c.id = j.channel_id
     WHERE j.state = 'pending'
       AND (j.eta IS NULL OR j.eta <= %(now)s)
       AND (j.depends_on_id IS NULL OR EXISTS (
                SELECT 1 FROM qtc_job d
                 WHERE d.id = j.depends_on_id AND d.state = 'done'))
       AND (COALESCE(c.capacity, 0) = 0 OR c.capacity > (
                SELECT count(*) FROM qtc_job s
                 WHERE s.channel_id = j.channel_id AND s.state = 'started'))
       AND j.id <> ALL(%(skip)s::int[])
       AND (j.channel_id IS NULL OR j.channel_id <> ALL(%(full)s::int[]))
       AND (j.resources IS NULL OR NOT EXISTS (
                SELECT 1 FROM qtc_job o
                 WHERE o.state = 'pending' AND o.resources IS NOT NULL
                   AND string_to_array(o.resources, E'\\n')
                       && string_to_array(j.resources, E'\\n')
                   AND (o.priority, o.id) < (j.priority, j.id)
                   AND (o.eta IS NULL OR o.eta <= %(now)s)
                   AND (o.depends_on_id IS NULL OR EXISTS (
                            SELECT 1 FROM qtc_job od
                             WHERE od.id = o.depends_on_id
                               AND od.state = 'done'))))
  ORDER BY j.priority, j.id
     LIMIT 1
       FOR UPDATE OF j SKIP LOCKED
"""


def _worker_name():
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class _Heartbeat:
    """Refreshes ``heartbeat_at`` of the job being run, from a side thread with
    its own short transactions, so the recovery cron can tell a live job from one
    whose worker died."""

    def __init__(self, registry):
        self.registry = registry
        self.job_id = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="qtc-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self):
        while not self._stop.wait(const.HEARTBEAT_INTERVAL_SECONDS):
            job_id = self.job_id
            if not job_id:
                continue
            try:
                with self.registry.cursor() as cr:
                    cr.execute(
                        UPSERT_SQL,
                        {
                            "job": job_id,
                            "now": fields.Datetime.now(),
                            "done": None,
                            "total": None,
                            "message": None,
                        },
                    )
            except Exception:  # a missed beat is harmless; the next one retries
                _logger.warning("heartbeat of job %s failed", job_id, exc_info=True)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


class QtcJob(models.Model):
    _name = "qtc.job"
    _description = "QTC Job"
    _order = "id desc"

    name = fields.Char(required=True, readonly=True)
    state = fields.Selection(
        const.JOB_STATES, default="pending", required=True, readonly=True, index=True
    )
    model_name = fields.Char(required=True, readonly=True)
    method_name = fields.Char(required=True, readonly=True)
    record_ids = fields.Json(
        readonly=True, help="Ids of the records the method runs on."
    )
    args = fields.Json(readonly=True)
    kwargs = fields.Json(readonly=True)
    priority = fields.Integer(default=10, help="Lower runs first.")
    channel_id = fields.Many2one("qtc.job.channel", index=True, readonly=True)
    eta = fields.Datetime(string="Not before", readonly=True)
    attempts = fields.Integer(readonly=True)
    max_attempts = fields.Integer(default=const.DEFAULT_MAX_ATTEMPTS)
    max_backoff = fields.Integer(
        string="Max backoff (s)", default=const.DEFAULT_MAX_BACKOFF
    )
    identity_key = fields.Char(
        readonly=True, index=True, help="Same key, same work: not queued twice."
    )
    depends_on_id = fields.Many2one(
        "qtc.job",
        readonly=True,
        index=True,
        ondelete="set null",
        help="Runs only once this job is done.",
    )
    backend_id = fields.Many2one(
        "qtc.backend", index=True, readonly=True, ondelete="cascade"
    )
    event_id = fields.Many2one(
        "qtc.event", index=True, readonly=True, ondelete="set null"
    )
    company_id = fields.Many2one(
        "res.company", readonly=True, default=lambda self: self.env.company, index=True
    )
    user_id = fields.Many2one(
        "res.users",
        string="Runs as",
        readonly=True,
        help="The user who queued the job, or the technical user of its backend "
        "for work from a sender or the system. The job runs with this user's "
        "rights, never anyone else's.",
    )
    correlation_id = fields.Char(readonly=True, index=True)
    resources = fields.Text(
        readonly=True,
        help="What the job writes, one per line (e.g. sale.order:42), declared "
        "when it was queued: jobs sharing one never run at the same time.",
    )
    conflict_retries = fields.Integer(
        string="Conflict retries",
        readonly=True,
        help="Times its work collided with a concurrent transaction "
        "(serialization failure, deadlock) and was run again at once.",
    )
    worker = fields.Char(readonly=True)
    started_at = fields.Datetime(readonly=True)
    heartbeat_at = fields.Datetime(compute="_compute_progress")
    done_at = fields.Datetime(readonly=True, index=True)
    result = fields.Text(readonly=True)
    error_kind = fields.Selection(
        [("transient", "Transient"), ("business", "Business"), ("crash", "Unexpected")],
        readonly=True,
    )
    error_message = fields.Text(readonly=True)
    # Tracebacks show code paths and data of any record the job touched.
    error_trace = fields.Text(readonly=True, groups=GROUP_MANAGER)
    cancel_requested = fields.Boolean(readonly=True)
    progress_ids = fields.One2many(
        "qtc.job.progress", "job_id", string="Heartbeat and progress", readonly=True
    )
    progress_done = fields.Integer(compute="_compute_progress")
    progress_total = fields.Integer(compute="_compute_progress")
    progress = fields.Float(compute="_compute_progress")
    progress_message = fields.Char(compute="_compute_progress")
    exception_ids = fields.One2many("qtc.exception", "job_id", readonly=True)
    audit_ids = fields.One2many(
        "qtc.job.audit", "job_id", string="Requeued and cancelled", readonly=True
    )

    def init(self):
        cr = self.env.cr
        # The identity key is unique among pending jobs; enqueue relies on it with
        # ON CONFLICT so concurrent transactions cannot queue the same work twice.
        cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS qtc_job_identity_pending_uniq
                ON qtc_job (identity_key)
             WHERE identity_key IS NOT NULL AND state = 'pending'
            """
        )
        cr.execute(
            "CREATE INDEX IF NOT EXISTS qtc_job_ready_idx ON qtc_job (priority, id) "
            "WHERE state = 'pending'"
        )
        cr.execute(
            "CREATE INDEX IF NOT EXISTS qtc_job_started_idx ON qtc_job (channel_id) "
            "WHERE state = 'started'"
        )
        # The claim's queue-order check: pending jobs sharing a resource.
        cr.execute(
            """
            CREATE INDEX IF NOT EXISTS qtc_job_pending_resources_idx
                ON qtc_job USING gin (string_to_array(resources, E'\\n'))
             WHERE state = 'pending' AND resources IS NOT NULL
            """
        )

    @api.depends("progress_ids.heartbeat_at", "progress_ids.done", "progress_ids.total")
    def _compute_progress(self):
        for job in self:
            row = job.progress_ids[:1]
            job.heartbeat_at = row.heartbeat_at
            job.progress_done = row.done
            job.progress_total = row.total
            job.progress_message = row.message
            job.progress = 100.0 * row.done / row.total if row.total else 0.0

    # ------------------------------------------------------------------- CRUD

    @api.model_create_multi
    def create(self, vals_list):
        # Jobs are inserted by the queue's own code (_qtc_enqueue, the webhook
        # store), never through the ORM: a created row could name any method,
        # records and user.
        raise AccessError(
            _("Jobs are queued by the system; they cannot be created or copied.")
        )

    def write(self, vals):
        """Refuse any change to what a job runs, on what and as whom (for
        everyone, the superuser included); outside the queue's own code only
        the fields a QTC Manager may tune are writable."""
        target = JOB_TARGET_FIELDS.intersection(vals)
        if target:
            raise AccessError(
                _(
                    "What a job runs cannot be changed (%(fields)s).",
                    fields=", ".join(sorted(target)),
                )
            )
        if not self.env.su:
            other = set(vals) - JOB_MANAGER_FIELDS
            if other:
                raise AccessError(
                    _(
                        "Job fields %(fields)s are written by the queue only; use "
                        "Retry or Cancel.",
                        fields=", ".join(sorted(other)),
                    )
                )
            self._qtc_check_manager()
        return super().write(vals)

    def unlink(self):
        if not self.env.su:
            self._qtc_check_manager()
            waiting = self.filtered(lambda job: job.state in ("pending", "started"))
            if waiting:
                raise UserError(
                    _(
                        "Job(s) %(names)s are queued or running: cancel them "
                        "first (the cancel is recorded).",
                        names=", ".join(waiting.mapped("name")),
                    )
                )
        return super().unlink()

    def _qtc_check_manager(self):
        """:raises AccessError: the current user is not a QTC Manager, or may
        not write these jobs (company rules)."""
        check_action(self, GROUP_MANAGER, "write", _("requeue or cancel jobs"))

    # ---------------------------------------------------------------- enqueue

    @api.model
    def _qtc_enqueue(
        self,
        records,
        method_name,
        args=None,
        kwargs=None,
        *,
        name=None,
        priority=10,
        eta=None,
        channel=None,
        identity_key=None,
        depends_on=None,
        backend=None,
        event=None,
        max_attempts=None,
        max_backoff=None,
        resources=None,
        user=None,
    ):
        """Queue ``records.method_name(*args, **kwargs)`` to run in a worker.

        The job exists only if the calling transaction commits; workers are woken
        right after that commit.

        :param records: a recordset (possibly empty: ``env["model"]``)
        :param method_name: a job function of the records' model (a method
            marked with ``lib.job_function.job_function``)
        :param identity_key: when a pending job already has this key, no new job
            is queued and that one is returned
        :param depends_on: a ``qtc.job`` that must be done first
        :param channel: a ``qtc.job.channel`` record (capacity limit)
        :param resources: names of what the job writes (``sale.order:42``, see
            ``lib/resources.py``): it never runs at the same time as another
            job sharing one. ``None``: what the event's backend declares for
            the event (``_qtc_event_resources``), else nothing
        :param user: who the job runs as (a ``res.users`` record or id; an
            empty record queues a job that fails for want of a user). Default:
            the current user; for work queued by the system (the superuser,
            the public user of a webhook, a portal customer's action) the
            backend's technical user. Work
            from a sender or a schedule passes
            ``user=backend._qtc_technical_user()``
        :returns: the ``qtc.job`` record (new or the existing pending one)
        :raises ValueError: not a job function, or system work without a
            backend or user to run it
        """
        if not hasattr(records, method_name):
            raise ValueError(f"{records._name} has no method {method_name}")
        if not is_job_function(type(records), method_name):
            raise ValueError(
                f"{records._name}.{method_name} is not a registered job function"
            )
        backend = backend or (event.backend_id if event else None)
        # -- resources (concurrency by resource)
        if resources is None and event and backend:
            resources = backend._qtc_event_resources(event)[0]
        # -- end resources
        runner = self._qtc_runner(user, backend)
        self.env.flush_all()  # the raw INSERT below must see pending ORM writes
        now = fields.Datetime.now()
        self.env.cr.execute(
            """
            /* qtc: conflicts retried by the caller */
            INSERT INTO qtc_job (
                name, state, model_name, method_name, record_ids, args, kwargs,
                priority, eta, channel_id, identity_key, depends_on_id, backend_id,
                event_id, company_id, user_id, correlation_id, attempts,
                max_attempts, max_backoff, create_date, write_date, create_uid,
                write_uid, resources
            ) VALUES (
                %(name)s, 'pending', %(model)s, %(method)s, %(ids)s, %(args)s,
                %(kwargs)s, %(priority)s, %(eta)s, %(channel)s, %(identity)s,
                %(depends)s, %(backend)s, %(event)s, %(company)s, %(runner)s,
                %(correlation)s, 0, %(max_attempts)s, %(max_backoff)s, %(now)s,
                %(now)s, %(uid)s, %(uid)s, %(resources)s
            )
            ON CONFLICT (identity_key)
               WHERE identity_key IS NOT NULL AND state = 'pending'
               DO NOTHING
            RETURNING id
            """,
            {
                "name": name or f"{records._name}.{method_name}",
                "model": records._name,
                "method": method_name,
                "ids": _json(records.ids),
                "args": _json(list(args or [])),
                "kwargs": _json(dict(kwargs or {})),
                "priority": priority,
                "eta": eta,
                "channel": (
                    channel or (backend and backend.job_channel_id) or self.browse()
                ).id
                or None,
                "identity": identity_key,
                "depends": depends_on.id if depends_on else None,
                "backend": backend.id if backend else None,
                "event": event.id if event else None,
                "company": (backend.company_id if backend else self.env.company).id,
                "uid": self.env.uid,
                "runner": runner or None,
                "correlation": self.env.context.get("qtc_correlation_id")
                or (event.correlation_id if event else None),
                "max_attempts": max_attempts
                or (backend and backend.job_max_attempts)
                or const.DEFAULT_MAX_ATTEMPTS,
                "max_backoff": max_backoff or const.DEFAULT_MAX_BACKOFF,
                "now": now,
                "resources": resources_lib.encode(resources),
            },
        )
        row = self.env.cr.fetchone()
        if event:
            event.invalidate_recordset(["job_ids"])
        if row is None:
            return self.search(
                [("identity_key", "=", identity_key), ("state", "=", "pending")],
                limit=1,
            )
        if eta is None or eta <= now:
            self._qtc_wake_workers()
        else:
            self._qtc_wake_workers(at=eta)
        return self.browse(row[0])

    @api.model
    def _qtc_runner(self, user, backend):
        """Id of the user a job queued now runs as (see ``_qtc_enqueue``).

        :returns: a user id, or ``None`` when the backend has no technical user
            (the job then fails with a message saying so, instead of running as
            anyone else)
        """
        if isinstance(user, models.BaseModel):
            # An empty record (a backend without technical user) queues a job
            # that fails saying so, rather than one running as someone else.
            return user.id or None
        if user:
            return int(user)
        current = self.env.user
        # A person's own work runs as them; the superuser's, a webhook's (the
        # public user) or a portal customer's is the system's.
        if self.env.uid != SUPERUSER_ID and not current.sudo().share:
            return current.id
        if backend:
            return backend._qtc_technical_user().id or None
        raise ValueError(
            "work queued by the system needs a backend (its technical user runs "
            "it) or a user to run as"
        )

    @api.model
    @tools.ormcache()
    def _qtc_worker_cron_ids(self):
        """Ids of the active worker crons (cached per process; cleared when a
        scheduled action changes, see ir_cron.py)."""
        # Boundary (read): which scheduled actions are workers, for whoever
        # queues work.
        crons = (
            self.env["ir.cron"]
            .sudo()
            .search([("model_id.model", "=", "qtc.job"), ("code", "like", WORKER_CODE)])
        )
        return tuple(crons.ids)

    @api.model
    def _qtc_wake_workers(self, at=None):
        """Trigger every active worker cron at ``at`` (now by default) and, for
        now, wake them right after commit; a rolled-back transaction leaves no
        trigger and wakes nobody."""
        crons = list(self._qtc_worker_cron_ids())
        if not crons:
            return
        now = fields.Datetime.now()
        self.env.cr.execute(
            """
            INSERT INTO ir_cron_trigger (cron_id, call_at, create_date, write_date,
                                         create_uid, write_uid)
            SELECT id, %(at)s, %(now)s, %(now)s, %(uid)s, %(uid)s
              FROM ir_cron WHERE id = ANY(%(crons)s) AND active
            """,
            {"at": at or now, "now": now, "uid": self.env.uid, "crons": crons},
        )
        if not at or at <= now:
            self._qtc_notify_workers()

    @api.model
    def _qtc_notify_workers(self):
        """Wake cron workers after commit (for triggers already inserted)."""
        postcommit = self.env.cr.postcommit
        if not postcommit.data.get("qtc_notify_workers"):
            postcommit.data["qtc_notify_workers"] = True
            dbname = self.env.cr.dbname
            postcommit.add(lambda: notify_cron_workers(dbname))

    # ---------------------------------------------------------------- actions

    def action_requeue(self):
        """QTC Manager: run failed, dead or cancelled jobs again with a fresh
        attempt budget, and pending ones waiting for a retry now. Each is
        recorded in the job's audit lines.

        :raises AccessError: not a QTC Manager, or jobs of another company
        :raises UserError: a job is running or done (see ``_qtc_requeue``)
        """
        self._qtc_check_manager()
        self._qtc_requeue()
        return True

    def action_cancel(self):
        """QTC Manager: cancel pending, failed or dead jobs; a running job is
        flagged and its work rolled back when it ends. Recorded in the audit
        lines.

        :raises AccessError: not a QTC Manager, or jobs of another company
        """
        self._qtc_check_manager()
        self._qtc_cancel()
        return True

    def action_open_records(self):
        """The records the job works on, as the current user may see them."""
        self.ensure_one()
        self._qtc_check_reader()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.model_name,
            "view_mode": "list,form",
            "domain": [("id", "in", self.record_ids or [])],
            "name": self.name,
        }

    def _qtc_check_reader(self):
        """:raises AccessError: not a QTC User, or jobs the user may not read"""
        check_action(self, GROUP_USER, "read", _("look into jobs"))

    # ------------------------------------------------------ queue operations

    def _qtc_requeue(self, note=None):
        """Put jobs back in the queue; the system's own flows (an exception's
        Retry) call it after their own checks. Failed, dead and cancelled jobs
        get a fresh attempt budget, pending ones waiting for a retry run now.
        A job whose identity key already has a pending copy is left as it is
        (that copy does the same work). Every job requeued gets an audit line
        by the current user.

        :raises UserError: a job is running (it may still commit), done (its
            work is committed: running it again would apply it twice) or works
            on an event whose payload a person edited (replay the event: it
            then runs with that person's rights)
        :returns: the jobs requeued
        """
        started = self.filtered(lambda j: j.state == "started")
        if started:
            raise UserError(
                _(
                    "Job(s) %(names)s are running; cancel them or wait until they end.",
                    names=", ".join(started.mapped("name")),
                )
            )
        done = self.filtered(lambda j: j.state == "done")
        if done:
            raise UserError(
                _(
                    "Job(s) %(names)s are done: their work is committed and a done "
                    "job never runs again.",
                    names=", ".join(done.mapped("name")),
                )
            )
        edited = self._qtc_edited_events()
        if edited:
            raise UserError(
                _(
                    "The payload of event(s) %(events)s was edited by a person: "
                    "replay the event instead (it then runs with the rights of "
                    "whoever replays it).",
                    events=", ".join(edited.mapped("external_id")),
                )
            )
        if not self:
            return self
        self.env.flush_all()
        now = fields.Datetime.now()
        previous = {job.id: job.state for job in self}
        # Guarded on the states in SQL: a job a worker claimed meanwhile is left
        # alone rather than queued a second time.
        self.env.cr.execute(
            """
            UPDATE qtc_job SET eta = NULL, write_date = %(now)s, write_uid = %(uid)s
             WHERE id = ANY(%(ids)s) AND state = 'pending'
            RETURNING id
            """,
            {"now": now, "uid": self.env.uid, "ids": self.ids},
        )
        hurried = [row[0] for row in self.env.cr.fetchall()]
        self.env.cr.execute(
            """
            UPDATE qtc_job j
               SET state = 'pending', attempts = 0, eta = NULL,
                   cancel_requested = false, error_kind = NULL,
                   write_date = %(now)s, write_uid = %(uid)s
             WHERE j.id = ANY(%(ids)s)
               AND j.state IN ('failed', 'dead', 'cancelled')
               AND (j.identity_key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM qtc_job p
                         WHERE p.identity_key = j.identity_key AND p.state = 'pending'))
            RETURNING j.id
            """,
            {"now": now, "uid": self.env.uid, "ids": self.ids},
        )
        requeued = self.browse([row[0] for row in self.env.cr.fetchall()])
        self.invalidate_recordset()
        # Boundary (queue bookkeeping): the event goes back to received for
        # whoever requeued it; people never write events themselves.
        requeued.event_id.sudo().write({"state": "received"})
        self.env["qtc.job.audit"]._qtc_write_lines(
            requeued | self.browse(hurried), "requeue", previous, note
        )
        self._qtc_wake_workers()
        return requeued

    def _qtc_cancel(self, note=None):
        """Cancel pending, failed or dead jobs; a started job is flagged and the
        runner rolls its work back instead of committing it. The system's own
        flows (an exception ignored) call it after their own checks. Audit
        lines by the current user.

        :returns: the jobs cancelled or flagged
        """
        if not self:
            return self
        self.env.flush_all()
        previous = {job.id: job.state for job in self}
        self.env.cr.execute(
            """
            UPDATE qtc_job
               SET state = 'cancelled', done_at = %(now)s, write_date = %(now)s,
                   write_uid = %(uid)s
             WHERE id = ANY(%(ids)s) AND state IN ('pending', 'failed', 'dead')
            RETURNING id
            """,
            {"ids": self.ids, "now": fields.Datetime.now(), "uid": self.env.uid},
        )
        cancelled = self.browse([row[0] for row in self.env.cr.fetchall()])
        self.env.cr.execute(
            "UPDATE qtc_job SET cancel_requested = true WHERE id = ANY(%s) "
            "AND state = 'started' AND NOT COALESCE(cancel_requested, false) "
            "RETURNING id",
            (self.ids,),
        )
        flagged = self.browse([row[0] for row in self.env.cr.fetchall()])
        self.invalidate_recordset()
        audit = self.env["qtc.job.audit"]
        audit._qtc_write_lines(cancelled, "cancel", previous, note)
        audit._qtc_write_lines(flagged, "cancel_requested", previous, note)
        return cancelled | flagged

    def _qtc_edited_events(self):
        """Events these jobs apply whose payload a person edited."""
        event_ids = set(self.event_id.ids)
        for job in self:
            if job.model_name == "qtc.event":
                event_ids.update(job.record_ids or [])
        # Boundary (read): the events the jobs apply, whoever checks them.
        events = self.env["qtc.event"].sudo().browse(sorted(event_ids)).exists()
        return events.filtered(lambda event: event.payload_origin == "edited")

    # ---------------------------------------------------------------- running

    @api.model
    def _qtc_run_worker(self, max_seconds=50, max_jobs=0):
        """Worker loop, the entry point of the worker crons: run ready jobs one by
        one, each in its own transaction, until none is ready or the time budget
        is spent (then the cron is rescheduled at once through the progress API).

        :returns: the number of jobs run
        """
        registry = self.env.registry
        deadline = time.monotonic() + max_seconds
        heartbeat = None if registry.in_test_mode() else _Heartbeat(registry)
        count = 0
        try:
            while time.monotonic() < deadline and (not max_jobs or count < max_jobs):
                if heartbeat:
                    self._qtc_recover_if_due()
                outcome = self._qtc_run_one(heartbeat)
                if outcome is False:
                    break
                count += bool(outcome)
        finally:
            if heartbeat:
                heartbeat.stop()
        if count and time.monotonic() >= deadline:
            remaining = self.search_count([("state", "=", "pending")])
            self.env["ir.cron"]._notify_progress(done=count, remaining=remaining)
        return count

    @api.model
    def _qtc_recover_if_due(self, now=None):
        """Take back dead workers' jobs if this process has not looked for
        ``RECOVERY_CHECK_SECONDS``: a killed worker's job (and the channel
        capacity it holds) is recovered by the workers still running instead of
        waiting for the recovery cron. Runs on its own cursor so it sees the
        latest committed state, not the worker loop's snapshot.

        :returns: the ids recovered, or None when not due
        """
        global _last_recovery_check  # noqa: PLW0603 - per-process throttle
        now = time.monotonic() if now is None else now
        if now - _last_recovery_check < const.RECOVERY_CHECK_SECONDS:
            return None
        _last_recovery_check = now
        try:
            with self.env.registry.cursor() as cr:
                # Boundary (queue runner): recovery is the queue's bookkeeping.
                env = api.Environment(cr, SUPERUSER_ID, {})
                return env["qtc.job"]._qtc_recover_stale()
        except psycopg2.Error:
            # Recovery is an optimisation here (the cron does it too): a
            # database hiccup must not stop the worker loop.
            _logger.warning("recovery check failed", exc_info=True)
            return []

    @api.model
    def _qtc_run_one(self, heartbeat=None):
        """Claim and run one ready job.

        One cursor carries the claim transaction and then the job's own
        transaction; a second connection holds the job's advisory lock while it
        runs (see the module docstring).

        :returns: True when a job ran, False when none is ready, None when the
            claim hit a transient database error (try again)
        """
        registry = self.env.registry
        # In test mode every cursor shares one connection: no lock connection.
        lock_cr = None if registry.in_test_mode() else registry.cursor()
        cr = registry.cursor()
        try:
            if lock_cr is not None:
                # SKIP LOCKED must see rows other workers committed after this
                # transaction began; Odoo's default (repeatable read) would fail
                # such rows with a serialization error instead.
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            try:
                job = self._qtc_claim(cr, lock_cr)
            except psycopg2.OperationalError:
                _logger.warning("claim failed; trying again", exc_info=True)
                cr.rollback()
                return None  # nothing claimed this time; the loop goes on
            cr.commit()  # per-job transaction boundary: the claim
            if not job:
                return False
            if heartbeat:
                heartbeat.job_id = job["id"]
            self._qtc_perform(cr, job)
            return True
        finally:
            if heartbeat:
                heartbeat.job_id = None
            cr.close()
            if lock_cr is not None:
                lock_cr.rollback()
                lock_cr.close()

    @api.model
    def _qtc_claim(self, cr, lock_cr=None):
        """Select one ready job with ``FOR UPDATE SKIP LOCKED`` and mark it started
        on ``cr`` (the caller commits).

        With ``lock_cr`` (a worker's lock connection), the job's advisory lock
        and one per declared resource are taken there before the claim commits;
        a candidate whose resources another running job holds is passed over
        for the next one, as is one whose channel turns out full.

        :returns: the claimed job's columns needed to run it (a dict), or None
        """
        self.env.flush_all()
        now = fields.Datetime.now()
        passed_over, full_channels = [], []
        while True:
            cr.execute(
                _CLAIM_SQL, {"now": now, "skip": passed_over, "full": full_channels}
            )
            row = cr.fetchone()
            if not row:
                return None
            job_id, channel_id, capacity, resources = row
            if capacity and not self._qtc_channel_has_room(cr, channel_id, capacity):
                full_channels.append(channel_id)
                continue
            if lock_cr is None:
                break
            if resources and not resources_lib.try_lock(lock_cr, resources):
                passed_over.append(job_id)
                continue
            lock_cr.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                (const.JOB_LOCK_NAMESPACE, job_id),
            )
            break
        cr.execute(
            """
            UPDATE qtc_job j
               SET state = 'started', attempts = j.attempts + 1, started_at = %(now)s,
                   worker = %(worker)s, done_at = NULL
              FROM res_users u
             WHERE j.id = %(id)s AND u.id = COALESCE(j.user_id, %(root)s)
            RETURNING j.id, j.model_name, j.method_name, j.record_ids, j.args,
                      j.kwargs, CASE WHEN u.active THEN u.id END, j.company_id,
                      j.correlation_id, j.event_id
            """,
            {"now": now, "worker": _worker_name(), "id": job_id, "root": SUPERUSER_ID},
        )
        keys = (
            "id model_name method_name record_ids args kwargs user_id company_id "
            "correlation_id event_id"
        ).split()
        claimed = dict(zip(keys, cr.fetchone(), strict=True))
        cr.execute(RESET_SQL, {"job": job_id, "now": now})
        return claimed

    @api.model
    def _qtc_channel_has_room(self, cr, channel_id, capacity):
        """Serialise claims within a capacity-limited channel, then recount:
        the count in the claim query may predate a concurrent claim."""
        cr.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            (const.CHANNEL_LOCK_NAMESPACE, channel_id),
        )
        cr.execute(
            "SELECT count(*) FROM qtc_job WHERE channel_id = %s AND state = 'started'",
            (channel_id,),
        )
        return cr.fetchone()[0] < capacity

    @api.model
    def _qtc_perform(self, cr, job):
        """Run the claimed ``job`` (a dict from ``_qtc_claim``) in a new
        transaction on ``cr`` and record the outcome. Never raises: failures
        become job states.

        Work that collides with a concurrent transaction (serialization
        failure, deadlock, ``ConcurrencyConflict``) is run again at once in a
        fresh transaction, ``const.CONFLICT_RETRIES`` times after a short
        random pause, and counted on the job; only then does it fail as usual
        (transient: backoff). The job keeps its locks meanwhile.
        """
        conflicts = 0
        while True:
            try:
                with conflicts_handled():
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    result = env["qtc.job"]._qtc_execute(job)
                    done = env["qtc.job"].browse(job["id"])._qtc_mark_done(result)
                    if not done:
                        cr.rollback()  # a cancel was requested meanwhile
                        self._qtc_record_cancelled(job["id"])
                        return
                    cr.commit()  # per-job transaction boundary: work + done state
                return
            except Exception as exc:
                trace = traceback.format_exc()
                try:
                    cr.rollback()
                except psycopg2.Error:
                    pass  # the connection itself died (killed backend): nothing to undo
                if not is_conflict(exc):
                    self._qtc_record_failure(job["id"], exc, trace)
                    return
                conflicts += 1
                if conflicts > const.CONFLICT_RETRIES or not self._qtc_count_conflict(
                    cr, job["id"]
                ):
                    _logger.warning(
                        "job %s: collided with a concurrent transaction again "
                        "(%s); retried later as a transient failure",
                        job["id"],
                        describe(exc),
                    )
                    self._qtc_record_failure(job["id"], exc, trace)
                    return
                _logger.info(
                    "job %s: collided with a concurrent transaction (%s); "
                    "run again at once (%s of %s)",
                    job["id"],
                    describe(exc),
                    conflicts,
                    const.CONFLICT_RETRIES,
                )
                low, high = const.CONFLICT_RETRY_PAUSE
                time.sleep(random.uniform(low, high) * conflicts)  # noqa: S311

    @api.model
    def _qtc_count_conflict(self, cr, job_id):
        """Count one conflict on the job, committed at once on ``cr`` (between
        two runs of its work, so no transaction of the job conflicts with it).
        Returns False when the database cannot be reached."""
        try:
            cr.execute(
                "UPDATE qtc_job SET conflict_retries = "
                "COALESCE(conflict_retries, 0) + 1 WHERE id = %s",
                (job_id,),
            )
            cr.commit()  # per-job transaction boundary: the conflict count
            return True
        except psycopg2.Error:
            try:
                cr.rollback()
            except psycopg2.Error:
                pass
            return False

    @api.model
    def _qtc_execute(self, job, inline=False):
        """Call the job's target method with its arguments, as its user, in its
        company, with the correlation context set. Returns the method's result.

        Nothing runs (a business error says why) when the method is not a job
        function of its model, or the job's user is missing or archived: the
        runner never falls back to the superuser.

        :param job: the claimed job's columns (see ``_qtc_claim``)
        :param inline: run by ``_qtc_run_pending_inline`` inside the caller's
            transaction (progress is then written in that transaction too)
        """
        model_name, method_name = job["model_name"], job["method_name"]
        model = self.env.registry.get(model_name)
        if model is None or not is_job_function(model, method_name):
            raise BusinessError(
                _(
                    "%(model)s.%(method)s is not a registered job function: "
                    "nothing was run.",
                    model=model_name,
                    method=method_name,
                ),
                category="configuration",
                severity="high",
                suggested_action=_(
                    "Cancel the job. Only methods marked as job functions in the "
                    "code may be queued."
                ),
            )
        user = self._qtc_job_user(job)
        context = {
            "qtc_job_id": job["id"],
            "qtc_job_inline": inline,
            "qtc_correlation_id": job["correlation_id"],
            "qtc_event_id": job["event_id"] or False,
            "allowed_company_ids": [job["company_id"]] if job["company_id"] else [],
        }
        env = self.env(user=user.id, context=context, su=False)
        record_ids = job["record_ids"] or []
        records = env[model_name].browse(record_ids)
        if record_ids:
            records = records.exists()
            if not records:
                raise BusinessError(
                    _("The records this job works on were deleted."),
                    category="unknown_record",
                )
        method = getattr(records, method_name)
        return method(*(job["args"] or []), **(job["kwargs"] or {}))

    def _qtc_job_user(self, job):
        """The active user the claimed ``job`` runs as.

        :raises BusinessError: the job has no user, its user is archived or
            deleted, or may not work in the job's company
        """
        # Boundary (read): who the job runs as, archived or not, and its
        # backend's and company's names for the message.
        users = self.env["res.users"].sudo().with_context(active_test=False)
        user_id, backend_id = job["user_id"], None
        if not user_id:
            # The claim leaves an archived user out: read who it was.
            self.env.cr.execute(
                "SELECT user_id, backend_id FROM qtc_job WHERE id = %s", (job["id"],)
            )
            user_id, backend_id = self.env.cr.fetchone() or (None, None)
        # user_id is a foreign key (set null on delete): the row exists.
        user = users.browse(user_id or [])
        if not user or not user.active or user.id == SUPERUSER_ID:
            if user:
                message = _(
                    "Job %(job)s runs as %(user)s, who is archived: it does not "
                    "run as anyone else.",
                    job=job["id"],
                    user=user.name,
                )
            else:
                backend = self.env["qtc.backend"].sudo().browse(backend_id).exists()
                message = _(
                    "Job %(job)s has no user to run as%(backend)s: it does not run "
                    "as anyone else.",
                    job=job["id"],
                    backend=_(" (backend %s has no technical user)", backend.name)
                    if backend and not backend.technical_user_id
                    else "",
                )
            raise BusinessError(
                message,
                category="configuration",
                severity="high",
                suggested_action=_(
                    "Reactivate the user or set the backend's technical user, "
                    "then Retry; or cancel the job."
                ),
            )
        company_id = job["company_id"]
        if company_id and company_id not in user.company_ids.ids:
            raise BusinessError(
                _(
                    "Job %(job)s runs as %(user)s, who may not work in company "
                    "%(company)s.",
                    job=job["id"],
                    user=user.name,
                    company=self.env["res.company"].sudo().browse(company_id).name,
                ),
                category="configuration",
                severity="high",
            )
        return user

    def _qtc_mark_done(self, result):
        """Mark the running job done in its own transaction, unless a cancel was
        requested meanwhile. Returns False in that case (the caller rolls back)."""
        self.ensure_one()
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            """
            UPDATE qtc_job SET state = 'done', done_at = %s, result = %s,
                   error_message = NULL, error_kind = NULL, write_date = %s
             WHERE id = %s AND NOT COALESCE(cancel_requested, false)
            RETURNING id
            """,
            (now, None if result is None else str(result)[:10000], now, self.id),
        )
        done = bool(self.env.cr.fetchone())
        self.invalidate_recordset()
        return done

    @api.model
    def _qtc_record_cancelled(self, job_id):
        with self.env.registry.cursor() as cr:
            cr.execute(
                "UPDATE qtc_job SET state = 'cancelled', done_at = %s, "
                "result = 'cancelled while running; its work was rolled back' "
                "WHERE id = %s",
                (fields.Datetime.now(), job_id),
            )

    @api.model
    def _qtc_record_failure(self, job_id, exc, trace):
        """Write the outcome of a failed attempt in a fresh transaction, so the
        rollback of the job's work does not erase it."""
        with self.env.registry.cursor() as cr:
            # Boundary (queue runner): the outcome of an attempt, written by
            # the queue whatever the job's user may do.
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["qtc.job"].browse(job_id)._qtc_apply_failure(exc, trace)

    def _qtc_apply_failure(self, exc, trace):
        """Decide retry, failed or dead from the error class; open an exception
        for a person when the job stops."""
        self.ensure_one()
        job = self
        now = fields.Datetime.now()
        message = str(exc) or type(exc).__name__
        if isinstance(exc, BUSINESS_ERRORS):
            kind, state, eta = "business", "failed", None
        else:
            kind = "transient" if isinstance(exc, TRANSIENT_ERRORS) else "crash"
            if job.attempts >= job.max_attempts:
                state, eta = "dead", None
            else:
                delay = getattr(exc, "delay", None)
                if delay is None:
                    # A job inserted without a cap still backs off (never 0 s).
                    cap = job.max_backoff or const.DEFAULT_MAX_BACKOFF
                    delay = backoff.delay(job.attempts, cap=cap)
                state, eta = "pending", now + timedelta(seconds=delay)
        values = {
            "state": state,
            "eta": eta,
            "error_kind": kind,
            "error_message": message[:5000],
            "error_trace": trace if kind == "crash" else None,
            "done_at": now if state != "pending" else None,
        }
        self.env.cr.execute(
            """
            UPDATE qtc_job
               SET state = %(state)s, eta = %(eta)s, error_kind = %(error_kind)s,
                   error_message = %(error_message)s, error_trace = %(error_trace)s,
                   done_at = %(done_at)s, write_date = %(now)s
             WHERE id = %(id)s
            """,
            {**values, "now": now, "id": job.id},
        )
        job.invalidate_recordset()
        log = _logger.info if state == "pending" else _logger.warning
        log(
            "job %s (%s) attempt %s: %s -> %s",
            job.id,
            job.name,
            job.attempts,
            message,
            state,
        )
        if job.event_id:
            # Boundary (queue bookkeeping): the event follows its job's state.
            job.event_id.sudo().write(
                {
                    "state": {"pending": "received"}.get(state, state),
                    "error_message": message[:5000],
                }
            )
        if state == "failed":
            self.env["qtc.exception"]._qtc_open_from_error(job, exc)
        elif state == "dead":
            self.env["qtc.exception"]._qtc_open_from_error(
                job,
                BusinessError(
                    _(
                        "Job gave up after %(attempts)s attempts: %(message)s",
                        attempts=job.attempts,
                        message=message,
                    ),
                    category="dead_job",
                    severity="high",
                    suggested_action=_(
                        "Fix the cause (remote system down, configuration), then Retry."
                    ),
                ),
            )
        if state == "pending" and eta:
            job._qtc_wake_workers(at=eta)

    @api.model
    def _qtc_run_pending_inline(self, limit=100):
        """Run ready jobs in the current transaction, each inside a savepoint.

        For tests and the command line (``odoo shell``): the same claim, execute
        and failure paths as the workers, without separate transactions.

        :returns: the number of jobs run
        """
        count = 0
        while count < limit:
            claimed = self._qtc_claim(self.env.cr)
            if not claimed:
                break
            count += 1
            job_id = claimed["id"]
            job = self.browse(job_id)
            job.invalidate_recordset()
            try:
                with self.env.cr.savepoint():
                    result = self._qtc_execute(claimed, inline=True)
                    if not job._qtc_mark_done(result):
                        raise _CancelledInline()
            except _CancelledInline:
                self.env.cr.execute(
                    "UPDATE qtc_job SET state = 'cancelled', done_at = %s "
                    "WHERE id = %s",
                    (fields.Datetime.now(), job_id),
                )
            except Exception as exc:
                trace = traceback.format_exc()
                self.env.invalidate_all()
                job._qtc_apply_failure(exc, trace)
            self.env.invalidate_all()
        return count

    # ------------------------------------------------------------ maintenance

    @api.model
    def _qtc_recover_stale(self, stale_seconds=const.STALE_HEARTBEAT_SECONDS):
        """Take back started jobs whose worker died: heartbeat older than
        ``stale_seconds`` and advisory lock free. Each goes back to pending (or
        dead when out of attempts).

        :returns: the ids recovered
        """
        self.env.flush_all()
        limit = fields.Datetime.now() - timedelta(seconds=stale_seconds)
        self.env.cr.execute(
            "SELECT j.id FROM qtc_job j "
            "LEFT JOIN qtc_job_progress p ON p.job_id = j.id "
            "WHERE j.state = 'started' "
            "AND COALESCE(p.heartbeat_at, j.started_at) <= %s",
            (limit,),
        )
        candidates = [row[0] for row in self.env.cr.fetchall()]
        recovered = []
        for job_id in candidates:
            with self.env.registry.cursor() as cr:
                cr.execute(
                    "SELECT pg_try_advisory_xact_lock(%s, %s)",
                    (const.JOB_LOCK_NAMESPACE, job_id),
                )
                if not cr.fetchone()[0]:
                    continue  # its worker is alive, only slow to beat
                cr.execute(
                    "SELECT state FROM qtc_job WHERE id = %s FOR UPDATE", (job_id,)
                )
                if cr.fetchone()[0] != "started":
                    continue
                # Boundary (queue runner): see _qtc_record_failure.
                env = api.Environment(cr, SUPERUSER_ID, {})
                job = env["qtc.job"].browse(job_id)
                # A first death is the worker's misfortune: run again at once
                # (its channel was blocked meanwhile). A job that keeps dying
                # may be what kills its workers: back off as usual.
                delay = 0 if job.attempts <= 1 else None
                job._qtc_apply_failure(
                    RetryableError(
                        _("Worker died while running the job; recovered."),
                        delay=delay,
                    ),
                    None,
                )
                if delay == 0:
                    env["qtc.job"]._qtc_wake_workers()
                recovered.append(job_id)
        if recovered:
            _logger.warning("recovered jobs from dead workers: %s", recovered)
        return recovered

    @api.model
    def _qtc_declare_pending_resources(self, backends):
        """Upgrade step: pending event jobs of ``backends`` queued before jobs
        declared resources get those their backend declares for their events
        (``qtc.backend._qtc_event_resources``). Each connector's migration
        calls it once its own hook is loaded.

        :returns: the number of jobs given resources
        """
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            """
            SELECT id, backend_id, record_ids FROM qtc_job
             WHERE state = 'pending' AND resources IS NULL
               AND model_name = 'qtc.event' AND backend_id = ANY(%s)
            """,
            (backends.ids,),
        )
        count = 0
        for job_id, backend_id, record_ids in cr.fetchall():
            events = self.env["qtc.event"].browse(record_ids or []).exists()
            backend = self.env["qtc.backend"].browse(backend_id)
            names = set()
            for declared in backend._qtc_event_resources(events) if events else ():
                names.update(declared)
            encoded = resources_lib.encode(names)
            if encoded:
                cr.execute(
                    "UPDATE qtc_job SET resources = %s WHERE id = %s",
                    (encoded, job_id),
                )
                count += 1
        return count

    @api.model
    def _qtc_prune(self, days=30, batch_size=const.PRUNE_BATCH_SIZE):
        """Delete done and cancelled jobs older than ``days``, one batch per call.

        Called by a cron that uses Odoo's progress API: each batch commits on
        its own and the cron runs again at once while work remains, so a table of
        millions of rows is pruned without a long transaction or a timeout.

        :returns: the number of jobs deleted by this batch
        """
        self.env.flush_all()
        limit = fields.Datetime.now() - timedelta(days=days)
        self.env.cr.execute(
            """
            DELETE FROM qtc_job WHERE id IN (
                SELECT id FROM qtc_job
                 WHERE state IN ('done', 'cancelled') AND done_at < %s
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED)
            """,
            (limit, batch_size),
        )
        deleted = self.env.cr.rowcount
        remaining = 0
        if deleted == batch_size:
            self.env.cr.execute(
                "SELECT count(*) FROM (SELECT 1 FROM qtc_job WHERE state IN "
                "('done', 'cancelled') AND done_at < %s LIMIT %s) AS more",
                (limit, batch_size * 10),
            )
            remaining = self.env.cr.fetchone()[0]
        self.env["ir.cron"]._notify_progress(done=deleted, remaining=remaining)
        return deleted

    # ---------------------------------------------------------------- helpers

    def _qtc_progress(self, done, total, message=None):
        """Report progress of a long job; visible at once in the UI (written on
        a separate short transaction, on the progress table, never on the job
        row the job's own transaction will update) and refreshes the heartbeat."""
        job_id = self.env.context.get("qtc_job_id")
        if not job_id:
            return
        values = {
            "job": job_id,
            "now": fields.Datetime.now(),
            "done": done,
            "total": total,
            "message": message,
        }
        if self.env.context.get("qtc_job_inline"):
            # The job row is not committed yet: another transaction would wait
            # on it. Inline runs report in their own transaction.
            self.env.cr.execute(UPSERT_SQL, values)
            return
        with self.env.registry.cursor() as cr:
            cr.execute(UPSERT_SQL, values)

    @api.model
    def _qtc_backend_stats(self, backend_ids):
        """Health figures per backend for the dashboard and /qtc/health."""
        if not backend_ids:
            return {}
        self.env.flush_all()
        now = fields.Datetime.now()
        cr = self.env.cr
        stats = {bid: {} for bid in backend_ids}
        cr.execute(
            """
            SELECT backend_id,
                   count(*) FILTER (WHERE state = 'pending'),
                   count(*) FILTER (WHERE state = 'started'),
                   count(*) FILTER (WHERE state = 'failed'),
                   count(*) FILTER (WHERE state = 'dead'),
                   min(create_date) FILTER (WHERE state = 'pending'),
                   max(done_at) FILTER (WHERE state = 'done'),
                   count(*) FILTER (WHERE state IN ('failed', 'dead')
                                     AND done_at > %(day)s)
                     + count(*) FILTER (WHERE state = 'pending' AND attempts > 0
                                         AND write_date > %(day)s)
              FROM qtc_job WHERE backend_id = ANY(%(ids)s)
             GROUP BY backend_id
            """,
            {"ids": list(backend_ids), "day": now - timedelta(days=1)},
        )
        for (
            bid,
            pending,
            started,
            failed,
            dead,
            oldest,
            last_done,
            failures,
        ) in cr.fetchall():
            stats[bid].update(
                job_pending_count=pending,
                job_started_count=started,
                job_failed_count=failed,
                job_dead_count=dead,
                oldest_pending_minutes=round((now - oldest).total_seconds() / 60, 1)
                if oldest
                else 0.0,
                last_success_at=last_done,
                failures_24h=failures,
            )
        cr.execute(
            """
            SELECT backend_id, max(received_at),
                   count(*) FILTER (WHERE state IN ('failed', 'dead'))
              FROM qtc_event WHERE backend_id = ANY(%s) GROUP BY backend_id
            """,
            (list(backend_ids),),
        )
        for bid, last_event, failed_events in cr.fetchall():
            stats[bid].update(
                last_event_at=last_event, event_failed_count=failed_events
            )
        cr.execute(
            "SELECT backend_id, count(*) FROM qtc_exception "
            "WHERE state = 'open' AND backend_id = ANY(%s) GROUP BY backend_id",
            (list(backend_ids),),
        )
        for bid, open_count in cr.fetchall():
            stats[bid]["exception_open_count"] = open_count
        return stats


class _CancelledInline(Exception):
    """Rolls the savepoint of an inline job back when its cancel was requested."""


def _json(value):
    # A JSON string is cast to jsonb by PostgreSQL on insert.
    return json.dumps(value)
