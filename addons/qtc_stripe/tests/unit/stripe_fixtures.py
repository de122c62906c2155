"""Real-shaped Stripe events for the unit tests, built from ``tests/fixtures``.

The fixture files are Stripe's own example objects (see the README there). Each
call returns fresh dicts, so a test can change them freely.
"""

import functools
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EVENT_CREATED = 1_700_000_000


@functools.cache
def _text(name):
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def load(name):
    """A fresh copy of the fixture object ``name`` (e.g. ``"payment_intent"``)."""
    return json.loads(_text(name))


def make_event(
    event_type,
    data_object,
    *,
    event_id="evt_test_0001",
    created=EVENT_CREATED,
    livemode=False,
):
    """The fixture event with ``type`` and ``data.object`` replaced."""
    event = load("event")
    event.update(id=event_id, type=event_type, created=created, livemode=livemode)
    event["data"]["object"] = data_object
    return event


def object_event(event_type, fixture_name, **changes):
    """An event around the fixture object ``fixture_name`` with ``changes`` set."""
    data_object = load(fixture_name)
    data_object.update(changes)
    return make_event(event_type, data_object)
