from odoo import _, api, fields, models

from ..access import GROUP_USER, check_action
from ..lib import assurance


class QtcAssuranceMixin(models.AbstractModel):
    """What a revenue assurance check and a flow service level share: an
    owner, a state against a threshold, and ONE open exception per period
    while over it.

    A breach opens an exception (category ``assurance``) pointing at the
    check, with one activity for the owner; the same breach measured again in
    the same period updates that exception instead of opening another. Back
    within the threshold, the exception is resolved and its activity marked
    done, with no one having to touch it. A breach that lasts into a new
    period closes the old exception ("carried over") and opens the new
    period's, so the owner is reminded once per period.
    """

    _name = "qtc.assurance.mixin"
    _description = "QTC revenue assurance: owner, state and breaches"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    owner_user_id = fields.Many2one(
        "res.users",
        string="Owner",
        help="Gets the activity when the threshold is breached.",
    )
    owner_group_id = fields.Many2one(
        "res.groups",
        string="Owner group",
        help="When no owner is set, the activity goes to the first member of "
        "this group; every member follows the exception.",
    )
    period = fields.Selection(
        [
            (assurance.PERIOD_DAY, "Day"),
            (assurance.PERIOD_WEEK, "Week"),
            (assurance.PERIOD_MONTH, "Month"),
        ],
        string="One exception per",
        default=assurance.PERIOD_WEEK,
        required=True,
    )
    state = fields.Selection(
        [
            ("new", "Not measured yet"),
            ("ok", "Within threshold"),
            ("breach", "Over threshold"),
        ],
        default="new",
        required=True,
        readonly=True,
        index=True,
    )
    last_computed_at = fields.Datetime(string="Measured at", readonly=True)
    exception_id = fields.Many2one(
        "qtc.exception",
        string="Breach exception",
        readonly=True,
        ondelete="set null",
        help="The exception of the current or last breach period.",
    )
    breach_period = fields.Char(readonly=True)

    # ------------------------------------------------------------- helpers

    def _qtc_check_user(self, operation="read"):
        """Refuse callers outside QTC User, then apply record access.

        Public methods call it first: they are reachable through JSON-RPC by
        any logged-in user, whatever the views show.
        """
        check_action(self, GROUP_USER, operation, _("work revenue assurance"))

    def _qtc_owner(self):
        """The user who gets the breach activity, or an empty recordset."""
        self.ensure_one()
        if self.owner_user_id.active:
            return self.owner_user_id
        members = self.owner_group_id.users.filtered("active").sorted("id")
        return members[:1]

    def _qtc_exception_values(self, title, details):
        """Values of a new breach exception (``backend_id`` where the model
        has one)."""
        self.ensure_one()
        return {
            "name": title[:250],
            "category": "assurance",
            "severity": "high",
            "state": "open",
            "details": details,
            "company_id": self.company_id.id,
            "res_model": self._name,
            "res_id": self.id,
            "suggested_action": self._qtc_suggested_action(),
        }

    def _qtc_suggested_action(self):
        return _(
            "Open the records from the revenue assurance dashboard and fix them; "
            "this exception resolves itself once the figure is back within its "
            "threshold."
        )

    def _qtc_sync_breach(self, breached, title, details, now):
        """Open, update, reopen or resolve this record's breach exception.

        One exception per period: over the threshold again later in the same
        period, the period's exception is updated (reopened, with a new
        activity, if it had been resolved); ignored by a person, it stays
        ignored until the period ends.

        :param breached: whether the figure is over the threshold now
        :param title: the exception's name when one is opened or updated
        :param details: the figures, one per line
        :param now: the measurement time (naive UTC)
        :returns: the period's exception, or an empty recordset
        """
        self.ensure_one()
        exception = self.exception_id
        key = assurance.period_key(now, self.period)
        if not breached:
            if exception.state == "open":
                exception._qtc_close(
                    "resolved",
                    _(
                        "Back within the threshold (measured %(when)s UTC).",
                        when=fields.Datetime.to_string(now),
                    ),
                )
            return self.env["qtc.exception"]
        if exception and self.breach_period == key:
            if exception.state == "ignored":
                return exception  # a person decided, for this period
            values = {
                "name": title[:250],
                "details": details,
                "occurrences": exception.occurrences + 1,
            }
            if exception.state == "open":
                exception.write(values)
                return exception
            exception.write({**values, "state": "open", "resolution": False})
            exception.message_post(body=_("Over the threshold again."))
            self._qtc_schedule_activity(exception, title, details)
            return exception
        if exception.state == "open":
            exception._qtc_close(
                "resolved",
                _("Still over the threshold: carried over to period %s.", key),
            )
        exception = self.env["qtc.exception"].create(
            self._qtc_exception_values(title, details)
        )
        members = self.owner_group_id.users.filtered("active")
        if members:
            exception.message_subscribe(partner_ids=members.partner_id.ids)
        self._qtc_schedule_activity(exception, title, details)
        self.write({"exception_id": exception.id, "breach_period": key})
        return exception

    def _qtc_schedule_activity(self, exception, title, details):
        owner = self._qtc_owner()
        if not owner:
            return
        exception.user_id = owner
        exception.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=title[:100],
            note=details,
            user_id=owner.id,
        )

    @api.model
    def _qtc_action_records(self, res_model, res_ids, name):
        """A window action listing exactly ``res_ids`` of ``res_model``."""
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": res_model,
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": [("id", "in", list(res_ids or []))],
            "context": {"create": False},
            "target": "current",
        }
