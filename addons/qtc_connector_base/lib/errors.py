"""The error vocabulary every connector speaks.

The job runner decides what happens to a failed job from the class of the error:

- ``RetryableError``: a transient failure (timeout, 429, 5xx, lock contention). The
  job goes back to pending with a backoff delay, or a delay the error carries (a
  ``Retry-After``), until its attempts run out; then it is dead.
- ``BusinessError``: the data or the configuration is wrong and retrying will not
  help. The job stops in ``failed`` and an exception is opened for a person, with
  the category, the problems (all of them, not just the first) and a suggested action.
- ``ConcurrencyConflict`` (a ``RetryableError``): the work met a concurrent
  transaction. The runner runs the job again at once in a fresh transaction, a
  few times, before the backoff takes over; PostgreSQL's serialization failures
  and deadlocks are treated the same way as they are.
- ``ConfigError``: the suite itself is misconfigured (no encryption key, a backend
  without credentials). Raised to the administrator; never retried silently.

A business error that reaches a person (a button they pressed) is shown whole:
``person_text()`` is its message, every problem and the suggested action, the
text the Odoo side puts in the dialog (``exceptions.QtcUserError``).

Messages never carry secrets: they are shown in the UI and written to logs.
"""


class QtcError(Exception):
    """Base class of every QTC error."""


class ConfigError(QtcError):
    """The suite is misconfigured; an administrator must act."""


class RetryableError(QtcError):
    """A transient failure worth retrying.

    :param message: what failed, safe to show and log
    :param delay: seconds to wait before the next attempt, when the remote side
        said (``Retry-After``); ``None`` lets the backoff schedule decide
    """

    def __init__(self, message, delay=None):
        super().__init__(message)
        self.delay = delay


class ConcurrencyConflict(RetryableError):
    """The work collided with a concurrent transaction (it changed or took
    something this one needed, e.g. the next number of a journal): nothing is
    wrong with the data, and the same work in a fresh transaction succeeds.

    Raised by a connector that detects such a collision itself; the ``delay``
    is used only once the immediate retries are spent.
    """


class BusinessError(QtcError):
    """A failure a person must resolve: bad data, unmapped value, ambiguity.

    :param message: one-line summary for the exception queue
    :param category: a code from ``EXCEPTION_CATEGORIES`` (const.py of the base)
    :param problems: every problem found, each a short sentence naming the field
    :param severity: ``low``, ``medium`` (default) or ``high``
    :param suggested_action: what the finance user should do next
    :param records: ``(model, id)`` pairs of the records concerned
    :param external_ref: ``(external type, external id)`` of an external record
        a person may link to an existing Odoo record (e.g. an unknown customer)
    """

    def __init__(
        self,
        message,
        category="data",
        problems=None,
        severity="medium",
        suggested_action=None,
        records=None,
        external_ref=None,
    ):
        super().__init__(message)
        # The one-line summary, kept apart from ``str(self)``: a subclass shown
        # to a person makes its text the whole explanation (``person_text``).
        self.summary = str(message)
        self.external_ref = tuple(external_ref) if external_ref else None
        self.category = category
        self.problems = list(problems or [])
        self.severity = severity
        self.suggested_action = suggested_action
        self.records = list(records or [])

    def details(self):
        """The message followed by one line per problem."""
        lines = [self.summary]
        lines.extend(f"- {problem}" for problem in self.problems)
        return "\n".join(lines)

    def person_text(
        self,
        default_action=None,
        problems_label="Problems:",
        action_label="What to do:",
    ):
        """What a person reads: the message, every problem, the suggestion.

        :param default_action: shown when the error names no suggested action
        :param problems_label: heading of the problem list (translated by the
            caller)
        :param action_label: heading of the suggested action
        :returns: plain text, one problem a line, blank lines between parts
        """
        parts = [self.summary]
        problems = [str(p) for p in self.problems if str(p) and str(p) != self.summary]
        if problems:
            parts.append("\n".join([problems_label, *(f"- {p}" for p in problems)]))
        action = self.suggested_action or default_action
        if action:
            parts.append(f"{action_label} {action}")
        return "\n\n".join(parts)
