"""Apply a batch of work-item events with bulk queries: the volume path.

One pushed request (or one Harvest page) is stored as one batch job. Applying
its items one by one costs 20-40 queries each; :class:`BatchApplier` applies
the time items of a chunk in a few dozen queries in all:

1. parse every event (a bad payload fails its own event only);
2. read the ``qtc.psa.item`` rows of the chunk in one query and decide per item
   in Python with ``lib/billing_rules`` (create, update, remove, skip);
3. resolve projects, tasks (bindings, value maps) and employees (work email)
   with one search each for the whole chunk;
4. check lock dates, then create the new item rows with every value known
   so far in ONE ``create(vals_list)``, the timesheets with ONE more, remove
   withdrawn ones with one ``unlink``, link items to their lines and write the
   trace lines in bulk; rate differences are flagged with one chatter message
   per sale order.

The ``qtc.psa.item`` row is the item's binding (unique per backend and
external id, with its version, date and payload): no ``qtc.binding`` is kept
next to it.

Per-item business problems (unknown employee or project, lock date, rate
under the ``raise`` policy...) open their own exception and fail their own
event; the others go on. Problems found before anything is written are simply
left out. A problem only visible after writing (the sale order line Odoo chose
has another price under the ``raise`` policy) rolls the chunk's savepoint back
and the chunk is applied again without the refused items.

What the bulk path does not cover takes the single-item path
(``qtc.psa.item._psa_apply``, each item in its own savepoint, in event order):
expenses and milestones, items already invoiced (a correction there needs a
credit note or touches only the description), and the second and later
deliveries of one item within the same chunk. An error the bulk path cannot
attribute to one item (an Odoo constraint during the bulk create) sends the
whole chunk down that path, so a bad item still stops only itself.
"""

import json
import logging
from datetime import UTC

from odoo import _
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.addons.qtc_connector_base.lib import bulk_sql
from odoo.addons.qtc_connector_base.models.qtc_backend import BUSINESS_ERRORS

from . import const
from .lib import billing_rules as rules
from .lib import work_item as wi

_logger = logging.getLogger(__name__)

# The columns of a new ``qtc.psa.item`` row written by ``_create_records``
# (with the backend, company and create/write stamps), and those
# ``_write_items`` sets once its timesheet exists; SQL types.
ITEM_COLUMNS = {
    "external_id": "varchar",
    "kind": "varchar",
    "status": "varchar",
    "version": "int4",
    "external_updated_at": "timestamp",
    "date": "date",
    "billable": "bool",
    "payload": "text",
    "psa_rate": "float8",
    "correlation_id": "varchar",
    "project_id": "int4",
    "task_id": "int4",
    "employee_id": "int4",
    "quantity": "float8",
}
LINK_COLUMNS = {
    "analytic_line_id": "int4",
    "sale_line_id": "int4",
    "rate_mismatch": "bool",
    "rate_difference": "float8",
}

# A pass that found refusals only visible after writing is redone without them;
# the refusals are deterministic, so a second pass normally suffices.
MAX_PASSES = 3


class _Redo(Exception):
    """Roll the chunk back and apply it again without the items in ``failures``
    (``{event id: BusinessError}``)."""

    def __init__(self, failures):
        super().__init__(f"{len(failures)} item(s) refused after writing")
        self.failures = failures


class _Plan:
    """What the bulk path does with one item (filled in step by step)."""

    __slots__ = (
        "action",
        "created",
        "decision",
        "employee",
        "event",
        "item",
        "line",
        "note",
        "operation",
        "project",
        "record",
        "task",
    )

    def __init__(self, event, item, record, action):
        self.event = event
        self.item = item
        self.record = record
        self.action = action
        self.project = self.task = self.employee = self.line = None
        self.operation = self.note = self.decision = None
        self.created = False  # its item row was inserted by this pass


class BatchApplier:
    """Applies chunks of one backend's work-item events; see the module doc.

    :param backend: the ``qtc.backend`` (a PSA provider) the events belong to
    """

    def __init__(self, backend):
        self.backend = backend
        self.env = backend.env

    # ------------------------------------------------------------------ entry

    def apply(self, events):
        """Apply ``events`` (a ``qtc.event`` recordset, one chunk).

        :returns: ``{event id: (state, text)}`` with state done, ignored or
            failed; every failed event has its own open exception
        :raises: non-business errors (database, bugs): the job retries, and
            the items applied by then are recognised as duplicates
        """
        outcomes = {}
        failures = {}
        parsed = []
        for event in events:
            if not (event.event_type or "").startswith(const.EVENT_TYPE_PREFIX):
                outcomes[event.id] = ("ignored", "ignored")
                continue
            try:
                parsed.append((event, self.backend._psa_parse_event(event)))
            except BusinessError as error:
                failures[event.id] = (event, error)
        bulk, sequential = self._split(parsed)
        sequential += self._apply_bulk(bulk, outcomes, failures)
        self._apply_sequential(sequential, outcomes, failures)
        self._open_exceptions(failures, outcomes)
        return outcomes

    @staticmethod
    def _split(parsed):
        """Time items (first delivery of each item in the chunk) go the bulk
        way; the rest the single-item way, in event order after the bulk."""
        bulk, sequential, seen = [], [], set()
        for event, item in parsed:
            if item.kind == wi.KIND_TIME and item.external_id not in seen:
                bulk.append((event, item))
            else:
                sequential.append((event, item))
            seen.add(item.external_id)
        return bulk, sequential

    # ------------------------------------------------------------- bulk path

    def _apply_bulk(self, pairs, outcomes, failures):
        """Run bulk passes in a savepoint until one has no late refusal.

        :returns: the pairs left to the single-item path
        """
        late = {}
        for _attempt in range(MAX_PASSES):
            todo = [(event, item) for event, item in pairs if event.id not in late]
            if not todo:
                break
            pass_outcomes, pass_failures = {}, {}
            try:
                with self.env.cr.savepoint():
                    sequential = self._bulk_pass(todo, pass_outcomes, pass_failures)
            except _Redo as redo:
                late.update(redo.failures)
                continue
            except BUSINESS_ERRORS:
                # Not attributable to one item: each item on its own, so the
                # bad one stops only itself.
                _logger.warning(
                    "backend %s: bulk apply of %s items refused; applying them "
                    "one by one",
                    self.backend.id,
                    len(todo),
                    exc_info=True,
                )
                return list(pairs)  # the late refusals too: they fail again there
            outcomes.update(pass_outcomes)
            failures.update(pass_failures)
            events = {event.id: event for event, _item in pairs}
            for event_id, error in late.items():
                failures[event_id] = (events[event_id], error)
            return sequential
        # Still refusing after MAX_PASSES: let each item speak for itself.
        return [(event, item) for event, item in pairs]

    def _bulk_pass(self, pairs, outcomes, failures):
        """One pass over time items, writing everything in bulk.

        :returns: the pairs this pass left to the single-item path
        :raises _Redo: refusals found after writing (rate under ``raise``)
        """
        env = self.env
        backend = self.backend
        items_model = env["qtc.psa.item"]
        records = items_model.search(
            [
                ("backend_id", "=", backend.id),
                ("external_id", "in", [item.external_id for _e, item in pairs]),
            ]
        )
        record_of = {record.external_id: record for record in records}
        sequential, skipped, removals, applies = [], [], [], []
        early_withdrawals = []
        for event, item in pairs:
            record = record_of.get(item.external_id, items_model)
            if record and (record.kind != wi.KIND_TIME or record._psa_is_invoiced()):
                sequential.append((event, item))
                continue
            previous = (
                rules.PreviousState(wi.validate_work_item(json.loads(record.payload)))
                if record
                else None
            )
            try:
                action = rules.correction_action(previous, item)
            except rules.OrderingError as exc:
                failures[event.id] = (
                    event,
                    BusinessError(
                        str(exc), category="data", records=[(record._name, record.id)]
                    ),
                )
                continue
            plan = _Plan(event, item, record, action)
            if rules.is_early_withdrawal(previous, item):
                early_withdrawals.append(plan)
            elif action in (rules.Action.NOOP, rules.Action.STALE):
                skipped.append(plan)
            elif action == rules.Action.CREDIT_NOTE_REQUIRED:  # not invoiced: never
                sequential.append((event, item))
            elif action == rules.Action.REMOVE or item.status == wi.STATUS_WITHDRAWN:
                removals.append(plan)
            else:
                applies.append(plan)

        self._resolve(applies, failures)
        self._check_locks(applies, removals, failures)
        applies = [plan for plan in applies if plan.event.id not in failures]
        removals = [plan for plan in removals if plan.event.id not in failures]

        traces = []
        self._create_records(applies)
        self._create_records(early_withdrawals)
        self._write_timesheets(applies)
        late = self._rate_decisions(applies)
        if late:
            raise _Redo(late)
        for plan in applies:
            traces.append(self._trace(plan, plan.line, plan.operation, plan.note))
        self._remove_timesheets(removals, traces)
        self._post_rate_messages(applies)
        self._write_items(applies, removals + early_withdrawals)
        for plan in skipped:
            note = (
                _("older than the applied delivery")
                if plan.action == rules.Action.STALE
                else _("already applied")
            )
            if plan.record:
                traces.append(self._trace(plan, plan.record, "skipped", note))
            outcomes[plan.event.id] = ("done", f"{plan.action.value} ({note})")
        for plan in early_withdrawals:
            note = _("withdrawal kept (it arrived before its approval)")
            traces.append(self._trace(plan, plan.record, "created", note))
            outcomes[plan.event.id] = ("done", f"{plan.action.value} ({note})")
        for plan in applies + removals:
            outcome = plan.note or _("timesheet %s", plan.operation)
            traces.append(
                self._trace(
                    plan,
                    plan.record,
                    "created" if plan.action == rules.Action.CREATE else "updated",
                    outcome,
                )
            )
            outcomes[plan.event.id] = ("done", f"{plan.action.value} ({outcome})")
        env["qtc.trace"]._qtc_insert(traces)
        return sequential

    def _resolve(self, applies, failures):
        """Projects, tasks and employees of every item, one lookup each."""
        items_model = self.env["qtc.psa.item"]
        backend = self.backend
        projects = items_model._psa_resolve_many(
            backend,
            const.BINDING_PROJECT,
            const.MAP_PROJECT,
            {plan.item.project_ref for plan in applies},
            "project.project",
        )
        tasks = items_model._psa_resolve_many(
            backend,
            const.BINDING_TASK,
            const.MAP_TASK,
            {plan.item.task_ref for plan in applies if plan.item.task_ref},
            "project.task",
        )
        employees = items_model._psa_employees(
            backend, {plan.item.employee_email for plan in applies}
        )
        for plan in applies:
            item = plan.item
            project = projects.get(item.project_ref)
            if not isinstance(project, BusinessError) and not project:
                project = items_model._psa_project_error(item.project_ref)
            task = tasks.get(item.task_ref) or self.env["project.task"]
            if (
                not isinstance(task, BusinessError)
                and not isinstance(project, BusinessError)
                and task
                and task.project_id != project
            ):
                task = items_model._psa_task_error(item.task_ref, task, project)
            employee = employees.get(item.employee_email)
            # The single-item path's order: project, task, employee.
            error = next(
                (
                    value
                    for value in (project, task, employee)
                    if isinstance(value, BusinessError)
                ),
                None,
            )
            if error:
                failures[plan.event.id] = (plan.event, error)
                continue
            plan.project, plan.task, plan.employee = project, task, employee

    def _check_locks(self, applies, removals, failures):
        items_model = self.env["qtc.psa.item"]
        locks = {}

        def refuse(plan, company, dates):
            if company.id not in locks:
                locks[company.id] = items_model._psa_lock_date(company)
            error = items_model._psa_lock_error(
                company, locks[company.id], dates, plan.item.external_id
            )
            if error:
                failures[plan.event.id] = (plan.event, error)

        for plan in applies:
            if plan.event.id not in failures:
                line = plan.record.analytic_line_id
                refuse(plan, plan.project.company_id, [plan.item.date, line.date])
        for plan in removals:
            refuse(plan, plan.record.company_id, [plan.record.date])

    def _create_records(self, applies):
        """Insert the ``qtc.psa.item`` rows of first deliveries with ONE SQL
        statement, with every value known before their timesheets exist
        (``_write_items`` then adds only the line and its sale line). The
        item row is the connector's own bookkeeping: nothing computes from it,
        so the volume path does not pay the ORM's per-record create."""
        new = [plan for plan in applies if not plan.record]
        if not new:
            return
        now = self.env.cr.now()  # as the ORM stamps create_date
        uid = self.env.uid
        ids = bulk_sql.insert_rows(
            self.env.cr,
            "qtc_psa_item",
            ITEM_COLUMNS,
            [
                {
                    **self._item_values(plan),
                    # Early withdrawals are kept without a project or line.
                    **(self._resolved_values(plan) if plan.project else {}),
                    "external_id": plan.item.external_id,
                }
                for plan in new
            ],
            constants={
                "backend_id": self.backend.id,
                "company_id": self.backend.company_id.id,
                "create_uid": uid,
                "create_date": now,
                "write_uid": uid,
                "write_date": now,
            },
        )
        records = self.env["qtc.psa.item"].browse(ids)
        for plan, record in zip(new, records, strict=True):
            plan.record = record
            plan.created = True

    def _write_timesheets(self, applies):
        """One ``create`` for every new timesheet; corrections written per line
        (Odoo re-determines the sale line of each)."""
        timesheets = self.env["account.analytic.line"]
        to_create = []
        for plan in applies:
            item = plan.item
            billable = rules.is_billable(item)
            values = {
                "name": item.description or "/",
                "project_id": plan.project.id,
                "task_id": plan.task.id,
                "employee_id": plan.employee.id,
                "date": item.date,
                "unit_amount": float(item.hours),
            }
            if not billable:
                values.update(so_line=False, is_so_line_edited=True)
            line = plan.record.analytic_line_id
            if line:
                line.write(values)
                if billable:
                    sale_line = (
                        line._timesheet_determine_sale_line()
                        if plan.project.allow_billable
                        else False
                    )
                    line.write(
                        {
                            "is_so_line_edited": False,
                            "so_line": sale_line.id if sale_line else False,
                        }
                    )
                plan.line, plan.operation = line, "updated"
            else:
                to_create.append((plan, {**values, "psa_item_id": plan.record.id}))
        if to_create:
            created = timesheets.create([values for _plan, values in to_create])
            for (plan, _values), line in zip(to_create, created, strict=True):
                plan.line, plan.operation = line, "created"
        for plan in applies:
            billable = rules.is_billable(plan.item)
            if billable and not plan.line.so_line:
                plan.note = _("no sale order line on the project: recorded, not billed")
            elif not billable:
                plan.note = _("not billable: recorded without sale order line")

    def _rate_decisions(self, applies):
        """Flag differing PSA rates; returns the refusals (``raise`` policy)."""
        items_model = self.env["qtc.psa.item"]
        late = {}
        for plan in applies:
            if plan.item.rate is None:
                continue  # nothing to compare: the order price is billed
            so_line = plan.line.so_line
            try:
                plan.decision = items_model._psa_rate_decision(
                    self.backend, plan.item, so_line
                )
            except BusinessError as error:
                late[plan.event.id] = error
                continue
            if plan.decision:
                plan.note = items_model._psa_rate_note(
                    plan.item, so_line, plan.decision
                )
        return late

    def _remove_timesheets(self, removals, traces):
        lines = self.env["account.analytic.line"]
        for plan in removals:
            line = plan.record.analytic_line_id
            if line:
                traces.append(self._trace(plan, line, "reversed", None))
                lines |= line
            plan.operation = "removed"
            plan.note = _("withdrawn: line removed")
        lines.unlink()

    def _post_rate_messages(self, applies):
        """One chatter message per sale order listing its flagged items."""
        flagged = {}
        for plan in applies:
            if plan.decision:
                order = plan.line.so_line.order_id
                flagged.setdefault(order, []).append(
                    _("%(item)s: %(note)s.", item=plan.item.external_id, note=plan.note)
                )
        for order, notes in flagged.items():
            order.message_post(body="\n".join(notes))

    def _write_items(self, applies, removals):
        """The item rows' new state. Rows inserted by this pass already hold
        everything but the line, its sale line and a rate difference: those
        are set with ONE SQL update. Corrections go through the ORM (Odoo
        flushes them as one UPDATE per set of changed columns)."""
        inserted = {}
        for plan in applies:
            decision = plan.decision
            values = {
                "analytic_line_id": plan.line.id,
                "sale_line_id": plan.line.so_line.id,
                "rate_mismatch": bool(decision),
                "rate_difference": (
                    float(decision.amount_difference) if decision else 0.0
                ),
            }
            if plan.created:
                inserted[plan.record.id] = values
                continue
            values.update(self._item_values(plan), **self._resolved_values(plan))
            plan.record.write(values)
        if inserted:
            self.env.flush_all()
            bulk_sql.update_rows(self.env.cr, "qtc_psa_item", LINK_COLUMNS, inserted)
            self.env["qtc.psa.item"].browse(inserted).invalidate_recordset(
                list(LINK_COLUMNS)
            )
        for plan in removals:
            if plan.created:  # an early withdrawal: inserted with its values
                continue
            plan.record.write(
                {
                    **self._item_values(plan),
                    "analytic_line_id": False,
                    "quantity": 0.0,
                    "rate_mismatch": False,
                    "rate_difference": 0.0,
                }
            )

    @staticmethod
    def _resolved_values(plan):
        return {
            "project_id": plan.project.id,
            "task_id": plan.task.id,
            "employee_id": plan.employee.id,
            "quantity": float(plan.item.hours),
        }

    @staticmethod
    def _item_values(plan):
        item = plan.item
        return {
            "kind": item.kind,
            "status": item.status,
            "version": item.version or 0,
            "external_updated_at": _naive(item.updated_at),
            "date": item.date,
            "billable": rules.is_billable(item),
            "payload": json.dumps(item.as_dict(), separators=(",", ":")),
            "psa_rate": float(item.rate) if item.rate is not None else 0.0,
            "correlation_id": plan.event.correlation_id,
        }

    def _trace(self, plan, record, operation, note):
        """The values of one trace line (as ``qtc.trace._qtc_record`` writes it)."""
        return {
            "correlation_id": plan.event.correlation_id,
            "event_id": plan.event.id,
            "job_id": self.env.context.get("qtc_job_id") or False,
            "backend_id": self.backend.id,
            "res_model": record._name,
            "res_id": record.id,
            "res_name": (record.display_name or "")[:250],
            "operation": operation,
            "note": note,
        }

    # ----------------------------------------------------- single-item path

    def _apply_sequential(self, pairs, outcomes, failures):
        """Each item through ``_psa_apply`` in its own savepoint, in event order."""
        items_model = self.env["qtc.psa.item"]
        for event, item in sorted(pairs, key=lambda pair: pair[0].id):
            context = {
                "qtc_correlation_id": event.correlation_id,
                "qtc_event_id": event.id,
            }
            try:
                with self.env.cr.savepoint():
                    text = items_model.with_context(**context)._psa_apply(
                        self.backend.with_context(**context), item
                    )
            except BUSINESS_ERRORS as error:
                failures[event.id] = (event, error)
            else:
                outcomes[event.id] = ("done", text)

    def _open_exceptions(self, failures, outcomes):
        """One exception per refused item, once nothing will be rolled back."""
        exceptions = self.env["qtc.exception"]
        for event_id, (event, error) in failures.items():
            business = (
                error if isinstance(error, BusinessError) else BusinessError(str(error))
            )
            exceptions._qtc_open(
                business,
                backend=self.backend,
                event=event,
                correlation_id=event.correlation_id,
            )
            outcomes[event_id] = ("failed", str(error))


def _naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value else False
