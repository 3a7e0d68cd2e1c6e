"""Video entries in the matching index: their vPDQ frames, loaded from the store and kept
current from the change log alongside the image signals (see :mod:`ncii.service.matching`).

The frames of every indexable video entry sit in one :class:`~ncii.signals.vpdq.VideoIndex`
(a :class:`~ncii.index.HammingIndex` of frame hashes, each row resolving to its entry), so a
query video costs one range search per usable frame however many videos are banked. vPDQ's
rule decides a match: frames of quality below 50 dropped, identical hashes counted once, at
least ``query_pct`` of the query's frames within the frame threshold of a frame of the bank
video and at least ``bank_pct`` of the bank video's frames matched.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ncii.errors import InvalidArgument
from ncii.service import history
from ncii.signals.vpdq import (
    VPDQ_BANK_MATCH_PCT,
    VPDQ_QUERY_MATCH_PCT,
    TimeRange,
    VideoHit,
    VideoIndex,
    VideoMatch,
    VpdqFrame,
)
from ncii.store.models import ChangeKind, Entry, EntryStatus, VideoFrame

LOAD_CHUNK = 500
"""Entries whose frames are read per query when following the change log."""
LOAD_FRAMES = 200_000
"""Frames held in memory at most before they go into the index, while loading."""


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """How query videos are matched against banked ones."""

    query_pct: float = VPDQ_QUERY_MATCH_PCT
    """Share of the query's usable frames that must be found in the bank video (vPDQ: 80)."""
    bank_pct: float = VPDQ_BANK_MATCH_PCT
    """Share of the bank video's usable frames the query must cover (vPDQ: 0)."""
    threshold: int | None = None
    """PDQ distance at which two frames match; ``None``: the bank's ``pdq`` threshold, else
    :data:`~ncii.signals.vpdq.VPDQ_DISTANCE_THRESHOLD` (31)."""

    def __post_init__(self) -> None:
        for label, pct in (("query", self.query_pct), ("bank", self.bank_pct)):
            if not 0 <= pct <= 100:
                raise InvalidArgument(f"video {label} match percentage must be 0-100, not {pct}")
        if self.threshold is not None and not 0 <= self.threshold <= 256:
            raise InvalidArgument(f"frame threshold must be 0-256, not {self.threshold}")


@dataclass(frozen=True, slots=True)
class VideoMatchInfo:
    """How a query video matched a banked one: both shares and where, in seconds."""

    query_pct: float
    bank_pct: float
    query_frames: int
    """Usable frames (quality ≥ 50, distinct hashes) compared on each side."""
    bank_frames: int
    query_ranges: tuple[TimeRange, ...]
    """Runs of matched frames in the query."""
    bank_ranges: tuple[TimeRange, ...]
    """Runs of matched frames in the bank video."""

    @classmethod
    def of(cls, match: VideoMatch, *, query_step: float = 0.0) -> VideoMatchInfo:
        """``query_step``: seconds between the query's sampled frames. A query sampled once a
        second finds one bank frame in 30 (the bank is hashed every frame), so bank runs less
        than 1.5 steps apart are one stretch of the bank video."""
        return cls(
            query_pct=match.query_pct,
            bank_pct=match.bank_pct,
            query_frames=match.query_frames,
            bank_frames=match.bank_frames,
            query_ranges=match.matched_ranges,
            bank_ranges=merge_ranges(match.bank_ranges, 1.5 * query_step),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_pct": round(self.query_pct, 1),
            "bank_pct": round(self.bank_pct, 1),
            "query_frames": self.query_frames,
            "bank_frames": self.bank_frames,
            "query_ranges": [[round(r.start, 3), round(r.end, 3)] for r in self.query_ranges],
            "bank_ranges": [[round(r.start, 3), round(r.end, 3)] for r in self.bank_ranges],
        }


def merge_ranges(ranges: Iterable[TimeRange], gap: float) -> tuple[TimeRange, ...]:
    """Runs closer than ``gap`` seconds joined into one."""
    merged: list[TimeRange] = []
    for run in ranges:
        if merged and run.start - merged[-1].end <= gap:
            merged[-1] = TimeRange(merged[-1].start, max(merged[-1].end, run.end))
        else:
            merged.append(run)
    return tuple(merged)


def sampling_step(frames: Sequence[VpdqFrame]) -> float:
    """The usual seconds between consecutive frames of a hash (its median gap; 0 for one)."""
    times = sorted(f.timestamp for f in frames)
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    return gaps[len(gaps) // 2] if gaps else 0.0


def ranges_text(ranges: Iterable[TimeRange]) -> str:
    """``0.0-12.5s 20.0s``: matched runs for a table or CSV cell."""
    parts = [
        f"{r.start:.1f}s" if r.start == r.end else f"{r.start:.1f}-{r.end:.1f}s" for r in ranges
    ]
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class _VideoEntry:
    bank_id: int
    indexed: bool
    """Whether its frames are in the index and it is not set inactive there."""


def _indexable(status: EntryStatus, disabled_until: dt.datetime | None) -> bool:
    """As for image signals: active, or disabled only until some time (resolution decides)."""
    return status is EntryStatus.active or (
        status is EntryStatus.disabled and disabled_until is not None
    )


class VideoFrames:
    """The banked video frames of a store, for one :class:`~ncii.service.matching.Matcher`."""

    def __init__(self) -> None:
        self.index = VideoIndex()
        self._entries: dict[int, _VideoEntry] = {}
        """Every video entry whose frames were indexed (active or not now), by entry id."""

    def __len__(self) -> int:
        """Video entries searched."""
        return sum(1 for e in self._entries.values() if e.indexed)

    @property
    def frame_count(self) -> int:
        """Usable frame rows in the index (disabled videos' included until a rebuild)."""
        return self.index.frame_count

    def bank_ids(self) -> set[int]:
        return {e.bank_id for e in self._entries.values() if e.indexed}

    # -- loading and following the change log -----------------------------------------------

    def load(self, session: Session) -> None:
        """Index the frames of every indexable video entry (in the caller's snapshot)."""
        query = _frame_query().where(_INDEXABLE).order_by(VideoFrame.entry_id, VideoFrame.id)
        # Core rows straight from the connection: no ORM processing for millions of frames.
        self._add_rows(session.connection().execute(query.execution_options(yield_per=50_000)))
        self.index.compact()

    def apply(self, session: Session, changes: Sequence[history.ChangeRecord]) -> None:
        """Follow change-log rows: videos added or re-enabled come in, others go quiet, and a
        deleted bank's videos stop being searched."""
        for change in changes:
            if change.kind == ChangeKind.delete_bank:
                for entry_id, entry in self._entries.items():
                    if entry.bank_id == change.bank_id and entry.indexed:
                        self._set(entry_id, False)
        entry_ids = sorted({c.entry_id for c in changes if c.entry_id is not None})
        known = [i for i in entry_ids if i in self._entries]
        for start in range(0, len(known), LOAD_CHUNK):
            chunk = known[start : start + LOAD_CHUNK]
            states = {
                row.id: _indexable(EntryStatus(row.status), row.disabled_until)
                for row in session.execute(
                    select(Entry.id, Entry.status, Entry.disabled_until).where(Entry.id.in_(chunk))
                )
            }
            for entry_id in chunk:
                wanted = states.get(entry_id, False)  # gone: its bank was deleted
                if self._entries[entry_id].indexed != wanted:
                    self._set(entry_id, wanted)
        # New videos (or ones whose frames came later): one query per chunk, which returns
        # nothing for the image entries that make up most changes.
        fresh = [i for i in entry_ids if i not in self._entries]
        for start in range(0, len(fresh), LOAD_CHUNK):
            query = (
                _frame_query()
                .where(VideoFrame.entry_id.in_(fresh[start : start + LOAD_CHUNK]))
                .where(_INDEXABLE)
                .order_by(VideoFrame.entry_id, VideoFrame.id)
            )
            self._add_rows(session.connection().execute(query))

    def _add_rows(self, rows: Iterable[Any]) -> None:
        """Index rows of :func:`_frame_query`, ordered by entry, in batches of videos."""
        videos: list[tuple[int, list[VpdqFrame]]] = []
        pending = 0
        for entry_id, group in itertools.groupby(rows, key=itemgetter(0)):
            rows_of_entry = list(group)
            frames = [
                VpdqFrame(frame, quality, value, timestamp, unbarred)
                for _, _, frame, timestamp, value, quality, unbarred in rows_of_entry
            ]
            videos.append((entry_id, frames))
            self._entries[entry_id] = _VideoEntry(rows_of_entry[0][1], True)
            pending += len(frames)
            if pending >= LOAD_FRAMES:
                self.index.add_many(videos)
                videos, pending = [], 0
        self.index.add_many(videos)

    def _set(self, entry_id: int, active: bool) -> None:
        self.index.set_active(entry_id, active)
        self._entries[entry_id] = _VideoEntry(self._entries[entry_id].bank_id, active)

    # -- searching --------------------------------------------------------------------------

    def search(
        self,
        frames: Sequence[VpdqFrame],
        *,
        thresholds: dict[int, int],
        options: VideoOptions,
    ) -> Iterator[tuple[VideoHit, int]]:
        """(hit, frame threshold) for every banked video the query matches.

        ``thresholds`` gives the frame threshold of each bank with video entries; banks left
        out are not searched. One range search per distinct threshold (usually one).
        """
        by_threshold: dict[int, set[int]] = {}
        for bank_id, threshold in thresholds.items():
            by_threshold.setdefault(threshold, set()).add(bank_id)
        for threshold, bank_ids in sorted(by_threshold.items()):
            for hit in self.index.search(
                frames,
                threshold=threshold,
                query_match_pct=options.query_pct,
                bank_match_pct=options.bank_pct,
            ):
                entry = self._entries.get(hit.video)
                if entry is not None and entry.bank_id in bank_ids:
                    yield hit, threshold


_INDEXABLE = (Entry.status == EntryStatus.active) | (
    (Entry.status == EntryStatus.disabled) & Entry.disabled_until.is_not(None)
)


def _frame_query() -> Any:
    """Frames with their entry, as plain tuples (Core columns: no ORM row processing)."""
    frames = VideoFrame.__table__.c
    return select(
        frames.entry_id,
        frames.bank_id,
        frames.frame,
        frames.timestamp,
        frames.value,
        frames.quality,
        frames.unbarred,
    ).join_from(VideoFrame.__table__, Entry.__table__, Entry.__table__.c.id == frames.entry_id)
