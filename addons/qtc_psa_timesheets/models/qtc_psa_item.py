"""The Odoo side of one PSA work item, and the service that applies its deliveries.

One ``qtc.psa.item`` per (backend, external id) keeps the last applied delivery
(normalised JSON), what it produced (a timesheet, an expense line, a delivered
milestone quantity) and whether that was invoiced. It survives a withdrawal, so
a late, older delivery arriving after the withdrawal is recognised as stale
instead of re-creating the timesheet. ``lib/billing_rules.correction_action``
decides what each new delivery does; this module only carries it out.

What each kind produces:

- time: an ``account.analytic.line`` timesheet on the project and task; Odoo's
  sale_timesheet links it to the sale order line and computes the delivered
  hours. A non-billable item gets no sale order line (``is_so_line_edited``, so
  Odoo does not put one back).
- expense: a sale order line of the backend's expense product on the project's
  order (one line per expense) and an analytic line that delivers it, the way
  Odoo re-invoices vendor bill costs (delivered method "analytic"). The price is
  the PSA amount (product policy "at cost") or the product's sales price
  ("sales price"); policy "no" records the expense without billing it.
- milestone: one unit added to the delivered quantity of a manually delivered
  sale order line (mapped via ``psa.milestone``); a withdrawal takes it back.
"""

import json
from datetime import UTC
from decimal import Decimal

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.osv import expression
from odoo.tools import float_compare

from .. import const
from ..lib import billing_rules as rules
from ..lib import billing_writeback as billing
from ..lib import work_item as wi

# The job that writes a billing change back decides what the item shows.
WRITEBACK_STATE_BY_JOB_STATE = {
    "pending": "pending",
    "started": "pending",
    "done": "sent",
    "failed": "failed",
    "dead": "failed",
    "cancelled": "failed",
}


def _naive(value):
    return value.astimezone(UTC).replace(tzinfo=None) if value else False


def _like_literal(text):
    """``text`` as a LIKE pattern matching itself only (``_`` and ``%`` are
    wildcards otherwise: ``a_b@x.com`` would match ``axb@x.com``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class QtcPsaItem(models.Model):
    _name = "qtc.psa.item"
    _description = "PSA Work Item"
    _order = "id desc"
    _rec_name = "external_id"

    backend_id = fields.Many2one(
        "qtc.backend", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    external_id = fields.Char(required=True, readonly=True)
    kind = fields.Selection(
        [
            (wi.KIND_TIME, "Time"),
            (wi.KIND_EXPENSE, "Expense"),
            (wi.KIND_MILESTONE, "Milestone"),
        ],
        required=True,
        readonly=True,
    )
    status = fields.Selection(
        [(wi.STATUS_APPROVED, "Approved"), (wi.STATUS_WITHDRAWN, "Withdrawn")],
        required=True,
        readonly=True,
    )
    version = fields.Integer(readonly=True)
    external_updated_at = fields.Datetime(readonly=True)
    date = fields.Date(readonly=True)
    billable = fields.Boolean(readonly=True)
    payload = fields.Text(readonly=True, help="The last applied delivery.")
    project_id = fields.Many2one("project.project", readonly=True, index=True)
    task_id = fields.Many2one("project.task", readonly=True)
    employee_id = fields.Many2one("hr.employee", readonly=True)
    analytic_line_id = fields.Many2one(
        "account.analytic.line",
        string="Timesheet / cost line",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
    )
    sale_line_id = fields.Many2one(
        "sale.order.line",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="Expense line or milestone line this item delivered.",
    )
    quantity = fields.Float(
        readonly=True, help="What the item delivers: hours, or one unit."
    )
    psa_rate = fields.Float(string="PSA rate", readonly=True)
    rate_mismatch = fields.Boolean(
        readonly=True,
        help="The PSA rate differed from the order price; billed at the order price.",
    )
    rate_difference = fields.Float(
        readonly=True, help="What the PSA rate would have billed more (or less)."
    )
    correlation_id = fields.Char(readonly=True, index=True)
    invoiced = fields.Boolean(compute="_compute_invoiced")
    # Billing write-back: set when an invoice that bills the item is posted,
    # cancelled or reversed (account_move.py); what the PSA is told.
    billed_invoice_id = fields.Many2one(
        "account.move",
        string="Billed on",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        copy=False,
        help="The last customer invoice that billed this item.",
    )
    billed_state = fields.Selection(
        [
            ("posted", "Invoiced"),
            ("cancel", "Invoice cancelled"),
            ("reversed", "Invoice reversed"),
        ],
        string="Billing",
        readonly=True,
        copy=False,
    )
    writeback_job_id = fields.Many2one(
        "qtc.job",
        string="Write-back job",
        readonly=True,
        ondelete="set null",
        copy=False,
        help="The job that tells the PSA about the last billing change.",
    )
    writeback_state = fields.Selection(
        [("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed")],
        string="Write-back",
        compute="_compute_writeback_state",
        search="_search_writeback_state",
        help="Whether the PSA was told about the last billing change (its job's "
        "state). Empty: nothing to send (no callback URL, or not billed).",
    )

    _sql_constraints = [
        (
            "backend_external_uniq",
            "unique(backend_id, external_id)",
            "A PSA item is kept once per backend.",
        )
    ]

    @api.depends(
        "analytic_line_id.timesheet_invoice_id.state",
        "sale_line_id.qty_invoiced",
        "sale_line_id.qty_delivered",
    )
    def _compute_invoiced(self):
        for item in self:
            item.invoiced = item._psa_is_invoiced()

    @api.depends("writeback_job_id.state")
    def _compute_writeback_state(self):
        for item in self:
            item.writeback_state = WRITEBACK_STATE_BY_JOB_STATE.get(
                item.writeback_job_id.state
            )

    def _search_writeback_state(self, operator, value):
        if operator not in ("=", "!=", "in", "not in"):
            raise NotImplementedError(operator)
        wanted = {value} if isinstance(value, str) or not value else set(value)
        job_states = [
            job_state
            for job_state, state in WRITEBACK_STATE_BY_JOB_STATE.items()
            if state in wanted
        ]
        domain = [("writeback_job_id.state", "in", job_states)]
        if False in wanted or None in wanted:
            domain = expression.OR([domain, [("writeback_job_id", "=", False)]])
        if operator in ("!=", "not in"):
            domain = ["!", *expression.normalize_domain(domain)]
        return domain

    def _psa_billing_entry(self, invoice):
        """This item as a billing write-back lists it: the delivery that was
        billed (version or updated_at as the PSA sent it) and what was billed.
        """
        self.ensure_one()
        delivered = json.loads(self.payload or "{}")
        measure = {}
        if self.kind == wi.KIND_TIME:
            measure["hours"] = self.quantity
        elif self.kind == wi.KIND_EXPENSE:
            lines = invoice.invoice_line_ids.filtered(
                lambda line: self.sale_line_id in line.sale_line_ids
            )
            measure["amount"] = sum(lines.mapped("price_subtotal"))
            measure["currency"] = invoice.currency_id.name
        else:
            measure["quantity"] = self.quantity
        return billing.item_entry(
            self.external_id,
            self.kind,
            version=delivered.get("version"),
            updated_at=delivered.get("updated_at"),
            **measure,
        )

    # ----------------------------------------------------------------- state

    def _psa_is_invoiced(self):
        """True when what the item produced is on a (non-cancelled) invoice."""
        self.ensure_one()
        if self.kind == wi.KIND_TIME:
            invoice = self.analytic_line_id.timesheet_invoice_id
            return bool(invoice and invoice.state != "cancel")
        line = self.sale_line_id
        if not line:
            return False
        if self.kind == wi.KIND_EXPENSE:
            return line.qty_invoiced > 0
        # Milestone: taking this item's unit back would leave less delivered
        # than already invoiced.
        rounding = line.product_uom.rounding
        return (
            float_compare(
                line.qty_invoiced,
                line.qty_delivered - self.quantity,
                precision_rounding=rounding,
            )
            > 0
        )

    def _psa_invoices(self):
        self.ensure_one()
        if self.kind == wi.KIND_TIME:
            return self.analytic_line_id.timesheet_invoice_id
        return self.sale_line_id.invoice_lines.move_id.filtered(
            lambda move: move.state != "cancel"
        )

    def _psa_previous_state(self):
        self.ensure_one()
        item = wi.validate_work_item(json.loads(self.payload))
        return rules.PreviousState(item, invoiced=self._psa_is_invoiced())

    # ----------------------------------------------------------------- apply

    @api.model
    def _psa_apply(self, backend, item):
        """Apply one delivery of a work item; idempotent.

        :param backend: the ``qtc.backend`` it came from
        :param item: a validated ``WorkItem``
        :returns: a short text of what was done
        :raises BusinessError: unknown project or employee (mapping,
            unknown_record), lock date, rate under the ``raise`` policy,
            correction of an invoiced item (credit_note)
        """
        record = self.search(
            [("backend_id", "=", backend.id), ("external_id", "=", item.external_id)],
            limit=1,
        )
        previous = record._psa_previous_state() if record else None
        try:
            action = rules.correction_action(previous, item)
        except rules.OrderingError as exc:
            raise BusinessError(
                str(exc), category="data", records=[(self._name, record.id)]
            ) from None
        key = wi.idempotency_key(item)
        # A withdrawal that overtakes the approval it withdraws changes nothing,
        # but is kept: the approval, arriving later with an older version, is
        # then recognised as stale instead of creating the timesheet.
        remember = rules.is_early_withdrawal(previous, item)
        if action in (rules.Action.NOOP, rules.Action.STALE) and not remember:
            note = (
                _("older than the applied delivery")
                if action == rules.Action.STALE
                else _("already applied")
            )
            if record:
                self.env["qtc.trace"]._qtc_record(record, "skipped", note=note)
            return f"{key}: {action.value} ({note})"
        if action == rules.Action.CREDIT_NOTE_REQUIRED:
            raise record._psa_credit_note_error(previous.item, item)
        if not record:
            record = self.create(
                {
                    "backend_id": backend.id,
                    "external_id": item.external_id,
                    "kind": item.kind,
                    "status": item.status,
                    "payload": "{}",
                }
            )
        apply_kind = {
            wi.KIND_TIME: record._psa_apply_time,
            wi.KIND_EXPENSE: record._psa_apply_expense,
            wi.KIND_MILESTONE: record._psa_apply_milestone,
        }[item.kind]
        if remember:
            outcome = _("withdrawal kept (it arrived before its approval)")
        elif action == rules.Action.REMOVE or item.status == wi.STATUS_WITHDRAWN:
            outcome = record._psa_remove()
        elif previous and previous.invoiced:
            # Only fields that do not change the invoice differ (correction_action).
            outcome = record._psa_update_description(item)
        else:
            outcome = apply_kind(backend, item)
        record.write(
            {
                "kind": item.kind,
                "status": item.status,
                "version": item.version or 0,
                "external_updated_at": _naive(item.updated_at),
                "date": item.date,
                "billable": rules.is_billable(item),
                "payload": json.dumps(item.as_dict(), separators=(",", ":")),
                "psa_rate": float(item.rate) if item.rate is not None else 0.0,
                "correlation_id": self.env.context.get("qtc_correlation_id"),
            }
        )
        self.env["qtc.binding"]._qtc_bind(
            backend,
            const.BINDING_ITEM,
            item.external_id,
            record,
            updated_at=_naive(item.updated_at) or None,
            payload=item.as_dict(),
        )
        self.env["qtc.trace"]._qtc_record(
            record, "created" if action == rules.Action.CREATE else "updated", outcome
        )
        return f"{key}: {action.value} ({outcome})"

    # ------------------------------------------------------------ resolution

    @api.model
    def _psa_resolve_many(self, backend, binding_type, map_code, refs, model):
        """PSA references -> Odoo records, a few queries for any number of refs.

        A binding wins (set by a person linking from an exception), else the
        value map. Shared by the single-item path and the batch applier.

        :param refs: PSA references (an iterable of strings)
        :param model: the Odoo model the references must map to
        :returns: ``{ref: record | None | BusinessError}``; ``None`` when
            unknown, a ``BusinessError`` when mapped to something unusable
        """
        refs = {ref for ref in refs if ref}
        found = {}
        if not refs:
            return found
        bindings = self.env["qtc.binding"].search(
            [
                ("backend_id", "=", backend.id),
                ("external_type", "=", binding_type),
                ("external_id", "in", list(refs)),
            ]
        )
        for res_model, group in bindings.grouped("res_model").items():
            if res_model not in self.env:
                continue
            targets = self.env[res_model].browse(group.mapped("res_id"))
            existing = set(targets.exists().ids)
            for binding in group:
                if binding.res_id in existing:
                    found[binding.external_id] = self.env[res_model].browse(
                        binding.res_id
                    )
        unbound = refs - set(found)
        value_map = (
            self.env["qtc.value.map"]._qtc_find(map_code, backend)
            if unbound and map_code
            else None
        )
        if value_map:
            lines = self.env["qtc.value.map.line"].search(
                [("map_id", "=", value_map.id), ("external_value", "in", list(unbound))]
            )
            target = value_map.target_model
            existing = (
                set(self.env[target].browse(lines.mapped("res_id")).exists().ids)
                if target and target in self.env
                else set()
            )
            for line in lines:
                if target and line.res_id in existing:
                    found[line.external_value] = self.env[target].browse(line.res_id)
                    continue
                try:  # the base's own wording for a dangling or plain value
                    found[line.external_value] = line._qtc_value()
                except BusinessError as error:
                    found[line.external_value] = error
        for ref, record in found.items():
            if isinstance(record, BusinessError) or getattr(record, "_name", None) == (
                model
            ):
                continue
            found[ref] = BusinessError(
                _(
                    "PSA reference %(ref)r maps to a %(got)s, expected a %(model)s.",
                    ref=ref,
                    got=getattr(record, "_name", type(record).__name__),
                    model=model,
                ),
                category="mapping",
            )
        return found

    def _psa_resolve(self, backend, binding_type, map_code, ref, model):
        """One PSA reference -> Odoo record, or None when unknown.

        :raises BusinessError: mapped to something that is not a ``model``
        """
        record = self._psa_resolve_many(backend, binding_type, map_code, [ref], model)
        record = record.get(ref)
        if isinstance(record, BusinessError):
            raise record
        return record or None

    @api.model
    def _psa_project_error(self, project_ref):
        message = _(
            "PSA project %(ref)r is not mapped to an Odoo project.",
            ref=project_ref,
        )
        return BusinessError(
            message,
            category="mapping",
            problems=[message],
            suggested_action=_(
                "Add it to the value map 'PSA projects' (%(code)s) or link this "
                "exception to the project, then retry.",
                code=const.MAP_PROJECT,
            ),
            external_ref=(const.BINDING_PROJECT, project_ref),
        )

    @api.model
    def _psa_task_error(self, task_ref, task, project):
        return BusinessError(
            _(
                "PSA task %(task)r maps to %(name)s, which is not in project "
                "%(project)s.",
                task=task_ref,
                name=task.display_name,
                project=project.display_name,
            ),
            category="mapping",
            records=[("project.task", task.id)],
        )

    def _psa_project(self, backend, item):
        project = self._psa_resolve(
            backend,
            const.BINDING_PROJECT,
            const.MAP_PROJECT,
            item.project_ref,
            "project.project",
        )
        if project:
            return project
        raise self._psa_project_error(item.project_ref)

    def _psa_task(self, backend, item, project):
        if not item.task_ref:
            return self.env["project.task"]
        task = self._psa_resolve(
            backend,
            const.BINDING_TASK,
            const.MAP_TASK,
            item.task_ref,
            "project.task",
        )
        if not task:
            # An unmapped task: the time goes on the project, whose sale order
            # line Odoo then uses (the trace says so).
            return self.env["project.task"]
        if task.project_id != project:
            raise self._psa_task_error(item.task_ref, task, project)
        return task

    @api.model
    def _psa_employees(self, backend, emails):
        """Work emails -> employees of the backend's company (or shared), in
        two queries for any number of emails; a binding wins.

        :param emails: lower-case emails (``work_item`` normalises them)
        :returns: ``{email: hr.employee | BusinessError}`` (unknown or several
            employees with that email: a business error naming it)
        """
        emails = {email for email in emails if email}
        found = {}
        if not emails:
            return found
        bound = self._psa_resolve_many(
            backend, const.BINDING_EMPLOYEE, None, emails, "hr.employee"
        )
        found.update({email: rec for email, rec in bound.items() if rec is not None})
        unbound = sorted(emails - set(found))
        matches = {}
        if unbound:
            employees = (
                self.env["hr.employee"]
                .with_context(active_test=True)
                .search(
                    expression.AND(
                        [
                            [("company_id", "in", [backend.company_id.id, False])],
                            expression.OR(
                                [
                                    [("work_email", "=ilike", _like_literal(email))]
                                    for email in unbound
                                ]
                            ),
                        ]
                    )
                )
            )
            for employee in employees:
                key = (employee.work_email or "").strip().lower()
                matches[key] = matches.get(key, employee.browse()) | employee
        for email in unbound:
            employees = matches.get(email)
            if employees and len(employees) == 1:
                found[email] = employees
                continue
            if employees:
                message = _(
                    "Several employees have the work email %(email)s.", email=email
                )
            else:
                message = _("No employee has the work email %(email)s.", email=email)
            found[email] = BusinessError(
                message,
                category="unknown_record",
                problems=[message],
                suggested_action=_(
                    "Set the work email on the employee (or link this exception to "
                    "the employee), then retry."
                ),
                external_ref=(const.BINDING_EMPLOYEE, email),
            )
        return found

    def _psa_employee(self, backend, item):
        employee = self._psa_employees(backend, [item.employee_email])[
            item.employee_email
        ]
        if isinstance(employee, BusinessError):
            raise employee
        return employee

    @api.model
    def _psa_lock_date(self, company):
        """The latest accounting lock date of ``company``, or None."""
        company = company.sudo()
        locks = [
            lock
            for lock in (
                company.fiscalyear_lock_date,
                company.sale_lock_date,
                company.hard_lock_date,
            )
            if lock
        ]
        return max(locks) if locks else None

    @api.model
    def _psa_lock_error(self, company, lock, dates, external_id):
        """The business error for a change dated on or before ``lock``, or None.

        :param lock: ``_psa_lock_date(company)`` (computed once per batch)
        """
        if not lock:
            return None
        locked = sorted({day for day in dates if day and day <= lock})
        if not locked:
            return None
        message = _(
            "Work item %(item)s is dated %(date)s, on or before the accounting "
            "lock date %(lock)s of %(company)s.",
            item=external_id,
            date=locked[0],
            lock=lock,
            company=company.sudo().name,
        )
        return BusinessError(
            message,
            category="data",
            problems=[message],
            suggested_action=_(
                "Book the correction in an open period in the PSA, or ask "
                "an accountant to move the lock date; then retry."
            ),
        )

    def _psa_check_lock(self, company, dates):
        """Refuse changes dated on or before the company's accounting lock."""
        error = self._psa_lock_error(
            company, self._psa_lock_date(company), dates, self.external_id
        )
        if error:
            raise error

    # ------------------------------------------------------------------ kinds

    def _psa_apply_time(self, backend, item):
        self.ensure_one()
        project = self._psa_project(backend, item)
        task = self._psa_task(backend, item, project)
        employee = self._psa_employee(backend, item)
        line = self.analytic_line_id
        self._psa_check_lock(project.company_id, [item.date, line.date])
        billable = rules.is_billable(item)
        values = {
            "name": item.description or "/",
            "project_id": project.id,
            "task_id": task.id,
            "employee_id": employee.id,
            "date": item.date,
            "unit_amount": float(item.hours),
        }
        if not billable:
            values.update(so_line=False, is_so_line_edited=True)
        timesheets = self.env["account.analytic.line"]
        if line:
            line.write(values)
            if billable:
                # Odoo recomputes the sale line only on project/task changes;
                # a line made billable again needs it set explicitly.
                sale_line = (
                    line._timesheet_determine_sale_line()
                    if project.allow_billable
                    else False
                )
                line.write(
                    {
                        "is_so_line_edited": False,
                        "so_line": sale_line.id if sale_line else False,
                    }
                )
            operation = "updated"
        else:
            line = timesheets.create({**values, "psa_item_id": self.id})
            operation = "created"
        note = self._psa_rate_guard(backend, item, line.so_line)
        if billable and not line.so_line:
            note = _("no sale order line on the project: recorded, not billed")
        elif not billable:
            note = _("not billable: recorded without sale order line")
        self.env["qtc.trace"]._qtc_record(line, operation, note=note)
        self.write(
            {
                "analytic_line_id": line.id,
                "sale_line_id": line.so_line.id,
                "project_id": project.id,
                "task_id": task.id,
                "employee_id": employee.id,
                "quantity": float(item.hours),
            }
        )
        return note or _("timesheet %s", operation)

    def _psa_rate_guard(self, backend, item, so_line):
        """Compare the PSA rate with the order price (lib decide) and flag or
        refuse; returns a note when flagged."""
        self.rate_mismatch = False
        self.rate_difference = 0.0
        decision = self._psa_rate_decision(backend, item, so_line)
        if not decision:
            return None
        note = self._psa_rate_note(item, so_line, decision)
        self.rate_mismatch = True
        self.rate_difference = float(decision.amount_difference)
        so_line.order_id.message_post(
            body=_("%(item)s: %(note)s.", item=item.external_id, note=note)
        )
        return note

    @api.model
    def _psa_rate_decision(self, backend, item, so_line):
        """The billing decision when the PSA rate differs from the order
        price, else None (nothing to flag).

        :raises BusinessError: (rate) under the backend's ``raise`` policy
        """
        if not (so_line and rules.is_billable(item)):
            return None
        try:
            decision = rules.decide(
                item,
                Decimal(repr(so_line.price_unit)),
                backend.psa_rate_policy,
                decimals=so_line.currency_id.decimal_places,
            )
        except rules.RateMismatchError as exc:
            message = _(
                "Work item %(item)s: PSA rate %(rate)s differs from the price "
                "%(price)s of %(line)s.",
                item=item.external_id,
                rate=exc.item_rate,
                price=exc.order_price,
                line=so_line.display_name,
            )
            raise BusinessError(
                message,
                category="rate",
                problems=[message],
                suggested_action=_(
                    "Correct the rate in the PSA or the order price, or bill at "
                    "the order price (backend setting); then retry."
                ),
                records=[("sale.order.line", so_line.id)],
            ) from None
        return decision if decision.rate_mismatch else None

    @api.model
    def _psa_rate_note(self, item, so_line, decision):
        return _(
            "PSA rate %(rate)s differs from the order price %(price)s: billed at "
            "the order price (difference %(diff)s)",
            rate=item.rate,
            price=Decimal(repr(so_line.price_unit)),
            diff=decision.amount_difference,
        )

    def _psa_apply_expense(self, backend, item):
        self.ensure_one()
        project = self._psa_project(backend, item)
        employee = self._psa_employee(backend, item)
        cost_line = self.analytic_line_id
        self._psa_check_lock(project.company_id, [item.date, cost_line.date])
        values = {
            "project_id": project.id,
            "employee_id": employee.id,
            "quantity": 1.0,
        }
        product = backend.psa_expense_product_id
        if not rules.is_billable(item):
            self._psa_clear_cost_line()
            self.write(values)
            return _("not billable: recorded, not re-invoiced")
        if not product:
            raise BusinessError(
                _(
                    "Backend %s has no expense product to re-invoice expenses with.",
                    backend.name,
                ),
                category="configuration",
                suggested_action=_("Set the expense product on the backend; retry."),
            )
        if product.expense_policy not in ("cost", "sales_price"):
            self._psa_clear_cost_line()
            self.write(values)
            return _("expense product is not re-invoiced: recorded only")
        order = project.sale_line_id.order_id
        if not order:
            raise BusinessError(
                _(
                    "Project %s has no sale order to re-invoice the expense on.",
                    project.display_name,
                ),
                category="data",
                records=[("project.project", project.id)],
            )
        try:
            decision = rules.decide(
                item,
                None,
                backend.psa_rate_policy,
                order_currency=order.currency_id.name,
                decimals=order.currency_id.decimal_places,
            )
        except rules.CurrencyMismatchError as exc:
            raise BusinessError(
                str(exc), category="data", records=[("sale.order", order.id)]
            ) from None
        sale_line = self.sale_line_id
        if sale_line and sale_line.order_id != order:
            self._psa_clear_cost_line()
            sale_line = self.env["sale.order.line"]
        line_values = {"name": item.description or product.display_name}
        if product.expense_policy == "cost":
            line_values["price_unit"] = float(decision.unit_price)
        if sale_line:
            sale_line.write(line_values)
        else:
            sale_line = self.env["sale.order.line"].create(
                {
                    **line_values,
                    "order_id": order.id,
                    "product_id": product.id,
                    "product_uom_qty": 0.0,
                    "is_expense": True,
                }
            )
            self.env["qtc.trace"]._qtc_record(sale_line, "created")
        cost_values = {
            "name": item.description or product.display_name,
            "date": item.date,
            "amount": -float(decision.subtotal),
            "unit_amount": 1.0,
            "product_id": product.id,
            "product_uom_id": product.uom_id.id,
            "so_line": sale_line.id,
            # Not a timesheet: keep Odoo from recomputing its sale line.
            "is_so_line_edited": True,
            "account_id": project.account_id.id,
        }
        cost_line = self.analytic_line_id
        if cost_line:
            cost_line.write(cost_values)
            operation = "updated"
        else:
            if not project.account_id:
                raise BusinessError(
                    _("Project %s has no analytic account.", project.display_name),
                    category="configuration",
                    records=[("project.project", project.id)],
                )
            cost_line = self.env["account.analytic.line"].create(
                {**cost_values, "psa_item_id": self.id}
            )
            operation = "created"
        self.env["qtc.trace"]._qtc_record(cost_line, operation)
        self.write(
            {
                **values,
                "analytic_line_id": cost_line.id,
                "sale_line_id": sale_line.id,
            }
        )
        return _("expense re-invoiced on %s", order.name)

    def _psa_clear_cost_line(self):
        if self.analytic_line_id:
            self.env["qtc.trace"]._qtc_record(self.analytic_line_id, "reversed")
            self.analytic_line_id.unlink()

    def _psa_apply_milestone(self, backend, item):
        self.ensure_one()
        project = self._psa_project(backend, item)
        line = self._psa_resolve(
            backend,
            const.BINDING_MILESTONE,
            const.MAP_MILESTONE,
            item.milestone_ref,
            "sale.order.line",
        )
        if not line:
            message = _(
                "PSA milestone %(ref)r is not mapped to a sale order line.",
                ref=item.milestone_ref,
            )
            raise BusinessError(
                message,
                category="mapping",
                problems=[message],
                suggested_action=_(
                    "Add it to the value map %(code)s or link this exception to "
                    "the milestone's sale order line, then retry.",
                    code=const.MAP_MILESTONE,
                ),
                external_ref=(const.BINDING_MILESTONE, item.milestone_ref),
            )
        if line.qty_delivered_method != "manual":
            raise BusinessError(
                _(
                    "Sale order line %s is not delivered manually; a milestone "
                    "can only set the delivered quantity of a manual line.",
                    line.display_name,
                ),
                category="mapping",
                records=[("sale.order.line", line.id)],
            )
        self._psa_check_lock(line.company_id, [item.date, self.date])
        target = 1.0 if rules.is_billable(item) else 0.0
        if self.sale_line_id and self.sale_line_id != line:
            self._psa_remove()
        current = self.quantity if self.sale_line_id == line else 0.0
        if target != current:
            line.qty_delivered += target - current
            self.env["qtc.trace"]._qtc_record(
                line, "updated", note=_("delivered %+g", target - current)
            )
        self.write(
            {"project_id": project.id, "sale_line_id": line.id, "quantity": target}
        )
        return _("milestone delivered on %s", line.order_id.name)

    def _psa_remove(self):
        """Undo what the item produced (not invoiced: correction_action said)."""
        self.ensure_one()
        self._psa_check_lock(self.company_id, [self.date])
        if self.kind == wi.KIND_MILESTONE:
            line = self.sale_line_id
            if line and self.quantity:
                line.qty_delivered -= self.quantity
                self.env["qtc.trace"]._qtc_record(
                    line, "reversed", note=_("delivered -%g", self.quantity)
                )
            self.write({"quantity": 0.0})
            return _("milestone delivery withdrawn")
        line = self.analytic_line_id
        if line:
            self.env["qtc.trace"]._qtc_record(line, "reversed")
            line.unlink()
        self.write({"quantity": 0.0, "rate_mismatch": False, "rate_difference": 0})
        return _("withdrawn: line removed")

    def _psa_update_description(self, item):
        """An invoiced item whose new version changes nothing billable: only
        the description is refreshed (Odoo allows it on invoiced lines)."""
        self.ensure_one()
        line = self.analytic_line_id
        if line and item.description and line.name != item.description:
            line.name = item.description
            self.env["qtc.trace"]._qtc_record(line, "updated", note=_("description"))
        return _("invoiced: description only")

    def _psa_credit_note_error(self, previous, item):
        """The business error for a correction of an invoiced item."""
        self.ensure_one()
        invoices = self._psa_invoices()
        # Field names and values as the PSA sent them: not translated.
        changes = [
            f"{name}: {getattr(previous, name)} -> {getattr(item, name)}"
            for name in rules.BILLING_FIELDS
            if getattr(previous, name) != getattr(item, name)
        ]
        message = _(
            "Work item %(item)s was already invoiced on %(invoices)s; the "
            "correction (version %(version)s) is not applied.",
            item=item.external_id,
            invoices=", ".join(invoices.mapped("name")) or _("an invoice"),
            version=item.version if item.version is not None else item.updated_at,
        )
        return BusinessError(
            message,
            category="credit_note",
            problems=changes,
            suggested_action=_(
                "Issue a credit note on the invoice for the corrected amount (and "
                "re-invoice if needed), then mark this exception as ignored with "
                "the credit note's reference."
            ),
            records=[("account.move", invoices[:1].id)]
            if invoices
            else [(self._name, self.id)],
        )
