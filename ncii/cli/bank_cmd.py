"""`ncii bank`: create, list, show, rename and delete hash banks."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_store
from ncii.cli.options import ActorOption, DbOption, FormatOption, OutputFormat, resolve_actor
from ncii.cli.output import choose_format, error_line, note_line, render
from ncii.errors import NciiError
from ncii.service import banks
from ncii.service.banks import BankDetail, BankInfo, BankSummary
from ncii.signals import WEAK_SIGNALS, get_signal_type
from ncii.store.models import BankSource

bank_app = typer.Typer(
    name="bank",
    help="Create, list, show, update, rename and delete hash banks.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

BankArgument = Annotated[str, typer.Argument(help="The bank's name.", show_default=False)]
BANK_COLUMNS = (
    "name",
    "source",
    "source_ref",
    "trust_level",
    "thresholds",
    "description",
    "created_at",
)
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="TYPE=N: this bank's entries match at distance N or below for that signal type "
        "(repeatable; pdq also applies to video frames). Default: the type's own (pdq 31).",
        show_default=False,
    ),
]


WeakHashOption = Annotated[
    bool | None,
    typer.Option(
        "--weak-hash-matching/--no-weak-hash-matching",
        help="Let this bank's pHash/dHash/aHash/wHash decide matches alone, at exact equality "
        "(or at a --threshold you give): only for partners that exchange nothing else. "
        "Unrelated photos share these hashes (docs/detection.md).",
        show_default=False,
    ),
]


def _weak_thresholds(weak: bool | None, given: dict[str, int]) -> dict[str, int]:
    """``--weak-hash-matching``: every weak type at equality unless a threshold was given."""
    return {kind: 0 for kind in WEAK_SIGNALS if kind not in given} if weak else {}


def _warn_weak(bank: BankInfo) -> None:
    """A bank deciding on weak hashes blocks unrelated photos: say so every time it is set."""
    weak = [kind for kind in WEAK_SIGNALS if kind in bank.match_thresholds]
    if weak:
        note_line(
            f"warning: bank {bank.name} matches on {', '.join(weak)} alone; unrelated photos "
            "share these 64-bit hashes (docs/detection.md, 'False matches at scale')"
        )


def _thresholds(values: list[str] | None) -> dict[str, int]:
    """``--threshold`` values, or a usage error (exit 2) naming the bad one."""
    try:
        return dict(banks.parse_threshold(v) for v in values or [])
    except NciiError as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None


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
    threshold: ThresholdOption = None,
    weak_hash_matching: WeakHashOption = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Create an empty bank. Names: letters, digits, '_', '.', '-'.

    Example: ncii bank create partner-x --source partner --trust 90 --threshold pdq=24
    """
    thresholds = _thresholds(threshold)
    thresholds |= _weak_thresholds(weak_hash_matching, thresholds)
    with cli_store(db, create=True) as store, store.begin() as session:
        bank = banks.create_bank(
            session,
            name,
            actor=resolve_actor(actor),
            description=description,
            source=source,
            source_ref=source_ref,
            trust_level=trust,
            match_thresholds=thresholds,
        )
    _warn_weak(bank)
    render([bank], fmt=choose_format(fmt), columns=BANK_COLUMNS, flat=_bank_row)


@bank_app.command("update")
def update_command(
    name: BankArgument,
    description: Annotated[str | None, typer.Option(help="What the bank holds.")] = None,
    trust: Annotated[
        int | None, typer.Option(min=0, max=100, help="How far its hashes are trusted, 0-100.")
    ] = None,
    threshold: ThresholdOption = None,
    clear_threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--clear-threshold",
            help="TYPE: go back to the type's default threshold (repeatable).",
            show_default=False,
        ),
    ] = None,
    weak_hash_matching: WeakHashOption = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Change a bank's description, trust level or match thresholds; the rest stays as is.

    Running matchers use new thresholds within a second. The audit trail records what
    changed, from what to what.

    Example: ncii bank update partner-x --threshold pdq=20 --clear-threshold phash
    """
    thresholds = _thresholds(threshold)
    try:
        cleared = [get_signal_type(kind).name for kind in clear_threshold or []]
    except NciiError as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None
    thresholds |= _weak_thresholds(weak_hash_matching, thresholds)
    if weak_hash_matching is False:
        cleared += [kind for kind in WEAK_SIGNALS if kind not in cleared]
    if both := sorted(set(cleared) & set(thresholds)):
        error_line(f"both set and cleared: {', '.join(both)}")
        raise typer.Exit(exit_codes.USAGE)
    with cli_store(db) as store, store.begin() as session:
        bank = banks.update_bank(
            session,
            name,
            actor=resolve_actor(actor),
            description=description,
            trust_level=trust,
            set_thresholds=thresholds,
            clear_thresholds=cleared,
        )
    _warn_weak(bank)
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
    return bank.to_dict() | {
        "created_at": bank.created_at.isoformat(timespec="seconds"),
        "thresholds": _thresholds_text(bank.match_thresholds),
    }


def _thresholds_text(thresholds: dict[str, int]) -> str | None:
    return ",".join(f"{kind}={value}" for kind, value in thresholds.items()) or None


def _detail_rows(detail: BankDetail) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        (key, _thresholds_text(value) if key == "match_thresholds" else value)
        for key, value in detail.bank.to_dict().items()
        if key != "id"
    ]
    rows.append(("entries", detail.entries))
    rows.extend((f"status {status}", count) for status, count in detail.by_status.items())
    rows.extend((f"signals {kind}", count) for kind, count in detail.by_signal_type.items())
    if detail.video_frames:
        rows.append(("video frames", detail.video_frames))
    if detail.pdq_variants:
        rows.append(("pdq variants", detail.pdq_variants))
    return rows
