import json

from odoo import SUPERUSER_ID, _, api, fields, models

from .. import const

IGNORED = "ignored"


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
        help="As received (for malformed bodies, the raw body kept for audit).",
    )
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

    def _qtc_payload_json(self):
        """The payload parsed as JSON.

        :raises BusinessError: via the caller, when it is not JSON
        """
        self.ensure_one()
        return json.loads(self.payload or "null")

    def _qtc_process(self):
        """Job target: apply the event(s) through the backend's provider hooks.

        One event: ``_qtc_handle_event``; its errors decide the job's fate. A batch
        stored with ``batch=True`` is applied by ``_qtc_process_batch`` instead.
        """
        self.ensure_one()
        backend = self.backend_id
        # A dry run passes its own correlation id so its trace lines can be told
        # apart; a worker passes the event's.
        correlation_id = (
            self.env.context.get("qtc_correlation_id") or self.correlation_id
        )
        outcome = backend.with_context(
            qtc_correlation_id=correlation_id, qtc_event_id=self.id
        )._qtc_handle_event(self)
        state = "ignored" if outcome == IGNORED else "done"
        self.sudo().write(
            {
                "state": state,
                "result": str(outcome or "")[:5000],
                "error_message": False,
            }
        )
        return outcome

    def _qtc_process_batch(self):
        """Job target of a batch (even a batch of one): the provider's
        ``_qtc_handle_events``, where a business error stops only its event."""
        backend = self.backend_id
        backend.ensure_one()
        outcomes = backend._qtc_handle_events(self)
        counts = {}
        for state in ("done", "ignored", "failed"):
            ids = [eid for eid, (st, _text) in outcomes.items() if st == state]
            counts[state] = len(ids)
            for text, group in _group_by_text(outcomes, ids).items():
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

    def action_replay(self):
        """Queue the event again (after a fix). Its handler is idempotent, so a
        replay of an applied event changes nothing."""
        # Events are applied by the system, as on first delivery, whoever asked
        # for the replay (recorded in the chatter below).
        jobs = self.env["qtc.job"].with_user(SUPERUSER_ID)
        for event in self:
            jobs._qtc_enqueue(
                event,
                "_qtc_process",
                name=_("Replay event %s", event.external_id),
                event=event,
                identity_key=f"qtc.event:{event.id}:replay",
            )
            event.sudo().write({"state": "received", "error_message": False})
            event.sudo().message_post(
                body=_("Replayed by %s.", self.env.user.name),
                author_id=self.env.user.partner_id.id,
            )
        return True

    def action_view_trace(self):
        self.ensure_one()
        return self.env["qtc.trace"]._qtc_action_for_correlation(self.correlation_id)

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
