"""The error vocabulary, re-exported for the Odoo side of every connector.

Defined in ``lib/errors.py`` so plain modules can raise them too.
"""

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
    "RetryableError",
    "UndecryptableSecret",
]
