from odoo import api, fields, models

AUDIT_ACTIONS = [
    ("requeue", "Requeued"),
    ("cancel", "Cancelled"),
    ("cancel_requested", "Cancel requested while running"),
]


class QtcJobAudit(models.Model):
    """Who requeued or cancelled a job, when, and why.

    Written by the queue itself (``qtc.job._qtc_audit``) after the action's own
    checks; nobody creates, changes or deletes a line by hand. Deleted with its
    job when done jobs are pruned.
    """

    _name = "qtc.job.audit"
    _description = "QTC Job Audit Line"
    _order = "id desc"
    _rec_name = "action"

    job_id = fields.Many2one(
        "qtc.job", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(
        related="job_id.company_id", store=True, readonly=True, index=True
    )
    action = fields.Selection(AUDIT_ACTIONS, required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="By", required=True, readonly=True)
    previous_state = fields.Char(readonly=True)
    note = fields.Char(readonly=True)

    @api.model
    def _qtc_write_lines(self, jobs, action, previous_states, note=None):
        """One line per job, by the current user.

        :param previous_states: ``{job id: state before the action}``
        """
        user_id = self.env.uid
        # Boundary (audit trail): the lines are written by the queue for the
        # person who acted; no group may create them itself.
        audit_sudo = self.sudo()
        return audit_sudo.create(
            [
                {
                    "job_id": job.id,
                    "action": action,
                    "user_id": user_id,
                    "previous_state": previous_states.get(job.id),
                    "note": (note or "")[:250] or False,
                }
                for job in jobs
            ]
        )
