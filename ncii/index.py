"""Exact Hamming range search over fixed-width hashes: multi-index hashing on numpy.

Every hash is cut into ``m`` chunks of ``w`` bits (``w`` chosen per segment from its size). If
two hashes are within distance ``t``, at least one of their chunks differs in at most
``t // m`` bits (pigeonhole), so probing each chunk's buckets at that radius finds every true
neighbour; each candidate is then
verified with an exact popcount. Nothing is approximate: the result is what brute force
gives, for any threshold (a larger threshold probes more buckets, it never misses).

The index is a list of immutable *segments* (per chunk, a bucket table whose entry is the
bucket's one row or points at its rows in an overflow array) plus a small *tail* of recent
additions searched by brute force. When the tail grows it becomes a segment, and segments of
similar size are merged (a log-structured layout), so an addition is visible at once and costs
amortised O(log n) rebuild work. Disabling a key flips a flag; it never forces a rebuild.

Rows carry an opaque int64 *key* (the store's signal row id); the caller maps keys to banks
and entries. Pure: imports numpy only (and the numba kernel on first use).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def _kernel():  # type: ignore[no-untyped-def]
    """The compiled probe loop, imported on the first search (numba takes ~0.5 s to import,
    which processes that only hash should not pay); ``None`` without numba, where the numpy
    path gives identical results, slower."""
    try:
        from ncii import _mih_kernel
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return _mih_kernel


USE_KERNEL = True
"""Tests flip this to check the numpy path against the kernel."""

KERNEL_BATCH = 256
"""A search of this many queries loads the kernel at once."""
KERNEL_LOAD_SECONDS = 0.5
"""About what loading the kernel costs (numba's import and its cached machine code): numpy
searches run until they have taken this long, then the kernel is loaded (at most twice the
cheaper choice's cost, whatever the number of lookups)."""
_numpy_seconds = 0.0


def _search_kernel(queries: int):  # type: ignore[no-untyped-def]
    """The kernel for a search of ``queries`` hashes, if it pays to have it. A one-file
    ``ncii match`` makes a handful of lookups that numpy answers in milliseconds, where
    loading the kernel would cost half a second; a long-lived matcher loads it on ``warm``,
    and any process once its numpy searches have cost as much."""
    if not USE_KERNEL:
        return None
    if (
        "ncii._mih_kernel" in sys.modules
        or queries >= KERNEL_BATCH
        or _numpy_seconds >= KERNEL_LOAD_SECONDS
    ):
        return _kernel()
    return None

TAIL_LIMIT = 4096
"""Additions searched by brute force before they are frozen into a segment."""

DESIGN_THRESHOLD = {64: 10, 128: 0, 256: 31}
"""The threshold each hash width's chunking is tuned for (any threshold still works)."""


@dataclass(frozen=True, slots=True)
class Hit:
    query: int
    """Position of the query in the batch."""
    key: int
    distance: int


def hex_to_words(hexes: Sequence[str], bits: int) -> np.ndarray:
    """Hex strings → (n, bits/64) uint64 rows; raises ValueError on a malformed value."""
    nbytes = bits // 8
    raw = bytes.fromhex("".join(hexes)) if hexes else b""
    if len(raw) != nbytes * len(hexes):
        raise ValueError(f"every hash must be {bits // 4} hex digits")
    words = np.frombuffer(raw, dtype=np.uint8).reshape(len(hexes), nbytes).view(">u8")
    return words.astype(np.uint64)


def words_to_hex(words: np.ndarray) -> list[str]:
    raw = words.astype(">u8").tobytes()
    size = words.shape[1] * 8
    return [raw[i : i + size].hex() for i in range(0, len(raw), size)]


@lru_cache(maxsize=64)
def _flip_masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``radius`` bits set."""
    masks = [0]
    for r in range(1, min(radius, width) + 1):
        masks.extend(sum(1 << b for b in bits) for bits in itertools.combinations(range(width), r))
    return np.array(masks, dtype=np.int64)


def chunk_radii(chunks: int, threshold: int) -> np.ndarray:
    """The radius each chunk is probed at (-1: not probed), by the generalised pigeonhole
    principle: if chunk ``i`` of two hashes differs in more than ``r_i`` bits for every ``i``,
    they differ in at least ``sum(r_i + 1)`` bits; so with ``sum(r_i + 1) = threshold + 1``
    every pair within the threshold agrees within radius in some chunk. Spread evenly, as
    probes grow steeply with the radius (256-bit PDQ at 31 in 11 chunks: ten at 2, one at 1,
    where ``31 // 11 = 2`` everywhere probes 9% more buckets for nothing)."""
    base, extra = divmod(threshold + 1, chunks)
    radii = np.full(chunks, base - 1, dtype=np.int64)
    radii[:extra] += 1
    return radii


@lru_cache(maxsize=256)
def _probe_plan(width: int, chunks: int, threshold: int) -> tuple[np.ndarray, ...]:
    """Flip masks (sorted by bit count), how many of them each chunk probes, and each
    chunk's radius."""
    radii = chunk_radii(chunks, threshold)
    masks = _flip_masks(width, int(max(radii.max(), 0)))
    counts = np.array(
        [0 if r < 0 else sum(math.comb(width, k) for k in range(r + 1)) for r in radii],
        dtype=np.int64,
    )
    return masks, counts, radii


LOOKUP_COST = 100
"""A lookup's fixed cost (call, setup) in probes' worth, for :func:`_choose_chunk_width`."""


def _choose_chunk_width(n: int, bits: int) -> int:
    """Pick the chunk width for ``n`` rows: the narrowest (smallest bucket tables) whose cost
    per query at the design threshold (probes + candidates + :data:`LOOKUP_COST`) is within
    10% of the cheapest, with bucket tables of at most 32 entries per row. Wider tables are
    memory spent where it buys speed: 21 bits instead of 19 at 1M PDQ hashes, 1.5x the
    lookups a second."""
    threshold = DESIGN_THRESHOLD.get(bits, bits // 8)
    costs: dict[int, float] = {}
    for width in range(8, 25):
        m = bits // width
        if m == 0 or m * (1 << width) > max(32 * n, 1 << 20):
            continue
        radii = chunk_radii(m, threshold)
        if radii.max() > 4:
            continue
        probes = sum(sum(math.comb(width, k) for k in range(r + 1)) for r in radii if r >= 0)
        costs[width] = LOOKUP_COST + probes + probes * n / (1 << width)
    if not costs:
        return 8
    cheapest = min(costs.values())
    return min(width for width, cost in costs.items() if cost <= 1.1 * cheapest)


def _chunk_column(words: np.ndarray, width: int, c: int) -> np.ndarray:
    """Chunk ``c`` of each row (bits taken LSB-first, word 0 lowest) as int64."""
    mask = np.uint64((1 << width) - 1)
    bit = c * width
    i, shift = divmod(bit, 64)
    values = words[:, i] >> np.uint64(shift)
    if shift + width > 64:
        values = values | (words[:, i + 1] << np.uint64(64 - shift))
    return (values & mask).astype(np.int64)


EMPTY = 0xFFFFFFFF
"""A bucket-table entry of an empty bucket."""
MULTI = 0x80000000
"""Set in a bucket-table entry that points into the overflow array (clear: the one row)."""


def _bucket_table(
    column: np.ndarray, buckets: int, table: np.ndarray, overflow: np.ndarray
) -> None:
    """Fill one chunk's bucket ``table`` (``buckets`` uint32) and ``overflow`` (uint32, sized
    by :func:`_overflow_size`) from the chunk value of every row.

    A bucket of one row holds the row itself (at 10M hashes, 55% of the non-empty buckets), so
    a probe that finds it costs no second random memory access; a bigger bucket holds
    ``MULTI`` | the offset in ``overflow`` of its row count followed by its rows (ascending)."""
    order = np.argsort(column, kind="stable").astype(np.uint32)
    counts = np.bincount(column, minlength=buckets)
    starts = np.cumsum(counts) - counts
    table.fill(EMPTY)
    single = counts == 1
    table[single] = order[starts[single]]
    multi = counts > 1
    sizes = np.where(multi, counts + 1, 0)
    offsets = np.cumsum(sizes) - sizes
    table[multi] = offsets[multi] | MULTI
    overflow[offsets[multi]] = counts[multi]
    in_multi = np.repeat(multi, counts)
    # Row i of the sorted order lands past its bucket's header and the headers before it.
    shift = np.repeat(offsets + 1 - starts, counts)
    positions = np.flatnonzero(in_multi)
    overflow[positions + shift[positions]] = order[positions]


def _overflow_size(column: np.ndarray, buckets: int) -> int:
    counts = np.bincount(column, minlength=buckets)
    return int(counts[counts > 1].sum() + np.count_nonzero(counts > 1))


class _Segment:
    """Immutable multi-index over n rows: per chunk, a bucket table by chunk value."""

    __slots__ = ("active", "keys", "overflow", "overflow_starts", "table", "width", "words")

    ARRAYS = ("words", "keys", "active", "table", "overflow", "overflow_starts")

    def __init__(self, words: np.ndarray, keys: np.ndarray, active: np.ndarray) -> None:
        # Rows sorted by key (for set_active); no copy when they already are, as from a bulk
        # load: at 10M hashes each copy of the words is 320 MB.
        if len(keys) > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
            by_key = np.argsort(keys, kind="stable")
            words, keys, active = words[by_key], keys[by_key], active[by_key]
        self.words = np.ascontiguousarray(words, dtype=np.uint64)
        self.keys = np.ascontiguousarray(keys, dtype=np.int64)
        self.active = np.array(active, dtype=bool)
        n = len(self.keys)
        if n >= 1 << 30:
            raise ValueError("a segment holds fewer than 2**30 rows")
        self.width = _choose_chunk_width(n, self.words.shape[1] * 64)
        m = self.words.shape[1] * 64 // self.width
        buckets = 1 << self.width
        kernel = _kernel()
        if kernel is not None:  # a counting sort: faster than argsort, no big temporaries
            counts = np.empty(buckets, dtype=np.int64)
            sizes = [kernel.overflow_size(self.words, self.width, c, counts) for c in range(m)]
        else:
            columns = (_chunk_column(self.words, self.width, c) for c in range(m))
            sizes = [_overflow_size(column, buckets) for column in columns]
        self.overflow_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.overflow = np.empty(int(self.overflow_starts[-1]), dtype=np.uint32)
        self.table = np.empty((m, buckets), dtype=np.uint32)
        for c in range(m):  # one chunk at a time: the temporaries stay one column big
            overflow = self.overflow[self.overflow_starts[c] : self.overflow_starts[c + 1]]
            if kernel is not None:
                kernel.fill_chunk(self.words, self.width, c, counts, self.table[c], overflow)
            else:
                column = _chunk_column(self.words, self.width, c)
                _bucket_table(column, buckets, self.table[c], overflow)

    def __len__(self) -> int:
        return len(self.keys)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name), allow_pickle=False)
        (folder / "width").write_text(str(self.width))

    @classmethod
    def load(cls, folder: Path) -> _Segment:
        """Memory-map the big arrays (pages load on first touch); flags are copied, being
        written to."""
        segment = cls.__new__(cls)
        for name in cls.ARRAYS:
            mode = None if name == "active" else "r"
            setattr(segment, name, np.load(folder / f"{name}.npy", mmap_mode=mode))
        segment.width = int((folder / "width").read_text())
        n = len(segment.keys)
        m = len(segment.table)
        if (
            segment.words.shape[0] != n
            or len(segment.active) != n
            or segment.table.shape[1] != 1 << segment.width
            or len(segment.overflow_starts) != m + 1
            or segment.overflow_starts[-1] != len(segment.overflow)
        ):
            raise ValueError(f"{folder}: arrays disagree in length")
        return segment

    def search(self, queries: np.ndarray, threshold: int) -> np.ndarray:
        """(pairs, 3) int64 of [query, key, distance] for every active row within threshold."""
        kernel = _search_kernel(len(queries))
        if kernel is None:
            global _numpy_seconds
            started = time.perf_counter()
            try:
                return self.search_numpy(queries, threshold)
            finally:
                _numpy_seconds += time.perf_counter() - started
        masks, counts, radii = _probe_plan(self.width, len(self.table), threshold)
        parts: list[np.ndarray] = [np.empty((0, 3), dtype=np.int64)]
        capacity = max(1024, 64 * len(queries))
        next_query = 0
        while next_query < len(queries):
            out = np.empty((capacity, 3), dtype=np.int64)
            found, resume = kernel.search(
                queries,
                next_query,
                self.words,
                self.keys,
                self.active,
                self.table,
                self.overflow,
                self.overflow_starts,
                masks,
                counts,
                radii,
                self.width,
                threshold,
                out,
            )
            parts.append(out[:found])
            if resume == next_query:  # one query's hits fill the buffer: make room
                capacity *= 8
            next_query = resume
        return parts[-1] if len(parts) <= 2 else np.concatenate(parts)

    def search_numpy(self, queries: np.ndarray, threshold: int) -> np.ndarray:
        """The same search in plain numpy (used without numba; a cross-check in tests)."""
        m = len(self.table)
        masks, counts, _radii = _probe_plan(self.width, m, threshold)
        query_parts: list[np.ndarray] = []
        row_parts: list[np.ndarray] = []
        for c in range(m):
            if counts[c] == 0:
                continue
            probes = _chunk_column(queries, self.width, c)[:, None] ^ masks[None, : counts[c]]
            entries = self.table[c][probes].astype(np.int64).reshape(-1)
            query_of = np.arange(len(entries)) // int(counts[c])
            single = entries < MULTI
            row_parts.append(entries[single])
            query_parts.append(query_of[single])
            multi = np.flatnonzero((entries != EMPTY) & ~single)
            if len(multi) == 0:
                continue
            lo = int(self.overflow_starts[c]) + (entries[multi] ^ MULTI) + 1
            lengths = self.overflow[lo - 1].astype(np.int64)
            ends = np.cumsum(lengths)
            positions = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(
                lo - ends + lengths, lengths
            )
            row_parts.append(self.overflow[positions].astype(np.int64))
            query_parts.append(np.repeat(query_of[multi], lengths))
        rows = np.concatenate(row_parts) if row_parts else np.empty(0, dtype=np.int64)
        if len(rows) == 0:
            return np.empty((0, 3), dtype=np.int64)
        query_of = np.concatenate(query_parts)
        # A row reached through several chunks is verified and reported once per query.
        pair = np.unique(query_of * len(self) + rows)
        query_of, rows = pair // len(self), pair % len(self)
        distances = np.bitwise_count(self.words[rows] ^ queries[query_of]).sum(
            axis=1, dtype=np.int64
        )
        keep = (distances <= threshold) & self.active[rows]
        return np.stack([query_of[keep], self.keys[rows[keep]], distances[keep]], axis=1)

    def rows_of(self, key: int) -> slice:
        return slice(
            int(np.searchsorted(self.keys, key, "left")),
            int(np.searchsorted(self.keys, key, "right")),
        )


class HammingIndex:
    """Range search over hashes of ``bits`` bits (a multiple of 64), exact for any threshold."""

    def __init__(self, bits: int) -> None:
        if bits % 64:
            raise ValueError("bits must be a multiple of 64")
        self.bits = bits
        self._width = bits // 64
        self._segments: list[_Segment] = []
        self._tail_words: list[np.ndarray] = []
        self._tail_keys: list[int] = []
        self._tail_active: list[bool] = []

    # -- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, bits: int, hexes: Sequence[str], keys: Iterable[int]) -> HammingIndex:
        """One segment from many hashes at once (the fast path for loading a bank)."""
        index = cls(bits)
        words = hex_to_words(hexes, bits)
        index.add_words(words, np.fromiter(keys, dtype=np.int64, count=len(hexes)))
        return index

    def add(self, hex_value: str, key: int, *, active: bool = True) -> None:
        """Add one hash; visible to the very next search."""
        self._tail_words.append(hex_to_words([hex_value], self.bits)[0])
        self._tail_keys.append(int(key))
        self._tail_active.append(active)
        if len(self._tail_keys) >= TAIL_LIMIT:
            self._freeze_tail()

    def add_words(
        self, words: np.ndarray, keys: np.ndarray, active: np.ndarray | None = None
    ) -> None:
        """Add many hashes given as (n, bits/64) uint64 rows."""
        if len(keys) == 0:
            return
        if words.shape != (len(keys), self._width):
            raise ValueError(f"expected ({len(keys)}, {self._width}) words, got {words.shape}")
        flags = np.ones(len(keys), dtype=bool) if active is None else active.astype(bool)
        if len(keys) < TAIL_LIMIT // 4:
            self._tail_words.extend(words)
            self._tail_keys.extend(int(k) for k in keys)
            self._tail_active.extend(bool(a) for a in flags)
            if len(self._tail_keys) >= TAIL_LIMIT:
                self._freeze_tail()
            return
        self._push_segment(_Segment(words.astype(np.uint64), keys.astype(np.int64), flags))

    def _freeze_tail(self) -> None:
        if not self._tail_keys:
            return
        segment = _Segment(
            np.array(self._tail_words, dtype=np.uint64).reshape(-1, self._width),
            np.array(self._tail_keys, dtype=np.int64),
            np.array(self._tail_active, dtype=bool),
        )
        self._tail_words, self._tail_keys, self._tail_active = [], [], []
        self._push_segment(segment)

    def _push_segment(self, segment: _Segment) -> None:
        self._segments.append(segment)
        # Merge while the newest segment is at least half its predecessor: O(log n) segments.
        while len(self._segments) >= 2 and 2 * len(self._segments[-1]) >= len(self._segments[-2]):
            newer = self._segments.pop()
            older = self._segments.pop()
            self._segments.append(
                _Segment(
                    np.concatenate([older.words, newer.words]),
                    np.concatenate([older.keys, newer.keys]),
                    np.concatenate([older.active, newer.active]),
                )
            )

    def compact(self) -> None:
        """Freeze the tail and merge everything into one segment (after a bulk load)."""
        self._freeze_tail()
        if len(self._segments) > 1:
            parts = self._segments
            self._segments = [
                _Segment(
                    np.concatenate([s.words for s in parts]),
                    np.concatenate([s.keys for s in parts]),
                    np.concatenate([s.active for s in parts]),
                )
            ]

    # -- status ---------------------------------------------------------------------------

    def set_active(self, key: int, active: bool) -> int:
        """Enable or disable every row with this key; returns how many rows it touched."""
        touched = 0
        for segment in self._segments:
            rows = segment.rows_of(key)
            segment.active[rows] = active
            touched += rows.stop - rows.start
        for i, k in enumerate(self._tail_keys):
            if k == key:
                self._tail_active[i] = active
                touched += 1
        return touched

    def __len__(self) -> int:
        return sum(len(s) for s in self._segments) + len(self._tail_keys)

    def active_count(self) -> int:
        return sum(int(s.active.sum()) for s in self._segments) + sum(self._tail_active)

    # -- snapshots ------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write the index as plain .npy arrays (no pickle) after freezing the tail."""
        self.compact()
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        (target / "bits").write_text(str(self.bits))
        for i, segment in enumerate(self._segments):
            segment.save(target / f"segment-{i}")

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> HammingIndex:
        """Open a saved index without rebuilding it: arrays are memory-mapped."""
        source = Path(folder)
        index = cls(int((source / "bits").read_text()))
        for part in sorted(source.glob("segment-*"), key=lambda p: int(p.name.split("-")[1])):
            index._segments.append(_Segment.load(part))
        return index

    def warm(self) -> None:
        """Read every page of a loaded (memory-mapped) index so lookups never wait on disk, and
        load the search kernel."""
        _kernel()
        for segment in self._segments:
            for name in _Segment.ARRAYS:
                array = getattr(segment, name)
                if isinstance(array, np.memmap):
                    np.bitwise_xor.reduce(array.reshape(-1).view(np.uint8)[::4096])

    # -- searching ------------------------------------------------------------------------

    def search(self, hexes: Sequence[str], threshold: int) -> list[Hit]:
        """Every active row within ``threshold`` of each query, with its distance."""
        if not hexes:
            return []
        return self.search_words(hex_to_words(hexes, self.bits), threshold)

    def search_words(self, queries: np.ndarray, threshold: int) -> list[Hit]:
        found = self.search_arrays(queries, threshold)
        return [Hit(int(q), int(k), int(d)) for q, k, d in found]

    def search_arrays(self, queries: np.ndarray, threshold: int) -> np.ndarray:
        """Like :meth:`search_words`, as a (hits, 3) int64 array of [query, key, distance]
        (no Python object per hit: large results stay cheap)."""
        if threshold < 0:
            raise ValueError("threshold must be >= 0")
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, self._width)
        if len(self._segments) == 1 and not self._tail_keys:  # the usual case: a loaded bank
            return self._segments[0].search(queries, threshold)
        results: list[np.ndarray] = []
        for segment in self._segments:
            found = segment.search(queries, threshold)
            if len(found):
                results.append(found)
        if self._tail_keys:
            results.append(self._search_tail(queries, threshold))
        if not results:
            return np.empty((0, 3), dtype=np.int64)
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _search_tail(self, queries: np.ndarray, threshold: int) -> np.ndarray:
        words = np.array(self._tail_words, dtype=np.uint64).reshape(-1, self._width)
        distances = np.bitwise_count(queries[:, None, :] ^ words[None, :, :]).sum(
            axis=2, dtype=np.int64
        )
        active = np.array(self._tail_active, dtype=bool)
        query_idx, row_idx = np.nonzero((distances <= threshold) & active[None, :])
        keys = np.array(self._tail_keys, dtype=np.int64)[row_idx]
        return np.stack([query_idx, keys, distances[query_idx, row_idx]], axis=1)
