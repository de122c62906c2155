"""The error vocabulary the job runner classifies failures by."""

from qtc_connector_base.lib.errors import (
    BusinessError,
    ConfigError,
    QtcError,
    RetryableError,
)


def test_hierarchy():
    for cls in (ConfigError, RetryableError, BusinessError):
        assert issubclass(cls, QtcError)
        assert issubclass(cls, Exception)
    assert not issubclass(RetryableError, BusinessError)
    assert not issubclass(BusinessError, RetryableError)
    assert not issubclass(ConfigError, RetryableError)


def test_retryable_error_delay():
    assert RetryableError("timed out").delay is None
    error = RetryableError("429", delay=7.0)
    assert error.delay == 7.0
    assert str(error) == "429"


def test_business_error_defaults():
    error = BusinessError("Unknown customer")
    assert str(error) == "Unknown customer"
    assert error.category == "data"
    assert error.problems == []
    assert error.severity == "medium"
    assert error.suggested_action is None
    assert error.records == []
    assert error.details() == "Unknown customer"


def test_business_error_keeps_every_problem():
    problems = ("partner: no VAT number", "country: XX is not a country")
    records = (("res.partner", 7),)
    error = BusinessError(
        "Customer data incomplete",
        category="mapping",
        problems=problems,
        severity="high",
        suggested_action="Complete the customer and replay the event.",
        records=records,
    )
    assert error.problems == list(problems)
    assert error.records == [("res.partner", 7)]
    assert error.category == "mapping"
    assert error.severity == "high"
    assert error.suggested_action == "Complete the customer and replay the event."
    assert error.details() == (
        "Customer data incomplete\n"
        "- partner: no VAT number\n"
        "- country: XX is not a country"
    )


def test_business_error_copies_problem_list():
    problems = ["one"]
    error = BusinessError("x", problems=problems)
    problems.append("two")
    assert error.problems == ["one"]
