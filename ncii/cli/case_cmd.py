"""`ncii case`: open a victim's case from hashes only, check on it with its PIN, withdraw it,
and package hashes on the victim's own machine for opening elsewhere."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_errors, cli_store
from ncii.cli.options import (
    ActorOption,
    DbOption,
    FormatOption,
    JobsOption,
    OutputFormat,
    resolve_actor,
    resolve_jobs,
)
from ncii.cli.output import choose_format, error_line, note_line, render, with_progress
from ncii.detection import DEFAULT
from ncii.hashing import HashOptions, HashResult, expand_inputs, hash_many
from ncii.service import case_package, cases
from ncii.service.cases import CaseStatusInfo
from ncii.service.entries import NewEntry

case_app = typer.Typer(
    name="case",
    help="Victim cases: open one from hashes (never media), check its status, withdraw it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

CaseArgument = Annotated[
    str, typer.Argument(help="The case number, e.g. NC-7K3M-9QXD.", show_default=False)
]
PinFileOption = Annotated[
    Path | None,
    typer.Option(
        "--pin-file", help="Read the PIN from this file's first line (default: ask for it)."
    ),
]
MediaArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Photos, videos or directories to hash (nothing else is kept)."),
]
OPEN_COLUMNS = ("case", "pin", "hashes", "added", "already_banked", "bank")


def _hash_all(paths: list[str], jobs: int) -> list[HashResult]:
    """Hash every input, or report each failure and stop: a case is opened whole or not.

    Hashed for a bank: with the default pipeline's variants of each picture."""
    results, failed = [], 0
    options = HashOptions(bank_variants=DEFAULT)
    inputs = expand_inputs(paths)
    hashed = hash_many(inputs, options=options, jobs=resolve_jobs(jobs))
    for outcome in with_progress(hashed, "hashing", inputs):
        if outcome.hashes is None:
            failed += 1
            error_line(outcome.error or outcome.source)
        else:
            results.append(outcome.hashes)
    if failed or not results:
        error_line("nothing was done: every file must hash (leave out the ones that fail)")
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)
    return results


@case_app.command("open")
def open_command(
    paths: MediaArgument = None,
    from_package: Annotated[
        Path | None,
        typer.Option("--from", help="Open from a case package (`ncii case package`) instead."),
    ] = None,
    bank: Annotated[
        str, typer.Option(help="The bank for the case's hashes (the default is created).")
    ] = cases.CASE_BANK,
    name: Annotated[
        str | None, typer.Option(help="A name for the case (none is stored otherwise).")
    ] = None,
    jobs: JobsOption = 1,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Hash media locally, store only the hashes in a new case, print its number and PIN once.

    Examples: ncii case open photo1.jpg photo2.jpg

              ncii case open --from case.json --bank helpline
    """
    if bool(paths) == (from_package is not None):
        error_line("give media files to hash, or --from PACKAGE (not both)")
        raise typer.Exit(exit_codes.USAGE)
    if from_package is not None:
        with cli_errors():
            items = [
                NewEntry(item.signals, frames=item.frames, variants=item.variants)
                for item in case_package.read_package(_read(from_package), name=from_package.name)
            ]
    else:
        items = [cases.entry_for(h) for h in _hash_all(paths or [], jobs)]
    with cli_store(db) as store, store.begin() as session:
        opened = cases.open_case(session, items, actor=resolve_actor(actor), bank=bank, label=name)
    render([opened.to_dict()], fmt=choose_format(fmt), columns=OPEN_COLUMNS, flat=_same)
    note_line(
        f"case {opened.number} opened with {opened.entries} hashes. Keep the case number and "
        "PIN somewhere safe: the PIN is shown only this once and cannot be recovered."
    )


@case_app.command("status")
def status_command(
    case: CaseArgument,
    pin_file: PinFileOption = None,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Show a case's hashes, matches found since it opened, and its takedown requests.

    Example: ncii case status NC-7K3M-9QXD --pin-file pin.txt
    """
    pin = _pin(pin_file)
    with cli_store(db) as store:
        with store.begin() as session:  # commits the attempt, right or wrong
            check = cases.check_pin(session, case, pin, actor=resolve_actor(actor))
        check.raise_if_refused()
        with store.read() as session:
            status = cases.case_status(session, case)
    output = choose_format(fmt)
    if output is OutputFormat.jsonl:
        render([status], fmt=output, columns=(), flat=CaseStatusInfo.to_dict)
        return
    render(
        _status_rows(status),
        fmt=output,
        columns=("field", "value"),
        flat=lambda row: {"field": row[0], "value": row[1]},
        title=f"case {status.number}",
    )


@case_app.command("withdraw")
def withdraw_command(
    case: CaseArgument,
    pin_file: PinFileOption = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Withdraw a case: its hashes stop matching everywhere within a second, exports mark them
    withdrawn, and the audit log records it.

    Example: ncii case withdraw NC-7K3M-9QXD --pin-file pin.txt --yes
    """
    pin = _pin(pin_file)
    who = resolve_actor(actor)
    with cli_store(db) as store:
        with store.begin() as session:
            check = cases.check_pin(session, case, pin, actor=who)
        check.raise_if_refused()
        if not yes:
            typer.confirm(
                f"Withdraw case {check.number}? Its hashes will stop matching", abort=True
            )
        with store.begin() as session:
            done = cases.withdraw_case(session, case, actor=who, reason=reason)
    render(
        [done.to_dict()],
        fmt=choose_format(fmt),
        columns=("case", "withdrawn", "kept_for_other_cases", "already_withdrawn"),
        flat=_same,
    )
    if done.already:
        note_line(f"case {done.number} was already withdrawn")
    else:
        note_line(f"case {done.number} withdrawn: {done.withdrawn} hashes no longer match")


@case_app.command("package")
def package_command(
    paths: Annotated[
        list[str], typer.Argument(help="Photos, videos or directories.", show_default=False)
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The package file to write.")],
    include_paths: Annotated[
        bool, typer.Option(help="Also record each file's path (left out by default).")
    ] = False,
    jobs: JobsOption = 1,
) -> None:
    """On your own device: hash media into a file of hashes only, to open a case elsewhere
    (`ncii case open --from FILE`). No database is used and no media leaves the machine.

    Example: ncii case package ~/reported/ -o case.json
    """
    hashed = _hash_all(paths, jobs)
    with cli_errors():
        package = case_package.build_package(
            [case_package.item_of(h, include_path=include_paths) for h in hashed]
        )
    partial = output.with_name(output.name + ".part")
    try:
        partial.write_text(json.dumps(package, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, output)
    except OSError as exc:
        error_line(f"{output}: cannot write ({exc.strerror or exc})")
        raise typer.Exit(exit_codes.ERROR) from None
    note_line(f"wrote {len(hashed)} items' hashes to {output} (no media, no paths unless asked)")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        error_line(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})")
        raise typer.Exit(exit_codes.USAGE) from None


def _pin(pin_file: Path | None) -> str:
    if pin_file is None:
        if not sys.stdin.isatty():  # piped: read it, rather than have getpass warn
            pin = sys.stdin.readline().strip()
            if not pin:
                error_line("no PIN on standard input (or give --pin-file)")
                raise typer.Exit(exit_codes.USAGE)
            return pin
        return typer.prompt("PIN", hide_input=True)
    lines = _read(pin_file).splitlines()
    if not lines or not lines[0].strip():
        error_line(f"{pin_file}: no PIN on its first line")
        raise typer.Exit(exit_codes.USAGE)
    return lines[0].strip()


def _same(record: dict[str, Any]) -> dict[str, Any]:
    return record


def _status_rows(status: CaseStatusInfo) -> list[tuple[str, Any]]:
    data = status.to_dict()
    rows: list[tuple[str, Any]] = [
        (key, value) for key, value in data.items() if key not in ("case", "takedowns")
    ]
    for takedown in status.takedowns:
        due = takedown.due_at.isoformat(timespec="minutes")
        rows.append((f"takedown {takedown.id}", f"{takedown.state.value} (due {due})"))
    return rows
