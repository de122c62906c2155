from odoo import api, fields, models


class QtcFlowSlaSnapshot(models.Model):
    """One flow's lead times for one backend and one week (p50, p90, count):
    the history behind a service level, for its pivot and graph."""

    _name = "qtc.flow.sla.snapshot"
    _description = "QTC Flow Service Level per Week"
    _order = "week desc, sla_id, backend_id"
    _rec_name = "sla_id"

    sla_id = fields.Many2one(
        "qtc.flow.sla",
        string="Service level",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    flow = fields.Selection(related="sla_id.flow", store=True)
    company_id = fields.Many2one(related="sla_id.company_id", store=True, index=True)
    backend_id = fields.Many2one(
        "qtc.backend", readonly=True, index=True, ondelete="cascade"
    )
    channel = fields.Char(
        string="Through",
        compute="_compute_channel",
        store=True,
        help="The backend the records came through; Odoo for a step of Odoo's own.",
    )
    week = fields.Date(string="Week of", required=True, readonly=True, index=True)
    count = fields.Integer(string="Completed", readonly=True, aggregator="sum")
    p50_hours = fields.Float(string="Median (hours)", readonly=True, aggregator="max")
    p90_hours = fields.Float(
        string="90th percentile (hours)", readonly=True, aggregator="max"
    )
    slow_count = fields.Integer(string="Over target", readonly=True, aggregator="sum")
    target_hours = fields.Float(
        string="Target (hours)", readonly=True, aggregator="max"
    )
    computed_at = fields.Datetime(string="Measured at", readonly=True)

    @api.depends("backend_id.name")
    def _compute_channel(self):
        for row in self:
            row.channel = row.backend_id.name or self.env._("Odoo")

    def init(self):
        # One row per service level, backend (none included) and week; an
        # expression index because NULLS NOT DISTINCT needs PostgreSQL 15.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS qtc_flow_sla_snapshot_week_uniq
                ON qtc_flow_sla_snapshot (sla_id, COALESCE(backend_id, 0), week)
            """
        )

    @api.model
    def _qtc_upsert(self, sla, backend_id, week, values):
        """Write ``values`` as the row of ``sla``, ``backend_id`` and ``week``."""
        existing = self.search(
            [
                ("sla_id", "=", sla.id),
                ("backend_id", "=", backend_id or False),
                ("week", "=", week),
            ],
            limit=1,
        )
        if existing:
            existing.write(values)
            return existing
        return self.create(
            {**values, "sla_id": sla.id, "backend_id": backend_id, "week": week}
        )
