"""Shared set-up of the Stripe connector's Odoo tests.

A company with a chart of accounts (Odoo's ``AccountTestInvoicingCommon``), a
Stripe backend on its bank journals, and builders of real-shaped Stripe events
from the fixture files (Stripe's own example objects, see tests/fixtures).
"""

import itertools
import json
import time
from urllib.parse import parse_qs

from odoo.addons.account.tests.common import (
    AccountTestInvoicingCommon,
    AccountTestInvoicingHttpCommon,
)
from odoo.addons.qtc_connector_base.tests.common import TEST_SECRET, QtcTestMixin

from ..lib import signature
from .unit.stripe_fixtures import load, make_event

EVENT_TIME = 1_700_000_000  # 2023-11-14 22:13:20 UTC
_ids = itertools.count(1)


def new_id(prefix):
    """A fresh Stripe-looking id, unique within the test run."""
    return f"{prefix}_qtcTest{next(_ids):06d}"


class CheckoutStandInMixin:
    """Stripe's Checkout Session create, answered by ``new_session`` (register
    it as a ``responses`` callback); the sessions made are in ``self.sessions``."""

    def new_session(self, request):
        """Stripe's answer to a Checkout Session create: a fresh session for
        the amount asked, expiring in 24 hours as by default."""
        form = parse_qs(request.body)
        session_id = new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"][0]),
            "expires_at": int(time.time()) + 24 * 3600,
            "metadata": {"odoo_invoice_id": form["metadata[odoo_invoice_id]"][0]},
        }
        self.sessions.append(session)
        return 200, {}, json.dumps(session)


class StripeEventsMixin:
    """Builders of Stripe events around the fixture objects."""

    @staticmethod
    def event(event_type, data_object, event_id=None, created=EVENT_TIME):
        return make_event(
            event_type,
            data_object,
            event_id=event_id or new_id("evt"),
            created=created,
        )

    def payment_intent_event(
        self,
        amount,
        currency="usd",
        payment_intent_id=None,
        customer=None,
        charge=None,
        metadata=None,
        event_type="payment_intent.succeeded",
        **kwargs,
    ):
        intent = load("payment_intent")
        succeeded = event_type == "payment_intent.succeeded"
        intent.update(
            id=payment_intent_id or new_id("pi"),
            status="succeeded" if succeeded else "requires_payment_method",
            amount=amount,
            amount_received=amount if succeeded else 0,
            currency=currency,
            customer=customer,
            latest_charge=charge,
            metadata=metadata or {},
            created=EVENT_TIME,
            last_payment_error=None
            if succeeded
            else {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        )
        return self.event(event_type, intent, **kwargs)

    def checkout_event(self, amount, payment_intent_id, currency="usd", metadata=None):
        session = load("checkout.session")
        session.update(
            id=new_id("cs_test"),
            amount_total=amount,
            amount_subtotal=amount,
            currency=currency,
            payment_intent=payment_intent_id,
            payment_status="paid",
            status="complete",
            metadata=metadata or {},
            created=EVENT_TIME,
        )
        return self.event("checkout.session.completed", session)

    def invoice_paid_event(self, amount, payment_intent_id, currency="usd"):
        invoice = load("invoice")
        invoice.update(
            id=new_id("in"),
            amount_due=amount,
            amount_paid=amount,
            amount_remaining=0,
            currency=currency,
            payment_intent=payment_intent_id,
            status="paid",
            created=EVENT_TIME,
        )
        return self.event("invoice.paid", invoice)

    def refund_event(
        self,
        amount,
        payment_intent_id=None,
        charge=None,
        status="succeeded",
        refund_id=None,
        currency="usd",
        created=EVENT_TIME,
    ):
        refund = load("refund")
        refund.update(
            id=refund_id or new_id("re"),
            amount=amount,
            currency=currency,
            charge=charge,
            payment_intent=payment_intent_id,
            status=status,
            created=created,
        )
        return self.event("refund.updated", refund, created=created)

    def charge_refunded_event(self, amount_refunded, charge, payment_intent_id):
        data_object = load("charge")
        data_object.update(
            id=charge,
            amount=100000,
            amount_captured=100000,
            amount_refunded=amount_refunded,
            payment_intent=payment_intent_id,
            refunded=True,
            # Since API 2022-11-15 refunds are not embedded: the mapper then
            # reads the cumulative amount_refunded.
            refunds={"object": "list", "data": [], "has_more": True},
        )
        return self.event("charge.refunded", data_object)

    def dispute_event(
        self, event_type, charge, dispute_id, status, amount=10000, created=EVENT_TIME
    ):
        dispute = load("dispute")
        dispute.update(
            id=dispute_id,
            charge=charge,
            amount=amount,
            currency="usd",
            status=status,
            reason="fraudulent",
            created=EVENT_TIME,
        )
        return self.event(event_type, dispute, created=created)

    def payout_event(self, amount, payout_id, currency="usd"):
        payout = load("payout")
        payout.update(
            id=payout_id,
            amount=amount,
            currency=currency,
            status="paid",
            arrival_date=EVENT_TIME,
            created=EVENT_TIME,
        )
        return self.event("payout.paid", payout)

    @staticmethod
    def stripe_sign(body, secrets=TEST_SECRET, timestamp=None):
        return signature.sign(body, secrets, timestamp or int(time.time()))


class StripeSetupMixin(StripeEventsMixin):
    @classmethod
    def get_default_groups(cls):
        return super().get_default_groups() | cls.env.ref(
            "qtc_connector_base.group_qtc_manager"
        )

    @classmethod
    def _stripe_setup(cls):
        cls.bank_journal = cls.company_data["default_journal_bank"]
        cls.stripe_journal = cls.env["account.journal"].create(
            {"name": "Stripe balance", "type": "bank", "code": "STRP"}
        )
        cls.backend = cls._qtc_make_backend(
            name="Stripe test",
            provider="stripe",
            stripe_journal_id=cls.stripe_journal.id,
            stripe_bank_journal_id=cls.bank_journal.id,
        )
        cls.customer_id = new_id("cus")

    def invoice(self, amount, partner=None, currency=None):
        return self.init_invoice(
            "out_invoice",
            partner=partner or self.partner_a,
            amounts=[amount],
            taxes=[],
            currency=currency,
            post=True,
        )

    def store(self, *events):
        """Store events as the webhook would, without HTTP."""
        from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent

        return self.backend._qtc_store_events(
            [
                InboundEvent(event["id"], event["type"], json.dumps(event))
                for event in events
            ]
        )

    def apply(self, *events):
        """Store the events and run their jobs; returns the ``qtc.event``s."""
        stored = self.store(*events)
        self.run_jobs()
        return self.env["qtc.event"].browse(list(stored.values()))

    def stripe_payments(self, **domain):
        conditions = [("journal_id", "=", self.stripe_journal.id)]
        conditions += [(key, "=", value) for key, value in domain.items()]
        return self.env["account.payment"].search(conditions)

    def bind_customer(self, partner, customer_id=None):
        return self.env["qtc.binding"]._qtc_bind(
            self.backend, "customer", customer_id or self.customer_id, partner
        )

    def exception_of(self, event):
        return self.env["qtc.exception"].search([("event_id", "=", event.id)])


class StripeCase(QtcTestMixin, StripeSetupMixin, AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._stripe_setup()


class StripeHttpCase(QtcTestMixin, StripeSetupMixin, AccountTestInvoicingHttpCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._stripe_setup()

    @property
    def webhook_path(self):
        return f"/qtc/stripe/{self.backend.id}/webhook"

    def post_event(self, event, secrets=TEST_SECRET, timestamp=None, header=None):
        """POST an event to the backend's Stripe endpoint, signed as Stripe does
        (or with ``header`` as the ``Stripe-Signature`` value)."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        value = (
            header if header is not None else self.stripe_sign(body, secrets, timestamp)
        )
        if value is not False:
            headers[signature.HEADER] = value
        return self.url_open(self.webhook_path, data=body, headers=headers)
