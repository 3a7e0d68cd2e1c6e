"""`ncii entry`: list a bank's entries and change their status."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_store
from ncii.cli.options import ActorOption, DbOption, FormatOption, resolve_actor
from ncii.cli.output import choose_format, error_line, note_line, render
from ncii.service import entries
from ncii.service.entries import EntryInfo, StatusChange
from ncii.store.models import EntryStatus

entry_app = typer.Typer(
    name="entry",
    help="List a bank's entries; disable, enable or withdraw them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ENTRY_COLUMNS = ("id", "status", "types", "pdq", "external_id", "case_ref", "created_at")
STATUS_COLUMNS = ("id", "bank", "previous", "status", "changed", "disabled_until")

IdsArgument = Annotated[list[int], typer.Argument(help="Entry ids.", show_default=False)]


@entry_app.command("list")
def list_command(
    bank: Annotated[str, typer.Argument(help="The bank's name.", show_default=False)],
    status: Annotated[
        EntryStatus | None, typer.Option(help="Only entries with this status.")
    ] = None,
    signal_type: Annotated[
        str | None, typer.Option("--type", help="Only entries with a signal of this type.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Entries per page.")] = 50,
    after: Annotated[
        int, typer.Option(min=0, help="Start after this entry id (the next page).")
    ] = 0,
    db: DbOption = None,
    fmt: FormatOption = None,
) -> None:
    """List a bank's entries in id order, a page at a time.

    Example: ncii entry list stopncii --status withdrawn --limit 100
    """
    with cli_store(db) as store, store.read() as session:
        page = entries.list_entries(
            session, bank, status=status, signal_type=signal_type, after=after, limit=limit
        )
    render(
        page.entries,
        fmt=choose_format(fmt),
        columns=ENTRY_COLUMNS,
        flat=_entry_row,
        as_json=EntryInfo.to_dict,
    )
    if page.next_after is not None:
        note_line(f"more entries: add --after {page.next_after}")


@entry_app.command("disable")
def disable_command(
    ids: IdsArgument,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")],
    until: Annotated[
        str | None,
        typer.Option(help="Re-enable at this time (ISO 8601, UTC unless it has an offset)."),
    ] = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Stop entries matching, for good or until a time.

    Example: ncii entry disable 1234 --reason "under review" --until 2025-07-01
    """
    when = _parse_until(until)
    _change(
        ids,
        db,
        fmt,
        lambda s, i: entries.disable_entry(
            s, i, actor=resolve_actor(actor), reason=reason, until=when
        ),
    )


@entry_app.command("enable")
def enable_command(
    ids: IdsArgument,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail).")] = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Make disabled or withdrawn entries match again.

    Example: ncii entry enable 1234 --reason "review done"
    """
    _change(
        ids,
        db,
        fmt,
        lambda s, i: entries.enable_entry(s, i, actor=resolve_actor(actor), reason=reason),
    )


@entry_app.command("withdraw")
def withdraw_command(
    ids: IdsArgument,
    reason: Annotated[str, typer.Option(help="Why (kept with the entry).")],
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Withdraw entries: they stop matching and imports will not bring them back.

    Example: ncii entry withdraw 1234 --reason "reporter withdrew consent"
    """
    _change(
        ids,
        db,
        fmt,
        lambda s, i: entries.withdraw_entry(s, i, actor=resolve_actor(actor), reason=reason),
    )


def _change(ids: list[int], db: str | None, fmt: Any, change: Any) -> None:
    """Apply one status change to every id in one transaction (all or nothing)."""
    with cli_store(db) as store, store.begin() as session:
        results: list[StatusChange] = [change(session, entry_id) for entry_id in ids]
    render(
        results,
        fmt=choose_format(fmt),
        columns=STATUS_COLUMNS,
        flat=_change_row,
        as_json=lambda r: {"previous": r.previous.value, "changed": r.changed} | r.entry.to_dict(),
    )


def _parse_until(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        error_line(f"invalid --until {text!r}: expected an ISO 8601 date or time")
        raise typer.Exit(exit_codes.USAGE) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _entry_row(entry: EntryInfo) -> dict[str, Any]:
    pdq = next((s for s in entry.signals if s.type == "pdq"), None)
    return {
        "id": entry.id,
        "status": entry.status.value,
        "types": ",".join(s.type for s in entry.signals),
        "pdq": pdq.value if pdq else None,
        "external_id": entry.external_id,
        "case_ref": entry.case_ref,
        "created_at": entry.created_at.isoformat(timespec="seconds"),
    }


def _change_row(result: StatusChange) -> dict[str, Any]:
    entry = result.entry
    return {
        "id": entry.id,
        "bank": entry.bank,
        "previous": result.previous.value,
        "status": entry.status.value,
        "changed": result.changed,
        "disabled_until": entry.disabled_until.isoformat() if entry.disabled_until else None,
    }
