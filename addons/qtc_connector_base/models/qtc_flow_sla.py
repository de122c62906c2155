from datetime import UTC, datetime, time, timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..lib import assurance
from ..lib.job_function import job_function

DEFAULT_WEEKS = 8


class QtcFlowSla(models.Model):
    """A service level on one step of quote-to-cash: how long it takes, from
    timestamps the suite already holds, against a target the admin sets.

    Each flow (won deal -> order confirmed, approved time -> invoiced, invoice
    posted -> paid, payment received -> applied) yields one sample per record
    that completed the step: its start and end. The measurement gives the
    median (p50) and the 90th percentile (p90) per backend and week
    (``qtc.flow.sla.snapshot``) and for the current week over all backends;
    when the chosen percentile of the current week is above the target, the
    SLA is breached like a check (one exception per period, an activity for
    the owner, resolved once back under target).

    Connectors add flows with ``selection_add`` on ``flow`` and an override of
    ``_qtc_flow_query``.
    """

    _name = "qtc.flow.sla"
    _description = "QTC Flow Service Level"
    _inherit = ["qtc.assurance.mixin"]
    _order = "sequence, id"

    flow = fields.Selection(
        [("none", "Nothing (placeholder)")], default="none", required=True
    )
    description = fields.Text(
        compute="_compute_description", store=True, readonly=False
    )
    target_hours = fields.Float(
        string="Target (hours)",
        default=24.0,
        required=True,
        help="The step should take at most this long.",
    )
    percentile = fields.Selection(
        [("p50", "Median (p50)"), ("p90", "90th percentile (p90)")],
        string="Target applies to",
        default="p90",
        required=True,
    )
    weeks = fields.Integer(
        string="Weeks measured", default=DEFAULT_WEEKS, help="History of the trend."
    )
    last_count = fields.Integer(string="Completed this week", readonly=True)
    last_p50_hours = fields.Float(string="p50 this week (hours)", readonly=True)
    last_p90_hours = fields.Float(string="p90 this week (hours)", readonly=True)
    last_slow_count = fields.Integer(string="Over target this week", readonly=True)
    last_p50_text = fields.Char(string="Median", compute="_compute_texts")
    last_p90_text = fields.Char(string="90th percentile", compute="_compute_texts")
    target_text = fields.Char(string="Target", compute="_compute_texts")
    res_model = fields.Char(string="Records of", readonly=True)
    slow_res_ids = fields.Json(
        readonly=True, help="Records of this week that took longer than the target."
    )
    snapshot_ids = fields.One2many(
        "qtc.flow.sla.snapshot", "sla_id", string="Weeks", readonly=True
    )
    trend_data = fields.Json(readonly=True)
    trend_text = fields.Char(string="Trend", readonly=True)

    _sql_constraints = [
        (
            "flow_company_uniq",
            "unique(flow, company_id)",
            "A company has one service level per flow.",
        ),
        ("target_positive", "CHECK(target_hours > 0)", "The target must be positive."),
    ]

    @api.depends("flow")
    def _compute_description(self):
        descriptions = self._qtc_flow_descriptions()
        for sla in self:
            if sla.flow in descriptions:
                sla.description = descriptions[sla.flow]
            elif not sla.description:
                sla.description = False

    @api.depends("last_p50_hours", "last_p90_hours", "target_hours")
    def _compute_texts(self):
        for sla in self:
            sla.last_p50_text = assurance.format_age(sla.last_p50_hours)
            sla.last_p90_text = assurance.format_age(sla.last_p90_hours)
            sla.target_text = assurance.format_age(sla.target_hours)

    # ----------------------------------------------------------- actions

    def action_compute(self):
        """Measure these service levels now (QTC User)."""
        self._qtc_check_user("read")
        # The figures are the system's to write (see _qtc_sla_compute).
        self._qtc_sla_compute()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Service levels"),
                "message": _("%s service level(s) measured.", len(self)),
                "type": "success",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_open_records(self):
        """This week's records that took longer than the target (QTC User)."""
        self.ensure_one()
        self._qtc_check_user("read")
        if not self.res_model or self.res_model not in self.env:
            raise UserError(_("Measure %s first.", self.name))
        return self._qtc_action_records(
            self.res_model,
            self.slow_res_ids or [],
            _("%s: over target this week", self.name),
        )

    def action_view_history(self):
        """Per backend and week, as a pivot (QTC User)."""
        self.ensure_one()
        self._qtc_check_user("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "qtc_connector_base.qtc_flow_sla_snapshot_action"
        )
        action["domain"] = [("sla_id", "=", self.id)]
        return action

    # ----------------------------------------------------------- measuring

    @api.model
    def _qtc_cron_compute(self):
        """Cron: queue one measurement job per company with active SLAs."""
        jobs = self.env["qtc.job"]
        for company in self.search([]).company_id:
            slas = self.search([("company_id", "=", company.id)])
            jobs.with_company(company)._qtc_enqueue(
                slas,
                "_qtc_sla_compute",
                name=_("Service levels: measure %s", company.name),
                identity_key=f"qtc:assurance:slas:{company.id}",
                # The system's measurement: the company's service user runs it.
                user=company.sudo().qtc_service_user_id,
            )

    @job_function
    def _qtc_sla_compute(self, now=None):
        """Measure every SLA of ``self`` over its weeks: one snapshot per
        backend and week, the current week's figures, the breach.

        :returns: a short summary for the job
        """
        # To the microsecond: a record created in the measurement's second is
        # counted (fields.Datetime.now() drops the microseconds).
        now = now or datetime.now(UTC).replace(tzinfo=None)
        self.env.flush_all()
        # Named boundary, as for checks: the weekly figures and breach
        # exceptions are the system's records, whoever runs the measurement.
        breached = 0
        for sla_sudo in self.sudo():
            query = sla_sudo._qtc_flow_query(sla_sudo._qtc_window_start(now))
            if query is None:
                continue
            res_model, samples = query
            sla_sudo._qtc_record_weeks(res_model, samples, now)
            breached += sla_sudo.state == "breach"
        return f"{len(self)} service level(s) measured, {breached} over target"

    def _qtc_window_start(self, now):
        weeks = max(self.weeks or DEFAULT_WEEKS, 1)
        start = assurance.week_start(now) - timedelta(weeks=weeks - 1)
        return datetime.combine(start, time.min)

    def _qtc_record_weeks(self, res_model, samples, now):
        """One statement: p50/p90 per backend and week, and per week over all
        backends (``GROUPING SETS``), with the ids over target."""
        self.ensure_one()
        self.env.cr.execute(
            SQL(
                """
                WITH d AS (
                    SELECT s.backend_id, s.res_id,
                           date_trunc('week', s.ended_at)::date AS week,
                           -- An end stamped before its start (the database's
                           -- transaction time vs a server's clock) took no time.
                           GREATEST(EXTRACT(EPOCH FROM s.ended_at - s.started_at)
                                    / 3600.0, 0) AS hours
                      FROM (%s) AS s
                     WHERE s.ended_at >= %s AND s.started_at IS NOT NULL
                )
                SELECT GROUPING(backend_id) = 1 AS total, backend_id, week,
                       count(*),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY hours),
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY hours),
                       COALESCE(array_agg(res_id ORDER BY res_id)
                                FILTER (WHERE hours > %s), '{}')
                  FROM d
              GROUP BY GROUPING SETS ((backend_id, week), (week))
                """,
                samples,
                self._qtc_window_start(now),
                self.target_hours,
            )
        )
        rows = self.env.cr.fetchall()
        current = assurance.week_start(now)
        by_week = {}
        snapshots = self.env["qtc.flow.sla.snapshot"]
        for total, backend_id, week, count, p50, p90, slow_ids in rows:
            if total:
                by_week[week] = (count, p50, p90, slow_ids)
                continue
            snapshots._qtc_upsert(
                self,
                backend_id,
                week,
                {
                    "count": count,
                    "p50_hours": round(p50 or 0.0, 2),
                    "p90_hours": round(p90 or 0.0, 2),
                    "slow_count": len(slow_ids),
                    "target_hours": self.target_hours,
                    "computed_at": now,
                },
            )
        count, p50, p90, slow_ids = by_week.get(current, (0, 0.0, 0.0, []))
        figure = p90 if self.percentile == "p90" else p50
        breached = bool(count) and (figure or 0.0) > self.target_hours
        weeks = max(self.weeks or DEFAULT_WEEKS, 1)
        trend = [
            round(
                (by_week.get(current - timedelta(weeks=offset)) or (0, 0, 0, []))[
                    2 if self.percentile == "p90" else 1
                ]
                or 0.0,
                2,
            )
            for offset in range(weeks - 1, -1, -1)
        ]
        self.write(
            {
                "last_count": count,
                "last_p50_hours": round(p50 or 0.0, 2),
                "last_p90_hours": round(p90 or 0.0, 2),
                "last_slow_count": len(slow_ids),
                "slow_res_ids": list(slow_ids),
                "res_model": res_model,
                "last_computed_at": now,
                "state": "breach" if breached else "ok",
                "trend_data": trend,
                "trend_text": assurance.sparkline(trend),
            }
        )
        percentile_label = dict(self._fields["percentile"].selection)[self.percentile]
        self._qtc_sync_breach(
            breached,
            _("%(sla)s: slower than the target this week", sla=self.name),
            "\n".join(
                f"- {line}"
                for line in (
                    _("Completed this week: %s", count),
                    _("Median: %s", assurance.format_age(p50)),
                    _("90th percentile: %s", assurance.format_age(p90)),
                    _(
                        "Target: %(target)s on the %(percentile)s",
                        target=assurance.format_age(self.target_hours),
                        percentile=percentile_label,
                    ),
                    _("Over target: %s", len(slow_ids)),
                )
            ),
            now,
        )

    # --------------------------------------------------------------- hooks

    @api.model
    def _qtc_flow_descriptions(self):
        """``{flow: what is measured, in words}``; connectors add theirs."""
        return {"none": _("Nothing: a placeholder to configure.")}

    def _qtc_flow_query(self, since):
        """The samples of this flow, as one SQL query.

        Override with ``if self.flow != "x": return super()._qtc_flow_query(
        since)``. Columns: ``backend_id`` (integer or NULL), ``res_id`` (the
        record that completed the step), ``started_at`` and ``ended_at``
        (naive UTC timestamps). Filter on ``self.company_id`` and on
        ``ended_at >= since`` (the base filters again, but an early filter
        keeps the query cheap).

        :returns: ``(res_model, SQL)``, or ``None`` to measure nothing
        """
        self.ensure_one()
