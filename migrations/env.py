"""Alembic environment for ncii.

ncii runs migrations in code (``ncii.store.migrate``), handing this script an open connection
inside a locked transaction. Run directly (``alembic -c alembic.ini revision --autogenerate``),
it connects to ``sqlalchemy.url`` if set, else to the database ``ncii`` itself would use
(``NCII_DATABASE_URL`` or the default SQLite file).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ncii.store.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import the models (they change; old migrations must not).
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        # Batch mode lets the same migration alter tables on SQLite (by rebuilding them).
        render_as_batch=True,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    from ncii.store.engine import resolve_url

    url = config.get_main_option("sqlalchemy.url") or resolve_url(None)
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from ncii.store.engine import open_store

    url = config.get_main_option("sqlalchemy.url")
    with open_store(url, migrate_schema=False) as store, store.engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
