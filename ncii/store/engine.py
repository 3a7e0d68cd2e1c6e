"""Open the hash store: resolve its URL, configure the engine, migrate on first use.

``open_store()`` with no argument uses ``NCII_DATABASE_URL`` or, failing that, a SQLite file in
the user's data directory, created and migrated on first use so a newcomer needs no set-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ncii.errors import StoreError
from ncii.store import migrate

ENV_VAR = "NCII_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000
"""How long a SQLite writer waits for another process's write transaction to finish."""
SQLITE_CACHE_KIB = 64 * 1024

_WRITE = "ncii_write"
"""Execution option: False for read-only transactions (a deferred BEGIN on SQLite)."""


def default_url() -> str:
    path = Path(platformdirs.user_data_dir("ncii", appauthor=False)) / "ncii.db"
    return f"sqlite:///{path}"


def is_default(url: str | None) -> bool:
    """True when ``url`` names no database and neither does ``$NCII_DATABASE_URL``: the default
    SQLite file, the one database ncii creates on any first use."""
    return url is None and not os.environ.get(ENV_VAR)


def resolve_url(url: str | None) -> URL:
    """The database to use: ``url``, else ``$NCII_DATABASE_URL``, else the default SQLite file.

    A plain path means a SQLite file, and ``postgresql://``/``postgres://`` mean psycopg 3. An
    empty ``url`` is refused rather than taken to mean the default (a typo must not silently
    switch databases).
    """
    if url is not None and not url.strip():
        raise StoreError("the database URL is empty: give sqlite:///PATH, a file path or a URL")
    text = url or os.environ.get(ENV_VAR) or default_url()
    if "://" not in text:
        text = f"sqlite:///{Path(text).expanduser().resolve()}"
    try:
        parsed = make_url(text)
    except ArgumentError:
        raise StoreError(f"invalid database URL {text!r}") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def shown_url(url: URL) -> str:
    """The URL with any password masked, fit for messages and logs."""
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True, slots=True)
class Store:
    """An open database: the engine plus transactions as sessions.

    ``begin()`` is for writes: on SQLite it takes the write lock at once (``BEGIN IMMEDIATE``),
    so read-then-write work cannot fail half-way on a lock upgrade. ``read()`` is for reads and
    never waits for writers on SQLite (WAL). Both commit on success and roll back on error.
    """

    url: URL
    engine: Engine
    _writer: sessionmaker[Session]
    _reader: sessionmaker[Session]

    @contextmanager
    def begin(self) -> Iterator[Session]:
        with self._writer.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader.begin() as session:
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection for reads (no write lock on SQLite)."""
        with self.engine.connect().execution_options(**{_WRITE: False}) as connection:
            yield connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(
    url: str | None = None, *, migrate_schema: bool = True, create: bool = True
) -> Store:
    """Open (creating if need be) the database and bring its schema up to date.

    With ``migrate_schema=False`` the schema is left as it is (``ncii db current`` uses this).
    With ``create=False`` a database that holds no ncii store yet (a SQLite file that does not
    exist, a database with no ncii schema) is an error instead of being created: commands that
    only read or match must not turn a typo into a new, empty store that matches nothing.
    Raises :class:`~ncii.errors.StoreError` when the database cannot be reached or migrated.
    """
    resolved = resolve_url(url)
    create = create or is_default(url)
    if not create:
        _require_sqlite_file(resolved)
    engine = _create_engine(resolved, make_folder=is_default(url))
    try:
        with engine.connect().execution_options(**{_WRITE: False}) as connection:
            if not create and migrate_schema and migrate.current_revision(connection) is None:
                raise StoreError(
                    f"{shown_url(resolved)} holds no ncii store (create one with "
                    "`ncii bank create` or `ncii db upgrade`)"
                )
            behind = migrate_schema and migrate.needs_upgrade(connection)
        if behind:
            migrate.upgrade(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open database {shown_url(resolved)}: {_reason(exc)}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(
        url=resolved,
        engine=engine,
        _writer=sessionmaker(engine, expire_on_commit=False),
        _reader=sessionmaker(engine.execution_options(**{_WRITE: False}), expire_on_commit=False),
    )


def is_in_memory(url: URL) -> bool:
    """A SQLite database that lives in memory and vanishes when the command ends."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database
    )


def _require_sqlite_file(url: URL) -> None:
    """A SQLite store that must already exist: its file is there and is a regular file."""
    if url.get_backend_name() != "sqlite" or is_in_memory(url):
        return
    database = url.database or ""
    if database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if not path.exists():
        raise StoreError(
            f"no ncii database at {path} (create one with `ncii bank create` or "
            "`ncii db upgrade`, or check the path)"
        )
    if not path.is_file():
        raise StoreError(f"{path} is not a database file")


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


def _create_engine(url: URL, *, make_folder: bool) -> Engine:
    """The engine; ``make_folder`` creates the SQLite file's folder (the default database's
    only: a named file in a folder that does not exist is a typo, refused)."""
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool
        elif not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                if make_folder:
                    folder.mkdir(parents=True, exist_ok=True)
                elif not folder.is_dir():
                    raise StoreError(f"cannot create {database}: no folder {folder}")
            except OSError as exc:
                raise StoreError(f"cannot create the directory for {database}: {exc}") from None
    try:
        engine = create_engine(url, **kwargs)
    except ImportError as exc:
        hint = " (pip install 'ncii[postgres]')" if url.get_backend_name() == "postgresql" else ""
        raise StoreError(f"no database driver for {shown_url(url)}: {exc}{hint}") from None
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {shown_url(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            f"cache_size=-{SQLITE_CACHE_KIB}",
        ):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
