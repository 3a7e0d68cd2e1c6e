"""Detection pipelines: which PDQ hashes a bank entry holds and which an upload is looked up by.

Plain PDQ (the ``pdq`` pipeline) banks one hash per picture and looks an upload up by its hash
and the seven flips and rotations. That misses re-uploads whose framing changed. ncii's
``default`` pipeline adds hashes on both sides, each aimed at one kind of re-upload, all still
plain 256-bit PDQ hashes compared at distance 31, so they live in the same index:

* **bank side, systematic variants** of the reported picture: centre crops and small
  rotate-and-crops, since a re-post is often trimmed or straightened a little; a few hashes per
  entry, computed once when the picture is reported.
* **both sides, the picture's own region**: the box inside uniform bars, the one large
  picture inside a screenshot-like or meme frame (:mod:`ncii.detection.regions`) and the
  picture inside blurred, gradient or mirrored padding (:mod:`ncii.detection.fills`), hashed
  on their own (with their flips and rotations on the query side).
* **query side, rotations undone**: a picture rotated on a plain canvas turned back upright,
  and the upload turned back by 4–12° either way (each a centre crop of the original when
  the guess is right, which the bank's crop grid holds).

Every figure behind these choices (and the ideas dropped) is in ``docs/detection.md``. Pure:
numpy, Pillow, pdqhash; no database, web or CLI code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

from ncii.detection.fills import derotate
from ncii.detection.regions import picture_regions
from ncii.detection.variants import centre_crop, rotate_crop
from ncii.media import DecodeOptions, decode_image
from ncii.signals.pdq import PDQ_MATCH_THRESHOLD, PDQ_MIN_QUALITY
from ncii.signals.vpdq import pdq_frame


@dataclass(frozen=True, slots=True)
class BankHash:
    """One PDQ hash a bank entry holds: ``label`` says which variant of the picture it is."""

    label: str
    value: str
    quality: int


@dataclass(frozen=True, slots=True)
class QueryHash:
    """One region of an upload with the PDQ hashes of its eight flips and rotations."""

    label: str
    dihedral: tuple[str, ...]
    """``dihedral[0]`` is the region's own hash (order: ``ncii.signals.pdq.DIHEDRAL_ORDER``)."""
    quality: int


@dataclass(frozen=True, slots=True)
class DetectionPipeline:
    """What to hash on each side. Plain PDQ when every option is off."""

    name: str
    regions: bool = False
    """Hash the picture inside bars or a frame too, on both sides."""
    crops: tuple[float, ...] = ()
    """Bank side: centre crops, as the share cut off each side (0.05: 5% of each side)."""
    rotations: tuple[float, ...] = ()
    """Bank side: rotations in degrees, cropped to the inscribed rectangle."""
    pixel_flips: bool = False
    """Query side: also hash the mirrored (and, for the whole upload, the quarter-turned) pixels
    themselves. PDQ's flips and rotations computed from the DCT are exact only when the
    downsampling is symmetric; on small pictures (150–250 px) the mirrored copy's DCT flip lands
    32–46 bits from the original's hash (docs/detection.md)."""
    fills: bool = False
    """With ``regions``: also the picture inside blurred, gradient or mirrored padding."""
    derotate: bool = False
    """Query side: a picture rotated on a plain canvas, turned back upright and cut out."""
    rotation_probes: tuple[float, ...] = ()
    """Query side: the upload turned back by these angles (degrees) and cropped to the
    inscribed rectangle, each hashed once: a rotate-and-crop of θ turned back by −θ is a
    centre crop of the original, which the bank's crop grid holds."""
    threshold: int = PDQ_MATCH_THRESHOLD
    min_quality: int = PDQ_MIN_QUALITY
    """Variants and regions below this quality are not kept (a flat crop is noise)."""

    def bank_hashes(self, rgb: np.ndarray) -> tuple[BankHash, ...]:
        """The hashes to bank for a picture (RGB pixels as ncii decodes them, ≤512 px)."""
        plain, quality = _pdq(rgb)
        found = [BankHash("original", plain, quality)]
        seen = {plain}

        def keep(label: str, pixels: np.ndarray) -> None:
            value, q = _pdq(pixels)
            if q >= self.min_quality and value not in seen:
                seen.add(value)
                found.append(BankHash(label, value, q))

        for share in self.crops:
            keep(f"crop_{share:g}", centre_crop(rgb, share))
        for degrees in self.rotations:
            keep(f"rotate_{degrees:g}", rotate_crop(rgb, degrees))
        if self.regions:
            for label, box in picture_regions(rgb, fills=self.fills).items():
                keep(label, box.crop(rgb))
        return tuple(found)

    def query_hashes(self, rgb: np.ndarray) -> tuple[QueryHash, ...]:
        """The hashes an upload is looked up by: the whole picture and, with ``regions``, each
        region found; each with its flips and rotations. Low-quality regions are dropped, but
        the whole picture is always returned (the matcher decides what to do with it)."""
        found = [_query("original", rgb)]
        if self.pixel_flips:
            found += [
                _single("original/mirror", rgb[:, ::-1]),
                _single("original/rotate90", np.rot90(rgb, 1)),
                _single("original/rotate270", np.rot90(rgb, 3)),
            ]
        if self.regions:
            for label, box in picture_regions(rgb, fills=self.fills).items():
                region = _query(label, box.crop(rgb))
                if region.quality >= self.min_quality:
                    found.append(region)
                    if self.pixel_flips:
                        found.append(_single(f"{label}/mirror", box.crop(rgb)[:, ::-1]))
        if self.derotate:
            upright = derotate(rgb)
            if upright is not None:
                region = _query("derotated", upright)
                if region.quality >= self.min_quality:
                    found.append(region)
        if self.rotation_probes:
            small = _shrink(rgb, PROBE_SIDE)
            for degrees in self.rotation_probes:
                probe = _single(f"unrotate_{degrees:g}", rotate_crop(small, degrees))
                if probe.quality >= self.min_quality:
                    found.append(probe)
        return tuple(found)

    @property
    def bank_size(self) -> int:
        """Hashes per entry at most (before dropping duplicates and flat variants)."""
        return 1 + len(self.crops) + len(self.rotations) + (3 if self.regions else 0)


PROBE_SIDE = 160
"""Rotation probes turn a copy shrunk to fit this square: PDQ sees 64×64 anyway, and a turn
of a 256 px copy costs a quarter of a 512 px one."""


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    if max(height, width) <= side:
        return rgb
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _pdq(rgb: np.ndarray) -> tuple[str, int]:
    return pdq_frame(np.ascontiguousarray(rgb))


def _single(label: str, rgb: np.ndarray) -> QueryHash:
    """One hash of these exact pixels (no dihedral set: they are already a flip or turn)."""
    value, quality = _pdq(rgb)
    return QueryHash(label, (value,), quality)


def _query(label: str, rgb: np.ndarray) -> QueryHash:
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    hexes = tuple(np.packbits(v.astype(np.uint8)).tobytes().hex() for v in vectors)
    return QueryHash(label, hexes, int(quality))


CROP_GRID = (0.03, 0.045, 0.06, 0.075, 0.09, 0.105, 0.12, 0.135, 0.15)
"""Centre crops banked by the default pipeline: 3–15% per side in steps of 1.5%. One step of
1% per side moves PDQ 12–15 bits (docs/detection.md), so a crop between two steps stays within
~12 bits of one of them."""

ROTATIONS = (-3.0, -1.5, 1.5, 3.0)
"""Rotate-and-crops banked by the default pipeline. Each catches ~±1° around itself
(bench/pdq_tolerance.py); with the plain hash they cover 0–3.5° either way."""

PLAIN = DetectionPipeline("pdq")
"""Plain PDQ with query-side flips and rotations: what StopNCII, HMA and ncii 0.1 do."""

ROTATION_PROBES = tuple(sign * (4.0 + d) for d in range(9) for sign in (-1, 1))
"""Query-side turns back, beyond what the banked rotations cover: 4° to 12° either way in steps
of 1° (a probe catches ~±0.5°, and the crop it makes must land near a banked crop)."""

DEFAULT = DetectionPipeline(
    "default",
    regions=True,
    fills=True,
    crops=CROP_GRID,
    rotations=ROTATIONS,
    pixel_flips=True,
    derotate=True,
    rotation_probes=ROTATION_PROBES,
)
"""ncii's default pipeline (see ``docs/detection.md`` for how each part was chosen). The bank
side is unchanged since issue 7; the query side also looks for the picture inside blurred,
gradient and mirrored fills (a ``padded`` region), turns a picture rotated on a plain canvas
back upright, and tries rotations back by 4–12°."""

DEFAULT_V1 = DetectionPipeline(
    "default-v1", regions=True, crops=CROP_GRID, rotations=ROTATIONS, pixel_flips=True
)
"""The default pipeline of issue 7 (before the random edit families): kept to compare."""

EXPERIMENTS = (
    DEFAULT_V1,
    DetectionPipeline("regions", regions=True),
    DetectionPipeline("variants", crops=CROP_GRID, rotations=ROTATIONS),
    DetectionPipeline("flips", pixel_flips=True),
    DetectionPipeline("default-dct-flips", regions=True, crops=CROP_GRID, rotations=ROTATIONS),
)
"""Single ideas, kept selectable so their figures can be reproduced (``ncii eval --pipeline``)."""

PIPELINES: dict[str, DetectionPipeline] = {p.name: p for p in (PLAIN, DEFAULT, *EXPERIMENTS)}


def get_pipeline(name: str) -> DetectionPipeline:
    try:
        return PIPELINES[name]
    except KeyError:
        known = ", ".join(PIPELINES)
        raise KeyError(f"unknown pipeline {name!r} (known: {known})") from None


def decode_for_hashing(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """An upload's bytes → the ≤512 px RGB pixels every pipeline hashes (ncii's decoder)."""
    decoded = decode_image(data, name=name, options=DecodeOptions())
    try:
        return np.asarray(decoded.image, dtype=np.uint8)
    finally:
        decoded.image.close()
