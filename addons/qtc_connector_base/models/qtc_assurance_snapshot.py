from datetime import timedelta

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..access import GROUP_USER, check_action
from ..lib import assurance


class QtcAssuranceSnapshot(models.Model):
    """A check's figures on one day: its history, graphed and pivoted.

    One row per check and day, rewritten by each measurement of the day, so
    the history grows by one row a day whatever the cron's frequency; the
    latest row of each ISO week is flagged ``week_last``, the week's figure
    in the weekly graph and pivot. The counted record ids are kept for
    ``SNAPSHOT_IDS_DAYS`` (drill-down), the figures for ever.
    """

    _name = "qtc.assurance.snapshot"
    _description = "QTC Revenue Assurance Snapshot"
    _order = "date desc, check_id"
    _rec_name = "check_id"

    check_id = fields.Many2one(
        "qtc.assurance.check",
        string="Check",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    code = fields.Selection(
        related="check_id.code", store=True, string="What it counts"
    )
    company_id = fields.Many2one(related="check_id.company_id", store=True, index=True)
    date = fields.Date(required=True, readonly=True, index=True)
    computed_at = fields.Datetime(string="Measured at", readonly=True)
    count = fields.Integer(string="Items", readonly=True, aggregator="sum")
    amount = fields.Monetary(
        readonly=True, currency_field="currency_id", aggregator="sum"
    )
    currency_id = fields.Many2one("res.currency", readonly=True)
    oldest_hours = fields.Float(
        string="Oldest item (hours)", readonly=True, aggregator="max"
    )
    threshold = fields.Float(readonly=True, aggregator="max")
    threshold_measure = fields.Selection(
        [
            (assurance.MEASURE_COUNT, "Number of items"),
            (assurance.MEASURE_AMOUNT, "Amount"),
            (assurance.MEASURE_AGE, "Age of the oldest item (hours)"),
        ],
        string="Threshold on",
        readonly=True,
    )
    state = fields.Selection(
        [("ok", "Within threshold"), ("breach", "Over threshold")], readonly=True
    )
    res_model = fields.Char(string="Records of", readonly=True)
    res_ids = fields.Json(string="Record ids", readonly=True)
    week_last = fields.Boolean(
        string="End of week",
        readonly=True,
        index=True,
        help="The week's latest snapshot of the check: its figures stand for the "
        "week (adding up a week's days would count the same leak again).",
    )

    _sql_constraints = [
        (
            "check_date_uniq",
            "unique(check_id, date)",
            "A check has one snapshot a day.",
        )
    ]

    @api.model
    def _qtc_upsert(self, check, now, values):
        """Write ``values`` as ``check``'s snapshot of ``now``'s day."""
        existing = self.search(
            [("check_id", "=", check.id), ("date", "=", now.date())], limit=1
        )
        values = {
            **values,
            "computed_at": now,
            "currency_id": check.currency_id.id,
        }
        if existing:
            existing.write(values)
        else:
            existing = self.create({**values, "check_id": check.id, "date": now.date()})
        monday = assurance.week_start(now)
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                UPDATE qtc_assurance_snapshot SET week_last = (id = %s)
                 WHERE check_id = %s AND date >= %s AND date < %s
                """,
                existing.id,
                check.id,
                monday,
                monday + timedelta(days=7),
            )
        )
        self.invalidate_model(["week_last"])
        return existing

    def action_open_records(self):
        """The records this snapshot counted, while their ids are kept."""
        check_action(self, GROUP_USER, "read", _("open a snapshot's records"))
        self.ensure_one()
        return self.check_id._qtc_action_records(
            self.res_model, self.res_ids or [], self.check_id.name
        )
