import logging

import psycopg2
from lxml import etree

from odoo import Command, _, api, fields, models
from odoo.osv import expression

from ..access import GROUP_USER, check_action
from ..lib import bulk_sql

_logger = logging.getLogger(__name__)

# xml ids of the per-model Trace UI records (in the module of a connector that
# registered the model).
TRACE_ACTION_PREFIX = "trace_ui_action__"
TRACE_VIEW_PREFIX = "trace_ui_view__"
TRACE_BUTTON = """<button name="action_qtc_trace" type="object" class="oe_stat_button"
        icon="fa-sitemap" groups="qtc_connector_base.group_qtc_user"
        invisible="not qtc_trace_count">
    <field name="qtc_trace_count" string="Trace" widget="statinfo"/>
</button>"""


# The columns ``_qtc_insert`` writes, with their SQL types.
TRACE_COLUMNS = {
    "correlation_id": "varchar",
    "event_id": "int4",
    "job_id": "int4",
    "backend_id": "int4",
    "res_model": "varchar",
    "res_id": "int4",
    "res_name": "varchar",
    "operation": "varchar",
    "note": "varchar",
}


def _like_prefix(prefix):
    """A LIKE pattern matching names that start with ``prefix`` literally."""
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


class QtcTrace(models.Model):
    """One line of the audit trail: an event's job created, changed or linked
    an Odoo record. Joined by correlation id, it answers both "what did this
    event do?" and "which events led to this record?"."""

    _name = "qtc.trace"
    _description = "QTC Trace"
    _order = "id"

    correlation_id = fields.Char(index=True, readonly=True)
    event_id = fields.Many2one(
        "qtc.event", index=True, readonly=True, ondelete="set null"
    )
    job_id = fields.Many2one("qtc.job", readonly=True, ondelete="set null")
    backend_id = fields.Many2one("qtc.backend", readonly=True, ondelete="cascade")
    res_model = fields.Char(string="Record model", readonly=True, index=True)
    res_id = fields.Many2oneReference(
        string="Record id", model_field="res_model", readonly=True, index=True
    )
    res_name = fields.Char(string="Record", readonly=True)
    operation = fields.Selection(
        [
            ("created", "Created"),
            ("updated", "Updated"),
            ("linked", "Linked"),
            ("skipped", "Skipped (already applied)"),
            ("reversed", "Reversed"),
        ],
        readonly=True,
    )
    note = fields.Char(readonly=True)

    @api.model
    def _qtc_record(self, records, operation, note=None, backend=None):
        """Record that the current event/job did ``operation`` on ``records``.

        Uses the correlation, event and job ids the job runner puts in context;
        outside a job (manual work) the line has no correlation id.
        """
        context = self.env.context
        event_id = context.get("qtc_event_id") or False
        job_id = context.get("qtc_job_id") or False
        if not backend and event_id:
            backend = self.env["qtc.event"].sudo().browse(event_id).backend_id
        if not backend and job_id:
            # The backend gives the line its company (record rules).
            backend = self.env["qtc.job"].sudo().browse(job_id).backend_id
        self._qtc_insert(
            [
                {
                    "correlation_id": context.get("qtc_correlation_id"),
                    "event_id": event_id,
                    "job_id": job_id,
                    "backend_id": backend.id if backend else False,
                    "res_model": record._name,
                    "res_id": record.id,
                    "res_name": (record.display_name or "")[:250],
                    "operation": operation,
                    "note": note,
                }
                for record in records
            ]
        )

    @api.model
    def _qtc_insert(self, values_list):
        """Write trace lines (dicts of the fields above) with ONE SQL statement.

        The trail is append-only and nothing computes from it, so the volume
        paths (thousands of lines per job) skip the ORM's per-record create.
        Access is not checked: the trail is written by the connectors' jobs
        (as ``sudo().create`` did); users only read it.

        :returns: the ids of the new lines, in the order given
        """
        if not values_list:
            return []
        # No flush: the lines reference events, jobs and backends already in
        # the database, and res_id is not a foreign key; pending ORM writes
        # have nothing to do with this insert.
        now = self.env.cr.now()  # as the ORM stamps create_date
        ids = bulk_sql.insert_rows(
            self.env.cr,
            self._table,
            TRACE_COLUMNS,
            values_list,
            constants={
                "create_uid": self.env.uid,
                "create_date": now,
                "write_uid": self.env.uid,
                "write_date": now,
            },
        )
        # The events' one2many of trace lines may be in the cache already.
        self.env["qtc.event"].invalidate_model(["trace_ids", "produced_trace_ids"])
        return ids

    @api.model
    def _qtc_action_for_correlation(self, correlation_id):
        """The timeline of one flow: its event, its jobs (follow-up jobs carry the
        event's correlation id) and every change they made, in order."""
        return self._qtc_steps_action(
            _("Trace"), [("correlation_id", "=", correlation_id or "-")]
        )

    @api.model
    def _qtc_action_for_record(self, records):
        """Every event and job that led to ``records`` (and the records in their
        ``_qtc_trace_related_fields``), and what each did, in order."""
        name = (
            _("Trace of %s", records.display_name)
            if len(records) == 1
            else _("Trace of %s records", len(records))
        )
        return self._qtc_steps_action(name, self._qtc_step_domain(records))

    @api.model
    def _qtc_step_domain(self, records):
        """``qtc.trace.step`` domain of the flows behind ``records``.

        A flow is found through the trace lines and the exceptions naming one of
        the records; it is then followed by correlation id (its event, jobs and
        all their changes). A batch job has no correlation id of its own: its row
        is added by job id.
        """
        scope_pairs = self._qtc_scope_pairs(records)
        record_domain = expression.OR(
            [
                [("res_model", "=", model), ("res_id", "in", ids)]
                for model, ids in scope_pairs
            ]
        )
        lines = self.search(record_domain)
        # Read access to exceptions comes with the QTC User group, like the trace.
        exceptions = self.env["qtc.exception"].search(record_domain)
        correlations = sorted(
            {c for c in lines.mapped("correlation_id") if c}
            | {c for c in exceptions.mapped("correlation_id") if c}
        )
        jobs = lines.job_id | exceptions.job_id
        return expression.OR(
            [
                [("correlation_id", "in", correlations)],
                [("kind", "=", "job"), ("job_id", "in", jobs.ids)],
                expression.AND([[("kind", "=", "change")], record_domain]),
            ]
        )

    @api.model
    def _qtc_scope_pairs(self, records):
        """``[(model, ids)]`` of ``records`` and the records their trace includes."""
        if not records:
            return [(records._name, [])]
        if "qtc_trace_count" not in records._fields:
            return [(records._name, records.ids)]
        merged = {}
        for pairs in records._qtc_trace_scope().values():
            for model, ids in pairs:
                merged.setdefault(model, set()).update(ids)
        return [(model, sorted(ids)) for model, ids in merged.items()]

    @api.model
    def _qtc_count_for_records(self, records):
        """``{record id: number of trace lines and exceptions}`` of a traceable
        recordset (those of its related records included)."""
        records = records.filtered("id")
        if not records:
            return {}
        scope = records._qtc_trace_scope()
        owners = {}  # (model, id) -> ids of the records whose trace includes it
        for record_id, pairs in scope.items():
            for model, ids in pairs:
                for res_id in ids:
                    owners.setdefault((model, res_id), []).append(record_id)
        counts = {}
        # Exceptions count too: a refused event changed nothing, yet its flow
        # is part of the record's story.
        sources = (self, self.env["qtc.exception"])
        for model in {model for model, _res_id in owners}:
            res_ids = [res_id for (m, res_id) in owners if m == model]
            for source in sources:
                groups = source._read_group(
                    [("res_model", "=", model), ("res_id", "in", res_ids)],
                    ["res_id"],
                    ["__count"],
                )
                for res_id, count in groups:
                    for owner in owners[(model, res_id)]:
                        counts[owner] = counts.get(owner, 0) + count
        return counts

    @api.model
    def _qtc_steps_action(self, name, domain):
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": "qtc.trace.step",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": domain,
            "context": {"create": False},
        }

    # ------------------------------------------------- the per-model Trace UI

    def _register_hook(self):
        super()._register_hook()
        self._qtc_sync_trace_ui()

    @api.model
    def _qtc_traceable_models(self):
        """``{model name: modules that made it traceable}`` (the modules whose
        extension of the model lists ``qtc.trace.mixin``), in load order."""
        children = self.env.registry["qtc.trace.mixin"]._inherit_children
        result = {}
        for name in sorted(children):
            if name not in self.env or self.env[name]._abstract:
                continue
            modules = []
            for cls in reversed(type(self.env[name]).__mro__):
                parents = vars(cls).get("_inherit") or ()
                if isinstance(parents, str):
                    parents = [parents]
                module = getattr(cls, "_module", None)
                if "qtc.trace.mixin" in parents and module not in modules:
                    modules.append(module)
            if modules:
                result[name] = modules
        return result

    @api.model
    def _qtc_sync_trace_ui(self):
        """Give every traceable model exactly one Trace entry in its Action menu
        and one Trace button on its main form, and remove those of models no
        longer traceable.

        Idempotent, run each time the registry loads: a model several connectors
        register gets its entry once. The records are owned (xml id) by one of
        the connectors that registered the model, so that Odoo validates the
        button only once that connector is loaded, and removes it with that
        connector; the next sync then gives it to another one still installed.
        ``noupdate``: updating the owner keeps them.
        """
        env = self.env(su=True)  # UI records, written by the system at load time
        wanted = self._qtc_traceable_models()
        data = env["ir.model.data"]
        existing = data.search(
            [
                ("model", "in", ("ir.actions.server", "ir.ui.view")),
                "|",
                ("name", "=like", _like_prefix(TRACE_ACTION_PREFIX)),
                ("name", "=like", _like_prefix(TRACE_VIEW_PREFIX)),
            ]
        )
        plan = []  # (model, owner, xml name, target model, values builder)
        for model, owners in wanted.items():
            suffix = model.replace(".", "_")
            plan.append(
                (
                    model,
                    owners,
                    TRACE_ACTION_PREFIX + suffix,
                    env["ir.actions.server"],
                    self._qtc_trace_action_values,
                )
            )
            plan.append(
                (
                    model,
                    owners,
                    TRACE_VIEW_PREFIX + suffix,
                    env["ir.ui.view"],
                    self._qtc_trace_view_values,
                )
            )
        keep = data
        missing = []
        for model, owners, name, target, values in plan:
            valid = existing.filtered(
                lambda row, name=name, target=target, owners=owners: (
                    row.name == name
                    and row.module in owners
                    and target.browse(row.res_id).exists()
                )
            )[:1]
            if valid:
                keep |= valid
            else:
                missing.append((model, owners, name, target, values))
        # Stale ones go first: a new button is placed in the form as it is
        # without them.
        for row in existing - keep:
            record = env[row.model].browse(row.res_id).exists()
            row.unlink()
            record.unlink()
        for model, owners, name, target, values in missing:
            record_values = values(model)
            if record_values:
                self._qtc_create_owned(owners[0], name, target, record_values)

    @api.model
    def _qtc_create_owned(self, module, name, model, values):
        """Create ``values`` in ``model`` under the xml id ``module.name``;
        returns the ``ir.model.data`` row (empty if another process won).

        Two processes loading the registry at once may race to create it; the
        loser's savepoint rolls back and the winner's record stands.
        """
        data = self.env["ir.model.data"].sudo()
        try:
            with self.env.cr.savepoint():
                record = model.create(values)
                return data.create(
                    {
                        "module": module,
                        "name": name,
                        "model": model._name,
                        "res_id": record.id,
                        "noupdate": True,
                    }
                )
        except psycopg2.IntegrityError:
            _logger.info("trace UI %s.%s created by another process", module, name)
            return data

    @api.model
    def _qtc_trace_action_values(self, model):
        ir_model = self.env["ir.model"]._get(model)
        return {
            "name": _("Trace"),
            "model_id": ir_model.id,
            "binding_model_id": ir_model.id,
            "binding_type": "action",
            "binding_view_types": "list,form",
            "state": "code",
            "code": "action = records.action_qtc_trace()",
            "groups_id": [
                Command.set([self.env.ref("qtc_connector_base.group_qtc_user").id])
            ],
        }

    @api.model
    def _qtc_trace_view_values(self, model):
        """A stat button on the model's main form, in its button box (one is
        added at the top of the sheet when the form has none). None when the
        model has no form with a sheet: the Action-menu entry remains."""
        views = self.env["ir.ui.view"]
        view_id = views.default_view(model, "form")
        if not view_id:
            return None
        view = views.browse(view_id)
        # The root form: forms derived from it (primary views inheriting it)
        # show the button too.
        while view.inherit_id:
            view = view.inherit_id
        arch = etree.fromstring(view.get_combined_arch())
        button = TRACE_BUTTON
        if arch.xpath("//div[@name='button_box']"):
            spec = f"""<xpath expr="//div[@name='button_box']" position="inside">
                {button}</xpath>"""
        elif arch.xpath("//sheet/*"):
            # A button box is the first element of the sheet.
            spec = f"""<xpath expr="//sheet/*[1]" position="before">
                <div class="oe_button_box" name="button_box">{button}</div>
            </xpath>"""
        else:
            return None
        return {
            "name": f"{model}.form.qtc.trace",
            "model": model,
            "type": "form",
            "mode": "extension",
            "inherit_id": view.id,
            "priority": 99,
            "arch": f"<data>{spec}</data>",
        }

    def action_open_record(self):
        """Open the record the line is about (QTC Users)."""
        self.ensure_one()
        check_action(self, GROUP_USER, "read", _("open a traced record"))
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
