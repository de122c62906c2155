import logging
from collections import namedtuple
from datetime import UTC, datetime, timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..lib import assurance
from ..lib.job_function import job_function

_logger = logging.getLogger(__name__)

# What one check measured: the records it counts (ids, ascending), their
# amount in company currency and the moment the oldest became a leak.
Measure = namedtuple("Measure", "res_model res_ids amount oldest_at")

TREND_WEEKS = 8
# Snapshots keep their record ids this long; older ones keep their figures.
SNAPSHOT_IDS_DAYS = 30


class QtcAssuranceCheck(models.Model):
    """One revenue leak, measured from Odoo's own records.

    A check counts the records of one kind of leak (approved time never
    invoiced, projects without a billing plan, invoices held by the tax
    engine...), their amount in company currency where money is involved and
    the age of the oldest. A cron measures every check (and anyone in QTC User
    may measure again on demand) into a daily snapshot, so each check has a
    history; above its threshold it opens one exception per period for its
    owner (see ``qtc.assurance.mixin``).

    Connectors add their checks as payment providers add themselves: a
    ``code`` value with ``selection_add`` and an override of
    ``_qtc_check_query`` opening with ``if self.code != "x": return super()``.
    The query is set-based: one SQL statement for all the records of the
    check, never a loop over them.
    """

    _name = "qtc.assurance.check"
    _description = "QTC Revenue Assurance Check"
    _inherit = ["qtc.assurance.mixin"]
    _order = "sequence, id"

    code = fields.Selection(
        [("none", "Nothing (placeholder)")],
        string="What it counts",
        default="none",
        required=True,
    )
    description = fields.Text(
        compute="_compute_description",
        store=True,
        readonly=False,
        help="What the check counts, in words.",
    )
    grace_hours = fields.Integer(
        string="Counted after (hours)",
        default=0,
        help="Records younger than this are not counted yet (normal work in "
        "progress, not a leak).",
    )
    threshold_measure = fields.Selection(
        [
            (assurance.MEASURE_COUNT, "Number of items"),
            (assurance.MEASURE_AMOUNT, "Amount"),
            (assurance.MEASURE_AGE, "Age of the oldest item (hours)"),
        ],
        string="Threshold on",
        default=assurance.MEASURE_COUNT,
        required=True,
    )
    threshold = fields.Float(
        default=0.0,
        help="Over threshold when the figure is above this value.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    last_count = fields.Integer(string="Items", readonly=True)
    last_amount = fields.Monetary(
        string="Amount", readonly=True, currency_field="currency_id"
    )
    last_oldest_hours = fields.Float(string="Oldest item (hours)", readonly=True)
    last_oldest_text = fields.Char(
        string="Oldest item", compute="_compute_last_oldest_text"
    )
    res_model = fields.Char(string="Records of", readonly=True)
    snapshot_id = fields.Many2one(
        "qtc.assurance.snapshot", string="Latest snapshot", readonly=True
    )
    snapshot_ids = fields.One2many(
        "qtc.assurance.snapshot", "check_id", string="History", readonly=True
    )
    trend_data = fields.Json(
        readonly=True, help="Items at the end of each of the last weeks."
    )
    trend_text = fields.Char(string="Trend", readonly=True)

    _sql_constraints = [
        (
            "code_company_uniq",
            "unique(code, company_id)",
            "A company has one check of each kind.",
        )
    ]

    @api.depends("code")
    def _compute_description(self):
        descriptions = self._qtc_check_descriptions()
        for check in self:
            if check.code in descriptions:
                check.description = descriptions[check.code]
            elif not check.description:
                check.description = False

    @api.depends("last_oldest_hours")
    def _compute_last_oldest_text(self):
        for check in self:
            check.last_oldest_text = assurance.format_age(check.last_oldest_hours)

    # ----------------------------------------------------------- actions

    def action_compute(self):
        """Measure these checks now (QTC User). Returns a notification."""
        self._qtc_check_user("read")
        # A finance user refreshes the figures; writing them is the system's
        # work (see the boundary in _qtc_assurance_compute).
        self._qtc_assurance_compute()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Revenue assurance"),
                "message": _("%s check(s) measured.", len(self)),
                "type": "success",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_open_records(self):
        """The exact records the latest measurement counted (QTC User)."""
        self.ensure_one()
        self._qtc_check_user("read")
        if not self.res_model or self.res_model not in self.env:
            raise UserError(_("Measure %s first.", self.name))
        return self._qtc_action_records(
            self.res_model, self.snapshot_id.res_ids or [], self.name
        )

    def action_view_history(self):
        """The check's snapshots as a graph (QTC User)."""
        self.ensure_one()
        self._qtc_check_user("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "qtc_connector_base.qtc_assurance_snapshot_action"
        )
        action["domain"] = [("check_id", "=", self.id)]
        action["context"] = {"graph_measure": "count", "search_default_week_last": 1}
        return action

    # ----------------------------------------------------------- measuring

    @api.model
    def _qtc_cron_compute(self):
        """Cron: queue one measurement job per company with active checks."""
        jobs = self.env["qtc.job"]
        for company in self.search([]).company_id:
            checks = self.search([("company_id", "=", company.id)])
            jobs.with_company(company)._qtc_enqueue(
                checks,
                "_qtc_assurance_compute",
                name=_("Revenue assurance: measure %s", company.name),
                identity_key=f"qtc:assurance:checks:{company.id}",
                # The system's measurement: the company's service user runs it.
                user=company.sudo().qtc_service_user_id,
            )

    @job_function
    def _qtc_assurance_compute(self, now=None):
        """Measure every check of ``self`` and record the outcome: figures on
        the check, today's snapshot, the breach exception, the trend.

        :returns: a short summary for the job
        """
        # To the microsecond: a record created in the measurement's second is
        # counted (fields.Datetime.now() drops the microseconds).
        now = now or datetime.now(UTC).replace(tzinfo=None)
        self.env.flush_all()
        # Named boundary: the figures, snapshots and breach exceptions are the
        # system's records, whoever runs the measurement (the cron's job user,
        # or a QTC user through ``action_compute``); the queries read with
        # explicit company filters, not as the caller.
        checks_sudo = self.sudo()
        breached = 0
        for check_sudo in checks_sudo:
            measure = check_sudo._qtc_measure(now)
            if measure is None:
                continue
            check_sudo._qtc_record_measure(measure, now)
            breached += check_sudo.state == "breach"
        checks_sudo._qtc_forget_old_ids(now)
        return f"{len(self)} check(s) measured, {breached} over threshold"

    def _qtc_measure(self, now):
        """Run the check's query; ``None`` when the check measures nothing."""
        self.ensure_one()
        cutoff = now - timedelta(hours=max(self.grace_hours, 0))
        query = self._qtc_check_query(cutoff)
        if query is None:
            return None
        res_model, rows = query
        self.env.cr.execute(
            SQL(
                """
                SELECT COALESCE(array_agg(q.res_id ORDER BY q.res_id), '{}'),
                       COALESCE(sum(q.amount), 0), min(q.since)
                  FROM (%s) AS q
                """,
                rows,
            )
        )
        ids, amount, oldest = self.env.cr.fetchone()
        return Measure(res_model, ids, amount, oldest)

    def _qtc_record_measure(self, measure, now):
        self.ensure_one()
        count = len(measure.res_ids)
        amount = self.currency_id.round(measure.amount or 0.0)
        oldest_hours = round(assurance.age_hours(measure.oldest_at, now), 2)
        breached = assurance.is_breached(
            self.threshold_measure, self.threshold, count, amount, oldest_hours
        )
        snapshot = self.env["qtc.assurance.snapshot"]._qtc_upsert(
            self,
            now,
            {
                "count": count,
                "amount": amount,
                "oldest_hours": oldest_hours,
                "threshold": self.threshold,
                "threshold_measure": self.threshold_measure,
                "state": "breach" if breached else "ok",
                "res_model": measure.res_model,
                "res_ids": list(measure.res_ids),
            },
        )
        trend = self._qtc_trend(now)
        self.write(
            {
                "last_count": count,
                "last_amount": amount,
                "last_oldest_hours": oldest_hours,
                "last_computed_at": now,
                "res_model": measure.res_model,
                "snapshot_id": snapshot.id,
                "state": "breach" if breached else "ok",
                "trend_data": trend,
                "trend_text": assurance.sparkline(trend),
            }
        )
        self._qtc_sync_breach(
            breached,
            _(
                "%(check)s: %(count)s item(s) over the threshold",
                check=self.name,
                count=count,
            ),
            self._qtc_breach_details(count, amount, oldest_hours),
            now,
        )

    def _qtc_breach_details(self, count, amount, oldest_hours):
        measure_label = dict(self._fields["threshold_measure"].selection)[
            self.threshold_measure
        ]
        lines = [
            _("Items: %s", count),
            _(
                "Amount: %(amount)s %(currency)s",
                amount=f"{amount:,.2f}",
                currency=self.currency_id.name,
            ),
            _("Oldest item: %s", assurance.format_age(oldest_hours)),
            _(
                "Threshold: %(measure)s above %(threshold)s",
                measure=measure_label,
                threshold=self.threshold,
            ),
        ]
        if self.description:
            lines.append(_("Counts: %s", self.description))
        return "\n".join(f"- {line}" for line in lines)

    def _qtc_trend(self, now):
        """Items at the end of each of the last ``TREND_WEEKS`` weeks."""
        self.ensure_one()
        since = now.date() - timedelta(weeks=TREND_WEEKS)
        rows = self.env["qtc.assurance.snapshot"].search_read(
            [("check_id", "=", self.id), ("date", ">=", since)],
            ["date", "count"],
            order="date",
        )
        points = [(row["date"], row["count"]) for row in rows]
        return assurance.weekly_series(points, TREND_WEEKS, now.date())

    def _qtc_forget_old_ids(self, now):
        """Drop the record ids of snapshots older than ``SNAPSHOT_IDS_DAYS``
        (their figures stay): one statement, whatever the history's size."""
        if not self:
            return
        self.env["qtc.assurance.snapshot"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                UPDATE qtc_assurance_snapshot SET res_ids = NULL
                 WHERE check_id = ANY(%s) AND date < %s AND res_ids IS NOT NULL
                """,
                self.ids,
                now.date() - timedelta(days=SNAPSHOT_IDS_DAYS),
            )
        )
        self.env["qtc.assurance.snapshot"].invalidate_model(["res_ids"])

    # ------------------------------------------------------------- helpers

    @api.model
    def _qtc_sql_company_amount(self, amount, currency_id, day, company_id):
        """SQL converting ``amount`` in ``currency_id`` on ``day`` to the
        company's currency, at Odoo's rate of that day (1 without rates).

        :param amount: SQL of the amount
        :param currency_id: SQL of the ``res_currency`` id
        :param day: SQL of the date whose rate applies
        :param company_id: the company id (its root company's rates apply)
        """
        company = self.env["res.company"].browse(company_id)
        rate = """COALESCE((SELECT r.rate FROM res_currency_rate r
                    WHERE r.currency_id = %s
                      AND (r.company_id = %s OR r.company_id IS NULL)
                      AND r.name <= %s
                 ORDER BY r.company_id NULLS LAST, r.name DESC LIMIT 1), 1.0)"""
        root = company.root_id.id or company.id
        return SQL(
            "(%s) * " + rate + " / NULLIF(" + rate + ", 0)",
            amount,
            company.currency_id.id,
            root,
            day,
            currency_id,
            root,
            day,
        )

    # --------------------------------------------------------------- hooks

    @api.model
    def _qtc_check_descriptions(self):
        """``{code: what the check counts, in words}``; connectors add theirs."""
        return {"none": _("Nothing: a placeholder to configure.")}

    def _qtc_check_query(self, cutoff):
        """The records this check counts, as one SQL query.

        Override with ``if self.code != "x": return super()._qtc_check_query(
        cutoff)``. The query returns ONE row per counted record with the
        columns ``res_id`` (integer), ``amount`` (in the company's currency, 0
        where no money is involved) and ``since`` (naive UTC timestamp from
        which the record counts as a leak), and filters on
        ``self.company_id`` itself: raw SQL bypasses record rules.

        :param cutoff: naive UTC datetime; records that became a leak after it
            are still normal work in progress (``grace_hours``)
        :returns: ``(res_model, SQL)``, or ``None`` to measure nothing
        """
        self.ensure_one()
