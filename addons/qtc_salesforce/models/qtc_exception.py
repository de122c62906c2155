import json

from odoo import _, fields, models
from odoo.addons.qtc_connector_base.access import GROUP_USER, check_action
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
        """Add the lines a change to a confirmed order brought, from the
        opportunity as Salesforce has it now; reductions and changed lines are
        left for a person (noted on the order). Resolves the exception.

        QTC Users who may work the exceptions: the lines are Salesforce's,
        re-read from it for a notification and applied by the system as the
        event's job would.
        """
        check_action(self, GROUP_USER, "write", _("apply a Salesforce change order"))
        for exception in self:
            if not exception.salesforce_can_apply_lines:
                raise UserError(
                    _("Exception %s is not a Salesforce change order.", exception.name)
                )
            event = exception.event_id
            backend = exception.backend_id.with_context(
                qtc_correlation_id=exception.correlation_id,
                qtc_event_id=event.id,
            )
            # The event is applied by the system, as its job would be, for the
            # user who asked (recorded in the chatter and the resolution).
            backend_sudo = backend.sudo()
            record = json.loads(event.sudo().payload or "{}")
            sobject_type, _sep, channel = (event.event_type or "").partition(".")
            if sobject_type != "Opportunity":
                raise UserError(_("Only opportunity changes add order lines."))
            if channel == const.CHANNEL_NOTIFICATION:
                record = backend_sudo._salesforce_fetch_record(
                    "Opportunity", record.get("Id")
                )
                if record is None:
                    raise UserError(_("The opportunity is no longer in Salesforce."))
            result = backend_sudo._salesforce_apply_opportunity(
                record, apply_added=True
            )
            exception.message_post(body=result)
            exception._qtc_close(
                "resolved", _("Added lines applied by %s.", self.env.user.name)
            )
        return True
