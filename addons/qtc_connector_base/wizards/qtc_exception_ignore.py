from odoo import _, fields, models


class QtcExceptionIgnore(models.TransientModel):
    _name = "qtc.exception.ignore"
    _description = "Ignore QTC exceptions with a reason"

    exception_ids = fields.Many2many("qtc.exception", required=True)
    reason = fields.Text(required=True)

    def action_ignore(self):
        """Close the exceptions as ignored; their jobs are cancelled so nothing
        retries behind the user's back."""
        self.ensure_one()
        for exception in self.exception_ids:
            if exception.job_id:
                exception.job_id.action_cancel()
            exception.message_post(body=_("Ignored: %s", self.reason))
            exception._qtc_close("ignored", self.reason)
        return {"type": "ir.actions.act_window_close"}
