"""Expected false matches at scale, from the distances between real unrelated photos.

A false match is an upload matching a bank entry of a different picture. With a bank of ``M``
entries, each unrelated to the upload, the expected number of false matches per upload is
``M × r(t)``, where ``r(t)`` is the chance that one unrelated (upload, entry) pair comes within
the threshold ``t`` through *any* of the hashes compared: the upload's probes (its PDQ, the
seven flips and rotations, the regions of the default pipeline) against every hash the entry
holds (its PDQ and, banked with the default pipeline, its crops, rotations and region).

Photos: the 2,500 distinct Caltech-101 photos of ``../shared/data/caltech101_negatives`` and the
24 Kodak photos (2,524 photos; 6.37 million ordered pairs), less the pairs of
``bench/caltech_duplicates.tsv`` (one photograph in two files). Every photo is hashed once as a
bank entry (``HashOptions.for_bank()``) and once as an upload (``HashOptions.for_uploads()``);
a numba kernel computes every probe × bank-hash distance (~2 billion) and keeps, per ordered
photo pair, the smallest distance under three setups:

``plain``     the upload's PDQ against the entry's PDQ (what HMA and StopNCII exchange);
``flips``     the upload's PDQ and its 7 flips/rotations against the entry's PDQ;
``default``   every probe of the default pipeline against every hash the entry holds;
``ncii``      the same, with hits only the pipeline's extra hashes make held 3 bits stricter
              (``PDQ_DETECTION_MARGIN``): what ``ncii match`` does.

``r(t)`` is counted directly where pairs are observed. Below that (the Caltech set was
de-duplicated at plain PDQ ≤ 31, so the plain tail there is empty by construction), it is
extrapolated: a beta-binomial (n = 256, PDQ bits being correlated, so overdispersed) is fitted
to the lower tail of the distribution of single hash-pair distances, and a photo pair is
counted as ``K`` independent hash pairs (``K``: mean hash pairs compared per photo pair), i.e.
``r(t) ≈ 1 - (1 - p(t))^K``. The two fits (whole-distribution moments; least squares on the
log of the lower tail, where at least 100 pairs are observed) bracket the estimate; each is
refitted on two halves of the bank photos for its spread, and the calibration of ``K × p``
against the observed ``r`` is printed where both exist. The 64-bit imagehash family is counted
directly at its thresholds (no extrapolation needed).

Run with the project's venv (a few minutes on 2 cores; ``--cache`` keeps the hashes)::

    .venv/bin/python bench/false_match_rate.py --jobs 2 --cache /tmp/fmr-hashes.npz
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numba import njit
from scipy import optimize, stats

from ncii._mih_kernel import _popcount
from ncii.detection import DEFAULT
from ncii.hashing import HashOptions, hash_many
from ncii.signals import PDQ_MIN_QUALITY, get_signal_type
from ncii.signals.pdq import PDQ_DETECTION_MARGIN

REPO = Path(__file__).resolve().parent.parent
WEAK = ("phash", "dhash", "ahash", "whash")
SETUPS = ("plain", "flips", "default", "ncii")
"""``ncii``: what ``ncii match`` does, the default pipeline with its detection-only hits held
``PDQ_DETECTION_MARGIN`` bits stricter (judged at t: flips within t, or detection within t-3)."""
THRESHOLDS = (16, 20, 24, 28, 31, 34, 36, 40)
BANK_SIZES = (1_000_000, 10_000_000)
UPLOADS = 1_000_000
FAR = 256
ORIGINAL, FLIP, OTHER = 0, 1, 2
"""Probe levels: the upload's own PDQ, its DCT flips/rotations, anything else (regions, pixel
flips; for bank hashes: variants)."""


def _data_root(explicit: str | None) -> Path:
    beside = (REPO.parent / "shared/data", REPO.parent.parent / "shared/data")
    for candidate in (explicit, os.environ.get("NCII_SHARED_DATA"), *beside):
        if candidate and (Path(candidate) / "caltech101_negatives").is_dir():
            return Path(candidate)
    sys.exit("no ../shared/data: pass --data")


def _photos(root: Path) -> list[str]:
    caltech = sorted((root / "caltech101_negatives/images").rglob("*.jpg"))
    kodak = sorted((root / "kodak24").glob("*.png"))
    return [str(p) for p in caltech + kodak]


def _words(values: list[str]) -> np.ndarray:
    return np.array(
        [np.frombuffer(bytes.fromhex(v), dtype=">u8").astype(np.uint64) for v in values],
        dtype=np.uint64,
    ).reshape(-1, 4)


def hash_photos(paths: list[str], jobs: int) -> dict[str, np.ndarray]:
    """Every photo as a bank entry and as an upload, in one decode."""
    options = HashOptions(bank_variants=DEFAULT, query_regions=DEFAULT)
    probes: list[str] = []
    probe_owner: list[int] = []
    probe_level: list[int] = []
    bank: list[str] = []
    bank_owner: list[int] = []
    bank_level: list[int] = []
    weak: dict[str, list[str]] = {k: [] for k in WEAK}
    kept: list[str] = []
    for outcome in hash_many(paths, options=options, jobs=jobs):
        hashes = outcome.hashes
        if hashes is None or hashes.get("pdq") is None:
            print(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
            continue
        owner = len(kept)
        kept.append(outcome.source)
        pdq = hashes.get("pdq")
        if pdq.quality >= PDQ_MIN_QUALITY:  # as the matcher: low-quality hashes never match
            probes += [pdq.value, *hashes.pdq_dihedral]
            probe_level += [ORIGINAL] + [FLIP] * len(hashes.pdq_dihedral)
            bank.append(pdq.value)
            bank_level.append(ORIGINAL)
            bank_owner.append(owner)
        for region in hashes.pdq_regions:  # the pipeline already dropped low-quality regions
            if region.quality >= PDQ_MIN_QUALITY:
                probes += region.dihedral
                probe_level += [OTHER] * len(region.dihedral)
        probe_owner += [owner] * (len(probes) - len(probe_owner))
        for variant in hashes.pdq_variants:
            bank.append(variant.value)
            bank_level.append(OTHER)
            bank_owner.append(owner)
        for kind in WEAK:
            weak[kind].append(hashes.get(kind).value)
    return {
        "paths": np.array(kept),
        "probes": _words(probes),
        "probe_owner": np.array(probe_owner, dtype=np.int32),
        "probe_level": np.array(probe_level, dtype=np.int8),
        "bank": _words(bank),
        "bank_owner": np.array(bank_owner, dtype=np.int32),
        "bank_level": np.array(bank_level, dtype=np.int8),
        **{kind: np.array([int(v, 16) for v in weak[kind]], dtype=np.uint64) for kind in WEAK},
    }


@njit(cache=True, nogil=True)
def _pair_minima(probes, probe_owner, probe_level, bank, bank_owner, bank_level, photos):  # type: ignore[no-untyped-def]
    """Per setup and ordered photo pair (upload, entry): the smallest distance. Also the
    histogram of single hash-pair distances per setup and per half of the bank photos."""
    minima = np.full((4, photos, photos), 257, dtype=np.int16)
    hist = np.zeros((3, 2, 257), dtype=np.int64)
    for q in range(probes.shape[0]):
        upload = probe_owner[q]
        for b in range(bank.shape[0]):
            entry = bank_owner[b]
            if entry == upload:
                continue
            d = 0
            for w in range(4):
                d += _popcount(probes[q, w] ^ bank[b, w])
            # plain: original × original; flips: original or flips × original; default: all.
            first = probe_level[q] if bank_level[b] == 0 else 2
            for setup in range(first, 3):
                if d < minima[setup, upload, entry]:
                    minima[setup, upload, entry] = d
            if first == 2 and d < minima[3, upload, entry]:  # detection-only pairs
                minima[3, upload, entry] = d
            hist[first, entry & 1, d] += 1
    return minima, hist


def _excluded(paths: np.ndarray) -> list[tuple[int, int]]:
    """Photo pairs that are one photograph (bench/caltech_duplicates.tsv)."""
    index = {"/".join(Path(p).parts[-2:]): i for i, p in enumerate(paths)}
    pairs = []
    for line in (REPO / "bench/caltech_duplicates.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            a, b = line.split()
            if a in index and b in index:
                pairs += [(index[a], index[b]), (index[b], index[a])]
    return pairs


def _tail_range(cdf: np.ndarray, total: int) -> tuple[int, int]:
    """The lower tail the fits use: from the first distance with ≥ 10 pairs within it to the
    1% quantile."""
    return int(np.argmax(cdf >= 10)), int(np.argmax(cdf >= 0.01 * total))


def _fit_normal(cdf: np.ndarray, total: int) -> tuple[float, float]:
    """Normal (mean, sd) whose log CDF best fits the observed lower tail (least squares)."""
    lo, hi = _tail_range(cdf, total)
    d = np.arange(lo, hi + 1)
    target = np.log(cdf[lo : hi + 1] / total)

    def loss(params: np.ndarray) -> float:
        mean, sd = params
        return float(((stats.norm.logcdf(d + 0.5, mean, abs(sd)) - target) ** 2).sum())

    best = optimize.minimize(loss, [128.0, 32.0], method="Nelder-Mead")
    return float(best.x[0]), float(abs(best.x[1]))


def _fit_betabinom(cdf: np.ndarray, total: int, start: tuple[float, float]) -> tuple[float, float]:
    """Beta-binomial (n = 256) whose log CDF best fits the lower tail, started from the normal
    fit's mean and variance."""
    lo, hi = _tail_range(cdf, total)
    d = np.arange(lo, hi + 1)
    target = np.log(cdf[lo : hi + 1] / total)
    mean, sd = start
    p = min(max(mean / 256, 0.05), 0.95)
    rho = max((sd**2 / (256 * p * (1 - p)) - 1) / 255, 1e-4)
    scale = (1 - rho) / rho

    def loss(params: np.ndarray) -> float:
        a, b = np.exp(params)
        model = stats.betabinom.logcdf(d, 256, a, b)
        return float(((model - target) ** 2).sum()) if np.all(np.isfinite(model)) else 1e300

    best = optimize.minimize(loss, np.log([p * scale, (1 - p) * scale]), method="Nelder-Mead")
    a, b = np.exp(best.x)
    return float(a), float(b)


def _models(minima: np.ndarray) -> dict[str, Callable[[int], float]]:
    """r(t) by each fit of these photo-pair minima."""
    total = minima.size
    cdf = np.cumsum(np.bincount(minima.clip(0, 256), minlength=257))
    mean, sd = _fit_normal(cdf, total)
    a, b = _fit_betabinom(cdf, total, (mean, sd))
    return {
        "normal": lambda t: float(stats.norm.cdf(t + 0.5, mean, sd)),
        "betabinom": lambda t: float(stats.betabinom.cdf(t, 256, a, b)),
    }


def _single_pair_union(hist: np.ndarray, k: float) -> Callable[[int], float]:
    """The independence bound: a beta-binomial fitted to the lower tail of single hash-pair
    distances, and ``k`` independent tries per photo pair. Ignores that an entry's variants
    (and an upload's probes) are near each other, so it overstates what extra hashes cost."""
    cdf = np.cumsum(hist)
    total = int(cdf[-1])
    a, b = _fit_betabinom(cdf, total, _fit_normal(cdf, total))
    return lambda t: -math.expm1(k * math.log1p(-float(stats.betabinom.cdf(t, 256, a, b))))


def analyse(data: dict[str, np.ndarray]) -> dict:
    paths = data["paths"]
    photos = len(paths)
    started = time.perf_counter()
    minima, hist = _pair_minima(
        data["probes"],
        data["probe_owner"],
        data["probe_level"],
        data["bank"],
        data["bank_owner"],
        data["bank_level"],
        photos,
    )
    kernel_s = time.perf_counter() - started
    # ncii's rule as one distance: a detection-only pair counts PDQ_DETECTION_MARGIN bits further.
    minima[3] = np.minimum(minima[1], minima[3] + PDQ_DETECTION_MARGIN)
    valid = np.ones((photos, photos), dtype=bool)
    np.fill_diagonal(valid, False)
    for a, b in _excluded(paths):
        valid[a, b] = False
    pairs = int(valid.sum())
    halves = [valid & (np.arange(photos)[None, :] % 2 == h) for h in (0, 1)]
    probes_by_level = np.bincount(data["probe_level"], minlength=3).astype(float) / photos
    bank_by_level = np.bincount(data["bank_level"], minlength=3).astype(float) / photos
    k = {
        "plain": probes_by_level[0] * bank_by_level[0],
        "flips": probes_by_level[:2].sum() * bank_by_level[0],
        "default": probes_by_level.sum() * bank_by_level.sum(),
    }
    k["ncii"] = k["default"]
    single = np.cumsum(hist, axis=0).sum(axis=1)  # [setup, d]: the hash pairs each setup uses
    single = np.concatenate([single, single[2:]])  # ncii: the default's hash pairs
    report: dict = {
        "photos": photos,
        "ordered_pairs": pairs,
        "kernel_seconds": round(kernel_s, 1),
        "probes_per_upload": round(float(probes_by_level.sum()), 2),
        "hashes_per_entry": round(float(bank_by_level.sum()), 2),
        "setups": {},
    }
    for s, setup in enumerate(SETUPS):
        mins = minima[s][valid]
        observed = np.cumsum(np.bincount(mins.clip(0, 256), minlength=257))
        models = _models(mins)
        split = [_models(minima[s][half]) for half in halves]
        union = _single_pair_union(single[s], k[setup])
        rows = []
        for t in (*THRESHOLDS, 44, 48, 52, 56, 60):
            count = int(observed[t])
            fitted = {name: model(t) for name, model in models.items()}
            spread = [model(t) for found in split for model in found.values()]
            estimate = max(fitted.values())
            if count >= 10:
                estimate = max(estimate, count / pairs)
            rows.append(
                {
                    "threshold": t,
                    "observed_pairs": count,
                    "observed_rate": count / pairs,
                    "rate_upper_95": (3.0 if count == 0 else count + 2 * math.sqrt(count)) / pairs,
                    **{f"fit_{name}": value for name, value in fitted.items()},
                    "fit_range_halves": [min(spread), max(spread)],
                    "independent_hashes_bound": union(t),
                    "estimate": estimate,
                    "false_matches_per_million_uploads": {
                        str(m): estimate * m * UPLOADS for m in BANK_SIZES
                    },
                }
            )
        report["setups"][setup] = {
            "hash_pairs_per_photo_pair": round(float(k[setup]), 2),
            "tail_fit_range": list(_tail_range(observed, pairs)),
            "rows": rows,
        }
    report["weak"] = _weak_rates(data, valid, pairs)
    return report


def _weak_rates(data: dict[str, np.ndarray], valid: np.ndarray, pairs: int) -> dict:
    """The imagehash family at their thresholds: counted, no model needed."""
    found = {}
    for kind in WEAK:
        values = data[kind]
        distances = np.bitwise_count(values[:, None] ^ values[None, :])[valid]
        counts = np.bincount(distances, minlength=65)
        cdf = np.cumsum(counts)
        threshold = get_signal_type(kind).threshold
        found[kind] = {
            "threshold": threshold,
            "by_threshold": {
                str(t): {
                    "pairs": int(cdf[t]),
                    "rate": cdf[t] / pairs,
                    "false_matches_per_million_uploads": {
                        str(m): cdf[t] / pairs * m * UPLOADS for m in BANK_SIZES
                    },
                }
                for t in range(0, max(threshold, 5) + 1)
            },
        }
    return found


def _print(report: dict) -> None:
    print(
        f"{report['photos']} photos, {report['ordered_pairs']:,} ordered unrelated pairs; "
        f"{report['probes_per_upload']} probes per upload, {report['hashes_per_entry']} hashes "
        f"per entry (kernel {report['kernel_seconds']} s)"
    )
    for setup, found in report["setups"].items():
        print(
            f"\n{setup}: {found['hash_pairs_per_photo_pair']} hash pairs per photo pair; "
            f"tail fits on t in {found['tail_fit_range']}"
        )
        print(
            f"{'t':>3} {'pairs':>6} {'observed':>8} {'95% up':>8} {'normal':>8} {'b-binom':>8} "
            f"{'halves':>17} {'indep.':>8} {'per 1M, 1M':>10} {'per 1M, 10M':>11}"
        )
        for row in found["rows"]:
            per = row["false_matches_per_million_uploads"]
            low, high = row["fit_range_halves"]
            print(
                f"{row['threshold']:>3} {row['observed_pairs']:>6} {row['observed_rate']:>8.1e} "
                f"{row['rate_upper_95']:>8.1e} {row['fit_normal']:>8.1e} "
                f"{row['fit_betabinom']:>8.1e} {low:>8.1e}-{high:<8.1e} "
                f"{row['independent_hashes_bound']:>8.1e} {per['1000000']:>10.1e} "
                f"{per['10000000']:>11.1e}"
            )
    print("\nimagehash family (counted):")
    for kind, found in report["weak"].items():
        for t, row in found["by_threshold"].items():
            mark = " <- current" if int(t) == found["threshold"] else ""
            per = row["false_matches_per_million_uploads"]
            print(
                f"  {kind} <= {t}: {row['pairs']:>7} pairs, rate {row['rate']:.2e}, per 1M "
                f"uploads: {per['1000000']:.2e} @1M, {per['10000000']:.2e} @10M{mark}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="../shared/data (default: NCII_SHARED_DATA or beside)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="npz file to keep the hashes in")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.cache and args.cache.exists():
        data = dict(np.load(args.cache))
    else:
        started = time.perf_counter()
        data = hash_photos(_photos(_data_root(args.data)), args.jobs)
        print(f"hashed {len(data['paths'])} photos in {time.perf_counter() - started:.0f} s")
        if args.cache:
            np.savez(args.cache, **data)
    report = analyse(data)
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
