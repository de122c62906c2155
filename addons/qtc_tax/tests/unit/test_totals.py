"""The engine's amounts per tax add up to its document total."""

from decimal import Decimal as D

from qtc_tax.lib.totals import align_to_total, effective_rate


def test_amounts_that_add_up_are_kept():
    amounts = {1: D("83.41"), 2: D("23.35")}
    assert align_to_total(amounts, D("106.76")) == amounts


def test_residual_goes_to_the_largest_amount():
    amounts = {1: D("23.35"), 2: D("83.41"), 3: D("16.68")}
    aligned = align_to_total(amounts, D("123.45"))
    assert aligned == {1: D("23.35"), 2: D("83.42"), 3: D("16.68")}
    assert sum(aligned.values()) == D("123.45")
    # The caller's dict is not changed.
    assert amounts[2] == D("83.41")


def test_largest_by_magnitude_for_refunds():
    aligned = align_to_total({1: D("-83.41"), 2: D("-23.35")}, D("-106.77"))
    assert aligned == {1: D("-83.42"), 2: D("-23.35")}


def test_ties_go_to_the_first_tax():
    assert align_to_total({7: D("1.00"), 3: D("1.00")}, D("2.01")) == {
        7: D("1.01"),
        3: D("1.00"),
    }


def test_no_amount_no_residual_to_place():
    assert align_to_total({}, D("5.00")) == {}


def test_effective_rate():
    assert effective_rate(D("77.16"), D("1234.56")) == D("0.062500")
    assert effective_rate(D("1.00"), D("3.00")) == D("0.333333")
    assert effective_rate(D("1.00"), D("0")) == D(0)
