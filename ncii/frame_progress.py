"""Who wants to hear of each video frame hashed: the CLI's progress bar, so one long video does
not sit at 0 of 1 for minutes.

A context variable rather than a parameter: progress is the caller's display concern and must
not travel through hashing's signatures or be pickled to worker processes (where it is simply
unset). Standard library only, so the CLI can import it without loading the decoders.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

FrameProgress = Callable[[float, float | None], None]
"""Told the time of each frame hashed and the duration the video declares (seconds; ``None``
when it declares none)."""

frame_progress: ContextVar[FrameProgress | None] = ContextVar("ncii_frame_progress", default=None)
