"""`ncii audit`: read the audit log and verify its hash chain."""

from __future__ import annotations

from typing import Annotated

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_store
from ncii.cli.options import DbOption, FormatOption
from ncii.cli.output import choose_format, error_line, note_line, render
from ncii.service import audit, history
from ncii.service.history import AuditRecord

audit_app = typer.Typer(
    name="audit",
    help="The append-only, hash-chained audit log: list it, verify it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@audit_app.command("verify")
def verify_command(db: DbOption = None, fmt: FormatOption = None) -> None:
    """Recompute the chain; exit 5 naming the first edited or deleted event if it is broken.

    Keep the head hash it prints somewhere else: a later run showing the same (or a chain that
    continues from it) proves nothing before it was rewritten.

    Example: ncii audit verify --db postgresql+psycopg://ncii@db/ncii
    """
    with cli_store(db) as store, store.read() as session:
        report = audit.verify_chain(session)
    render(
        [report.to_dict()],
        fmt=choose_format(fmt),
        columns=("intact", "events", "last_id", "head_hash"),
        flat=lambda r: r,
    )
    if report.problem is not None:
        error_line(report.problem.message)
        raise typer.Exit(exit_codes.TAMPERED)
    note_line(f"audit log intact: {report.events:,} events")


@audit_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(min=1, help="The newest this many.")] = 50,
    db: DbOption = None,
    fmt: FormatOption = None,
) -> None:
    """List the newest audit events, newest first.

    Example: ncii audit list --limit 20
    """
    with cli_store(db) as store, store.read() as session:
        events = history.audit_events(session, limit=limit)
    render(
        events,
        fmt=choose_format(fmt),
        columns=("id", "at", "actor", "action", "bank_id", "entry_id", "details"),
        flat=AuditRecord.to_dict,
    )
