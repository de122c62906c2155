from odoo import models

from .. import const


class QtcEvent(models.Model):
    _inherit = "qtc.event"

    def _qtc_process(self):
        """A batch job holding a single PSA event still applies it as a batch.

        The base tells a batch job by its number of events; a pushed request
        with one new item is a batch of one, whose business problem must fail
        only its event (with the exception linked to it), not the job. A batch
        job carries no event of its own (``qtc_event_id`` unset), unlike the
        job of a single event or of a replay.
        """
        if (
            len(self) == 1
            and self.env.context.get("qtc_job_id")
            and not self.env.context.get("qtc_event_id")
            and self.backend_id.provider in const.PSA_PROVIDERS
        ):
            return self._qtc_process_batch()
        return super()._qtc_process()
