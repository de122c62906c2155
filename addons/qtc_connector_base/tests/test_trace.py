import json

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from ..lib import bulk_sql
from ..lib.errors import BusinessError
from ..models.qtc_backend import InboundEvent
from ..models.qtc_trace import TRACE_ACTION_PREFIX, TRACE_VIEW_PREFIX
from .common import QtcCase


def handler_customer_then_follow_up(backend, event):
    """A provider handler: creates (or finds) a partner, traces it, and queues a
    follow-up job that changes it again (as a write-back would)."""
    data = json.loads(event.payload)
    partners = backend.env["res.partner"]
    if data.get("fail"):
        partner = partners.browse(data["partner_id"])
        raise BusinessError(
            "Customer is blocked",
            category="data",
            records=[(partner._name, partner.id)],
        )
    partner = partners.search([("ref", "=", data["ref"])], limit=1)
    if not partner:
        partner = partners.create({"name": data["name"], "ref": data["ref"]})
        backend.env["qtc.trace"]._qtc_record(partner, "created", note="new customer")
    else:
        backend.env["qtc.trace"]._qtc_record(partner, "skipped", note="known")
    backend.env["qtc.job"]._qtc_enqueue(
        partner, "_qtc_test_follow_up", name=f"Follow up {partner.name}"
    )
    return f"customer {partner.name}"


def follow_up(partners):
    partners.write({"comment": "followed up"})
    partners.env["qtc.trace"]._qtc_record(partners, "updated", note="follow-up")
    return "followed up"


@tagged("post_install", "-at_install")
class TestTrace(QtcCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.qtc_user = new_test_user(
            cls.env, "qtc_trace_user", groups="qtc_connector_base.group_qtc_user"
        )
        cls.plain_user = new_test_user(
            cls.env, "qtc_trace_plain", groups="base.group_user"
        )
        # The test sender's work creates customers: its technical user may.
        cls.backend.technical_user_id = cls.make_service_user(
            "qtc_trace_service", "base.group_partner_manager"
        )

    def _receive(self, external_id, payload):
        stored = self.backend._qtc_store_events(
            [InboundEvent(external_id, "customer.updated", json.dumps(payload))]
        )
        return self.env["qtc.event"].browse(stored[external_id])

    def _run(self):
        with (
            self.patch_model_method(
                self.env["qtc.backend"],
                "_qtc_handle_event",
                handler_customer_then_follow_up,
            ),
            self.patch_job_function(
                self.env["res.partner"], "_qtc_test_follow_up", follow_up
            ),
        ):
            self.run_jobs()
        self.env.invalidate_all()

    def _steps(self, action, user=None):
        model = self.env[action["res_model"]]
        if user:
            model = model.with_user(user)
        return model.search(action["domain"])

    def _describe(self, steps):
        return [
            (step.kind, step.operation or step.state, step.name or "") for step in steps
        ]

    def test_record_trace_lists_events_jobs_and_changes_in_order(self):
        event = self._receive("evt_t1", {"ref": "T-1", "name": "Trace One"})
        self._run()
        partner = self.env["res.partner"].search([("ref", "=", "T-1")])
        self.assertEqual(len(partner), 1)
        # A second delivery of news about the same customer: a second flow.
        again = self._receive("evt_t2", {"ref": "T-1", "name": "Trace One"})
        self._run()
        # An unrelated flow must stay out of this customer's trace.
        self._receive("evt_other", {"ref": "T-9", "name": "Someone Else"})
        self._run()

        action = self.env["qtc.trace"]._qtc_action_for_record(partner)
        self.assertEqual(action["res_model"], "qtc.trace.step")
        self.assertEqual(action["name"], "Trace of Trace One")
        steps = self._steps(action)
        self.assertEqual(
            self._describe(steps),
            [
                ("event", "done", "customer.updated evt_t1"),
                ("job", "done", "Process event evt_t1"),
                ("change", "created", "Trace One"),
                ("job", "done", "Follow up Trace One"),
                ("change", "updated", "Trace One"),
                ("event", "done", "customer.updated evt_t2"),
                ("job", "done", "Process event evt_t2"),
                ("change", "skipped", "Trace One"),
                ("job", "done", "Follow up Trace One"),
                ("change", "updated", "Trace One"),
            ],
        )
        self.assertEqual(
            set(steps.mapped("correlation_id")),
            {event.correlation_id, again.correlation_id},
        )
        # What each did: the job's result, the change's note.
        first_job = steps.filtered(lambda s: s.kind == "job")[0]
        self.assertEqual(first_job.note, "customer Trace One")
        self.assertEqual(steps[2].note, "new customer")
        self.assertEqual(
            steps[2].res_model_name, self.env["ir.model"]._get("res.partner").name
        )
        # Opening a change opens the record; opening an event, the event.
        opened = steps[2].action_open()
        self.assertEqual(
            (opened["res_model"], opened["res_id"]), (partner._name, partner.id)
        )

    def test_event_trace_and_records_produced_include_follow_up_jobs(self):
        event = self._receive("evt_t3", {"ref": "T-3", "name": "Trace Three"})
        self._run()
        partner = self.env["res.partner"].search([("ref", "=", "T-3")])
        # The follow-up job's change has no event id, only the correlation id.
        self.assertEqual(event.trace_ids.mapped("operation"), ["created"])
        self.assertEqual(
            event.produced_trace_ids.mapped("operation"), ["created", "updated"]
        )
        self.assertEqual(event.produced_trace_ids.mapped("res_id"), partner.ids * 2)
        steps = self._steps(event.action_view_trace())
        self.assertEqual(
            [s.kind for s in steps], ["event", "job", "change", "job", "change"]
        )
        self.assertEqual(steps[0].action_open()["res_id"], event.id)
        self.assertEqual(steps[1].action_open()["res_model"], "qtc.job")

    def test_trace_lines_written_in_one_statement_are_read_back_in_order(self):
        event = self._receive("evt_bulk", {"ref": "T-B", "name": "Bulk"})
        partners = self.env["res.partner"].create(
            [{"name": f"Bulk {n}"} for n in range(30)]
        )
        self.assertFalse(event.trace_ids)  # now in the cache, empty

        def insert(records):
            values = [
                {
                    "correlation_id": event.correlation_id,
                    "event_id": event.id,
                    "job_id": False,  # the ORM's empty: NULL
                    "backend_id": self.backend.id,
                    "res_model": partner._name,
                    "res_id": partner.id,
                    "res_name": partner.display_name,
                    "operation": "created",
                    "note": f"line {n}",
                }
                for n, partner in enumerate(records)
            ]
            self.env.flush_all()  # the partners' pending writes are not the insert's
            before = self.cr.sql_log_count
            ids = self.env["qtc.trace"]._qtc_insert(values)
            return ids, self.cr.sql_log_count - before

        ids, queries_for_3 = insert(partners[:3])
        _more, queries_for_30 = insert(partners)
        # One statement whatever the number of lines.
        self.assertEqual((queries_for_3, queries_for_30), (1, 1))
        traces = self.env["qtc.trace"].browse(ids)
        self.assertEqual(traces.mapped("note"), ["line 0", "line 1", "line 2"])
        self.assertEqual(traces.mapped("res_id"), partners[:3].ids)
        self.assertFalse(traces.job_id)
        self.assertEqual(set(traces.mapped("create_uid")), {self.env.user})
        # The event's cached one2many was dropped: it lists the new lines.
        self.assertEqual(len(event.trace_ids), 33)
        self.assertEqual(event.trace_ids[:3], traces)
        steps = self._steps(event.action_view_trace())
        self.assertEqual(steps.mapped("kind").count("change"), 33)

    def test_bulk_update_keeps_false_in_booleans_and_null_elsewhere(self):
        stored = self.backend._qtc_store_events(
            [
                InboundEvent("evt_bulk_a", "customer.updated", "{}"),
                InboundEvent("evt_bulk_b", "customer.updated", "{}"),
            ]
        )
        events = self.env["qtc.event"].browse(sorted(stored.values()))
        jobs = events.job_ids.sorted("id")
        self.env.flush_all()
        updated = bulk_sql.update_rows(
            self.cr,
            "qtc_job",
            {"cancel_requested": "bool", "result": "text"},
            {
                jobs[0].id: {"cancel_requested": False, "result": "kept"},
                jobs[1].id: {"cancel_requested": True, "result": False},
            },
        )
        self.assertEqual(updated, 2)
        self.cr.execute(
            "SELECT cancel_requested, result FROM qtc_job WHERE id = ANY(%s) "
            "ORDER BY id",
            (jobs.ids,),
        )
        self.assertEqual(self.cr.fetchall(), [(False, "kept"), (True, None)])

    def test_failed_flow_shows_in_the_trace_of_the_record_it_names(self):
        partner = self.env["res.partner"].create({"name": "Blocked Co"})
        event = self._receive("evt_t4", {"fail": True, "partner_id": partner.id})
        self._run()
        self.assertEqual(event.state, "failed")
        # No change was made, yet the exception names the record: its flow shows.
        steps = self._steps(self.env["qtc.trace"]._qtc_action_for_record(partner))
        self.assertEqual(
            [(s.kind, s.state) for s in steps],
            [("event", "failed"), ("job", "failed")],
        )
        self.assertIn("Customer is blocked", steps[1].error)

    def test_batch_job_without_correlation_id_is_in_the_trace(self):
        events = [
            InboundEvent(f"evt_b{n}", "customer.updated", json.dumps(payload))
            for n, payload in enumerate(
                [{"ref": "B-1", "name": "Batch One"}, {"ref": "B-2", "name": "Two"}]
            )
        ]
        config = self.backend._qtc_webhook_config(self.backend.id)
        self.backend._qtc_store_events(events, config=config, batch=True)
        self._run()
        partner = self.env["res.partner"].search([("ref", "=", "B-1")])
        steps = self._steps(self.env["qtc.trace"]._qtc_action_for_record(partner))
        batch_job = steps.filtered(lambda s: s.kind == "job" and not s.correlation_id)
        self.assertEqual(batch_job.name, "Process 2 events")
        # The other event of the batch is not part of this customer's trace.
        names = steps.filtered(lambda s: s.kind == "event").mapped("name")
        self.assertEqual(names, ["customer.updated evt_b0"])
        changed = steps.filtered(lambda s: s.kind == "change")
        self.assertEqual(set(changed.mapped("res_id")), {partner.id})

    def test_qtc_user_reads_the_trace_a_plain_user_cannot(self):
        self._receive("evt_t5", {"ref": "T-5", "name": "Trace Five"})
        self._run()
        partner = self.env["res.partner"].search([("ref", "=", "T-5")])
        trace = self.env["qtc.trace"]
        action = trace.with_user(self.qtc_user)._qtc_action_for_record(
            partner.with_user(self.qtc_user)
        )
        steps = self._steps(action, user=self.qtc_user)
        self.assertEqual(len(steps), 5)
        changes = steps.filtered(lambda s: s.kind == "change")
        self.assertEqual(len(set(changes.mapped("res_model_name"))), 1)
        with self.assertRaises(AccessError):
            trace.with_user(self.plain_user)._qtc_action_for_record(
                partner.with_user(self.plain_user)
            )
        with self.assertRaises(AccessError):
            self.env["qtc.trace.step"].with_user(self.plain_user).search([])
        with self.assertRaises(AccessError):
            self.env["qtc.event"].with_user(self.plain_user).search([])

    def test_sync_removes_the_trace_ui_of_models_no_longer_traceable(self):
        # What an uninstalled connector leaves: an entry for a model that no
        # longer has the mixin (res.country never has it).
        country_model = self.env["ir.model"]._get("res.country")
        orphan = self.env["ir.actions.server"].create(
            {
                "name": "Trace",
                "model_id": country_model.id,
                "binding_model_id": country_model.id,
                "state": "code",
                "code": "action = records.action_qtc_trace()",
            }
        )
        self.env["ir.model.data"].create(
            {
                "module": "qtc_connector_base",
                "name": TRACE_ACTION_PREFIX + "res_country",
                "model": "ir.actions.server",
                "res_id": orphan.id,
                "noupdate": True,
            }
        )
        self.env["qtc.trace"]._qtc_sync_trace_ui()
        self.assertFalse(orphan.exists())
        self.assertFalse(
            self.env.ref(
                f"qtc_connector_base.{TRACE_ACTION_PREFIX}res_country",
                raise_if_not_found=False,
            )
        )

    def test_sync_moves_a_button_to_a_module_that_registers_the_model(self):
        traceable = self.env["qtc.trace"]._qtc_traceable_models()
        if not traceable:
            self.skipTest("no connector installed: no traceable model")
        model, owners = next(iter(traceable.items()))
        name = TRACE_VIEW_PREFIX + model.replace(".", "_")
        row = self.env["ir.model.data"].search([("name", "=", name)])
        self.assertEqual(len(row), 1)
        self.assertIn(row.module, owners)
        old_view = self.env["ir.ui.view"].browse(row.res_id)
        # As left by an owner that stopped registering the model.
        row.module = "qtc_connector_base"
        self.env["qtc.trace"]._qtc_sync_trace_ui()
        self.assertFalse(row.exists())
        self.assertFalse(old_view.exists())
        new_row = self.env["ir.model.data"].search([("name", "=", name)])
        self.assertEqual(len(new_row), 1)
        self.assertEqual(new_row.module, owners[0])
        arch = self.env[model].get_view(view_type="form")["arch"]
        self.assertEqual(arch.count('name="action_qtc_trace"'), 1)
