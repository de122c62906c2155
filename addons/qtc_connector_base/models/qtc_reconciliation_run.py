import logging
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..access import GROUP_USER, check_action
from ..lib import reconcile
from ..lib.errors import BusinessError
from ..lib.job_function import job_function

_logger = logging.getLogger(__name__)

DIFFERENCE_LABELS = {
    reconcile.MISSING_IN_ODOO: "Missing in Odoo",
    reconcile.MISSING_EXTERNALLY: "Missing in the external system",
    reconcile.CURRENCY: "Currency differs",
    reconcile.AMOUNT: "Amount differs",
    reconcile.QUANTITY: "Quantity differs",
}


class QtcReconciliationRun(models.Model):
    """One reconciliation of an external system with Odoo over a date window.

    Both sides are read (the external one through the backend's API, or
    pushed by it), summed, and matched record by record (``lib/reconcile``).
    Every difference is kept as a line and opened as a ``reconciliation``
    exception listing both sides; the same difference found again by a later
    run updates its open exception, and an exception whose difference is gone
    from a later run over the same dates is resolved automatically.

    Runs are queued nightly for each active backend (``_qtc_kinds_for``) and
    on demand (the wizard, QTC User). Connectors add a ``kind`` with
    ``selection_add`` and override ``_qtc_reconcile_sides``.
    """

    _name = "qtc.reconciliation.run"
    _description = "QTC Reconciliation Run"
    _order = "id desc"

    name = fields.Char(compute="_compute_name", store=True)
    kind = fields.Selection(
        [("none", "Nothing (placeholder)")],
        string="Reconciliation",
        required=True,
        readonly=True,
    )
    backend_id = fields.Many2one(
        "qtc.backend", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(
        related="backend_id.company_id", store=True, index=True
    )
    date_from = fields.Date(string="From", required=True, readonly=True)
    date_to = fields.Date(string="To", required=True, readonly=True)
    state = fields.Selection(
        [
            ("pending", "Queued"),
            ("done", "Done"),
            ("failed", "Failed"),
        ],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    requested_by_id = fields.Many2one("res.users", string="Requested by", readonly=True)
    job_id = fields.Many2one("qtc.job", readonly=True, ondelete="set null")
    event_id = fields.Many2one(
        "qtc.event",
        string="Pushed totals",
        readonly=True,
        ondelete="set null",
        help="The totals the external system pushed, when it pushed them.",
    )
    done_at = fields.Datetime(string="Finished", readonly=True)
    external_name = fields.Char(string="External system", readonly=True)
    external_count = fields.Integer(readonly=True)
    odoo_count = fields.Integer(readonly=True)
    matched_count = fields.Integer(string="Matched", readonly=True)
    difference_count = fields.Integer(string="Differences", readonly=True)
    external_totals = fields.Char(string="External side", readonly=True)
    odoo_totals = fields.Char(string="Odoo side", readonly=True)
    summary = fields.Text(readonly=True)
    error_message = fields.Text(readonly=True)
    line_ids = fields.One2many(
        "qtc.reconciliation.line", "run_id", string="Difference details", readonly=True
    )
    exception_count = fields.Integer(compute="_compute_exception_count")

    @api.depends("kind", "date_from", "date_to", "backend_id")
    def _compute_name(self):
        labels = dict(self._fields["kind"].selection)
        for run in self:
            run.name = _(
                "%(kind)s, %(start)s to %(end)s",
                kind=labels.get(run.kind, run.kind),
                start=run.date_from,
                end=run.date_to,
            )

    def _compute_exception_count(self):
        for run in self:
            run.exception_count = len(run.line_ids.exception_id)

    # ----------------------------------------------------------- actions

    def action_run_again(self):
        """Queue a new run over the same window (QTC User)."""
        self._qtc_check_user()
        runs = self.browse()
        for run in self:
            runs |= self._qtc_request(
                run.backend_id, run.kind, run.date_from, run.date_to
            )
        return runs._qtc_action_open()

    def action_view_exceptions(self):
        """The exceptions this run opened or updated (QTC User)."""
        self.ensure_one()
        self._qtc_check_user()
        return {
            "type": "ir.actions.act_window",
            "name": _("Differences of %s", self.name),
            "res_model": "qtc.exception",
            "view_mode": "list,form",
            "domain": [("id", "in", self.line_ids.exception_id.ids)],
        }

    def _qtc_check_user(self):
        check_action(self, GROUP_USER, "read", _("look into reconciliations"))

    def _qtc_action_open(self):
        action = {
            "type": "ir.actions.act_window",
            "name": _("Reconciliations"),
            "res_model": self._name,
            "view_mode": "list,form",
            "domain": [("id", "in", self.ids)],
        }
        if len(self) == 1:
            action.update(view_mode="form", res_id=self.id)
        return action

    # -------------------------------------------------------- scheduling

    @api.model
    def _qtc_request(self, backend, kind, date_from, date_to, event=None):
        """Create a run and queue its job.

        Named boundary: the run and its job are written as superuser once the
        caller's rights were checked (the wizard and ``action_run_again``
        check QTC User and their access to the backend; the cron and a pushed
        event are the system). The job runs as the requesting user.

        :param event: the ``qtc.event`` an external system pushed its side
            in (its connector validated it; such kinds are not offered for
            scheduling or by hand)
        :raises UserError: the backend does not offer this reconciliation
        """
        offered = dict(self._qtc_kinds_for(backend))
        if kind not in offered and not event:
            raise UserError(
                _(
                    "Backend %(backend)s offers no %(kind)s reconciliation.",
                    backend=backend.display_name,
                    kind=kind,
                )
            )
        if date_to < date_from:
            raise UserError(_("The window ends before it starts."))
        run_sudo = self.sudo().create(
            {
                "kind": kind,
                "backend_id": backend.id,
                "date_from": date_from,
                "date_to": date_to,
                "requested_by_id": self.env.uid,
                "event_id": event.id if event else False,
            }
        )
        job = (
            self.env["qtc.job"]
            .sudo()
            ._qtc_enqueue(
                run_sudo.with_user(self.env.user),
                "_qtc_reconcile_execute",
                name=run_sudo.name,
                backend=backend,
                identity_key=(
                    f"qtc:reconcile:{kind}:{backend.id}:{date_from}:{date_to}"
                ),
            )
        )
        if run_sudo.id not in (job.record_ids or []):
            # The same reconciliation is already queued: that run answers.
            run_sudo.unlink()
            run_sudo = self.sudo().browse(job.record_ids).exists()
        else:
            run_sudo.job_id = job
        return run_sudo.with_env(self.env)

    @api.model
    def _qtc_cron_nightly(self):
        """Cron: queue the nightly runs of every active backend, each over
        the days its kind asks for, ending yesterday."""
        yesterday = fields.Date.context_today(self) - timedelta(days=1)
        backends = self.env["qtc.backend"].search([("state", "=", "active")])
        queued = 0
        for backend in backends:
            for kind, days in self._qtc_kinds_for(backend):
                if days <= 0:
                    continue  # scheduled by the connector's own cron
                self._qtc_request(
                    backend, kind, yesterday - timedelta(days=days - 1), yesterday
                )
                queued += 1
        return queued

    # ------------------------------------------------------------ running

    @job_function
    def _qtc_reconcile_execute(self):
        """Read both sides, compare them, record the differences and sync
        the exceptions. A transient error (remote down) retries the job; a
        business error (configuration) fails the run with its reason and an
        exception.

        :returns: the run's summary
        """
        self.ensure_one()
        # Named boundary: a reconciliation is the backend's work. It reads the
        # external system with the backend's credentials and both sides'
        # records, and writes its own outcome; who asked for it (QTC User, the
        # nightly cron, a pushed event) only decides when it runs.
        run_sudo = self.sudo()
        if run_sudo.state != "pending":
            return f"nothing to do: run {self.id} is {run_sudo.state}"
        try:
            external, odoo, options = run_sudo._qtc_reconcile_sides()
        except BusinessError as error:
            run_sudo._qtc_fail(error)
            return str(error)
        comparison = reconcile.compare(external, odoo)
        run_sudo._qtc_record(comparison, options)
        return run_sudo.summary

    def _qtc_fail(self, error):
        """The run cannot be done: say why on the run and in one exception."""
        self.ensure_one()
        self.write({"state": "failed", "error_message": str(error)})
        self.env["qtc.exception"]._qtc_open(
            error, backend=self.backend_id, company=self.company_id
        )

    def _qtc_record(self, comparison, options):
        """Write totals and lines, open or update one exception per
        difference, resolve those of earlier runs that no longer differ."""
        self.ensure_one()
        external_name = options.get("external_name") or self.backend_id.name
        seen = self.env["qtc.exception"]
        values = []
        for difference in comparison.differences:
            exception = self._qtc_open_difference(difference, external_name)
            seen |= exception
            values.append(self._qtc_line_values(difference, exception, external_name))
        self.env["qtc.reconciliation.line"].create(values)
        self._qtc_resolve_fixed(seen)
        summary = options.get("summary") or _(
            "%(external)s: %(theirs)s. Odoo: %(ours)s. %(matched)s matched, "
            "%(differences)s difference(s).",
            external=external_name,
            theirs=comparison.external.text(),
            ours=comparison.odoo.text(),
            matched=comparison.matched,
            differences=len(comparison.differences),
        )
        self.write(
            {
                "state": "done",
                "done_at": fields.Datetime.now(),
                "external_name": external_name,
                "external_count": comparison.external.count,
                "odoo_count": comparison.odoo.count,
                "matched_count": comparison.matched,
                "difference_count": len(comparison.differences),
                "external_totals": comparison.external.text(),
                "odoo_totals": comparison.odoo.text(),
                "summary": summary,
                "error_message": False,
            }
        )

    def _qtc_line_values(self, difference, exception, external_name):
        theirs, ours = difference.external, difference.odoo
        record = ours.record if ours and ours.record else (None, None)
        return {
            "run_id": self.id,
            "key": difference.key[:255],
            "difference": difference.kind,
            "day": difference.day or False,
            "external_label": reconcile.describe(theirs, external_name),
            "odoo_label": reconcile.describe(ours, "Odoo"),
            "external_amount": float(theirs.amount)
            if theirs and theirs.amount is not None
            else 0.0,
            "odoo_amount": float(ours.amount)
            if ours and ours.amount is not None
            else 0.0,
            "res_model": record[0],
            "res_id": record[1] or False,
            "exception_id": exception.id,
        }

    def _qtc_open_difference(self, difference, external_name):
        """Open (or update, if still open from an earlier run) the exception
        of one difference. Its name is stable across runs: the same
        difference found again counts an occurrence of the same exception."""
        theirs, ours = difference.external, difference.odoo
        label = DIFFERENCE_LABELS[difference.kind]
        title = self._qtc_difference_title(difference, external_name)
        problems = [
            reconcile.describe(theirs, external_name),
            reconcile.describe(ours, "Odoo"),
            _(
                "Found by the reconciliation of %(start)s to %(end)s (%(label)s).",
                start=self.date_from,
                end=self.date_to,
                label=label,
            ),
        ]
        records = [ours.record] if ours and ours.record else []
        external_ref = (theirs and theirs.external_ref) or (ours and ours.external_ref)
        return self.env["qtc.exception"]._qtc_open(
            BusinessError(
                title,
                category="reconciliation",
                problems=problems,
                records=records,
                external_ref=external_ref or None,
                suggested_action=self._qtc_difference_action(difference),
            ),
            backend=self.backend_id,
            company=self.company_id,
        )

    def _qtc_resolve_fixed(self, still_open):
        """Resolve the open exceptions of earlier runs (same backend and
        kind) whose difference falls in this window and was not found again."""
        earlier = self.env["qtc.reconciliation.line"].search(
            [
                ("run_id.backend_id", "=", self.backend_id.id),
                ("run_id.kind", "=", self.kind),
                ("run_id", "!=", self.id),
                ("exception_id.state", "=", "open"),
                "|",
                ("day", "=", False),
                "&",
                ("day", ">=", self.date_from),
                ("day", "<=", self.date_to),
            ]
        )
        fixed = earlier.exception_id - still_open
        if fixed:
            fixed._qtc_close(
                "resolved",
                _(
                    "No longer differs in the reconciliation of %(start)s to %(end)s.",
                    start=self.date_from,
                    end=self.date_to,
                ),
            )

    # --------------------------------------------------------------- hooks

    @api.model
    def _qtc_kinds_for(self, backend):
        """The reconciliations ``backend`` offers: ``[(kind, nightly_days)]``.

        ``nightly_days`` is the window the nightly cron reconciles (ending
        yesterday); 0 when the connector schedules the kind itself. Connectors
        extend it: ``return super()._qtc_kinds_for(backend) + [...]`` for
        their provider.
        """
        return []

    def _qtc_difference_title(self, difference, external_name):
        """The exception's name for one difference (stable across runs)."""
        label = DIFFERENCE_LABELS[difference.kind]
        return _(
            "%(external)s reconciliation: %(key)s: %(label)s",
            external=external_name,
            key=difference.key,
            label=label.lower(),
        )

    def _qtc_difference_action(self, difference):
        if difference.kind == reconcile.MISSING_IN_ODOO:
            return _(
                "Record it in Odoo (or link it to the Odoo record it matches); "
                "the next reconciliation resolves this exception."
            )
        if difference.kind == reconcile.MISSING_EXTERNALLY:
            return _(
                "Check why the external system does not have it: send it "
                "there, or correct the Odoo record."
            )
        return _("Correct the side that is wrong; the next run resolves this.")

    def _qtc_reconcile_sides(self):
        """Read both sides of this run's window.

        Override with ``if self.kind != "x": return super()...``.

        :returns: ``(external entries, odoo entries, options)`` with
            ``lib.reconcile.Entry`` lists and options ``external_name`` (the
            system's name for people) and optionally ``summary``
        :raises RetryableError: the external system is unavailable
        :raises BusinessError: the run cannot be done (configuration)
        """
        self.ensure_one()
        raise BusinessError(
            _("No reconciliation is implemented for %s.", self.kind),
            category="configuration",
        )
