"""Migrations: from empty to head and back on both engines, in agreement with the models, safe
to run from several processes at once."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from ncii.errors import StoreError
from ncii.service import banks
from ncii.store import migrate
from ncii.store.engine import open_store, resolve_url
from ncii.store.models import Bank, Base

TABLES = {t.name for t in Base.metadata.sorted_tables}


def _tables(url: str) -> set[str]:
    engine = create_engine(resolve_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_constant_matches_the_migration_scripts() -> None:
    assert migrate.head_revision() == migrate.HEAD


def test_migrations_are_found_in_the_checkout() -> None:
    location = migrate.script_location()
    assert (location / "env.py").is_file()
    assert any((location / "versions").glob("*.py"))


def test_upgrade_from_empty_then_downgrade_to_base(empty_database_url: str) -> None:
    assert not _tables(empty_database_url) & TABLES
    with open_store(empty_database_url) as store:  # first use migrates
        with store.read_connection() as connection:
            assert migrate.current_revision(connection) == migrate.HEAD
        assert _tables(empty_database_url) >= TABLES
        migrate.downgrade(store.engine, "base")
        with store.read_connection() as connection:
            assert migrate.current_revision(connection) is None
        assert not _tables(empty_database_url) & TABLES
        migrate.upgrade(store.engine)
        assert _tables(empty_database_url) >= TABLES


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    """No pending autogenerate diff: the check `alembic check` makes."""
    with open_store(empty_database_url) as store:
        assert migrate.schema_differences(store.engine) == []


def test_open_without_migrating_leaves_the_database_empty(empty_database_url: str) -> None:
    with (
        open_store(empty_database_url, migrate_schema=False) as store,
        store.read_connection() as connection,
    ):
        assert migrate.current_revision(connection) is None
    assert not _tables(empty_database_url) & TABLES


def test_a_database_from_a_newer_ncii_is_refused(empty_database_url: str) -> None:
    with open_store(empty_database_url) as store, store.begin() as session:
        session.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    with pytest.raises(StoreError, match="does not know"):
        open_store(empty_database_url)


def _open_and_create(url: str, name: str) -> str:
    with open_store(url) as store, store.begin() as session:
        banks.create_bank(session, name, actor="test")
    return name


def test_first_use_from_several_processes_at_once(empty_database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        names = pool.starmap(_open_and_create, [(empty_database_url, f"b{i}") for i in range(2)])
    with open_store(empty_database_url) as store, store.read() as session:
        assert sorted(session.scalars(select(Bank.name))) == sorted(names)


def test_timestamps_are_aware_utc_on_both_engines(store_url: str) -> None:
    when = dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with open_store(store_url) as store:
        with store.begin() as session:
            session.add(Bank(name="t", source="own", trust_level=1, created_at=when))
        with store.read() as session:
            stored = session.scalar(select(Bank.created_at))
    assert stored == when
    assert stored.utcoffset() == dt.timedelta(0)


def test_the_default_database_is_created_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NCII_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = resolve_url(None)
    assert url.get_backend_name() == "sqlite"
    assert Path(url.database or "").is_relative_to(tmp_path / "data")
    with open_store() as store:
        assert Path(store.url.database or "").is_file()
        with store.read_connection() as connection:
            assert migrate.current_revision(connection) == migrate.HEAD


def test_url_forms() -> None:
    assert resolve_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("banks.db").database == str(Path("banks.db").resolve())
    with pytest.raises(StoreError, match="invalid database URL"):
        open_store("nope://")
