import json

from odoo import _, fields, models
from odoo.exceptions import AccessError, UserError

from ..access import GROUP_MANAGER
from ..exceptions import person_message


class QtcExceptionReplay(models.TransientModel):
    """See what a replay of an exception's event would do, then replay it.

    Any QTC User may dry-run; editing the payload is a QTC Manager's act. Both
    the dry run and an edited replay run with the rights of the person at the
    keyboard, never elevated: what they cannot do fails, what they cannot read
    is not shown.
    """

    _name = "qtc.exception.replay"
    _description = "Dry-run, edit and replay a QTC event"

    exception_id = fields.Many2one("qtc.exception", required=True)
    payload = fields.Text(required=True)
    dry_run_result = fields.Text(readonly=True)

    def _check_payload(self):
        event = self.exception_id.event_id
        if (event.payload or "").lstrip().startswith(("{", "[")):
            try:
                json.loads(self.payload)
            except json.JSONDecodeError as exc:
                raise UserError(_("The payload is not valid JSON: %s", exc)) from None

    def _check_edit(self):
        """:raises AccessError: the payload differs from the event's and the
        user is not a QTC Manager"""
        event = self.exception_id.event_id
        if self.payload != event.payload and not self.env.user.has_group(GROUP_MANAGER):
            raise AccessError(
                _(
                    "Editing an event's payload is a QTC Manager action: replay it "
                    "as received, or ask a manager."
                )
            )

    def action_dry_run(self):
        """QTC User: apply the (edited) payload with the user's own rights
        inside a savepoint, list the records it would create or change that the
        user may read (from the trace lines the handler writes), then roll
        everything back.

        :raises AccessError: not a QTC User, or another company's exception
        """
        self.ensure_one()
        exception = self.exception_id
        exception._qtc_check_user_action()
        self._check_payload()
        event = exception.event_id
        correlation = f"dry-run-{event.correlation_id}"
        lines = []
        cr = self.env.cr
        try:
            with cr.savepoint(flush=True):
                if self.payload != event.payload:
                    # Boundary (dry run): the candidate payload is written in
                    # this savepoint, which is always rolled back; the run
                    # below has the user's rights only.
                    event.sudo().write(
                        {"payload": self.payload, "payload_origin": "edited"}
                    )
                lines.extend(self._dry_run_apply(event, correlation))
                raise _RollBack()
        except _RollBack:
            pass
        self.env.invalidate_all()
        self.dry_run_result = "\n".join(lines)
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def _dry_run_apply(self, event, correlation):
        """Apply ``event`` as the current user and describe what it did, as far
        as the user may read it (called inside the dry run's savepoint)."""
        outcome, failure = None, None
        try:
            with self.env.cr.savepoint():
                outcome = event.with_context(
                    qtc_correlation_id=correlation, qtc_event_id=event.id
                )._qtc_process(replay=True)
                self.env.flush_all()
        except AccessError as exc:
            failure = _(
                "It would fail: your access rights do not allow it (%s)",
                str(exc).splitlines()[0],
            )
        except Exception as exc:
            failure = _("It would fail: %s", person_message(exc))
        traces = self.env["qtc.trace"].search([("correlation_id", "=", correlation)])
        shown, hidden = [], 0
        for trace in traces:
            record = (
                self.env[trace.res_model].browse(trace.res_id).exists()
                if trace.res_model in self.env
                else None
            )
            if record and record.has_access("read"):
                shown.append(
                    f"{trace.operation}: {trace.res_model} "
                    f"{trace.res_name or trace.res_id}"
                    + (f" ({trace.note})" if trace.note else "")
                )
            else:
                hidden += 1
        if failure:
            lines = [failure]
        elif hidden:
            lines = [_("Outcome: not shown, it names records you may not read.")]
        else:
            lines = [_("Outcome: %s", outcome or _("done"))]
        lines.extend(shown)
        if hidden:
            lines.append(
                _("%s change(s) to records you may not read are not listed.", hidden)
            )
        elif not shown and not failure:
            lines.append(_("No record would be created or changed."))
        return lines

    def action_replay(self):
        """Replay the exception's event and resolve the exception. A changed
        payload is first saved as a QTC Manager's edit (the original kept on
        the event) and the replay then runs with the manager's rights; an
        unchanged one is retried as the exception's Retry does.

        :raises AccessError: not a QTC User; a changed payload and not a QTC
            Manager; another company's exception
        """
        self.ensure_one()
        exception = self.exception_id
        exception._qtc_check_user_action()
        self._check_payload()
        self._check_edit()
        event = exception.event_id
        edited = event._qtc_edit_payload(self.payload)
        exception._qtc_rerun()
        exception._qtc_close(
            "resolved",
            _("Payload edited and replayed by %s.", self.env.user.name)
            if edited
            else _("Replayed by %s.", self.env.user.name),
        )
        return {"type": "ir.actions.act_window_close"}


class _RollBack(Exception):
    """Undoes the dry run's savepoint."""
