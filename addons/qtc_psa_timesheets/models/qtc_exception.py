from odoo import _, models

from .. import const


class QtcException(models.Model):
    """Retry and link for exceptions of items applied by a batch job.

    Such an exception belongs to one event of the batch, not to the job (the
    job's other items were applied), so the base's retry, which requeues the
    job, has nothing to requeue: the event itself is replayed instead.
    """

    _inherit = "qtc.exception"

    def _psa_event_only(self):
        """The exceptions of PSA events applied by a batch job (no own job)."""
        return self.filtered(
            lambda exception: (
                not exception.job_id
                and exception.event_id
                and exception.backend_id.provider in const.PSA_PROVIDERS
            )
        )

    def action_retry(self):
        """Replay the event of a batch item's exception; the base retries the
        others by requeuing their job."""
        replayed = self._psa_event_only()
        others = self - replayed
        if others:
            super(QtcException, others).action_retry()
        for exception in replayed:
            exception.event_id.action_replay()
            exception._qtc_close("resolved", _("Retried by %s.", self.env.user.name))
        return True

    def action_link(self):
        """Bind as the base does, then replay the event of a batch item's
        exception (the base requeues the job of the others)."""
        replayed = self._psa_event_only()
        result = super().action_link()
        for exception in replayed:
            exception.event_id.action_replay()
        return result
