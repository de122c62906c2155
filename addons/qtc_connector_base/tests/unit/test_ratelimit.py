"""The token bucket, driven by a fake clock and a fake sleep."""

import threading

import pytest

from qtc_connector_base.lib.ratelimit import TokenBucket


class FakeTime:
    """A clock that only moves when told to, and a sleep that moves it."""

    def __init__(self, start=1000.0):
        self.now = start
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds):
        self.now += seconds


def make_bucket(rate, burst=None):
    fake = FakeTime()
    bucket = TokenBucket(rate, burst=burst, clock=fake.clock, sleep=fake.sleep)
    return bucket, fake


def test_burst_is_allowed_without_waiting():
    bucket, fake = make_bucket(rate=5, burst=5)
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert fake.sleeps == []
    assert fake.now == 1000.0


def test_after_burst_each_call_waits_exactly_one_over_rate():
    bucket, fake = make_bucket(rate=4, burst=2)
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == [0.25] * 5
    assert fake.sleeps == [0.25] * 5
    assert fake.now == pytest.approx(1000.0 + 5 * 0.25)


def test_waits_with_a_rate_that_is_not_a_power_of_two():
    bucket, fake = make_bucket(rate=3, burst=1)
    assert bucket.acquire() == 0.0
    waits = [bucket.acquire() for _ in range(6)]
    assert waits == pytest.approx([1 / 3] * 6)
    assert fake.now == pytest.approx(1002.0)


def test_sustained_throughput_is_the_rate():
    bucket, fake = make_bucket(rate=10, burst=10)
    for _ in range(110):
        bucket.acquire()
    # 10 free from the burst, then 100 at 10 a second.
    assert fake.now - 1000.0 == pytest.approx(10.0)


def test_refill_over_time():
    bucket, fake = make_bucket(rate=2, burst=4)
    for _ in range(4):
        bucket.acquire()
    fake.advance(1.0)  # two tokens back
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    assert bucket.acquire() == 0.5


def test_partial_refill_shortens_the_wait():
    bucket, fake = make_bucket(rate=2, burst=1)
    bucket.acquire()
    fake.advance(0.2)  # 0.4 of a token back
    assert bucket.acquire() == pytest.approx(0.3)
    assert fake.sleeps == [pytest.approx(0.3)]


def test_refill_never_exceeds_burst():
    bucket, fake = make_bucket(rate=10, burst=3)
    fake.advance(3600.0)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.1)


def test_default_burst_is_rate_or_at_least_one():
    assert TokenBucket(25).burst == 25.0
    assert TokenBucket(0.5).burst == 1.0
    assert TokenBucket(2, burst=7).burst == 7.0
    assert TokenBucket(3).rate == 3.0


def test_slow_rate_waits_longer_than_a_second():
    bucket, _fake = make_bucket(rate=0.5)
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == 2.0


@pytest.mark.parametrize("rate", [0, -1, -0.001])
def test_rate_zero_or_negative_is_refused(rate):
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(rate)


@pytest.mark.parametrize("burst", [0, 0.5, -3])
def test_burst_below_one_is_refused(burst):
    # Regression: burst=0 let the debt reach -1 token, so every call slept
    # 2 / rate and the bucket ran at half its rate.
    with pytest.raises(ValueError, match="burst must be at least 1"):
        TokenBucket(5, burst=burst)


def test_bucket_is_full_at_creation_and_the_clock_is_read_then():
    reads = []

    def clock():
        reads.append(True)
        return 0.0

    TokenBucket(1, clock=clock, sleep=lambda s: None)
    assert reads == [True]


def test_concurrent_callers_never_exceed_the_burst_without_waiting():
    # Real threads, fake time: the lock must serialise refill and take.
    fake = FakeTime()
    lock = threading.Lock()

    def sleep(seconds):
        with lock:
            fake.sleep(seconds)

    bucket = TokenBucket(10, burst=5, clock=fake.clock, sleep=sleep)
    waits = []
    waits_lock = threading.Lock()

    def worker():
        for _ in range(10):
            wait = bucket.acquire()
            with waits_lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waits) == 40
    assert waits.count(0.0) == 5
    assert fake.now - 1000.0 == pytest.approx(35 * 0.1)
