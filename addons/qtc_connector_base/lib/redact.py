"""Remove secrets from what is logged, stored as audit, or shown.

Headers and payload keys that usually carry credentials are masked by name;
known secret values (the backend's own credentials) are masked wherever they
appear in text. Masking keeps the first characters of nothing: a partial secret
is still a leak for short tokens.
"""

import re

MASK = "***"
SENSITIVE_KEY = re.compile(
    r"(authori[sz]ation|password|passwd|secret|token|api[-_]?key|private[-_]?key|"
    r"signature|cookie|session|client[-_]?secret|assertion)",
    re.IGNORECASE,
)


def is_sensitive_key(key):
    """True when a header or field name usually carries a credential."""
    return bool(SENSITIVE_KEY.search(str(key)))


def redact_mapping(mapping):
    """A copy of a (nested) dict/list with sensitive keys masked."""
    if isinstance(mapping, dict):
        return {
            key: MASK if is_sensitive_key(key) else redact_mapping(value)
            for key, value in mapping.items()
        }
    if isinstance(mapping, list):
        return [redact_mapping(value) for value in mapping]
    return mapping


def redact_text(text, secrets):
    """``text`` with every occurrence of each known secret masked.

    Secrets shorter than 4 characters are ignored: masking them would mangle
    ordinary text without protecting anything real.
    """
    if not text:
        return text
    for secret in sorted(
        {s for s in secrets if s and len(s) >= 4}, key=len, reverse=True
    ):
        text = text.replace(secret, MASK)
    return text
