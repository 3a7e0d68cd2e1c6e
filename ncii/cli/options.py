"""Options shared by several commands, declared once."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format. Default: table on a terminal, jsonl otherwise.",
        case_sensitive=False,
    ),
]

JobsOption = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        min=0,
        help="Worker processes; 0 means one per core.",
        show_default=True,
    ),
]


def resolve_jobs(jobs: int) -> int:
    return jobs if jobs > 0 else (os.cpu_count() or 1)
