from odoo import SUPERUSER_ID, _, api, fields, models
from odoo.exceptions import AccessError, UserError

from .. import const
from ..access import GROUP_USER, check_action
from ..exceptions import default_suggested_action
from ..lib.errors import BusinessError

# What a finance user may change on an exception by hand: whose it is, and the
# record to link it to. Everything else is what the system found, written by
# the system (opened, reopened, closed by an action).
USER_WRITABLE_FIELDS = frozenset({"user_id", "link_ref"})


class QtcException(models.Model):
    """Work a person must finish: an event or job that stopped on a business
    error (missing data, unmapped value, unknown customer, unapplied cash...).

    A finance user retries after fixing the cause, links the external record
    to an existing Odoo record, or ignores it with a reason; a QTC Manager may
    also edit the payload and replay it (with a dry run first). Every action is
    written in the chatter.

    Exceptions are opened by the system only (``_qtc_open``): no group may
    create one, and what one points at (job, event, backend, company, external
    record) cannot be changed by hand.
    """

    _name = "qtc.exception"
    _description = "QTC Exception"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "state, severity_rank desc, id desc"

    name = fields.Char(required=True, tracking=True)
    category = fields.Selection(
        const.EXCEPTION_CATEGORIES, required=True, tracking=True
    )
    severity = fields.Selection(const.SEVERITIES, default="medium", required=True)
    severity_rank = fields.Integer(compute="_compute_severity_rank", store=True)
    state = fields.Selection(
        const.EXCEPTION_STATES, default="open", required=True, tracking=True, index=True
    )
    backend_id = fields.Many2one("qtc.backend", index=True, ondelete="cascade")
    company_id = fields.Many2one(
        "res.company", index=True, default=lambda self: self.env.company
    )
    job_id = fields.Many2one("qtc.job", index=True, ondelete="set null")
    event_id = fields.Many2one("qtc.event", index=True, ondelete="set null")
    correlation_id = fields.Char(index=True)
    details = fields.Text(help="Every problem found, one per line.")
    suggested_action = fields.Text()
    payload = fields.Text(related="event_id.payload", string="Event payload")
    res_model = fields.Char(string="Record model")
    res_id = fields.Many2oneReference(model_field="res_model", string="Record id")
    record_ref = fields.Reference(
        selection="_selection_models", compute="_compute_record_ref", string="Record"
    )
    external_type = fields.Char(
        help="External record a link would bind (e.g. customer)."
    )
    external_id = fields.Char()
    link_ref = fields.Reference(selection="_selection_models", string="Link to")
    occurrences = fields.Integer(default=1, readonly=True)
    resolution = fields.Text(readonly=True, tracking=True)
    user_id = fields.Many2one("res.users", string="Responsible", tracking=True)

    @api.model
    def _selection_models(self):
        # Boundary (read): model names for the selection; ir.model is an
        # administrator's model.
        return [(m.model, m.name) for m in self.env["ir.model"].sudo().search([])]

    @api.depends("severity")
    def _compute_severity_rank(self):
        ranks = {"low": 1, "medium": 2, "high": 3}
        for record in self:
            record.severity_rank = ranks.get(record.severity, 0)

    @api.depends("res_model", "res_id")
    def _compute_record_ref(self):
        for record in self:
            ok = record.res_model in self.env and record.res_id
            record.record_ref = f"{record.res_model},{record.res_id}" if ok else False

    # ------------------------------------------------------------------- CRUD

    def write(self, vals):
        if not self.env.su:
            refused = {
                name
                for name in vals
                if name not in USER_WRITABLE_FIELDS
                and not name.startswith(("message_", "activity_"))
            }
            if refused:
                raise AccessError(
                    _(
                        "Exception fields %(fields)s are written by the system only.",
                        fields=", ".join(sorted(refused)),
                    )
                )
        return super().write(vals)

    # --------------------------------------------------------------- creation

    @api.model
    def _qtc_open_from_error(self, job, error):
        """Open (or reopen) the exception of a job that stopped.

        One exception per job: a job that fails again after a retry reopens it
        and counts the occurrence instead of piling up duplicates. A job
        stopped by missing access rights says whose rights were missing.
        """
        if isinstance(error, AccessError):
            user = job.user_id
            error = BusinessError(
                _(
                    "%(user)s may not do what this job does: %(reason)s",
                    user=user.name,
                    reason=str(error).splitlines()[0],
                ),
                category="access",
                problems=[str(error).splitlines()[0]],
                suggested_action=_(
                    "The job runs with the rights of %(user)s: give that user the "
                    "rights it needs (for a technical user, the connector's "
                    "service group), or have someone who has them replay it.",
                    user=user.name,
                ),
            )
        return self._qtc_open(
            error,
            backend=job.backend_id,
            job=job,
            event=job.event_id,
            correlation_id=job.correlation_id,
            company=job.company_id,
        )

    @api.model
    def _qtc_open(
        self,
        error,
        backend=None,
        job=None,
        event=None,
        correlation_id=None,
        company=None,
    ):
        """Open an exception for a person from a ``BusinessError`` (or any error),
        also from inside a job that goes on (e.g. one record of a batch refused).

        :param error: a ``BusinessError`` gives category, severity, problems,
            suggestion, records and external reference
        :returns: the ``qtc.exception`` (an existing one of the same job reopened)
        """
        # Boundary (system): exceptions are opened by the system (OdooBot, who
        # also signs the activity mail to the responsible), for whoever's work
        # raised them (a job's user, a webhook); no group creates them.
        exceptions_sudo = self.with_user(SUPERUSER_ID)
        business = error if isinstance(error, BusinessError) else None
        problems = business.problems if business else []
        details = "\n".join(f"- {p}" for p in problems) or (
            business.summary if business else str(error)
        )
        records = business.records if business else []
        context = self.env.context
        values = {
            "name": str(error).splitlines()[0][:250] if str(error) else _("Job failed"),
            "category": business.category if business else "data",
            "severity": business.severity if business else "medium",
            "details": details,
            "suggested_action": (business and business.suggested_action)
            or default_suggested_action(business and business.category, self.env),
            "backend_id": backend.id if backend else False,
            "company_id": (
                company or (backend and backend.company_id) or self.env.company
            ).id,
            "job_id": job.id if job else False,
            "event_id": event.id if event else context.get("qtc_event_id", False),
            "correlation_id": correlation_id or context.get("qtc_correlation_id"),
            "state": "open",
        }
        if records:
            values.update(res_model=records[0][0], res_id=records[0][1])
        external = business.external_ref if business else None
        if external:
            values.update(external_type=external[0], external_id=external[1])
        existing = exceptions_sudo.browse()
        if job:
            existing = exceptions_sudo.search([("job_id", "=", job.id)], limit=1)
        if not existing and backend and not values["event_id"]:
            # The same problem raised again by scheduled work (a sync whose
            # credentials are missing, say) reopens one exception instead of
            # adding one per run.
            existing = exceptions_sudo.search(
                [
                    ("backend_id", "=", backend.id),
                    ("state", "=", "open"),
                    ("event_id", "=", False),
                    ("category", "=", values["category"]),
                    ("name", "=", values["name"]),
                ],
                limit=1,
            )
        if existing:
            values["occurrences"] = existing.occurrences + 1
            existing.write(values)
            existing.message_post(body=_("Failed again: %s", values["name"]))
            return existing.with_env(self.env)
        exception = exceptions_sudo.create(values)
        responsible = backend.responsible_user_id if backend else None
        if responsible:
            exception.user_id = responsible
            exception.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=values["name"][:100],
                note=details,
                user_id=responsible.id,
            )
        return exception.with_env(self.env)

    # ---------------------------------------------------------------- actions

    def _qtc_check_user_action(self, operation="write"):
        """:raises AccessError: not a QTC User, or exceptions the user may not
        ``operation`` (company rules)"""
        check_action(self, GROUP_USER, operation, _("work the exception queue"))

    def _qtc_close(self, state, resolution):
        """Close the exceptions (the calling action checked the user may)."""
        # Boundary (system): the outcome of an action already checked, written
        # on fields people cannot write by hand.
        exceptions_sudo = self.sudo()
        exceptions_sudo.write({"state": state, "resolution": resolution})
        exceptions_sudo.activity_ids.action_feedback(feedback=resolution)

    def action_retry(self):
        """QTC User: run the work again after the cause was fixed (map
        completed, data corrected, remote system back): the job is requeued as
        the user it ran as, or the event replayed (as the backend's technical
        user; as the caller when its payload was edited).

        :raises AccessError: not a QTC User, or another company's exception
        """
        self._qtc_check_user_action()
        for exception in self:
            done = exception._qtc_rerun()
            exception._qtc_close(
                "resolved",
                _("Retried by %s.", self.env.user.name)
                if done
                else _(
                    "Its job has run successfully since; nothing to retry (%s).",
                    self.env.user.name,
                ),
            )
        return True

    def _qtc_rerun(self):
        """Run the failed work again: a replay of its event (for one event of a
        batch, whose job applied the others, or an event whose payload a person
        edited), or a requeue of its job. A done job never runs again.

        :returns: whether work was queued (``False``: the job is done already)
        :raises UserError: nothing to retry
        """
        self.ensure_one()
        event, job = self.event_id, self.job_id
        note = _("Retry of exception %s", self.id)
        if event and (
            event.payload_origin == "edited" or not job or job.event_id != event
        ):
            event._qtc_replay()
            return True
        if job:
            if job.state == "done":
                return False
            job._qtc_requeue(note=note)
            return True
        raise UserError(_("Exception %s has no job or event to retry.", self.name))

    def action_link(self):
        """QTC User: bind the external record to the chosen Odoo record, then
        retry.

        :raises AccessError: not a QTC User, or another company's exception
        """
        self._qtc_check_user_action()
        for exception in self:
            if not exception.link_ref:
                raise UserError(_("Choose the record to link to first."))
            if not (exception.external_type and exception.external_id):
                raise UserError(
                    _("This exception does not name an external record to link.")
                )
            self.env["qtc.binding"]._qtc_bind(
                exception.backend_id,
                exception.external_type,
                exception.external_id,
                exception.link_ref,
            )
            exception.message_post(
                body=_(
                    "Linked %(ext)s %(id)s to %(record)s.",
                    ext=exception.external_type,
                    id=exception.external_id,
                    record=exception.link_ref.display_name,
                )
            )
            if exception.job_id or exception.event_id:
                exception._qtc_rerun()
            exception._qtc_close(
                "resolved", _("Linked to %s.", exception.link_ref.display_name)
            )
        return True

    def action_open_ignore_wizard(self):
        """QTC User: the wizard to ignore these exceptions with a reason."""
        self._qtc_check_user_action()
        return {
            "type": "ir.actions.act_window",
            "res_model": "qtc.exception.ignore",
            "view_mode": "form",
            "target": "new",
            "context": {"default_exception_ids": self.ids},
        }

    def action_open_replay_wizard(self):
        """QTC User: the wizard to dry-run a replay of the exception's event
        (with the user's own rights) and, for a QTC Manager, to edit its
        payload and replay it."""
        self.ensure_one()
        self._qtc_check_user_action()
        if not self.event_id:
            raise UserError(_("Only an exception raised by an event can be replayed."))
        return {
            "type": "ir.actions.act_window",
            "res_model": "qtc.exception.replay",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_exception_id": self.id,
                "default_payload": self.event_id.payload,
            },
        }

    def action_view_trace(self):
        """QTC User: the timeline of the exception's flow."""
        self.ensure_one()
        self._qtc_check_user_action("read")
        return self.env["qtc.trace"]._qtc_action_for_correlation(self.correlation_id)
