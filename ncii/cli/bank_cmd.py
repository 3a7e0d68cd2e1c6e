"""`ncii bank`: create, list, show, rename and delete hash banks."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ncii.cli.db_cmd import cli_store
from ncii.cli.options import ActorOption, DbOption, FormatOption, OutputFormat, resolve_actor
from ncii.cli.output import choose_format, note_line, render
from ncii.service import banks
from ncii.service.banks import BankDetail, BankInfo, BankSummary
from ncii.store.models import BankSource

bank_app = typer.Typer(
    name="bank",
    help="Create, list, show, rename and delete hash banks.",
    no_args_is_help=True,
)

BankArgument = Annotated[str, typer.Argument(help="The bank's name.", show_default=False)]
BANK_COLUMNS = ("name", "source", "source_ref", "trust_level", "description", "created_at")
LIST_COLUMNS = ("name", "source", "trust_level", "entries", "active", "created_at")


@bank_app.command("create")
def create_command(
    name: BankArgument,
    description: Annotated[str, typer.Option(help="What the bank holds.")] = "",
    source: Annotated[
        BankSource, typer.Option(help="Where its hashes come from.", case_sensitive=False)
    ] = BankSource.own,
    source_ref: Annotated[
        str | None, typer.Option(help="Which partner or case (with --source partner/case).")
    ] = None,
    trust: Annotated[
        int, typer.Option(min=0, max=100, help="How far its hashes are trusted, 0-100.")
    ] = 100,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Create an empty bank. Names: letters, digits, '_', '.', '-'.

    Example: ncii bank create stopncii --source stopncii --trust 90
    """
    with cli_store(db) as store, store.begin() as session:
        bank = banks.create_bank(
            session,
            name,
            actor=resolve_actor(actor),
            description=description,
            source=source,
            source_ref=source_ref,
            trust_level=trust,
        )
    render([bank], fmt=choose_format(fmt), columns=BANK_COLUMNS, flat=_bank_row)


@bank_app.command("list")
def list_command(db: DbOption = None, fmt: FormatOption = None) -> None:
    """List the banks with their numbers of entries.

    Example: ncii bank list --format csv
    """
    with cli_store(db) as store, store.read() as session:
        found = banks.list_banks(session)
    render(
        found,
        fmt=choose_format(fmt),
        columns=LIST_COLUMNS,
        flat=lambda b: _bank_row(b.bank) | {"entries": b.entries, "active": b.active},
        as_json=BankSummary.to_dict,
    )


@bank_app.command("show")
def show_command(name: BankArgument, db: DbOption = None, fmt: FormatOption = None) -> None:
    """Show a bank, its entries counted by status and its signals by type.

    Example: ncii bank show stopncii
    """
    with cli_store(db) as store, store.read() as session:
        detail = banks.show_bank(session, name)
    output = choose_format(fmt)
    if output is OutputFormat.jsonl:
        render([detail], fmt=output, columns=(), flat=BankDetail.to_dict)
        return
    render(
        _detail_rows(detail),
        fmt=output,
        columns=("field", "value"),
        flat=lambda row: {"field": row[0], "value": row[1]},
        title=f"bank {detail.bank.name}",
    )


@bank_app.command("rename")
def rename_command(
    name: BankArgument,
    new_name: Annotated[str, typer.Argument(help="The new name.", show_default=False)],
    db: DbOption = None,
    actor: ActorOption = None,
) -> None:
    """Rename a bank; its entries and history stay with it.

    Example: ncii bank rename partner-x partner-x-2024
    """
    with cli_store(db) as store, store.begin() as session:
        banks.rename_bank(session, name, new_name, actor=resolve_actor(actor))
    note_line(f"renamed bank {name} to {new_name}")


@bank_app.command("delete")
def delete_command(
    name: BankArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
    actor: ActorOption = None,
) -> None:
    """Delete a bank and every entry in it (the audit trail keeps a record of the deletion).

    Example: ncii bank delete old-test-bank --yes
    """
    with cli_store(db) as store:
        if not yes:
            with store.read() as session:
                entries = banks.show_bank(session, name).entries
            typer.confirm(f"Delete bank {name} and its {entries:,} entries?", abort=True)
        with store.begin() as session:
            deleted = banks.delete_bank(session, name, actor=resolve_actor(actor))
    note_line(f"deleted bank {deleted.bank.name} and its {deleted.entries:,} entries")


def _bank_row(bank: BankInfo) -> dict[str, Any]:
    return bank.to_dict() | {"created_at": bank.created_at.isoformat(timespec="seconds")}


def _detail_rows(detail: BankDetail) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        (key, value) for key, value in detail.bank.to_dict().items() if key != "id"
    ]
    rows.append(("entries", detail.entries))
    rows.extend((f"status {status}", count) for status, count in detail.by_status.items())
    rows.extend((f"signals {kind}", count) for kind, count in detail.by_signal_type.items())
    return rows
