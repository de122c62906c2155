from odoo import _, fields, models, tools

from .. import const
from ..access import GROUP_USER, check_action

KINDS = [("event", "Event"), ("job", "Job"), ("change", "Change")]


def _states():
    """Event and job states in one selection (labels of the same key agree)."""
    states = dict(const.EVENT_STATES)
    for key, label in const.JOB_STATES:
        states.setdefault(key, label)
    return list(states.items())


class QtcTraceStep(models.Model):
    """The trace read as a timeline: each event received, each job run and each
    change a job made, one row each, in the order they happened.

    A database view over ``qtc_event``, ``qtc_job`` and ``qtc_trace`` (row id:
    the source row's id times 3, plus 0, 1 or 2 for the table, so ids never
    collide and stay stable between reads); filtered
    on correlation ids, PostgreSQL pushes the filter into each branch and uses
    their correlation indexes.
    """

    _name = "qtc.trace.step"
    _description = "QTC Trace step"
    _auto = False
    # Times are to the second: within one second, rows follow the id of their
    # job (the order work was queued in, which is causal). An event ranks with
    # its first job, a change with the job that made it, so each event comes
    # before its job and each job before what it did.
    _order = "at, job_rank, kind_rank, id"
    _rec_name = "name"

    kind = fields.Selection(KINDS, readonly=True)
    kind_rank = fields.Integer(readonly=True)
    job_rank = fields.Integer(readonly=True)
    at = fields.Datetime(string="When", readonly=True)
    name = fields.Char(string="What", readonly=True)
    correlation_id = fields.Char(readonly=True)
    event_id = fields.Many2one("qtc.event", readonly=True)
    job_id = fields.Many2one("qtc.job", readonly=True)
    backend_id = fields.Many2one("qtc.backend", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    res_model = fields.Char(string="Record model", readonly=True)
    res_id = fields.Many2oneReference(
        string="Record id", model_field="res_model", readonly=True
    )
    res_model_name = fields.Char(
        string="Record type", compute="_compute_res_model_name"
    )
    operation = fields.Selection(
        lambda self: self.env["qtc.trace"]._fields["operation"].selection,
        readonly=True,
    )
    state = fields.Selection(_states(), readonly=True)
    attempts = fields.Integer(readonly=True)
    note = fields.Char(string="Result", readonly=True)
    error = fields.Text(readonly=True)

    def _compute_res_model_name(self):
        names = {}
        for model in set(self.mapped("res_model")) - {False}:
            if model in self.env:
                names[model] = self.env["ir.model"]._get(model).name
        for step in self:
            step.res_model_name = names.get(step.res_model, step.res_model or False)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            """
            CREATE VIEW qtc_trace_step AS (
                SELECT e.id * 3 + 0 AS id,
                       'event' AS kind, 0 AS kind_rank,
                       COALESCE((SELECT min(ej.id) FROM qtc_job ej
                                  WHERE ej.event_id = e.id), 0) AS job_rank,
                       e.received_at AS at,
                       concat_ws(' ', e.event_type, e.external_id) AS name,
                       e.correlation_id, e.id AS event_id, NULL::integer AS job_id,
                       e.backend_id, e.company_id,
                       NULL::varchar AS res_model, NULL::integer AS res_id,
                       NULL::varchar AS operation, e.state::varchar AS state,
                       NULL::integer AS attempts,
                       left(e.result, 250)::varchar AS note,
                       e.error_message AS error
                  FROM qtc_event e
                UNION ALL
                SELECT j.id * 3 + 1,
                       'job', 1, j.id,
                       COALESCE(j.started_at, j.create_date),
                       j.name,
                       j.correlation_id, j.event_id, j.id,
                       j.backend_id, j.company_id,
                       NULL, NULL,
                       NULL, j.state,
                       j.attempts,
                       left(j.result, 250),
                       j.error_message
                  FROM qtc_job j
                UNION ALL
                SELECT t.id * 3 + 2,
                       'change', 2, COALESCE(t.job_id, 0),
                       COALESCE(tj.started_at, tj.create_date, t.create_date),
                       t.res_name,
                       t.correlation_id, t.event_id, t.job_id,
                       t.backend_id, b.company_id,
                       t.res_model, t.res_id,
                       t.operation, NULL,
                       NULL,
                       t.note,
                       NULL
                  FROM qtc_trace t
             LEFT JOIN qtc_job tj ON tj.id = t.job_id
             LEFT JOIN qtc_backend b ON b.id = t.backend_id
            )
            """
        )

    def action_open(self):
        """Open what the row is about: the event, the job or the changed record
        (QTC Users)."""
        self.ensure_one()
        check_action(self, GROUP_USER, "read", _("open a trace step"))
        if self.kind == "change":
            if self.res_model not in self.env or not self.res_id:
                return False
            model, res_id = self.res_model, self.res_id
        elif self.kind == "job":
            model, res_id = "qtc.job", self.job_id.id
        else:
            model, res_id = "qtc.event", self.event_id.id
        return {
            "type": "ir.actions.act_window",
            "name": _("Trace"),
            "res_model": model,
            "res_id": res_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }
