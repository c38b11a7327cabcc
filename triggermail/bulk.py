"""INSERT … ON CONFLICT DO NOTHING RETURNING for model instances, which the ORM cannot say.

`bulk_create(ignore_conflicts=True)` cannot tell which rows were inserted (Django leaves every pk
None when conflicts are ignored: the caveats of `QuerySet.bulk_create` in its documentation), and one
`create()` per row in its own savepoint costs three round trips a row. This inserts a list of
unsaved instances in one statement and returns the chosen columns of the rows that were new; rows
that hit a unique constraint are skipped. Values are prepared exactly as the ORM prepares them
(auto_now fields, JSON, time zones). PostgreSQL and SQLite (3.35+) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, models

from triggermail.json_text import compact_json

# Rows per statement: SQLite allows 32,766 parameters in one statement.
CHUNK = 200
_NOT_AS_JSON = (models.JSONField, models.FloatField)


def insert_new_returning(
    objs: Sequence[models.Model], *, returning: Sequence[str], conflict: str | Sequence[str] = (), chunk: int = CHUNK
) -> list[tuple[Any, ...]]:
    """`conflict` names the fields whose unique index decides what is "not new"; a row that breaks
    any other constraint then fails the statement. Empty: any unique constraint (needed for a
    partial unique index, which a conflict target would have to repeat the predicate of). One
    field may be given as a string."""
    target = (conflict,) if isinstance(conflict, str) else tuple(conflict)
    new: list[tuple[Any, ...]] = []
    for start in range(0, len(objs), chunk):
        new += _insert(objs[start : start + chunk], returning, target)
    return new


def insert_all(objs: Sequence[models.Model], *, chunk: int = CHUNK) -> None:
    """INSERT every one of these unsaved instances, as `bulk_create(objs)` does, but with the rows as
    one parameter on PostgreSQL (`_rows_source`) where Django writes a parameter per cell: a row that
    breaks a constraint fails the statement. The instances' primary keys are not set."""
    for start in range(0, len(objs), chunk):
        if part := objs[start : start + chunk]:
            sql, params = _insert_statement(part)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)


def _insert(objs: Sequence[models.Model], returning: Sequence[str], conflict: Sequence[str]) -> list[tuple[Any, ...]]:
    if not objs:
        return []
    model = type(objs[0])
    quote = connection.ops.quote_name
    returned = [_column(model, name) for name in returning]
    target = f"({', '.join(quote(_column(model, name)) for name in conflict)}) " if conflict else ""
    sql, params = _insert_statement(objs)
    sql += f" ON CONFLICT {target}DO NOTHING RETURNING {', '.join(map(quote, returned))}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()]


def _insert_statement(objs: Sequence[models.Model]) -> tuple[str, list[Any]]:
    """INSERT INTO the instances' table their rows, with every field but the primary key prepared as
    the ORM prepares it for an insert (auto_now fields stamped)."""
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = [_column(model, f.name) for f in fields]
    rows = [[_prepared(f, f.pre_save(obj, add=True)) for f in fields] for obj in objs]
    source, params = _rows_source(fields, rows)
    return f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) {source}", params


def _prepared(field: models.Field[Any, Any], value: Any) -> Any:
    # Django's own fields store None as NULL: the preparation a cell costs is skipped for the many
    # empty columns of a new row (this project defines no model field of its own that could differ).
    return None if value is None else field.get_db_prep_save(value, connection)


def _rows_source(
    fields: Sequence[models.Field[Any, Any]], rows: Sequence[Sequence[Any]], *, typed: bool = False
) -> tuple[str, list[Any]]:
    """The rows as a SELECT or VALUES clause whose columns are named column1, column2, …, and its
    parameters; `typed` casts each VALUES cell to its column's type on PostgreSQL, which types
    parameters in VALUES as text unless told (an UPDATE needs it).

    On PostgreSQL, all the rows as one JSON parameter read by `json_to_recordset` with the columns'
    types: the statement's text is the same for any number of rows (psycopg parses its placeholders
    once), and the rows are written by orjson in C (triggermail.json_text). An array per column
    (`unnest`) had psycopg quote every cell in Python (its array dumper was 5.6 % of the qcluster's
    CPU in `make bench` S), and a VALUES list of a parameter per cell cost more again. Not with JSON
    columns, which the ORM's JSON adapters would have to unwrap, nor float ones (JSON has no NaN):
    VALUES there, as on SQLite.
    """
    if connection.vendor == "postgresql" and not any(isinstance(f, _NOT_AS_JSON) for f in fields):
        columns = ", ".join(f"column{i + 1} {f.cast_db_type(connection)}" for i, f in enumerate(fields))
        return f"SELECT * FROM json_to_recordset(%s::json) AS r({columns})", [_rows_json(rows)]
    cast = typed and connection.vendor == "postgresql"
    row = "(" + ", ".join(f"CAST(%s AS {f.db_type(connection)})" if cast else "%s" for f in fields) + ")"
    return f"VALUES {', '.join([row] * len(rows))}", [value for row in rows for value in row]


def _rows_json(rows: Sequence[Sequence[Any]]) -> str:
    names = [f"column{i + 1}" for i in range(len(rows[0]))]
    return compact_json([dict(zip(names, row, strict=True)) for row in rows], default=_json_cell).decode()


def _json_cell(value: Any) -> Any:
    """A prepared value JSON has no type for, as the text its column's type reads (orjson writes
    datetimes, dates, times and UUIDs itself; the json module, its fallback, asks for them here)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value this insert can send as JSON")


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _column(model: type[models.Model], name: str) -> str:
    column = _field(model, name).column
    assert column is not None
    return column


def update_from_values(model: type[models.Model], rows: Sequence[Sequence[Any]], *, fields: Sequence[str]) -> int:
    """UPDATE each row's own values in one statement: `rows` are (pk, value per field), prepared as
    the ORM would. Django's bulk_update says the same with a CASE per field, which costs far more to
    build than to run."""
    if not rows:
        return 0
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    targets = [_field(model, name) for name in ("pk", *fields)]
    columns = [quote(_column(model, name)) for name in ("pk", *fields)]
    prepared = [[f.get_db_prep_save(value, connection) for f, value in zip(targets, row, strict=True)] for row in rows]
    source, params = _rows_source(targets, prepared, typed=True)
    assignments = ", ".join(f"{column} = v.column{i + 1}" for i, column in enumerate(columns) if i)
    sql = f"UPDATE {table} SET {assignments} FROM ({source}) AS v WHERE {table}.{columns[0]} = v.column1"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
