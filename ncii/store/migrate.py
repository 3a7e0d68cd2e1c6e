"""Alembic, configured in code so migrations run from a checkout and from an installed wheel.

The migration scripts live in the repository's ``migrations/`` directory; the wheel ships
them as ``ncii/_migrations`` (hatch ``force-include``). Upgrades are safe to start from
several processes at once: on PostgreSQL they hold an advisory lock, on SQLite the write lock
(``BEGIN IMMEDIATE``), and both engines run the whole upgrade in one transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text

from ncii.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

HEAD = "0004"
"""The newest revision in ``migrations/versions`` (a test keeps the two equal). Knowing it
without loading Alembic keeps the check made on every ``open_store`` cheap."""

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
MIGRATION_LOCK = zlib.crc32(b"ncii.migrate")
"""PostgreSQL advisory lock key held while migrating."""


def script_location() -> Path:
    """Where the migration scripts are: inside the installed package, else the checkout."""
    for candidate in (
        _PACKAGE_DIR / "_migrations",
        _PACKAGE_DIR.parent / "migrations",
    ):
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise StoreError(f"ncii's database migrations are missing (looked in {_PACKAGE_DIR})")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration without an ini file; ``connection`` is handed to env.py."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision among the migration scripts (read from the scripts themselves)."""
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package always ships a first revision
        raise StoreError("ncii's database migrations have no head revision")
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's revision, or None for a database ncii has never migrated."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise StoreError(f"the database has several schema revisions ({', '.join(rows)})")
    return rows[0] if rows else None


def needs_upgrade(connection: Connection) -> bool:
    """True when the database is empty or behind; raises when it is ahead of this ncii."""
    current = current_revision(connection)
    if current == HEAD:
        return False
    head = head_revision()
    if current is not None and _unknown(current):
        raise StoreError(
            f"the database schema is at revision {current}, which this version of ncii does "
            f"not know (its newest is {head}); upgrade ncii"
        )
    return True


def _unknown(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is None
    except Exception:  # alembic raises its own errors for unknown or partial ids
        return True


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` in one locked transaction; a no-op when already there."""
    from alembic import command

    with _migration_transaction(engine) as connection:
        command.upgrade(alembic_config(connection), revision)


def known_revisions() -> list[str]:
    """Every revision the migration scripts define, oldest first."""
    return [s.revision for s in reversed(list(script_directory().walk_revisions()))]


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` drops every table, and the data)."""
    from alembic import command

    with _migration_transaction(engine) as connection:
        command.downgrade(alembic_config(connection), revision)


def schema_differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models.

    Empty when the migrations and the models agree (the check ``alembic check`` makes).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ncii.store.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite rebuilds tables to alter them; with foreign keys on, dropping the old table
            # would cascade-delete child rows. The pragma only takes effect outside a
            # transaction, so it is set on the raw connection before BEGIN; integrity is
            # checked before commit instead.
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise StoreError(f"migration broke a foreign key: {tuple(broken)}")
        finally:
            if sqlite:
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
