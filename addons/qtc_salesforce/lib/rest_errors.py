"""Salesforce REST error bodies, read into one shape and classified.

A failed REST call answers with a JSON array::

    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]

sometimes with ``fields``; the OAuth token endpoint answers with an object
(``{"error": "invalid_grant", "error_description": "..."}``), and a proxy or
an outage can answer with HTML. ``parse_error_body`` accepts all of them and
always returns at least one ``ApiError``, so the caller can log and store a
reason without its own fallback code.

The classification tells the job runner what to do: an expired session means
"get a new token and try once more", lock contention or a limit means "retry
later", an invalid query locator means "restart the query from the
watermark", anything else needs a person.
"""

import json
from dataclasses import dataclass

# Transient: the same request can succeed later.
RETRYABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_LIMIT_EXCEEDED",
        "SERVER_UNAVAILABLE",
        "QUERY_TIMEOUT",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "TXN_SECURITY_NO_ACCESS_TIMEOUT",
    }
)
# The access token is no longer valid: obtain a new one, then retry.
AUTH_CODES = frozenset({"INVALID_SESSION_ID", "INVALID_AUTH_HEADER"})
# The query cursor expired (about 15 minutes idle): re-run the query.
RESTART_QUERY_CODES = frozenset({"INVALID_QUERY_LOCATOR", "INVALID_QUERY_KEY"})
UNKNOWN_ERROR = "UNKNOWN_ERROR"
MESSAGE_MAX_CHARS = 500


@dataclass(frozen=True)
class ApiError:
    """One error Salesforce reported.

    :ivar error_code: ``errorCode`` (REST), ``statusCode`` (sObject
        Collections results) or ``error`` (OAuth); ``UNKNOWN_ERROR`` when the
        body did not say
    :ivar message: the human-readable text, at most 500 characters
    :ivar fields: the field API names concerned, when given
    """

    error_code: str
    message: str
    fields: tuple = ()

    @property
    def retryable(self):
        """True when retrying the same request later can succeed."""
        return self.error_code in RETRYABLE_CODES

    @property
    def auth_failure(self):
        """True when a new access token is needed."""
        return self.error_code in AUTH_CODES

    @property
    def restart_query(self):
        """True when the query must be run again from the start."""
        return self.error_code in RESTART_QUERY_CODES


def parse_error_body(body):
    """Read a REST or OAuth error body.

    :param body: raw ``bytes``/``str`` or already-decoded JSON
    :returns: a non-empty tuple of ``ApiError``; a body that is not a known
        shape gives one ``UNKNOWN_ERROR`` carrying a short excerpt
    """
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        text = body
        try:
            body = json.loads(text)
        except ValueError:
            return (ApiError(UNKNOWN_ERROR, _short(text.strip()) or "empty body"),)
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return (ApiError(UNKNOWN_ERROR, _short(json.dumps(body))),)
    errors = tuple(
        error for error in (error_from_object(item) for item in body) if error
    )
    return errors or (ApiError(UNKNOWN_ERROR, _short(json.dumps(body))),)


def error_from_object(item):
    """One ``ApiError`` from one error object, or ``None`` if it is not one.

    Accepts ``errorCode`` (REST), ``statusCode`` (collection results) and
    ``error``/``error_description`` (OAuth).
    """
    if not isinstance(item, dict):
        return None
    code = item.get("errorCode") or item.get("statusCode") or item.get("error")
    message = item.get("message")
    if message is None:
        message = item.get("error_description")
    if not code and message is None:
        return None
    fields = item.get("fields")
    return ApiError(
        error_code=str(code) if code else UNKNOWN_ERROR,
        message=_short(str(message or "")),
        fields=tuple(str(name) for name in fields) if isinstance(fields, list) else (),
    )


def _short(text):
    return text[:MESSAGE_MAX_CHARS]
