from odoo import fields, models


class QtcJobChannel(models.Model):
    """A named lane of the job queue with a capacity: at most ``capacity`` of its
    jobs run at once across all workers (0 = no limit). Use it to keep a slow or
    rate-limited remote system from occupying every worker."""

    _name = "qtc.job.channel"
    _description = "QTC Job Channel"
    _order = "name"

    name = fields.Char(required=True)
    capacity = fields.Integer(default=0, help="Jobs running at once; 0 means no limit.")
    job_ids = fields.One2many("qtc.job", "channel_id")

    _sql_constraints = [
        ("name_uniq", "unique(name)", "Channel names are unique."),
        ("capacity_positive", "CHECK(capacity >= 0)", "Capacity cannot be negative."),
    ]
