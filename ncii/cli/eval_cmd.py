"""`ncii eval`: measure how well each pipeline catches re-uploads, and at what cost in false
positives, on your own pictures."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ncii.cli import exit_codes
from ncii.cli.options import JobsOption, resolve_jobs
from ncii.cli.output import error_line, note_line, progress_bar, stdout_console
from ncii.detection.pipeline import PIPELINES
from ncii.evaluation.chart import render_chart
from ncii.evaluation.families import FAMILIES
from ncii.evaluation.harness import DEFAULT_SEED, EDIT_SETS, EvalOptions, EvalReport, evaluate
from ncii.evaluation.transforms import EXTRA_TRANSFORMS, TRANSFORMS
from ncii.hashing import expand_inputs

_ALL_TRANSFORMS = ", ".join(t.name for t in TRANSFORMS + EXTRA_TRANSFORMS + FAMILIES)


def eval_command(
    originals: Annotated[
        list[str],
        typer.Argument(help="Pictures to bank and re-upload: files or directories (recursive)."),
    ],
    negatives: Annotated[
        list[str] | None,
        typer.Option(
            "--negatives",
            "-n",
            help="Other, distinct pictures (files or directories; repeatable): banked and looked "
            "up too, for false positives. Files also given as originals count as originals.",
        ),
    ] = None,
    pipeline: Annotated[
        list[str] | None,
        typer.Option(
            "--pipeline",
            "-p",
            help=f"Pipelines to compare (repeatable; {', '.join(PIPELINES)}). "
            "Default: pdq and default.",
        ),
    ] = None,
    transform: Annotated[
        list[str] | None,
        typer.Option(
            "--transform",
            "-t",
            help=f"Transforms to apply (repeatable; {_ALL_TRANSFORMS}). Default: the set "
            "--edits names.",
        ),
    ] = None,
    edits: Annotated[
        str,
        typer.Option(
            help="Which edits when no --transform is given: 'fixed' (the listed transforms, a "
            "regression floor), 'random' (families with every parameter drawn per picture from "
            "the seed: crops, rotations, pads, occluders, captions, screenshots, combinations) "
            "or 'both'.",
        ),
    ] = "both",
    threshold: Annotated[
        list[int] | None,
        typer.Option(
            min=0, max=256, help="PDQ distance thresholds to report (repeatable). Default: 31."
        ),
    ] = None,
    known_duplicates: Annotated[
        Path | None,
        typer.Option(
            help="File of pairs of paths (end of the path is enough; two per line, tab or "
            "space separated, # comments) that are one picture although the files differ "
            "(mirrored or re-cropped copies, checked by eye): counted apart when they match, "
            "not as false positives.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = DEFAULT_SEED,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Use at most this many originals, drawn with the seed."),
    ] = None,
    jobs: JobsOption = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Write the whole report as one JSON document.")
    ] = False,
    chart: Annotated[
        Path | None,
        typer.Option(help="Also write a PNG bar chart of recall per transform here."),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(help="Progress bar on stderr. Default: on when stderr is a terminal."),
    ] = None,
) -> None:
    """Bank the originals, re-upload each one through every transform (the fixed list: JPEG
    q20, resizes, grey, brightness, contrast, blur, flip, rot90, 3° rotation, crops, bars,
    caption, watermark, screenshot, a combination; and the random families, whose parameters
    are drawn per picture from the seed), and report recall per transform, wrong matches, and
    false-positive pairs over every pair of distinct pictures, per pipeline and threshold.

    Exit code 0 when every picture was read, 1 when some could not be (each is reported),
    2 on a bad command line.

    Example: ncii eval reported/ -n uploads/ --threshold 31 --threshold 40 --chart recall.png
    """
    if edits not in EDIT_SETS:
        error_line(f"--edits must be one of {', '.join(EDIT_SETS)}, not {edits!r}")
        raise typer.Exit(exit_codes.USAGE)
    try:
        options = EvalOptions(
            transforms=tuple(transform) if transform else EDIT_SETS[edits],
            pipelines=tuple(dict.fromkeys(pipeline)) if pipeline else ("pdq", "default"),
            thresholds=tuple(sorted(set(threshold))) if threshold else (31,),
            seed=seed,
            jobs=resolve_jobs(jobs),
        )
    except (KeyError, ValueError) as exc:
        error_line(str(exc.args[0]) if exc.args else str(exc))
        raise typer.Exit(exit_codes.USAGE) from None
    originals_found = expand_inputs(originals)
    if limit is not None and len(originals_found) > limit:
        originals_found = sorted(random.Random(seed).sample(originals_found, limit))
    if not originals_found:
        error_line("no originals found in " + ", ".join(originals))
        raise typer.Exit(exit_codes.ERROR)
    negatives_found = expand_inputs(negatives or [])
    try:
        pairs = _read_pairs(known_duplicates) if known_duplicates is not None else []
    except (OSError, ValueError) as exc:
        error_line(f"{known_duplicates}: {exc}")
        raise typer.Exit(exit_codes.USAGE) from None
    with progress_bar("evaluating", show=progress) as bar:
        task = bar.add_task("eval", total=len(originals_found) + len(negatives_found))
        report = evaluate(
            originals_found,
            negatives_found,
            options=options,
            known_duplicates=pairs,
            progress=lambda: bar.advance(task),
        )
    for path, error in report.failed:
        error_line(error or path)
    if report.originals == 0:
        error_line("none of the originals could be read")
        raise typer.Exit(exit_codes.ERROR)
    if chart is not None:
        chart.write_bytes(render_chart(report))
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print_tables(report)
    if report.failed:
        note_line(f"{len(report.failed)} pictures could not be read and were left out")
        raise typer.Exit(exit_codes.SOME_INPUTS_FAILED)


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2:
            raise ValueError(f"line {number}: expected two paths, got {len(parts)} fields")
        pairs.append((parts[0], parts[1]))
    return pairs


def _print_tables(report: EvalReport) -> None:
    stdout_console.print(
        f"{report.originals} originals × {len(report.transforms)} transforms "
        f"(seed {report.seed}); {report.negatives} negatives; false positives over "
        f"{report.pairs:,} pairs of {report.distinct:,} distinct pictures"
        + (
            f"; {report.duplicates_dropped} duplicate files skipped"
            if report.duplicates_dropped
            else ""
        )
        + (
            f"; {report.low_quality_originals} originals of PDQ quality < 50"
            if report.low_quality_originals
            else ""
        )
    )
    columns = [(r.pipeline, r.threshold) for r in report.results]
    table = Table(title="Recall per transform")
    table.add_column("transform")
    for name, threshold in columns:
        table.add_column(f"{name} @{threshold}", justify="right")
    for name in report.transforms:
        table.add_row(
            name, *(f"{100 * report.result(p, t).get(name).recall:.1f}%" for p, t in columns)
        )
    table.add_section()
    table.add_row("overall", *(f"{100 * report.result(p, t).recall:.1f}%" for p, t in columns))
    table.add_row("wrong matches", *(str(report.result(p, t).wrong_matches) for p, t in columns))
    table.add_row(
        "false-positive pairs",
        *(str(report.result(p, t).false_positive_pairs) for p, t in columns),
    )
    if any(r.known_duplicates_matched for r in report.results):
        table.add_row(
            "known duplicates matched",
            *(str(report.result(p, t).known_duplicates_matched) for p, t in columns),
        )
    stdout_console.print(table)
    costs = Table(title="Cost per picture")
    for heading in ("pipeline", "bank hashes", "query hashes", "bank ms", "query ms"):
        costs.add_column(heading, justify="left" if heading == "pipeline" else "right")
    for cost in report.costs:
        costs.add_row(
            cost.pipeline,
            f"{cost.bank_hashes_per_entry:.2f}",
            f"{cost.query_hashes_per_upload:.2f}",
            f"{cost.bank_ms:.1f}",
            f"{cost.query_ms:.1f}",
        )
    stdout_console.print(costs)
    stdout_console.print(f"decoding: {report.decode_ms:.1f} ms per picture, before any hashing")
    for result in report.results:
        for pair in result.false_positive_examples[:5]:
            note_line(
                f"{result.pipeline} @{result.threshold}: false positive {pair.a} ~ {pair.b} "
                f"(distance {pair.distance})"
            )
