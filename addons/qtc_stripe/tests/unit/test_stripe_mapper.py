"""Stripe events -> changes: every handled type with exact values, and failures."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from .stripe_fixtures import EVENT_CREATED, load, make_event, object_event
from qtc_stripe.lib import mapper
from qtc_stripe.lib.mapper import (
    DisputeClosed,
    DisputeOpened,
    MappingError,
    PaymentFailed,
    PaymentReceived,
    PayoutPaid,
    RefundIssued,
    event_ordering_key,
    is_handled,
    map_event,
)

EVENT_TIME = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # EVENT_CREATED
FIXTURE_TIME = datetime(2009, 2, 13, 23, 31, 30, tzinfo=UTC)  # fixtures' 1234567890
# Ids as they appear in the fixture files.
PI_ID = "pi_1PgafyB7WZ01zgkWSjxsAJo3"
CHARGE_ID = "ch_1PgafuB7WZ01zgkWXYmPNZs8"
CUSTOMER_ID = "cus_QXg1o8vcGmoR32"
SESSION_ID = "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
INVOICE_ID = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
REFUND_ID = "re_1Pgc72B7WZ01zgkWqPvrRrPE"
DISPUTE_ID = "dp_1Pgc71B7WZ01zgkWMevJiAUx"
PAYOUT_ID = "po_1Pgc79B7WZ01zgkWu1KToYf4"
TXN_ID = "txn_1PgaxNB7WZ01zgkWEV3TLf40"
HINT = {"odoo_invoice": "INV/2025/00042", "odoo_invoice_id": "42"}


def envelope(event_type, *, event_id="evt_test_0001", livemode=False):
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_created": EVENT_TIME,
        "livemode": livemode,
    }


def only(changes):
    assert len(changes) == 1
    return changes[0]


def mapping_problems(event):
    with pytest.raises(MappingError) as caught:
        map_event(event)
    return caught.value.problems


# ------------------------------------------------------------------- payments


def test_payment_intent_succeeded():
    event = object_event(
        "payment_intent.succeeded",
        "payment_intent",
        status="succeeded",
        amount=2000,
        amount_received=1099,  # a partial capture: what was received counts
        currency="usd",
        customer=CUSTOMER_ID,
        latest_charge=CHARGE_ID,
        metadata=dict(HINT),
    )
    change = only(map_event(event))
    assert change == PaymentReceived(
        **envelope("payment_intent.succeeded"),
        stripe_object_type="payment_intent",
        stripe_object_id=PI_ID,
        payment_intent_id=PI_ID,
        charge_id=CHARGE_ID,
        stripe_invoice_id=None,
        customer_id=CUSTOMER_ID,
        amount=Decimal("10.99"),
        currency="USD",
        invoice_ref="INV/2025/00042",
        invoice_id=42,
        created=FIXTURE_TIME,
    )
    assert str(change.amount) == "10.99"
    assert change.payment_key == PI_ID


def test_payment_intent_succeeded_jpy_with_expanded_references():
    event = object_event(
        "payment_intent.succeeded",
        "payment_intent",
        amount=5000,
        amount_received=5000,
        currency="jpy",
        customer=load("customer"),
        latest_charge=load("charge"),
        invoice="in_legacy_api",
    )
    change = only(map_event(event))
    assert str(change.amount) == "5000"
    assert change.currency == "JPY"
    assert change.customer_id == CUSTOMER_ID
    assert change.charge_id == CHARGE_ID
    assert change.stripe_invoice_id == "in_legacy_api"
    # No metadata in the fixture: no invoice hint.
    assert (change.invoice_ref, change.invoice_id) == (None, None)
    assert change.payment_key == PI_ID


def test_payment_intent_succeeded_livemode_is_carried():
    event = object_event(
        "payment_intent.succeeded", "payment_intent", amount_received=100
    )
    event["livemode"] = True
    assert only(map_event(event)).livemode is True


def test_checkout_session_completed_paid_kwd():
    event = object_event(
        "checkout.session.completed",
        "checkout.session",
        payment_status="paid",
        status="complete",
        amount_total=250_000,
        currency="kwd",
        customer=CUSTOMER_ID,
        metadata={"odoo_invoice": " INV/2025/00043 "},
    )
    assert map_event(event) == [
        PaymentReceived(
            **envelope("checkout.session.completed"),
            stripe_object_type="checkout.session",
            stripe_object_id=SESSION_ID,
            payment_intent_id=PI_ID,
            charge_id=None,
            stripe_invoice_id=None,
            customer_id=CUSTOMER_ID,
            amount=Decimal("250.000"),
            currency="KWD",
            invoice_ref="INV/2025/00043",
            invoice_id=None,
            created=FIXTURE_TIME,
        )
    ]
    assert str(map_event(event)[0].amount) == "250.000"


def test_checkout_session_async_payment_succeeded():
    event = object_event(
        "checkout.session.async_payment_succeeded",
        "checkout.session",
        payment_status="paid",
        amount_total=4200,
        currency="eur",
        metadata=dict(HINT),
    )
    change = only(map_event(event))
    assert change.event_type == "checkout.session.async_payment_succeeded"
    assert (change.amount, change.currency) == (Decimal("42.00"), "EUR")
    assert (change.invoice_ref, change.invoice_id) == ("INV/2025/00042", 42)


@pytest.mark.parametrize("payment_status", ["unpaid", "no_payment_required"])
def test_checkout_session_without_money_maps_to_nothing(payment_status):
    # The fixture session is unpaid and has null amount and currency: nothing
    # to validate, nothing to book; async_payment_succeeded will follow.
    event = object_event(
        "checkout.session.completed", "checkout.session", payment_status=payment_status
    )
    assert map_event(event) == []


def test_checkout_session_subscription_mode_keys_on_invoice():
    event = object_event(
        "checkout.session.completed",
        "checkout.session",
        mode="subscription",
        payment_status="paid",
        payment_intent=None,
        invoice="in_sub_0001",
        amount_total=1500,
        currency="usd",
    )
    change = only(map_event(event))
    assert change.payment_intent_id is None
    assert change.stripe_invoice_id == "in_sub_0001"
    assert change.payment_key == "in_sub_0001"


def test_invoice_paid_current_api_shape():
    event = object_event(
        "invoice.paid",
        "invoice",
        status="paid",
        amount_paid=1000,
        amount_remaining=0,
        metadata={"odoo_invoice_id": 7},
    )
    assert map_event(event) == [
        PaymentReceived(
            **envelope("invoice.paid"),
            stripe_object_type="invoice",
            stripe_object_id=INVOICE_ID,
            payment_intent_id=None,
            charge_id=None,
            stripe_invoice_id=INVOICE_ID,
            customer_id=CUSTOMER_ID,
            amount=Decimal("10.00"),
            currency="USD",
            invoice_ref=None,
            invoice_id=7,
            created=FIXTURE_TIME,
        )
    ]
    assert map_event(event)[0].payment_key == INVOICE_ID


def test_invoice_paid_legacy_api_fields():
    event = object_event(
        "invoice.paid",
        "invoice",
        amount_paid=1000,
        payment_intent="pi_legacy",
        charge="ch_legacy",
    )
    change = only(map_event(event))
    assert (change.payment_intent_id, change.charge_id) == ("pi_legacy", "ch_legacy")
    assert change.payment_key == "pi_legacy"


def test_invoice_paid_payment_intent_from_included_payments():
    payments = {
        "object": "list",
        "data": [
            {
                "object": "invoice_payment",
                "status": "canceled",
                "payment": {"type": "payment_intent", "payment_intent": "pi_dead"},
            },
            {
                "object": "invoice_payment",
                "status": "paid",
                "payment": {"type": "payment_intent", "payment_intent": "pi_paid"},
            },
        ],
        "has_more": False,
    }
    event = object_event("invoice.paid", "invoice", amount_paid=1000, payments=payments)
    assert only(map_event(event)).payment_intent_id == "pi_paid"


def test_invoice_paid_zero_amount_maps_to_nothing():
    event = object_event("invoice.paid", "invoice", amount_paid=0, total=0)
    assert map_event(event) == []


def test_payment_failed():
    event = object_event(
        "payment_intent.payment_failed",
        "payment_intent",
        status="requires_payment_method",
        amount=1099,
        currency="eur",
        customer=CUSTOMER_ID,
        latest_charge="ch_failed",
        metadata=dict(HINT),
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )
    assert map_event(event) == [
        PaymentFailed(
            **envelope("payment_intent.payment_failed"),
            payment_intent_id=PI_ID,
            charge_id="ch_failed",
            customer_id=CUSTOMER_ID,
            amount=Decimal("10.99"),
            currency="EUR",
            invoice_ref="INV/2025/00042",
            invoice_id=42,
            failure_code="card_declined",
            decline_code="insufficient_funds",
            failure_message="Your card has insufficient funds.",
            created=FIXTURE_TIME,
        )
    ]


@pytest.mark.parametrize("error", [None, {"type": "idempotency_error"}])
def test_payment_failed_without_error_details(error):
    # The fixture's own last_payment_error has a type but no code or message.
    event = object_event(
        "payment_intent.payment_failed", "payment_intent", last_payment_error=error
    )
    change = only(map_event(event))
    assert (change.failure_code, change.decline_code, change.failure_message) == (
        None,
        None,
        None,
    )
    assert change.amount == Decimal("10.99")


# -------------------------------------------------------------------- refunds


def test_charge_refunded_without_listed_refunds_is_cumulative():
    # The fixture charge has refunds.data == [] (what current API versions send).
    event = object_event(
        "charge.refunded",
        "charge",
        amount=10_000,
        amount_captured=10_000,
        amount_refunded=2_500,
        payment_intent=PI_ID,
    )
    assert map_event(event) == [
        RefundIssued(
            **envelope("charge.refunded"),
            refund_id=None,
            charge_id=CHARGE_ID,
            payment_intent_id=PI_ID,
            amount=Decimal("25.00"),
            currency="USD",
            status=None,
            reason=None,
            is_cumulative_total=True,
            created=EVENT_TIME,
        )
    ]


def test_charge_refunded_without_refunds_key_is_cumulative():
    charge = load("charge")
    del charge["refunds"]
    charge["amount_refunded"] = 100
    change = only(map_event(make_event("charge.refunded", charge)))
    assert change.is_cumulative_total is True
    assert change.amount == Decimal("1.00")


def _refund(refund_id, amount, status, reason, created):
    refund = load("refund")
    refund.update(
        id=refund_id, amount=amount, status=status, reason=reason, created=created
    )
    return refund


def test_charge_refunded_one_change_per_listed_refund():
    refunds = {
        "object": "list",
        "data": [
            _refund(
                "re_first", 1000, "succeeded", "requested_by_customer", 1_700_000_100
            ),
            _refund("re_second", 500, "pending", None, 1_700_000_200),
        ],
        "has_more": False,
        "url": f"/v1/charges/{CHARGE_ID}/refunds",
    }
    event = object_event(
        "charge.refunded",
        "charge",
        amount=10_000,
        amount_refunded=1_500,
        payment_intent=PI_ID,
        refunds=refunds,
    )
    common = envelope("charge.refunded")
    assert map_event(event) == [
        RefundIssued(
            **common,
            refund_id="re_first",
            charge_id=CHARGE_ID,
            payment_intent_id=PI_ID,  # the refund has none: taken from the charge
            amount=Decimal("10.00"),
            currency="USD",
            status="succeeded",
            reason="requested_by_customer",
            is_cumulative_total=False,
            created=datetime(2023, 11, 14, 22, 15, tzinfo=UTC),
        ),
        RefundIssued(
            **common,
            refund_id="re_second",
            charge_id=CHARGE_ID,
            payment_intent_id=PI_ID,
            amount=Decimal("5.00"),
            currency="USD",
            status="pending",
            reason=None,
            is_cumulative_total=False,
            created=datetime(2023, 11, 14, 22, 16, 40, tzinfo=UTC),
        ),
    ]


def test_charge_refunded_with_incomplete_list_falls_back_to_total():
    refunds = {
        "object": "list",
        "data": [_refund("re_first", 1000, "succeeded", None, 1_700_000_100)],
        "has_more": True,
    }
    event = object_event(
        "charge.refunded", "charge", amount_refunded=3_000, refunds=refunds
    )
    change = only(map_event(event))
    assert (change.refund_id, change.amount, change.is_cumulative_total) == (
        None,
        Decimal("30.00"),
        True,
    )


def test_refund_updated():
    event = object_event(
        "refund.updated",
        "refund",
        status="failed",
        reason="duplicate",
        payment_intent=PI_ID,
        currency="kwd",
        amount=1_500,
    )
    assert map_event(event) == [
        RefundIssued(
            **envelope("refund.updated"),
            refund_id=REFUND_ID,
            charge_id=CHARGE_ID,
            payment_intent_id=PI_ID,
            amount=Decimal("1.500"),
            currency="KWD",
            status="failed",
            reason="duplicate",
            is_cumulative_total=False,
            created=FIXTURE_TIME,
        )
    ]


def test_refund_updated_without_charge_or_payment_intent_is_an_error():
    event = object_event("refund.updated", "refund", charge=None, payment_intent=None)
    assert mapping_problems(event) == (
        "data.object.charge and payment_intent are both missing",
    )


# ------------------------------------------------------------------- disputes


def test_dispute_created():
    event = object_event(
        "charge.dispute.created",
        "dispute",
        status="needs_response",
        reason="fraudulent",
        payment_intent=PI_ID,
    )
    assert map_event(event) == [
        DisputeOpened(
            **envelope("charge.dispute.created"),
            dispute_id=DISPUTE_ID,
            charge_id=CHARGE_ID,
            payment_intent_id=PI_ID,
            amount=Decimal("10.00"),
            currency="USD",
            reason="fraudulent",
            status="needs_response",
            created=FIXTURE_TIME,
        )
    ]


def test_dispute_closed_with_expanded_charge():
    event = object_event(
        "charge.dispute.closed", "dispute", status="lost", charge=load("charge")
    )
    change = only(map_event(event))
    assert change == DisputeClosed(
        **envelope("charge.dispute.closed"),
        dispute_id=DISPUTE_ID,
        charge_id=CHARGE_ID,
        payment_intent_id=None,
        amount=Decimal("10.00"),
        currency="USD",
        reason="general",
        status="lost",
        created=FIXTURE_TIME,
    )
    assert not isinstance(change, DisputeOpened)


# -------------------------------------------------------------------- payouts


def test_payout_paid():
    event = object_event(
        "payout.paid", "payout", status="paid", arrival_date=1_700_086_400
    )
    assert map_event(event) == [
        PayoutPaid(
            **envelope("payout.paid"),
            payout_id=PAYOUT_ID,
            amount=Decimal("11.00"),
            currency="USD",
            arrival_date=datetime(2023, 11, 15, 22, 13, 20, tzinfo=UTC),
            balance_transaction_id=TXN_ID,
            created=FIXTURE_TIME,
        )
    ]


def test_changes_are_frozen():
    change = only(map_event(object_event("payout.paid", "payout")))
    with pytest.raises(AttributeError):
        change.amount = Decimal(0)


# ------------------------------------------------------------ unhandled types


def test_handled_types_are_exactly_these():
    assert (
        frozenset(
            {
                "payment_intent.succeeded",
                "payment_intent.payment_failed",
                "checkout.session.completed",
                "checkout.session.async_payment_succeeded",
                "invoice.paid",
                "charge.refunded",
                "refund.updated",
                "charge.dispute.created",
                "charge.dispute.closed",
                "payout.paid",
            }
        )
        == mapper.HANDLED_EVENT_TYPES
    )


def test_is_handled():
    assert is_handled("payout.paid") is True
    assert is_handled("payout.failed") is False
    assert is_handled("PAYOUT.PAID") is False
    assert is_handled(None) is False
    assert is_handled(["payout.paid"]) is False


def test_fixture_event_of_unhandled_type_maps_to_nothing():
    event = load("event")
    assert event["type"] == "plan.created"
    assert map_event(event) == []


@pytest.mark.parametrize(
    "event_type",
    [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "invoice.finalized",
        "checkout.session.expired",
        "payout.failed",
        "charge.dispute.updated",
    ],
)
def test_unhandled_types_map_to_nothing_even_with_odd_payloads(event_type):
    assert map_event({"id": "evt_x", "type": event_type}) == []
    assert map_event(make_event(event_type, load("charge"))) == []


# ------------------------------------------------------------------ malformed


def test_malformed_event_lists_every_problem():
    event = object_event(
        "payment_intent.succeeded",
        "payment_intent",
        id=None,
        currency="dollars",
        metadata={"odoo_invoice_id": "abc"},
        latest_charge=42,
        customer={"object": "customer"},
        amount_received="1099",
        created=-1,
    )
    event["livemode"] = "no"
    event["created"] = None
    with pytest.raises(MappingError) as caught:
        map_event(event)
    error = caught.value
    assert sorted(error.problems) == sorted(
        [
            "created is missing",
            "livemode must be true or false, got str",
            "data.object.id is missing",
            "data.object.currency must be a three-letter currency code, got 'dollars'",
            "data.object.metadata.odoo_invoice_id must be a positive whole number, "
            "got 'abc'",
            "data.object.latest_charge must be an id or an object with an id",
            "data.object.customer must be an id or an object with an id",
            "data.object.amount_received must be an integer, got str",
            "data.object.created must be at least 0, got -1",
        ]
    )
    assert (error.event_id, error.event_type) == (
        "evt_test_0001",
        "payment_intent.succeeded",
    )
    assert str(error).startswith(
        "Stripe event evt_test_0001 (payment_intent.succeeded) cannot be mapped: "
        "9 problem(s): "
    )
    assert isinstance(error, ValueError)


def test_empty_dispute_lists_every_missing_field():
    event = make_event("charge.dispute.created", {"object": "dispute"})
    assert sorted(mapping_problems(event)) == sorted(
        [
            "data.object.id is missing",
            "data.object.charge is missing",
            "data.object.amount is missing",
            "data.object.currency is missing",
            "data.object.reason is missing",
            "data.object.status is missing",
            "data.object.created is missing",
        ]
    )


@pytest.mark.parametrize("event_type", sorted(mapper.HANDLED_EVENT_TYPES))
def test_every_handled_type_rejects_an_empty_object(event_type):
    expected_object = mapper.EXPECTED_OBJECT[event_type]
    problems = mapping_problems(make_event(event_type, {"object": expected_object}))
    assert "data.object.id is missing" in problems
    assert "data.object.currency is missing" in problems
    assert all(problem.startswith("data.object.") for problem in problems)


def test_wrong_object_for_event_type():
    event = make_event("payment_intent.succeeded", load("charge"))
    assert mapping_problems(event) == (
        "data.object.object must be 'payment_intent' for payment_intent.succeeded, "
        "got 'charge'",
    )


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        ({"data": None}, ("data is missing",)),
        ({"data": {}}, ("data.object is missing",)),
        ({"data": {"object": []}}, ("data.object must be an object, got list",)),
        (
            {"id": 12, "created": "2023-11-14", "livemode": None, "data": "x"},
            (
                "id must be a non-empty string, got int",
                "created must be an integer, got str",
                "livemode is missing",
                "data must be an object, got str",
            ),
        ),
        (
            {"created": 10**20},
            ("created is not a usable Unix time: 100000000000000000000",),
        ),
        ({"created": True}, ("created must be an integer, got bool",)),
    ],
)
def test_malformed_envelope(change, problems):
    event = object_event("payout.paid", "payout")
    event.update(change)
    assert mapping_problems(event) == problems


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ([], "the event must be a JSON object, got list"),
        (None, "the event must be a JSON object, got null"),
        ({"id": "evt_x"}, "type must be a non-empty string, got null"),
        ({"id": "evt_x", "type": ""}, "type must be a non-empty string, got str"),
        ({"id": "evt_x", "type": 5}, "type must be a non-empty string, got int"),
        # A bare object passed by mistake: a payout has a "type" field too.
        (load("payout"), "object must be 'event', got 'payout'"),
    ],
)
def test_not_an_event(event, problem):
    with pytest.raises(MappingError) as caught:
        map_event(event)
    assert caught.value.problems == (problem,)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, (None, None)),
        (None, (None, None)),
        ({"odoo_invoice": "INV/1", "odoo_invoice_id": " 42 "}, ("INV/1", 42)),
        ({"odoo_invoice": "   ", "odoo_invoice_id": ""}, (None, None)),
        ({"odoo_invoice_id": 42}, (None, 42)),
        ({"other": "value"}, (None, None)),
    ],
)
def test_invoice_hint_in_metadata(metadata, expected):
    event = object_event(
        "payment_intent.succeeded",
        "payment_intent",
        amount_received=100,
        metadata=metadata,
    )
    change = only(map_event(event))
    assert (change.invoice_ref, change.invoice_id) == expected


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        (
            {"odoo_invoice_id": "0"},
            "data.object.metadata.odoo_invoice_id must be a positive whole number, "
            "got 0",
        ),
        (
            {"odoo_invoice_id": "-3"},
            "data.object.metadata.odoo_invoice_id must be a positive whole number, "
            "got '-3'",
        ),
        (
            {"odoo_invoice_id": "4.2"},
            "data.object.metadata.odoo_invoice_id must be a positive whole number, "
            "got '4.2'",
        ),
        (
            {"odoo_invoice_id": "\uff14\uff12"},
            "data.object.metadata.odoo_invoice_id must be a positive whole number, "
            "got '\uff14\uff12'",
        ),
        (
            {"odoo_invoice_id": True},
            "data.object.metadata.odoo_invoice_id must be a positive whole number, "
            "got True",
        ),
        ({"odoo_invoice": 42}, "data.object.metadata.odoo_invoice must be a string"),
        ("INV/1", "data.object.metadata must be an object, got str"),
    ],
)
def test_invalid_invoice_hint(metadata, problem):
    event = object_event(
        "payment_intent.succeeded",
        "payment_intent",
        amount_received=100,
        metadata=metadata,
    )
    assert mapping_problems(event) == (problem,)


@pytest.mark.parametrize(
    ("event_type", "fixture", "field", "value", "problem"),
    [
        (
            "payment_intent.succeeded",
            "payment_intent",
            "amount_received",
            0,
            "data.object.amount_received must be at least 1, got 0",
        ),
        (
            "payment_intent.succeeded",
            "payment_intent",
            "amount_received",
            10.99,
            "data.object.amount_received must be an integer, got float",
        ),
        (
            "invoice.paid",
            "invoice",
            "amount_paid",
            -100,
            "data.object.amount_paid must be at least 0, got -100",
        ),
        (
            "payout.paid",
            "payout",
            "amount",
            True,
            "data.object.amount must be an integer, got bool",
        ),
        (
            "charge.refunded",
            "charge",
            "amount_refunded",
            0,
            "data.object.amount_refunded must be at least 1, got 0",
        ),
        (
            "payout.paid",
            "payout",
            "arrival_date",
            "2023-11-15",
            "data.object.arrival_date must be an integer, got str",
        ),
        (
            "charge.dispute.closed",
            "dispute",
            "status",
            "",
            "data.object.status must be a non-empty string, got str",
        ),
        (
            "checkout.session.completed",
            "checkout.session",
            "payment_status",
            None,
            "data.object.payment_status is missing",
        ),
    ],
)
def test_invalid_field(event_type, fixture, field, value, problem):
    event = object_event(event_type, fixture, **{field: value})
    if event_type.startswith("checkout"):
        # Give the session what a paid one has, so the only problem is ours.
        event["data"]["object"].update(amount_total=100, currency="usd")
    assert mapping_problems(event) == (problem,)


def test_malformed_listed_refunds_name_their_position():
    missing_amount = load("refund")
    del missing_amount["amount"]
    refunds = {
        "object": "list",
        "data": [load("refund"), "re_not_expanded", missing_amount],
        "has_more": False,
    }
    event = object_event(
        "charge.refunded", "charge", amount_refunded=300, refunds=refunds
    )
    assert mapping_problems(event) == (
        "data.object.refunds.data[1] must be an object, got str",
        "data.object.refunds.data[2].amount is missing",
    )


# ------------------------------------------------------------------- ordering


def test_event_ordering_key():
    assert event_ordering_key(load("event")) == (
        1_234_567_890,
        "evt_1Pgc76B7WZ01zgkWwyRHS12y",
    )


def test_ordering_tells_stale_from_newer_events():
    older = make_event("refund.updated", load("refund"), event_id="evt_b")
    same_second = make_event("refund.updated", load("refund"), event_id="evt_c")
    newer = make_event(
        "refund.updated", load("refund"), event_id="evt_a", created=EVENT_CREATED + 1
    )
    events = [newer, same_second, older]
    ordered = sorted(events, key=event_ordering_key)
    assert [event["id"] for event in ordered] == ["evt_b", "evt_c", "evt_a"]
    # An applier that already applied "newer" recognises "older" as stale.
    assert event_ordering_key(older) < event_ordering_key(newer)


@pytest.mark.parametrize(
    ("event", "problems"),
    [
        (
            {"created": "1700000000"},
            ("created must be an integer, got str", "id is missing"),
        ),
        ({"id": "evt_x", "created": -1}, ("created must be at least 0, got -1",)),
        ({"id": "", "created": 1}, ("id must be a non-empty string, got str",)),
        ({"id": "evt_x", "created": False}, ("created must be an integer, got bool",)),
        ("evt_x", ("the event must be a JSON object, got str",)),
    ],
)
def test_event_ordering_key_rejects_bad_events(event, problems):
    with pytest.raises(MappingError) as caught:
        event_ordering_key(event)
    assert caught.value.problems == problems
