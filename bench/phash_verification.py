"""Would pHash make a good second signal for weak PDQ candidates? The measurement behind
dropping the idea (docs/detection.md).

1. Copies: 40 pictures (12 Kodak, 28 Caltech-101), each cropped three times by 10–14% per side
   (independently); the bank holds centre crops at 10–14% (1% steps). For the closest banked
   crop (by PDQ), print PDQ and pHash distances.
2. Distinct pictures: 600 Caltech-101 photos, every pair: how many pairs pass "PDQ ≤ P and
   pHash ≤ H", and which pairs come close.

    .venv/bin/python bench/phash_verification.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import io
import os
import random
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from ncii.detection.pipeline import decode_for_hashing
from ncii.detection.variants import centre_crop
from ncii.evaluation.transforms import crop_sides
from ncii.signals.vpdq import pdq_frame


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _hashes(pixels: np.ndarray) -> tuple[str, str]:
    pixels = np.ascontiguousarray(pixels)
    return pdq_frame(pixels)[0], str(imagehash.phash(Image.fromarray(pixels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("NCII_SHARED_DATA", str(Path(__file__).parents[2] / "shared/data"))
    parser.add_argument("--data", default=default)
    args = parser.parse_args()
    data = Path(args.data)
    caltech = sorted((data / "caltech101_negatives/images").rglob("*.jpg"))
    random.Random(9).shuffle(caltech)
    rng = random.Random(3)
    grid = [0.10, 0.11, 0.12, 0.13, 0.14]
    copies = []
    for path in sorted((data / "kodak24").glob("*.png"))[:12] + caltech[:28]:
        source = Image.open(path).convert("RGB")
        source.thumbnail((1024, 1024))
        buffer = io.BytesIO()
        source.save(buffer, format="PNG")
        pixels = decode_for_hashing(buffer.getvalue())
        bank = {g: _hashes(centre_crop(pixels, g)) for g in grid}
        for _ in range(3):
            cropped = crop_sides(source, *(rng.uniform(0.10, 0.14) for _ in range(4)))
            buffer = io.BytesIO()
            cropped.save(buffer, format="JPEG", quality=90)
            pdq, phash = _hashes(decode_for_hashing(buffer.getvalue()))
            best = min(grid, key=lambda g: _distance(pdq, bank[g][0]))
            copies.append((_distance(pdq, bank[best][0]), _distance(phash, bank[best][1])))
    found = np.array(copies)
    print(f"{len(copies)} off-centre crop copies, closest banked centre crop:")
    print("  PDQ   10/50/90/100th percentile:", np.percentile(found[:, 0], [10, 50, 90, 100]))
    print("  pHash 10/50/90/100th percentile:", np.percentile(found[:, 1], [10, 50, 90, 100]))
    names = caltech[100:700]
    hashes = [_hashes(decode_for_hashing(p.read_bytes())) for p in names]
    pdq = np.array([[_distance(a[0], b[0]) for b in hashes] for a in hashes])
    phash = np.array([[_distance(a[1], b[1]) for b in hashes] for a in hashes])
    upper = np.triu_indices(len(names), 1)
    p, h = pdq[upper], phash[upper]
    print(f"\n{len(p):,} pairs of {len(names)} distinct Caltech-101 photos:")
    print("  PDQ min", p.min(), "pHash min", h.min())
    for pdq_limit in (40, 45, 50, 55, 60):
        counts = ", ".join(
            f"pHash<={limit}: {int(((p <= pdq_limit) & (h <= limit)).sum())}"
            for limit in (8, 10, 12)
        )
        print(f"  PDQ<={pdq_limit}: {int((p <= pdq_limit).sum())} pairs; and {counts}")
    print("  pairs within PDQ 60:")
    for i, j in zip(*upper, strict=True):
        if pdq[i, j] <= 60:
            pair = f"{names[i].relative_to(data)}  {names[j].name}"
            print(f"    {pdq[i, j]:3d} {phash[i, j]:3d}  {pair}")


if __name__ == "__main__":
    main()
