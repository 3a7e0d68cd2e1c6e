"""Bytes → sampled video frames as 8-bit RGB, ready for vPDQ. No hashing here.

Videos are decoded with PyAV (its wheels carry FFmpeg, so no system ``ffmpeg`` is needed) from
an in-memory buffer: nothing is written to disk. Animated GIF, PNG and WebP take the same path
through Pillow (FFmpeg cannot decode animated WebP; Pillow is also what the image path uses for
their first frame). The choices below are documented in ``docs/hashing.md`` ("Video"):

* **Detected by content, not by name**: :func:`sniff` reads magic numbers, and the demuxer is
  then forced to the sniffed one, so FFmpeg never guesses (it would read a text file as ANSI
  art, or a JPEG as a one-frame video).
* **Full resolution, like Meta's vPDQ**: frames are converted to RGB24 at their decoded size
  and PDQ's own filter does the downsampling. Shrinking to 512 px first, as the image path
  does, drifts 7-10 bits from Meta's reference hashes and fails 25% of the frames of
  ``test-padded-dimensions.mp4``; full resolution is within 1-2 bits on average.
* **Sampled by presentation time**: one frame every ``every`` seconds (the first frame at or
  after each multiple), or every frame when ``every == 0``. Timestamps count from the first
  frame; a stream whose clock jumps backwards is re-based so it never stops being sampled.
* **Only what the samples need is decoded**: in MP4, MOV and Matroska/WebM, for
  H.264, HEVC, VP8, VP9 and AV1, the packets' timestamps number and time every frame before
  any is decoded (:class:`_Plan`); the frames after the last sample of a keyframe group, and
  those no other frame refers to, are never decoded (half the frames or more of H.264 sampled
  once a second). The frames, numbers and times are those of decoding every frame; when the
  decoder hands over a frame the plan did not expect, the video is decoded again in full.
* **Static overlays found, not removed**: :class:`OverlayFinder` looks at one frame a second of
  the first :data:`OVERLAY_WINDOW` seconds for pixels that stay put while the picture moves
  (a logo, a watermark); :class:`Overlay` says how to paint them over with the picture around
  them. The frames themselves are left as decoded: vPDQ hashes them as they are and hashes
  the painted picture besides.
* **Bounded**: the pixel count of a frame is checked before decoding (and by the decoder),
  and decoding stops with :class:`~ncii.errors.MediaTooLarge` after ``max_frames`` frames or
  ``max_seconds`` of wall time. A file whose streams end well before the duration its header
  declares is refused as truncated.
"""

from __future__ import annotations

import io
import math
import struct
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import accumulate as running
from typing import TypeVar

import av
import numpy as np
from PIL import Image

from ncii.errors import EmptyMedia, InvalidArgument, MediaError, MediaTooLarge, VideoError
from ncii.media import to_rgb8

DEFAULT_MAX_FRAMES = 500_000
"""Decoded frames (sampled or not): 4.6 hours at 30 frames per second."""

DEFAULT_MAX_SECONDS = 600.0
"""Wall-clock time for opening and decoding one video."""

DEFAULT_MAX_PIXELS = 7680 * 4320
"""Pixels in one frame: 8K UHD."""

DEFAULT_MAX_DECODED_PIXELS = 250_000_000_000
"""Pixels decoded from one video by FFmpeg (width × height × every frame decoded, sampled or
not): an hour of 1080p at 30 frames a second is 224 G. A header declaring more is refused
before any frame is decoded; otherwise decoding stops when the count passes it. See
``docs/robustness.md`` for what it costs to reach."""

DEFAULT_MAX_ANIMATION_PIXELS = 2_000_000_000
"""Pixels decoded from one animated GIF, PNG or WebP: Pillow draws every frame on the whole
canvas, ~10x slower per pixel than FFmpeg, so far fewer than a video's. 1,000 frames of
1920×1080 fit; a 115 KB GIF of 5,000 frames at 7680×4320 (166 G) is refused unread."""

MIN_SIDE = 5
"""PDQ (and vPDQ) cannot hash a frame narrower or shorter than this."""

TRUNCATION_RATIO = 0.8
TRUNCATION_SECONDS = 1.0
"""A file whose packets span less than 80% of the duration its header declares, and more than
a second less, is truncated or lies about its length."""

_GIF_MIN_DELAY_MS = 20
_GIF_DEFAULT_DELAY_MS = 100
"""Browsers play a GIF frame delay under 20 ms as 100 ms; so does ncii's timeline."""

_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """Bounds on the work one video may cost; exceeding one raises ``MediaTooLarge``."""

    max_frames: int = DEFAULT_MAX_FRAMES
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_pixels: int = DEFAULT_MAX_PIXELS
    """In one frame."""
    max_decoded_pixels: int = DEFAULT_MAX_DECODED_PIXELS
    """Over all decoded frames of a video (width × height × frames)."""
    max_animation_pixels: int = DEFAULT_MAX_ANIMATION_PIXELS
    """Over all frames of an animated GIF, PNG or WebP (canvas × frames)."""


@dataclass(frozen=True, slots=True)
class Container:
    """What :func:`sniff` recognised: a kind, the demuxer that reads it, and a media type."""

    kind: str
    """e.g. ``mp4``, ``webm``, ``avi``, ``gif`` (animated), ``wav`` (audio, refused later)."""
    demuxer: str | None
    """The FFmpeg demuxer to force, or ``None`` for animations decoded by Pillow."""
    media_type: str


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container says about its video stream, before any frame is decoded."""

    media_type: str
    container: str
    codec: str
    width: int
    height: int
    frame_rate: float | None
    """Average frames per second as the container declares it."""
    declared_duration: float | None
    """Seconds, as the header declares them; unchecked until the stream has been decoded."""


@dataclass(frozen=True, slots=True)
class VideoFrame:
    index: int
    """Position among all decoded frames, from 0 (vPDQ's frame number)."""
    timestamp: float
    """Seconds from the first frame."""
    rgb: np.ndarray
    """(height, width, 3) uint8, full resolution."""
    sampled: bool = True
    """False for a frame only ``look``-ed at (see :meth:`Video.frames`), not to be hashed."""


# -- letterbox and pillarbox bars -----------------------------------------------------------

BAR_FLATNESS = 6.0
"""A border row or column is a bar when its green samples vary by at most this (std. dev.)."""

BAR_MIN_SHARE = 0.04
"""Bars thinner than this share of the side, on both edges together, are not cropped."""


def find_bars(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (top, bottom, left, right; Python slice bounds) inside uniform bars along the
    edges of a frame, or ``None`` when there are none worth cropping.

    Bars of any uniform colour count (black letterboxing, grey or white pillarboxing); the
    test runs on every second row and fourth column, so it costs far less than hashing.
    """
    height, width = rgb.shape[:2]
    sample = rgb[::2, ::4, 1].astype(np.float32)
    top, bottom = _flat_edges(sample.std(axis=1), sample.shape[0])
    left, right = _flat_edges(sample.std(axis=0), sample.shape[1])
    box = (
        min(top * 2, height),
        max(height - bottom * 2, 0),
        min(left * 4, width),
        max(width - right * 4, 0),
    )
    cropped_height, cropped_width = box[1] - box[0], box[3] - box[2]
    if cropped_height < max(MIN_SIDE, height // 4) or cropped_width < max(MIN_SIDE, width // 4):
        return None  # a flat or nearly flat frame: nothing inside the "bars"
    if height - cropped_height < BAR_MIN_SHARE * height and width - cropped_width < (
        BAR_MIN_SHARE * width
    ):
        return None
    return box


def _flat_edges(spread: np.ndarray, length: int) -> tuple[int, int]:
    flat = spread <= BAR_FLATNESS
    leading = int(np.argmin(flat)) if not flat.all() else length
    trailing = int(np.argmin(flat[::-1])) if not flat.all() else length
    return leading, trailing


# -- static overlays: logos and watermarks ----------------------------------------------------

OVERLAY_WINDOW = 16.0
"""Seconds from the start of a video in which a static overlay is looked for."""

OVERLAY_MIN_FRAMES = 6
"""Frames (one a second) it takes to tell an overlay from a picture that holds still."""

OVERLAY_STATIC = 6.0
"""A pixel is static when its luma varies by at most this (std. dev., 0-255) over the frames."""

OVERLAY_MOVING = 10.0
OVERLAY_MIN_MOVING = 0.75
"""Only a picture that moves can show what stays put on top of it: at least this share of its
pixels must vary by more than ``OVERLAY_MOVING``, or no overlay is looked for."""

OVERLAY_EDGE = 6.0
"""Luma gradient (per pixel) of the mean frame that marks the outline of an overlay."""

OVERLAY_MIN_SHARE = 5e-4
OVERLAY_MAX_SHARE = 0.2
"""Overlays cover this share of the picture at least (outline pixels) and at most (painted
pixels); more is a still camera or a frame around the picture, not an overlay."""

_OVERLAY_SIDE = 480
_OVERLAY_NEAR = 3
_OVERLAY_GROW = 2
_OVERLAY_SIGMA = 3.0
_OVERLAY_EDGE_MARGIN = 4
"""For a frame whose shorter side is ``_OVERLAY_SIDE`` pixels (scaled with it): static pixels
this near an outline pixel are overlay, the overlay is grown by this to take in its
anti-aliased edge, and painted over from the picture around it with a Gaussian of this
standard deviation; no outline is looked for this near the picture's edge (the blurred edge
of the bars stays put too)."""

_OVERLAY_GRID_PIXELS = 2_100_000
"""Frames larger than this (above 1080p) are looked at shrunk by a whole factor."""

_OVERLAY_PASSES = 4
"""Wider and wider Gaussians (each twice the last) fill what the narrower could not reach."""

_LUMA = (np.float32(0.299), np.float32(0.587), np.float32(0.114))


def luma(rgb: np.ndarray) -> np.ndarray:
    """PDQ's luma of an (h, w, 3) uint8 frame, as float32."""
    red, green, blue = _LUMA
    return red * rgb[..., 0] + green * rgb[..., 1] + blue * rgb[..., 2]


def accumulate(
    rgb: np.ndarray, first: np.ndarray, total: np.ndarray, squares: np.ndarray, rounded: np.ndarray
) -> None:
    """Add a frame to :class:`OverlayFinder`'s sums: its luma's change from ``first`` to
    ``total``, the change squared to ``squares``; and its luma rounded into ``rounded``
    (uint8). ``ncii.signals._vpdq_kernel.accumulate`` is the same in one compiled pass."""
    plane = luma(rgb)
    rounded[...] = np.rint(plane)
    plane -= first
    total += plane
    plane *= plane
    squares += plane


class OverlayFinder:
    """Finds a static overlay (a logo, a watermark, a channel bug) in the first seconds of a
    video: pixels that keep their value while the picture around them moves, along the
    outlines of the mean frame. Offer it the hashed frames in order; :meth:`result` then
    gives the :class:`Overlay`, or ``None``.

    It looks at one frame a second (the first at or after each whole second, the frames a
    query hashed once a second has too), so a video hashed every frame and the same video
    hashed once a second find the same overlay. Memory: three float32 planes of one frame.
    """

    def __init__(
        self,
        window: float = OVERLAY_WINDOW,
        *,
        to_luma: Callable[[np.ndarray], np.ndarray] = luma,
        add: Callable[..., None] = accumulate,
    ) -> None:
        """``to_luma`` and ``add``: :func:`luma` and :func:`accumulate`, or compiled equals
        (the same floats, faster)."""
        self.window = window
        self._luma = to_luma
        self._add = add
        self.frames = 0
        self._next = 0.0
        self._shape: tuple[int, ...] | None = None
        self._factor = 1
        self._first: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._squares: np.ndarray | None = None
        self._boxes: list[tuple[int, int, int, int]] = []
        self._broken = False

    def offer(
        self, rgb: np.ndarray, timestamp: float, box: tuple[int, int, int, int] | None
    ) -> np.ndarray | None:
        """One hashed frame and its bars (:func:`find_bars`); frames between the whole
        seconds, and after the window, are ignored. Returns the frame's luma rounded to uint8
        when it was looked at full size, else ``None``."""
        if self._broken or timestamp >= self.window or timestamp + _EPSILON < self._next:
            return None
        self._next = math.floor(timestamp + _EPSILON) + 1.0
        height, width = rgb.shape[:2]
        if self._shape is None:
            self._shape = rgb.shape
            self._factor = max(1, math.ceil(math.sqrt(height * width / _OVERLAY_GRID_PIXELS)))
        elif rgb.shape != self._shape:
            self._broken = True  # the size changed: no one overlay fits every frame
            return None
        box = box or (0, height, 0, width)
        rounded = None
        if self._first is None:
            self._first = self._plane(rgb)
            self._sum = np.zeros_like(self._first)
            self._squares = np.zeros_like(self._first)
            if self._factor == 1:
                rounded = np.rint(self._first).astype(np.uint8)
        else:
            assert self._sum is not None and self._squares is not None
            if self._factor == 1:
                rounded = np.empty((height, width), dtype=np.uint8)
                self._add(np.ascontiguousarray(rgb), self._first, self._sum, self._squares, rounded)
            else:
                change = self._plane(rgb) - self._first
                self._sum += change
                self._squares += change * change
        self._boxes.append(box)
        self.frames += 1
        return rounded

    def _plane(self, rgb: np.ndarray) -> np.ndarray:
        k = self._factor
        if k == 1:
            return self._luma(rgb)
        height, width = (rgb.shape[0] // k) * k, (rgb.shape[1] // k) * k
        plane = self._luma(np.ascontiguousarray(rgb[:height, :width]))
        return plane.reshape(height // k, k, width // k, k).mean(axis=(1, 3), dtype=np.float32)

    def result(self) -> Overlay | None:
        """The overlay the frames offered so far show, or ``None``."""
        if self._broken or self.frames < OVERLAY_MIN_FRAMES:
            return None
        assert self._shape is not None and self._boxes
        assert self._first is not None and self._sum is not None and self._squares is not None
        k = self._factor
        mean_change = self._sum / self.frames
        spread = np.sqrt(np.maximum(self._squares / self.frames - mean_change**2, 0))
        # The picture inside the bars: each side where most frames put it (a fade from black
        # or a dark edge moves a few frames' bars), on this grid.
        box = [sorted(side)[len(side) // 2] for side in zip(*self._boxes, strict=True)]
        top, bottom = -(-box[0] // k), box[1] // k
        left, right = -(-box[2] // k), box[3] // k
        if bottom - top < 8 or right - left < 8:
            return None
        inside = np.zeros(spread.shape, dtype=bool)
        inside[top:bottom, left:right] = True
        picture = spread[top:bottom, left:right]
        if np.count_nonzero(picture > OVERLAY_MOVING) < OVERLAY_MIN_MOVING * picture.size:
            return None
        static = (spread <= OVERLAY_STATIC) & inside
        if np.count_nonzero(static) < max(1.0, OVERLAY_MIN_SHARE * picture.size):
            return None
        rows, columns = np.gradient(self._first + mean_change)
        outline = static & (np.hypot(rows, columns) > OVERLAY_EDGE)
        scale = min(self._shape[:2]) / _OVERLAY_SIDE
        edge = max(2, round(_OVERLAY_EDGE_MARGIN * scale / k))  # the bars' edge is no outline
        outline[: top + edge] = outline[bottom - edge :] = False
        outline[:, : left + edge] = outline[:, right - edge :] = False
        if np.count_nonzero(outline) < max(1.0, OVERLAY_MIN_SHARE * picture.size):
            return None
        near = max(1, round(_OVERLAY_NEAR * scale / k))
        grow = max(1, round(_OVERLAY_GROW * scale / k))
        mask = _dilate(static & _dilate(outline, near), grow)
        from scipy import ndimage  # only for videos with an overlay candidate

        mask |= ndimage.binary_fill_holes(mask) & static  # the inside of a solid logo
        mask &= inside
        if np.count_nonzero(mask) > OVERLAY_MAX_SHARE * picture.size:
            return None
        if k > 1:
            mask = np.repeat(np.repeat(mask, k, axis=0), k, axis=1)
            full = np.zeros(self._shape[:2], dtype=bool)
            full[: mask.shape[0], : mask.shape[1]] = mask
            mask = full
        return Overlay(mask, _OVERLAY_SIGMA * scale, to_luma=self._luma)


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels (4-connected, as ``scipy.ndimage.binary_dilation``
    with ``iterations=steps``)."""
    grown = mask.copy()
    for _ in range(steps):
        before = grown.copy()
        grown[1:] |= before[:-1]
        grown[:-1] |= before[1:]
        grown[:, 1:] |= before[:, :-1]
        grown[:, :-1] |= before[:, 1:]
    return grown


@dataclass(frozen=True, slots=True)
class _Fill:
    """How the overlay inside one crop is painted: its region and the Gaussian passes."""

    top: int
    left: int
    bottom: int
    right: int
    valid: np.ndarray
    """float32, 1 where the region shows picture (not overlay)."""
    passes: tuple[tuple[int, float, np.ndarray, np.ndarray, np.ndarray], ...]
    """(step, sigma in cells, the overlay pixels this pass fills, their cells (flat indices),
    the Gaussian weight of picture there). Each pass averages the picture over step × step
    cells first (about half its sigma): the fill is smooth at that scale anyway, and the
    Gaussian then costs the same at any frame size."""
    rest: np.ndarray | None
    """Overlay pixels no pass reached (filled with the region's mean picture)."""


class Overlay:
    """A static overlay found by :class:`OverlayFinder`: which pixels it covers, and how to
    paint them over with the picture around them (normalised Gaussian convolution)."""

    def __init__(
        self,
        mask: np.ndarray,
        sigma: float,
        *,
        to_luma: Callable[[np.ndarray], np.ndarray] = luma,
    ) -> None:
        self._luma = to_luma
        self.mask = mask
        """(height, width) bool, True on the overlay."""
        self.sigma = sigma
        self._fills: dict[tuple[int, int, int, int], _Fill | None] = {}

    @property
    def share(self) -> float:
        """Share of the frame the overlay covers."""
        return float(np.count_nonzero(self.mask)) / self.mask.size

    def change(
        self, pixels: np.ndarray, box: tuple[int, int, int, int] | None = None
    ) -> tuple[int, int, np.ndarray] | None:
        """How painting the overlay over changes the luma of ``pixels[box]`` (the whole frame
        when ``box`` is ``None``): ``(top, left, delta)``, ``delta`` a float32 region of the
        crop at that offset, zero off the overlay. ``None`` when the overlay is not in the
        crop (or the frame is not the size it was found in).

        ``pixels`` is the (h, w, 3) RGB frame or its luma rounded to uint8 (what
        :meth:`OverlayFinder.offer` returns): the fill is computed from the rounded luma
        either way, so both give the same hash."""
        if pixels.shape[:2] != self.mask.shape:
            return None
        box = box or (0, pixels.shape[0], 0, pixels.shape[1])
        if box not in self._fills:
            if len(self._fills) > 16:
                self._fills.clear()
            self._fills[box] = self._plan(self.mask[box[0] : box[1], box[2] : box[3]])
        fill = self._fills[box]
        if fill is None:
            return None
        from scipy import ndimage

        region = pixels[
            box[0] + fill.top : box[0] + fill.bottom, box[2] + fill.left : box[2] + fill.right
        ]
        if region.ndim == 3:
            region = np.rint(self._luma(np.ascontiguousarray(region)))
        plane = region.astype(np.float32)
        picture = plane * fill.valid
        delta = np.zeros_like(plane)
        for step, sigma, where, cells, weight in fill.passes:
            blurred = ndimage.gaussian_filter(
                _cells(picture, step), sigma, mode="constant", truncate=3.0
            )
            delta[where] = blurred.ravel()[cells] / weight - plane[where]
        if fill.rest is not None:
            delta[fill.rest] = picture.sum() / max(float(fill.valid.sum()), 1.0) - plane[fill.rest]
        return fill.top, fill.left, delta

    def _plan(self, mask: np.ndarray) -> _Fill | None:
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return None
        columns = np.flatnonzero(mask.any(axis=0))
        margin = math.ceil(3 * self.sigma)
        top, bottom = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, mask.shape[0])
        left = max(int(columns[0]) - margin, 0)
        right = min(int(columns[-1]) + 1 + margin, mask.shape[1])
        region = mask[top:bottom, left:right]
        valid = (~region).astype(np.float32)
        pixel_rows, pixel_columns = np.nonzero(region)
        from scipy import ndimage

        passes = []
        todo = region.copy()
        sigma = self.sigma
        for _ in range(_OVERLAY_PASSES):
            step = max(1, int(sigma / 2))
            counts = _cells(valid, step)
            weight = ndimage.gaussian_filter(counts, sigma / step, mode="constant", truncate=3.0)
            cell_of = (pixel_rows // step) * counts.shape[1] + pixel_columns // step
            reached = (weight.ravel()[cell_of] > 1e-3 * step * step) & todo[
                pixel_rows, pixel_columns
            ]
            if reached.any():
                where = np.zeros_like(region)
                where[pixel_rows[reached], pixel_columns[reached]] = True
                cells = cell_of[reached]
                # ``delta[where]`` lists the pixels in row-major order, as ``np.nonzero`` does.
                passes.append((step, sigma / step, where, cells, weight.ravel()[cells]))
                todo &= ~where
            if not todo.any():
                break
            sigma *= 2
        rest = todo if todo.any() else None
        return _Fill(top, left, bottom, right, valid, tuple(passes), rest)


def _cells(picture: np.ndarray, step: int) -> np.ndarray:
    """``picture`` summed over step × step cells (the last ones partly outside it)."""
    if step == 1:
        return picture
    height, width = -(-picture.shape[0] // step), -(-picture.shape[1] // step)
    padded = np.zeros((height * step, width * step), dtype=np.float32)
    padded[: picture.shape[0], : picture.shape[1]] = picture
    return padded.reshape(height, step, width, step).sum(axis=(1, 3), dtype=np.float32)


# -- content sniffing -------------------------------------------------------------------------

_IMAGE_BRANDS = {
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
    b"mif1", b"msf1", b"avif", b"avis", b"avio", b"crx ", b"jpeg", b"jxl ",
}  # fmt: skip
"""ISO-BMFF major brands of still images and image sequences: the image path decodes them."""

_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def sniff(data: bytes) -> Container | None:
    """The video container (or animation, or audio file) these bytes are, from their magic
    numbers; ``None`` for anything else, images included (still GIF/PNG/WebP, HEIC, AVIF).

    Audio containers are recognised so that the video path can refuse them precisely ("audio
    only") instead of the image path calling them "not an image".
    """
    head = data[:64]
    if len(head) < 12:
        return None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return Container("quicktime", "mov", "video/quicktime")
        if brand in (b"M4A ", b"M4B "):
            return Container("m4a", "mov", "audio/mp4")
        return Container("mp4", "mov", "video/mp4")
    if head[4:8] in _QUICKTIME_ATOMS and struct.unpack(">I", head[:4])[0] >= 8:
        return Container("quicktime", "mov", "video/quicktime")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        if b"webm" in head:
            return Container("webm", "matroska", "video/webm")
        return Container("matroska", "matroska", "video/x-matroska")
    if head[:4] == b"RIFF":
        form = head[8:12]
        if form in (b"AVI ", b"AVIX"):
            return Container("avi", "avi", "video/x-msvideo")
        if form == b"WAVE":
            return Container("wav", "wav", "audio/wav")
        if form == b"WEBP" and head[12:16] == b"VP8X" and len(head) > 20 and head[20] & 0x02:
            return Container("webp", None, "image/webp")
        return None
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Container("gif", None, "image/gif") if _gif_is_animated(data) else None
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return Container("apng", None, "image/apng") if _png_is_animated(data) else None
    if head[:4] == b"FLV\x01":
        return Container("flv", "flv", "video/x-flv")
    if head[:16] == _ASF_GUID:
        return Container("asf", "asf", "video/x-ms-asf")
    if head[:4] == b"OggS":
        return Container("ogg", "ogg", "video/ogg")
    if head[:4] == b"\x00\x00\x01\xba":
        return Container("mpegps", "mpeg", "video/mpeg")
    if head[:4] == b"\x00\x00\x01\xb3":
        return Container("mpegvideo", "mpegvideo", "video/mpeg")
    if _is_transport_stream(data):
        return Container("mpegts", "mpegts", "video/mp2t")
    if head[:4] == b"fLaC":
        return Container("flac", "flac", "audio/flac")
    if head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        if head[:3] != b"ID3" and head[1] & 0x06 == 0:
            return Container("aac", "aac", "audio/aac")
        return Container("mp3", "mp3", "audio/mpeg")
    return None


def is_video(data: bytes) -> bool:
    """True when these bytes belong on the video path: a video container, an animated GIF,
    PNG or WebP, or an audio file (which the video path refuses as "audio only")."""
    return sniff(data) is not None


def _is_transport_stream(data: bytes) -> bool:
    for offset, size in ((0, 188), (4, 192)):
        positions = [offset + size * i for i in range(3)]
        if len(data) > positions[-1] and all(data[p] == 0x47 for p in positions):
            return True
    return False


def _gif_is_animated(data: bytes) -> bool:
    """Walk the GIF blocks until a second image descriptor (no pixel is decoded)."""
    try:
        flags = data[10]
        pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        images = 0
        while pos < len(data):
            block = data[pos]
            if block == 0x3B:  # trailer
                return False
            if block == 0x21:  # extension: label, then sub-blocks
                pos = _skip_sub_blocks(data, pos + 2)
            elif block == 0x2C:  # image descriptor
                images += 1
                if images > 1:
                    return True
                local = data[pos + 9]
                pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
                pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
            else:
                return False
    except IndexError:
        return False
    return False


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _png_is_animated(data: bytes) -> bool:
    """An ``acTL`` chunk announcing more than one frame before the first ``IDAT``."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"acTL" and length >= 8:
            return struct.unpack(">I", data[pos + 8 : pos + 12])[0] > 1
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


# -- decoding -------------------------------------------------------------------------------


class Video:
    """An open video or animation (from :func:`open_video`); iterate :meth:`frames` once."""

    def __init__(
        self,
        data: bytes,
        *,
        name: str,
        container: Container,
        limits: VideoLimits,
        threads: int,
    ) -> None:
        self.name = name
        self.limits = limits
        self._deadline = time.monotonic() + limits.max_seconds
        self._kind = container
        self._threads = threads
        self._av: av.container.InputContainer | None = None
        self._image: Image.Image | None = None
        self.decoded_frames = 0
        """Frames decoded so far (sampled or not)."""
        self.decoded_pixels = 0
        """Their pixels: width × height of each, summed."""
        self.skipped_frames = 0
        """Of those, frames never decoded because no sampled frame needs them (counted in
        ``decoded_frames`` all the same: it numbers the frames of the video)."""
        self.duration = 0.0
        """Seconds from the first decoded frame to the end of the last one."""
        try:
            if container.demuxer is None:
                self.info = self._open_animation(data)
            else:
                self.info = self._open_av(data, container.demuxer)
        except MediaError:
            self.close()
            raise
        except Exception as exc:  # hostile headers can surprise any layer below
            self.close()
            raise VideoError(f"{name}: corrupt {container.kind} ({_one_line(exc)})") from None

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._av is not None:
            self._av.close()
            self._av = None
        if self._image is not None:
            self._image.close()
            self._image = None

    # -- opening ----------------------------------------------------------------------------

    def _open_av(self, data: bytes, demuxer: str) -> VideoInfo:
        name = self.name
        # max_pixels also bounds the frames FFmpeg decodes to probe the streams, before ncii
        # sees their size (an H.264 SPS claiming 8192x8192 costs ~190 MB there otherwise).
        streams = self._probe(data, demuxer, {"max_pixels": str(self.limits.max_pixels)})
        if streams and streams[0].codec_context and not streams[0].codec_context.width:
            # A first frame over the limit can leave the size unknown (0x0) when only
            # decoding tells it: probe again unbounded (FFmpeg's own size limit still holds)
            # to refuse the file by its size, as before the bounded probe.
            self.close()
            streams = self._probe(data, demuxer, None)
        if not streams:
            audio = bool(self._av.streams.audio)
            self.close()
            raise VideoError(
                f"{name}: no video stream to hash" + (" (audio only)" if audio else "")
            )
        stream = streams[0]
        self._stream = stream
        codec = stream.codec_context
        if codec is None:
            self.close()
            raise VideoError(f"{name}: no decoder for its video codec")
        width, height = codec.width, codec.height
        self._check_size(width, height)
        codec.thread_count = self._threads
        codec.thread_type = "AUTO" if self._threads != 1 else "SLICE"
        codec.options = {"max_pixels": str(self.limits.max_pixels)}
        rate = stream.average_rate or stream.guessed_rate
        declared = self._av.duration / av.time_base if self._av.duration else None
        self._check_budget(width * height, stream.frames or 0, self.limits.max_decoded_pixels)
        return VideoInfo(
            media_type=self._kind.media_type,
            container=self._kind.kind,
            codec=codec.name,
            width=width,
            height=height,
            frame_rate=float(rate) if rate else None,
            declared_duration=declared,
        )

    def _probe(
        self, data: bytes, demuxer: str, options: dict[str, str] | None
    ) -> list[av.VideoStream]:
        """Open the container; its video streams, cover pictures left out."""
        try:
            self._av = av.open(
                io.BytesIO(data), format=demuxer, metadata_errors="replace", options=options
            )
        except av.FFmpegError as exc:
            raise VideoError(
                f"{self.name}: corrupt or truncated {self._kind.kind} ({_why(exc)})"
            ) from None
        return [
            s
            for s in self._av.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic)
        ]

    def _open_animation(self, data: bytes) -> VideoInfo:
        name = self.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                self._image = Image.open(io.BytesIO(data))
            except Image.DecompressionBombError:
                raise MediaTooLarge(f"{name}: animation too large to decode") from None
            except Exception as exc:  # Pillow plugins raise many types on hostile input
                raise VideoError(f"{name}: corrupt {self._kind.kind} ({_one_line(exc)})") from None
        width, height = self._image.size
        self._check_size(width, height)
        # Every frame is drawn on the whole canvas; the count comes from the frames' headers.
        frames = getattr(self._image, "n_frames", 1)
        self._check_budget(width * height, frames, self.limits.max_animation_pixels)
        return VideoInfo(
            media_type=self._kind.media_type,
            container=self._kind.kind,
            codec=self._kind.kind,
            width=width,
            height=height,
            frame_rate=None,
            declared_duration=None,
        )

    def _check_size(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            self.close()
            raise VideoError(f"{self.name}: no valid frame size in its header ({width}x{height})")
        if width * height > self.limits.max_pixels:
            self.close()
            raise MediaTooLarge(
                f"{self.name}: {width}x{height} frames are {width * height:,} pixels, over the "
                f"limit of {self.limits.max_pixels:,}"
            )
        if width < MIN_SIDE or height < MIN_SIDE:
            self.close()
            raise VideoError(
                f"{self.name}: {width}x{height} frames are too small to hash "
                f"(at least {MIN_SIDE}x{MIN_SIDE})"
            )

    def _check_budget(self, frame_pixels: int, frames: int, budget: int) -> None:
        """Refuse, before decoding anything, a file whose header declares more pixels than
        ``budget`` (frames × pixels per frame)."""
        if frames > 0 and frame_pixels * frames > budget:
            self.close()
            raise MediaTooLarge(
                f"{self.name}: {frames:,} frames of {frame_pixels:,} pixels are "
                f"{frames * frame_pixels:,} pixels to decode, over the limit of {budget:,} "
                "(possible decompression bomb)"
            )

    # -- frames -----------------------------------------------------------------------------

    def frames(
        self, every: float = 1.0, *, look: tuple[float, float] | None = None
    ) -> Iterator[VideoFrame]:
        """Decoded frames, one every ``every`` seconds of presentation time (``0``: all).

        ``look=(seconds, until)`` also yields, up to ``until`` seconds, the frames sampling
        every ``seconds`` would take that ``every`` does not, with ``sampled=False`` (the
        overlay search looks at one frame a second whatever the hashing interval).

        Sampling a video, only the frames the sampled ones need are decoded
        (:class:`_Plan`); the frames, numbers and times are those of decoding every frame.

        Raises ``VideoError`` for a corrupt or truncated stream and ``MediaTooLarge`` when a
        limit is reached; both name the input.
        """
        if not (every >= 0 and math.isfinite(every)):
            raise InvalidArgument(f"every must be a finite number of seconds >= 0, not {every!r}")
        choose = partial(_Choice, every, look)
        if self._av is None:
            source = _chosen(self._animation_frames(), choose())
        elif (
            every > 0
            and self._kind.demuxer in _PLANNED_DEMUXERS
            and self.info.codec in _PLANNED_CODECS
        ):
            source = self._planned_frames(choose)
        else:
            source = _chosen(self._av_frames(), choose())
        for index, timestamp, make_rgb, sampled in source:
            try:
                rgb = make_rgb()
            except MemoryError:
                raise MediaTooLarge(f"{self.name}: out of memory while decoding") from None
            except Exception as exc:  # a pixel format swscale cannot convert, …
                raise VideoError(
                    f"{self.name}: frame {index} cannot be converted to RGB ({_one_line(exc)})"
                ) from None
            yield VideoFrame(index, timestamp, rgb, sampled)

    def _count_frame(self, pixels: int, budget: int) -> int:
        """Count a decoded frame of ``pixels`` against the frame, pixel and time limits."""
        index = self.decoded_frames
        self.decoded_frames += 1
        self.decoded_pixels += pixels
        if self.decoded_frames > self.limits.max_frames:
            raise MediaTooLarge(
                f"{self.name}: more than {self.limits.max_frames:,} frames (the limit; raise it "
                "for longer videos)"
            )
        if self.decoded_pixels > budget:
            raise MediaTooLarge(
                f"{self.name}: more than {budget:,} pixels to decode after "
                f"{self.decoded_frames:,} frames (the limit; possible decompression bomb)"
            )
        self._check_time()
        return index

    def _check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise MediaTooLarge(
                f"{self.name}: decoding took longer than {self.limits.max_seconds:g} s "
                f"(stopped after {self.decoded_frames:,} frames)"
            )

    def _frame_step(self) -> float:
        rate = self._stream.average_rate or self._stream.guessed_rate
        return 1.0 / float(rate) if rate else 1.0 / 25

    def _av_frames(self) -> Iterator[tuple[int, float, _RgbMaker]]:
        """Every frame, decoded as it is demuxed."""
        span = _Span()
        yield from self._guarded(self._decoded(self._demuxed(span), _Timeline(self._frame_step())))
        self._check_complete(span)

    def _demuxed(self, span: _Span) -> Iterator[av.Packet]:
        """The video stream's packets in decoding order; ``span`` sees every stream's."""
        assert self._av is not None
        for packet in self._av.demux():
            self._check_time()
            span.add(packet)
            if packet.stream is self._stream:
                yield packet

    def _guarded(self, steps: Iterator[_T]) -> Iterator[_T]:
        """``steps``, with what FFmpeg or PyAV raise turned into this input's errors."""
        try:
            yield from steps
        except av.FFmpegError as exc:  # demuxing errors
            raise VideoError(
                f"{self.name}: corrupt or truncated video after {self.decoded_frames:,} frames "
                f"({_why(exc)})"
            ) from None
        except MemoryError:
            raise MediaTooLarge(f"{self.name}: out of memory while decoding") from None
        except (MediaError, _PlanBroken):
            raise
        except Exception as exc:  # PyAV on hostile streams (e.g. a stream appearing mid-file)
            raise VideoError(
                f"{self.name}: corrupt video after {self.decoded_frames:,} frames "
                f"({_one_line(exc)})"
            ) from None

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """The frames one packet completes (``None``: the decoder's last, at the end)."""
        try:
            if packet is None:
                return self._stream.codec_context.decode(None)
            return packet.decode()
        except av.FFmpegError as exc:
            raise VideoError(
                f"{self.name}: corrupt or truncated video stream after "
                f"{self.decoded_frames:,} frames ({_why(exc)})"
            ) from None

    def _decoded(
        self, packets: Iterable[av.Packet], timeline: _Timeline
    ) -> Iterator[tuple[int, float, _RgbMaker]]:
        """Every frame of ``packets`` (ending with the demuxer's empty flushing packets)."""
        max_pixels = self.limits.max_pixels
        budget = self.limits.max_decoded_pixels
        for packet in packets:
            for frame in self._decode(packet):
                index = self._count_frame(frame.width * frame.height, budget)
                if frame.width * frame.height > max_pixels:
                    raise MediaTooLarge(
                        f"{self.name}: frame {index} is {frame.width}x{frame.height}, over "
                        f"the limit of {max_pixels:,} pixels"
                    )
                timestamp = timeline.place(frame.time)
                self.duration = timestamp + timeline.step
                yield index, timestamp, _AvRgb(frame)

    def _check_complete(self, span: _Span) -> None:
        """Refuse a stream of which no frame decoded, or that ends well before its header
        says."""
        if self.decoded_frames == 0:
            raise VideoError(f"{self.name}: corrupt or truncated video (no frame could be decoded)")
        declared = self.info.declared_duration
        actual = span.seconds()
        if (
            declared is not None
            and actual is not None
            and actual < declared * TRUNCATION_RATIO
            and declared - actual > TRUNCATION_SECONDS
        ):
            raise VideoError(
                f"{self.name}: truncated, or its header lies about its length: it declares "
                f"{declared:.1f} s but its streams end after {actual:.1f} s"
            )

    def _planned_frames(
        self, choose: Callable[[], _Choice]
    ) -> Iterator[tuple[int, float, _RgbMaker, bool]]:
        """The chosen frames, decoding only what they need (:class:`_Plan`); every frame when
        the packets do not allow a plan, or the decoder does not follow it."""
        span = _Span()
        packets = self._kept_packets(span)
        plan = _Plan.build(packets, self._frame_step(), choose())
        last = -1
        if plan is not None:
            try:
                for item in self._guarded(self._follow(plan, packets)):
                    last = item[0]
                    yield item
            except _PlanBroken:
                pass
            else:
                self._check_complete(span)
                return
        # Decode everything again, from the first packet; what was yielded is not repeated.
        codec = self._stream.codec_context
        codec.flush_buffers()
        codec.skip_frame = "DEFAULT"
        self.decoded_frames = self.decoded_pixels = self.skipped_frames = 0
        choice = choose()
        frames = self._decoded(packets, _Timeline(self._frame_step()))
        for index, timestamp, make_rgb, sampled in _chosen(self._guarded(frames), choice):
            if index > last:
                yield index, timestamp, make_rgb, sampled
        self._check_complete(span)

    def _kept_packets(self, span: _Span) -> list[av.Packet]:
        """The video stream's packets, held (compressed) for the plan: no more than
        ``max_frames`` of them, so a file of millions of tiny packets is refused early."""
        packets: list[av.Packet] = []
        frames = 0
        for packet in self._guarded(self._demuxed(span)):
            frames += packet.size > 0
            if frames > self.limits.max_frames:
                raise MediaTooLarge(
                    f"{self.name}: more than {self.limits.max_frames:,} frames (the limit; "
                    "raise it for longer videos)"
                )
            packets.append(packet)
        return packets

    def _follow(
        self, plan: _Plan, packets: list[av.Packet]
    ) -> Iterator[tuple[int, float, _RgbMaker, bool]]:
        """Decode the packets the plan needs; raises :class:`_PlanBroken` when the decoder
        hands over a frame the plan did not expect, or misses one it needs."""
        codec = self._stream.codec_context
        skip = "DEFAULT"
        counter = _SlotCounter(self, plan)
        for position, packet in enumerate(packets):
            needed = plan.send.get(position)
            if needed is None:
                continue
            wanted = "DEFAULT" if needed else "NONREF"
            if wanted != skip:
                codec.skip_frame = skip = wanted
            for frame in self._decode(packet):
                yield from counter.place(frame)
        if skip != "DEFAULT":
            codec.skip_frame = "DEFAULT"
        for frame in self._decode(None):
            yield from counter.place(frame)
        counter.finish()

    def _animation_step(self, step: Callable[[], object], position: int) -> None:
        """Seek to or load a frame; errors become this input's (``EOFError`` ends it)."""
        try:
            step()
        except EOFError:
            raise
        except MemoryError:
            raise MediaTooLarge(f"{self.name}: out of memory while decoding") from None
        except Exception as exc:  # truncated data, bad chunks: all one kind for users
            raise VideoError(
                f"{self.name}: corrupt or truncated {self._kind.kind} at frame {position} "
                f"({_one_line(exc)})"
            ) from None

    def _animation_frames(self) -> Iterator[tuple[int, float, _RgbMaker]]:
        image = self._image
        assert image is not None
        elapsed_ms = 0.0
        position = 0
        canvas = image.size[0] * image.size[1]
        budget = self.limits.max_animation_pixels
        while True:
            try:
                self._animation_step(partial(image.seek, position), position)  # the header
            except EOFError:
                break
            if self.decoded_pixels + canvas > budget:  # the header's count can be wrong
                raise MediaTooLarge(
                    f"{self.name}: more than {budget:,} pixels to decode after {position:,} "
                    "frames (the limit; possible decompression bomb)"
                )
            self._animation_step(image.load, position)  # the pixels
            index = self._count_frame(canvas, budget)
            delay = image.info.get("duration") or 0
            if self._kind.kind == "gif" and delay < _GIF_MIN_DELAY_MS:
                delay = _GIF_DEFAULT_DELAY_MS
            timestamp = elapsed_ms / 1000
            elapsed_ms += max(float(delay), 0.0)
            self.duration = elapsed_ms / 1000
            yield index, timestamp, _PillowRgb(image)
            position += 1
        if self.decoded_frames == 0:
            raise VideoError(f"{self.name}: animation without frames")


class _AvRgb:
    """Converts a decoded frame to RGB only when it is sampled (most are not)."""

    __slots__ = ("frame",)

    def __init__(self, frame: av.VideoFrame) -> None:
        self.frame = frame

    def __call__(self) -> np.ndarray:
        # sws_scale at the decoded size, BT.601 unless the stream says otherwise, as vPDQ.
        return np.ascontiguousarray(self.frame.to_ndarray(format="rgb24"))


class _PillowRgb:
    __slots__ = ("image",)

    def __init__(self, image: Image.Image) -> None:
        self.image = image

    def __call__(self) -> np.ndarray:
        return np.asarray(to_rgb8(self.image), dtype=np.uint8)


_RgbMaker = _AvRgb | _PillowRgb


_T = TypeVar("_T")

_PLANNED_DEMUXERS = frozenset({"mov", "matroska"})
"""Containers whose packets carry true presentation timestamps, one frame each, so frames can
be numbered and timed before they are decoded. AVI (FFmpeg guesses its timestamps; packed
B-frames come out of order), MPEG-TS (broadcast H.264 may send the two fields of a frame as
two packets) and the rest decode every frame."""

_PLANNED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
"""Codecs whose packets are one frame each, shown at the packet's timestamp. MPEG-4 part 2
is not one of them: its "packed" B-frames (two frames in a packet, then an empty one) keep
AVI's guessed order even remuxed to Matroska, and come out of the decoder under other
timestamps than their packets'. Other codecs decode every frame."""


class _PlanBroken(Exception):
    """The decoder did not follow a :class:`_Plan`: decode every frame instead."""


class _Choice:
    """Whether :meth:`Video.frames` yields a frame: ``True`` sampled (every ``every``
    seconds), ``False`` only looked at (``look``), ``None`` neither. Called once per frame,
    in presentation order."""

    __slots__ = ("looker", "sampler", "until")

    def __init__(self, every: float, look: tuple[float, float] | None) -> None:
        self.sampler = _Sampler(every)
        self.looker, self.until = (_Sampler(look[0]), look[1]) if look is not None else (None, 0.0)

    def __call__(self, timestamp: float) -> bool | None:
        sampled = self.sampler.take(timestamp)
        looked = self.looker is not None and timestamp < self.until and self.looker.take(timestamp)
        return True if sampled else (False if looked else None)


def _chosen(
    frames: Iterable[tuple[int, float, _RgbMaker]], choice: _Choice
) -> Iterator[tuple[int, float, _RgbMaker, bool]]:
    for index, timestamp, make_rgb in frames:
        take = choice(timestamp)
        if take is not None:
            yield index, timestamp, make_rgb, take


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which packets to decode so that the chosen frames come out as decoding every frame
    gives them, from the packets' timestamps alone (no frame decoded).

    Frames are numbered and timed in presentation order (the packets sorted by timestamp).
    The packets are cut into groups at keyframes that nothing after them (in decoding order)
    is shown before: a group needs nothing from the groups before it. In each group, the
    packets up to the last one a chosen frame needs are decoded, the others not at all; of
    those decoded, the frames not chosen are skipped by the decoder when nothing refers to
    them (FFmpeg's ``skip_frame=NONREF``). The rest of a video sampled once a second (B-frames,
    the end of each group, whole groups between two samples) is never decoded.
    """

    slot_of: dict[int, int]
    """Presentation timestamp → frame number."""
    times: list[float]
    """Seconds from the first frame, by frame number (as :class:`_Timeline` places them)."""
    chosen: dict[int, bool]
    """Frame number → sampled (``True``) or only looked at (``False``)."""
    order: list[int]
    """The chosen frame numbers, in order."""
    send: dict[int, bool]
    """Position of each packet to decode → whether its own frame is chosen."""
    step: float

    @classmethod
    def build(cls, packets: list[av.Packet], step: float, choice: _Choice) -> _Plan | None:
        """The plan, or ``None`` when the packets do not allow one (no keyframe first, a
        missing or repeated timestamp, a packet the demuxer flags as corrupt)."""
        video = [(position, p) for position, p in enumerate(packets) if p.size > 0]
        if not video or not video[0][1].is_keyframe or video[0][1].time_base is None:
            return None
        if any(p.pts is None or p.is_corrupt for _, p in video):
            return None  # a cut file's last packet is flagged corrupt: decoding it says so
        shown = sorted((p.pts, position) for position, p in video if not p.is_discard)
        if not shown or len({pts for pts, _ in shown}) != len(shown):
            return None
        base = video[0][1].time_base
        timeline = _Timeline(step)
        times: list[float] = []
        chosen: dict[int, bool] = {}
        needed: set[int] = set()
        for slot, (pts, position) in enumerate(shown):
            # float(pts) * num / den, as PyAV's ``Frame.time``: the same float.
            times.append(timeline.place(float(pts) * base.numerator / base.denominator))
            take = choice(times[-1])
            if take is not None:
                chosen[slot] = take
                needed.add(position)
        slot_of = {pts: slot for slot, (pts, _) in enumerate(shown)}
        return cls(slot_of, times, chosen, sorted(chosen), _sends(video, needed), step)


def _sends(video: list[tuple[int, av.Packet]], needed: set[int]) -> dict[int, bool]:
    """Packets to decode (see :class:`_Plan`): position → whether its frame is needed."""
    lowest_after = list(running(reversed([p.pts for _, p in video]), min))[::-1]
    starts, highest = [0], -math.inf
    for k, (_, packet) in enumerate(video):
        if k and packet.is_keyframe and highest < lowest_after[k]:
            starts.append(k)
        highest = max(highest, packet.pts)
    send: dict[int, bool] = {}
    for first, end in zip(starts, [*starts[1:], len(video)], strict=True):
        group = video[first:end]
        last = max((k for k, (position, _) in enumerate(group) if position in needed), default=-1)
        for position, _ in group[: last + 1]:
            send[position] = position in needed
    return send


class _SlotCounter:
    """Numbers the frames a :class:`_Plan` decodes (and counts those it skips against the
    limits) as the decoder hands them over, checking they are the frames it expects."""

    __slots__ = ("budget", "next", "pending", "pixels", "plan", "position", "video")

    def __init__(self, video: Video, plan: _Plan) -> None:
        self.video = video
        self.plan = plan
        self.next = 0
        self.position = 0
        self.pending = plan.order[0] if plan.order else None
        self.pixels = video.info.width * video.info.height
        self.budget = video.limits.max_decoded_pixels

    def _skip_to(self, slot: int) -> None:
        while self.next < slot:
            self.video._count_frame(self.pixels, self.budget)
            self.video.skipped_frames += 1
            self.next += 1

    def place(self, frame: av.VideoFrame) -> Iterator[tuple[int, float, _RgbMaker, bool]]:
        slot = self.plan.slot_of.get(frame.pts) if frame.pts is not None else None
        if slot is None or slot < self.next or (self.pending is not None and self.pending < slot):
            raise _PlanBroken  # not a frame of the plan, out of order, or a chosen one missed
        self._skip_to(slot)
        pixels = frame.width * frame.height
        self.video._count_frame(pixels, self.budget)
        self.next += 1
        if pixels > self.video.limits.max_pixels:
            raise MediaTooLarge(
                f"{self.video.name}: frame {slot} is {frame.width}x{frame.height}, over the "
                f"limit of {self.video.limits.max_pixels:,} pixels"
            )
        if slot == self.pending:
            order = self.plan.order
            self.position += 1
            self.pending = order[self.position] if self.position < len(order) else None
            self.video.duration = self.plan.times[slot] + self.plan.step
            yield slot, self.plan.times[slot], _AvRgb(frame), self.plan.chosen[slot]

    def finish(self) -> None:
        if self.pending is not None:
            raise _PlanBroken
        self._skip_to(len(self.plan.times))
        self.video.duration = self.plan.times[-1] + self.plan.step


class _Sampler:
    """Take the first frame at or after each multiple of ``every`` seconds (all when 0)."""

    __slots__ = ("every", "next")

    def __init__(self, every: float) -> None:
        self.every = every
        self.next = 0.0

    def take(self, timestamp: float) -> bool:
        if self.every <= 0:
            return True
        if timestamp + _EPSILON < self.next:
            return False
        self.next = (math.floor(timestamp / self.every + _EPSILON) + 1) * self.every
        return True


class _Timeline:
    """Presentation times from the first frame, never going backwards.

    Decoders hand frames over in presentation order, but some containers label them out of
    order (AVI with packed B-frames stamps 1, 2, 3, 5, 4, 6, ...): a frame stamped a little
    before the previous one is placed just after it, without shifting the rest. A clock that
    jumps back further (streams joined end to end) is re-based to go on from the last frame,
    and a missing or stuck timestamp advances one frame at a time.
    """

    __slots__ = ("last", "offset", "origin", "stalled", "step", "window")

    def __init__(self, step: float) -> None:
        self.step = step
        self.window = max(8 * step, 0.5)
        self.origin: float | None = None
        self.offset = 0.0
        self.last: float | None = None
        self.stalled = 0

    def place(self, raw: float | None) -> float:
        last = self.last
        if raw is None or not math.isfinite(raw):
            placed = 0.0 if last is None else last + self.step
        else:
            if self.origin is None:
                self.origin = raw
            placed = raw - self.origin + self.offset
            if last is not None and placed <= last:
                if last - placed > self.window:
                    self.offset += last + self.step - placed
                    placed = last + self.step
                else:
                    self.stalled += 1
                    placed = last + self.step * (1.0 if self.stalled > 4 else 0.001)
            else:
                self.stalled = 0
        self.last = placed
        return placed


class _Span:
    """First and last presentation time over every packet of every stream, in seconds."""

    __slots__ = ("end", "start")

    def __init__(self) -> None:
        self.start = math.inf
        self.end = -math.inf

    def add(self, packet: av.Packet) -> None:
        when = packet.pts if packet.pts is not None else packet.dts
        if when is None or packet.time_base is None:
            return
        base = float(packet.time_base)
        self.start = min(self.start, when * base)
        self.end = max(self.end, (when + max(packet.duration or 0, 0)) * base)

    def seconds(self) -> float | None:
        return self.end - self.start if self.end > self.start else None


def open_video(
    data: bytes,
    *,
    name: str = "<bytes>",
    limits: VideoLimits = VideoLimits(),
    threads: int = 1,
) -> Video:
    """Open a video or animation held in memory. Use as a context manager.

    ``threads`` is FFmpeg's decoding threads (``0``: as many as cores); ncii parallelises
    across files instead, so the default is one. Raises :class:`EmptyMedia`,
    :class:`VideoError` or :class:`MediaTooLarge` with a one-line message naming ``name``.
    """
    if not data:
        raise EmptyMedia(f"{name}: empty file (0 bytes)")
    container = sniff(data)
    if container is None:
        raise VideoError(f"{name}: not a video or animation ncii can decode")
    return Video(data, name=name, container=container, limits=limits, threads=threads)


def probe(data: bytes, *, name: str = "<bytes>", limits: VideoLimits = VideoLimits()) -> VideoInfo:
    """What the container declares (size, codec, rate, duration) without decoding a frame."""
    with open_video(data, name=name, limits=limits) as video:
        return video.info


def _why(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
