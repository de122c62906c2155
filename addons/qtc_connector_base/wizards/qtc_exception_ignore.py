from odoo import _, fields, models


class QtcExceptionIgnore(models.TransientModel):
    _name = "qtc.exception.ignore"
    _description = "Ignore QTC exceptions with a reason"

    exception_ids = fields.Many2many("qtc.exception", required=True)
    reason = fields.Text(required=True)

    def action_ignore(self):
        """QTC User: close the exceptions as ignored; their jobs are cancelled
        so nothing retries behind the user's back (recorded in the jobs' audit
        lines under the user's name).

        :raises AccessError: not a QTC User, or another company's exceptions
        """
        self.ensure_one()
        exceptions = self.exception_ids
        exceptions._qtc_check_user_action()
        for exception in exceptions:
            if exception.job_id:
                exception.job_id._qtc_cancel(
                    note=_(
                        "Exception %(id)s ignored: %(reason)s",
                        id=exception.id,
                        reason=self.reason,
                    )
                )
            exception.message_post(body=_("Ignored: %s", self.reason))
            exception._qtc_close("ignored", self.reason)
        return {"type": "ir.actions.act_window_close"}
