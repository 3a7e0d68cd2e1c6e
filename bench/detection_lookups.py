"""Lookups per upload with the default detection pipeline against plain PDQ, on a large index.

A default bank holds ~15 PDQ hashes per entry (the picture's own and its variants) and an
upload is looked up by ~17 hashes (its flips, pixel flips and regions) instead of 8. This
measures what that costs at the index: the bank is the real default-pipeline hashes of every
photo in ../shared/data (their variants are tight clusters, the hard case for a multi-index)
plus derived hashes up to N (``bench/match_index.py``'s generator); the uploads are seeded
re-uploads (``ncii.evaluation.transforms``) of a sample of those photos, each looked up in one
call with all its hashes, as ``Matcher.match`` does.

Prints, per pipeline: hashes per upload, uploads/s and hash lookups/s from one caller,
p50/p99 per upload, and how many uploads found their photo's entry. Run in the benchmark venv:
``bench/.venv/bin/python bench/detection_lookups.py --n 10000000``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ncii.detection import DEFAULT, PLAIN
from ncii.detection.pipeline import decode_for_hashing
from ncii.evaluation.transforms import apply_transform, get_transform
from ncii.index import HammingIndex, hex_to_words

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 31
TRANSFORMS = ("jpeg_q20", "crop_5", "crop_12", "rotate_3", "letterbox", "caption", "screenshot")
EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def _match_index_module():
    spec = importlib.util.spec_from_file_location("match_index", ROOT / "bench" / "match_index.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _bank_hashes(path: str) -> list[str]:
    try:
        pixels = decode_for_hashing(Path(path).read_bytes(), name=path)
    except Exception:  # a benchmark skips what does not decode
        return []
    return [b.value for b in DEFAULT.bank_hashes(pixels) if b.quality >= 50]


def _uploads(path: str) -> list[tuple[list[str], list[str]]]:
    """(plain query hashes, default query hashes) of each re-upload of one photo."""
    image = Image.open(path).convert("RGB")
    key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    found = []
    for name in TRANSFORMS:
        pixels = decode_for_hashing(apply_transform(image, get_transform(name), seed=7, key=key))
        plain = [h for q in PLAIN.query_hashes(pixels) for h in q.dihedral]
        default = [h for q in DEFAULT.query_hashes(pixels) if q.quality >= 50 for h in q.dihedral]
        found.append((plain, default))
    return found


def real_default_hashes(workdir: Path, data: Path, photos: list[str]) -> list[list[str]]:
    cache = workdir / "default_bank_hashes.json"
    if cache.exists():
        return json.loads(cache.read_text())
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        hashed = list(pool.map(_bank_hashes, photos, chunksize=16))
    cache.write_text(json.dumps(hashed))
    return hashed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="hashes in the index")
    parser.add_argument("--uploads", type=int, default=300, help="photos re-uploaded")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ncii-detection-lookups"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    photos = sorted(str(p) for p in args.data.rglob("*") if p.suffix.lower() in EXTS)

    start = time.perf_counter()
    per_photo = real_default_hashes(args.workdir, args.data, photos)
    real = [(i, h) for i, hashes in enumerate(per_photo) for h in hashes]
    print(f"{len(photos)} photos, {len(real):,} real default-pipeline bank hashes "
          f"({len(real) / max(1, sum(1 for h in per_photo if h)):.1f} per photo), "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip

    match_index = _match_index_module()
    rng = np.random.default_rng(2026)
    seeds = match_index.real_seeds(args.workdir, args.data)
    filler = match_index.make_bank(max(0, args.n - len(real)), seeds, rng)
    # Keys: photo index for real rows, -1 for filler.
    real_words = hex_to_words([h for _, h in real], 256)
    filler_words = filler.view(np.uint64)
    filler_words.byteswap(inplace=True)
    keys = np.concatenate(
        [np.array([i for i, _ in real], dtype=np.int64), np.full(len(filler), -1, np.int64)]
    )
    start = time.perf_counter()
    index = HammingIndex(256)
    index.add_words(np.concatenate([real_words, filler_words.reshape(-1, 4)]), keys)
    index.compact()
    print(f"index of {len(keys):,} hashes built in {time.perf_counter() - start:.1f} s")
    del filler, filler_words

    sample = [i for i, hashes in enumerate(per_photo) if hashes]
    sample = [sample[int(j)] for j in np.linspace(0, len(sample) - 1, args.uploads)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        uploads = list(pool.map(_uploads, [photos[i] for i in sample], chunksize=4))

    report = {"machine": platform.processor() or platform.machine(), "n": len(keys)}
    for side, label in ((0, "plain"), (1, "default")):
        queries = [
            (photo, hashes[side])
            for photo, per in zip(sample, uploads, strict=True)
            for hashes in per
        ]
        arrays = [(photo, hex_to_words(h, 256)) for photo, h in queries]
        for _, words in arrays[:50]:
            index.search_arrays(words, THRESHOLD)  # warm
        times, found = [], 0
        for photo, words in arrays:
            t0 = time.perf_counter()
            hits = index.search_arrays(words, THRESHOLD)
            times.append(time.perf_counter() - t0)
            found += bool(len(hits)) and bool(np.any(hits[:, 1] == photo))
        total = sum(times)
        per_upload = sum(len(h) for _, h in queries) / len(queries)
        result = {
            "uploads": len(queries),
            "hashes_per_upload": round(per_upload, 1),
            "uploads_per_s": round(len(queries) / total),
            "lookups_per_s": round(len(queries) * per_upload / total),
            "p50_ms": round(float(np.percentile(times, 50)) * 1000, 3),
            "p99_ms": round(float(np.percentile(times, 99)) * 1000, 3),
            "found_own_photo": found,
        }
        report[label] = result
        print(label, json.dumps(result))
    (args.workdir / f"result-{len(keys)}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
