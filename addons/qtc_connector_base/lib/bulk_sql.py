"""One-statement inserts and updates of many rows, for the volume paths.

The ORM builds a record, checks and caches per row; a job applying thousands
of items a minute spends much of its time there for rows nothing else computes
from (trace lines, a connector's own bookkeeping). These helpers send every row
in ONE statement, one PostgreSQL array per column (``unnest``), so the cost per
row is a few list appends.

Values: ``None`` is SQL NULL. ``False`` (the ORM's "empty") is NULL too, except
in ``bool`` columns where it is false. Table and column names come from the
caller's code, never from input; they are still checked to be plain
identifiers, so a typo fails loudly instead of building odd SQL.
"""

import re

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_TYPES = frozenset(
    {
        "bool",
        "date",
        "float8",
        "int4",
        "jsonb",
        "numeric",
        "text",
        "timestamp",
        "varchar",
    }
)


def _check(table, columns):
    for name in (table, *columns):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    for name, kind in columns.items():
        if kind not in _TYPES:
            raise ValueError(f"unsupported column type for {name}: {kind!r}")


def _value(value, kind):
    if value is False and kind != "bool":
        return None
    return value


def column_arrays(columns, rows):
    """``{column: [value of each row]}`` with the NULL rules of the module doc.

    :raises ValueError: a row holds a column not in ``columns`` (it would
        otherwise be dropped without a word)
    """
    known = set(columns)
    for row in rows:
        if not known.issuperset(row):
            raise ValueError(f"unknown columns: {sorted(set(row) - known)}")
    return {
        name: [_value(row.get(name), kind) for row in rows]
        for name, kind in columns.items()
    }


def insert_sql(table, columns, constants=()):
    """The INSERT statement for :func:`insert_rows` (parameters by name:
    ``c_<column>`` arrays, ``k_<constant>`` values)."""
    _check(table, columns)
    for name in constants:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    names = list(columns)
    arrays = ", ".join(f"%(c_{name})s::{columns[name]}[]" for name in names)
    target = ", ".join(f'"{name}"' for name in [*names, *constants])
    selected = ", ".join(
        [*(f't."{name}"' for name in names), *(f"%(k_{name})s" for name in constants)]
    )
    row_names = ", ".join(f'"{name}"' for name in names)
    # WITH ORDINALITY + ORDER BY: the sequence hands out ids in the given
    # order, so sorted ids match the rows.
    return (
        f'INSERT INTO "{table}" ({target}) '  # noqa: S608 - checked identifiers
        f"SELECT {selected} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS t({row_names}, qtc_position) ORDER BY t.qtc_position RETURNING id"
    )


def insert_rows(cr, table, columns, rows, constants=None):
    """Insert ``rows`` into ``table`` with one statement.

    :param cr: a database cursor (Odoo's or psycopg2's)
    :param columns: ``{column: SQL type}`` of the values each row may hold
    :param rows: dicts ``{column: value}``; a missing column is NULL
    :param constants: ``{column: value}`` the same for every row (who, when)
    :returns: the new rows' ids, in the order of ``rows``
    """
    if not rows:
        return []
    constants = constants or {}
    params = {
        f"c_{name}": values for name, values in column_arrays(columns, rows).items()
    }
    params.update({f"k_{name}": value for name, value in constants.items()})
    cr.execute(insert_sql(table, columns, constants), params)
    return sorted(row[0] for row in cr.fetchall())


def update_sql(table, columns):
    """The UPDATE statement for :func:`update_rows`."""
    _check(table, columns)
    names = list(columns)
    arrays = ", ".join(
        ["%(ids)s::int4[]", *(f"%(c_{name})s::{columns[name]}[]" for name in names)]
    )
    assignments = ", ".join(f'"{name}" = v."{name}"' for name in names)
    row_names = ", ".join(f'"{name}"' for name in ["id", *names])
    return (
        f'UPDATE "{table}" AS r SET {assignments} '  # noqa: S608 - checked identifiers
        f"FROM unnest({arrays}) AS v({row_names}) WHERE r.id = v.id"
    )


def update_rows(cr, table, columns, rows):
    """Set ``columns`` of many rows, each to its own values, in one statement.

    :param rows: ``{id: {column: value}}``
    :returns: the number of rows updated
    """
    if not rows:
        return 0
    ids = list(rows)
    params = {
        f"c_{name}": values
        for name, values in column_arrays(columns, [rows[i] for i in ids]).items()
    }
    params["ids"] = ids
    cr.execute(update_sql(table, columns), params)
    return cr.rowcount
