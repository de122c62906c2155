"""Retry delays: exponential backoff with full jitter, capped.

``delay(attempt)`` for attempt 1, 2, 3... grows as ``base * 2 ** (attempt - 1)``
up to ``cap``; jitter spreads retries of many jobs that failed together (a remote
outage) so they do not all come back at the same second. With ``jitter=0.5`` the
delay is uniformly drawn in ``[d / 2, d]``: never zero, never above the cap.
"""

import random

DEFAULT_BASE = 10.0
DEFAULT_CAP = 3600.0


def nominal_delay(attempt, base=DEFAULT_BASE, cap=DEFAULT_CAP):
    """The delay before retry number ``attempt`` without jitter, in seconds.

    :param attempt: 1 for the first retry
    :raises ValueError: for an attempt below 1 or a negative base or cap
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be positive")
    # 2 ** 64 is far past any cap; bounding the exponent avoids huge floats.
    return min(cap, base * 2 ** min(attempt - 1, 64))


def delay(attempt, base=DEFAULT_BASE, cap=DEFAULT_CAP, jitter=0.5, rng=random):
    """The delay before retry number ``attempt`` with jitter, in seconds.

    :param jitter: fraction of the nominal delay that is randomised (0 to 1)
    :param rng: a ``random.Random``-like source, injectable for tests
    """
    if not 0 <= jitter <= 1:
        raise ValueError("jitter is a fraction between 0 and 1")
    nominal = nominal_delay(attempt, base, cap)
    return nominal * (1 - jitter) + nominal * jitter * rng.random()


def schedule(attempts, base=DEFAULT_BASE, cap=DEFAULT_CAP):
    """The nominal delays for retries 1..attempts, for display and docs."""
    return [nominal_delay(n, base, cap) for n in range(1, attempts + 1)]
