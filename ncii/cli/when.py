"""Times and durations on the command line: ISO 8601 (UTC unless an offset is given) and
short durations like ``6h`` or ``1h30m``. Bad values exit with a one-line usage error."""

from __future__ import annotations

import datetime as dt
import re

import typer

from ncii.cli import exit_codes
from ncii.cli.output import error_line

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_time(text: str | None, option: str) -> dt.datetime | None:
    """An aware datetime; a bare date means its midnight UTC."""
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        error_line(f"invalid {option} {text!r}: expected an ISO 8601 date or time")
        raise typer.Exit(exit_codes.USAGE) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_duration(text: str | None, option: str) -> dt.timedelta | None:
    """``2d``, ``6h``, ``90m``, ``1h30m``, ``45s``."""
    if text is None:
        return None
    found = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or found is None or not any(found.groups()):
        error_line(f"invalid {option} {text!r}: expected a duration like 6h, 90m or 2d")
        raise typer.Exit(exit_codes.USAGE)
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def is_date_only(text: str) -> bool:
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()) is not None
