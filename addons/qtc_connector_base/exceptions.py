"""The error vocabulary, re-exported for the Odoo side of every connector.

Defined in ``lib/errors.py`` so plain modules can raise them too.

A business error that reaches a person is shown whole, with its problems and
what to do: ``QtcUserError`` is a ``BusinessError`` (the job runner and the
exception queue read its category, problems and suggestion) and a ``UserError``
(the web client shows it in its warning dialog) whose text is the message, every
problem and the suggested action. Code that raises to a person raises it (or a
subclass); a ``BusinessError`` that escapes a button or a call of the web client
anyway becomes one at the web client's door (``controllers/person_errors.py``),
and code that shows an error itself (a notification, a dry run's result) shows
``person_message(error)``.
"""

import contextlib

from odoo.exceptions import UserError
from odoo.http import request

from .lib.errors import (
    BusinessError,
    ConcurrencyConflict,
    ConfigError,
    QtcError,
    RetryableError,
)
from .lib.http import HttpBusinessError
from .lib.secretbox import KeyConfigError, UndecryptableSecret

__all__ = [
    "BusinessError",
    "ConcurrencyConflict",
    "ConfigError",
    "HttpBusinessError",
    "KeyConfigError",
    "QtcError",
    "QtcUserError",
    "RetryableError",
    "UndecryptableSecret",
    "default_suggested_action",
    "person_errors",
    "person_message",
]


def _translator(env=None):
    """``env._``, or the current request's (the person's language); in a job
    or a shell the source text, without guessing a language."""
    if env is None and request:
        env = request.env
    if env is not None:
        return env._

    def untranslated(source, *args, **kwargs):
        return source % (args or kwargs) if (args or kwargs) else source

    return untranslated


def default_suggested_action(category, env=None):
    """What to do about an error of ``category`` that names no action itself.

    :param category: a code of ``const.EXCEPTION_CATEGORIES``
    :param env: the environment whose language to use (default: the current
        request's, else untranslated)
    :returns: a sentence for the person (never empty)
    """
    _ = _translator(env)
    actions = {
        "data": _(
            "Correct the data named above (in the sending system, or with Edit "
            "and replay), then Retry."
        ),
        "mapping": _(
            "Add the missing line to the value map named above (Quote-to-Cash ▸ "
            "Configuration ▸ Value maps), then Retry."
        ),
        "unknown_customer": _(
            "Link the external customer to an existing customer (Link to), or "
            "create it in the sending system, then Retry."
        ),
        "unknown_record": _(
            "Link the external record to an existing record (Link to), or create "
            "it in the sending system, then Retry."
        ),
        "unapplied_cash": _(
            "Link the payment to the invoice it pays (Link to), or Ignore it "
            "with a reason."
        ),
        "overpayment": _(
            "Refund the excess or keep it as the customer's credit, then mark "
            "the exception resolved."
        ),
        "dispute": _(
            "Answer the dispute with the payment provider before its deadline; "
            "the outcome is applied when it arrives."
        ),
        "tax": _(
            "Correct the data named above (customer address, product tax code, "
            "exemption), then try again."
        ),
        "change_order": _(
            "Review the change against the confirmed order and adjust the order "
            "by hand, or apply the added lines."
        ),
        "credit_note": _(
            "Issue the credit note the correction needs, then mark the exception "
            "resolved."
        ),
        "rate": _("Align the rate of the order and of the sender, then Retry."),
        "reconciliation": _(
            "Reconcile the entries named above by hand, then mark the exception "
            "resolved."
        ),
        "remote_rejected": _(
            "Read the remote system's answer above, correct what it names, then Retry."
        ),
        "configuration": _(
            "Complete the backend's settings (Quote-to-Cash ▸ Configuration ▸ "
            "Backends, QTC Manager), then try again."
        ),
        "lock_date": _(
            "Post in an open period or ask an accountant to move the lock date, "
            "then Retry."
        ),
        "dead_job": _("Fix the cause (remote system down, configuration), then Retry."),
    }
    return actions.get(category) or actions["data"]


def _person_text(error):
    _ = _translator()
    return error.person_text(
        default_action=default_suggested_action(error.category),
        problems_label=_("Problems:"),
        action_label=_("What to do:"),
    )


class QtcUserError(BusinessError, UserError):
    """A business error a person's action hit, shown to them whole.

    Takes the arguments of ``BusinessError``; ``str()`` of it (and the text of
    the web client's dialog) is the message, every problem and the suggested
    action (the category's usual action when none is given). ``summary`` keeps
    the one-line message, which the exception queue uses as its title.
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
        super().__init__(
            message,
            category=category,
            problems=problems,
            severity=severity,
            suggested_action=suggested_action,
            records=records,
            external_ref=external_ref,
        )
        self.args = (_person_text(self),)
        # The web client opens its warning dialog for the UserError classes it
        # knows by name; for a subclass it reads the class to show it as here.
        self.context = {"exception_class": "odoo.exceptions.UserError"}

    @classmethod
    def from_error(cls, error):
        """The ``QtcUserError`` to raise to a person for ``error``.

        :param error: a ``BusinessError`` (its category, problems, suggestion,
            records and external reference are kept) or a ``ConfigError``
            (category configuration)
        """
        if isinstance(error, cls):
            return error
        if isinstance(error, BusinessError):
            return cls(
                error.summary,
                category=error.category,
                problems=error.problems,
                severity=error.severity,
                suggested_action=error.suggested_action,
                records=error.records,
                external_ref=error.external_ref,
            )
        _ = _translator()
        return cls(
            str(error),
            category="configuration",
            severity="high",
            suggested_action=_(
                "An administrator must correct the server configuration named above."
            ),
        )


def person_message(error):
    """The text to show a person for ``error`` (a notification, a dry run's
    result): a business error's message, problems and suggested action; any
    other error's own message."""
    if isinstance(error, QtcUserError):
        return str(error)
    if isinstance(error, BusinessError):
        return _person_text(error)
    if isinstance(error, ConfigError):
        return str(QtcUserError.from_error(error))
    return str(error) or type(error).__name__


@contextlib.contextmanager
def person_errors():
    """Raise what escapes the block to a person as they can act on it: a
    ``BusinessError`` or ``ConfigError`` as a ``QtcUserError``, a transient
    failure as a ``UserError`` saying to try again; anything else unchanged.
    """
    try:
        yield
    except UserError:
        raise
    except (BusinessError, ConfigError) as error:
        raise QtcUserError.from_error(error) from error
    except RetryableError as error:
        _ = _translator()
        raise UserError(
            _(
                "%(error)s\n\nThis is usually temporary: try again in a few minutes.",
                error=str(error),
            )
        ) from error
