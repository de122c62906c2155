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


def test_person_text_names_message_problems_and_action():
    error = BusinessError(
        "Draft invoice cannot be sent to the tax engine.",
        category="tax",
        problems=["ship_to.country: Acme has no country.", "lines: no product line"],
        suggested_action="Complete the data named above, then try again.",
    )
    assert error.person_text() == (
        "Draft invoice cannot be sent to the tax engine.\n\n"
        "Problems:\n"
        "- ship_to.country: Acme has no country.\n"
        "- lines: no product line\n\n"
        "What to do: Complete the data named above, then try again."
    )
    # The one-line summary stays what the exception queue and logs show.
    assert str(error) == "Draft invoice cannot be sent to the tax engine."
    assert error.summary == str(error)


def test_person_text_default_action_and_labels():
    error = BusinessError("Unknown customer cus_1", category="unknown_customer")
    assert error.person_text() == "Unknown customer cus_1"
    assert error.person_text(default_action="Link it.", action_label="À faire :") == (
        "Unknown customer cus_1\n\nÀ faire : Link it."
    )
    # Its own suggestion wins over the default; a problem repeating the
    # message is not listed twice.
    error = BusinessError(
        "Rate missing",
        problems=["Rate missing", "state: IL"],
        suggested_action="Add the rate.",
    )
    assert error.person_text(
        default_action="Something else.", problems_label="Issues:"
    ) == ("Rate missing\n\nIssues:\n- state: IL\n\nWhat to do: Add the rate.")
