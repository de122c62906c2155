"""A token bucket: at most ``rate`` calls a second, bursts up to ``burst``.

One bucket per backend and process keeps outbound calls under a provider's limit
(Stripe: 25/s in test mode, 100/s live). It blocks the caller for the needed time
instead of failing; across processes each one gets its own share, so set the rate
to the provider's limit divided by the number of Odoo worker processes.
"""

import threading
import time


class TokenBucket:
    """Thread-safe token bucket.

    :param rate: tokens added per second (> 0)
    :param burst: bucket size (>= 1); defaults to ``max(1, rate)``
    :param clock: monotonic clock, injectable for tests
    :param sleep: sleep function, injectable for tests
    """

    def __init__(self, rate, burst=None, clock=time.monotonic, sleep=time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            # A bucket that cannot hold one token runs at a fraction of ``rate``.
            raise ValueError("burst must be at least 1")
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self):
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self):
        """Take one token, sleeping until one is available; returns the wait."""
        with self._lock:
            self._refill()
            wait = 0.0
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                self._sleep(wait)
                self._refill()
            self._tokens -= 1
            return wait
