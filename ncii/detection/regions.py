"""Where the picture is inside an upload: bars trimmed, a screenshot's or a meme's frame found.

A re-posted picture often arrives inside something else: letterbox or pillarbox bars, a meme
caption band, a screenshot of a post or of an image viewer. PDQ hashes the whole canvas, so the
frame alone moves the hash far past any threshold. These functions find the box of the picture
so that it can be hashed on its own; both return ``None`` when there is nothing to cut.

They work on the ≤512 px pixels ncii hashes anyway (numpy and scipy's labelling; a few
milliseconds) and never guess the inside of the picture: they only remove what is uniform
(bars) or what is clearly background around one large block of content (a frame).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Box(NamedTuple):
    """Slice bounds of a region: ``rgb[top:bottom, left:right]``."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def crop(self, rgb: np.ndarray) -> np.ndarray:
        return rgb[self.top : self.bottom, self.left : self.right]


COLOUR_TOLERANCE = 20
"""A pixel is "the same colour" when no channel differs by more than this (JPEG noise on a
flat bar stays well within it)."""

UNIFORM_SHARE = 0.98
"""A border row or column is part of a bar when this share of its pixels is one colour."""

MIN_TRIM_SHARE = 0.02
"""Boxes that keep more than 1 − this of both sides are not worth a hash of their own."""

MIN_SIDE = 32
"""A region smaller than this (in hashed pixels) is too small to hash meaningfully."""

TEXT_LINE_SHARE = 0.15
"""A caption band's line of text is at most this share of the side: rows between two bar rows
of one colour, no further apart than this, are band."""

BACKGROUND_SHARE = 0.5
"""A frame needs one colour on at least this share of the upload's outermost pixels."""

MIN_PICTURE_AREA = 0.08
"""A framed picture covers at least this share of the upload (a screenshot's photo: ~20–70%)."""

MIN_PICTURE_FILL = 0.6
"""...and its block of content fills at least this share of its bounding box (a photo, not
scattered text)."""


def _off_colour(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """True where a pixel differs from ``colour`` by more than the tolerance in any channel.

    ``colour`` may hold one colour per row of ``pixels`` (shape (rows, 1, 3))."""
    far = np.abs(pixels.astype(np.int16) - colour.astype(np.int16)) > COLOUR_TOLERANCE
    # The channels one by one: numpy's any() over a last axis of 3 is several times slower.
    return far[..., 0] | far[..., 1] | far[..., 2] if far.shape[-1] == 3 else far.any(axis=-1)


def _is_bar(line: np.ndarray) -> bool:
    """Is this row or column of pixels (n, 3) one colour, up to noise? (The mean stands for
    the colour: at most 2% of outliers move it by 5 levels, well inside the tolerance.)"""
    colour = line.mean(axis=0)
    return float(np.mean(~_off_colour(line, colour))) >= UNIFORM_SHARE


def _worth_cutting(box: Box, height: int, width: int) -> bool:
    if box.height < MIN_SIDE or box.width < MIN_SIDE:
        return False
    return box.height <= height * (1 - MIN_TRIM_SHARE) or box.width <= width * (1 - MIN_TRIM_SHARE)


class _Lines:
    """Which rows of ``pixels`` are bars, and their mean colours, worked out in blocks as
    :func:`_edge_depth` walks in from the edge (one numpy pass per block instead of one per
    row; the same answers as :func:`_is_bar` row by row)."""

    BLOCK = 32

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels
        self.bar = np.zeros(0, dtype=bool)
        self.means = np.zeros((0, pixels.shape[-1]))

    def is_bar(self, row: int) -> bool:
        if row >= len(self.bar):
            self._extend(row)
        return bool(self.bar[row])

    def mean(self, row: int) -> np.ndarray:
        if row >= len(self.bar):
            self._extend(row)
        return self.means[row]

    def _extend(self, row: int) -> None:
        start = len(self.bar)
        stop = min(len(self.pixels), max(row + 1, start + max(self.BLOCK, start)))
        block = np.ascontiguousarray(self.pixels[start:stop])
        width = block.shape[1]
        means = block.sum(axis=1, dtype=np.int64) / width  # exactly what mean() gives
        same = width - np.count_nonzero(_off_colour(block, means[:, None, :]), axis=1)
        self.bar = np.concatenate([self.bar, same / width >= UNIFORM_SHARE])
        self.means = np.concatenate([self.means, means])


def _edge_depth(pixels: np.ndarray, limit: int, max_gap: int) -> int:
    """How many rows from the top of ``pixels`` are border: rows of one colour (bars), and,
    when ``max_gap`` > 0, runs of at most ``max_gap`` other rows (lines of text) between bar
    rows of the first bar's colour (a caption band)."""
    lines = _Lines(pixels)
    depth, row, colour = 0, 0, None
    while row < limit:
        if lines.is_bar(row):
            if colour is None:
                colour = lines.mean(row)
            depth = row = row + 1
            continue
        if max_gap <= 0 or colour is None:
            break
        end = min(limit, row + max_gap + 1)
        following = next((r for r in range(row + 1, end) if lines.is_bar(r)), None)
        if following is None or _off_colour(lines.mean(following), colour):
            break
        row = following
    return depth


def _trim(rgb: np.ndarray, gap_share: float) -> Box | None:
    height, width = rgb.shape[:2]
    row_gap, column_gap = round(height * gap_share), round(width * gap_share)
    top = _edge_depth(rgb, height - MIN_SIDE, row_gap)
    bottom = height - _edge_depth(rgb[::-1], height - top - MIN_SIDE, row_gap)
    columns = rgb[top:bottom].transpose(1, 0, 2)
    left = _edge_depth(columns, width - MIN_SIDE, column_gap)
    right = width - _edge_depth(columns[::-1], width - left - MIN_SIDE, column_gap)
    box = Box(top, bottom, left, right)
    return box if _worth_cutting(box, height, width) else None


def trim_bars(rgb: np.ndarray) -> Box | None:
    """The box inside uniform bars along the edges (letterbox, pillarbox, padding, a plain
    border), of any colour and on any edges, or ``None`` when there are none worth cutting.

    Row by row from each edge, while the row is one colour; the colour may change on the way
    (a black bar outside a white mat are both cut).
    """
    return _trim(rgb, 0.0)


def trim_bands(rgb: np.ndarray) -> Box | None:
    """Like :func:`trim_bars`, but a bar also takes lines of text on it: a meme's caption band.
    Kept apart from :func:`trim_bars` because it may eat into a picture that has a flat row of
    the band's colour near its edge."""
    return _trim(rgb, TEXT_LINE_SHARE)


def background_colour(rgb: np.ndarray) -> np.ndarray | None:
    """The colour around the picture, or ``None`` when the edges are mostly picture.

    Either the colour of at least half of the outermost pixels (a screenshot, a viewer), or the
    colour of an outermost row or column that is all one colour (a meme's caption band, whose
    sides are mostly picture).
    """
    edge = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]])
    bins = (edge // 16).astype(np.int32)
    codes = bins[:, 0] * 256 + bins[:, 1] * 16 + bins[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    mode = values[np.argmax(counts)]
    colour = np.median(edge[codes == mode], axis=0)
    if float(np.mean(~_off_colour(edge, colour))) >= BACKGROUND_SHARE:
        return colour
    for line in (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]):
        if _is_bar(line):
            return np.median(line, axis=0)
    return None


def find_framed_picture(rgb: np.ndarray) -> Box | None:
    """The box of the one large picture on a mostly uniform background (a screenshot of a
    post, an image viewer, a meme with its caption band), or ``None``.

    The background is the colour of most edge pixels; everything else is content, joined into
    connected blocks. Text and icons make thin or sparse blocks; the picture is the largest
    block, and it must be big and solid (mostly content within its bounding box).
    """
    from scipy import ndimage  # 0.2 s to import: only when a frame may be there

    height, width = rgb.shape[:2]
    colour = background_colour(rgb)
    if colour is None:
        return None
    content = _off_colour(rgb, colour)
    content = ndimage.binary_closing(content, structure=np.ones((3, 3), bool), iterations=1)
    labels, count = ndimage.label(content, structure=np.ones((3, 3), bool))
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    rows, columns = ndimage.find_objects(labels)[largest - 1]
    box = Box(rows.start, rows.stop, columns.start, columns.stop)
    area = box.height * box.width
    if area < MIN_PICTURE_AREA * height * width or sizes[largest] < MIN_PICTURE_FILL * area:
        return None
    return box if _worth_cutting(box, height, width) else None


def picture_regions(rgb: np.ndarray, *, fills: bool = False) -> dict[str, Box]:
    """Every distinct box worth hashing on its own: ``trimmed`` (bars cut), ``banded`` (bars
    and caption bands cut), ``framed`` (the picture found in a frame) and, with ``fills``,
    ``padded`` (the picture inside a blurred, gradient or mirrored fill:
    :mod:`ncii.detection.fills`)."""
    from ncii.detection.fills import find_padded_picture  # fills imports this module

    finders = [("trimmed", trim_bars), ("banded", trim_bands), ("framed", find_framed_picture)]
    if fills:
        finders.append(("padded", find_padded_picture))
    found: dict[str, Box] = {}
    for label, finder in finders:
        box = finder(rgb)
        if box is not None and not any(_same(box, b, rgb.shape) for b in found.values()):
            found[label] = box
    return found


def _same(a: Box, b: Box, shape: tuple[int, ...]) -> bool:
    """Boxes within 1% of the side of each other hash alike: one is enough."""
    tolerance_rows, tolerance_columns = shape[0] * 0.01, shape[1] * 0.01
    return (
        abs(a.top - b.top) <= tolerance_rows
        and abs(a.bottom - b.bottom) <= tolerance_rows
        and abs(a.left - b.left) <= tolerance_columns
        and abs(a.right - b.right) <= tolerance_columns
    )
