from odoo import _, api, fields, models


class QtcTrace(models.Model):
    """One line of the audit trail: an event's job created, changed or linked
    an Odoo record. Joined by correlation id, it answers both "what did this
    event do?" and "which events led to this record?"."""

    _name = "qtc.trace"
    _description = "QTC Trace"
    _order = "id"

    correlation_id = fields.Char(index=True, readonly=True)
    event_id = fields.Many2one(
        "qtc.event", index=True, readonly=True, ondelete="set null"
    )
    job_id = fields.Many2one("qtc.job", readonly=True, ondelete="set null")
    backend_id = fields.Many2one("qtc.backend", readonly=True, ondelete="cascade")
    res_model = fields.Char(readonly=True, index=True)
    res_id = fields.Many2oneReference(
        model_field="res_model", readonly=True, index=True
    )
    res_name = fields.Char(readonly=True)
    operation = fields.Selection(
        [
            ("created", "Created"),
            ("updated", "Updated"),
            ("linked", "Linked"),
            ("skipped", "Skipped (already applied)"),
            ("reversed", "Reversed"),
        ],
        readonly=True,
    )
    note = fields.Char(readonly=True)

    @api.model
    def _qtc_record(self, records, operation, note=None, backend=None):
        """Record that the current event/job did ``operation`` on ``records``.

        Uses the correlation, event and job ids the job runner puts in context;
        outside a job (manual work) the line has no correlation id.
        """
        context = self.env.context
        event_id = context.get("qtc_event_id") or False
        job_id = context.get("qtc_job_id") or False
        if not backend and event_id:
            backend = self.env["qtc.event"].sudo().browse(event_id).backend_id
        self.sudo().create(
            [
                {
                    "correlation_id": context.get("qtc_correlation_id"),
                    "event_id": event_id,
                    "job_id": job_id,
                    "backend_id": backend.id if backend else False,
                    "res_model": record._name,
                    "res_id": record.id,
                    "res_name": (record.display_name or "")[:250],
                    "operation": operation,
                    "note": note,
                }
                for record in records
            ]
        )

    @api.model
    def _qtc_action_for_correlation(self, correlation_id):
        return {
            "type": "ir.actions.act_window",
            "name": _("Trace"),
            "res_model": "qtc.trace",
            "view_mode": "list,form",
            "domain": [("correlation_id", "=", correlation_id or "-")],
        }

    @api.model
    def _qtc_action_for_record(self, record):
        """Every trace line of every event that touched ``record``, in order."""
        lines = self.search(
            [("res_model", "=", record._name), ("res_id", "=", record.id)]
        )
        correlations = [c for c in set(lines.mapped("correlation_id")) if c]
        return {
            "type": "ir.actions.act_window",
            "name": _("Trace of %s", record.display_name),
            "res_model": "qtc.trace",
            "view_mode": "list,form",
            "domain": [
                "|",
                ("correlation_id", "in", correlations),
                "&",
                ("res_model", "=", record._name),
                ("res_id", "=", record.id),
            ],
        }

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
