"""Match uploads against the banks: a store-backed, always-current in-memory index.

:class:`Matcher` loads every matchable signal of the store into a
:class:`~ncii.match.MatchIndex` in one consistent read, remembers the change-log sequence
number of that read, and before each lookup (at most every ``refresh_interval`` seconds)
applies the changes written since, so an entry added, disabled or withdrawn in any process
is reflected within that interval, without a rebuild. Lookups made through a Matcher that
itself changed the store see the change at once (``refresh(force=True)`` after a write).

The index only proposes candidates: every hit is resolved against the store, with the entry's
status and the bank's threshold as they are at that moment, so a withdrawn entry is never
reported even between two refreshes.

Start-up loads only what can decide a match: PDQ and the file digests. A weak 64-bit type
(phash…) is loaded the first time a lookup could decide on it (a bank opted in, or the query
gave it a threshold), banked video frames the first time a video is matched; each such late
load reads its rows and replays the change log since the index's position in one snapshot of
the database, so every part of the index stays at the same point. The weak hashes that only
corroborate a match are read for the matched entries from their rows, not from an index.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, true
from sqlalchemy.orm import Session

from ncii.detection import QueryHash
from ncii.hashing import MediaHashes
from ncii.index import hex_to_words
from ncii.match import PLAIN_PDQ_SIGNALS, MatchIndex, QueryOptions, SignalHit
from ncii.service import history, snapshots
from ncii.service.entries import effective_status, signals_of
from ncii.service.video_matching import (
    VideoFrames,
    VideoMatchInfo,
    VideoOptions,
    sampling_step,
)
from ncii.signals import PDQ_MIN_QUALITY, WEAK_SIGNALS, Signal, get_signal_type
from ncii.signals.vpdq import VPDQ_DISTANCE_THRESHOLD, VideoHashes, VpdqFrame
from ncii.store.engine import Store
from ncii.store.models import Bank, ChangeKind, Entry, EntrySignal, EntryStatus, utcnow

log = logging.getLogger(__name__)

LOAD_BATCH = 100_000
"""Signals read per round trip while loading the index."""

EAGER_TYPES: tuple[str, ...] = PLAIN_PDQ_SIGNALS
"""Loaded at start-up: the types that decide a match in every bank (PDQ, md5, sha256)."""

RESOLVE_CHUNK = 1_000


@dataclass(frozen=True, slots=True)
class BankMatch:
    """One bank entry an upload matched."""

    bank: str
    entry_id: int
    signal_type: str
    distance: int
    threshold: int
    transform: str
    """Which flip/rotation of the upload matched (PDQ), else ``original``."""
    status: EntryStatus
    """The entry's effective status now; only ``active`` entries block an upload."""
    case_ref: str | None
    external_id: str | None
    matched_value: str
    """The bank's hash that matched (for ``vpdq``: the number of usable frames it has)."""
    video: VideoMatchInfo | None = None
    """For ``vpdq`` matches (a query video against a banked one): both shares and where."""
    variant: str | None = None
    """Which banked variant of the entry's picture matched (``crop_0.06``…), if not the
    picture's own hash (see ``ncii.detection``)."""
    corroborated_by: tuple[str, ...] = ()
    """The weak 64-bit hashes (``phash``…) of the upload that also agree with this entry's,
    each within its type's threshold: supporting evidence, never a match on their own."""

    @property
    def active(self) -> bool:
        return self.status is EntryStatus.active

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "distance": self.distance,
            "threshold": self.threshold,
            "transform": self.transform,
            "active": self.active,
            "status": self.status.value,
            "case_ref": self.case_ref,
            "external_id": self.external_id,
            "matched_value": self.matched_value,
            "variant": self.variant,
            "corroborated_by": list(self.corroborated_by),
        } | (self.video.to_dict() if self.video is not None else {})


def _indexable(status: EntryStatus, disabled_until: dt.datetime | None) -> bool:
    """Whether an entry belongs in the index: active, or disabled only until some time (it
    comes back by itself, with no change-log row, so resolution decides)."""
    return status is EntryStatus.active or (
        status is EntryStatus.disabled and disabled_until is not None
    )


class Matcher:
    """Match media or hashes against every bank in a store; embed one per process."""

    def __init__(
        self,
        store: Store,
        *,
        refresh_interval: float = 0.5,
        include_low_quality: bool = False,
        snapshot: Path | None = None,
        warm: bool = True,
    ) -> None:
        """``snapshot``: a folder to start from when it still describes the store (see
        :mod:`ncii.service.snapshots`), and to save the index in after a load from the
        database of at least ``snapshots.MIN_ROWS`` hashes. ``warm``: read a snapshot's pages
        in at once (a long-lived matcher); a one-off lookup touches only the pages it probes."""
        self.store = store
        self.refresh_interval = refresh_interval
        self.include_low_quality = include_low_quality
        self.snapshot = snapshot
        self.index = MatchIndex()
        self.videos = VideoFrames()
        """Banked video entries' vPDQ frames, kept current with the same change log."""
        self._banks: dict[int, dict[str, int]] = {}
        self._bank_ids: dict[str, int] = {}
        """Per-bank threshold overrides by bank id, reloaded when the change log says so."""
        self.seq = 0
        self._disabled: tuple[int, MatchIndex] | None = None
        """Entries disabled for good (left out of ``index``), for ``include_inactive``."""
        self.loaded_from_snapshot = False
        self.types: set[str] = set()
        """Signal types the index holds (see :meth:`_ensure`)."""
        self._videos_loaded = False
        self._last_refresh = 0.0
        if snapshot is None or not self._load_snapshot(snapshot, warm=warm):
            self._load()

    def _load_snapshot(self, folder: Path, *, warm: bool) -> bool:
        with self.store.read() as session:
            _repeatable_read(session)
            loaded = snapshots.load(folder, session, include_low_quality=self.include_low_quality)
            if isinstance(loaded, str):
                log.info("index snapshot %s not used: %s", folder, loaded)
                return False
            self.index, self.seq, types = loaded
            self.types = set(types)
            self._load_banks(session)
            # What the snapshot lacks, read now; then replay what happened since, inside the
            # transaction that verified it.
            self._load_types(session, set(EAGER_TYPES) - self.types)
            self._catch_up(session)
        if warm:
            self.index.warm()
        self.loaded_from_snapshot = True
        self._last_refresh = time.monotonic()
        return True

    # -- keeping current ------------------------------------------------------------------

    def _load(self) -> None:
        with self.store.read() as session:
            _repeatable_read(session)
            self.seq = history.last_change(session)
            seq_at = snapshots.change_time(session, self.seq)
            fingerprint = snapshots.fingerprint(session)
            self._load_types(session, set(EAGER_TYPES))
            self._load_banks(session)
        if self.snapshot is not None and len(self.index) >= snapshots.MIN_ROWS:
            self.save_snapshot(self.snapshot, seq_at=seq_at, fingerprint=fingerprint)
        self._last_refresh = time.monotonic()

    def _load_types(self, session: Session, types: set[str]) -> None:
        """Index every indexable row of ``types`` as the caller's transaction sees it."""
        if not types:
            return
        # Each type's hashes as one array, indexed once: no intermediate segments to merge
        # (at ten million hashes, merging doubled the peak memory of a start).
        batches: dict[str, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
        parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = defaultdict(lambda: ([], []))

        def convert(signal_type: str) -> None:
            values, keys = batches[signal_type]
            words, key_parts = parts[signal_type]
            words.append(hex_to_words(values, get_signal_type(signal_type).bits))
            key_parts.append(np.asarray(keys, dtype=np.int64))
            values.clear()
            keys.clear()

        for row_id, signal_type, value in self._indexable_rows(session, types):
            values, keys = batches[signal_type]
            values.append(value)
            keys.append(row_id)
            if len(keys) >= LOAD_BATCH:
                convert(signal_type)
        for signal_type in list(batches):
            convert(signal_type)
        for signal_type, (words, key_parts) in parts.items():
            stacked = np.concatenate(words) if len(words) > 1 else words[0]
            words.clear()
            self.index.load_words(signal_type, stacked, np.concatenate(key_parts))
            del stacked
        self.index.compact()
        self.types |= types

    def _catch_up(self, session: Session) -> int:
        """Apply the change log since ``seq`` in the caller's transaction; how many changes.
        Applying a change the index already reflects does nothing, so parts loaded in this
        transaction may see changes again."""
        applied = 0
        while changes := history.changes_since(session, self.seq):
            self._apply(session, changes)
            self.seq = changes[-1].seq
            applied += len(changes)
        return applied

    def _ensure(self, types: Iterable[str] = (), *, videos: bool = False) -> None:
        """Load the signal types (and the banked videos) a lookup needs and the index does not
        hold yet, then bring everything to the same change-log position."""
        missing = set(types) - self.types
        if not missing and (self._videos_loaded or not videos):
            return
        with self.store.read() as session:
            _repeatable_read(session)
            self._load_types(session, missing)
            if videos and not self._videos_loaded:
                self.videos.load(session)
                self._videos_loaded = True
            self._load_banks(session)
            self._catch_up(session)
        self._last_refresh = time.monotonic()

    def save_snapshot(
        self, folder: Path, *, seq_at: str | None, fingerprint: snapshots.Fingerprint
    ) -> None:
        try:
            snapshots.save(
                folder,
                self.index,
                seq=self.seq,
                seq_at=seq_at,
                include_low_quality=self.include_low_quality,
                fingerprint=fingerprint,
                types=self.types,
            )
        except OSError as exc:  # a cache: failing to write it must not stop matching
            log.warning("could not save the index snapshot in %s: %s", folder, exc)

    def _indexable_rows(self, session: Session, types: Iterable[str]) -> Iterator[Any]:
        """(id, type, value) of every indexable signal of ``types``, filtered in SQL and read
        as plain Core rows: no ORM rows or type conversion per hash (most of a full load's
        CPU before)."""
        query = (
            select(EntrySignal.id, EntrySignal.signal_type, EntrySignal.value)
            .join(Entry, Entry.id == EntrySignal.entry_id)
            .where(EntrySignal.signal_type.in_(sorted(types)))
            .where(
                (Entry.status == EntryStatus.active)
                | ((Entry.status == EntryStatus.disabled) & Entry.disabled_until.is_not(None))
            )
            .order_by(EntrySignal.id)
        )
        if not self.include_low_quality:
            query = query.where(
                EntrySignal.quality.is_(None) | (EntrySignal.quality >= PDQ_MIN_QUALITY)
            )
        result = session.connection().execute(query.execution_options(yield_per=LOAD_BATCH))
        for rows in result.partitions():
            yield from rows

    def _signal_rows(
        self, session: Session, entry_ids: Sequence[int] | None, types: Iterable[str]
    ) -> Iterator[Any]:
        """Signals of ``types`` of indexable entries (all, or those of ``entry_ids``), low
        quality left out unless asked."""
        query = (
            select(
                EntrySignal.id,
                EntrySignal.signal_type,
                EntrySignal.value,
                EntrySignal.quality,
                Entry.status,
                Entry.disabled_until,
            )
            .join(Entry, Entry.id == EntrySignal.entry_id)
            .where(EntrySignal.signal_type.in_(sorted(types)))
            .order_by(EntrySignal.id)
        )
        if entry_ids is not None:
            query = query.where(EntrySignal.entry_id.in_(entry_ids))
        else:
            query = query.where(
                (Entry.status == EntryStatus.active)
                | ((Entry.status == EntryStatus.disabled) & Entry.disabled_until.is_not(None))
            )
        for row in session.execute(query.execution_options(yield_per=LOAD_BATCH)):
            low = row.quality is not None and row.quality < PDQ_MIN_QUALITY
            if low and not self.include_low_quality:
                continue
            yield row

    def refresh(self, *, force: bool = False) -> int:
        """Apply the change log since the last refresh; returns how many changes were applied.

        Cheap when nothing changed (one indexed query), and skipped entirely when the last
        refresh is younger than ``refresh_interval`` unless ``force``.
        """
        now = time.monotonic()
        if not force and now - self._last_refresh < self.refresh_interval:
            return 0
        with self.store.read() as session:
            applied = self._catch_up(session)
        self._last_refresh = now
        return applied

    def _apply(self, session: Session, changes: Sequence[history.ChangeRecord]) -> None:
        entry_ids = sorted(
            {
                c.entry_id
                for c in changes
                if c.entry_id is not None and c.kind != ChangeKind.delete_bank
            }
        )
        for start in range(0, len(entry_ids), RESOLVE_CHUNK):
            chunk = entry_ids[start : start + RESOLVE_CHUNK]
            for row in self._signal_rows(session, chunk, self.types):
                active = _indexable(EntryStatus(row.status), row.disabled_until)
                if self.index.set_active(row.signal_type, row.id, active) == 0 and active:
                    self.index.add(row.signal_type, row.value, row.id)
        # Deleted banks need nothing here: their rows are gone, so resolution drops any
        # candidate still in the index.
        if self._videos_loaded:
            self.videos.apply(session, changes)
        # Bank-wide rows (new thresholds, a deleted bank) and unknown banks reload the banks.
        if any(c.entry_id is None or c.bank_id not in self._banks for c in changes):
            self._load_banks(session)

    def _load_banks(self, session: Session) -> None:
        rows = session.execute(select(Bank.id, Bank.name, Bank.match_thresholds)).all()
        self._banks = {bank_id: dict(thresholds or {}) for bank_id, _, thresholds in rows}
        self._bank_ids = {name: bank_id for bank_id, name, _ in rows}

    # -- matching -------------------------------------------------------------------------

    def match(
        self,
        hashes: MediaHashes,
        *,
        banks: Iterable[str] | None = None,
        options: QueryOptions | None = None,
        include_inactive: bool = False,
        video: VideoOptions | None = None,
    ) -> list[BankMatch]:
        """Every bank entry matching an upload's hashes (flips and rotations included).

        A video (:class:`~ncii.signals.vpdq.VideoHashes`) matches by its file digests and,
        frame by frame, against every banked video (``video`` sets vPDQ's percentages).
        """
        found = self.match_signals(
            hashes.signals,
            dihedral=hashes.pdq_dihedral,
            regions=hashes.pdq_regions,
            banks=banks,
            options=options,
            include_inactive=include_inactive,
        )
        if isinstance(hashes, VideoHashes):
            found += self.match_video(
                hashes.frames,
                banks=banks,
                options=video,
                pdq_threshold=(options.thresholds or {}).get("pdq") if options else None,
                include_inactive=include_inactive,
            )
            found.sort(key=lambda m: (m.bank, m.entry_id, m.distance, m.signal_type))
        return found

    def match_video(
        self,
        frames: Sequence[VpdqFrame],
        *,
        banks: Iterable[str] | None = None,
        options: VideoOptions | None = None,
        pdq_threshold: int | None = None,
        include_inactive: bool = False,
    ) -> list[BankMatch]:
        """Banked videos a query video's frames match by vPDQ's rule, as ``vpdq`` matches.

        The frame threshold is ``options.threshold``, else ``pdq_threshold``, else each bank's
        own ``pdq`` threshold, else 31.
        """
        self.refresh()
        options = options or VideoOptions()
        if not frames:
            return []
        self._ensure(videos=True)
        if not len(self.videos):
            return []
        explicit = options.threshold if options.threshold is not None else pdq_threshold
        overrides = self._bank_thresholds()
        thresholds = {
            bank_id: explicit
            if explicit is not None
            else overrides.get(bank_id, {}).get("pdq", VPDQ_DISTANCE_THRESHOLD)
            for bank_id in self.videos.bank_ids()
        }
        hits = {
            hit.video: (hit, threshold)
            for hit, threshold in self.videos.search(frames, thresholds=thresholds, options=options)
        }
        if not hits:
            return []
        wanted = set(banks) if banks is not None else None
        step = sampling_step(frames)
        now = utcnow()
        found: list[BankMatch] = []
        with self.store.read() as session:
            keys = sorted(hits)
            for start in range(0, len(keys), RESOLVE_CHUNK):
                rows = session.execute(
                    select(
                        Entry.id,
                        Entry.status,
                        Entry.disabled_until,
                        Entry.case_ref,
                        Entry.external_id,
                        Bank.name.label("bank"),
                    )
                    .join(Bank, Bank.id == Entry.bank_id)
                    .where(Entry.id.in_(keys[start : start + RESOLVE_CHUNK]))
                )
                for row in rows:
                    if wanted is not None and row.bank not in wanted:
                        continue
                    status = effective_status(EntryStatus(row.status), row.disabled_until, now)
                    if status is EntryStatus.withdrawn:
                        continue
                    if status is not EntryStatus.active and not include_inactive:
                        continue
                    hit, threshold = hits[row.id]
                    found.append(
                        BankMatch(
                            bank=row.bank,
                            entry_id=row.id,
                            signal_type="vpdq",
                            distance=hit.distance,
                            threshold=threshold,
                            transform="original",
                            status=status,
                            case_ref=row.case_ref,
                            external_id=row.external_id,
                            matched_value=f"{hit.match.bank_frames} frames",
                            video=VideoMatchInfo.of(hit.match, query_step=step),
                        )
                    )
        found.sort(key=lambda m: (m.bank, m.entry_id))
        return found

    def match_signals(
        self,
        signals: Iterable[Signal],
        *,
        dihedral: Sequence[str] = (),
        regions: Sequence[QueryHash] = (),
        banks: Iterable[str] | None = None,
        options: QueryOptions | None = None,
        include_inactive: bool = False,
    ) -> list[BankMatch]:
        """Bank entries matching these signals (PDQ with its ``dihedral`` flips and the
        ``regions`` of the upload, see :meth:`MatchIndex.search_signals`); one match per entry
        and signal type, the closest."""
        self.refresh()
        options = options or QueryOptions(include_low_quality=self.include_low_quality)
        signals = list(signals)
        self._ensure(self._deciding_types(signals, options))
        overrides = self._bank_thresholds()
        widest = _widest_thresholds(options, overrides)
        search_options = QueryOptions(
            thresholds=widest,
            dihedral=options.dihedral,
            include_low_quality=options.include_low_quality,
            signal_types=options.signal_types,
            detection_margin=options.detection_margin,
        )
        hits = self.index.search_signals(
            signals, dihedral=dihedral, regions=regions, options=search_options
        )
        if include_inactive:
            hits = [
                *hits,
                *self._disabled_index().search_signals(
                    signals, dihedral=dihedral, regions=regions, options=search_options
                ),
            ]
        if not hits:
            return []
        wanted = set(banks) if banks is not None else None
        found = self._resolve(hits, options, overrides, wanted, include_inactive)
        return self._with_corroboration(found, signals, options, overrides)

    def _deciding_types(self, signals: Sequence[Signal], options: QueryOptions) -> set[str]:
        """The query's signal types that can decide a match in some bank: the index must hold
        them. A weak type only where a bank opted in or the query set its threshold."""
        opted = {kind for per_bank in self._banks.values() for kind in per_bank}
        explicit = options.thresholds or {}
        return {
            s.type
            for s in signals
            if (options.signal_types is None or s.type in options.signal_types)
            and (get_signal_type(s.type).decisive or s.type in opted or s.type in explicit)
        }

    def _with_corroboration(
        self,
        found: list[BankMatch],
        signals: Sequence[Signal],
        options: QueryOptions,
        overrides: dict[int, dict[str, int]],
    ) -> list[BankMatch]:
        """Each match with the weak hashes of its entry that agree with the upload's but decide
        nothing in its bank, read from the matched entries' rows (a few), not from an index."""
        weak = {
            s.type: s.value
            for s in signals
            if s.type in WEAK_SIGNALS
            and (options.signal_types is None or s.type in options.signal_types)
            and (not s.low_quality or options.include_low_quality)
        }
        if not found or not weak:
            return found
        explicit = options.thresholds or {}
        bank_ids = self._bank_ids
        entry_ids = sorted({m.entry_id for m in found})
        agreeing: dict[int, set[str]] = defaultdict(set)
        with self.store.read() as session:
            stored = signals_of(session, entry_ids)
        for entry_id, kept in stored.items():
            for signal in kept:
                if signal.type not in weak or (signal.low_quality and not self.include_low_quality):
                    continue
                distance = _hamming(weak[signal.type], signal.value)
                if distance is not None and distance <= options.threshold(signal.type):
                    agreeing[entry_id].add(signal.type)
        return [
            _corroborated(
                m,
                {
                    kind
                    for kind in agreeing.get(m.entry_id, ())
                    if not decides(kind, overrides.get(bank_ids.get(m.bank, -1), {}), explicit)
                },
            )
            for m in found
        ]

    def _disabled_index(self) -> MatchIndex:
        """The signals of entries disabled with no end, which the main index leaves out; built
        on demand for ``include_inactive`` (they are reported, never blocking) and rebuilt when
        the change log has moved."""
        if self._disabled is None or self._disabled[0] != self.seq:
            index = MatchIndex()
            with self.store.read() as session:
                rows = session.execute(
                    select(EntrySignal.id, EntrySignal.signal_type, EntrySignal.value)
                    .join(Entry, Entry.id == EntrySignal.entry_id)
                    .where(Entry.status == EntryStatus.disabled, Entry.disabled_until.is_(None))
                    .where(
                        EntrySignal.quality.is_(None) | (EntrySignal.quality >= PDQ_MIN_QUALITY)
                        if not self.include_low_quality
                        else true()
                    )
                )
                for row in rows:
                    index.add(row.signal_type, row.value, row.id)
            self._disabled = (self.seq, index)
        return self._disabled[1]

    def _bank_thresholds(self) -> dict[int, dict[str, int]]:
        """Per-bank threshold overrides (bank id → signal type → threshold), as of the last
        refresh (``Bank.match_thresholds``; a threshold given with the query wins over them)."""
        return self._banks

    def _resolve(
        self,
        hits: Sequence[SignalHit],
        options: QueryOptions,
        overrides: dict[int, dict[str, int]],
        wanted: set[str] | None,
        include_inactive: bool,
    ) -> list[BankMatch]:
        by_key = {h.key: h for h in hits}
        explicit = options.thresholds or {}
        now = utcnow()
        # One match per (entry, signal type): its picture's hash and a variant of it may both
        # be hit; the closest is reported.
        best: dict[tuple[int, str], BankMatch] = {}
        with self.store.read() as session:
            keys = list(by_key)
            for start in range(0, len(keys), RESOLVE_CHUNK):
                rows = session.execute(
                    select(
                        EntrySignal.id,
                        EntrySignal.value,
                        EntrySignal.variant,
                        Entry.id.label("entry_id"),
                        Entry.status,
                        Entry.disabled_until,
                        Entry.case_ref,
                        Entry.external_id,
                        Bank.name.label("bank"),
                        Bank.id.label("bank_id"),
                    )
                    .join(Entry, Entry.id == EntrySignal.entry_id)
                    .join(Bank, Bank.id == Entry.bank_id)
                    .where(EntrySignal.id.in_(keys[start : start + RESOLVE_CHUNK]))
                )
                for row in rows:
                    hit = by_key[row.id]
                    if wanted is not None and row.bank not in wanted:
                        continue
                    kind = hit.signal_type
                    bank_thresholds = overrides.get(row.bank_id, {})
                    threshold = (
                        explicit[kind]
                        if kind in explicit
                        else bank_thresholds.get(kind, options.threshold(kind))
                    )
                    if hit.detection or row.variant is not None:
                        threshold -= options.detection_margin
                    if hit.distance > threshold:
                        continue
                    status = effective_status(EntryStatus(row.status), row.disabled_until, now)
                    if status is EntryStatus.withdrawn:
                        continue
                    if status is not EntryStatus.active and not include_inactive:
                        continue
                    if not decides(kind, bank_thresholds, explicit):
                        continue  # corroboration only: see _with_corroboration
                    match = BankMatch(
                        bank=row.bank,
                        entry_id=row.entry_id,
                        signal_type=hit.signal_type,
                        distance=hit.distance,
                        threshold=threshold,
                        transform=hit.transform,
                        status=status,
                        case_ref=row.case_ref,
                        external_id=row.external_id,
                        matched_value=row.value,
                        variant=row.variant,
                    )
                    slot = (row.entry_id, kind)
                    held = best.get(slot)
                    if held is None or (match.distance, match.variant is not None) < (
                        held.distance,
                        held.variant is not None,
                    ):
                        best[slot] = match
        found = list(best.values())
        found.sort(key=lambda m: (m.bank, m.entry_id, m.distance, m.signal_type))
        return found


def decides(kind: str, bank_thresholds: dict[str, int], explicit: dict[str, int]) -> bool:
    """Whether a hit of this signal type decides a match: PDQ and file digests always; a weak
    64-bit hash only where the bank opted in by storing a threshold for it (``ncii bank
    update B --weak-hash-matching``) or the caller passed one with the query."""
    return get_signal_type(kind).decisive or kind in bank_thresholds or kind in explicit


def _corroborated(match: BankMatch, kinds: Iterable[str]) -> BankMatch:
    """``match`` with the weak hashes that also agree with its entry listed."""
    agree = [name for name in WEAK_SIGNALS if name in kinds and name != match.signal_type]
    return replace(match, corroborated_by=tuple(agree)) if agree else match


def _hamming(a: str, b: str) -> int | None:
    """Bits between two hex hashes of one width (``None`` if the widths differ)."""
    if len(a) != len(b):
        return None
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _widest_thresholds(
    options: QueryOptions, overrides: dict[int, dict[str, int]]
) -> dict[str, int]:
    """The index is searched once at the widest threshold any bank asks for (a threshold
    given with the query applies to every bank)."""
    from ncii.signals import SIGNAL_TYPES

    explicit = options.thresholds or {}
    widest = {name: options.threshold(name) for name in SIGNAL_TYPES}
    for per_type in overrides.values():
        for name, value in per_type.items():
            if name not in explicit:
                widest[name] = max(widest.get(name, 0), value)
    return widest


def _repeatable_read(session: Session) -> None:
    """One snapshot for the whole load, so the change-log position read first is exactly
    where the loaded rows end (SQLite's read transaction already is one)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
