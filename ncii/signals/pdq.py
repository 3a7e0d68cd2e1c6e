"""PDQ: Meta's 256-bit perceptual photo hash, the common currency of StopNCII, HMA and NCMEC.

``compute_pdq`` takes an 8-bit RGB image that :mod:`ncii.media` has already normalised and
shrunk; it returns the hash of the image as given plus its seven flips and rotations, which
pdqhash computes from one DCT at no extra cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

from ncii.signals.base import SignalType

PDQ_MATCH_THRESHOLD = 31
"""Meta's recommended distance: at or below is a match."""

PDQ_DETECTION_MARGIN = 3
"""Bits taken off the PDQ threshold for a hit only the detection pipeline's extra hashes make
(a banked variant of the picture, a region or a mirrored copy of the upload). An unrelated pair
then gets ~260 tries instead of 8, and ``bench/false_match_rate.py`` puts the default pipeline
at 31 level with plain PDQ at ~33 but below plain PDQ at 31 when held to 28: the pipeline adds
recall without adding false matches to Meta's standard (docs/detection.md, "False matches at
scale"). The plain hash and its flips keep Meta's 31."""

PDQ_MIN_QUALITY = 50
"""Below this quality a PDQ hash is mostly noise (flat or tiny images); flagged, not matched."""

PDQ = SignalType(
    name="pdq",
    bits=256,
    threshold=PDQ_MATCH_THRESHOLD,
    exact=False,
    description="Meta PDQ photo hash (256 bits, quality 0-100)",
    examples=("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",),
)

DIHEDRAL_ORDER = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus_1",
    "flip_minus_1",
)
"""The order and names of pdqhash's (and Meta's) dihedral hashes. In Meta's naming ``flipx``
turns the picture upside down and ``flipy`` mirrors it left to right (checked on Meta's
``dih/`` images)."""


@dataclass(frozen=True, slots=True)
class PdqHashes:
    hash: str
    quality: int
    dihedral: tuple[str, ...]
    """All eight, ``dihedral[0] == hash``; see :data:`DIHEDRAL_ORDER`."""


def _bits_to_hex(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8, copy=False)).tobytes().hex()


def compute_pdq(image: Image.Image | np.ndarray) -> PdqHashes:
    """PDQ hash and quality of an 8-bit RGB image (or its ``HxWx3`` uint8 pixels, which
    saves a copy when the caller needs them too), with its dihedral variants."""
    pixels = np.asarray(image, dtype=np.uint8)
    vectors, quality = pdqhash.compute_dihedral(pixels)
    hexes = tuple(_bits_to_hex(v) for v in vectors)
    return PdqHashes(hash=hexes[0], quality=int(quality), dihedral=hexes)
