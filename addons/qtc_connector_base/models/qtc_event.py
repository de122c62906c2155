import json

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from .. import const
from ..access import GROUP_MANAGER, GROUP_USER, check_action
from ..lib.errors import BusinessError
from ..lib.job_function import job_function

IGNORED = "ignored"

PAYLOAD_ORIGINS = [
    ("received", "As received"),
    ("edited", "Edited by a person"),
    ("reread", "Read again from the source"),
]


class QtcEvent(models.Model):
    """An inbound message, stored as received before anything is done with it.

    Unique per (backend, external id): a redelivered event is acknowledged and
    changes nothing. Its job applies it; its trace lines list what it changed.
    """

    _name = "qtc.event"
    _description = "QTC Inbound Event"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _rec_name = "external_id"

    backend_id = fields.Many2one(
        "qtc.backend", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    provider = fields.Char(readonly=True)
    external_id = fields.Char(required=True, readonly=True)
    event_type = fields.Char(readonly=True, index=True)
    payload = fields.Text(
        readonly=True,
        help="As received (for malformed bodies, the raw body kept for audit), "
        "unless a QTC Manager edited it or a replay read it again from the source "
        "(see Payload origin).",
    )
    # Not required: the webhook path inserts events with SQL (empty = as
    # received); only "edited" changes who may apply the event.
    payload_origin = fields.Selection(
        PAYLOAD_ORIGINS,
        default="received",
        readonly=True,
        help="An edited payload is no longer the sender's word: it is applied "
        "with the rights of the person who replays it.",
    )
    original_payload = fields.Text(
        readonly=True, help="The payload as received, kept when it was replaced."
    )
    payload_edited_by_id = fields.Many2one(
        "res.users", string="Payload edited by", readonly=True
    )
    payload_edited_at = fields.Datetime(readonly=True)
    headers = fields.Text(readonly=True)
    signature_verified = fields.Boolean(readonly=True)
    received_at = fields.Datetime(readonly=True, index=True)
    correlation_id = fields.Char(readonly=True, index=True)
    state = fields.Selection(
        const.EVENT_STATES, default="received", required=True, readonly=True, index=True
    )
    error_message = fields.Text(readonly=True)
    result = fields.Text(readonly=True)
    job_ids = fields.One2many("qtc.job", "event_id", readonly=True)
    trace_ids = fields.One2many("qtc.trace", "event_id", readonly=True)
    produced_trace_ids = fields.Many2many(
        "qtc.trace",
        compute="_compute_produced_trace_ids",
        string="Records produced",
        help="Every change made by this event's job and by the jobs it queued "
        "(they share its correlation id).",
    )
    exception_ids = fields.One2many("qtc.exception", "event_id", readonly=True)

    _sql_constraints = [
        (
            "backend_external_uniq",
            "unique(backend_id, external_id)",
            "An event is stored once per backend and external id.",
        )
    ]

    @api.depends("correlation_id", "trace_ids")
    def _compute_produced_trace_ids(self):
        traces = self.env["qtc.trace"]
        correlations = [c for c in self.mapped("correlation_id") if c]
        lines = traces.search(
            [
                "|",
                ("event_id", "in", self.ids),
                ("correlation_id", "in", correlations),
            ]
        )
        for event in self:
            correlation = event.correlation_id
            event.produced_trace_ids = lines.filtered(
                lambda line, event=event, correlation=correlation: (
                    line.event_id == event
                    or (correlation and line.correlation_id == correlation)
                )
            )

    # ------------------------------------------------------------------- CRUD

    def write(self, vals):
        # An event is evidence: what was received, and what became of it, is
        # written by the queue's own code only (after its checks, in sudo).
        # People post in its chatter, nothing else.
        if not self.env.su:
            fields_written = {name for name in vals if not name.startswith("message_")}
            if fields_written:
                raise AccessError(
                    _(
                        "Inbound events are written by the system only (%(fields)s).",
                        fields=", ".join(sorted(fields_written)),
                    )
                )
        return super().write(vals)

    # ---------------------------------------------------------------- actions

    def action_replay(self):
        """QTC Manager: queue the events again (after a fix). Their handler is
        idempotent, so a replay of an applied event changes nothing. An event
        as received runs as its backend's technical user; one whose payload a
        person edited runs as the caller, with the caller's rights.

        :raises AccessError: not a QTC Manager, or events of another company
        """
        check_action(self, GROUP_MANAGER, "write", _("replay events directly"))
        self._qtc_replay()
        return True

    def action_view_trace(self):
        self.ensure_one()
        check_action(self, GROUP_USER, "read", _("look into events"))
        return self.env["qtc.trace"]._qtc_action_for_correlation(self.correlation_id)

    # --------------------------------------------------------- replay, edit

    def _qtc_replay(self):
        """Queue a replay job per event; the system's flows (an exception's
        Retry, the replay wizard) call it after their own checks.

        Who the job runs as: the backend's technical user for a payload as the
        sender sent it (or as read again from the source); the current user
        for a payload a person edited, so the edit is applied with the rights
        of whoever asked for it.

        :raises UserError: an edited payload replayed by no person (the
            superuser, a public or portal user)
        :returns: the replay jobs
        """
        jobs = self.env["qtc.job"]
        queued = jobs
        user = self.env.user
        for event in self:
            if event.payload_origin == "edited":
                if self.env.su or user._is_superuser() or user.sudo().share:
                    raise UserError(
                        _(
                            "The payload of event %s was edited: a person replays "
                            "it, with their own rights.",
                            event.external_id,
                        )
                    )
                runner = user
            else:
                runner = event.backend_id._qtc_technical_user()
                if not runner:
                    raise UserError(
                        _(
                            "Backend %s has no technical user to replay the event.",
                            event.backend_id.display_name,
                        )
                    )
            # Boundary (queue): the person may not read or write the queue
            # itself; the job is queued for the user chosen above.
            queued |= jobs.sudo()._qtc_enqueue(
                event,
                "_qtc_process",
                kwargs={"replay": True},
                name=_("Replay event %s", event.external_id),
                event=event,
                identity_key=f"qtc.event:{event.id}:replay:{runner.id}",
                user=runner.id,
            )
            # Boundary (queue bookkeeping): the event waits again, and its
            # chatter says who asked.
            event_sudo = event.sudo()
            event_sudo.write({"state": "received", "error_message": False})
            event_sudo.message_post(
                body=_(
                    "Replay queued by %(user)s (runs as %(runner)s).",
                    user=user.name,
                    runner=runner.name,
                ),
                author_id=user.partner_id.id,
            )
        return queued.with_env(self.env)

    def _qtc_edit_payload(self, payload):
        """Replace the payload with a person's edit (the caller checked that the
        current user is a QTC Manager). The payload as received is kept in
        ``original_payload``, the edit is recorded (who, when) and written in
        the chatter with the original attached; jobs still waiting to apply
        the event are cancelled, so only a replay (as that person) applies it.
        """
        self.ensure_one()
        if payload == self.payload:
            return False
        user = self.env.user
        # Boundary (event record): people never write events; the edit is
        # theirs, recorded under their name here.
        event_sudo = self.sudo()
        event_sudo.message_post(
            body=_("Payload edited by %s. Payload before the edit:", user.name),
            author_id=user.partner_id.id,
            attachments=[("payload-before-edit.txt", (self.payload or "").encode())],
        )
        values = {
            "payload": payload,
            "payload_origin": "edited",
            "payload_edited_by_id": user.id,
            "payload_edited_at": fields.Datetime.now(),
        }
        if not self.original_payload and self.payload_origin in (False, "received"):
            values["original_payload"] = self.payload
        event_sudo.write(values)
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT id FROM qtc_job
             WHERE state = 'pending'
               AND (event_id = %(event)s
                    OR (model_name = 'qtc.event'
                        AND record_ids @> jsonb_build_array(%(event)s)))
            """,
            {"event": self.id},
        )
        waiting = self.env["qtc.job"].browse([row[0] for row in self.env.cr.fetchall()])
        waiting._qtc_cancel(note=_("payload edited"))
        return True

    def _qtc_take_source_payload(self, payload):
        """Store ``payload``, read again from the source by a replay, instead of
        the stored one (kept in ``original_payload`` the first time)."""
        self.ensure_one()
        if payload is None or payload == self.payload:
            return
        values = {"payload": payload, "payload_origin": "reread"}
        if not self.original_payload:
            values["original_payload"] = self.payload
        # Boundary (event record): the source's own version replaces a stored
        # one; the chatter says so.
        event_sudo = self.sudo()
        event_sudo.write(values)
        event_sudo.message_post(
            body=_(
                "Replay read the event again from %(backend)s; that version was "
                "applied instead of the stored payload.",
                backend=self.backend_id.display_name,
            )
        )

    # ---------------------------------------------------------------- applying

    def _qtc_payload_json(self):
        """The payload parsed as JSON.

        :raises BusinessError: via the caller, when it is not JSON
        """
        self.ensure_one()
        return json.loads(self.payload or "null")

    @job_function
    def _qtc_process(self, replay=False):
        """Job target: apply the event(s) through the backend's provider hooks.

        One event: ``_qtc_handle_event``; its errors decide the job's fate. A batch
        stored with ``batch=True`` is applied by ``_qtc_process_batch`` instead.

        :param replay: a person asked for it again: where the source can be
            read back (the provider's ``_qtc_replay_payload``), its version is
            applied instead of the stored payload
        """
        self.ensure_one()
        backend = self.backend_id
        if replay:
            self._qtc_take_source_payload(backend._qtc_replay_payload(self))
        if self.payload_origin == "edited":
            technical = backend._qtc_technical_user()
            if self.env.su or self.env.user == technical:
                # Defence in depth: an edited payload is never the system's word.
                raise BusinessError(
                    _(
                        "The payload of event %s was edited by a person: only a "
                        "replay by a person applies it, with their rights.",
                        self.external_id,
                    ),
                    category="access",
                )
        # A dry run passes its own correlation id so its trace lines can be told
        # apart; a worker passes the event's.
        correlation_id = (
            self.env.context.get("qtc_correlation_id") or self.correlation_id
        )
        outcome = backend.with_context(
            qtc_correlation_id=correlation_id, qtc_event_id=self.id
        )._qtc_handle_event(self)
        state = "ignored" if outcome == IGNORED else "done"
        # Boundary (queue bookkeeping): the event's outcome, whatever the
        # rights of the user applying it.
        self.sudo().write(
            {
                "state": state,
                "result": str(outcome or "")[:5000],
                "error_message": False,
            }
        )
        return outcome

    @job_function
    def _qtc_process_batch(self):
        """Job target of a batch (even a batch of one): the provider's
        ``_qtc_handle_events``, where a business error stops only its event."""
        backend = self.backend_id
        backend.ensure_one()
        edited = self.filtered(lambda event: event.payload_origin == "edited")
        if edited:
            # Requeue refuses such a batch; one queued before the edit must not
            # apply a person's edit with the technical user's rights.
            raise BusinessError(
                _(
                    "The payload of event(s) %s was edited by a person: replay "
                    "them one by one.",
                    ", ".join(edited.mapped("external_id")),
                ),
                category="access",
            )
        outcomes = backend._qtc_handle_events(self)
        counts = {}
        for state in ("done", "ignored", "failed"):
            ids = [eid for eid, (st, _text) in outcomes.items() if st == state]
            counts[state] = len(ids)
            for text, group in _group_by_text(outcomes, ids).items():
                # Boundary (queue bookkeeping): see _qtc_process.
                self.browse(group).sudo().write(
                    {
                        "state": state,
                        "result": text if state != "failed" else False,
                        "error_message": text if state == "failed" else False,
                    }
                )
        return _(
            "%(done)s applied, %(ignored)s ignored, %(failed)s need attention", **counts
        )

    @api.model
    def _qtc_prune(self, batch_size=const.PRUNE_BATCH_SIZE):
        """Delete done and ignored events past their backend's retention, one
        batch per call (cron with the progress API). Failed and dead events stay
        until a person handles them."""
        self.env.cr.execute(
            """
            DELETE FROM qtc_event WHERE id IN (
                SELECT e.id FROM qtc_event e JOIN qtc_backend b ON b.id = e.backend_id
                 WHERE e.state IN ('done', 'ignored')
                   AND e.received_at < (now() at time zone 'utc')
                       - make_interval(days => GREATEST(b.event_retention_days, %s))
                 LIMIT %s
                   FOR UPDATE OF e SKIP LOCKED)
            """,
            (const.MIN_EVENT_RETENTION_DAYS, batch_size),
        )
        deleted = self.env.cr.rowcount
        remaining = batch_size if deleted == batch_size else 0
        self.env["ir.cron"]._notify_progress(done=deleted, remaining=remaining)
        return deleted


def _group_by_text(outcomes, ids):
    """Event ids grouped by their outcome text, so equal outcomes are written in
    one UPDATE."""
    groups = {}
    for event_id in ids:
        groups.setdefault(str(outcomes[event_id][1] or "")[:5000], []).append(event_id)
    return groups
