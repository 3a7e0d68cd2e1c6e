"""Options shared by several commands, declared once."""

from __future__ import annotations

import getpass
import os
from enum import StrEnum
from typing import Annotated

import typer

from ncii.detection.pipeline import PIPELINES


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


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="NCII_DATABASE_URL",
        show_envvar=True,
        help="Database URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB) or a SQLite "
        "file path, holding an ncii store (`ncii bank create` or `ncii db upgrade` make one). "
        "Default: ncii.db in your user data directory, created on first use.",
    ),
]

ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="NCII_ACTOR",
        show_envvar=True,
        help="Who is acting, for the audit trail. Default: your login name.",
    ),
]


def resolve_actor(actor: str | None) -> str:
    if actor and actor.strip():
        return actor.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar on stderr. Default: on when stderr is a terminal.",
        show_default=False,
    ),
]

IndexCacheOption = Annotated[
    bool,
    typer.Option(
        "--index-cache/--no-index-cache",
        help="Start from the saved index of a large store (100,000+ hashes; kept in your user "
        "cache directory, verified against the database) instead of rebuilding it.",
    ),
]
PipelineName = StrEnum("PipelineName", {name: name for name in PIPELINES})  # type: ignore[misc]
"""The detection pipelines' names, as choices."""

PipelineOption = Annotated[
    PipelineName,
    typer.Option(
        "--pipeline",
        case_sensitive=False,
        help="Detection pipeline: 'default' also hashes crops, small rotations and the picture "
        "inside bars or a frame (docs/detection.md); 'pdq' is plain PDQ, as HMA and StopNCII.",
    ),
]
DEFAULT_PIPELINE = PipelineName("default")
