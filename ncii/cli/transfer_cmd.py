"""`ncii add`, `ncii import` and `ncii export`: put hashes into banks and take them out."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_store
from ncii.cli.options import (
    DEFAULT_PIPELINE,
    ActorOption,
    DbOption,
    FormatOption,
    JobsOption,
    PipelineOption,
    resolve_actor,
    resolve_jobs,
)
from ncii.cli.output import (
    choose_format,
    error_line,
    note_line,
    reading_progress,
    render,
    with_progress,
)
from ncii.detection import get_pipeline
from ncii.errors import ImportFailed
from ncii.hashing import HashOptions, expand_inputs, hash_many
from ncii.service import banks, ingest, transfer
from ncii.service.entries import AddOptions, AddResult, AddSummary, Invalid, NewEntry
from ncii.service.formats import ExportFormat, ImportFormat, Provenance
from ncii.signals.vpdq import VPDQ_QUALITY_THRESHOLD, VideoHashes

BANK_EVERY = 0.0
"""Seconds between the video frames ``ncii add`` hashes: 0, every frame, as Meta's vPDQ banks.
Queries are hashed once a second, and a re-timed copy's frames fall between the original's:
against banks sampled every 0.1 s or more, 6 to 19 of the 45 same-family pairs of the reference
videos no longer match (docs/hashing.md, "Video")."""

BankArgument = Annotated[str, typer.Argument(help="The bank's name.", show_default=False)]
CaseOption = Annotated[
    str | None, typer.Option("--case", help="Case reference for every item added.")
]
NoteOption = Annotated[str | None, typer.Option(help="A note for every item added.")]
SourceIdOption = Annotated[
    str | None, typer.Option("--source-id", help="The items' id at their source.")
]
SkipInvalidOption = Annotated[
    bool,
    typer.Option(
        "--skip-invalid",
        help="Skip malformed records (each is reported) instead of importing nothing.",
    ),
]
TypeOption = Annotated[
    str | None,
    typer.Option("--type", help="Signal type of bare hashes (lines with no type), e.g. pdq."),
]

ADD_COLUMNS = (
    "source",
    "outcome",
    "entry_id",
    "withdrawn",
    "pdq",
    "pdq_quality",
    "frames",
    "signals",
)


def add_command(
    bank: BankArgument,
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Media files or directories to hash (- for standard input)."),
    ] = None,
    hashes: Annotated[
        str | None,
        typer.Option(
            "--hashes",
            help="Add hashes from this file (- for standard input) instead of hashing media.",
        ),
    ] = None,
    hashes_format: Annotated[
        ImportFormat,
        typer.Option(
            "--hashes-format",
            case_sensitive=False,
            help="Format of --hashes: tx is one hash per line ('pdq <hex>', 'pdq:<hex>', or "
            "bare with --type); csv, jsonl and stopncii as for `ncii import`.",
        ),
    ] = ImportFormat.tx,
    signal_type: TypeOption = None,
    case: CaseOption = None,
    note: NoteOption = None,
    source_id: SourceIdOption = None,
    skip_invalid: SkipInvalidOption = False,
    every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Videos and animations: seconds between hashed frames. Default 0: every "
            "frame, so that copies re-encoded at another frame rate still match one-frame-a-"
            "second queries.",
        ),
    ] = BANK_EVERY,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
    jobs: JobsOption = 1,
    db: DbOption = None,
    actor: ActorOption = None,
    fmt: FormatOption = None,
) -> None:
    """Hash media files and add their signals to a bank, one entry per file (no media is kept).

    Videos and animated GIF/WebP (told apart by content) are stored as their MD5/SHA-256 and
    vPDQ frame hashes. Items already in the bank are reported as present and nothing is added
    for them. Exit code 0 when everything was added or present, 1 when some input failed.

    Examples: ncii add own-reports photo.jpg --case CASE-123 --note "reported by email"

              ncii add own-reports --hashes hashes.txt --type pdq
    """
    if bool(paths) == bool(hashes):
        error_line("give media files to hash, or --hashes FILE (not both)")
        raise typer.Exit(exit_codes.USAGE)
    defaults = Provenance(external_id=source_id, case_ref=case, note=note, signal_type=signal_type)
    actor_name = resolve_actor(actor)
    failures = 0
    results: list[AddResult] = []
    with cli_store(db) as store:
        with store.read() as session:
            banks.bank_info(session, bank)  # fail before any hashing
        if hashes:
            with (
                _import_errors(hashes),
                _input(hashes) as stream,
                reading_progress(stream, "importing", total=_size(hashes)) as counted,
                store.begin() as session,
            ):
                summary = transfer.import_records(
                    session,
                    bank,
                    counted,
                    hashes_format,
                    actor=actor_name,
                    defaults=defaults,
                    skip_invalid=skip_invalid,
                    on_skip=lambda invalid: _skipped(hashes, invalid),
                    on_result=results.append,
                    source_name=_name(hashes),
                )
                _require_records(summary, len(results))
            failures = summary.skipped
        else:
            items: list[NewEntry] = []
            options = HashOptions(video_every=every, bank_variants=get_pipeline(pipeline))
            inputs = expand_inputs(paths or [])
            for outcome in with_progress(
                hash_many(inputs, options=options, jobs=resolve_jobs(jobs)), "hashing", inputs
            ):
                if outcome.hashes is None:
                    failures += 1
                    error_line(outcome.error or outcome.source)
                    continue
                frames = outcome.hashes.frames if isinstance(outcome.hashes, VideoHashes) else ()
                items.append(
                    NewEntry(
                        outcome.hashes.signals,
                        external_id=source_id,
                        case_ref=case,
                        note=note,
                        source=outcome.source,
                        frames=frames,
                        variants=outcome.hashes.pdq_variants,
                    )
                )
                if frames and not any(f.quality >= VPDQ_QUALITY_THRESHOLD for f in frames):
                    note_line(
                        f"{outcome.source}: no video frame has quality {VPDQ_QUALITY_THRESHOLD} "
                        "or more; only its MD5/SHA-256 will be matched on"
                    )
                pdq = outcome.hashes.get("pdq")
                if pdq is not None and pdq.low_quality:
                    note_line(
                        f"{outcome.source}: PDQ quality {pdq.quality} is low; "
                        "its PDQ hash will not be matched on"
                    )
            with store.begin() as session:
                summary = ingest.add_entries(
                    session,
                    bank,
                    items,
                    actor=actor_name,
                    options=AddOptions(audit_each=True),
                    on_result=results.append,
                )
    render(results, fmt=choose_format(fmt), columns=ADD_COLUMNS, flat=_result_row)
    note_line(_summary_line(summary))
    if failures or (not results and not hashes):
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def import_command(
    bank: BankArgument,
    file: Annotated[str, typer.Argument(help="The file to import (- for standard input).")],
    fmt: Annotated[
        ImportFormat,
        typer.Option("--format", "-f", case_sensitive=False, help="The file's format."),
    ],
    signal_type: TypeOption = None,
    case: CaseOption = None,
    note: NoteOption = None,
    skip_invalid: SkipInvalidOption = False,
    db: DbOption = None,
    actor: ActorOption = None,
) -> None:
    """Import a hash list into a bank, all or nothing, without media.

    Formats: csv (signal_type,value[,quality,status,external_id,case_ref,note]), jsonl (also
    `ncii hash --format jsonl` output), tx (python-threatexchange's '<type> <hash>' lines),
    stopncii (FetchHashes records; withdrawn or deleted ones withdraw the entry).
    Re-importing a file adds nothing. A malformed record stops the import, naming its line,
    and leaves the bank unchanged, unless --skip-invalid (then exit code 1).

    Example: ncii import stopncii fetch.jsonl --format stopncii
    """
    defaults = Provenance(case_ref=case, note=note, signal_type=signal_type)
    seen: list[AddResult] = []
    with (
        cli_store(db) as store,
        _import_errors(file),
        _input(file) as stream,
        reading_progress(stream, "importing", total=_size(file)) as counted,
        store.begin() as session,
    ):
        summary = transfer.import_records(
            session,
            bank,
            counted,
            fmt,
            actor=resolve_actor(actor),
            defaults=defaults,
            skip_invalid=skip_invalid,
            on_skip=lambda invalid: _skipped(file, invalid),
            on_result=seen.append,
            source_name=_name(file),
        )
        _require_records(summary, len(seen))
    typer.echo(_summary_line(summary))
    if summary.skipped:
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def export_command(
    bank: BankArgument,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", case_sensitive=False, help="The output format."),
    ] = ExportFormat.jsonl,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = "-",
    db: DbOption = None,
) -> None:
    """Export a bank's entries with their status (streamed: any size in little memory).

    csv and jsonl carry every entry, withdrawn ones marked withdrawn, and re-import into
    ncii; jsonl also carries video entries' vPDQ frame hashes. tx writes python-threatexchange's
    '<type> <hash>' lines for active entries only (pdq, video_md5, video_sha256: the types
    pytx knows).

    Example: ncii export stopncii --format tx -o stopncii.txt
    """
    with cli_store(db) as store, store.read() as session, _output(output) as out:
        summary = transfer.export_bank(session, bank, out, fmt)
    frames = f", {summary.frames:,} video frames" if summary.frames else ""
    message = (
        f"exported {summary.entries:,} entries ({summary.signals:,} signals{frames}) "
        f"from bank {summary.bank}"
    )
    if summary.left_out:
        message += f"; left out {summary.left_out:,} signals {fmt.value} cannot carry"
    if summary.frames_left_out:
        message += (
            f"; left out {summary.frames_left_out:,} video frames {fmt.value} cannot carry "
            "(jsonl carries them)"
        )
    note_line(message)


@contextmanager
def _import_errors(file: str) -> Iterator[None]:
    """An import that fails names the file and says that nothing was imported."""
    try:
        yield
    except ImportFailed as exc:
        where = _name(file) if exc.line is None else f"{_name(file)}, {exc.unit} {exc.line}"
        error_line(f"{where}: {exc.reason}; nothing was imported")
        raise typer.Exit(exit_codes.ERROR) from None


@contextmanager
def _input(name: str) -> Iterator[TextIO]:
    """A text stream for an import; decoding errors become an import failure."""
    if name == "-":
        stream: TextIO = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    else:
        try:
            stream = open(name, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise ImportFailed(None, f"cannot open it ({exc.strerror or exc})") from None
    try:
        yield stream
    except UnicodeDecodeError as exc:
        raise ImportFailed(None, f"not UTF-8 text ({exc.reason})") from None
    finally:
        if name != "-":
            stream.close()
        else:
            stream.detach()


@contextmanager
def _output(name: str) -> Iterator[TextIO]:
    """stdout, or a file written beside its final name and moved there on success."""
    if name == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = Path(f"{name}.part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed export leaves no half-written file
        raise
    os.replace(partial, name)


def _require_records(summary: AddSummary, results: int) -> None:
    """An import that found nothing to import is an error, not "0 added": an empty or
    truncated file must not pass for a successful transfer (raised inside the transaction, so
    not even its audit event is kept)."""
    if not (results or summary.skipped or summary.withdrawn):
        raise ImportFailed(None, "the file held no records")


def _size(file: str) -> int | None:
    """The size of a regular file (the import's progress total), else None."""
    try:
        return None if file == "-" else os.stat(file).st_size or None
    except OSError:
        return None


def _skipped(file: str, invalid: Invalid) -> None:
    error_line(f"{_name(file)}, {invalid} (skipped)")


def _name(file: str) -> str:
    return "<stdin>" if file == "-" else os.path.basename(file)


def _summary_line(summary: AddSummary) -> str:
    parts = [f"{summary.added:,} added", f"{summary.present:,} already there"]
    if summary.extended:
        parts.append(f"{summary.extended:,} extended with new signals")
    if summary.withdrawn:
        parts.append(f"{summary.withdrawn:,} withdrawn")
    if summary.skipped:
        parts.append(f"{summary.skipped:,} skipped")
    return f"bank {summary.bank}: " + ", ".join(parts)


def _result_row(result: AddResult) -> dict[str, Any]:
    pdq = next((s for s in result.item.signals if s.type == "pdq"), None)
    return {
        "source": result.item.where,
        "outcome": result.outcome.value,
        "entry_id": result.entry_id,
        "withdrawn": result.withdrawn or None,
        "pdq": pdq.value if pdq else None,
        "pdq_quality": pdq.quality if pdq else None,
        "frames": len(result.item.frames) or None,
        "signals": ",".join(s.type for s in result.item.signals),
    }
