"""`ncii match` and `ncii scan`: look uploads up in the banks."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.options import (
    DEFAULT_PIPELINE,
    DbOption,
    FormatOption,
    IndexCacheOption,
    JobsOption,
    PipelineOption,
    resolve_jobs,
)
from ncii.cli.output import choose_format, error_line, note_line, progress_bar, render
from ncii.detection import get_pipeline
from ncii.errors import NciiError
from ncii.hashing import HashOptions, HashOutcome, expand_inputs, hash_many
from ncii.match import QueryOptions
from ncii.service import match_log, snapshots
from ncii.service.matching import BankMatch, Matcher
from ncii.service.video_matching import VideoOptions, ranges_text
from ncii.signals import Signal, get_signal_type
from ncii.signals.vpdq import DEFAULT_EVERY, VPDQ_BANK_MATCH_PCT, VPDQ_QUERY_MATCH_PCT
from ncii.store.engine import Store, open_store

MATCH_COLUMNS = (
    "input",
    "bank",
    "entry_id",
    "signal_type",
    "distance",
    "transform",
    "variant",
    "corroborated_by",
    "active",
    "case_ref",
    "query_pct",
    "bank_pct",
    "ranges",
    "error",
)
"""``query_pct``, ``bank_pct`` and ``ranges`` (the query's matched seconds) for video matches."""
REPORT_COLUMNS = (
    "path",
    "status",
    "matches",
    "banks",
    "entry_ids",
    "best_distance",
    "case_refs",
    "video_query_pct",
    "video_bank_pct",
    "video_ranges",
    "error",
)

BanksOption = Annotated[
    list[str] | None,
    typer.Option("--bank", "-b", help="Only match these banks (repeatable). Default: all."),
]
ThresholdOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=256,
        help="PDQ distance threshold for every bank, video frames included. Default: each "
        "bank's own (ncii bank update --threshold), else 31.",
    ),
]
DihedralOption = Annotated[
    bool | None,
    typer.Option(
        help="Match flipped and rotated copies (8 PDQ lookups per upload). Default: on, off "
        "with --pipeline pdq.",
        show_default=False,
    ),
]
EveryOption = Annotated[
    float,
    typer.Option(
        min=0.0, help="Videos and animations: seconds between hashed frames (0: every frame)."
    ),
]
VideoQueryPctOption = Annotated[
    float,
    typer.Option(
        "--video-query-pct",
        min=0.0,
        max=100.0,
        help="A video matches a banked one when this share (%) of its frames is found there.",
    ),
]
VideoBankPctOption = Annotated[
    float,
    typer.Option(
        "--video-bank-pct",
        min=0.0,
        max=100.0,
        help="... and this share (%) of the banked video's frames is found in it.",
    ),
]


@dataclass
class _Found:
    source: str
    matches: list[BankMatch] = field(default_factory=list)
    error: str | None = None


def _query_options(
    threshold: int | None, dihedral: bool | None, low_quality: bool, pipeline: str
) -> QueryOptions:
    thresholds = {"pdq": threshold} if threshold is not None else None
    if pipeline == "pdq":  # plain PDQ: flips only when asked, no variants, no weak hashes
        return QueryOptions.plain_pdq(
            dihedral=bool(dihedral), thresholds=thresholds, include_low_quality=low_quality
        )
    return QueryOptions(
        thresholds=thresholds,
        dihedral=dihedral is not False,
        include_low_quality=low_quality,
    )


def match_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Images, directories (walked recursively) or - for standard input."),
    ] = None,
    hashes: Annotated[
        list[str] | None,
        typer.Option("--hash", help="Look up a hash instead of a file: TYPE:VALUE (repeatable)."),
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = None,
    jobs: JobsOption = 1,
    banks: BanksOption = None,
    threshold: ThresholdOption = None,
    dihedral: DihedralOption = None,
    include_inactive: Annotated[
        bool, typer.Option(help="Also report disabled entries (flagged, never blocking).")
    ] = False,
    low_quality: Annotated[
        bool, typer.Option("--include-low-quality", help="Match PDQ hashes of quality < 50 too.")
    ] = False,
    every: EveryOption = DEFAULT_EVERY,
    video_query_pct: VideoQueryPctOption = VPDQ_QUERY_MATCH_PCT,
    video_bank_pct: VideoBankPctOption = VPDQ_BANK_MATCH_PCT,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
    index_cache: IndexCacheOption = True,
) -> None:
    """Hash each input and report every bank entry it matches.

    Videos and animations match banked videos by vPDQ (frames within the PDQ threshold; by
    default 80% of the upload's frames found in the banked video), reported as signal type
    vpdq with both percentages and the matched seconds, and by MD5/SHA-256.

    Exit codes for scripts that gate uploads: 0 no input matched an active entry; 4 at least
    one did (block it); 1 an input could not be hashed and none matched; 2 bad command line;
    3 fatal error (e.g. the database cannot be opened).

    Example: ncii match upload.jpg --format jsonl || echo "blocked or failed: $?"
    """
    if not paths and not hashes:
        error_line("give files to match or --hash TYPE:VALUE")
        raise typer.Exit(exit_codes.USAGE)
    try:
        queries = [Signal.parse(h) for h in hashes or []]
    except NciiError as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None
    options = _query_options(threshold, dihedral, low_quality, pipeline)
    for weak in sorted({q.type for q in queries if not get_signal_type(q.type).decisive}):
        note_line(f"note: {weak} matches only in banks that opted in (--weak-hash-matching)")
    video = VideoOptions(query_pct=video_query_pct, bank_pct=video_bank_pct)
    output = choose_format(fmt)
    with open_store(db) as store:
        matcher = Matcher(
            store,
            include_low_quality=low_quality,
            snapshot=snapshots.folder_for(store, index_cache),
        )
        found: list[_Found] = [
            _Found(
                f"{q.type}:{q.value}",
                matcher.match_signals(
                    [q], banks=banks, options=options, include_inactive=include_inactive
                ),
            )
            for q in queries
        ]
        inputs = expand_inputs(paths or [])
        hashing = HashOptions(video_every=every, query_regions=get_pipeline(pipeline))
        for outcome in hash_many(inputs, options=hashing, jobs=resolve_jobs(jobs)):
            found.append(_match_outcome(matcher, outcome, banks, options, include_inactive, video))
        _log_matches(store, found[len(queries) :], "match")
    rows = [row for f in found for row in _match_rows(f)]
    render(
        rows,
        fmt=output,
        columns=MATCH_COLUMNS,
        flat=lambda r: r | {"corroborated_by": ",".join(r.get("corroborated_by") or ()) or None},
        as_json=lambda r: {k: v for k, v in r.items() if k != "ranges"},
    )
    failed = sum(1 for f in found if f.error)
    for f in found:
        if f.error:
            error_line(f.error)
    matched = sum(1 for f in found if any(m.active for m in f.matches))
    note_line(
        f"{matched} of {len(found)} inputs matched" + (f", {failed} failed" if failed else "")
    )
    if matched:
        raise typer.Exit(exit_codes.MATCH)
    if failed:
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def _match_outcome(
    matcher: Matcher,
    outcome: HashOutcome,
    banks: list[str] | None,
    options: QueryOptions,
    include_inactive: bool,
    video: VideoOptions | None = None,
) -> _Found:
    if outcome.hashes is None:
        return _Found(outcome.source, error=outcome.error)
    return _Found(
        outcome.source,
        matcher.match(
            outcome.hashes,
            banks=banks,
            options=options,
            include_inactive=include_inactive,
            video=video,
        ),
    )


def _match_rows(found: _Found) -> Iterator[dict[str, Any]]:
    if found.error:
        yield {"input": found.source, "error": found.error}
        return
    if not found.matches:
        yield {"input": found.source, "bank": None, "error": None}
    for match in found.matches:
        row = {"input": found.source, **match.to_dict(), "error": None}
        if match.video is not None:
            row["ranges"] = ranges_text(match.video.query_ranges)
        yield row


def scan_command(
    folder: Annotated[Path, typer.Argument(help="A directory of existing uploads.")],
    report: Annotated[
        Path, typer.Option("--report", "-o", help="CSV report; an existing one is resumed.")
    ],
    db: DbOption = None,
    jobs: JobsOption = 0,
    banks: BanksOption = None,
    threshold: ThresholdOption = None,
    dihedral: DihedralOption = None,
    every: EveryOption = DEFAULT_EVERY,
    video_query_pct: VideoQueryPctOption = VPDQ_QUERY_MATCH_PCT,
    video_bank_pct: VideoBankPctOption = VPDQ_BANK_MATCH_PCT,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
    progress: Annotated[
        bool | None, typer.Option(help="Progress bar. Default: on when stderr is a terminal.")
    ] = None,
    index_cache: IndexCacheOption = True,
) -> None:
    """Match a backlog of uploads and write one CSV row per file, resumably.

    A rerun with the same --report skips the files it already lists, so an interrupted scan
    picks up where it stopped. Exit codes as for `ncii match` (4 when anything matched).

    Example: ncii scan /srv/uploads --report scan.csv --jobs 0
    """
    done = _already_reported(report)
    inputs = [p for p in expand_inputs([str(folder)]) if p not in done]
    options = _query_options(threshold, dihedral, False, pipeline)
    video = VideoOptions(query_pct=video_query_pct, bank_pct=video_bank_pct)
    counts = {"scanned": 0, "matched": 0, "failed": 0, "skipped": len(done)}
    new_file = not report.exists() or report.stat().st_size == 0
    # A report begun by an older version keeps its own columns.
    columns = REPORT_COLUMNS if new_file else _report_header(report)
    with open_store(db) as store, report.open("a", newline="") as handle:
        matcher = Matcher(store, snapshot=snapshots.folder_for(store, index_cache))
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        hashing = HashOptions(video_every=every, query_regions=get_pipeline(pipeline))
        with progress_bar("scanning", show=progress) as bar:
            task = bar.add_task("scan", total=len(inputs))
            for outcome in hash_many(inputs, options=hashing, jobs=resolve_jobs(jobs)):
                found = _match_outcome(matcher, outcome, banks, options, False, video)
                writer.writerow(_report_row(found))
                handle.flush()
                _log_matches(store, [found], "scan")
                counts["scanned"] += 1
                counts["failed"] += found.error is not None
                counts["matched"] += bool(found.matches)
                bar.advance(task)
    note_line(
        f"scanned {counts['scanned']}, matched {counts['matched']}, failed {counts['failed']}, "
        f"skipped {counts['skipped']} already in {report}"
    )
    if counts["matched"] or _report_has_matches(report):
        raise typer.Exit(exit_codes.MATCH)
    if counts["failed"]:
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def _report_row(found: _Found) -> dict[str, Any]:
    if found.error:
        return {"path": found.source, "status": "error", "matches": 0, "error": found.error}
    matches = found.matches
    best = max(
        (m.video for m in matches if m.video is not None),
        key=lambda v: (v.query_pct, v.bank_pct),
        default=None,
    )
    return {
        "path": found.source,
        "status": "match" if matches else "no_match",
        "matches": len(matches),
        "banks": ";".join(sorted({m.bank for m in matches})),
        "entry_ids": ";".join(str(m.entry_id) for m in matches),
        "best_distance": min((m.distance for m in matches), default=""),
        "case_refs": ";".join(sorted({m.case_ref for m in matches if m.case_ref})),
        "error": "",
        # The best video match: the one covering most of the upload.
        "video_query_pct": round(best.query_pct, 1) if best else "",
        "video_bank_pct": round(best.bank_pct, 1) if best else "",
        "video_ranges": ranges_text(best.query_ranges) if best else "",
    }


def _report_header(report: Path) -> list[str]:
    with report.open(newline="") as handle:
        header = next(csv.reader(handle), None)
    return header or list(REPORT_COLUMNS)


def _already_reported(report: Path) -> set[str]:
    """Paths the report lists; a last line cut short by an interruption is dropped first."""
    if not report.exists():
        return set()
    data = report.read_bytes()
    if data and not data.endswith(b"\n"):
        report.write_bytes(data[: data.rfind(b"\n") + 1])
    try:
        with report.open(newline="") as handle:
            return {row["path"] for row in csv.DictReader(handle) if row.get("path")}
    except (OSError, csv.Error, KeyError) as exc:
        raise NciiError(f"{report}: cannot resume from this report ({exc})") from None


def _report_has_matches(report: Path) -> bool:
    with report.open(newline="") as handle:
        return any(row.get("status") == "match" for row in csv.DictReader(handle))


def _log_matches(store: Store, found: list[_Found], source: str) -> None:
    """Count uploads that matched in the match log (case status, reports): entries and
    distances only, never the upload's path or hashes. Hash lookups are not uploads."""
    uploads = [f.matches for f in found if any(m.active for m in f.matches)]
    if uploads:
        with store.begin() as session:
            match_log.record_matches(session, uploads, source=source)
