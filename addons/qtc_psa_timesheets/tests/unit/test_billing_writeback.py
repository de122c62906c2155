"""The billing write-back contract (lib/billing_writeback.py) and its OpenAPI
description agree, and its rules hold."""

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from qtc_psa_timesheets.lib import billing_writeback as billing

API = Path(__file__).resolve().parent.parent.parent / "static" / "api"
STATUS_PATH = "/qtc/psa/{backend_id}/billing_status"


def test_idempotency_key_names_invoice_state_and_revision():
    assert billing.idempotency_key(42, "posted", 1) == "odoo-invoice-42-posted-1"
    assert billing.idempotency_key(42, "cancel", 2) == "odoo-invoice-42-cancel-2"
    # A second posting after a cancellation is news, not a repeat.
    assert billing.idempotency_key(42, "posted", 3) != billing.idempotency_key(
        42, "posted", 1
    )
    with pytest.raises(ValueError, match="unknown invoice state"):
        billing.idempotency_key(42, "draft", 1)


@pytest.mark.parametrize(
    ("value", "text"),
    [(7.5, "7.5"), (10.0, "10"), (0.0, "0"), (84.2, "84.2"), (1 / 3, "0.333333")],
)
def test_format_decimal(value, text):
    assert billing.format_decimal(value) == text


def test_callback_body_shape_and_order():
    body = billing.callback_body(
        "INV/2026/00007",
        date(2026, 3, 31),
        "posted",
        [
            billing.item_entry("TE-2", "time", version=3, hours=2.5),
            billing.item_entry(
                "EX-1",
                "expense",
                updated_at="2026-03-03T10:00:00Z",
                amount=84.2,
                currency="EUR",
            ),
            billing.item_entry("MS-1", "milestone", version=1, quantity=1.0),
        ],
    )
    assert body == {
        "invoice": {
            "number": "INV/2026/00007",
            "date": "2026-03-31",
            "state": "posted",
        },
        "items": [
            {
                "external_id": "EX-1",
                "version": None,
                "updated_at": "2026-03-03T10:00:00Z",
                "kind": "expense",
                "amount": "84.2",
                "currency": "EUR",
            },
            {
                "external_id": "MS-1",
                "version": 1,
                "updated_at": None,
                "kind": "milestone",
                "quantity": "1",
            },
            {
                "external_id": "TE-2",
                "version": 3,
                "updated_at": None,
                "kind": "time",
                "hours": "2.5",
            },
        ],
    }
    assert json.loads(billing.encode(body)) == body
    assert billing.encode(body) == billing.encode(json.loads(billing.encode(body)))


def test_callback_body_refuses_unknown_state_and_no_items():
    item = billing.item_entry("TE-1", "time", version=1, hours=1)
    with pytest.raises(ValueError, match="unknown invoice state"):
        billing.callback_body("INV/1", date(2026, 1, 1), "paid", [item])
    with pytest.raises(ValueError, match="at least one item"):
        billing.callback_body("INV/1", date(2026, 1, 1), "posted", [])


def test_parse_status_request_dedupes_in_order():
    assert billing.parse_status_request(
        {"external_ids": ["TE-2", "TE-1", "TE-2"]}, max_ids=5
    ) == ["TE-2", "TE-1"]


@pytest.mark.parametrize(
    ("data", "message", "status"),
    [
        (["TE-1"], "the body must be a JSON object", 400),
        ({}, "'external_ids' must be an array of strings", 400),
        ({"external_ids": "TE-1"}, "'external_ids' must be an array of strings", 400),
        ({"external_ids": []}, "'external_ids' is empty", 400),
        (
            {"external_ids": ["TE-1", 7]},
            "external_ids[1] must be a non-empty string",
            400,
        ),
        ({"external_ids": [" "]}, "external_ids[0] must be a non-empty string", 400),
        ({"external_ids": ["x" * 129]}, "external_ids[0] is longer than 128", 400),
        (
            {"external_ids": ["TE-1"], "since": 1},
            "unknown top-level fields: since",
            400,
        ),
        ({"external_ids": ["a", "b", "c"]}, "too many external_ids: 3 > 2", 413),
    ],
)
def test_parse_status_request_refusals(data, message, status):
    with pytest.raises(billing.StatusRequestError) as caught:
        billing.parse_status_request(data, max_ids=2)
    assert str(caught.value).startswith(message)
    assert caught.value.status_code == status


def test_status_answer_per_id_in_request_order():
    answer = billing.status_answer(
        ["TE-3", "TE-1", "TE-2", "TE-4"],
        {
            "TE-1": {"number": "INV/1", "date": date(2026, 3, 31), "state": "posted"},
            "TE-2": {},
            "TE-4": {"number": "INV/2", "date": "2026-04-01", "state": "reversed"},
        },
    )
    assert answer == {
        "items": [
            {"external_id": "TE-3", "status": "unknown", "invoice": None},
            {
                "external_id": "TE-1",
                "status": "invoiced",
                "invoice": {"number": "INV/1", "date": "2026-03-31", "state": "posted"},
            },
            {"external_id": "TE-2", "status": "not_invoiced", "invoice": None},
            {
                "external_id": "TE-4",
                "status": "not_invoiced",
                "invoice": {
                    "number": "INV/2",
                    "date": "2026-04-01",
                    "state": "reversed",
                },
            },
        ]
    }


# -- OpenAPI vs the module -----------------------------------------------------------


@pytest.fixture(scope="module")
def openapi():
    return yaml.safe_load((API / "openapi.yaml").read_text())


def test_openapi_documents_the_status_endpoint(openapi):
    operation = openapi["paths"][STATUS_PATH]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "413", "415"}
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request["$ref"] == "#/components/schemas/BillingStatusRequest"
    schemas = openapi["components"]["schemas"]
    assert schemas["BillingStatusRequest"]["required"] == ["external_ids"]
    ids = schemas["BillingStatusRequest"]["properties"]["external_ids"]
    assert ids["items"]["maxLength"] == billing.MAX_EXTERNAL_ID_LENGTH
    status = schemas["BillingStatus"]["properties"]["status"]
    assert status["enum"] == list(billing.STATUSES)


def test_openapi_documents_the_callback(openapi):
    callback = openapi["webhooks"]["billingWriteBack"]["post"]
    schema = callback["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"] == "#/components/schemas/BillingWriteBack"
    schemas = openapi["components"]["schemas"]
    invoice = schemas["BillingInvoice"]
    assert invoice["properties"]["state"]["enum"] == list(billing.INVOICE_STATES)
    item = schemas["BillingItem"]
    assert set(item["required"]) == {"external_id", "version", "updated_at", "kind"}
    # The example is what callback_body builds for it.
    example = callback["requestBody"]["content"]["application/json"]["example"]
    rebuilt = billing.callback_body(
        example["invoice"]["number"],
        example["invoice"]["date"],
        example["invoice"]["state"],
        [
            billing.item_entry(
                entry["external_id"],
                entry["kind"],
                version=entry["version"],
                updated_at=entry["updated_at"],
                **{
                    key: value
                    for key, value in entry.items()
                    if key not in ("external_id", "kind", "version", "updated_at")
                },
            )
            for entry in example["items"]
        ],
    )
    assert rebuilt == example
