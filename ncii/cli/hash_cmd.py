"""`ncii hash`: hash media files and print every signal."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ncii.cli import exit_codes
from ncii.cli.options import FormatOption, JobsOption, OutputFormat, resolve_jobs
from ncii.cli.output import choose_format, error_line, note_line, progress_bar, render
from ncii.errors import NciiError
from ncii.hashing import HashOptions, HashOutcome, expand_inputs, hash_many
from ncii.media import DEFAULT_MAX_PIXELS
from ncii.signals import FILE_SIGNALS, IMAGE_SIGNALS
from ncii.signals.vpdq import DEFAULT_EVERY, VideoHashes

CSV_COLUMNS = (
    "path",
    "media_type",
    "size",
    "width",
    "height",
    "pdq",
    "pdq_quality",
    "phash",
    "dhash",
    "ahash",
    "whash",
    "md5",
    "sha256",
    "frames",
    "duration",
    "error",
)
TABLE_COLUMNS = ("path", "media_type", "size", "pixels", "signals or error")
"""The terminal table: every signal of each input on its row, the long digests shortened
(``--format jsonl`` or csv for the full values)."""


def hash_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="Files, directories (walked recursively) or - for standard input."),
    ],
    fmt: FormatOption = None,
    jobs: JobsOption = 1,
    signals: Annotated[
        str,
        typer.Option(help="Comma-separated signal types to compute."),
    ] = ",".join(IMAGE_SIGNALS + FILE_SIGNALS),
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also output the 7 flipped/rotated PDQ hashes.")
    ] = False,
    full_resolution: Annotated[
        bool,
        typer.Option(
            "--full-resolution",
            help="Hash at full resolution like HMA/python-threatexchange instead of Meta's "
            "reference 512 px pipeline (slower; for comparing with HMA-computed hashes).",
        ),
    ] = False,
    exif: Annotated[
        bool, typer.Option(help="Apply EXIF orientation before hashing, as browsers do.")
    ] = True,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse images with more pixels than this.")
    ] = DEFAULT_MAX_PIXELS,
    every: Annotated[
        float,
        typer.Option(
            min=0.0, help="Videos and animations: seconds between hashed frames (0: every frame)."
        ),
    ] = DEFAULT_EVERY,
    progress: Annotated[
        bool | None,
        typer.Option(help="Progress bar on stderr. Default: on when stderr is a terminal."),
    ] = None,
) -> None:
    """Hash images and videos: PDQ with quality, the imagehash family and file digests for
    images; vPDQ frame hashes (one frame a second by default) and digests for videos and
    animated GIF/WebP, told apart by content.

    Bad inputs are reported one line each and the rest are still hashed. Exit code 0 when every
    input was hashed, 1 when any failed, 2 on a bad command line.

    Example: ncii hash photos/ --format jsonl --jobs 0 > hashes.jsonl
    """
    try:
        options = HashOptions(
            signals=tuple(s for s in signals.split(",") if s.strip()),
            max_side=None if full_resolution else HashOptions().max_side,
            apply_exif_orientation=exif,
            max_pixels=max_pixels,
            video_every=every,
        )
    except NciiError as exc:
        error_line(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None
    inputs = expand_inputs(paths)
    if not inputs:
        error_line("no input files found in " + ", ".join(paths))
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)
    output = choose_format(fmt)
    failures = 0

    def outcomes():  # type: ignore[no-untyped-def]
        nonlocal failures
        with progress_bar("hashing", show=progress) as bar:
            task = bar.add_task("hash", total=len(inputs))
            for outcome in hash_many(inputs, options=options, jobs=resolve_jobs(jobs)):
                bar.advance(task)
                if not outcome.ok:
                    failures += 1
                    error_line(outcome.error or outcome.source)
                yield outcome

    table = output is OutputFormat.table
    render(
        outcomes(),
        fmt=output,
        columns=TABLE_COLUMNS if table else CSV_COLUMNS,
        flat=_table_row if table else _flat,
        as_json=lambda o: _as_json(o, dihedral),
        min_widths={"signals or error": SIGNAL_WIDTH},
    )
    if failures:
        note_line(f"{failures} of {len(inputs)} inputs could not be hashed")
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def _flat(outcome: HashOutcome) -> dict[str, Any]:
    row: dict[str, Any] = {"path": outcome.source, "error": outcome.error}
    if outcome.hashes is not None:
        h = outcome.hashes
        row |= {"media_type": h.media_type, "size": h.size, "width": h.width, "height": h.height}
        for signal in h.signals:
            row[signal.type] = signal.value
            if signal.quality is not None:
                row[f"{signal.type}_quality"] = signal.quality
        if isinstance(h, VideoHashes):
            row |= {"frames": len(h.frames), "duration": round(h.duration, 3)}
    return row


def _table_row(outcome: HashOutcome) -> dict[str, Any]:
    """One input on a terminal: every signal as a TYPE:VALUE word, PDQ first with its quality
    (wrapped between words, never inside a hash; long digests end in an ellipsis)."""
    row: dict[str, Any] = {"path": outcome.source, "signals or error": outcome.error}
    h = outcome.hashes
    if h is None:
        return row
    words = []
    for signal in sorted(h.signals, key=lambda s: s.type != "pdq"):
        words.append(f"{signal.type}:{_short(signal.value)}")
        if signal.quality is not None:
            words.append(f"quality:{signal.quality}")
    if isinstance(h, VideoHashes):
        words.append(f"frames:{len(h.frames)}")
    return row | {
        "media_type": h.media_type,
        "size": h.size,
        "pixels": f"{h.width}×{h.height}" if h.width and h.height else None,
        "signals or error": " ".join(words) or None,
    }


SIGNAL_WIDTH = 24
"""Room for the longest TYPE:VALUE word of the table, so no hash is folded."""


def _short(value: str) -> str:
    return value if len(value) <= 16 else value[:16] + "…"


def _as_json(outcome: HashOutcome, dihedral: bool) -> dict[str, Any]:
    if outcome.hashes is None:
        return {"path": outcome.source, "error": outcome.error}
    if isinstance(outcome.hashes, VideoHashes):
        return outcome.hashes.to_dict() | {"error": None}
    return outcome.hashes.to_dict(dihedral=dihedral) | {"error": None}
