"""Every public method of the suite is an endpoint: the role matrix.

Any logged-in user can call any public method (no leading ``_``) of any model
through JSON-RPC, whatever the views show. This guard finds every public
method a ``qtc_*`` addon defines on any model (its own models and its
extensions of Odoo's), calls each over ``/web/dataset/call_kw`` as six roles,
and compares the outcome with ``MATRIX``: the roles an entry needs succeed
(or, for ``passes_with``, get past the access checks to the method's own
business guard), every other role gets an ``AccessError``.

A public method missing from ``MATRIX`` fails the test, naming it: a new
endpoint is a decision, taken here. Entries of addons that are not installed
are skipped.
"""

import json
import logging
import uuid
from dataclasses import dataclass, field

from odoo import Command
from odoo.tests import new_test_user, tagged

from ..access import GROUP_MANAGER, GROUP_USER
from ..lib.errors import BusinessError
from ..models.qtc_backend import InboundEvent
from .common import QtcHttpCase

_logger = logging.getLogger(__name__)

# Groups an entry may need (all of them); a role succeeds when its user is in
# every one. The admin is in all.
USER = GROUP_USER
MANAGER = GROUP_MANAGER
INTERNAL = "base.group_user"
SYSTEM = "base.group_system"
CONTACTS = "base.group_partner_manager"
INVOICING = "account.group_account_invoice"
SALES = "sales_team.group_sale_salesman"
TIMESHEETS = "hr_timesheet.group_hr_timesheet_approver"
# Nobody: a method of an abstract model has no record to run on.
NOBODY = "nobody"

ROLES = ("portal", "internal", "invoicing", "user", "manager", "admin")
ROLE_GROUPS = {
    "portal": "base.group_portal",
    "internal": INTERNAL,
    "invoicing": INVOICING,
    "user": USER,
    "manager": MANAGER,
}

USER_ERROR = "odoo.exceptions.UserError"


@dataclass(frozen=True)
class Rule:
    """Who may call a method, and on what.

    :param needs: the groups a caller needs (all of them)
    :param on: the name of the factory (``TestRoleMatrix.on_<name>``) that
        gives the call's records and arguments, made for each call
    :param args: positional arguments after the records (JSON values)
    :param passes_with: the error the method's own guard raises for the
        roles that pass its access checks on that record (``None``: they
        succeed)
    """

    needs: tuple
    on: str
    args: tuple = ()
    passes_with: str = None
    kwargs: dict = field(default_factory=dict)


def rule(needs, on, *args, passes_with=None, **kwargs):
    needs = (needs,) if isinstance(needs, str) else tuple(needs)
    return Rule(needs, on, args, passes_with, kwargs)


# fmt: off
MATRIX = {
    # ---------------------------------------------------------------- backends
    # Configuration and connector operations: QTC Managers.
    "qtc.backend.action_activate": rule(MANAGER, "fresh_backend"),
    "qtc.backend.action_disable": rule(MANAGER, "fresh_backend"),
    "qtc.backend.action_reset_draft": rule(MANAGER, "fresh_backend"),
    "qtc.backend.action_test_connection": rule(MANAGER, "backend"),
    "qtc.backend.action_end_secret_rotation": rule(MANAGER, "backend"),
    "qtc.backend.create": rule(MANAGER, "backend_values"),
    "qtc.backend.write": rule(MANAGER, "backend", {"sequence": 7}),
    "qtc.backend.unlink": rule(MANAGER, "fresh_backend"),
    "qtc.backend.action_harvest_sync_now": rule(MANAGER, "harvest_backend"),
    "qtc.backend.action_salesforce_sync_now": rule(MANAGER, "salesforce_backend"),
    "qtc.backend.action_tax_reset_breaker": rule(MANAGER, "tax_backend"),
    # Navigation from a backend's form: QTC Users who can read the backend.
    "qtc.backend.action_view_jobs": rule(USER, "backend"),
    "qtc.backend.action_view_events": rule(USER, "backend"),
    "qtc.backend.action_view_exceptions": rule(USER, "backend"),
    "qtc.backend.action_view_tax_rates": rule(USER, "tax_backend"),
    # ---------------------------------------------------------------- bindings
    # Edited by hand by QTC Managers only; QTC Users read them.
    "qtc.binding.create": rule(MANAGER, "binding_values"),
    "qtc.binding.write": rule(MANAGER, "binding_retarget"),
    "qtc.binding.action_open_record": rule(USER, "binding"),
    # -------------------------------------------------------------- value maps
    "qtc.value.map.write": rule(MANAGER, "value_map", {"name": "Renamed map"}),
    "qtc.value.map.line.create": rule(MANAGER, "value_map_line_values"),
    "qtc.value.map.line.write": rule(MANAGER, "value_map_line", {"value": "45"}),
    # ------------------------------------------------------------ queue, events
    # What a job runs is fixed when it is queued: nobody creates one or
    # rewrites it through the ORM; managers tune its priority and delete
    # finished ones.
    "qtc.job.create": rule(NOBODY, "job_values"),
    "qtc.job.write": rule(MANAGER, "job", {"priority": 5}),
    "qtc.job.unlink": rule(MANAGER, "done_job"),
    "qtc.job.action_requeue": rule(MANAGER, "job"),
    "qtc.job.action_cancel": rule(MANAGER, "job"),
    "qtc.job.action_open_records": rule(USER, "job"),
    # An event is evidence: written by the system only.
    "qtc.event.write": rule(NOBODY, "event", {"payload": "{}"}),
    "qtc.event.action_replay": rule(MANAGER, "event"),
    "qtc.event.action_view_trace": rule(USER, "event"),
    # -------------------------------------------------------------- exceptions
    # Finance users work the queue; editing a payload is a QTC Manager's.
    # People set the responsible and the record to link, nothing else.
    "qtc.exception.write": rule(USER, "exception", {"user_id": False}),
    "qtc.exception.action_retry": rule(USER, "exception_with_job"),
    "qtc.exception.action_link": rule(USER, "exception_to_link"),
    "qtc.exception.action_open_ignore_wizard": rule(USER, "exception"),
    "qtc.exception.action_open_replay_wizard": rule(USER, "exception_with_event"),
    "qtc.exception.action_view_trace": rule(USER, "exception"),
    "qtc.exception.ignore.action_ignore": rule(USER, "ignore_wizard"),
    # A dry run applies with the caller's own rights: QTC Users may. Replaying
    # an unchanged payload is theirs too; saving an edit (as the wizard here
    # does) is a QTC Manager's.
    "qtc.exception.replay.action_dry_run": rule(USER, "replay_wizard"),
    "qtc.exception.replay.action_replay": rule(MANAGER, "replay_wizard"),
    # Not a change order: the method's own guard answers past the checks.
    "qtc.exception.action_salesforce_apply_added_lines": rule(
        USER, "exception", passes_with=USER_ERROR
    ),
    # ------------------------------------------------------------------- trace
    "qtc.trace.action_open_record": rule(USER, "trace_line"),
    "qtc.trace.step.action_open": rule(USER, "trace_step"),
    "qtc.trace.mixin.action_qtc_trace": rule(NOBODY, "nothing"),
    # The Trace button of each traceable model: QTC Users who read the record.
    "res.partner.action_qtc_trace": rule(USER, "partner"),
    "sale.order.action_qtc_trace": rule((USER, SALES), "sale_order"),
    "project.project.action_qtc_trace": rule(USER, "project"),
    "account.move.action_qtc_trace": rule((USER, INVOICING), "draft_invoice"),
    "account.payment.action_qtc_trace": rule((USER, INVOICING), "payment"),
    "account.analytic.line.action_qtc_trace": rule((USER, TIMESHEETS), "timesheet"),
    # ---------------------------------------------------------------- invoices
    # Odoo's own buttons, extended: Odoo's invoicing rights decide.
    "account.move.action_post": rule(INVOICING, "draft_invoice"),
    "account.move.button_draft": rule(INVOICING, "posted_invoice"),
    "account.move.button_cancel": rule(INVOICING, "posted_invoice"),
    "account.move.unlink": rule(INVOICING, "draft_invoice"),
    "account.move.line.reconcile": rule(INVOICING, "invoice_and_payment_lines"),
    "account.move.create": rule(INVOICING, "invoice_values"),
    "account.move.write": rule(INVOICING, "draft_invoice", {"ref": "Matrix ref"}),
    # Ours on invoices: invoicing rights and write access to the invoice. On a
    # draft invoice, past the checks, their own guards refuse it.
    "account.move.action_stripe_payment_link": rule(
        INVOICING, "draft_invoice", passes_with=USER_ERROR
    ),
    "account.move.action_tax_commit": rule(
        INVOICING, "draft_invoice", passes_with=USER_ERROR
    ),
    "account.move.action_tax_quote": rule(
        INVOICING, "posted_invoice", passes_with=USER_ERROR
    ),
    "sale.order.action_tax_quote": rule(
        SALES, "cancelled_sale_order", passes_with=USER_ERROR
    ),
    # ------------------------------------------------------------------ tax
    # The engine checks an address to change it: QTC Users who may edit the
    # partner. No active engine in this set-up: its guard answers.
    "res.partner.action_tax_validate_address": rule(
        (USER, CONTACTS), "partner", passes_with=USER_ERROR
    ),
    "qtc.tax.address.wizard.action_apply": rule((USER, CONTACTS), "address_wizard"),
    "qtc.tax.trueup.action_settle": rule(USER, "trueup"),
    "qtc.tax.trueup.write": rule(USER, "trueup", {"note": "Reviewed"}),
    # ------------------------------------------------------ revenue assurance
    # Finance users measure, drill down and reconcile; managers configure.
    "qtc.assurance.check.action_compute": rule(USER, "assurance_check"),
    "qtc.assurance.check.action_open_records": rule(USER, "measured_check"),
    "qtc.assurance.check.action_view_history": rule(USER, "assurance_check"),
    "qtc.assurance.snapshot.action_open_records": rule(USER, "assurance_snapshot"),
    "qtc.flow.sla.action_compute": rule(USER, "flow_sla"),
    "qtc.flow.sla.action_open_records": rule(USER, "measured_sla"),
    "qtc.flow.sla.action_view_history": rule(USER, "flow_sla"),
    # The test backend offers no reconciliation: past the checks, the run's
    # own guard answers.
    "qtc.reconciliation.run.action_run_again": rule(
        USER, "reconciliation_run", passes_with=USER_ERROR
    ),
    "qtc.reconciliation.run.action_view_exceptions": rule(
        USER, "reconciliation_run"
    ),
    "qtc.reconciliation.wizard.action_run": rule(
        USER, "reconciliation_wizard", passes_with=USER_ERROR
    ),
    "qtc.assurance.dashboard.qtc_dashboard_data": rule(USER, "nothing"),
    "qtc.assurance.dashboard.qtc_dashboard_measure": rule(USER, "nothing"),
    # ----------------------------------------------------------- companies
    # A new company gets its QTC service user; creating one is Odoo's
    # administrators' right.
    "res.company.create": rule(SYSTEM, "company_values"),
    # ------------------------------------------------------------ Odoo crons
    "ir.cron.create": rule(SYSTEM, "cron_values"),
    "ir.cron.write": rule(SYSTEM, "cron", {"interval_number": 2}),
    "ir.cron.unlink": rule(SYSTEM, "cron"),
}
# fmt: on


def suite_public_methods(env):
    """``{"model.method"}`` of every public method a ``qtc_*`` addon defines
    on a model of the registry (its own models and its extensions)."""
    found = set()
    for name in env.registry:
        model_class = type(env[name])
        for cls in model_class.__mro__:
            if not (getattr(cls, "__module__", "") or "").startswith(
                "odoo.addons.qtc_"
            ):
                continue
            for attr, value in vars(cls).items():
                if (
                    attr.startswith("_")
                    or attr == "init"
                    or attr in model_class._fields
                ):
                    continue
                if callable(value) and not isinstance(value, type):
                    found.add(f"{name}.{attr}")
    return found


@tagged("post_install", "-at_install")
class TestRoleMatrix(QtcHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.declare_test_binding_models()
        env = cls.env
        company = env.company
        # The demo's connector backends would quote, hold or call out; the
        # matrix is about who may call what, not about the providers.
        env["qtc.backend"].search([("provider", "!=", "none")]).write(
            {"state": "disabled"}
        )
        cls.users = {"admin": env.ref("base.user_admin")}
        for role, group in ROLE_GROUPS.items():
            if env.ref(group, raise_if_not_found=False):
                cls.users[role] = new_test_user(
                    env,
                    f"qtc_matrix_{role}",
                    groups=group,
                    company_id=company.id,
                    company_ids=[company.id],
                )
        # Any user who can read a backend may follow it, and followers may
        # post on it: every role follows the backends, so that no check rests
        # on mail's rights.
        cls.followers = [user.partner_id.id for user in cls.users.values()]
        cls.backend.message_subscribe(partner_ids=cls.followers)
        cls.partner = env["res.partner"].create({"name": "Matrix customer"})
        cls.other_partner = env["res.partner"].create({"name": "Matrix other"})
        cls.binding = env["qtc.binding"]._qtc_bind(
            cls.backend, "Account", "ACC-MATRIX", cls.partner
        )
        cls.value_map = env["qtc.value.map"].create(
            {
                "name": "Matrix terms",
                "code": "matrix.terms",
                "backend_id": cls.backend.id,
            }
        )
        cls.map_line = env["qtc.value.map.line"].create(
            {"map_id": cls.value_map.id, "external_value": "Net 30", "value": "30"}
        )
        cls.event = cls._store_event()
        cls.exception = cls._open_exception()

    # ------------------------------------------------------------- factories

    @classmethod
    def _store_event(cls):
        """A stored event and its job, as a webhook stores them."""
        external_id = f"evt_matrix_{uuid.uuid4().hex[:12]}"
        stored = cls.backend._qtc_store_events(
            [InboundEvent(external_id, "customer.created", json.dumps({"n": 1}))]
        )
        return cls.env["qtc.event"].browse(stored[external_id])

    @classmethod
    def _open_exception(cls, event=None, job=None, external=None):
        error = BusinessError("Matrix problem", category="data")
        if external:
            error.external_ref = external
        return (
            cls.env["qtc.exception"]
            .sudo()
            ._qtc_open(error, backend=cls.backend, event=event, job=job)
        )

    def _provider_backend(self, provider):
        backend = self.env["qtc.backend"].create(
            {"name": f"Matrix {provider}", "provider": provider}
        )
        backend.message_subscribe(partner_ids=self.followers)
        return backend

    def _owned(self, model, user, values):
        """A record created for ``user`` (wizards are their creator's only)."""
        return self.env[model].with_user(user).sudo().create(values).sudo(False)

    def _invoice(self, post=False):
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.partner.id,
                "invoice_line_ids": [
                    Command.create(
                        {"name": "Matrix work", "quantity": 1, "price_unit": 100}
                    )
                ],
            }
        )
        if post:
            invoice.action_post()
        return invoice

    def on_invoice_values(self, user):
        values = {
            "move_type": "out_invoice",
            "partner_id": self.partner.id,
            "invoice_line_ids": [
                Command.create({"name": "Matrix work", "quantity": 1, "price_unit": 50})
            ],
        }
        return None, [values]

    def _payment(self):
        payment = self.env["account.payment"].create(
            {
                "payment_type": "inbound",
                "partner_type": "customer",
                "partner_id": self.partner.id,
                "amount": 100,
            }
        )
        payment.action_post()
        return payment

    def on_nothing(self, user):
        return None

    def on_backend(self, user):
        return self.backend

    def on_fresh_backend(self, user):
        return self._provider_backend("none")

    def on_harvest_backend(self, user):
        return self._provider_backend("harvest")

    def on_salesforce_backend(self, user):
        return self._provider_backend("salesforce")

    def on_tax_backend(self, user):
        return self._provider_backend("tax_rate_table")

    def on_binding(self, user):
        return self.binding

    def on_backend_values(self, user):
        return None, [{"name": f"Matrix new {uuid.uuid4().hex[:8]}"}]

    def on_binding_values(self, user):
        values = {
            "backend_id": self.backend.id,
            "external_type": "Account",
            "external_id": f"ACC-{uuid.uuid4().hex[:8]}",
            "res_model": "res.partner",
            "res_id": self.partner.id,
        }
        return None, [values]

    def on_binding_retarget(self, user):
        return self.binding, [{"res_id": self.other_partner.id}]

    def on_value_map(self, user):
        return self.value_map

    def on_value_map_line(self, user):
        return self.map_line

    def on_value_map_line_values(self, user):
        values = {
            "map_id": self.value_map.id,
            "external_value": f"Net {uuid.uuid4().hex[:6]}",
            "value": "60",
        }
        return None, [values]

    def on_event(self, user):
        return self.event

    def on_job(self, user):
        return self._store_event().job_ids

    def on_job_values(self, user):
        values = {
            "name": "Matrix job",
            "model_name": "ir.config_parameter",
            "method_name": "set_param",
        }
        return None, [values]

    def on_done_job(self, user):
        job = self._store_event().job_ids
        self.env.cr.execute("UPDATE qtc_job SET state = 'done' WHERE id = %s", job.ids)
        job.invalidate_recordset()
        return job

    def on_exception(self, user):
        return self.exception

    def on_exception_with_job(self, user):
        event = self._store_event()
        return self._open_exception(job=event.job_ids)

    def on_exception_with_event(self, user):
        return self._open_exception(event=self._store_event())

    def on_exception_to_link(self, user):
        exception = self._open_exception(
            external=("customer", f"cus_{uuid.uuid4().hex[:8]}")
        )
        exception.sudo().link_ref = self.partner
        return exception

    def on_ignore_wizard(self, user):
        exception = self._open_exception()
        return self._owned(
            "qtc.exception.ignore",
            user,
            {"exception_ids": [Command.set(exception.ids)], "reason": "Matrix"},
        )

    def on_replay_wizard(self, user):
        exception = self._open_exception(event=self._store_event())
        return self._owned(
            "qtc.exception.replay",
            user,
            {"exception_id": exception.id, "payload": json.dumps({"n": 2})},
        )

    def on_trace_line(self, user):
        [line_id] = self.env["qtc.trace"]._qtc_insert(
            [
                {
                    "backend_id": self.backend.id,
                    "res_model": "res.partner",
                    "res_id": self.partner.id,
                    "res_name": self.partner.name,
                    "operation": "updated",
                }
            ]
        )
        return self.env["qtc.trace"].browse(line_id)

    def on_trace_step(self, user):
        line = self.on_trace_line(user)
        return self.env["qtc.trace.step"].browse(line.id * 3 + 2)

    def on_partner(self, user):
        return self.partner

    def on_sale_order(self, user):
        return self.env["sale.order"].create({"partner_id": self.partner.id})

    def on_cancelled_sale_order(self, user):
        order = self.on_sale_order(user)
        order._action_cancel()
        return order

    def on_project(self, user):
        return self.env["project.project"].create({"name": "Matrix project"})

    def on_timesheet(self, user):
        project = self.on_project(user)
        employee = self.env["hr.employee"].create({"name": "Matrix consultant"})
        return self.env["account.analytic.line"].create(
            {
                "name": "Matrix time",
                "project_id": project.id,
                "employee_id": employee.id,
                "unit_amount": 1,
            }
        )

    def on_draft_invoice(self, user):
        return self._invoice()

    def on_posted_invoice(self, user):
        return self._invoice(post=True)

    def on_payment(self, user):
        return self._payment()

    def on_invoice_and_payment_lines(self, user):
        invoice = self._invoice(post=True)
        payment = self._payment()
        receivable = invoice.line_ids | payment.move_id.line_ids
        return receivable.filtered(
            lambda line: line.account_id.account_type == "asset_receivable"
        )

    def on_address_wizard(self, user):
        return self._owned(
            "qtc.tax.address.wizard",
            user,
            {"partner_id": self.partner.id, "city": "Springfield"},
        )

    def on_trueup(self, user):
        return self.env["qtc.tax.trueup"].create(
            {
                "move_id": self._invoice().id,
                "odoo_tax": 1.0,
                "engine_tax": 2.0,
            }
        )

    def on_assurance_check(self, user):
        checks = self.env["qtc.assurance.check"]
        return checks.search(
            [("code", "=", "none"), ("company_id", "=", self.env.company.id)], limit=1
        ) or checks.create(
            {
                "name": "Matrix check",
                "code": "none",
                "threshold_measure": "count",
                "threshold": 0,
            }
        )

    def on_measured_check(self, user):
        """A check of an installed connector, measured once."""
        check = self.env["qtc.assurance.check"].search(
            [("code", "!=", "none")], limit=1
        )
        if not check.snapshot_id:
            check._qtc_assurance_compute()
        return check

    def on_measured_sla(self, user):
        sla = self.env["qtc.flow.sla"].search([("flow", "!=", "none")], limit=1)
        if not sla.res_model:
            sla._qtc_sla_compute()
        return sla

    def on_assurance_snapshot(self, user):
        return self.on_measured_check(user).snapshot_id

    def on_flow_sla(self, user):
        slas = self.env["qtc.flow.sla"]
        return slas.search(
            [("flow", "=", "none"), ("company_id", "=", self.env.company.id)], limit=1
        ) or slas.create(
            {
                "name": "Matrix service level",
                "flow": "none",
                "target_hours": 24,
                "percentile": "p90",
            }
        )

    def on_reconciliation_run(self, user):
        return (
            self.env["qtc.reconciliation.run"]
            .sudo()
            .create(
                {
                    "kind": "none",
                    "backend_id": self.backend.id,
                    "date_from": "2026-01-01",
                    "date_to": "2026-01-31",
                }
            )
            .sudo(False)
        )

    def on_reconciliation_wizard(self, user):
        return self._owned(
            "qtc.reconciliation.wizard",
            user,
            {"backend_id": self.backend.id, "kind": "none"},
        )

    def on_company_values(self, user):
        return None, [{"name": f"Matrix company {uuid.uuid4().hex[:6]}"}]

    def on_cron(self, user):
        return self.env["ir.cron"].create(self.on_cron_values(user)[1][0])

    def on_cron_values(self, user):
        values = {
            "name": f"Matrix cron {uuid.uuid4().hex[:6]}",
            "model_id": self.env["ir.model"]._get_id("res.partner"),
            "state": "code",
            "code": "model.browse()",
            "interval_number": 1,
            "interval_type": "days",
            "active": False,
        }
        return None, [values]

    # ----------------------------------------------------------------- calls

    def _prepare(self, key, entry, user):
        """``(model, ids or None, args, kwargs)`` of one call."""
        model, method = key.rsplit(".", 1)
        made = getattr(self, f"on_{entry.on}")(user)
        records, extra = made if isinstance(made, tuple) else (made, [])
        function = getattr(type(self.env[model]), method)
        no_ids = getattr(function, "_api", None) in ("model", "model_create")
        ids = None if no_ids else (records.ids if records is not None else [])
        return model, method, ids, [*extra, *entry.args], dict(entry.kwargs)

    def _call(self, model, method, ids, args, kwargs):
        """One ``call_kw`` over HTTP in the current session: ``"ok"`` or the
        name of the error class the server answered."""
        self.env.flush_all()
        params = {
            "model": model,
            "method": method,
            "args": ([ids] if ids is not None else []) + list(args),
            "kwargs": kwargs,
        }
        body = json.dumps(
            {"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}
        )
        response = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        self.env.invalidate_all()
        answer = response.json()
        if "error" in answer:
            data = answer["error"].get("data") or {}
            # A person's business error (QtcUserError and its subclasses) names
            # the class the web client shows it as, as Odoo's dialog reads it.
            shown_as = (data.get("context") or {}).get("exception_class")
            return shown_as or data.get("name", "error"), data.get("message", "")
        return "ok", ""

    def _expected(self, entry, user):
        allowed = NOBODY not in entry.needs and all(
            user.has_group(group) for group in entry.needs
        )
        if not allowed:
            return "odoo.exceptions.AccessError"
        return entry.passes_with or "ok"

    def test_every_public_method_is_in_the_matrix(self):
        public = suite_public_methods(self.env)
        missing = sorted(public - set(MATRIX))
        self.assertFalse(
            missing,
            "Public methods of the suite are endpoints callable by any user: add "
            "each to MATRIX in tests/test_role_matrix.py with the groups it needs "
            "(and check them in the method), or make it private: " + ", ".join(missing),
        )

    def test_role_matrix(self):
        public = suite_public_methods(self.env)
        entries = {key: entry for key, entry in MATRIX.items() if key in public}
        self.assertTrue(entries)
        failures = []
        for role in ROLES:
            user = self.users.get(role)
            if not user:
                continue
            self.authenticate(user.login, user.login)
            for key, entry in sorted(entries.items()):
                call = self._prepare(key, entry, user)
                outcome, message = self._call(*call)
                expected = self._expected(entry, user)
                if outcome != expected:
                    line = (
                        f"{key} as {role}: {outcome} {message[:160]!r}, "
                        f"expected {expected}"
                    )
                    failures.append(line)
        self.assertFalse(failures, "\n" + "\n".join(failures))
