"""What the default detection pipeline costs against plain PDQ: time per picture and hashes
per bank entry.

Pictures are decoded once (ncii's decoder, ≤512 px); then, per pipeline, the bank-side hashes
(what ``ncii add`` would store) and the query-side hashes (what ``ncii match`` would look up)
are computed for every picture, best of three passes, on one core (the process pins itself to
CPU 0 where it can).

    .venv/bin/python bench/detection_cost.py [--data ../shared/data] [--count 200]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from ncii.detection.pipeline import DEFAULT, PLAIN, decode_for_hashing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("NCII_SHARED_DATA", str(Path(__file__).parents[2] / "shared/data"))
    parser.add_argument("--data", default=default)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    data = Path(args.data)
    pool = sorted((data / "kodak24").glob("*.png"))
    pool += sorted((data / "perception_testdata").rglob("images/*.jpg"))
    caltech = sorted((data / "caltech101_negatives/images").rglob("*.jpg"))
    random.Random(args.seed).shuffle(caltech)
    files = pool + caltech[: max(0, args.count - len(pool))]
    blobs = [f.read_bytes() for f in files]
    started = time.perf_counter()
    pixels = [decode_for_hashing(b) for b in blobs]
    decode_ms = 1000 * (time.perf_counter() - started) / len(blobs)
    PLAIN.bank_hashes(pixels[0])  # compile the numba kernels before timing
    print(f"{len(files)} pictures ({len(pool)} Kodak/perception, the rest Caltech-101)")
    print(f"decode (≤512 px): {decode_ms:.1f} ms per picture")
    print("| pipeline | bank hashes per entry | bank bytes per entry | bank ms | query hashes "
          "per upload | query ms |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for pipeline in (PLAIN, DEFAULT):
        bank_ms, query_ms = [], []
        for _ in range(3):
            started = time.perf_counter()
            banked = [pipeline.bank_hashes(p) for p in pixels]
            bank_ms.append(1000 * (time.perf_counter() - started) / len(pixels))
            started = time.perf_counter()
            queried = [pipeline.query_hashes(p) for p in pixels]
            query_ms.append(1000 * (time.perf_counter() - started) / len(pixels))
        per_entry = sum(len(b) for b in banked) / len(banked)
        per_query = sum(len(r.dihedral) for q in queried for r in q) / len(queried)
        print(
            f"| {pipeline.name} | {per_entry:.2f} | {32 * per_entry:.0f} | {min(bank_ms):.1f} | "
            f"{per_query:.2f} | {min(query_ms):.1f} |"
        )


if __name__ == "__main__":
    main()
