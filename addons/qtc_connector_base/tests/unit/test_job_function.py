"""Job functions: marked in code, found along the MRO, nothing else passes."""

from qtc_connector_base.lib.job_function import MARKER, is_job_function, job_function


class Base:
    @job_function
    def _sync(self):
        return "base"

    def _helper(self):
        return "not a job"

    @staticmethod
    @job_function
    def _static():
        return "static"

    not_callable = 42


class Override(Base):
    def _sync(self):  # an addon's override, without the decorator
        return "override"


class Unrelated:
    def _sync(self):
        return "same name, other model"


def test_decorator_returns_the_function_marked():
    def target():
        return 1

    assert job_function(target) is target
    assert getattr(target, MARKER) is True


def test_marked_method_is_a_job_function():
    assert is_job_function(Base, "_sync")
    assert is_job_function(Base, "_static")


def test_override_in_a_subclass_stays_registered():
    assert is_job_function(Override, "_sync")


def test_unmarked_method_is_refused():
    assert not is_job_function(Base, "_helper")
    assert not is_job_function(Override, "_helper")


def test_same_name_on_an_unrelated_class_is_refused():
    assert not is_job_function(Unrelated, "_sync")


def test_inherited_builtins_and_missing_names_are_refused():
    for name in ("write", "__init__", "__class__", "not_callable", "_missing"):
        assert not is_job_function(Base, name)


def test_names_that_are_not_identifiers_are_refused():
    for name in (None, "", "a.b", "_sync()", 42, ["_sync"]):
        assert not is_job_function(Base, name)


def test_a_truthy_but_forged_marker_is_refused():
    class Forged:
        def _run(self):
            return "forged"

    Forged._run.__dict__[MARKER] = "yes"  # only the exact mark counts
    assert not is_job_function(Forged, "_run")
