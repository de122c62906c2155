"""Tax results stored as JSON come back exactly."""

import json
from decimal import Decimal

import pytest

from .tax_fixtures import load
from qtc_tax.lib import avatax
from qtc_tax.lib.codec import result_from_dict, result_to_dict


def test_round_trip_is_exact_through_json():
    result = avatax.parse_transaction(load("avatax_transaction_chicago.json"))
    stored = json.loads(json.dumps(result_to_dict(result)))
    assert result_from_dict(stored) == result
    assert stored["total_tax"] == "136.79"
    assert stored["lines"][0]["details"][0] == {
        "name": "ILLINOIS",
        "type": "State",
        "rate": "0.0625",
        "tax": "77.16",
    }


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"version": 2, "document_code": "X", "total_tax": "1", "lines": []},
        {"version": 1, "document_code": "", "total_tax": "1", "lines": []},
        {"version": 1, "document_code": "X", "total_tax": "1"},
        {"version": 1, "document_code": "X", "total_tax": 1.5, "lines": []},
        {"version": 1, "document_code": "X", "total_tax": "abc", "lines": []},
        {"version": 1, "document_code": "X", "total_tax": "NaN", "lines": []},
        {"version": 1, "document_code": "X", "total_tax": "1", "lines": [{}]},
        {
            "version": 1,
            "document_code": "X",
            "total_tax": "1",
            "lines": [{"line_number": "1", "tax": "1", "details": ["x"]}],
        },
    ],
)
def test_malformed_stored_results_are_refused(data):
    with pytest.raises(ValueError):
        result_from_dict(data)


def test_empty_result_round_trips():
    data = {"version": 1, "document_code": "X", "total_tax": "0.00", "lines": []}
    result = result_from_dict(data)
    assert result.total_tax == Decimal("0.00")
    assert result.engine_transaction_id is None
    assert result_to_dict(result)["lines"] == []
