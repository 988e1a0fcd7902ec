"""The statements of a full-fidelity move: every table's rows out as JSON values, and back in.

`people.moves` owns the archive's format (a zip of JSON lines with a manifest); this module
only reads and writes rows. Rows go out in primary-key order with every column, ids included,
so foreign keys hold as they are; values are JSON-ready: times as ISO 8601 in UTC, dates as
ISO dates, statuses as their enum values, JSON columns as they are. Reading them back gives the
same rows on SQLite and PostgreSQL alike. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Enum, Table, delete, func, insert, select, text
from sqlalchemy.orm import Session

from .models import Base, UtcDateTime

__all__ = ["TABLES", "APPEND_ONLY", "table_columns", "count_rows", "dump_rows", "load_rows", "restorable_columns",
           "nonempty_tables", "delete_everything", "reset_sequences", "INSERT_CHUNK"]

#: Every table of the schema, parents before children (the order rows must go back in).
TABLES: tuple[str, ...] = tuple(t.name for t in Base.metadata.sorted_tables)
#: Tables whose rows the database refuses to delete (the staff audit trail): a store holding
#: any cannot be replaced by an archive.
APPEND_ONLY: tuple[str, ...] = ("audit_events",)
#: Rows per INSERT statement when loading.
INSERT_CHUNK = 2000


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def table_columns(name: str) -> tuple[str, ...]:
    """The table's columns, in the schema's order."""
    return tuple(c.name for c in _table(name).columns)


def count_rows(session: Session, name: str) -> int:
    """How many rows the table holds."""
    return session.scalar(select(func.count()).select_from(_table(name))) or 0


def nonempty_tables(session: Session) -> dict[str, int]:
    """The tables that hold rows, with their counts."""
    counts = {name: count_rows(session, name) for name in TABLES}
    return {name: n for name, n in counts.items() if n}


def _to_json(column, value: Any) -> Any:  # noqa: ANN001
    if value is None:
        return None
    if isinstance(column.type, UtcDateTime):
        return value.isoformat()
    if isinstance(column.type, Date):
        return value.isoformat()
    if isinstance(column.type, Enum) and column.type.enum_class is not None:
        return value.value
    return value


def _from_json(column, value: Any) -> Any:  # noqa: ANN001
    if value is None:
        return None
    if isinstance(column.type, UtcDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, Date):
        return date.fromisoformat(value)
    if isinstance(column.type, Enum) and column.type.enum_class is not None:
        return column.type.enum_class(value)
    return value


def dump_rows(session: Session, name: str, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every row of the table as {column: JSON value}, in primary-key order, streamed."""
    table = _table(name)
    columns = list(table.columns)
    result = session.connection().execution_options(yield_per=batch).execute(
        select(table).order_by(*table.primary_key.columns))
    for row in result:
        yield {c.name: _to_json(c, v) for c, v in zip(columns, row)}


def restorable_columns(name: str, columns: Iterable[str]) -> tuple[list[str], list[str]]:
    """For rows carrying `columns`: (columns the table does not have, columns of the table that
    are missing and cannot be filled: neither a default nor NULL allowed)."""
    table = _table(name)
    given = set(columns)
    unknown = sorted(given - set(table.columns.keys()))
    unfillable = [c.name for c in table.columns if c.name not in given and not c.nullable and c.default is None
                  and c.server_default is None and not c.primary_key]
    return unknown, unfillable


def load_rows(session: Session, name: str, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows of JSON values (as `dump_rows` gives them) into the table; returns how many.

    Columns a row lacks take their default (or NULL). The caller has checked the columns
    (`restorable_columns`).
    """
    table = _table(name)
    statement = insert(table)
    connection = session.connection()
    count, chunk = 0, []
    for row in rows:
        chunk.append({key: _from_json(table.c[key], value) for key, value in row.items()})
        if len(chunk) >= INSERT_CHUNK:
            connection.execute(statement, chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        connection.execute(statement, chunk)
        count += len(chunk)
    return count


def delete_everything(session: Session) -> None:
    """Delete every row of every table, children first."""
    for name in reversed(TABLES):
        session.execute(delete(_table(name)))


def _python_type(column) -> type | None:  # noqa: ANN001
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def reset_sequences(session: Session) -> None:
    """PostgreSQL: move each id sequence past the largest id restored (SQLite needs nothing)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for name in TABLES:
        table = _table(name)
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or keys[0].name != "id" or not keys[0].autoincrement or _python_type(keys[0]) is not int:
            continue  # only integer ids have a sequence (a session's id is a random string)
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) "
            f"FROM {name}"))
