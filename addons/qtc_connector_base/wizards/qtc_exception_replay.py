import json

from odoo import _, fields, models
from odoo.exceptions import UserError

from ..exceptions import person_message


class QtcExceptionReplay(models.TransientModel):
    """Edit an event's payload, see what a replay would do, then replay it."""

    _name = "qtc.exception.replay"
    _description = "Edit and replay a QTC event"

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

    def action_dry_run(self):
        """Apply the edited payload inside a savepoint, list the records it would
        create or change (from the trace lines the handler writes), then roll
        everything back."""
        self.ensure_one()
        self._check_payload()
        event = self.exception_id.event_id
        lines = []
        cr = self.env.cr
        try:
            with cr.savepoint(flush=True):
                event.sudo().write({"payload": self.payload})
                context = {
                    "qtc_correlation_id": f"dry-run-{event.correlation_id}",
                    "qtc_event_id": event.id,
                }
                try:
                    outcome = event.with_context(**context).sudo()._qtc_process()
                    lines.append(_("Outcome: %s", outcome or _("done")))
                except Exception as exc:
                    lines.append(_("It would fail: %s", person_message(exc)))
                self.env.flush_all()
                traces = (
                    self.env["qtc.trace"]
                    .sudo()
                    .search([("correlation_id", "=", context["qtc_correlation_id"])])
                )
                lines.extend(
                    f"{t.operation}: {t.res_model} {t.res_name or t.res_id}"
                    + (f" ({t.note})" if t.note else "")
                    for t in traces
                )
                raise _RollBack()
        except _RollBack:
            pass
        self.env.invalidate_all()
        if len(lines) == 1:
            lines.append(_("No record would be created or changed."))
        self.dry_run_result = "\n".join(lines)
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_replay(self):
        """Save the edited payload (the original goes to the chatter) and queue
        the event again."""
        self.ensure_one()
        self._check_payload()
        exception = self.exception_id
        event = exception.event_id
        if event.payload != self.payload:
            # Finance users may not write events; the edit is theirs, recorded
            # under their name, applied as superuser at this one point.
            event.sudo().message_post(
                body=_(
                    "Payload edited by %s before replay. Original:", self.env.user.name
                ),
                author_id=self.env.user.partner_id.id,
                attachments=[("original-payload.txt", (event.payload or "").encode())],
            )
            event.sudo().write({"payload": self.payload})
        event.action_replay()
        exception._qtc_close("resolved", _("Payload edited and replayed."))
        return {"type": "ir.actions.act_window_close"}


class _RollBack(Exception):
    """Undoes the dry run's savepoint."""
