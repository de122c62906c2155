"""The published API files (JSON Schema, OpenAPI) agree with work_item.py."""

import json
from pathlib import Path

import pytest
import yaml

from qtc_psa_timesheets.lib import reconciliation
from qtc_psa_timesheets.lib import work_item as wi

API = Path(__file__).resolve().parent.parent.parent / "static" / "api"
PATH = "/qtc/psa/{backend_id}/work_items"


@pytest.fixture(scope="module")
def schema():
    return json.loads((API / "work_items.schema.json").read_text())


@pytest.fixture(scope="module")
def openapi():
    return yaml.safe_load((API / "openapi.yaml").read_text())


@pytest.fixture(scope="module")
def item_schema(schema):
    return schema["$defs"]["WorkItem"]


def _conditional_rules(item_schema, field):
    """Map ``const`` value -> ``then`` clause of the ``if field == const`` rules."""
    rules = {}
    for rule in item_schema["allOf"]:
        condition = rule["if"]["properties"].get(field)
        if condition is not None:
            assert rule["if"]["required"] == [field]
            rules[condition["const"]] = rule["then"]
    return rules


# -- JSON Schema vs work_item.py ---------------------------------------------------


def test_schema_is_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["items"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["items"]["items"] == {"$ref": "#/$defs/WorkItem"}


def test_schema_fields_are_the_module_fields(item_schema):
    assert tuple(item_schema["properties"]) == wi.FIELDS
    assert item_schema["additionalProperties"] is False


def test_schema_required_fields_agree(item_schema):
    assert item_schema["required"] == list(wi.REQUIRED_FIELDS)
    one_of = [alternative["required"] for alternative in item_schema["anyOf"]]
    assert one_of == [[name] for name in wi.ONE_OF_REQUIRED]


def test_schema_enums_agree(item_schema):
    assert item_schema["properties"]["kind"]["enum"] == list(wi.KINDS)
    assert item_schema["properties"]["status"]["enum"] == list(wi.STATUSES)


def test_schema_kind_rules_agree(item_schema):
    rules = _conditional_rules(item_schema, "kind")
    assert set(rules) == set(wi.KINDS)
    for kind, then in rules.items():
        assert then["required"] == list(wi.REQUIRED_BY_KIND[kind]), kind
        forbidden = {
            name
            for name, constraint in then["properties"].items()
            if constraint == {"type": "null"}
        }
        assert forbidden == set(wi.FORBIDDEN_BY_KIND[kind]), kind


def test_schema_status_rules_agree(item_schema):
    rules = _conditional_rules(item_schema, "status")
    required = {status: tuple(then["required"]) for status, then in rules.items()}
    expected = {
        status: names for status, names in wi.REQUIRED_BY_STATUS.items() if names
    }
    assert required == expected


def test_schema_limits_agree(item_schema, schema):
    properties = item_schema["properties"]
    assert properties["external_id"]["maxLength"] == wi.MAX_EXTERNAL_ID_LENGTH
    assert schema["$defs"]["Ref"]["maxLength"] == wi.MAX_REF_LENGTH
    assert properties["description"]["maxLength"] == wi.MAX_DESCRIPTION_LENGTH
    email = properties["employee_email"]["anyOf"][0]
    assert email["maxLength"] == wi.MAX_EMAIL_LENGTH
    hours = properties["hours"]["anyOf"][0]
    assert (hours["exclusiveMinimum"], hours["maximum"]) == (0, wi.MAX_HOURS)


# -- the schema judges sample payloads like the validator does ---------------------

VALID = [
    {
        "external_id": "TE-1",
        "version": 0,
        "kind": "time",
        "project_ref": "P",
        "employee_email": "ada@example.com",
        "date": "2026-03-02",
        "hours": 7.5,
        "approved_at": "2026-03-03T09:00:00Z",
        "status": "approved",
    },
    {
        "external_id": "EX-1",
        "updated_at": "2026-03-03T09:00:00+01:00",
        "kind": "expense",
        "project_ref": "P",
        "employee_email": "ada@example.com",
        "date": "2026-03-02",
        "amount": "84.20",
        "currency": "eur",
        "status": "withdrawn",
        "rate": None,
    },
    {
        "external_id": "MS-1",
        "version": 2,
        "kind": "milestone",
        "project_ref": "P",
        "milestone_ref": "phase-1",
        "date": "2026-03-31",
        "approved_at": "2026-03-31T17:00:00Z",
        "status": "approved",
        "billable": False,
        "description": None,
    },
]


def _broken(index, **changes):
    data = dict(VALID[index])
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


INVALID = [
    _broken(0, hours=...),
    _broken(0, hours=0),
    _broken(0, hours=24.5),
    _broken(0, hours=None),
    _broken(0, version=..., updated_at=...),
    _broken(0, version=None),
    _broken(0, version=-1),
    _broken(0, approved_at=...),
    _broken(0, approved_at="2026-03-03T09:00:00"),
    _broken(0, amount=1),
    _broken(0, colour="blue"),
    _broken(0, kind="travel"),
    _broken(0, external_id="x" * 129),
    _broken(0, date="2026/03/02"),
    _broken(0, employee_email="not-an-email"),
    _broken(1, currency=...),
    _broken(1, currency="EURO"),
    _broken(1, hours=1),
    _broken(1, amount="-3"),
    _broken(2, milestone_ref=...),
    _broken(2, amount="10"),
    _broken(2, status="pending"),
    _broken(2, billable="yes"),
]


def test_samples_agree_with_the_validator():
    for data in VALID:
        wi.validate_work_item(data)
    for data in INVALID:
        with pytest.raises(wi.WorkItemError):
            wi.validate_work_item(data)


def test_samples_agree_with_the_schema(schema):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors({"items": VALID})) == []
    for data in INVALID:
        assert not validator.is_valid({"items": [data]}), data
    assert not validator.is_valid({"items": VALID, "extra": 1})
    assert not validator.is_valid([VALID[0]])


# -- OpenAPI -----------------------------------------------------------------------


def test_openapi_version_and_operation(openapi):
    assert openapi["openapi"].startswith("3.1")
    assert list(openapi["paths"]) == [
        PATH,
        "/qtc/psa/{backend_id}/billing_status",
        "/qtc/psa/{backend_id}/reconciliation_totals",
    ]
    assert list(openapi["paths"][PATH]) == ["post"]


def test_openapi_reconciliation_totals_agree_with_the_parser(openapi):
    schemas = openapi["components"]["schemas"]
    body = schemas["ReconciliationTotals"]
    assert body["required"] == ["period", "items"]
    assert body["properties"]["items"]["maxItems"] == reconciliation.MAX_TOTALS_ITEMS
    item = schemas["ReconciliationItem"]
    assert tuple(item["properties"]["kind"]["enum"]) == reconciliation.KINDS
    assert item["required"] == ["external_id", "kind", "date"]
    assert set(body["properties"]["totals"]["properties"]) == {
        "time_hours",
        "expense_amount",
    }
    example = openapi["paths"]["/qtc/psa/{backend_id}/reconciliation_totals"]["post"][
        "requestBody"
    ]["content"]["application/json"]["example"]
    parsed = reconciliation.parse_totals(example)
    assert len(parsed.facts) == len(example["items"])


def test_openapi_parameters(openapi):
    parameters = {p["name"]: p for p in openapi["paths"][PATH]["post"]["parameters"]}
    assert parameters["backend_id"]["in"] == "path"
    assert parameters["backend_id"]["required"] is True
    signature = parameters["X-QTC-Signature"]
    assert (signature["in"], signature["required"]) == ("header", True)
    assert signature["schema"]["pattern"] == "^t=[0-9]+,v1=[0-9a-f]{64}$"
    assert "HMAC-SHA256" in signature["description"]
    assert "{t}.{raw body}" in signature["description"]


def test_openapi_request_body_references_the_schema(openapi):
    body = openapi["paths"][PATH]["post"]["requestBody"]
    assert body["required"] is True
    media = body["content"]["application/json"]
    reference = media["schema"]["$ref"]
    assert (API / reference).resolve() == (API / "work_items.schema.json").resolve()
    # The documented example is itself a valid batch.
    results = wi.validate_batch(media["example"]["items"], max_items=10)
    assert [result.status for result in results] == ["accepted", "accepted"]


def test_openapi_responses(openapi):
    responses = openapi["paths"][PATH]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "413", "415"}
    schemas = openapi["components"]["schemas"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchResult"
    }
    item_result = schemas["ItemResult"]
    assert item_result["required"] == ["external_id", "status", "reasons"]
    assert item_result["properties"]["status"]["enum"] == list(wi.ITEM_STATUSES)
    assert schemas["Reason"]["required"] == ["field", "message"]
    for code in ("400", "401", "413", "415"):
        assert responses[code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def test_openapi_response_example_matches_validator_reasons(openapi):
    example = openapi["paths"][PATH]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    rejected = example["items"][1]
    problems = wi.validate_batch([dict(VALID[1], currency="EURO")], max_items=1)[
        0
    ].reasons
    assert rejected["reasons"] == list(problems)
