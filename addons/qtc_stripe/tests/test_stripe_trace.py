from odoo.addons.qtc_connector_base.tests.common import QtcTraceAssertions
from odoo.tests import tagged

from .common import StripeCase, new_id


@tagged("post_install", "-at_install")
class TestStripeTrace(QtcTraceAssertions, StripeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.finance, cls.accountant = cls.make_trace_users(
            "stripe_trace",
            "account.group_account_invoice",
            company=cls.company_data["company"],
        )

    def test_invoice_and_payment_have_one_trace_entry_and_button(self):
        for model_name in ("account.move", "account.payment"):
            with self.subTest(model=model_name):
                self.assert_trace_ui_once(model_name)

    def test_payment_and_invoice_trace_back_to_the_stripe_event(self):
        invoice = self.invoice(100.0)
        intent_id = new_id("pi")
        event = self.apply(
            self.payment_intent_event(
                10000,
                payment_intent_id=intent_id,
                metadata={"odoo_invoice": invoice.name},
            )
        )
        self.assertEqual(event.state, "done", event.error_message)
        payment = self.stripe_payments()
        self.assertEqual(len(payment), 1)
        # Noise: another payment of another invoice must not show.
        other = self.invoice(50.0)
        self.apply(
            self.payment_intent_event(5000, metadata={"odoo_invoice": other.name})
        )

        for record in (payment, invoice):
            with self.subTest(record=record._name):
                steps = self.assert_trace_access(record, self.finance, self.accountant)
                self.assertEqual(
                    [s.kind for s in steps], ["event", "job", "change", "change"]
                )
                self.assertEqual(steps[0].event_id, event)
                self.assertEqual(steps[0].state, "done")
                self.assertEqual(steps[1].state, "done")
                changes = steps[2:]
                self.assertEqual(
                    [(c.res_model, c.res_id, c.operation) for c in changes],
                    [
                        ("account.payment", payment.id, "created"),
                        ("account.move", invoice.id, "updated"),
                    ],
                )
        # From the event: the records it produced.
        self.assertEqual(
            event.produced_trace_ids.mapped("res_id"), [payment.id, invoice.id]
        )

    def test_refused_overpayment_shows_on_the_invoice_it_names(self):
        invoice = self.invoice(100.0)
        event = self.apply(
            self.payment_intent_event(15000, metadata={"odoo_invoice": invoice.name})
        )
        self.assertEqual(event.state, "failed")
        self.assertEqual(self.exception_of(event).category, "overpayment")
        # Nothing was changed on the invoice, yet its trace shows the refusal.
        self.assertEqual(invoice.qtc_trace_count, 1)
        steps = self.env["qtc.trace.step"].search(invoice.action_qtc_trace()["domain"])
        self.assertEqual(
            [(s.kind, s.state) for s in steps],
            [("event", "failed"), ("job", "failed")],
        )
        self.assertEqual(steps.event_id, event)
        self.assertTrue(steps[1].error)
