"""Rendering records as a table, JSON lines or CSV; one renderer for every command."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import Token
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ncii.cli.options import OutputFormat
from ncii.frame_progress import FrameProgress, frame_progress

T = TypeVar("T")

stdout_console = Console(soft_wrap=True)
stderr_console = Console(stderr=True, soft_wrap=True)


def choose_format(requested: OutputFormat | None) -> OutputFormat:
    if requested is not None:
        return requested
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.jsonl


def render(
    records: Iterable[T],
    *,
    fmt: OutputFormat,
    columns: Sequence[str],
    flat: Callable[[T], Mapping[str, Any]],
    as_json: Callable[[T], Mapping[str, Any]] | None = None,
    title: str | None = None,
    min_widths: Mapping[str, int] | None = None,
) -> None:
    """Write records as they arrive (the table waits for all of them to size its columns).

    Table and CSV show ``flat(record)`` restricted to ``columns`` (the table leaves out
    columns that are empty in every row); JSON lines write
    ``as_json(record)`` (richer, nested) when given, else the flat row. In a table, long
    hashes and paths are shortened with an ellipsis and never wrapped (``--format jsonl``
    keeps the full values); other text folds.
    """
    if fmt is OutputFormat.jsonl:
        to_json = as_json or flat
        for record in records:
            sys.stdout.write(json.dumps(to_json(record), ensure_ascii=False, separators=(",", ":")))
            sys.stdout.write("\n")
            sys.stdout.flush()
    elif fmt is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _csv_value(v) for k, v in flat(record).items()})
            sys.stdout.flush()
    else:
        rows = [flat(record) for record in records]
        cells = [[_cell(c, r.get(c)) for c in columns] for r in rows]
        # Columns empty in every row (video fields on an image match, say) only cost width.
        shown = [i for i in range(len(columns)) if not rows or any(row[i] for row in cells)]
        table = Table(title=title)
        for i in shown:
            name = columns[i]
            values = [str(r.get(name)) for r in rows if r.get(name) is not None]
            if name in PATH_COLUMNS or (values and all(_HEX.fullmatch(v) for v in values)):
                # Already shortened: kept on one line, so it can be read and copied.
                table.add_column(name, overflow="ellipsis", no_wrap=True)
            else:  # wrapped between words; a word longer than the column folds
                table.add_column(name, overflow="fold", min_width=(min_widths or {}).get(name))
        for row in cells:
            # Text, not markup: a stored "[bold]" or "[/]" is shown as written.
            table.add_row(*(Text(row[i]) for i in shown))
        stdout_console.print(table)


PATH_COLUMNS = frozenset({"path", "input", "source"})
"""Columns holding file paths: shortened from the left, so the file name stays in view."""
PATH_SHARE = 0.22
"""The share of the terminal's width a path may take (16 to 48 characters)."""
HASH_SHOWN = 16
"""Hex digits of a long hash shown in a table (``--format jsonl`` has them all)."""
_HEX = re.compile(r"[0-9a-f]{20,}")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _cell(column: str, value: Any) -> str:
    """A value as a table shows it: long hashes and paths cut with an ellipsis, never
    wrapped over lines."""
    if value is None:
        return ""
    if isinstance(value, dict | list):  # audit details and the like: JSON, not a Python repr
        value = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    text = printable(str(value))
    if _HEX.fullmatch(text):
        return text[:HASH_SHOWN] + "…"
    width = max(16, min(48, int(stdout_console.width * PATH_SHARE)))
    if column in PATH_COLUMNS and len(text) > width:
        return "…" + text[-(width - 1) :]
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences, line breaks) shown as
    ``\\xNN``: what a file name or a stored field holds must never act on the terminal, and
    one message stays one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def error_line(message: str) -> None:
    """One line on stderr, never a traceback."""
    stderr_console.print(
        Text.assemble(("error: ", "bold red"), printable(message)), highlight=False
    )


def note_line(message: str) -> None:
    stderr_console.print(Text(printable(message)), highlight=False)


def progress_bar(label: str, *, show: bool | None) -> Progress:
    """The one progress bar of long commands, on stderr; ``show=None`` means: when stderr is a
    terminal. While it is shown, a video hashed in this process adds a second line counting
    its seconds hashed."""
    return _Bar(
        _Label(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        disable=not (stderr_console.is_terminal if show is None else show),
        transient=True,
        # Never capture stdout: it carries the data, redirected to a file or a pipe while the
        # bar is drawn on the terminal (rich's default sends it to the bar's console).
        redirect_stdout=False,
    )


class _Label(ProgressColumn):
    """The command's label, or a task's own (``label=`` field), such as a video's seconds."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def render(self, task: Task) -> Text:
        return Text(task.fields.get("label", self.label))


class _Bar(Progress):
    """A :class:`Progress` that also follows the frames of a video being hashed (see
    :data:`ncii.signals.vpdq.frame_progress`)."""

    _frames: TaskID | None = None
    _listening: Token[FrameProgress | None] | None = None

    def __enter__(self) -> _Bar:
        super().__enter__()
        if not self.disable:
            self._listening = frame_progress.set(self._on_frame)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._listening is not None:
            frame_progress.reset(self._listening)
            self._listening = None
        super().__exit__(*exc)  # type: ignore[arg-type]

    def _on_frame(self, seconds: float, duration: float | None) -> None:
        total = max(duration, seconds) if duration else None
        if self._frames is None:
            self._frames = self.add_task("video", total=total, label="  video seconds")
        self.update(self._frames, completed=int(seconds), total=total)


class CountingReader:
    """A text stream that advances a progress bar by the characters read from it, so an
    import of a large file shows how far it has got (rows are read lazily, in order), and
    counts its lines."""

    def __init__(self, stream: TextIO, advance: Callable[[int, int], None]) -> None:
        self._stream = stream
        self._advance = advance
        self.lines = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return self._read_line(next(self._stream))

    def readline(self, size: int = -1) -> str:
        return self._read_line(self._stream.readline(size))

    def _read_line(self, line: str) -> str:
        self.lines += line.endswith("\n")
        self._advance(len(line), self.lines)
        return line

    def read(self, size: int = -1) -> str:
        text = self._stream.read(size)
        self.lines += text.count("\n")
        self._advance(len(text), self.lines)
        return text

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


ROWS_SHOWN_EVERY = 1000
"""Lines between updates of an import's row count (an update per row would cost more than
the row)."""


@contextmanager
def reading_progress(stream: TextIO, label: str, *, total: int | None) -> Iterator[TextIO]:
    """``stream`` wrapped to show a bar of how much of it was read (``total``: its size, if
    known) and how many rows, on stderr when it is a terminal."""
    with progress_bar(label, show=None) as bar:
        task = bar.add_task(label, total=total)
        shown = 0

        def advance(characters: int, lines: int) -> None:
            nonlocal shown
            if lines - shown >= ROWS_SHOWN_EVERY:
                shown = lines
                bar.update(task, advance=characters, label=f"{label} ({lines:,} rows)")
            else:
                bar.advance(task, characters)

        yield CountingReader(stream, advance)  # type: ignore[misc]


def with_progress(items: Iterable[T], label: str, inputs: Sequence[Any]) -> Iterator[T]:
    """``items`` passed through while a bar counts them against ``inputs`` (on stderr, when
    it is a terminal)."""
    with progress_bar(label, show=None) as bar:
        task = bar.add_task(label, total=len(inputs))
        for item in items:
            bar.advance(task)
            yield item
