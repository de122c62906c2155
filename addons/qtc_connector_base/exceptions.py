"""The error vocabulary, re-exported for the Odoo side of every connector.

Defined in ``lib/errors.py`` so plain modules can raise them too.
"""

from .lib.errors import BusinessError, ConfigError, QtcError, RetryableError
from .lib.http import HttpBusinessError
from .lib.secretbox import KeyConfigError, UndecryptableSecret

__all__ = [
    "BusinessError",
    "ConfigError",
    "HttpBusinessError",
    "KeyConfigError",
    "QtcError",
    "RetryableError",
    "UndecryptableSecret",
]
