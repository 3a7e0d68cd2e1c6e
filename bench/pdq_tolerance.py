"""How far PDQ moves under a centred crop or a small rotation, and which bank-side variants
bring it back within 31: the measurements behind the default pipeline's crop and rotation grids.

For each picture (10 Kodak + 20 Caltech-101 by default), the bank side hashes centre crops
(0–19% per side) and rotate-and-crops (0, ±1.5, ±3, ±4.5°) of the ≤512 px pixels; the query
side is the picture cropped or rotated by a given amount, saved as JPEG q90 and decoded by ncii.
Printed: the median distance to each bank variant and the share within 31.

    .venv/bin/python bench/pdq_tolerance.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
from pathlib import Path

from PIL import Image

from ncii.detection.pipeline import decode_for_hashing
from ncii.detection.variants import centre_crop, rotate_crop
from ncii.evaluation.transforms import crop_sides, rotate_and_crop
from ncii.signals.vpdq import pdq_frame

CROP_BANK = [i / 100 for i in range(20)]
CROP_QUERY = [0.03, 0.05, 0.075, 0.12]
ROTATION_BANK = [0.0, -1.5, 1.5, -3.0, 3.0, -4.5, 4.5]
ROTATION_QUERY = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _upload(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return pdq_frame(decode_for_hashing(buffer.getvalue()))[0]


def _report(title: str, rows: dict[float, list[dict[float, int]]], bank: list[float]) -> None:
    print(f"\n{title}: median distance / share within 31, per bank variant")
    print("| query | " + " | ".join(f"{b:g}" for b in bank) + " | best of all |")
    print("|---|" + "---|" * (len(bank) + 1))
    for query, found in rows.items():
        cells = []
        for b in bank:
            median = statistics.median(r[b] for r in found)
            share = sum(r[b] <= 31 for r in found) / len(found)
            cells.append(f"{median:.0f} / {share:.2f}")
        best = sum(min(r.values()) <= 31 for r in found) / len(found)
        print(f"| {query:g} | " + " | ".join(cells) + f" | {best:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("NCII_SHARED_DATA", str(Path(__file__).parents[2] / "shared/data"))
    parser.add_argument("--data", default=default)
    args = parser.parse_args()
    data = Path(args.data)
    caltech = sorted((data / "caltech101_negatives/images").rglob("*.jpg"))
    random.Random(9).shuffle(caltech)
    files = sorted((data / "kodak24").glob("*.png"))[:10] + caltech[:20]
    crops: dict[float, list[dict[float, int]]] = {q: [] for q in CROP_QUERY}
    rotations: dict[float, list[dict[float, int]]] = {q: [] for q in ROTATION_QUERY}
    for path in files:
        source = Image.open(path).convert("RGB")
        source.thumbnail((1024, 1024))
        buffer = io.BytesIO()
        source.save(buffer, format="PNG")
        pixels = decode_for_hashing(buffer.getvalue())
        banked = {b: pdq_frame(centre_crop(pixels, b).copy())[0] for b in CROP_BANK}
        for q in CROP_QUERY:
            query = _upload(crop_sides(source, q, q, q, q))
            crops[q].append({b: _distance(query, h) for b, h in banked.items()})
        turned = {
            b: pdq_frame(rotate_crop(pixels, b).copy() if b else pixels)[0] for b in ROTATION_BANK
        }
        for q in ROTATION_QUERY:
            query = _upload(rotate_and_crop(source, q))
            rotations[q].append({b: _distance(query, h) for b, h in turned.items()})
    print(f"{len(files)} pictures")
    _report("Centred crop (share per side)", crops, CROP_BANK)
    _report("Rotation with inscribed crop (degrees)", rotations, ROTATION_BANK)


if __name__ == "__main__":
    main()
