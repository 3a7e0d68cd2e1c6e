"""The imagehash family: 64-bit pHash, dHash, aHash and wHash as 16 hex digits.

They are cheaper and weaker than PDQ; platforms use them as second opinions and some partners
exchange them. They never decide a match on their own (``decisive=False``): a PDQ hit reports
which of them agree (``corroborated_by``), and only a bank that opted in (``ncii bank update B
--weak-hash-matching``) is matched on them, at the threshold it stores. The thresholds below
say when they agree; they come from ``bench/imagehash_thresholds.py`` run on ``../shared/data``
(known edits of the same photo versus every pair of 2,500 distinct photos; figures in
``docs/benchmarks.md``). ``bench/false_match_rate.py`` shows why they cannot decide alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import imagehash
from PIL import Image

from ncii.signals.base import SignalType

PHASH_MATCH_THRESHOLD = 5
DHASH_MATCH_THRESHOLD = 5
AHASH_MATCH_THRESHOLD = 0
WHASH_MATCH_THRESHOLD = 0


def _family(name: str, threshold: int, what: str) -> SignalType:
    return SignalType(
        name=name,
        bits=64,
        threshold=threshold,
        exact=False,
        description=f"{what} (imagehash, 64 bits)",
        examples=("d1c1b2a3c4e5f607",),
        decisive=False,
    )


PHASH = _family("phash", PHASH_MATCH_THRESHOLD, "DCT perceptual hash")
DHASH = _family("dhash", DHASH_MATCH_THRESHOLD, "difference hash")
AHASH = _family("ahash", AHASH_MATCH_THRESHOLD, "average hash")
WHASH = _family("whash", WHASH_MATCH_THRESHOLD, "Haar wavelet hash")

_FUNCTIONS: dict[str, Callable[[Image.Image], imagehash.ImageHash]] = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}


def compute_imagehash(name: str, image: Image.Image) -> str:
    """One imagehash signal of an RGB image, as 16 lowercase hex digits."""
    return str(_FUNCTIONS[name](image))


def compute_imagehashes(names: Iterable[str], image: Image.Image) -> dict[str, str]:
    """Several imagehash signals of one RGB image: ``{name: 16 hex digits}``.

    Each imagehash function starts with ``image.convert("L")``; converting once here and
    handing them the greyscale picture (whose ``convert("L")`` is a plain copy) gives the
    same bits as :func:`compute_imagehash` (tested over real photos) for less work.
    """
    wanted = list(names)
    if not wanted:
        return {}
    grey = image if image.mode == "L" else image.convert("L")
    try:
        return {name: str(_FUNCTIONS[name](grey)) for name in wanted}
    finally:
        if grey is not image:
            grey.close()
