"""Trust boundaries of the base: company rules on every model holding company
data, validated bindings and value maps, fields only QTC Managers read."""

import json
import uuid

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from ..lib.errors import BusinessError
from ..models.qtc_backend import InboundEvent
from .common import QtcCase, QtcHttpCase


class CompanyPairMixin:
    """Company A (the test's) and company B, a backend each, and users of A."""

    @classmethod
    def _setup_companies(cls):
        env = cls.env
        cls.company_a = env.company
        cls.company_b = env["res.company"].create({"name": "QTC company B"})
        cls.backend_b = cls._qtc_make_backend(
            name="Backend of B", company_id=cls.company_b.id
        )
        own = {"company_id": cls.company_a.id, "company_ids": [cls.company_a.id]}
        cls.user_a = new_test_user(
            env, "qtc_access_user_a", groups="qtc_connector_base.group_qtc_user", **own
        )
        cls.manager_a = new_test_user(
            env,
            "qtc_access_manager_a",
            groups="qtc_connector_base.group_qtc_manager",
            **own,
        )

    @classmethod
    def _company_rows(cls, backend):
        """One row of each company model the base holds, for ``backend``."""
        env = cls.env
        external_id = f"evt_{uuid.uuid4().hex[:10]}"
        stored = backend._qtc_store_events(
            [InboundEvent(external_id, "customer.created", "{}")]
        )
        event = env["qtc.event"].browse(stored[external_id])
        job = event.job_ids
        partner = env["res.partner"].create({"name": f"Customer of {backend.name}"})
        [trace_id] = env["qtc.trace"]._qtc_insert(
            [
                {
                    "backend_id": backend.id,
                    "res_model": "res.partner",
                    "res_id": partner.id,
                    "res_name": partner.name,
                    "operation": "created",
                }
            ]
        )
        value_map = env["qtc.value.map"].create(
            {"name": "Terms", "code": "access.terms", "backend_id": backend.id}
        )
        return {
            "qtc.event": event,
            "qtc.job": job,
            "qtc.job.progress": env["qtc.job.progress"].create({"job_id": job.id}),
            "qtc.exception": env["qtc.exception"]._qtc_open(
                BusinessError("Problem", category="data"), backend=backend, job=job
            ),
            "qtc.binding": env["qtc.binding"]._qtc_bind(
                backend, "Account", f"ACC-{backend.id}", partner
            ),
            "qtc.trace": env["qtc.trace"].browse(trace_id),
            "qtc.trace.step": env["qtc.trace.step"].browse(trace_id * 3 + 2),
            "qtc.credential": env["qtc.credential"].search(
                [("backend_id", "=", backend.id)]
            ),
            "qtc.value.map": value_map,
            "qtc.value.map.line": env["qtc.value.map.line"].create(
                {"map_id": value_map.id, "external_value": "Net 30", "value": "30"}
            ),
        }


@tagged("post_install", "-at_install")
class TestCompanyRules(CompanyPairMixin, QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.declare_test_binding_models()
        cls._setup_companies()
        cls.rows_a = cls._company_rows(cls.backend)
        cls.rows_b = cls._company_rows(cls.backend_b)

    def assert_own_company_only(self, user, model):
        row_a, row_b = self.rows_a[model], self.rows_b[model]
        self.assertTrue(row_a and row_b, model)
        found = (
            self.env[model].with_user(user).search([("id", "in", (row_a | row_b).ids)])
        )
        self.assertEqual(found, row_a, f"{model}: company A's row only")
        with self.assertRaises(AccessError, msg=model):
            row_b.with_user(user).read(["id"])

    def test_qtc_user_reads_nothing_of_another_company(self):
        for model in self.rows_a:
            if model == "qtc.credential":
                continue  # QTC Users read no credential at all (below)
            with self.subTest(model=model):
                self.assert_own_company_only(self.user_a, model)

    def test_qtc_manager_reads_nothing_of_another_company(self):
        for model in self.rows_a:
            with self.subTest(model=model):
                self.assert_own_company_only(self.manager_a, model)

    def test_qtc_user_reads_no_credential(self):
        with self.assertRaises(AccessError):
            self.rows_a["qtc.credential"].with_user(self.user_a).read(["key"])

    def test_shared_value_maps_are_read_by_every_company(self):
        shared = self.env["qtc.value.map"].create(
            {"name": "Shared terms", "code": "access.shared"}
        )
        line = self.env["qtc.value.map.line"].create(
            {"map_id": shared.id, "external_value": "Net 60", "value": "60"}
        )
        self.assertEqual(line.with_user(self.user_a).read(["value"])[0]["value"], "60")

    def test_manager_acts_on_own_company_backends_only(self):
        backend_b = self.backend_b.with_user(self.manager_a)
        for action in (
            "action_activate",
            "action_disable",
            "action_reset_draft",
            "action_test_connection",
            "action_end_secret_rotation",
            "action_view_jobs",
            "action_view_events",
            "action_view_exceptions",
        ):
            with self.subTest(action=action), self.assertRaises(AccessError):
                getattr(backend_b, action)()
        self.assertEqual(self.backend_b.state, "active")

    def test_backend_moved_to_another_company_is_refused_after_the_write(self):
        backend = self.backend.with_user(self.manager_a)
        with self.assertRaises(AccessError):
            backend.write({"company_id": self.company_b.id})

    def test_value_map_moved_to_another_company_is_refused_after_the_write(self):
        value_map = (
            self.env["qtc.value.map"]
            .create(
                {
                    "name": "Stages",
                    "code": "access.stages",
                    "backend_id": self.backend.id,
                }
            )
            .with_user(self.manager_a)
        )
        with self.assertRaises(AccessError):
            value_map.write({"backend_id": self.backend_b.id})

    def test_value_map_line_points_at_its_company_only(self):
        value_map = self.env["qtc.value.map"].create(
            {
                "name": "Customers",
                "code": "access.customers",
                "backend_id": self.backend.id,
                "target_model": "res.partner",
            }
        )
        partner_b = self.env["res.partner"].create(
            {"name": "Customer of B", "company_id": self.company_b.id}
        )
        with self.assertRaises(ValidationError):
            self.env["qtc.value.map.line"].create(
                {"map_id": value_map.id, "external_value": "C1", "res_id": partner_b.id}
            )
        with self.assertRaises(ValidationError):
            self.env["qtc.value.map.line"].create(
                {"map_id": value_map.id, "external_value": "C2", "res_id": 999999999}
            )
        # The manager of A cannot even see B's customer.
        with self.assertRaises(AccessError):
            self.env["qtc.value.map.line"].with_user(self.manager_a).create(
                {"map_id": value_map.id, "external_value": "C3", "res_id": partner_b.id}
            )


@tagged("post_install", "-at_install")
class TestBindingTargets(CompanyPairMixin, QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.declare_test_binding_models()
        cls._setup_companies()
        cls.partner = cls.env["res.partner"].create({"name": "Bound customer"})
        cls.partner_b = cls.env["res.partner"].create(
            {"name": "Customer of B", "company_id": cls.company_b.id}
        )

    def values(self, **overrides):
        return {
            "backend_id": self.backend.id,
            "external_type": "Account",
            "external_id": f"ACC-{uuid.uuid4().hex[:8]}",
            "res_model": "res.partner",
            "res_id": self.partner.id,
            **overrides,
        }

    def test_target_must_be_the_model_its_external_type_maps_to(self):
        Binding = self.env["qtc.binding"].with_user(self.manager_a)
        Binding.create(self.values())
        with self.assertRaises(ValidationError):
            Binding.create(self.values(res_model="res.users", res_id=self.manager_a.id))
        with self.assertRaises(ValidationError):
            Binding.create(self.values(external_type="Opportunity"))
        binding = Binding.create(self.values())
        with self.assertRaises(ValidationError):
            binding.write({"res_model": "res.users", "res_id": self.manager_a.id})

    def test_target_must_exist(self):
        with self.assertRaises(ValidationError):
            self.env["qtc.binding"].create(self.values(res_id=999999999))

    def test_target_must_be_readable_by_the_writer(self):
        with self.assertRaises(AccessError):
            self.env["qtc.binding"].with_user(self.manager_a).create(
                self.values(res_id=self.partner_b.id)
            )

    def test_target_of_another_company_is_refused_even_to_the_system(self):
        with self.assertRaises(ValidationError):
            self.env["qtc.binding"].create(self.values(res_id=self.partner_b.id))
        binding = self.env["qtc.binding"].create(self.values())
        with self.assertRaises(ValidationError):
            binding.write({"res_id": self.partner_b.id})

    def test_binding_moved_to_another_company_is_refused_after_the_write(self):
        binding = (
            self.env["qtc.binding"].with_user(self.manager_a).create(self.values())
        )
        with self.assertRaises(AccessError):
            binding.write({"backend_id": self.backend_b.id})

    def test_qtc_user_does_not_edit_bindings_by_hand(self):
        Binding = self.env["qtc.binding"].with_user(self.user_a)
        with self.assertRaises(AccessError):
            Binding.create(self.values())
        binding = self.env["qtc.binding"].create(self.values())
        with self.assertRaises(AccessError):
            binding.with_user(self.user_a).write({"external_id": "ACC-moved"})
        self.assertEqual(
            binding.with_user(self.user_a).read(["res_id"])[0]["res_id"],
            self.partner.id,
        )

    def _exception_to_link(self, record):
        error = BusinessError("Unknown customer", category="unknown_customer")
        error.external_ref = ("customer", f"cus_{uuid.uuid4().hex[:8]}")
        exception = self.env["qtc.exception"]._qtc_open(error, backend=self.backend)
        exception.link_ref = record
        return exception.with_user(self.user_a)

    def test_link_binds_through_the_same_checks(self):
        exception = self._exception_to_link(self.partner)
        exception.action_link()
        self.assertEqual(
            self.env["qtc.binding"]._qtc_to_internal(
                self.backend, "customer", exception.external_id
            ),
            self.partner,
        )
        # A record the finance user cannot read, another company's...
        with self.assertRaises(AccessError):
            self._exception_to_link(self.partner_b).action_link()
        # ... or a record of another model than the external type's.
        with self.assertRaises(ValidationError):
            self._exception_to_link(self.user_a).action_link()


@tagged("post_install", "-at_install")
class TestManagerOnlyFields(QtcHttpCase):
    """Job error traces and raw malformed bodies, read over JSON-RPC."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.finance = new_test_user(
            env, "qtc_fields_user", groups="qtc_connector_base.group_qtc_user"
        )
        cls.manager = new_test_user(
            env, "qtc_fields_manager", groups="qtc_connector_base.group_qtc_manager"
        )
        stored = cls.backend._qtc_store_events(
            [InboundEvent("evt_fields_1", "customer.created", json.dumps({"a": 1}))]
        )
        cls.event = env["qtc.event"].browse(stored["evt_fields_1"])
        cls.job = cls.event.job_ids
        cls.job.write(
            {
                "state": "failed",
                "error_message": "boom",
                "error_trace": 'Traceback: File "secret_path.py"',
            }
        )
        cls.malformed = env["qtc.event"].create(
            {
                "backend_id": cls.backend.id,
                "company_id": cls.backend.company_id.id,
                "external_id": "malformed:abc",
                "event_type": "malformed",
                "payload": "sessionId=00D000SECRET",
                "state": "failed",
            }
        )

    def rpc(self, model, method, *args, **kwargs):
        """``(result, error class name)`` of one ``call_kw`` over HTTP."""
        self.env.flush_all()
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "model": model,
                "method": method,
                "args": list(args),
                "kwargs": kwargs,
            },
        }
        answer = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        ).json()
        if "error" in answer:
            return None, answer["error"]["data"]["name"]
        return answer["result"], None

    def test_qtc_user_reads_no_error_trace(self):
        self.authenticate(self.finance.login, self.finance.login)
        job = [self.job.id]
        _result, error = self.rpc("qtc.job", "read", job, ["error_trace"])
        self.assertEqual(error, "odoo.exceptions.AccessError")
        _result, error = self.rpc(
            "qtc.job", "search_read", [("id", "in", job)], ["error_trace"]
        )
        self.assertEqual(error, "odoo.exceptions.AccessError")
        # The rest of the job, its error message included, stays readable.
        result, error = self.rpc(
            "qtc.job", "search_read", [("id", "in", job)], ["state", "error_message"]
        )
        self.assertIsNone(error)
        self.assertEqual(result[0]["error_message"], "boom")
        result, error = self.rpc("qtc.job", "search_read", [("id", "in", job)])
        self.assertIsNone(error)
        self.assertNotIn("error_trace", result[0])

    def test_qtc_manager_reads_the_error_trace(self):
        self.authenticate(self.manager.login, self.manager.login)
        result, error = self.rpc("qtc.job", "read", [self.job.id], ["error_trace"])
        self.assertIsNone(error)
        self.assertIn("secret_path.py", result[0]["error_trace"])

    def test_qtc_user_reads_no_malformed_body(self):
        self.authenticate(self.finance.login, self.finance.login)
        ids = [self.malformed.id, self.event.id]
        result, error = self.rpc(
            "qtc.event", "search_read", [("id", "in", ids)], ["payload"]
        )
        self.assertIsNone(error)
        self.assertEqual([row["id"] for row in result], [self.event.id])
        _result, error = self.rpc("qtc.event", "read", [self.malformed.id], ["payload"])
        self.assertEqual(error, "odoo.exceptions.AccessError")

    def test_qtc_manager_reads_the_malformed_body(self):
        self.authenticate(self.manager.login, self.manager.login)
        result, error = self.rpc("qtc.event", "read", [self.malformed.id], ["payload"])
        self.assertIsNone(error)
        self.assertEqual(result[0]["payload"], "sessionId=00D000SECRET")
