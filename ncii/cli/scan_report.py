"""The CSV report of `ncii scan`: checked to be one before anything is written to it, resumed
by skipping the paths it lists.

A report is only ever appended to, and only after its header proved it is a scan report: a
path given by mistake (a photo, a CSV of something else, a device, a folder) is refused by
name and left exactly as it was.
"""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncii.errors import NciiError

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
REQUIRED_COLUMNS = ("path", "status")
"""What every version's report starts with (older ones have fewer columns and keep them)."""
HEADER_LIMIT = 4096
"""A report's header line is short; a longer first line is not a report."""


@dataclass
class ReportFile:
    """A scan report, checked: its columns, the paths it lists and how many matched."""

    path: Path
    columns: tuple[str, ...] = REPORT_COLUMNS
    done: set[str] = field(default_factory=set)
    matched: int = 0
    keep_bytes: int | None = None
    """Where a last row cut short by an interruption begins (dropped before appending)."""

    @classmethod
    def open(cls, path: Path) -> ReportFile:
        """Check ``path`` (a new file in an existing folder, or an ncii scan report) without
        changing it; raise a one-line :class:`NciiError` otherwise."""
        try:
            info = path.stat()
        except FileNotFoundError:
            if not path.parent.is_dir():
                raise NciiError(
                    f"{path}: cannot write the report, no folder {path.parent}"
                ) from None
            return cls(path)
        except OSError as exc:
            raise NciiError(f"{path}: cannot use as the report ({exc.strerror or exc})") from None
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise NciiError(f"{path}: {kind}; give a CSV file for the scan report")
        if info.st_size == 0:
            return cls(path)
        return cls._resume(path)

    @classmethod
    def _resume(cls, path: Path) -> ReportFile:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise NciiError(f"{path}: cannot read the report ({exc.strerror or exc})") from None
        columns = _header(path, data)
        complete = data[: data.rfind(b"\n") + 1]
        text = complete.decode("utf-8")
        report = cls(path, columns=columns, keep_bytes=len(complete))
        try:
            for row in csv.DictReader(io.StringIO(text, newline="")):
                if row.get("path"):
                    report.done.add(row["path"])
                    report.matched += row.get("status") == "match"
        except csv.Error as exc:
            raise NciiError(f"{path}: cannot resume from this report ({exc})") from None
        return report

    @contextmanager
    def appending(self) -> Iterator[Callable[[dict[str, Any]], None]]:
        """A function writing one row, flushed at once; a cut-short last row is dropped
        first, and a new report gets its header."""
        try:
            handle = self.path.open("r+b" if self.keep_bytes is not None else "ab")
        except OSError as exc:
            raise NciiError(
                f"{self.path}: cannot write the report ({exc.strerror or exc})"
            ) from None
        with handle:
            if self.keep_bytes is not None:
                handle.truncate(self.keep_bytes)
                handle.seek(self.keep_bytes)
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
            writer = csv.DictWriter(text, fieldnames=list(self.columns), extrasaction="ignore")
            if self.keep_bytes is None:
                writer.writeheader()

            def write(row: dict[str, Any]) -> None:
                writer.writerow(row)
                text.flush()

            try:
                yield write
            finally:
                text.flush()
                text.detach()


def _header(path: Path, data: bytes) -> tuple[str, ...]:
    """The report's columns, or a refusal naming the file: the first line must be a scan
    report's header, in UTF-8 text."""
    end = data.find(b"\n", 0, HEADER_LIMIT)
    if end < 0:
        raise NciiError(f"{path}: not an ncii scan report (no header line); left unchanged")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise NciiError(
            f"{path}: not an ncii scan report (not UTF-8 text); left unchanged"
        ) from None
    line = data[:end].decode("utf-8").rstrip("\r")
    columns = tuple(next(csv.reader([line]), []))
    if columns[: len(REQUIRED_COLUMNS)] != REQUIRED_COLUMNS or not set(columns) <= set(
        REPORT_COLUMNS
    ):
        raise NciiError(
            f"{path}: not an ncii scan report (its header is not "
            f"{','.join(REQUIRED_COLUMNS)},...); left unchanged"
        )
    return columns
