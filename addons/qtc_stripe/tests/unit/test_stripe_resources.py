"""Resources of Stripe events (``lib/resources.py``)."""

from qtc_stripe.lib.resources import event_resources


def event(obj):
    return {"id": "evt_1", "type": "x", "data": {"object": obj}}


def test_a_payment_names_its_money_its_customer_and_its_invoice():
    names = event_resources(
        event(
            {
                "id": "pi_1",
                "object": "payment_intent",
                "latest_charge": {"id": "ch_1"},
                "customer": "cus_1",
                "metadata": {"odoo_invoice_id": "42", "odoo_invoice": "INV/1"},
            }
        ),
        7,
    )
    assert names == [
        "account.move:42",
        "stripe:7:ch_1",
        "stripe:7:cus_1",
        "stripe:7:pi_1",
    ]


def test_a_refund_shares_the_payment_intent_of_its_payment():
    refund = event_resources(
        event({"id": "ch_1", "object": "charge", "payment_intent": "pi_1"}), 7
    )
    assert "stripe:7:pi_1" in refund


def test_an_invoice_named_by_number_only_is_named_by_backend_and_number():
    names = event_resources(
        event({"id": "cs_1", "metadata": {"odoo_invoice": " INV/9 "}}), 7
    )
    assert names == ["stripe:7:cs_1", "stripe:7:invoice:INV/9"]


def test_bad_hints_and_shapes_name_nothing_more():
    assert event_resources(None, 7) == []
    assert event_resources({"data": "x"}, 7) == []
    names = event_resources(
        event({"id": "pi_2", "customer": 5, "metadata": {"odoo_invoice_id": "²"}}),
        7,
    )
    assert names == ["stripe:7:pi_2"]
