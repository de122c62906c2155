import time

from odoo import api, models


class QtcJob(models.Model):
    _inherit = "qtc.job"

    @api.model
    def _qtc_bench_noop(self, enqueued_at=None):
        """A job that does nothing; returns seconds since ``enqueued_at`` (the
        enqueue-to-start latency when given)."""
        if enqueued_at is None:
            return "noop"
        return f"{time.time() - enqueued_at:.6f}"
