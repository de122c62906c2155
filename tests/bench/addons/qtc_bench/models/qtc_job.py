import time

from odoo import api, models
from odoo.addons.qtc_connector_base.lib.job_function import job_function


class QtcJob(models.Model):
    _inherit = "qtc.job"

    @api.model
    @job_function
    def _qtc_bench_noop(self, enqueued_at=None):
        """A job that does nothing; returns seconds since ``enqueued_at`` (the
        enqueue-to-start latency when given)."""
        if enqueued_at is None:
            return "noop"
        return f"{time.time() - enqueued_at:.6f}"
