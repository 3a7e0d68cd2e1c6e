"""Fast multi-row inserts for bulk imports, in the session's transaction.

SQLAlchemy's per-row parameter processing costs more than the database's own work at a million
rows, so bulk paths hand plain tuples straight to the driver: ``COPY`` on PostgreSQL,
``executemany`` on SQLite. Values must already be in the form the driver stores; use
:func:`db_value` for anything a column type converts (timestamps), computed once, not per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.orm import Session

BULK_CACHE_KIB = 256 * 1024
"""SQLite page cache while a bulk write runs: the random-order unique indexes of a million-row
bank outgrow the usual 64 MiB, and every miss is a read. Released when the write ends."""


@contextmanager
def bulk_cache(session: Session) -> Iterator[None]:
    """A larger SQLite page cache for the duration of a bulk write (no-op elsewhere)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    raw: Any = connection.connection.dbapi_connection
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size={before}")
        raw.execute("PRAGMA shrink_memory")


def db_value(session: Session, column: Column[Any], value: Any) -> Any:
    """``value`` converted by ``column``'s type as SQLAlchemy would bind it on this engine."""
    if value is None:
        return None
    dialect = session.get_bind().dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``."""
    connection = session.connection()
    raw: Any = connection.connection.dbapi_connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        # Binary COPY with the column types given: several times faster than text COPY,
        # where psycopg looks up how to dump every value.
        types = [_pg_type(table.c[name], connection.dialect) for name in columns]
        sql = f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
        finally:
            cursor.close()


def _pg_type(column: Column[Any], dialect: Any) -> str:
    """The PostgreSQL type name of a column, e.g. ``timestamp with time zone``."""
    name = column.type.compile(dialect=dialect).lower().split("(")[0].strip()
    return _PG_ALIASES.get(name, name)


_PG_ALIASES = {"float": "double precision"}
"""Type names SQLAlchemy emits that psycopg's binary COPY does not know by that name."""


LOOKUP_CHUNK = 500
"""Values per ``IN (…)`` on SQLite (a fixed size, so the prepared statement is reused)."""


def lookup_values(
    session: Session, sql: str, params: Sequence[Any], values: Sequence[Any]
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` for many ``values`` at once, in few round trips.

    ``sql`` marks parameters ``{p}`` (bound from ``params``, in order) and the value list
    ``IN ({values})``: on PostgreSQL it becomes ``= ANY(array)``, one parameter however many
    values; on SQLite, chunks of :data:`LOOKUP_CHUNK` placeholders.
    """
    connection = session.connection()
    raw: Any = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        if connection.dialect.name == "postgresql":
            query = sql.replace(" IN ({values})", " = ANY({values})").format(p="%s", values="%s")
            cursor.execute(query, (*params, list(values)))
            yield from cursor
            return
        full = sql.format(p="?", values=", ".join("?" * LOOKUP_CHUNK))
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = list(values[start : start + LOOKUP_CHUNK])
            if len(chunk) == LOOKUP_CHUNK:
                cursor.execute(full, (*params, *chunk))
            else:
                cursor.execute(
                    sql.format(p="?", values=", ".join("?" * len(chunk))), (*params, *chunk)
                )
            yield from cursor
    finally:
        cursor.close()
