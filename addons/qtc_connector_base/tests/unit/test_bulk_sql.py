"""One-statement inserts and updates: the statement, the parameters, the NULL
rules and the refusals (the database side is tested in test_trace.py)."""

import datetime

import pytest

from qtc_connector_base.lib import bulk_sql

COLUMNS = {"name": "varchar", "flag": "bool", "amount": "float8", "day": "date"}


class RecordingCursor:
    """Records what is executed; ``fetchall`` returns ids in a shuffled order,
    as RETURNING does not promise an order."""

    def __init__(self, returned=()):
        self.executed = []
        self.returned = list(returned)
        self.rowcount = len(self.returned)

    def execute(self, query, params):
        self.executed.append((query, params))

    def fetchall(self):
        return [(row_id,) for row_id in self.returned]


def test_insert_sends_one_array_per_column_and_returns_ids_in_row_order():
    cursor = RecordingCursor(returned=[12, 10, 11])
    rows = [
        {"name": "a", "flag": True, "amount": 1.5, "day": datetime.date(2026, 3, 2)},
        {"name": "b", "flag": False, "amount": 0.0},
        {"name": False, "flag": None},
    ]
    ids = bulk_sql.insert_rows(cursor, "qtc_thing", COLUMNS, rows, {"create_uid": 2})
    assert ids == [10, 11, 12]
    assert len(cursor.executed) == 1
    query, params = cursor.executed[0]
    assert params["c_name"] == ["a", "b", None]  # False is NULL in a varchar
    assert params["c_flag"] == [True, False, None]  # ...but false in a bool
    assert params["c_amount"] == [1.5, 0.0, None]  # 0.0 stays 0.0
    assert params["c_day"] == [datetime.date(2026, 3, 2), None, None]
    assert params["k_create_uid"] == 2
    assert query.startswith(
        'INSERT INTO "qtc_thing" ("name", "flag", "amount", "day", '
    )
    assert "%(c_flag)s::bool[]" in query
    assert "%(k_create_uid)s" in query
    assert "WITH ORDINALITY" in query and "ORDER BY t.qtc_position" in query


def test_insert_of_nothing_runs_no_statement():
    cursor = RecordingCursor()
    assert bulk_sql.insert_rows(cursor, "qtc_thing", COLUMNS, []) == []
    assert cursor.executed == []


def test_update_sets_each_row_to_its_own_values():
    cursor = RecordingCursor(returned=[1, 2])
    count = bulk_sql.update_rows(
        cursor,
        "qtc_thing",
        {"flag": "bool", "amount": "float8"},
        {7: {"flag": False, "amount": 2.0}, 9: {"flag": True, "amount": False}},
    )
    assert count == 2
    query, params = cursor.executed[0]
    assert params["ids"] == [7, 9]
    assert params["c_flag"] == [False, True]
    assert params["c_amount"] == [2.0, None]
    assert query.startswith('UPDATE "qtc_thing" AS r SET "flag" = v."flag"')
    assert query.endswith("WHERE r.id = v.id")
    assert bulk_sql.update_rows(cursor, "qtc_thing", COLUMNS, {}) == 0
    assert len(cursor.executed) == 1


def test_a_column_the_caller_did_not_declare_is_refused_not_dropped():
    with pytest.raises(ValueError, match="unknown columns: \\['colour'\\]"):
        bulk_sql.insert_rows(RecordingCursor(), "qtc_thing", COLUMNS, [{"colour": 1}])


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ('qtc_thing"; DROP TABLE x; --', COLUMNS),
        ("qtc_thing", {"name) VALUES (1); --": "varchar"}),
        ("QtcThing", COLUMNS),
        ("qtc_thing", {"name": "varchar; DROP"}),
    ],
)
def test_identifiers_and_types_must_be_plain(table, columns):
    with pytest.raises(ValueError):
        bulk_sql.insert_sql(table, columns)
    with pytest.raises(ValueError):
        bulk_sql.update_sql(table, columns)


def test_constant_names_must_be_plain():
    with pytest.raises(ValueError):
        bulk_sql.insert_sql("qtc_thing", COLUMNS, {"uid; --": 1})
