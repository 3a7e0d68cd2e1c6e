"""One exception tree for the whole library.

Interfaces (CLI, HTTP) translate these into one-line messages and exit codes; the library
never signals failure with an empty value.
"""

from __future__ import annotations


class NciiError(Exception):
    """Base of every error ncii raises on purpose; its message is one line for a user."""


class InvalidSignal(NciiError, ValueError):
    """A hash string that does not parse as the signal type it claims to be."""


class UnknownSignalType(InvalidSignal):
    """A signal type name that is not registered."""


class MediaError(NciiError):
    """An input that cannot be turned into pixels (or frames)."""


class EmptyMedia(MediaError):
    """Zero bytes."""


class UnsupportedMedia(MediaError):
    """Not an image (or video) format ncii decodes, or a corrupt or truncated file."""


class MediaTooLarge(MediaError):
    """Dimensions over the pixel limit: a decompression bomb or simply too big to decode."""


class InvalidArgument(NciiError, ValueError):
    """A value ncii cannot accept: a malformed bank name, a trust level out of range, …"""


class NotFound(NciiError, LookupError):
    """A bank or entry that does not exist."""


class AlreadyExists(NciiError):
    """A bank name that is already taken."""


class StoreError(NciiError):
    """The database cannot be opened, reached or brought to the schema this ncii needs."""


class ImportFailed(NciiError):
    """A record of an import file that cannot be stored; nothing of the file was stored.

    ``line`` is the 1-based line number (``unit="record"``: the record's number in a JSON
    document), None for a problem with the file as a whole; ``reason`` the message without it.
    """

    def __init__(self, line: int | None, reason: str, *, unit: str = "line") -> None:
        super().__init__(reason if line is None else f"{unit} {line}: {reason}")
        self.line = line
        self.reason = reason
        self.unit = unit


class VideoError(UnsupportedMedia):
    """A video or animation ncii cannot hash: truncated, audio only, a stream no decoder can
    read, or a container whose header contradicts its contents."""


class InvalidVpdq(InvalidSignal):
    """A vPDQ text (``frame,quality,pdqhex,timestamp`` lines) that does not parse; the message
    names the line."""


class AccessDenied(NciiError):
    """A case's PIN was refused: wrong, or the case is locked after repeated wrong PINs."""


class WrongPin(AccessDenied):
    """The PIN given does not match the case's."""


class CaseLocked(AccessDenied):
    """Too many wrong PINs in a row: the case refuses every PIN until ``locked_until``."""


class IncompleteRequest(InvalidArgument):
    """A takedown request lacking elements the law requires; ``problems`` says, one message
    per missing or invalid element, what is wrong."""

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)
