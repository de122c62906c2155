import json

from odoo import _, fields, models
from odoo.exceptions import UserError

from .. import const


class QtcException(models.Model):
    _inherit = "qtc.exception"

    salesforce_can_apply_lines = fields.Boolean(
        compute="_compute_salesforce_can_apply_lines"
    )

    def _compute_salesforce_can_apply_lines(self):
        for exception in self:
            exception.salesforce_can_apply_lines = bool(
                exception.state == "open"
                and exception.category == "change_order"
                and exception.backend_id.provider == const.PROVIDER
                and exception.event_id
                and exception.details
                and "added:" in exception.details
            )

    def action_salesforce_apply_added_lines(self):
        """QTC User: add the lines a change to a confirmed order brought, from
        the opportunity as Salesforce has it now; reductions and changed lines
        are left for a person (noted on the order). Resolves the exception.

        Applied as the event's job would be: by the backend's technical user,
        or, when a person edited the stored record, by the caller with the
        caller's own rights and from the record read again from Salesforce.

        :raises AccessError: not a QTC User, or another company's exception
        """
        self._qtc_check_user_action()
        for exception in self:
            if not exception.salesforce_can_apply_lines:
                raise UserError(
                    _("Exception %s is not a Salesforce change order.", exception.name)
                )
            event = exception.event_id
            sobject_type, _sep, channel = (event.event_type or "").partition(".")
            if sobject_type != "Opportunity":
                raise UserError(_("Only opportunity changes add order lines."))
            backend = exception.backend_id
            edited = event.payload_origin == "edited"
            if not edited:
                technical = backend._qtc_technical_user()
                if not technical:
                    raise UserError(
                        _("Backend %s has no technical user.", backend.display_name)
                    )
                # Boundary (as the sender's work): the lines come from
                # Salesforce, so the technical user applies them, exactly as
                # the event's Retry would; the caller only asked.
                backend = backend.with_user(technical)
            backend = backend.with_context(
                qtc_correlation_id=exception.correlation_id,
                qtc_event_id=event.id,
            )
            record = json.loads(event.payload or "{}")
            if channel == const.CHANNEL_NOTIFICATION or edited:
                # A notification carries only the Id; a record edited by hand
                # is not Salesforce's word: read it from Salesforce.
                record = backend._salesforce_fetch_record(
                    "Opportunity", record.get("Id")
                )
                if record is None:
                    raise UserError(_("The opportunity is no longer in Salesforce."))
            result = backend._salesforce_apply_opportunity(record, apply_added=True)
            exception.message_post(body=result)
            exception._qtc_close(
                "resolved", _("Added lines applied by %s.", self.env.user.name)
            )
        return True
