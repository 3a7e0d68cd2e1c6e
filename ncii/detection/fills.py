"""The picture inside padding that is not a flat bar, and a rotated picture turned back.

Phone apps post a non-square picture on a square (4:5, 9:16) canvas filled with a blurred,
stretched copy of itself, a mirror of its edges or a gradient; :func:`~ncii.detection.regions.
trim_bars` only cuts flat bars. :func:`find_padded_picture` cuts any fill that is *smooth*
(blurred, gradient, flat: almost no pixel-to-pixel detail) or *mirrored* (the rows beyond an
edge repeat the picture's rows in reverse). :func:`derotate` turns a picture rotated on a
plain canvas (its four corners the fill colour) back upright and crops it to the picture.

Both work on the ≤512 px pixels ncii hashes, in a few milliseconds, and only add a region to
hash: the whole upload is always hashed too, so a wrong guess costs a lookup, not a match.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from PIL import Image

from ncii.detection.regions import COLOUR_TOLERANCE, MIN_SIDE, Box, _off_colour, _worth_cutting

SMOOTH_DETAIL = 1.5
"""A row is smooth fill when its mean absolute second difference between neighbouring pixels
(grey levels) is under this (JPEG noise on a blurred or gradient fill: ~0.1–1.2)..."""

SMOOTH_SHARE = 0.2
"""...and under this share of the picture's median row detail (a low-detail photo's fill)."""

MIN_FILL = 3
"""Fills thinner than this many rows are left alone."""

FILL_SMOOTH_SHARE = 0.85
"""Share of the rows outside a fill's edge that must be smooth (stickers and text aside)."""

EDGE_STEP = 3.0
"""The picture's edge steps at least this many times the fill's median row-to-row change..."""

EDGE_MIN = 4.0
"""...and at least this many grey levels on average across the line."""

RING = 12
"""Rows outside the picture's edge that JPEG ringing may make look detailed (16-row chroma
blocks, shrunk to ≤512 px)."""

MIRROR_ROWS = 12
"""Rows compared on each side of a candidate mirror axis."""

MIRROR_RATIO = 0.3
"""Rows mirror each other when their difference is under this share of the difference
between the same rows side by side."""

MIRROR_DETAIL = 1.0
"""Rows beyond a mirror axis must differ from each other by at least this much (grey levels):
flat rows mirror anything."""

DEROTATE_TRIM = 0.03
"""Share cut off each side of a picture turned back upright."""

MIN_DEGREES = 1.0
"""Rotations below this are left to the upright hashes."""


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _row_detail(grey: np.ndarray) -> np.ndarray:
    """Each row's mean absolute second difference across and down: ~0 on a blurred, gradient
    or flat fill (whose slopes may be steep), high on a photograph's texture."""
    across = np.abs(np.diff(grey, n=2, axis=1)).mean(axis=1)
    down = np.abs(np.diff(grey, n=2, axis=0)).mean(axis=1)
    return across + np.concatenate([down[:1], down, down[-1:]])


def _mirror_axes(grey: np.ndarray, smooth: np.ndarray, limit: int) -> np.ndarray:
    """Rows where a mirrored fill may end: the rows above repeat the rows below in reverse
    (the axis on a row or between two), much closer than the same rows side by side."""
    height = grey.shape[0]
    axes = np.arange(MIRROR_ROWS + 1, min(limit, height - 2 * MIRROR_ROWS - 2))
    if len(axes) == 0:
        return axes
    best = np.full(len(axes), np.inf, dtype=np.float32)
    textured = np.ones(len(axes), dtype=bool)
    for shift in (0, 1):  # axis between rows a-1 and a, or on row a
        error = np.zeros(len(axes), dtype=np.float32)
        base = np.zeros(len(axes), dtype=np.float32)
        for k in range(MIRROR_ROWS):
            error += np.abs(grey[axes - 1 - k + shift] - grey[axes + k]).mean(axis=1)
            base += np.abs(grey[axes + k] - grey[axes + 2 * k + 1]).mean(axis=1)
        best = np.minimum(best, error / np.maximum(base, 1e-3))
        textured &= base > MIRROR_ROWS * MIRROR_DETAIL
    # ...and none of them smooth: a blurred fill's rows next to the picture's edge mirror
    # each other about as well as they match the picture.
    rough = np.array([not smooth[a : a + 2 * MIRROR_ROWS].any() for a in axes])
    return axes[(best < MIRROR_RATIO) & textured & rough]


def _smooth_edges(grey: np.ndarray, smooth: np.ndarray, limit: int) -> int:
    """Depth of a centred smooth fill: the row r where the picture's edge is sharpest at both
    r and its mirror position from the far end, with the rows outside both mostly smooth (a
    story's stickers and JPEG ringing around the edge aside). 0 when there is none."""
    height = len(grey)
    steps = np.abs(np.diff(grey, axis=0)).mean(axis=1)  # steps[r-1]: between rows r-1 and r
    ring = RING
    rows = np.arange(MIN_FILL, limit)
    if len(rows) == 0:
        return 0
    ahead = np.concatenate([[0], np.cumsum(smooth)])
    behind = np.concatenate([[0], np.cumsum(smooth[::-1])])
    outside = np.maximum(rows - ring, 1)
    share = np.minimum(ahead[outside], behind[outside]) / outside
    # Just outside the ringing, every row is fill: stickers may sit on a fill, but not right
    # against the picture (else the picture's own first rows would pass for stickers).
    start = np.maximum(outside - ring, 0)
    span = outside - start
    near = (ahead[outside] - ahead[start] == span) & (behind[outside] - behind[start] == span)
    share[~near] = 0
    tolerance = max(1, round(height * 0.005))
    far = np.max(
        [
            steps[np.clip(height - rows - 1 + t, 0, height - 2)]
            for t in range(-tolerance, tolerance + 1)
        ],
        axis=0,
    )
    score = np.minimum(steps[rows - 1], far)
    score[share < FILL_SMOOTH_SHARE] = 0
    if not score.any():
        return 0
    best = int(np.argmax(score))
    # A real edge steps well above the fill's own row-to-row change.
    fill = steps[: max(1, int(rows[best]) - ring)]
    return int(rows[best]) if score[best] > max(EDGE_MIN, EDGE_STEP * float(np.median(fill))) else 0


def _fill_extent(grey: np.ndarray) -> tuple[int, int]:
    """Rows [start, stop) of the picture between fills at the top and bottom.

    Apps centre the picture, so the fill is as deep at both ends: a smooth fill ends where
    the picture's edge is a sharp step at both ends, and a mirror axis counts only when one
    sits at the same depth from the other end."""
    height = grey.shape[0]
    detail = _row_detail(grey)
    middle = detail[height // 4 : height - height // 4]
    threshold = min(SMOOTH_DETAIL, SMOOTH_SHARE * float(np.median(middle)))
    smooth = detail < threshold
    limit = (height - MIN_SIDE) // 2
    depth = _smooth_edges(grey, smooth, limit)
    tolerance = max(2, round(height * 0.01))
    # Every 4th column is plenty to tell a mirror from a picture, at a quarter of the time.
    sparse = np.ascontiguousarray(grey[:, ::4])
    tops = _mirror_axes(sparse, smooth, limit + 1)
    bottoms = _mirror_axes(sparse[::-1], smooth[::-1], limit + 1)
    paired = [a for a in tops if len(bottoms) and np.min(np.abs(bottoms - a)) <= tolerance]
    if paired and max(paired) > depth:
        top = int(max(paired))
        bottom = int(bottoms[np.argmin(np.abs(bottoms - top))])
        return top, height - bottom
    return depth, height - depth


def find_padded_picture(rgb: np.ndarray) -> Box | None:
    """The box of the picture inside smooth (blurred, gradient, flat) or mirrored padding on
    any sides, or ``None`` when there is nothing worth cutting."""
    height, width = rgb.shape[:2]
    if min(height, width) < 2 * MIN_SIDE:
        return None
    grey = _grey(rgb)
    top, bottom = _fill_extent(grey)
    left, right = _fill_extent(np.ascontiguousarray(grey[top:bottom].T))
    box = Box(top, bottom, left, right)
    return box if _worth_cutting(box, height, width) else None


def _leg(fill: np.ndarray) -> int:
    """Length of the fill run at the start of a line of the canvas (3 detailed pixels in a row
    end it: JPEG noise on the edge of the picture does not)."""
    detailed = ~fill
    run = detailed[:-2] & detailed[1:-1] & detailed[2:]
    found = np.flatnonzero(run)
    return int(found[0]) if len(found) else len(fill)


def _corner_angle(corner: np.ndarray) -> float | None:
    """The angle of the picture's edge across one corner's fill triangle (degrees, 0–45), from
    a straight line fitted through where the fill ends on each row; ``None`` when the corner
    holds no clean triangle (the picture is the canvas colour there too)."""
    height, width = corner.shape
    across, down = _leg(corner[1]), _leg(corner[:, 1])
    if min(across, down) < 3 or across >= width - 2 or down >= height - 2:
        return None
    rows = np.arange(round(down * 0.1) + 1, round(down * 0.9))
    if len(rows) < 3:
        return math.degrees(math.atan(min(across, down) / max(across, down)))
    ends = np.argmax(~corner[rows, : across + 8], axis=1)
    slope = abs(float(np.polyfit(rows, ends, 1)[0]))  # columns per row
    if slope == 0:
        return None
    return math.degrees(math.atan(min(slope, 1 / slope)))


MIN_CANVAS_SIDE = 16
"""Pictures narrower than this (in pixels, either way) are never taken for a rotated canvas."""


def rotation_on_canvas(rgb: np.ndarray) -> tuple[float, np.ndarray] | None:
    """The angle (degrees, unsigned) of a picture rotated on a plain canvas, and the canvas
    colour, from the fill triangles in its corners; ``None`` when the corners are not one
    colour or the triangles do not agree."""
    if min(rgb.shape[:2]) < MIN_CANVAS_SIDE:  # a sliver has no corners to read
        return None
    corners = np.array([rgb[1, 1], rgb[1, -2], rgb[-2, 1], rgb[-2, -2]], dtype=np.int16)
    colour = np.median(corners, axis=0)
    if np.abs(corners - colour).max() > COLOUR_TOLERANCE:
        return None
    fill = ~_off_colour(rgb, colour)
    angles = []
    for rows, columns in ((slice(None), slice(None)), (slice(None), slice(None, None, -1)),
                          (slice(None, None, -1), slice(None)),
                          (slice(None, None, -1), slice(None, None, -1))):  # fmt: skip
        angle = _corner_angle(fill[rows, columns])
        if angle is not None:
            angles.append(angle)
    # One clean corner is enough (a picture on a white ground fills the others); when there
    # are more, the two closest agree.
    if not angles:
        return None
    angles.sort()
    pairs = [(b - a, (a + b) / 2) for a, b in itertools.pairwise(angles)]
    spread, angle = min(pairs) if pairs else (0.0, angles[0])
    if spread > 1.5 or angle < MIN_DEGREES:
        return None
    return float(angle), colour


def derotate(rgb: np.ndarray) -> np.ndarray | None:
    """The picture turned back upright and cropped out of its canvas, when it was rotated on a
    plain canvas (see :func:`rotation_on_canvas`); otherwise ``None``."""
    found = rotation_on_canvas(rgb)
    if found is None:
        return None
    degrees, colour = found
    height, width = rgb.shape[:2]
    theta = math.radians(degrees)
    cos, sin, cos2 = math.cos(theta), math.sin(theta), math.cos(2 * theta)
    w, h = (width * cos - height * sin) / cos2, (height * cos - width * sin) / cos2
    if min(w, h) < MIN_SIDE:
        return None
    image = Image.fromarray(np.ascontiguousarray(rgb))
    fillcolor = tuple(int(c) for c in colour)
    best: tuple[float, np.ndarray] | None = None
    # 3% in from each side, where the bank's smallest centre crop is: the picture's own edge
    # pixels are blended with the canvas, and the angle is only known to a fraction of a degree.
    keep_w, keep_h = w * (1 - 2 * DEROTATE_TRIM), h * (1 - 2 * DEROTATE_TRIM)
    left, top = (width - keep_w) / 2, (height - keep_h) / 2
    box = (round(left), round(top), round(left + keep_w), round(top + keep_h))
    for sign in (1, -1):
        upright = image.rotate(sign * degrees, resample=Image.Resampling.BILINEAR,
                               fillcolor=fillcolor)  # type: ignore[arg-type]  # fmt: skip
        pixels = np.asarray(upright.crop(box))
        # The right turn leaves no canvas inside the box; the wrong one doubles the angle.
        leftover = float(np.mean(~_off_colour(pixels[[0, -1]], colour)))
        if best is None or leftover < best[0]:
            best = (leftover, pixels)
    assert best is not None
    return best[1]
