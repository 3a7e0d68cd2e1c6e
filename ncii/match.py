"""Hashes of an upload → every indexed hash within its signal type's threshold.

Pure: one :class:`~ncii.index.HammingIndex` per signal type, keyed by opaque int64 keys (the
store's signal row ids). The service layer loads it from the store, keeps it current through
the change log, and maps keys back to banks and entries.

PDQ queries carry their seven flips and rotations (see ``docs/hashing.md``) and, with a
detection pipeline, the hashes of regions of the upload (the picture inside bars or a frame,
``docs/detection.md``): a hit through any of them counts, at the same threshold, reported with
the transform that found it and the smallest distance. Hits only the detection pipeline makes
(regions, mirrored pixels; banked variants in the service layer) are judged
``PDQ_DETECTION_MARGIN`` bits stricter. Every hit is a candidate: which signal types decide a
match (PDQ and file digests; the 64-bit imagehash family only where a bank opted in) is the
service layer's call (:mod:`ncii.service.matching`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncii.detection import QueryHash
from ncii.hashing import MediaHashes
from ncii.index import HammingIndex, hex_to_words
from ncii.signals import FILE_SIGNALS, SIGNAL_TYPES, Signal, get_signal_type
from ncii.signals.pdq import DIHEDRAL_ORDER, PDQ_DETECTION_MARGIN, PDQ_MIN_QUALITY


@dataclass(frozen=True, slots=True)
class SignalHit:
    key: int
    signal_type: str
    distance: int
    query_value: str
    """The query hash that matched (for PDQ, possibly a flipped/rotated one)."""
    transform: str = "original"
    """Which part of the query matched (PDQ only): a flip or rotation of the upload
    (``mirror``…), a region of it (``framed``), or both (``framed/rotate90``)."""

    @property
    def detection(self) -> bool:
        """Whether the hit came through a region or mirrored copy of the upload (the detection
        pipeline's query side) rather than its own hash or DCT flips."""
        return self.transform not in DIHEDRAL_ORDER


PLAIN_PDQ_SIGNALS: tuple[str, ...] = ("pdq", *FILE_SIGNALS)
"""What the ``pdq`` pipeline looks up."""


@dataclass(frozen=True, slots=True)
class QueryOptions:
    thresholds: dict[str, int] | None = None
    """Per signal type; defaults to each type's own threshold."""
    dihedral: bool = True
    include_low_quality: bool = False
    signal_types: tuple[str, ...] | None = None
    """Which of the query's signals to look up; default all indexed ones."""
    detection_margin: int = PDQ_DETECTION_MARGIN
    """Bits off the PDQ threshold for hits only the detection pipeline makes (regions of the
    upload here, banked variants in the service layer): its extra hashes are extra tries."""

    @classmethod
    def plain_pdq(
        cls,
        *,
        dihedral: bool = False,
        thresholds: dict[str, int] | None = None,
        include_low_quality: bool = False,
    ) -> QueryOptions:
        """The ``pdq`` pipeline's lookups: the upload's own PDQ (its flips only when asked), no
        regions, no weak hashes. File digests (an identical file) and vPDQ (videos) still
        count: they are cryptographic or PDQ. What a bank holds is the bank's business: an
        entry added with the default pipeline still answers through its banked variants."""
        return cls(
            thresholds=thresholds,
            dihedral=dihedral,
            include_low_quality=include_low_quality,
            signal_types=PLAIN_PDQ_SIGNALS,
        )

    def effective(self, hit: SignalHit) -> int:
        """The distance a hit is judged by: a detection hit carries the margin."""
        return hit.distance + (self.detection_margin if hit.detection else 0)

    def threshold(self, signal_type: str) -> int:
        if self.thresholds and signal_type in self.thresholds:
            return self.thresholds[signal_type]
        kind = get_signal_type(signal_type)
        return 0 if kind.exact else kind.threshold


class MatchIndex:
    """Indexes for every signal type, searched together for one upload."""

    def __init__(self) -> None:
        self._indexes: dict[str, HammingIndex] = {}

    def _index(self, signal_type: str) -> HammingIndex:
        index = self._indexes.get(signal_type)
        if index is None:
            index = self._indexes[signal_type] = HammingIndex(get_signal_type(signal_type).bits)
        return index

    def load(
        self,
        signal_type: str,
        values: Sequence[str],
        keys: Sequence[int],
        active: Sequence[bool] | None = None,
    ) -> None:
        """Add many hashes of one type at once (fast path for start-up)."""
        if not values:
            return
        kind = get_signal_type(signal_type)
        words = hex_to_words(values, kind.bits)
        flags = None if active is None else np.asarray(active, dtype=bool)
        self._index(kind.name).add_words(words, np.asarray(keys, dtype=np.int64), flags)

    def load_words(self, signal_type: str, words: np.ndarray, keys: np.ndarray) -> None:
        """Add hashes already converted with :func:`~ncii.index.hex_to_words` (one segment)."""
        self._index(get_signal_type(signal_type).name).add_words(words, keys)

    def add(self, signal_type: str, value: str, key: int, *, active: bool = True) -> None:
        self._index(signal_type).add(value, key, active=active)

    def set_active(self, signal_type: str, key: int, active: bool) -> int:
        index = self._indexes.get(signal_type)
        return 0 if index is None else index.set_active(key, active)

    def compact(self) -> None:
        for index in self._indexes.values():
            index.compact()

    def __len__(self) -> int:
        return sum(len(i) for i in self._indexes.values())

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write every type's index under ``folder`` (plain .npy arrays, see
        :meth:`HammingIndex.save`)."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        for name, index in self._indexes.items():
            index.save(target / name)

    @classmethod
    def load_saved(cls, folder: str | os.PathLike[str]) -> MatchIndex:
        """Open what :meth:`save` wrote; arrays are memory-mapped, so processes that load the
        same snapshot share its pages."""
        match_index = cls()
        for part in sorted(Path(folder).iterdir()):
            if part.is_dir():
                kind = get_signal_type(part.name)
                index = HammingIndex.load(part)
                if index.bits != kind.bits:
                    raise ValueError(f"{part}: {index.bits}-bit index for {kind.name}")
                match_index._indexes[kind.name] = index
        return match_index

    def warm(self) -> None:
        for index in self._indexes.values():
            index.warm()

    def counts(self) -> dict[str, int]:
        return {name: len(index) for name, index in self._indexes.items()}

    def search_signals(
        self,
        signals: Iterable[Signal],
        *,
        dihedral: Sequence[str] = (),
        regions: Sequence[QueryHash] = (),
        options: QueryOptions = QueryOptions(),
    ) -> list[SignalHit]:
        """Every indexed hash near any of ``signals``; one hit per (key, signal type), the
        closest, so a flipped copy is not reported eight times.

        ``regions`` (PDQ only) are looked up too when they have quality, even if the whole
        upload's PDQ has not (a picture inside a flat frame)."""
        best: dict[tuple[int, str], SignalHit] = {}
        for signal in signals:
            if signal.type not in self._indexes:
                continue
            if options.signal_types is not None and signal.type not in options.signal_types:
                continue
            queries: list[str] = []
            transforms: list[str] = []
            if not signal.low_quality or options.include_low_quality:
                queries.append(signal.value)
                transforms.append("original")
                if signal.type == "pdq" and options.dihedral:
                    queries += dihedral
                    transforms += DIHEDRAL_ORDER[1 : 1 + len(dihedral)]
            if signal.type == "pdq":
                for region in regions:
                    if region.quality < PDQ_MIN_QUALITY and not options.include_low_quality:
                        continue
                    flips = region.dihedral if options.dihedral else region.dihedral[:1]
                    queries += flips
                    transforms += [
                        region.label if i == 0 else f"{region.label}/{DIHEDRAL_ORDER[i]}"
                        for i in range(len(flips))
                    ]
            if not queries:
                continue
            threshold = options.threshold(signal.type)
            for hit in self._indexes[signal.type].search(queries, threshold):
                found = SignalHit(
                    key=hit.key,
                    signal_type=signal.type,
                    distance=hit.distance,
                    query_value=queries[hit.query],
                    transform=transforms[hit.query],
                )
                slot = (hit.key, signal.type)
                if slot not in best or options.effective(found) < options.effective(best[slot]):
                    best[slot] = found
        order = {name: i for i, name in enumerate(SIGNAL_TYPES)}
        return sorted(best.values(), key=lambda h: (h.distance, order[h.signal_type], h.key))

    def search(
        self, hashes: MediaHashes, options: QueryOptions = QueryOptions()
    ) -> list[SignalHit]:
        """Every indexed hash matching an upload's hashes."""
        return self.search_signals(
            hashes.signals,
            dihedral=hashes.pdq_dihedral,
            regions=hashes.pdq_regions,
            options=options,
        )
