"""Shared fixtures: hash stores on SQLite and on a real PostgreSQL.

``store_url`` runs a test once per engine. SQLite is a fresh file per test. PostgreSQL is a
scratch database created for the session on the server named by ``NCII_TEST_POSTGRES_URL``
(default: local trust auth, database ``test``), emptied before each test and dropped at the
end; when no server answers, those cases skip and say why (or fail, under
``NCII_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, make_url, text

from ncii.store.engine import Store, open_store
from ncii.store.models import Base


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Index snapshots (written by ``ncii match``/``scan`` at every bank size) go to a folder
    of this run, never the user's ~/.cache; subprocesses inherit it."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


POSTGRES_ENV = "NCII_TEST_POSTGRES_URL"
REQUIRE_ENV = "NCII_REQUIRE_POSTGRES"
"""Set (as .ci/run does) to fail rather than skip the PostgreSQL cases when no server answers."""
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENGINES = ("sqlite", "postgresql")


class PostgresServer:
    """Creates and drops scratch databases on one PostgreSQL server."""

    def __init__(self, url: URL) -> None:
        self.url = url

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            self.url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=3,
        )

    def create(self) -> str:
        name = f"ncii_test_{secrets.token_hex(4)}"
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    url = make_url(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    server = PostgresServer(url)
    try:
        server._admin().close()
    except Exception as exc:  # any failure to connect means: no server for these tests
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = (
            f"no PostgreSQL at {url.render_as_string(hide_password=True)} ({reason}); "
            f"set {POSTGRES_ENV} to a server with trust auth (.ci/run does)"
        )
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but there is {message}", pytrace=False)
        pytest.skip(message)
    return server


@pytest.fixture(scope="session")
def postgres_session_url(postgres_server: PostgresServer) -> Iterator[str]:
    """One scratch database for the whole session, migrated to head."""
    url = postgres_server.create()
    open_store(url).close()
    yield url
    postgres_server.drop(url)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A brand-new empty database (for migration tests)."""
    url = postgres_server.create()
    yield url
    postgres_server.drop(url)


def _empty_tables(url: str) -> None:
    with open_store(url) as store, store.begin() as session:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ncii.db'}"
        open_store(url).close()
        return url
    url = request.getfixturevalue("postgres_session_url")
    _empty_tables(url)
    return url


@pytest.fixture(params=ENGINES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables at all, on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (see tests/shared_data.py), or skip."""
    from shared_data import SHARED

    if SHARED is None:
        pytest.skip("../shared/data is not beside this checkout (CI has it; set NCII_SHARED_DATA)")
    return SHARED
