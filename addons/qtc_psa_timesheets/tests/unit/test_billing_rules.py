"""Billing decisions: billability, the rate guard, money rounding, corrections."""

from decimal import Decimal

import pytest

from qtc_psa_timesheets.lib import billing_rules as br
from qtc_psa_timesheets.lib import work_item as wi

Action = br.Action


def make(**overrides):
    data = {
        "external_id": "TE-1",
        "version": 1,
        "kind": "time",
        "project_ref": "PRJ",
        "employee_email": "ada@example.com",
        "date": "2026-03-02",
        "hours": "7.5",
        "approved_at": "2026-03-03T09:00:00Z",
        "status": "approved",
    }
    data.update(overrides)
    return wi.validate_work_item({k: v for k, v in data.items() if v is not ...})


def expense(**overrides):
    values = {
        "kind": "expense",
        "hours": ...,
        "amount": "84.20",
        "currency": "EUR",
    }
    values.update(overrides)
    return make(**values)


def milestone(**overrides):
    values = {
        "kind": "milestone",
        "hours": ...,
        "employee_email": ...,
        "milestone_ref": "phase-1",
    }
    values.update(overrides)
    return make(**values)


# -- is_billable -------------------------------------------------------------------


def test_is_billable():
    assert br.is_billable(make()) is True
    assert br.is_billable(make(billable=False)) is False
    assert br.is_billable(make(status="withdrawn", approved_at=...)) is False


# -- decide ------------------------------------------------------------------------


def test_time_at_order_price_when_rates_agree():
    decision = br.decide(make(rate="150.00"), Decimal("150"), "bill_order_price")
    assert decision == br.BillingDecision(
        billable=True,
        quantity=Decimal("7.5"),
        unit_price=Decimal("150"),
        subtotal=Decimal("1125.00"),
    )
    assert decision.rate_mismatch is False


def test_time_without_psa_rate_bills_order_price():
    decision = br.decide(make(), Decimal("99.99"), "raise")
    assert decision.subtotal == Decimal("749.93")  # 749.925 rounds half up
    assert decision.rate_mismatch is False


def test_rate_mismatch_bill_order_price_flags_the_difference():
    item = make(hours="3.33", rate="160")
    decision = br.decide(item, Decimal("150.00"), br.POLICY_BILL_ORDER_PRICE)
    assert decision.unit_price == Decimal("150.00")
    assert decision.subtotal == Decimal("499.50")
    assert decision.rate_mismatch is True
    assert decision.rate_difference == Decimal("10.00")
    assert decision.amount_difference == Decimal("33.30")


def test_rate_lower_than_order_gives_negative_difference():
    decision = br.decide(
        make(hours="1.5", rate="140.005"), Decimal("150"), "bill_order_price"
    )
    assert decision.rate_difference == Decimal("-9.995")
    assert decision.amount_difference == Decimal("-14.99")  # -14.9925 half up


def test_rate_mismatch_raise_policy():
    with pytest.raises(br.RateMismatchError) as caught:
        br.decide(make(rate="160"), Decimal("150"), br.POLICY_RAISE)
    assert caught.value.item_rate == Decimal("160")
    assert caught.value.order_price == Decimal("150")
    assert str(caught.value) == "the PSA rate 160 differs from the sale order price 150"


def test_half_cent_rounding_is_half_up_not_bankers():
    # 0.5 h * 0.05 = 0.025: banker's rounding would give 0.02.
    assert br.decide(make(hours="0.5"), Decimal("0.05"), "raise").subtotal == (
        Decimal("0.03")
    )
    assert br.round_money(Decimal("2.675")) == Decimal("2.68")
    assert br.round_money(Decimal("-2.675")) == Decimal("-2.68")
    assert br.round_money(Decimal("1234.5"), decimals=0) == Decimal("1235")
    assert br.round_money(Decimal("1.0005"), decimals=3) == Decimal("1.001")


def test_other_currency_precision():
    decision = br.decide(make(hours="2.5"), Decimal("1001"), "raise", decimals=0)
    assert decision.subtotal == Decimal("2503")  # 2502.5 -> 2503


def test_not_billable_items_bill_nothing_and_skip_the_guard():
    decision = br.decide(make(billable=False, rate="999"), Decimal("150"), "raise")
    assert decision.billable is False
    assert decision.subtotal == Decimal("0.00")
    assert decision.rate_mismatch is False
    withdrawn = make(status="withdrawn", approved_at=..., rate="999")
    assert br.decide(withdrawn, Decimal("150"), "raise").billable is False


def test_expense_is_billed_at_cost():
    decision = br.decide(expense(), None, "raise", order_currency="EUR")
    assert decision == br.BillingDecision(
        billable=True,
        quantity=Decimal(1),
        unit_price=Decimal("84.20"),
        subtotal=Decimal("84.20"),
    )
    assert br.decide(expense(amount="10.005"), None, "raise").subtotal == Decimal(
        "10.01"
    )


def test_expense_in_another_currency_is_refused():
    with pytest.raises(br.CurrencyMismatchError, match="in EUR, the sale order in USD"):
        br.decide(expense(), None, "raise", order_currency="USD")


def test_milestone_is_one_unit_at_order_price():
    decision = br.decide(milestone(), Decimal("5000"), "raise")
    assert (decision.quantity, decision.subtotal) == (Decimal(1), Decimal("5000.00"))


def test_decide_refuses_bad_inputs():
    with pytest.raises(ValueError, match="unknown rate policy 'warn'"):
        br.decide(make(), Decimal(1), "warn")
    with pytest.raises(TypeError, match="must be a Decimal, not float"):
        br.decide(make(), 150.0, "raise")
    with pytest.raises(TypeError, match="not NoneType"):
        br.decide(make(), None, "raise")
    with pytest.raises(ValueError, match=">= 0"):
        br.decide(make(), Decimal("-1"), "raise")
    with pytest.raises(ValueError, match="finite"):
        br.decide(make(), Decimal("NaN"), "raise")
    assert br.decide(make(hours="2"), 100, "raise").subtotal == Decimal("200.00")


# -- correction_action -------------------------------------------------------------


def test_first_delivery():
    assert br.correction_action(None, make()) is Action.CREATE
    withdrawn = make(status="withdrawn", approved_at=...)
    assert br.correction_action(None, withdrawn) is Action.NOOP


def test_early_withdrawal_is_recognised_and_makes_its_approval_stale():
    withdrawn = make(version=2, status="withdrawn", approved_at=...)
    assert br.is_early_withdrawal(None, withdrawn)
    assert not br.is_early_withdrawal(None, make())
    assert not br.is_early_withdrawal(br.PreviousState(make()), withdrawn)
    # Once recorded, the approval arriving after it is older: stale.
    assert br.correction_action(br.PreviousState(withdrawn), make()) is Action.STALE


def test_same_key_is_noop():
    previous = br.PreviousState(make())
    assert br.correction_action(previous, make()) is Action.NOOP
    # Even when invoiced and the content differs: same key means same delivery.
    invoiced = br.PreviousState(make(), invoiced=True)
    assert br.correction_action(invoiced, make(hours="8")) is Action.NOOP


def test_older_version_is_stale():
    previous = br.PreviousState(make(version=5))
    assert br.correction_action(previous, make(version=4)) is Action.STALE
    invoiced = br.PreviousState(make(version=5), invoiced=True)
    assert br.correction_action(invoiced, make(version=4)) is Action.STALE


def test_older_updated_at_is_stale():
    previous = br.PreviousState(make(version=..., updated_at="2026-03-03T10:00:00Z"))
    older = make(version=..., updated_at="2026-03-03T10:59:59+01:00")
    newer = make(version=..., updated_at="2026-03-03T10:00:01Z")
    assert br.correction_action(previous, older) is Action.STALE
    assert br.correction_action(previous, newer) is Action.UPDATE


def test_newer_version_not_invoiced():
    previous = br.PreviousState(make(version=1))
    assert br.correction_action(previous, make(version=2, hours="8")) is Action.UPDATE
    withdrawn = make(version=2, status="withdrawn", approved_at=...)
    assert br.correction_action(previous, withdrawn) is Action.REMOVE


def test_invoiced_item_changes_need_a_credit_note():
    previous = br.PreviousState(make(version=1), invoiced=True)
    assert br.correction_action(previous, make(version=2, hours="8")) is (
        Action.CREDIT_NOTE_REQUIRED
    )
    withdrawn = make(version=2, status="withdrawn", approved_at=...)
    assert br.correction_action(previous, withdrawn) is Action.CREDIT_NOTE_REQUIRED
    not_billable = make(version=2, billable=False)
    assert br.correction_action(previous, not_billable) is Action.CREDIT_NOTE_REQUIRED


def test_invoiced_item_may_take_harmless_changes():
    previous = br.PreviousState(make(version=1), invoiced=True)
    reworded = make(version=2, description="Typo fixed", approver="grace@example.com")
    assert br.correction_action(previous, reworded) is Action.UPDATE


def test_after_a_withdrawal_an_approval_creates_again():
    removed = br.PreviousState(make(version=2, status="withdrawn", approved_at=...))
    assert br.correction_action(removed, make(version=3)) is Action.CREATE
    again = make(version=3, status="withdrawn", approved_at=...)
    assert br.correction_action(removed, again) is Action.NOOP


def test_level_under_two_schemes_is_noop():
    previous = br.PreviousState(make(version=1, updated_at="2026-03-03T10:00:00Z"))
    same_instant = make(version=..., updated_at="2026-03-03T10:00:00Z")
    assert br.correction_action(previous, same_instant) is Action.NOOP


def test_unorderable_deliveries_raise():
    previous = br.PreviousState(make(version=1))
    with pytest.raises(br.OrderingError, match="cannot order two deliveries of TE-1"):
        br.correction_action(
            previous, make(version=..., updated_at="2026-03-04T00:00:00Z")
        )


def test_different_items_raise():
    with pytest.raises(ValueError, match="differ"):
        br.correction_action(br.PreviousState(make()), make(external_id="TE-2"))


def test_billing_fields_equal():
    assert br.billing_fields_equal(make(), make(version=9, description="x"))
    assert not br.billing_fields_equal(make(), make(project_ref="OTHER"))
    assert not br.billing_fields_equal(make(), make(rate="1"))
