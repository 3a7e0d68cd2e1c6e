"""JSON from untrusted files, and text fields a database can store.

``json.loads`` fails on hostile input in three ways, only one of which says where: a syntax
error (``JSONDecodeError``, with a line), an integer of more than 4,300 digits (``ValueError``)
and nesting deeper than the recursion limit (``RecursionError``). :func:`loads` turns all three
into :class:`BadJson` naming the line, found again in the text when Python does not say.

PostgreSQL refuses the NUL character in text, and neither engine can encode a lone surrogate
(what undecodable bytes become under ``surrogateescape``): :func:`check_text` refuses both
before a row is written, naming the field, so both engines give the same one-line answer.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from ncii.errors import InvalidArgument, NciiError

MAX_DEPTH = 512
"""Nesting reported as too deep (the parser itself gives up somewhere near 1,000)."""
MAX_FRAME_INDEX = 2**31 - 1
"""The largest video frame number a database row holds (a 32-bit integer column)."""
SHOWN_LENGTH = 60
"""Characters of a refused value echoed in a message."""

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+|[\[\]{}]', re.DOTALL)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class BadJson(NciiError):
    """Text that is not JSON ncii reads; ``line`` is where (1-based), ``reason`` why, and
    ``syntax`` whether it is a plain syntax error (not a hostile number or nesting)."""

    def __init__(self, line: int, reason: str, *, syntax: bool = False) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
        self.syntax = syntax


def loads(text: str, *, first_line: int = 1) -> Any:
    """``json.loads``, with every failure a :class:`BadJson` (``first_line``: the file line
    ``text`` starts on)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        line = first_line + exc.lineno - 1
        raise BadJson(line, f"invalid JSON: {exc.msg}", syntax=True) from None
    except RecursionError:
        where = _too_deep(text)
        raise BadJson(
            first_line + where, f"invalid JSON: nested more than {MAX_DEPTH} deep"
        ) from None
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        limit = sys.get_int_max_str_digits()
        where = _huge_number(text, limit)
        raise BadJson(
            first_line + where, f"invalid JSON: a number of more than {limit:,} digits"
        ) from None


def _lines_before(text: str, position: int) -> int:
    return text.count("\n", 0, position)


def _too_deep(text: str) -> int:
    """Lines before the first bracket nested deeper than :data:`MAX_DEPTH` (strings skipped)."""
    depth = 0
    for token in _TOKENS.finditer(text):
        kind = token.group()[0]
        if kind in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return _lines_before(text, token.start())
        elif kind in "]}":
            depth -= 1
    return 0


def _huge_number(text: str, limit: int) -> int:
    """Lines before the first number of more than ``limit`` digits outside strings."""
    for token in _TOKENS.finditer(text):
        value = token.group()
        if value[0] != '"' and len(value.lstrip("-")) > limit:
            return _lines_before(text, token.start())
    return 0


def undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (read with ``surrogateescape``)."""
    return _UNDECODABLE.search(text) is not None


def shown(value: object) -> str:
    """``repr`` of a value for a message, cut to :data:`SHOWN_LENGTH` characters: a refused
    10,000-character name is not echoed in full."""
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= SHOWN_LENGTH else f"{text[:SHOWN_LENGTH]}…"
    if len(value) <= SHOWN_LENGTH:
        return repr(value)
    return f"{value[:SHOWN_LENGTH]!r}… ({len(value):,} characters)"


def unstorable(value: str) -> str | None:
    """Why a text cannot be stored (a NUL, or bytes that were not UTF-8), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return "contains text that is not valid UTF-8"


def check_text(value: str | None, field: str) -> str | None:
    """``value`` if a database can store it; else :class:`InvalidArgument` naming ``field``."""
    if value is None or (value.isascii() and "\x00" not in value):
        return value
    problem = unstorable(value)
    if problem is not None:
        raise InvalidArgument(f"{field} {problem}")
    return value


def check_line(value: str, field: str) -> str:
    """A one-line name (an actor): no control characters, no line breaks."""
    if _CONTROL.search(value):
        raise InvalidArgument(
            f"invalid {field} {shown(value)}: control characters and line breaks are not allowed"
        )
    return value


def check_frame_index(index: int, where: str) -> int:
    """A frame number that fits the database's column (``10**30`` would overflow it)."""
    if not 0 <= index <= MAX_FRAME_INDEX:
        number = str(index) if index.bit_length() <= 64 else f"of {index.bit_length()} bits"
        raise InvalidArgument(f"{where}: frame number {number} is not 0-{MAX_FRAME_INDEX}")
    return index
