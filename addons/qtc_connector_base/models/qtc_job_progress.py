from odoo import fields, models


class QtcJobProgress(models.Model):
    """Heartbeat and progress of a running job, kept apart from the job row.

    The job's own transaction (repeatable read) updates its job row when it
    ends; a heartbeat or progress report committed on that row meanwhile would
    make that update fail with a serialization error. Written on this table by
    short side transactions, they never touch the job row.
    """

    _name = "qtc.job.progress"
    _description = "QTC Job Heartbeat and Progress"
    _rec_name = "job_id"

    job_id = fields.Many2one("qtc.job", required=True, ondelete="cascade", index=True)
    heartbeat_at = fields.Datetime(readonly=True)
    done = fields.Integer(readonly=True)
    total = fields.Integer(readonly=True)
    message = fields.Char(readonly=True)

    _sql_constraints = [("job_uniq", "unique(job_id)", "One progress row per job.")]


UPSERT_SQL = """
    INSERT INTO qtc_job_progress (job_id, heartbeat_at, done, total, message,
                                  create_date, write_date)
    VALUES (%(job)s, %(now)s, %(done)s, %(total)s, %(message)s, %(now)s, %(now)s)
    ON CONFLICT (job_id) DO UPDATE
       SET heartbeat_at = excluded.heartbeat_at,
           done = COALESCE(excluded.done, qtc_job_progress.done),
           total = COALESCE(excluded.total, qtc_job_progress.total),
           message = COALESCE(excluded.message, qtc_job_progress.message),
           write_date = excluded.write_date
"""

# At claim: a fresh heartbeat and nothing left from an earlier attempt.
RESET_SQL = """
    INSERT INTO qtc_job_progress (job_id, heartbeat_at, done, total, message,
                                  create_date, write_date)
    VALUES (%(job)s, %(now)s, 0, 0, NULL, %(now)s, %(now)s)
    ON CONFLICT (job_id) DO UPDATE
       SET heartbeat_at = excluded.heartbeat_at, done = 0, total = 0,
           message = NULL, write_date = excluded.write_date
"""
