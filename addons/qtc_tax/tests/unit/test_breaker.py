"""Circuit breaker transitions, driven by a fake clock."""

import json

import pytest

from qtc_tax.lib.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class FakeClock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker(failure_threshold=3, window=60, cooldown=30, clock=clock)


def fail(breaker, times):
    for _ in range(times):
        assert breaker.allow_request()
        breaker.record_failure()


def test_opens_after_threshold_failures_within_window(breaker, clock):
    fail(breaker, 2)
    assert breaker.state == CLOSED
    clock.advance(59)
    fail(breaker, 1)
    assert breaker.state == OPEN
    assert breaker.opened_at == clock.now
    assert breaker.allow_request() is False


def test_failures_outside_the_window_do_not_count(breaker, clock):
    fail(breaker, 2)
    clock.advance(60)  # the first two are now exactly a window old: forgotten
    fail(breaker, 2)
    assert breaker.state == CLOSED
    fail(breaker, 1)
    assert breaker.state == OPEN


def test_successes_do_not_erase_failures(breaker):
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 1)
    assert breaker.state == OPEN


def test_cooldown_then_single_half_open_probe(breaker, clock):
    fail(breaker, 3)
    clock.advance(29.9)
    assert breaker.allow_request() is False
    assert breaker.seconds_until_probe() == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.allow_request() is True  # this caller is the probe
    assert breaker.state == HALF_OPEN
    assert breaker.allow_request() is False  # everyone else waits
    assert breaker.seconds_until_probe() == 30.0


def test_probe_success_closes(breaker, clock):
    fail(breaker, 3)
    clock.advance(30)
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state == CLOSED
    assert breaker.failures == []
    assert breaker.opened_at is None
    fail(breaker, 2)  # a fresh count
    assert breaker.state == CLOSED


def test_probe_failure_reopens_for_another_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.advance(30)
    assert breaker.allow_request()
    breaker.record_failure()
    assert breaker.state == OPEN
    assert breaker.opened_at == clock.now
    clock.advance(29)
    assert breaker.allow_request() is False
    clock.advance(1)
    assert breaker.allow_request() is True


def test_silent_probe_is_given_up_after_a_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.advance(30)
    assert breaker.allow_request()  # the probe's worker dies, never reports
    clock.advance(29)
    assert breaker.allow_request() is False
    clock.advance(1)
    assert breaker.allow_request() is True
    assert breaker.state == HALF_OPEN


def test_late_success_while_open_changes_nothing(breaker, clock):
    fail(breaker, 3)
    breaker.record_success()
    assert breaker.state == OPEN
    breaker.record_failure()  # and a late failure does not extend the cooldown
    clock.advance(30)
    assert breaker.allow_request() is True


def test_clock_going_backwards_lets_a_probe_through(breaker, clock):
    fail(breaker, 3)
    clock.advance(-3600)
    assert breaker.seconds_until_probe() == 0.0
    assert breaker.allow_request() is True
    assert breaker.state == HALF_OPEN


def test_round_trip_through_json(breaker, clock):
    fail(breaker, 2)
    stored = json.loads(json.dumps(breaker.to_dict()))
    assert stored == {
        "state": "closed",
        "failures": [clock.now, clock.now],
        "opened_at": None,
        "probe_started_at": None,
    }
    # Another worker, later, with the same settings.
    clock.advance(10)
    other = CircuitBreaker.from_dict(
        stored, failure_threshold=3, window=60, cooldown=30, clock=clock
    )
    other.record_failure()
    assert other.state == OPEN
    reopened = CircuitBreaker.from_dict(
        other.to_dict(), failure_threshold=3, window=60, cooldown=30, clock=clock
    )
    assert reopened.state == OPEN
    assert reopened.allow_request() is False
    clock.advance(30)
    assert reopened.allow_request() is True
    half_open = CircuitBreaker.from_dict(
        reopened.to_dict(), failure_threshold=3, window=60, cooldown=30, clock=clock
    )
    assert half_open.state == HALF_OPEN
    assert half_open.allow_request() is False  # the probe slot is taken


def test_persisted_failures_stay_bounded(clock):
    settings = {"failure_threshold": 3, "window": 3600, "cooldown": 30, "clock": clock}
    start = clock.now
    stored = {"state": "closed", "failures": [start - n for n in range(10)]}
    breaker = CircuitBreaker.from_dict(stored, **settings)
    # Only the newest `threshold` failures matter, and only inside the window.
    assert breaker.failures == [start - 2, start - 1, start]
    clock.advance(3600 - 1.5)
    assert breaker.to_dict()["failures"] == [start - 1, start]
    clock.advance(1.5)
    assert breaker.to_dict()["failures"] == []


def test_from_empty_state_is_closed(clock):
    for data in (None, {}):
        fresh = CircuitBreaker.from_dict(data, clock=clock)
        assert fresh.state == CLOSED
        assert fresh.allow_request()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a dict"),
        ({"state": "ajar"}, "unknown breaker state 'ajar'"),
        ({"state": "closed", "failures": "x"}, "list of timestamps"),
        ({"state": "closed", "failures": [True]}, "list of timestamps"),
        ({"state": "closed", "failures": [float("nan")]}, "list of timestamps"),
        ({"state": "open"}, "a open breaker needs opened_at"),
        ({"state": "open", "opened_at": "yesterday"}, "opened_at must be a timestamp"),
    ],
)
def test_from_dict_refuses_garbage(data, message, clock):
    with pytest.raises(ValueError, match=message):
        CircuitBreaker.from_dict(data, clock=clock)


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_threshold": 0},
        {"failure_threshold": 2.5},
        {"failure_threshold": True},
        {"window": 0},
        {"cooldown": -1},
        {"cooldown": float("inf")},
        {"window": "60"},
    ],
)
def test_bad_settings(settings):
    with pytest.raises(ValueError):
        CircuitBreaker(**settings)


def test_threshold_of_one_opens_at_once(clock):
    breaker = CircuitBreaker(failure_threshold=1, window=1, cooldown=1, clock=clock)
    breaker.record_failure()
    assert breaker.state == OPEN
