"""Balance transactions read from disputes and the API, and the dispute fee."""

from decimal import Decimal

import pytest

from .stripe_fixtures import load, make_event
from qtc_stripe.lib.mapper import (
    BalanceTransaction,
    MappingError,
    dispute_fee,
    map_event,
    read_balance_transaction,
)

TXN_ID = "txn_1PgaxNB7WZ01zgkWEV3TLf40"  # the fixture's id


def txn(txn_id, amount, fee, currency="usd", **changes):
    data = load("balance_transaction")
    data.update(id=txn_id, amount=amount, fee=fee, net=amount - fee, currency=currency)
    data.update(changes)
    return data


def closed_dispute(status, transactions, currency="usd"):
    dispute = load("dispute")
    dispute.update(status=status, currency=currency, balance_transactions=transactions)
    (change,) = map_event(make_event("charge.dispute.closed", dispute))
    return change


def test_fixture_balance_transaction_is_read_exactly():
    assert read_balance_transaction(load("balance_transaction")) == BalanceTransaction(
        txn_id=TXN_ID,
        amount=Decimal("1.00"),
        fee=Decimal("0.00"),
        net=Decimal("1.00"),
        currency="USD",
    )


def test_payout_transaction_in_a_zero_decimal_currency():
    read = read_balance_transaction(txn("txn_po", -110000, 1100, currency="jpy"))
    assert (read.amount, read.fee, read.net) == (
        Decimal(-110000),
        Decimal(1100),
        Decimal(-111100),
    )
    assert read.currency == "JPY"


def test_unreadable_balance_transaction_lists_every_problem():
    data = txn("txn_bad", -1000, 100)
    data.update(fee="1.00", currency=None)
    with pytest.raises(MappingError) as caught:
        read_balance_transaction(data)
    assert caught.value.problems == (
        "currency is missing",
        "fee must be an integer, got str",
    )
    inconsistent = txn("txn_net", -1000, 100)
    inconsistent["net"] = -1000
    with pytest.raises(MappingError) as caught:
        read_balance_transaction(inconsistent)
    assert caught.value.problems == ("net must be amount - fee (-1100), got -1000",)
    with pytest.raises(MappingError):
        read_balance_transaction(["not", "an", "object"])


def test_lost_dispute_fee_is_the_withdrawal_fee():
    change = closed_dispute("lost", [txn("txn_w", -1000, 1500)])
    assert change.balance_transactions == (
        BalanceTransaction(
            txn_id="txn_w",
            amount=Decimal("-10.00"),
            fee=Decimal("15.00"),
            net=Decimal("-25.00"),
            currency="USD",
        ),
    )
    assert dispute_fee(change) == (Decimal("15.00"), "USD", "txn_w")


def test_won_dispute_with_the_fee_given_back_has_no_fee():
    change = closed_dispute(
        "won", [txn("txn_w", -1000, 1500), txn("txn_r", 1000, -1500)]
    )
    assert len(change.balance_transactions) == 2
    assert dispute_fee(change) is None


def test_won_dispute_whose_fee_is_kept_has_that_fee():
    change = closed_dispute("won", [txn("txn_w", -1000, 1500), txn("txn_r", 1000, 0)])
    assert dispute_fee(change) == (Decimal("15.00"), "USD", "txn_w")


def test_dispute_without_transactions_or_with_bare_ids_has_no_fee():
    assert dispute_fee(closed_dispute("lost", [])) is None
    change = closed_dispute("lost", ["txn_only_an_id"])
    assert change.balance_transactions == ()
    assert dispute_fee(change) is None


def test_dispute_with_a_broken_transaction_cannot_be_mapped():
    broken = txn("txn_w", -1000, 1500)
    del broken["fee"]
    dispute = load("dispute")
    dispute.update(balance_transactions=[broken])
    with pytest.raises(MappingError) as caught:
        map_event(make_event("charge.dispute.closed", dispute))
    assert caught.value.problems == (
        "data.object.balance_transactions[0].fee is missing",
    )
