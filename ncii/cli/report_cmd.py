"""`ncii report`: compliance figures for a period, as a table, JSON and a PNG chart."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from ncii.cli import exit_codes
from ncii.cli.db_cmd import cli_store
from ncii.cli.options import DbOption, FormatOption, OutputFormat
from ncii.cli.output import choose_format, error_line, note_line, render
from ncii.cli.when import is_date_only, parse_time
from ncii.service import reports
from ncii.store.models import utcnow


def report_command(
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day or time (ISO 8601). Default: 30 days ago."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day (included) or time (excluded). Default: now."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also draw a PNG chart to this file.")
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = None,
) -> None:
    """Takedown requests received in the period: removed within 48 h (count and %), median and
    90th-percentile time to removal, rejected, plus matches found and withdrawals.

    Example: ncii report --from 2026-06-01 --to 2026-06-30 --chart june.png
    """
    now = utcnow()
    until = parse_time(end, "--to") or now
    if end is not None and is_date_only(end):
        until += dt.timedelta(days=1)  # the whole last day
    since = parse_time(start, "--from") or until - dt.timedelta(days=30)
    with cli_store(db) as store, store.read() as session:
        report = reports.takedown_report(session, since, until, now=now)
    data = report.to_dict()
    output = OutputFormat.jsonl if as_json else choose_format(fmt)
    if output is OutputFormat.jsonl:
        typer.echo(json.dumps(data))
    else:
        render(
            list(data.items()),
            fmt=output,
            columns=("figure", "value"),
            flat=lambda row: {"figure": row[0], "value": row[1]},
            title="takedown report",
        )
    if chart is not None:
        from ncii.service.report_chart import write_chart

        try:
            write_chart(report, chart)
        except OSError as exc:
            error_line(f"{chart}: cannot write the chart ({exc.strerror or exc})")
            raise typer.Exit(exit_codes.ERROR) from None
        note_line(f"chart written to {chart}")
