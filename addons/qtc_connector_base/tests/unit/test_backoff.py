"""Retry delays: the nominal schedule, the jitter bounds, the refusals."""

import random

import pytest

from qtc_connector_base.lib import backoff


def test_defaults_are_ten_seconds_capped_at_one_hour():
    assert backoff.DEFAULT_BASE == 10.0
    assert backoff.DEFAULT_CAP == 3600.0


def test_nominal_schedule_doubles_from_ten_and_caps_at_one_hour():
    assert backoff.schedule(12) == [
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        320.0,
        640.0,
        1280.0,
        2560.0,
        3600.0,
        3600.0,
        3600.0,
    ]


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 10.0), (2, 20.0), (9, 2560.0), (10, 3600.0), (65, 3600.0), (10**6, 3600.0)],
)
def test_nominal_delay_values(attempt, expected):
    assert backoff.nominal_delay(attempt) == expected


def test_huge_attempt_does_not_overflow():
    # Without the bounded exponent, 2 ** (10**6) would be a huge int and the
    # product with a float base would overflow.
    assert backoff.nominal_delay(10**6, base=1.0, cap=1e300) == 2.0**64


def test_custom_base_and_cap():
    assert backoff.schedule(5, base=1.5, cap=10) == [1.5, 3.0, 6.0, 10, 10]


def test_zero_base_means_no_wait():
    assert backoff.schedule(3, base=0) == [0, 0, 0]


def test_schedule_of_zero_attempts_is_empty():
    assert backoff.schedule(0) == []


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_attempt_below_one_is_refused(attempt):
    with pytest.raises(ValueError, match="attempt starts at 1"):
        backoff.nominal_delay(attempt)
    with pytest.raises(ValueError, match="attempt starts at 1"):
        backoff.delay(attempt, rng=random.Random(0))


@pytest.mark.parametrize(("base", "cap"), [(-1, 3600), (10, -1), (-1, -1)])
def test_negative_base_or_cap_is_refused(base, cap):
    with pytest.raises(ValueError, match="base and cap"):
        backoff.nominal_delay(1, base=base, cap=cap)


@pytest.mark.parametrize("jitter", [-0.01, 1.01, 2, float("nan")])
def test_jitter_outside_zero_one_is_refused(jitter):
    with pytest.raises(ValueError, match="jitter"):
        backoff.delay(1, jitter=jitter, rng=random.Random(0))


@pytest.mark.parametrize("attempt", [1, 2, 5, 10, 20])
def test_jittered_delay_stays_within_half_and_full_nominal(attempt):
    rng = random.Random(20240601)
    nominal = backoff.nominal_delay(attempt)
    draws = [backoff.delay(attempt, rng=rng) for _ in range(5000)]
    assert all(nominal / 2 <= d <= nominal for d in draws)
    # The draws really spread over the window, not a constant in it.
    assert min(draws) < nominal * 0.52
    assert max(draws) > nominal * 0.98


def test_jittered_delay_never_exceeds_cap():
    rng = random.Random(7)
    assert all(backoff.delay(30, rng=rng) <= 3600.0 for _ in range(2000))


def test_jitter_is_reproducible_with_a_seeded_source():
    first = [backoff.delay(3, rng=random.Random(42)) for _ in range(3)]
    assert first == [first[0]] * 3
    expected = 40.0 * 0.5 + 40.0 * 0.5 * random.Random(42).random()
    assert first[0] == expected


class _FixedRandom:
    """A random source that always returns the same value."""

    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        (0.5, 0.0, 20.0),  # lowest point: half the nominal 40 s
        (0.5, 0.5, 30.0),
        (0.5, 0.999, 39.98),
        (0.0, 0.9, 40.0),  # no jitter: exactly nominal whatever the draw
        (1.0, 0.0, 0.0),  # full jitter may go down to zero
        (1.0, 0.25, 10.0),
    ],
)
def test_jitter_formula(jitter, draw, expected):
    result = backoff.delay(3, jitter=jitter, rng=_FixedRandom(draw))
    assert result == pytest.approx(expected)


def test_default_rng_is_the_random_module(monkeypatch):
    # Patched rather than reseeded: the global generator stays untouched.
    monkeypatch.setattr(random, "random", lambda: 0.5)
    assert backoff.delay(2) == 15.0
