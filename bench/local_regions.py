"""Experiment (measured and dropped for now, docs/detection.md): local PDQ hashes of regions
placed by what is in the picture, not by its frame.

A crop that cuts one side, an occluder, a screenshot frame or a pad change the whole picture's
PDQ hash, but the picture's own blobs (a face, a window, a dark shape on a light ground) stay
where they are relative to their surroundings. So both sides find the strongest blobs in a
Difference-of-Gaussians scale space (scale from the blob itself, so a re-scaled copy yields the
same regions), turn each region to its own dominant orientation (intensity centroid, as ORB
does: a rotated copy yields the same upright patch), and hash the square around it with PDQ.

What a bank keeps per region is only that 256-bit hash, like any PDQ hash: no position, no
scale, no pixels (docs/detection.md says why it cannot be turned back into the image).

Run: share of each random family's re-uploads with at least 1 (2) local hits within t of
their original's local hashes, and pairs of distinct originals with any hit.

    .venv/bin/python bench/local_regions.py [--count 30] [--seed 4242]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from ncii.signals.vpdq import pdq_frame

WORK_SIDE = 256
"""Blobs are looked for on the picture shrunk to fit this square (the time is in the filters)."""

SIGMAS = tuple(4.0 * 2 ** (i / 3) for i in range(10))
"""Scale space, in pixels of the ``WORK_SIDE`` picture: 4 to ~40 (regions of 1/5 to 3/4 of the
side)."""

PATCH_FACTOR = 5.0
"""A region is a square of ``PATCH_FACTOR × 2σ`` around its blob."""

PATCH_SIDE = 64
"""Regions are resampled to this square before PDQ (PDQ's own working size)."""

MAX_REGIONS = 6
"""Regions kept per picture, strongest blobs first."""

MIN_CONTRAST = 0.02
"""Blobs whose DoG response is under this (grey levels / 255) are noise."""


@dataclass(frozen=True, slots=True)
class Blob:
    y: float
    x: float
    sigma: float
    response: float


def find_blobs(grey: np.ndarray, limit: int = MAX_REGIONS) -> list[Blob]:
    """The strongest DoG extrema (both signs) of a float grey picture, at most ``limit``,
    none centred inside another's region, none whose region leaves the picture by more than
    a quarter of its side."""
    levels = np.stack([ndimage.gaussian_filter(grey, s, mode="nearest") for s in SIGMAS])
    dog = levels[1:] - levels[:-1]
    magnitude = np.abs(dog)
    peaks = (magnitude == ndimage.maximum_filter(magnitude, size=(3, 5, 5))) & (
        magnitude > MIN_CONTRAST
    )
    peaks[0] = peaks[-1] = False
    scales, ys, xs = np.nonzero(peaks)
    order = np.argsort(-magnitude[scales, ys, xs], kind="stable")
    height, width = grey.shape
    found: list[Blob] = []
    for i in order:
        sigma = SIGMAS[scales[i]] * 2 ** (1 / 6)
        y, x = float(ys[i]), float(xs[i])
        half = PATCH_FACTOR * sigma
        margin = half * 0.5
        if min(y, x) < half - margin or y > height - half + margin or x > width - half + margin:
            continue
        if any((b.y - y) ** 2 + (b.x - x) ** 2 < (0.5 * max(b.sigma, sigma) * PATCH_FACTOR) ** 2
               for b in found):  # fmt: skip
            continue
        found.append(Blob(y, x, sigma, float(magnitude[scales[i], ys[i], xs[i]])))
        if len(found) == limit:
            break
    return found


def _orientation(grey: np.ndarray, blob: Blob) -> float:
    """The blob's dominant direction in radians: the angle from its centre to the intensity
    centroid of the disc around it (ORB's rule)."""
    radius = max(2, round(PATCH_FACTOR * blob.sigma * 0.5))
    cy, cx = round(blob.y), round(blob.x)
    top, left = max(0, cy - radius), max(0, cx - radius)
    window = grey[top : cy + radius + 1, left : cx + radius + 1]
    yy, xx = np.mgrid[top : top + window.shape[0], left : left + window.shape[1]]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    weights = window * inside
    return float(np.arctan2(np.sum(weights * (yy - cy)), np.sum(weights * (xx - cx))))


def _patch(image: Image.Image, blob: Blob, angle: float, scale: float) -> np.ndarray:
    """The square region around ``blob`` (in ``image``'s pixels via ``scale``), turned so its
    direction points right, resampled to ``PATCH_SIDE``."""
    half = PATCH_FACTOR * blob.sigma * scale
    cos, sin = np.cos(angle), np.sin(angle)
    step = 2 * half / PATCH_SIDE
    cy, cx = blob.y * scale, blob.x * scale
    # Output (u, v) → input: centre + R(angle) · ((u, v) − PATCH_SIDE/2) · step.
    a, b = cos * step, -sin * step
    d, e = sin * step, cos * step
    c = cx - a * PATCH_SIDE / 2 - b * PATCH_SIDE / 2
    f = cy - d * PATCH_SIDE / 2 - e * PATCH_SIDE / 2
    patch = image.transform(
        (PATCH_SIDE, PATCH_SIDE),
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(patch)


def local_hashes(rgb: np.ndarray, limit: int = MAX_REGIONS) -> list[tuple[str, int]]:
    """PDQ hash and quality of each content-placed region of a picture, strongest first."""
    height, width = rgb.shape[:2]
    scale = max(height, width) / WORK_SIDE
    image = Image.fromarray(np.ascontiguousarray(rgb))
    small = image.convert("L")
    if scale > 1:
        small = small.resize((max(1, round(width / scale)), max(1, round(height / scale))),
                             Image.Resampling.BILINEAR)  # fmt: skip
    grey = np.asarray(small, dtype=np.float32) / 255
    scale = width / grey.shape[1]
    found = []
    for blob in find_blobs(grey, limit):
        angle = _orientation(grey, blob)
        found.append(pdq_frame(np.ascontiguousarray(_patch(image, blob, angle, scale))))
    return found


def main() -> None:
    import argparse
    import hashlib
    import os
    import random
    from pathlib import Path

    from ncii.detection.pipeline import decode_for_hashing
    from ncii.evaluation.families import FAMILIES, apply_family
    from ncii.media import DecodeOptions, decode_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("NCII_SHARED_DATA", str(Path(__file__).parents[2] / "shared/data"))
    parser.add_argument("--data", default=default)
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()
    data = Path(args.data)
    pool = sorted((data / "kodak24").glob("*.png"))
    pool += sorted((data / "perception_testdata").rglob("images/*.jpg"))
    for folder in ("Faces", "BACKGROUND_Google"):
        pool += sorted((data / "caltech101_negatives/images" / folder).glob("*.jpg"))
    random.Random(args.seed).shuffle(pool)
    thresholds = (20, 31)

    def hits(a: list[tuple[int, int]], b: list[tuple[int, int]], t: int) -> int:
        return sum(
            1
            for x, qx in a
            if qx >= 50 and any((x ^ y).bit_count() <= t for y, qy in b if qy >= 50)
        )

    def ints(found: list[tuple[str, int]]) -> list[tuple[int, int]]:
        return [(int(h, 16), q) for h, q in found]

    bank: dict[str, list[tuple[int, int]]] = {}
    per = {f.name: {t: [] for t in thresholds} for f in FAMILIES}
    for path in pool[: args.count]:
        blob = path.read_bytes()
        key = hashlib.sha256(blob).hexdigest()
        bank[path.name] = ints(local_hashes(decode_for_hashing(blob)))
        source = decode_image(blob, name=str(path), options=DecodeOptions(max_side=1024)).image
        for family in FAMILIES:
            upload, _ = apply_family(source, family, seed=args.seed, key=key)
            found = ints(local_hashes(decode_for_hashing(upload)))
            for t in thresholds:
                per[family.name][t].append(hits(found, bank[path.name], t))
    for name, by in per.items():
        print(name, "  ".join(
            f"t{t}: >=1 {np.mean(np.array(v) >= 1):.2f} >=2 {np.mean(np.array(v) >= 2):.2f}"
            for t, v in by.items()))  # fmt: skip
    names = list(bank)
    for t in thresholds:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        matched = sum(hits(bank[a], bank[b], t) >= 1 for a, b in pairs)
        print(f"distinct pairs with a local hit at {t}: {matched} of {len(pairs)}")


if __name__ == "__main__":
    main()
