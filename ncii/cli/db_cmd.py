"""`ncii db`: the database schema; and the helpers every store command shares (open the store,
turn library errors into one line and an exit code)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from sqlalchemy.exc import DBAPIError

from ncii.cli import exit_codes
from ncii.cli.options import DbOption, FormatOption
from ncii.cli.output import choose_format, error_line, note_line, render
from ncii.errors import InvalidArgument, NciiError, StoreError
from ncii.store import migrate
from ncii.store.engine import Store, is_in_memory, open_store, resolve_url, shown_url

db_app = typer.Typer(
    name="db",
    help="The hash store's database: show, upgrade and downgrade its schema.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@contextmanager
def cli_errors() -> Iterator[None]:
    """The CLI's error boundary for store commands: one line on stderr and an exit code, the
    same in-process (tests) as from the console script."""
    try:
        yield
    except InvalidArgument as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None
    except NciiError as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.ERROR) from None
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        error_line(f"database error: {reason}")
        raise typer.Exit(exit_codes.ERROR) from None


@contextmanager
def cli_store(
    db: str | None, *, migrate_schema: bool = True, create: bool = False
) -> Iterator[Store]:
    """Open the store for one command, inside the error boundary.

    Only ``create=True`` commands (``bank create``, ``db upgrade``) and the default database
    may create a store: elsewhere a path or URL holding no ncii store is an error, so a typo
    never matches against an empty database. An in-memory SQLite database is refused: nothing
    done in it would outlive the command.
    """
    with cli_errors():
        if db is not None and is_in_memory(resolve_url(db)):
            raise StoreError(
                f"--db {db!r} is an in-memory database that vanishes when the command ends; "
                "give a file path or sqlite:///PATH"
            )
        with open_store(db, migrate_schema=migrate_schema, create=create) as store:
            yield store


@db_app.command("upgrade")
def upgrade_command(
    db: DbOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema up to date (ncii also does this on first use).

    Safe to run while other ncii processes use the database.

    Example: ncii db upgrade --db postgresql+psycopg://ncii@db.internal/ncii
    """
    with cli_store(db, migrate_schema=False, create=True) as store:
        before = _revision(store)
        migrate.upgrade(store.engine, revision)
        after = _revision(store)
    url = shown_url(store.url)
    if before == after:
        note_line(f"{url}: already at revision {after}")
    else:
        note_line(f"{url}: upgraded from {before or 'an empty database'} to revision {after}")


@db_app.command("downgrade")
def downgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base' for none.")],
    db: DbOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask; downgrading drops tables and their data.")
    ] = False,
) -> None:
    """Take the schema back to an older revision, e.g. before returning to an older ncii.

    Tables and columns the older revision does not know are dropped with their data, so it
    asks first unless --yes is given.

    Example: ncii db downgrade 0001 --db ./ncii.db
    """
    with cli_store(db, migrate_schema=False) as store:
        before = _revision(store)
        if before is None:
            raise InvalidArgument(f"{shown_url(store.url)}: no ncii schema to downgrade")
        known = migrate.known_revisions()
        if revision != "base" and revision not in known:
            raise InvalidArgument(
                f"unknown revision {revision!r}; known: {', '.join(known)} or base"
            )
        if not yes and not typer.confirm(
            f"Downgrade {shown_url(store.url)} from {before} to {revision}, dropping what "
            "newer revisions added (data included)?"
        ):
            raise typer.Exit(exit_codes.USAGE)
        migrate.downgrade(store.engine, revision)
        after = _revision(store)
    note_line(f"{shown_url(store.url)}: downgraded from {before} to {after or 'an empty database'}")


@db_app.command("current")
def current_command(db: DbOption = None, fmt: FormatOption = None) -> None:
    """Show which database ncii uses and its schema revision.

    Example: ncii db current
    """
    with cli_store(db, migrate_schema=False) as store:
        current = _revision(store)
        head = migrate.head_revision()
    state = "up to date" if current == head else ("empty" if current is None else "behind")
    record = {
        "url": shown_url(store.url),
        "dialect": store.dialect,
        "revision": current,
        "head": head,
        "state": state,
    }
    render([record], fmt=choose_format(fmt), columns=tuple(record), flat=_same)


def _revision(store: Store) -> str | None:
    with store.read_connection() as connection:
        return migrate.current_revision(connection)


def _same(record: dict[str, Any]) -> dict[str, Any]:
    return record
