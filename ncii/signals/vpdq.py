"""vPDQ: Meta's video hash. A video is the set of PDQ hashes of its frames, sampled one per
second by default, each with its frame number, quality and timestamp.

Hashing (:func:`compute_vpdq`) decodes with :mod:`ncii.video` and PDQ-hashes frames at full
resolution, as Meta's ``vpdq`` does; the text form (:func:`format_vpdq`, :func:`parse_vpdq`)
is Meta's ``frame,quality,pdqhex,timestamp`` lines, so hashes move both ways between ncii,
Meta's tools and ThreatExchange.

Matching (:func:`match_videos`, :class:`VideoIndex`) follows vPDQ: frames of quality below 50
are dropped and identical hashes counted once; a query matches a bank video when at least
``query_match_pct`` of the query's frames have a bank frame within distance 31 (PDQ's
threshold, inclusive) and at least ``bank_match_pct`` of the bank video's frames have a query
frame within it.

Frame PDQ is computed here rather than by ``pdqhash``: the same arithmetic (luma, two passes of
Jarosz box filters, decimation to 64×64, DCT, median) with the filters applied as a banded
64-row reduction, bit-for-bit the same hash and quality as ``pdqhash`` on video frames and
about seven times faster at 720p (the filter touches every pixel; the hash needs 4,096).

ncii's one addition: a frame also carries the hash of its picture without what was added to
it (:attr:`VpdqFrame.unbarred`, never in the text form): uniform letterbox or pillarbox bars
cut off, and a static overlay (a logo, a watermark) found in the first seconds painted over.
Matching tries it besides the plain hash on both sides, so adding or removing bars, or
stamping a logo on a copy, does not hide it.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ncii.errors import InvalidArgument, InvalidSignal, InvalidVpdq
from ncii.frame_progress import frame_progress
from ncii.index import HammingIndex, hex_to_words
from ncii.signals import Signal
from ncii.signals.exact import compute_digests
from ncii.signals.pdq import PDQ, PDQ_MATCH_THRESHOLD
from ncii.video import Overlay, OverlayFinder, VideoLimits, find_bars, open_video
from ncii.video import VideoFrame as DecodedFrame

VPDQ_QUALITY_THRESHOLD = 50
"""Frames below this quality are not matched (vPDQ's and python-threatexchange's value)."""

VPDQ_DISTANCE_THRESHOLD = PDQ_MATCH_THRESHOLD
"""Two frames match at this PDQ distance or below."""

VPDQ_QUERY_MATCH_PCT = 80.0
VPDQ_BANK_MATCH_PCT = 0.0
"""python-threatexchange's defaults: 80% of the query's frames found, any share of the bank's."""

DEFAULT_EVERY = 1.0
"""Seconds between sampled frames; 0 hashes every frame."""

USE_KERNEL = True
"""Tests flip this to check the numpy filter against the compiled one."""


# -- frame PDQ --------------------------------------------------------------------------------


def _window(n: int) -> int:
    """PDQ's Jarosz window for ``n`` pixels down to 64 (``computeJaroszFilterWindowSize``)."""
    return (n + 2 * 64 - 1) // (2 * 64)


def _box_bounds(n: int, full: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive input range each output of PDQ's 1-D box filter averages (``box1DFloat``)."""
    half = (full + 2) // 2
    out = np.arange(n)
    return np.maximum(out - (full - half), 0), np.minimum(out + (half - 1), n - 1)


@lru_cache(maxsize=32)
def _reducer(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two box-filter passes then PDQ's decimation along one axis of length ``n``, as 64 bands:
    (starts, weights (64, band), dense (64, n))."""
    lo, hi = _box_bounds(n, _window(n))
    dense = np.zeros((64, n))
    for row in range(64):
        o = int(((row + 0.5) * n) / 64)
        first_weight = 1.0 / (hi[o] - lo[o] + 1)
        for m in range(lo[o], hi[o] + 1):
            dense[row, lo[m] : hi[m] + 1] += first_weight / (hi[m] - lo[m] + 1)
    nonzero = dense != 0
    starts = nonzero.argmax(axis=1)
    ends = n - nonzero[:, ::-1].argmax(axis=1)
    width = int((ends - starts).max())
    starts = np.minimum(starts, n - width).astype(np.int64)
    weights = np.ascontiguousarray([dense[r, s : s + width] for r, s in enumerate(starts)])
    for cached in (starts, weights, dense):
        cached.setflags(write=False)
    return starts, weights, dense


def _block_numpy(rgb: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    pixels = rgb.astype(np.float32)
    luma = (
        np.float32(0.299) * pixels[:, :, 0]
        + np.float32(0.587) * pixels[:, :, 1]
        + np.float32(0.114) * pixels[:, :, 2]
    )
    return rows @ luma.astype(np.float64) @ columns.T


def _dct_numpy(block: np.ndarray, dct: np.ndarray) -> np.ndarray:
    return dct @ block @ dct.T


@lru_cache(maxsize=1)
def _kernel():  # type: ignore[no-untyped-def]
    """The compiled filters, imported on first use; ``None`` without numba (the numpy path
    gives the same hashes, slower)."""
    try:
        from ncii.signals import _vpdq_kernel
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return _vpdq_kernel


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    i = np.arange(1, 17)[:, None]
    j = np.arange(64)[None, :]
    matrix = np.sqrt(2.0 / 64) * np.cos((np.pi / 2 / 64) * i * (2 * j + 1))
    matrix.setflags(write=False)
    return matrix


def pdq_frame(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ hash (64 hex digits) and quality of an (h, w, 3) uint8 RGB frame at full size;
    equal to ``pdqhash.compute`` on the same pixels."""
    block = _pdq_block(rgb)
    return ("0" * 64, 0) if block is None else _pdq_of_block(block)


def _pdq_block(rgb: np.ndarray) -> np.ndarray | None:
    """The 64×64 luma samples PDQ hashes (``None`` for a frame under 5 pixels a side)."""
    height, width = rgb.shape[:2]
    if height < 5 or width < 5:
        return None
    row_starts, row_weights, row_dense = _reducer(height)
    column_starts, column_weights, column_dense = _reducer(width)
    kernel = _kernel() if USE_KERNEL else None
    if kernel is not None:
        return kernel.block_filter(
            np.ascontiguousarray(rgb), row_starts, row_weights, column_starts, column_weights
        )
    return _block_numpy(rgb, row_dense, column_dense)


def _pdq_of_block(block: np.ndarray) -> tuple[str, int]:
    """Hash and quality from PDQ's 64×64 luma block: quality from its gradients, bits from
    its DCT."""
    kernel = _kernel() if USE_KERNEL else None
    if kernel is not None:
        coefficients = kernel.dct16(block, _dct_matrix()).ravel()
    else:
        coefficients = _dct_numpy(block, _dct_matrix()).ravel()
    vertical = np.trunc((block[:-1, :] - block[1:, :]) * 100 / 255)
    horizontal = np.trunc((block[:, :-1] - block[:, 1:]) * 100 / 255)
    quality = min(int(np.abs(vertical).sum() + np.abs(horizontal).sum()) // 90, 100)
    median = np.partition(coefficients, 127)[127]
    bits = (coefficients > median)[::-1]
    return np.packbits(bits).tobytes().hex(), quality


def _add_to_block(
    block: np.ndarray, shape: tuple[int, int], top: int, left: int, delta: np.ndarray
) -> None:
    """Add to ``block`` (PDQ's samples of a ``shape`` frame) what changing the frame's luma by
    ``delta`` at (``top``, ``left``) changes: the filters are linear, so only the changed
    region is filtered, not the frame again."""
    rows = _reducer(shape[0])[2]
    columns = _reducer(shape[1])[2]
    kernel = _kernel() if USE_KERNEL else None
    if kernel is not None:
        kernel.add_region(block, rows, _transposed(shape[1]), top, left, delta)
    else:
        height, width = delta.shape
        block += rows[:, top : top + height] @ delta @ columns[:, left : left + width].T


@lru_cache(maxsize=32)
def _transposed(n: int) -> np.ndarray:
    transposed = np.ascontiguousarray(_reducer(n)[2].T)
    transposed.setflags(write=False)
    return transposed


# -- hashes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """One line of a vPDQ hash."""

    index: int
    """Frame number in the video, from 0."""
    quality: int
    pdq: str
    timestamp: float
    """Seconds from the first frame."""
    unbarred: str | None = None
    """ncii's addition, not part of Meta's format: the PDQ hash of the frame with its uniform
    letterbox or pillarbox bars cropped off and the video's static overlay, if one was found,
    painted over (``None`` when it has neither). Matching tries it besides ``pdq``, so a copy
    with bars or a logo added or removed still matches."""

    @property
    def hashes(self) -> tuple[str, ...]:
        return (self.pdq,) if self.unbarred is None else (self.pdq, self.unbarred)

    def to_line(self) -> str:
        """Meta's form: ``frame,quality,pdqhex,timestamp`` with the timestamp to 3 decimals."""
        return f"{self.index},{self.quality},{self.pdq},{self.timestamp:.3f}"

    def to_dict(self) -> dict[str, object]:
        """ncii's JSON form (``ncii hash``, exports), with ``unbarred`` when there is one."""
        data: dict[str, object] = {
            "frame": self.index,
            "quality": self.quality,
            "pdq": self.pdq,
            "timestamp": self.timestamp,
        }
        if self.unbarred:
            data["unbarred"] = self.unbarred
        return data

    @classmethod
    def from_dict(cls, data: object, *, where: str = "<vpdq>") -> VpdqFrame:
        """A frame from :meth:`to_dict`'s form, validated; raises
        :class:`~ncii.errors.InvalidVpdq` naming ``where``."""
        if not isinstance(data, dict) or not {"frame", "quality", "pdq", "timestamp"} <= set(data):
            raise InvalidVpdq(f"{where}: expected {{frame, quality, pdq, timestamp}}")
        values = [data["frame"], data["quality"], data["pdq"], data["timestamp"]]
        if any(isinstance(v, bool) or not isinstance(v, int | float | str) for v in values):
            raise InvalidVpdq(f"{where}: frame, quality, pdq and timestamp must be scalars")
        frame = _frame(*(str(v) for v in values), where)
        unbarred = data.get("unbarred")
        if unbarred is not None:
            try:
                unbarred = PDQ.parse(unbarred)
            except InvalidSignal as exc:
                raise InvalidVpdq(f"{where}: unbarred: {exc}") from None
        return VpdqFrame(frame.index, frame.quality, frame.pdq, frame.timestamp, unbarred)


@dataclass(frozen=True, slots=True)
class VideoHashes:
    """What ncii knows about one video after hashing it: never its bytes."""

    source: str
    media_type: str
    size: int
    width: int
    height: int
    duration: float
    """Seconds of video decoded."""
    frame_count: int
    """Frames decoded (sampled or not)."""
    every: float
    """Seconds between sampled frames (0: every frame)."""
    frames: tuple[VpdqFrame, ...]
    md5: str
    sha256: str

    @property
    def digests(self) -> dict[str, str]:
        return {"md5": self.md5, "sha256": self.sha256}

    @property
    def signals(self) -> tuple[Signal, ...]:
        """The file digests as signals, as :class:`~ncii.hashing.MediaHashes` has them."""
        return (Signal("md5", self.md5), Signal("sha256", self.sha256))

    @property
    def pdq_dihedral(self) -> tuple[str, ...]:
        """Videos carry no flipped whole-file hashes (same interface as images)."""
        return ()

    @property
    def pdq_variants(self) -> tuple[()]:
        """No detection variants: vPDQ frames handle bars and overlays themselves."""
        return ()

    @property
    def pdq_regions(self) -> tuple[()]:
        """No detection regions (same interface as images)."""
        return ()

    def get(self, signal_type: str) -> Signal | None:
        return next((s for s in self.signals if s.type == signal_type), None)

    def to_vpdq(self) -> str:
        return format_vpdq(self.frames)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.source,
            "media_type": self.media_type,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "duration": round(self.duration, 3),
            "frame_count": self.frame_count,
            "every": self.every,
            "signals": [
                {"type": "md5", "value": self.md5},
                {"type": "sha256", "value": self.sha256},
            ],
            "vpdq": [f.to_dict() for f in self.frames],
        }


def compute_vpdq(
    data: bytes,
    *,
    name: str = "<bytes>",
    every: float = DEFAULT_EVERY,
    limits: VideoLimits = VideoLimits(),
    threads: int = 1,
    unbar: bool = True,
) -> VideoHashes:
    """vPDQ hash and file digests of a video or animation held in memory.

    ``every`` is the seconds between sampled frames (``0``: every frame). ``unbar`` also
    hashes each frame without what was added to the picture (:attr:`VpdqFrame.unbarred`):
    uniform bars cut off, and a static overlay found in the first
    :data:`~ncii.video.OVERLAY_WINDOW` seconds painted over. Raises a
    :class:`~ncii.errors.MediaError` with a one-line message naming ``name``.
    """
    _check_every(every)
    frames: list[VpdqFrame] = []
    search = _OverlaySearch() if unbar else None
    overlay: Overlay | None = None
    # Hashing less often than the overlay search looks (once a second), it looks in between.
    look = (1.0, search.window) if search is not None and every > 1.0 else None
    report = frame_progress.get()
    with open_video(data, name=name, limits=limits, threads=threads) as video:
        for frame in video.frames(every, look=look):
            if search is not None and frame.timestamp >= search.window:
                overlay, search = search.finish(frames, data, name, every, limits, threads), None
            if frame.sampled:
                frames.append(_hash_frame(frame, unbar, search, overlay))
                if report is not None:
                    report(frame.timestamp, video.info.declared_duration)
            elif search is not None:
                search.offer(frame, find_bars(frame.rgb), None, hashed=False)
        info, decoded, duration = video.info, video.decoded_frames, video.duration
    if search is not None:  # the video ended inside the window
        search.finish(frames, data, name, every, limits, threads)
    digests = compute_digests(data)
    return VideoHashes(
        source=name,
        media_type=info.media_type,
        size=len(data),
        width=info.width,
        height=info.height,
        duration=duration,
        frame_count=decoded,
        every=float(every),
        frames=tuple(frames),
        md5=digests["md5"],
        sha256=digests["sha256"],
    )


_Box = tuple[int, int, int, int]


def _hash_frame(
    frame: DecodedFrame, unbar: bool, search: _OverlaySearch | None, overlay: Overlay | None
) -> VpdqFrame:
    rgb = frame.rgb
    block = _pdq_block(rgb)
    pdq, quality = ("0" * 64, 0) if block is None else _pdq_of_block(block)
    unbarred = None
    if unbar:
        box = find_bars(rgb)
        base, shape = _picture_block(rgb, box, block)
        if search is not None:
            search.offer(frame, box, base, hashed=True)
        change = overlay.change(rgb, box) if overlay is not None else None
        unbarred = _unbarred(base, shape, box, change)
    return VpdqFrame(frame.index, quality, pdq, frame.timestamp, unbarred)


def _picture_block(
    rgb: np.ndarray, box: _Box | None, block: np.ndarray | None
) -> tuple[np.ndarray | None, tuple[int, int]]:
    """PDQ's samples of the picture inside the bars (the frame's own without bars), and the
    picture's size."""
    if box is None:
        return block, rgb.shape[:2]
    crop = np.ascontiguousarray(rgb[box[0] : box[1], box[2] : box[3]])
    return _pdq_block(crop), crop.shape[:2]


def _unbarred(
    base: np.ndarray | None,
    shape: tuple[int, int],
    box: _Box | None,
    change: tuple[int, int, np.ndarray] | None,
) -> str | None:
    """The hash of the picture without its bars and with the overlay painted over; ``None``
    when the frame has neither."""
    if base is None or (box is None and change is None):
        return None
    if change is not None:
        base = base.copy()
        _add_to_block(base, shape, *change)
    return _pdq_of_block(base)[0]


class _OverlaySearch:
    """An :class:`~ncii.video.OverlayFinder` over the first seconds of a video being hashed,
    and what it takes to hash those frames again once an overlay is found.

    When every frame hashed in the window is one the finder looked at (hashing once a second
    or less often), their picture blocks and rounded luma are kept (at most 16 frames) and
    painted from memory; otherwise (hashing every frame) the window is decoded a second time,
    and only for a video with an overlay.
    """

    def __init__(self) -> None:
        kernel = _kernel() if USE_KERNEL else None
        if kernel is None:
            self.finder = OverlayFinder()
        else:
            self.finder = OverlayFinder(to_luma=kernel.luma, add=kernel.accumulate)
        self.window = self.finder.window
        self._kept: list[tuple[_Box | None, np.ndarray | None, tuple[int, int], np.ndarray]] = []
        self._complete = True

    def offer(
        self, frame: DecodedFrame, box: _Box | None, base: np.ndarray | None, *, hashed: bool
    ) -> None:
        """A frame decoded in the window: ``hashed``, or only looked at (``base`` ``None``)."""
        plane = self.finder.offer(frame.rgb, frame.timestamp, box)
        if not hashed:
            return
        if plane is None:
            self._complete = False
            self._kept.clear()
        elif self._complete:
            shape = frame.rgb.shape[:2] if box is None else (box[1] - box[0], box[3] - box[2])
            self._kept.append((box, base, shape, plane))

    def finish(
        self,
        frames: list[VpdqFrame],
        data: bytes,
        name: str,
        every: float,
        limits: VideoLimits,
        threads: int,
    ) -> Overlay | None:
        """The overlay (or ``None``), after hashing again the frames hashed so far."""
        overlay = self.finder.result()
        if overlay is None:
            return None
        if self._complete and len(self._kept) == len(frames):
            for position, (box, base, shape, plane) in enumerate(self._kept):
                unbarred = _unbarred(base, shape, box, overlay.change(plane, box))
                frames[position] = replace(frames[position], unbarred=unbarred)
            self._kept.clear()
            return overlay
        with open_video(data, name=name, limits=limits, threads=threads) as video:
            for position, frame in enumerate(video.frames(every)):
                if position >= len(frames):
                    break
                if frames[position].index == frame.index:
                    rgb = frame.rgb
                    box = find_bars(rgb)
                    base, shape = _picture_block(rgb, box, _pdq_block(rgb) if box is None else None)
                    unbarred = _unbarred(base, shape, box, overlay.change(rgb, box))
                    frames[position] = replace(frames[position], unbarred=unbarred)
        return overlay


def _check_every(every: float) -> None:
    if not isinstance(every, int | float) or not (math.isfinite(every) and every >= 0):
        raise InvalidArgument(
            f"every must be a number of seconds >= 0 (0: every frame), not {every!r}"
        )


def sample_frames(frames: Iterable[VpdqFrame], every: float) -> list[VpdqFrame]:
    """The frames that hashing with ``every`` would have sampled from an every-frame hash
    (the same rule: the first frame at or after each multiple of ``every`` seconds)."""
    _check_every(every)
    if every == 0:
        return list(frames)
    taken, next_time = [], 0.0
    for frame in frames:
        if frame.timestamp + 1e-6 >= next_time:
            taken.append(frame)
            next_time = (math.floor(frame.timestamp / every + 1e-6) + 1) * every
    return taken


# -- text form --------------------------------------------------------------------------------


def format_vpdq(frames: Iterable[VpdqFrame]) -> str:
    """Meta's vPDQ text: one ``frame,quality,pdqhex,timestamp`` line per frame."""
    return "".join(f.to_line() + "\n" for f in frames)


def parse_vpdq(text: str, *, name: str = "<vpdq>") -> list[VpdqFrame]:
    """Frames from Meta's vPDQ text, or from python-threatexchange's JSON list of
    ``pdqhex,quality,timestamp`` strings (frames then numbered in order).

    Raises :class:`~ncii.errors.InvalidVpdq` naming ``name`` and the line at fault.
    """
    if text.lstrip().startswith("["):
        return _parse_threatexchange(text, name)
    frames = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(",")
        if len(parts) != 4:
            raise InvalidVpdq(
                f"{name}: line {number}: expected frame,quality,pdqhex,timestamp, got "
                f"{_shown(line)}"
            )
        frames.append(_frame(parts[0], parts[1], parts[2], parts[3], f"{name}: line {number}"))
    if not frames:
        raise InvalidVpdq(f"{name}: no vPDQ frames")
    return frames


def _parse_threatexchange(text: str, name: str) -> list[VpdqFrame]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidVpdq(f"{name}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(items, list) or not items:
        raise InvalidVpdq(f"{name}: expected a non-empty JSON list of 'pdqhex,quality,timestamp'")
    frames = []
    for number, item in enumerate(items, 1):
        parts = item.split(",") if isinstance(item, str) else []
        if len(parts) != 3:
            raise InvalidVpdq(
                f"{name}: item {number}: expected 'pdqhex,quality,timestamp', got {_shown(item)}"
            )
        frames.append(
            _frame(str(number - 1), parts[1], parts[0], parts[2], f"{name}: item {number}")
        )
    return frames


def _frame(index: str, quality: str, pdq: str, timestamp: str, where: str) -> VpdqFrame:
    try:
        number = int(index)
        score = int(quality)
        seconds = float(timestamp)
    except ValueError:
        raise InvalidVpdq(
            f"{where}: frame, quality and timestamp must be numbers, got "
            f"{_shown(','.join((index, quality, pdq, timestamp)))}"
        ) from None
    if number < 0:
        raise InvalidVpdq(f"{where}: frame number {number} is negative")
    if not 0 <= score <= 100:
        raise InvalidVpdq(f"{where}: quality {score} is not between 0 and 100")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidVpdq(f"{where}: timestamp {timestamp.strip()!r} is not a time >= 0")
    try:
        value = PDQ.parse(pdq)
    except InvalidSignal as exc:
        raise InvalidVpdq(f"{where}: {exc}") from None
    return VpdqFrame(number, score, value, seconds)


def _shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


# -- matching ---------------------------------------------------------------------------------


class TimeRange(NamedTuple):
    start: float
    end: float
    """Timestamp of the last matched frame of the run (a single frame: ``start == end``)."""


@dataclass(frozen=True, slots=True)
class VideoMatch:
    query_pct: float
    """Share of the query's usable frames (quality ≥ 50, deduplicated) found in the bank video."""
    bank_pct: float
    """Share of the bank video's usable frames found in the query."""
    matched_ranges: tuple[TimeRange, ...]
    """Runs of matched frames in the query, in seconds."""
    bank_ranges: tuple[TimeRange, ...]
    """Runs of matched frames in the bank video, in seconds."""
    is_match: bool
    query_frames: int
    """Usable frames compared on each side."""
    bank_frames: int


def dedupe_frames(
    frames: Iterable[VpdqFrame], *, min_quality: int = VPDQ_QUALITY_THRESHOLD
) -> list[VpdqFrame]:
    """Frames of quality ≥ ``min_quality``, each distinct hash once (its first frame)."""
    seen: set[str] = set()
    kept = []
    for frame in frames:
        if frame.quality >= min_quality and frame.pdq not in seen:
            seen.add(frame.pdq)
            kept.append(frame)
    return kept


def _variants(frames: Sequence[VpdqFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Every hash of the frames (plain and unbarred) as uint64 words, and the position of the
    frame each one belongs to."""
    hexes = [h for f in frames for h in f.hashes]
    owners = np.repeat(np.arange(len(frames)), [len(f.hashes) for f in frames])
    return hex_to_words(hexes, 256), owners


def _ranges(
    frames: Iterable[VpdqFrame], matched: set[str], min_quality: int
) -> tuple[TimeRange, ...]:
    """Runs of consecutive usable frames whose hash matched; low-quality frames neither
    extend nor break a run."""
    runs: list[TimeRange] = []
    start = end = None
    for frame in sorted(frames, key=lambda f: (f.timestamp, f.index)):
        if frame.quality < min_quality:
            continue
        if frame.pdq in matched:
            start = frame.timestamp if start is None else start
            end = frame.timestamp
        elif start is not None and end is not None:
            runs.append(TimeRange(start, end))
            start = end = None
    if start is not None and end is not None:
        runs.append(TimeRange(start, end))
    return tuple(runs)


def _row_ranges(times: Sequence[float], matched: np.ndarray) -> tuple[TimeRange, ...]:
    """Runs of matched rows, for rows already sorted by time."""
    runs = []
    start = None
    for row, hit in enumerate(matched.tolist()):
        if hit and start is None:
            start = row
        elif not hit and start is not None:
            runs.append(TimeRange(times[start], times[row - 1]))
            start = None
    if start is not None:
        runs.append(TimeRange(times[start], times[len(matched) - 1]))
    return tuple(runs)


def _check_match_options(threshold: int, query_match_pct: float, bank_match_pct: float) -> None:
    if not 0 <= threshold <= 256:
        raise InvalidArgument(f"threshold must be between 0 and 256, not {threshold!r}")
    for label, pct in (("query", query_match_pct), ("bank", bank_match_pct)):
        if not 0 <= pct <= 100:
            raise InvalidArgument(f"{label} match percentage must be 0-100, not {pct!r}")


def match_videos(
    query_frames: Sequence[VpdqFrame],
    bank_frames: Sequence[VpdqFrame],
    *,
    threshold: int = VPDQ_DISTANCE_THRESHOLD,
    query_match_pct: float = VPDQ_QUERY_MATCH_PCT,
    bank_match_pct: float = VPDQ_BANK_MATCH_PCT,
    min_quality: int = VPDQ_QUALITY_THRESHOLD,
) -> VideoMatch:
    """Compare two vPDQ hashes by brute force (exact; :class:`VideoIndex` for many videos)."""
    _check_match_options(threshold, query_match_pct, bank_match_pct)
    query = dedupe_frames(query_frames, min_quality=min_quality)
    bank = dedupe_frames(bank_frames, min_quality=min_quality)
    if not query or not bank:
        return VideoMatch(0.0, 0.0, (), (), False, len(query), len(bank))
    query_words, query_owner = _variants(query)
    bank_words, bank_owner = _variants(bank)
    query_hit = np.zeros(len(query_words), dtype=bool)
    bank_hit = np.zeros(len(bank_words), dtype=bool)
    rows = max(1, (1 << 20) // len(bank_words))  # ~32 MB of XORs at a time
    for first in range(0, len(query_words), rows):
        block = query_words[first : first + rows]
        distances = np.bitwise_count(block[:, None, :] ^ bank_words[None, :, :]).sum(axis=2)
        near = distances <= threshold
        query_hit[first : first + rows] = near.any(axis=1)
        bank_hit |= near.any(axis=0)
    query_hit = np.bincount(query_owner, weights=query_hit, minlength=len(query)) > 0
    bank_hit = np.bincount(bank_owner, weights=bank_hit, minlength=len(bank)) > 0
    query_matched = {f.pdq for f, hit in zip(query, query_hit, strict=True) if hit}
    bank_matched = {f.pdq for f, hit in zip(bank, bank_hit, strict=True) if hit}
    return _result(
        (len(query_matched), len(query)),
        (len(bank_matched), len(bank)),
        _ranges(query_frames, query_matched, min_quality),
        _ranges(bank_frames, bank_matched, min_quality),
        (query_match_pct, bank_match_pct),
    )


def _result(
    query: tuple[int, int],
    bank: tuple[int, int],
    query_ranges: tuple[TimeRange, ...],
    bank_ranges: tuple[TimeRange, ...],
    thresholds: tuple[float, float],
) -> VideoMatch:
    """``query`` and ``bank`` are (matched, usable) frame counts."""
    query_pct = 100.0 * query[0] / query[1]
    bank_pct = 100.0 * bank[0] / bank[1]
    return VideoMatch(
        query_pct=query_pct,
        bank_pct=bank_pct,
        matched_ranges=query_ranges,
        bank_ranges=bank_ranges,
        is_match=query[0] > 0 and query_pct >= thresholds[0] and bank_pct >= thresholds[1],
        query_frames=query[1],
        bank_frames=bank[1],
    )


@dataclass(frozen=True, slots=True)
class VideoHit:
    video: int
    """The key the bank video was added under (e.g. the store's entry id)."""
    match: VideoMatch
    distance: int = 0
    """The smallest PDQ distance between a query frame and a frame of this video."""


class VideoIndex:
    """The usable frames of many bank videos in one :class:`~ncii.index.HammingIndex`, so a
    query video is compared with all of them in one range search per frame.

    Each frame hash (plain and unbarred) is a row keyed by its position; arrays map rows to
    frames and frames to their video and timestamp. Only what matching uses is kept: frames of
    quality ≥ ``min_quality``, each distinct hash once per video.
    """

    def __init__(self, *, min_quality: int = VPDQ_QUALITY_THRESHOLD) -> None:
        self.min_quality = min_quality
        self._index = HammingIndex(256)
        self._row_frame = array("q")
        self._owner = array("q")
        self._times = array("d")
        self._videos: dict[int, tuple[int, int]] = {}
        self._disabled: set[int] = set()

    def add(self, video: int, frames: Iterable[VpdqFrame]) -> int:
        """Index one bank video's frames under ``video``; returns how many rows it added."""
        return self.add_many([(video, frames)])

    def add_many(self, videos: Iterable[tuple[int, Iterable[VpdqFrame]]]) -> int:
        """Index many bank videos at once (one index insertion: the fast way to load a
        bank); returns how many frames they added."""
        words: list[np.ndarray] = []
        added = 0
        for video, frames in videos:
            if video in self._videos:
                raise InvalidArgument(f"video {video} is already indexed")
            usable = sorted(
                dedupe_frames(frames, min_quality=self.min_quality),
                key=lambda f: (f.timestamp, f.index),
            )
            first = len(self._owner)
            self._videos[int(video)] = (first, len(usable))
            if usable:
                video_words, frame_of = _variants(usable)
                words.append(video_words)
                self._row_frame.extend((frame_of + first).tolist())
                self._owner.extend([int(video)] * len(usable))
                self._times.extend(f.timestamp for f in usable)
                added += len(usable)
        if words:
            stacked = np.concatenate(words)
            row = len(self._row_frame) - len(stacked)
            self._index.add_words(stacked, np.arange(row, row + len(stacked), dtype=np.int64))
        return added

    def set_active(self, video: int, active: bool) -> None:
        """Leave a video out of results (or bring it back) without rebuilding anything."""
        if video not in self._videos:
            raise InvalidArgument(f"video {video} is not indexed")
        (self._disabled.discard if active else self._disabled.add)(video)

    def compact(self) -> None:
        self._index.compact()

    def __len__(self) -> int:
        return len(self._videos)

    def __contains__(self, video: object) -> bool:
        return video in self._videos

    @property
    def frame_count(self) -> int:
        return len(self._owner)

    def search(
        self,
        query_frames: Sequence[VpdqFrame],
        *,
        threshold: int = VPDQ_DISTANCE_THRESHOLD,
        query_match_pct: float = VPDQ_QUERY_MATCH_PCT,
        bank_match_pct: float = VPDQ_BANK_MATCH_PCT,
        candidates: bool = False,
    ) -> list[VideoHit]:
        """Bank videos the query matches, best first (highest query then bank percentage).

        ``candidates=True`` also returns videos that share frames but miss a percentage.
        """
        _check_match_options(threshold, query_match_pct, bank_match_pct)
        query = dedupe_frames(query_frames, min_quality=self.min_quality)
        if not query or not self._owner:
            return []
        words, query_of = _variants(query)
        hits = self._index.search_words(words, threshold)
        if not hits:
            return []
        raw = np.array([(h.query, h.key, h.distance) for h in hits], dtype=np.int64)
        row_frame = np.frombuffer(self._row_frame, dtype=np.int64)
        pairs = np.stack([query_of[raw[:, 0]], row_frame[raw[:, 1]]], axis=1)
        owners = np.frombuffer(self._owner, dtype=np.int64)[pairs[:, 1]]
        order = np.argsort(owners, kind="stable")
        videos, starts = np.unique(owners[order], return_index=True)
        closest = np.minimum.reduceat(raw[order, 2], starts).tolist()
        results = []
        for video, mine, distance in zip(
            videos.tolist(), np.split(pairs[order], starts[1:]), closest, strict=True
        ):
            if video in self._disabled:
                continue
            first, count = self._videos[video]
            query_rows = np.unique(mine[:, 0])
            bank_rows = np.unique(mine[:, 1])
            # Cheap test first: most candidates share a frame or two and miss the percentages.
            query_pct = 100.0 * len(query_rows) / len(query)
            if not candidates and query_pct < query_match_pct:
                continue
            matched = np.zeros(count, dtype=bool)
            matched[bank_rows - first] = True
            match = _result(
                (len(query_rows), len(query)),
                (len(bank_rows), count),
                _ranges(
                    query_frames, {query[q].pdq for q in query_rows.tolist()}, self.min_quality
                ),
                _row_ranges(self._times[first : first + count], matched),
                (query_match_pct, bank_match_pct),
            )
            if match.is_match or candidates:
                results.append(VideoHit(video, match, int(distance)))
        results.sort(key=lambda h: (-h.match.query_pct, -h.match.bank_pct, h.video))
        return results
