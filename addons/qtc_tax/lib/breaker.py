"""A circuit breaker for the tax engine: stop calling an engine that is down.

When AvaTax times out or answers 5xx again and again, every order line waiting on
it would wait out its own timeout. The breaker notices and fails fast instead, so
the Odoo layer can fall back (rate table, or "tax pending" with an exception)
at once. The state machine:

- ``closed``: calls go through. Each transient failure is remembered; when
  ``failure_threshold`` of them fall within ``window`` seconds, the breaker opens.
  Successes do not erase earlier failures: a flapping engine still opens it.
- ``open``: calls are refused until ``cooldown`` seconds have passed since it
  opened; then the next caller becomes the probe and the breaker is half open.
- ``half_open``: one probe call is in flight and everyone else is refused. Its
  success closes the breaker (failures forgotten); its failure opens it again for
  another cooldown. A probe that never reports (its worker died) is given up
  after one cooldown, and the next caller probes instead.

Only transient failures (``TaxEngineUnavailable``) should be recorded: a rejected
document says nothing about the engine's health.

The breaker is pure: time comes from an injectable ``clock`` (wall-clock seconds,
``time.time`` by default, because the state is shared between Odoo workers
through the database and a monotonic clock means nothing in another process), and
:meth:`CircuitBreaker.to_dict` / :meth:`CircuitBreaker.from_dict` let the Odoo
layer persist the state on the backend record between calls.
"""

import math
import time

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)


class CircuitBreaker:
    """The breaker of one engine backend.

    :param failure_threshold: failures within ``window`` that open it (>= 1)
    :param window: seconds over which failures are counted (> 0)
    :param cooldown: seconds it stays open before a probe (> 0)
    :param clock: ``callable() -> float`` seconds; ``time.time`` by default
    :raises ValueError: for settings out of range
    """

    def __init__(self, *, failure_threshold=5, window=60.0, cooldown=30.0, clock=None):
        if isinstance(failure_threshold, bool) or not isinstance(
            failure_threshold, int
        ):
            raise ValueError("failure_threshold must be an integer")
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        for name, value in (("window", window), ("cooldown", cooldown)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number of seconds")
            if value <= 0:
                raise ValueError(f"{name} must be > 0")
        self.failure_threshold = failure_threshold
        self.window = float(window)
        self.cooldown = float(cooldown)
        self._clock = clock or time.time
        self.state = CLOSED
        self.failures = []
        self.opened_at = None
        self.probe_started_at = None

    # -- decisions -----------------------------------------------------------------

    def allow_request(self):
        """Tell whether a call may go to the engine now, and take the probe slot if
        this call becomes the half-open probe.

        :returns: True to call the engine, False to fail fast
        """
        now = self._now()
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._elapsed(self.opened_at, now) < self.cooldown:
                return False
            self.state = HALF_OPEN
            self.probe_started_at = now
            return True
        # Half open: one probe at a time, unless the probe has gone silent.
        if (
            self.probe_started_at is not None
            and self._elapsed(self.probe_started_at, now) < self.cooldown
        ):
            return False
        self.probe_started_at = now
        return True

    def record_success(self):
        """Record a successful call. Closes a half-open breaker.

        A success reported while open (a call that started before the breaker
        opened) changes nothing: the probe decides.
        """
        if self.state == HALF_OPEN:
            self._close()
        elif self.state == CLOSED:
            self._prune(self._now())

    def record_failure(self):
        """Record a transient failure. May open the breaker (or reopen it)."""
        now = self._now()
        if self.state == HALF_OPEN:
            self._open(now)
            return
        if self.state == OPEN:
            return
        self.failures.append(now)
        self._prune(now)
        if len(self.failures) >= self.failure_threshold:
            self._open(now)

    def seconds_until_probe(self):
        """How long until a probe is allowed: 0 unless open (or probing).

        :returns: seconds (``float`` >= 0), for the Odoo layer's retry delay
        """
        now = self._now()
        if self.state == OPEN:
            return max(0.0, self.cooldown - self._elapsed(self.opened_at, now))
        if self.state == HALF_OPEN and self.probe_started_at is not None:
            return max(0.0, self.cooldown - self._elapsed(self.probe_started_at, now))
        return 0.0

    # -- persistence ---------------------------------------------------------------

    def to_dict(self):
        """Return the state as a JSON-ready dict (settings are not included: they
        belong to the backend's configuration).

        :returns: ``{"state", "failures", "opened_at", "probe_started_at"}``
        """
        self._prune(self._now())
        return {
            "state": self.state,
            "failures": list(self.failures),
            "opened_at": self.opened_at,
            "probe_started_at": self.probe_started_at,
        }

    @classmethod
    def from_dict(cls, data, **settings):
        """Rebuild a breaker from :meth:`to_dict` output.

        :param data: the stored dict, or ``None``/``{}`` for a fresh closed breaker
        :param settings: the constructor's keyword arguments (threshold, window,
            cooldown, clock)
        :returns: a :class:`CircuitBreaker`
        :raises ValueError: if ``data`` is not a state this class wrote
        """
        breaker = cls(**settings)
        if data is None:
            return breaker
        if not isinstance(data, dict):
            raise ValueError("breaker state must be a dict")
        if not data:
            return breaker
        state = data.get("state")
        if state not in STATES:
            raise ValueError(f"unknown breaker state {state!r}")
        failures = data.get("failures") or []
        if not isinstance(failures, list) or not all(
            _is_time(moment) for moment in failures
        ):
            raise ValueError("breaker failures must be a list of timestamps")
        opened_at = data.get("opened_at")
        probe_started_at = data.get("probe_started_at")
        for name, value in (
            ("opened_at", opened_at),
            ("probe_started_at", probe_started_at),
        ):
            if value is not None and not _is_time(value):
                raise ValueError(f"breaker {name} must be a timestamp or null")
        if state in (OPEN, HALF_OPEN) and opened_at is None:
            raise ValueError(f"a {state} breaker needs opened_at")
        breaker.state = state
        breaker.failures = sorted(float(moment) for moment in failures)
        breaker.opened_at = None if opened_at is None else float(opened_at)
        breaker.probe_started_at = (
            None if probe_started_at is None else float(probe_started_at)
        )
        breaker._prune(breaker._now())
        return breaker

    # -- internals -----------------------------------------------------------------

    def _now(self):
        return float(self._clock())

    @staticmethod
    def _elapsed(since, now):
        # A clock that went backwards (a worker with another time, an NTP step)
        # cannot say how long it has been: let a probe through rather than keep
        # the breaker open until the clock catches up.
        if now < since:
            return math.inf
        return now - since

    def _prune(self, now):
        # Keep the failures inside the window, and never more than needed to
        # decide, so the persisted state stays small.
        horizon = now - self.window
        recent = [moment for moment in self.failures if moment > horizon]
        self.failures = recent[-self.failure_threshold :]

    def _open(self, now):
        self.state = OPEN
        self.opened_at = now
        self.probe_started_at = None

    def _close(self):
        self.state = CLOSED
        self.failures = []
        self.opened_at = None
        self.probe_started_at = None


def _is_time(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
