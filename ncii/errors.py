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
