"""`ncii match` and `ncii scan`: look uploads up in the banks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_errors, cli_store
from ncii.cli.options import (
    DEFAULT_PIPELINE,
    DbOption,
    FormatOption,
    IndexCacheOption,
    JobsOption,
    OutputFormat,
    PipelineOption,
    ProgressOption,
    resolve_jobs,
)
from ncii.cli.output import choose_format, error_line, note_line, progress_bar, render
from ncii.cli.scan_report import ReportFile
from ncii.detection import get_pipeline
from ncii.errors import NciiError
from ncii.hashing import HashOptions, HashOutcome, expand_inputs, hash_many
from ncii.match import QueryOptions
from ncii.service import banks as bank_service
from ncii.service import match_log, snapshots
from ncii.service.matching import BankMatch, Matcher
from ncii.service.video_matching import VideoOptions, ranges_text
from ncii.signals import Signal, get_signal_type
from ncii.signals.vpdq import DEFAULT_EVERY, VPDQ_BANK_MATCH_PCT, VPDQ_QUERY_MATCH_PCT
from ncii.store.engine import Store

VERDICT_COLUMNS = (
    "verdict",
    "input",
    "banks",
    "entries",
    "signal",
    "distance",
    "transform",
    "case_refs",
    "video_pct",
    "ranges",
    "error",
)
"""The terminal table: one row per input, its verdict first."""
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
    progress: ProgressOption = None,
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
    tally = _Tally()
    with cli_store(db) as store:
        _check_banks(store, banks)
        matcher = Matcher(
            store,
            include_low_quality=low_quality,
            snapshot=snapshots.folder_for(store, index_cache),
            warm=False,  # a few lookups touch a few pages: reading them all costs more
        )
        inputs = expand_inputs(paths or [])
        hashing = HashOptions(video_every=every, query_regions=get_pipeline(pipeline))

        def found() -> Iterator[_Found]:
            for q in queries:
                yield _Found(
                    f"{q.type}:{q.value}",
                    matcher.match_signals(
                        [q], banks=banks, options=options, include_inactive=include_inactive
                    ),
                )
            with progress_bar("matching", show=progress) as bar:
                task = bar.add_task("match", total=len(inputs))
                for outcome in hash_many(inputs, options=hashing, jobs=resolve_jobs(jobs)):
                    one = _match_outcome(matcher, outcome, banks, options, include_inactive, video)
                    _log_matches(store, [one], "match")
                    bar.advance(task)
                    yield one

        _render_found(tally.count(found()), output)
    note_line(
        f"{tally.matched} of {tally.inputs} inputs matched"
        + (f", {tally.failed} failed" if tally.failed else "")
    )
    if tally.matched:
        raise typer.Exit(exit_codes.MATCH)
    if tally.failed:
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


@dataclass
class _Tally:
    """Counts inputs as they stream past, so results need not be held until the end."""

    inputs: int = 0
    matched: int = 0
    failed: int = 0

    def count(self, found: Iterable[_Found]) -> Iterator[_Found]:
        for one in found:
            self.inputs += 1
            self.failed += one.error is not None
            self.matched += any(m.active for m in one.matches)
            if one.error:
                error_line(one.error)
            yield one


def _render_found(found: Iterable[_Found], output: OutputFormat) -> None:
    """Each input's rows as soon as it is matched (jsonl and csv); a terminal table has one
    row per input, its verdict first."""
    if output is OutputFormat.table:
        render(
            found,
            fmt=output,
            columns=VERDICT_COLUMNS,
            flat=_verdict_row,
        )
        return
    render(
        (row for f in found for row in _match_rows(f)),
        fmt=output,
        columns=MATCH_COLUMNS,
        flat=lambda r: r | {"corroborated_by": ",".join(r.get("corroborated_by") or ()) or None},
        as_json=lambda r: {k: v for k, v in r.items() if k != "ranges"},
    )


def _verdict_row(found: _Found) -> dict[str, Any]:
    """One input on one line: blocked (an active entry matched), flagged (only disabled
    entries), no match, or error."""
    matches = found.matches
    if found.error:
        verdict = "error"
    elif any(m.active for m in matches):
        verdict = "MATCH"
    else:
        verdict = "flagged" if matches else "no match"
    best = min(matches, key=lambda m: (m.distance, m.signal_type != "pdq"), default=None)
    video = next((m.video for m in matches if m.video is not None), None)
    return {
        "verdict": verdict,
        "input": found.source,
        "banks": ", ".join(sorted({m.bank for m in matches})) or None,
        "entries": ", ".join(str(i) for i in sorted({m.entry_id for m in matches})) or None,
        "signal": best.signal_type if best else None,
        "distance": best.distance if best else None,
        "transform": best.transform if best and best.transform != "original" else None,
        "case_refs": ", ".join(sorted({m.case_ref for m in matches if m.case_ref})) or None,
        "video_pct": f"{video.query_pct:.0f}/{video.bank_pct:.0f}" if video else None,
        "ranges": ranges_text(video.query_ranges) if video else None,
        "error": found.error,
    }


def _check_banks(store: Store, names: list[str] | None) -> None:
    """An unknown bank name is an error (a misspelt bank would otherwise match nothing and
    let the upload through)."""
    if names:
        with store.read() as session:
            for name in names:
                bank_service.bank_info(session, name)


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
    progress: ProgressOption = None,
    index_cache: IndexCacheOption = True,
) -> None:
    """Match a backlog of uploads and write one CSV row per file, resumably.

    A rerun with the same --report skips the files it already lists, so an interrupted scan
    picks up where it stopped. Exit codes as for `ncii match` (4 when anything matched).

    Example: ncii scan /srv/uploads --report scan.csv --jobs 0
    """
    with cli_errors():
        _check_folder(folder)
        resumed = ReportFile.open(report)
    inputs = [p for p in expand_inputs([str(folder)]) if p not in resumed.done]
    options = _query_options(threshold, dihedral, False, pipeline)
    video = VideoOptions(query_pct=video_query_pct, bank_pct=video_bank_pct)
    counts = {"scanned": 0, "matched": 0, "failed": 0}
    with cli_store(db) as store:
        _check_banks(store, banks)
        matcher = Matcher(store, snapshot=snapshots.folder_for(store, index_cache))
        hashing = HashOptions(video_every=every, query_regions=get_pipeline(pipeline))
        with (
            cli_errors(),
            resumed.appending() as writer,
            progress_bar("scanning", show=progress) as bar,
        ):
            task = bar.add_task("scan", total=len(inputs))
            for outcome in hash_many(inputs, options=hashing, jobs=resolve_jobs(jobs)):
                found = _match_outcome(matcher, outcome, banks, options, False, video)
                writer(_report_row(found))
                _log_matches(store, [found], "scan")
                counts["scanned"] += 1
                counts["failed"] += found.error is not None
                counts["matched"] += bool(found.matches)
                if found.error:
                    error_line(found.error)
                bar.advance(task)
    earlier = resumed.matched
    note_line(
        f"scanned {counts['scanned']}, matched {counts['matched']}, failed {counts['failed']}, "
        f"skipped {len(resumed.done)} already in {report}"
        + (f" ({earlier} of which matched earlier)" if earlier else "")
    )
    if counts["matched"] or earlier:
        raise typer.Exit(exit_codes.MATCH)
    if counts["failed"]:
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def _check_folder(folder: Path) -> None:
    """A scan needs a folder: a missing one is an error, not an empty (or failed) scan."""
    if not folder.exists():
        raise NciiError(f"{folder}: no such folder; nothing was scanned")
    if not folder.is_dir():
        raise NciiError(f"{folder}: not a folder (give the folder of uploads to scan)")


def _report_row(found: _Found) -> dict[str, Any]:
    if found.error:
        return {"path": found.source, "status": "error", "matches": 0, "error": found.error}
    matches = found.matches
    entries = sorted({m.entry_id for m in matches})
    best = max(
        (m.video for m in matches if m.video is not None),
        key=lambda v: (v.query_pct, v.bank_pct),
        default=None,
    )
    return {
        "path": found.source,
        "status": "match" if matches else "no_match",
        # Entries, not signal types: a photo matched by PDQ and its file digests is one match.
        "matches": len(entries),
        "banks": ";".join(sorted({m.bank for m in matches})),
        "entry_ids": ";".join(str(i) for i in entries),
        "best_distance": min((m.distance for m in matches), default=""),
        "case_refs": ";".join(sorted({m.case_ref for m in matches if m.case_ref})),
        "error": "",
        # The best video match: the one covering most of the upload.
        "video_query_pct": round(best.query_pct, 1) if best else "",
        "video_bank_pct": round(best.bank_pct, 1) if best else "",
        "video_ranges": ranges_text(best.query_ranges) if best else "",
    }


def _log_matches(store: Store, found: list[_Found], source: str) -> None:
    """Count uploads that matched in the match log (case status, reports): entries and
    distances only, never the upload's path or hashes. Hash lookups are not uploads."""
    uploads = [f.matches for f in found if any(m.active for m in f.matches)]
    if uploads:
        with store.begin() as session:
            match_log.record_matches(session, uploads, source=source)
