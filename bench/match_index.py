"""Benchmark PDQ range search: ncii's index against faiss and python-threatexchange.

Data: real PDQ hashes of the photos in ../shared/data are the seeds. A bank of N hashes is
derived from them the way real banks look:

* distinct items: a seed with ~30% of its bits flipped (far from every other item, but with
  the bit statistics of real hashes);
* clusters: near-copies of one picture (video frames, blank frames, the same image reported
  many times) at 0-16 bits from a centre, cluster sizes heavy-tailed up to 2,000 (a long static
  video), 15% of the bank, plus an all-but-constant "blank frame" cluster;
* exact duplicates: 1% of the bank.

Queries: planted near-duplicates of bank items at 1-31 bits (the edge included), queries near
cluster centres, and non-matching real-looking hashes. Ground truth is exhaustive search
(faiss IndexBinaryFlat, which is exact; radius 32 means distance <= 31).

Each engine runs in its own subprocess so peak RSS is its own, every engine pinned to the same
number of threads (``--threads``, default 1: ``OMP_NUM_THREADS`` and friends in the
subprocess's environment, ``faiss.omp_set_num_threads``), so on a loaded machine faiss's
OpenMP pool does not slow its peers; the load average is printed before and after each engine.
Run it in the benchmark venv
(``bench/README.md``): ``bench/.venv/bin/python bench/match_index.py --sizes 1000000 10000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

THRESHOLD = 31
ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def _threads() -> int:
    """The thread count the driver pinned this engine subprocess to."""
    return int(os.environ.get("OMP_NUM_THREADS", "1"))


# --- data ---------------------------------------------------------------------------------------


def real_seeds(workdir: Path, data: Path) -> np.ndarray:
    """PDQ hashes (as (n, 32) uint8) of every photo in the shared data, cached."""
    cache = workdir / "real_pdq.npy"
    if cache.exists():
        return np.load(cache)
    from ncii.hashing import HashOptions, hash_many

    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
    paths = sorted(str(p) for p in data.rglob("*") if p.suffix.lower() in exts)
    hashes = []
    for outcome in hash_many(
        paths, options=HashOptions(signals=("pdq",)), jobs=os.cpu_count() or 1
    ):
        if outcome.hashes is not None:
            pdq = outcome.hashes.get("pdq")
            if pdq is not None and pdq.quality >= 50:
                hashes.append(bytes.fromhex(pdq.value))
    seeds = np.unique(np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32), axis=0)
    np.save(cache, seeds)
    return seeds


def _flip(rows: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Flip each bit with ``probability`` (in chunks to bound memory)."""
    out = rows.copy()
    for start in range(0, len(rows), 250_000):
        bits = rng.random((min(250_000, len(rows) - start), 256)) < probability
        out[start : start + len(bits)] ^= np.packbits(bits, axis=1)
    return out


def _flip_exactly(rows: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = rows.copy()
    for i, k in enumerate(counts):
        for b in rng.choice(256, size=int(k), replace=False):
            out[i, b // 8] ^= np.uint8(1 << (b % 8))
    return out


def make_bank(n: int, seeds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n_clustered = int(n * 0.15)
    n_dupes = int(n * 0.01)
    n_distinct = n - n_clustered - n_dupes
    distinct = _flip(seeds[rng.integers(0, len(seeds), n_distinct)], 0.3, rng)
    # Heavy-tailed cluster sizes (Pareto), capped at 20,000, until the quota is used.
    sizes: list[int] = []
    while sum(sizes) < n_clustered:
        sizes.append(int(min(2_000, 2 + rng.pareto(1.2) * 20)))
    sizes[-1] -= sum(sizes) - n_clustered
    centres = _flip(seeds[rng.integers(0, len(seeds), len(sizes))], 0.3, rng)
    centres[0] = 0  # the "blank frame" cluster: flat images hash to (almost) all zeros
    members = np.repeat(centres, sizes, axis=0)
    radius = rng.uniform(0.0, 16 / 256, len(members))
    clustered = np.empty_like(members)
    for start in range(0, len(members), 250_000):
        part = members[start : start + 250_000]
        bits = rng.random((len(part), 256)) < radius[start : start + len(part), None]
        clustered[start : start + len(part)] = part ^ np.packbits(bits, axis=1)
    bank = np.concatenate([distinct, clustered])
    dupes = bank[rng.integers(0, len(bank), n_dupes)]
    bank = np.concatenate([bank, dupes])
    return bank[rng.permutation(len(bank))]


def make_queries(bank: np.ndarray, seeds: np.ndarray, count: int, rng: np.random.Generator):
    planted = count // 2
    near_cluster = count // 5
    others = count - planted - near_cluster
    picks = bank[rng.integers(0, len(bank), planted)]
    flips = rng.integers(1, THRESHOLD + 1, planted)
    flips[: planted // 10] = THRESHOLD  # the edge: exactly at the threshold
    q1 = _flip_exactly(picks, flips, rng)
    q2 = _flip(bank[rng.integers(0, len(bank), near_cluster)], 8 / 256, rng)
    q3 = _flip(seeds[rng.integers(0, len(seeds), others)], 0.3, rng)
    return np.concatenate([q1, q2, q3])


# --- engines (each in its own process) ------------------------------------------------------


def _rss_mb() -> float:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries the latter across
    ``exec``, so a child started by a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _latencies(search_one, queries, limit: int) -> dict[str, float]:
    times = []
    for q in queries[:limit]:
        start = time.perf_counter()
        search_one(q)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {
        "single_p50_ms": float(np.percentile(ms, 50)),
        "single_p99_ms": float(np.percentile(ms, 99)),
        "single_per_s": float(len(ms) / (ms.sum() / 1000)),
    }


def _concurrent_latencies(search_one, queries, threads: int) -> dict[str, float]:
    """Single lookups from ``threads`` callers at once (a server's workers, one per core):
    throughput over the wall clock, latency of each lookup."""
    from concurrent.futures import ThreadPoolExecutor

    def worker(part):
        times = []
        for q in part:
            start = time.perf_counter()
            search_one(q)
            times.append(time.perf_counter() - start)
        return times

    parts = [queries[i::threads] for i in range(threads)]
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = [t for part in pool.map(worker, parts) for t in part]
    wall = time.perf_counter() - start
    ms = np.array(times) * 1000
    return {
        "threads": threads,
        "concurrent_per_s": len(ms) / wall,
        "concurrent_p50_ms": float(np.percentile(ms, 50)),
        "concurrent_p99_ms": float(np.percentile(ms, 99)),
    }


def run_ncii(bank: np.ndarray, queries: np.ndarray, workdir: Path) -> dict:
    """Build and save a snapshot here; look up in a fresh process that loads it, as a
    platform's matcher starts: its peak RSS is the serving footprint."""
    from ncii.index import HammingIndex

    n = len(bank)
    words = bank.view(np.uint64)
    words.byteswap(inplace=True)  # big-endian hex order → native words, without a copy
    start = time.perf_counter()
    index = HammingIndex(256)
    index.add_words(words, np.arange(n, dtype=np.int64))
    index.compact()
    build = time.perf_counter() - start
    snapshot = workdir / f"ncii-snapshot-{n}"
    index.save(snapshot)
    result = {"build_s": build, "build_rss_mb": _rss_mb()}
    del index, words, bank
    cmd = [sys.executable, __file__, "--engine", "ncii-serve", "--n", str(n)]
    subprocess.run([*cmd, "--workdir", str(workdir)], check=True)
    return result | json.loads((workdir / f"result-ncii-serve-{n}.json").read_text())


def run_ncii_serve(bank: np.ndarray, queries: np.ndarray, workdir: Path) -> dict:
    from ncii.index import HammingIndex

    qwords = queries.view(">u8").astype(np.uint64)
    start = time.perf_counter()
    index = HammingIndex.load(workdir / f"ncii-snapshot-{len(bank)}")
    index.warm()  # fault the memory-mapped pages in now, not during the first lookups
    load = time.perf_counter() - start
    index.search_words(qwords[:1], THRESHOLD)  # compile / warm the kernel
    result = {"load_s": load, "width": index._segments[0].width}
    start = time.perf_counter()
    found = index.search_arrays(qwords, THRESHOLD)
    result["batched_per_s"] = len(qwords) / (time.perf_counter() - start)
    result |= _latencies(lambda q: index.search_arrays(q[None, :], THRESHOLD), qwords, len(qwords))
    result |= _concurrent_latencies(
        lambda q: index.search_arrays(q[None, :], THRESHOLD), qwords, _threads()
    )
    result["pairs"] = sorted((int(q), int(k)) for q, k, _ in found)
    result["rss_mb"] = _rss_mb()
    return result


def run_faiss_flat(bank: np.ndarray, queries: np.ndarray, workdir: Path) -> dict:
    import faiss

    start = time.perf_counter()
    index = faiss.IndexBinaryFlat(256)
    index.add(bank)
    result = {"build_s": time.perf_counter() - start, "load_s": None}
    faiss.omp_set_num_threads(_threads())  # the same number of threads as every engine
    start = time.perf_counter()
    lims, _distances, labels = index.range_search(queries, THRESHOLD + 1)
    result["batched_per_s"] = len(queries) / (time.perf_counter() - start)
    result |= _latencies(lambda q: index.range_search(q[None, :], THRESHOLD + 1), queries, 100)
    result["pairs"] = sorted(
        (q, int(labels[j])) for q in range(len(queries)) for j in range(lims[q], lims[q + 1])
    )
    result["rss_mb"] = _rss_mb()
    return result


def run_pytx(bank: np.ndarray, queries: np.ndarray, workdir: Path) -> dict:
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    hexes = [row.tobytes().hex() for row in bank]
    qhex = [row.tobytes().hex() for row in queries]
    start = time.perf_counter()
    index = PDQIndex(entries=zip(hexes, range(len(hexes)), strict=True))
    result = {"build_s": time.perf_counter() - start, "load_s": None}
    del hexes
    limit = min(len(qhex), 1000)
    start = time.perf_counter()
    found = [index.query(q) for q in qhex[:limit]]
    result["batched_per_s"] = limit / (time.perf_counter() - start)
    result |= _latencies(index.query, qhex, 200)
    result["pairs"] = sorted((q, m.metadata) for q in range(limit) for m in found[q])
    result["pairs_limit"] = limit
    result["rss_mb"] = _rss_mb()
    return result


ENGINES = {"ncii": run_ncii, "faiss-flat": run_faiss_flat, "pytx-PDQIndex": run_pytx}
SUBPROCESSES = ENGINES | {"ncii-serve": run_ncii_serve}


def engine_main(name: str, n: int, workdir: Path) -> None:
    # The serving process needs only the bank's length: map it rather than read it.
    bank = np.load(workdir / f"bank-{n}.npy", mmap_mode="r" if name == "ncii-serve" else None)
    queries = np.load(workdir / f"queries-{n}.npy")
    result = SUBPROCESSES[name](bank, queries, workdir)
    (workdir / f"result-{name}-{n}.json").write_text(json.dumps(result))


# --- driver -------------------------------------------------------------------------------------


def _recall(found: list, truth: set, limit: int | None) -> tuple[float, int, int]:
    expected = {p for p in truth if limit is None or p[0] < limit}
    got = {tuple(p) for p in found}
    hits = len(got & expected)
    return (hits / len(expected) if expected else 1.0), len(expected - got), len(got - expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for every engine (default 1)"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.engine:
        engine_main(args.engine, args.n, args.workdir)
        return

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}, "
        f"every engine pinned to {args.threads} thread(s)"
    )
    pinned = os.environ | dict.fromkeys(THREAD_VARIABLES, str(args.threads))
    rng = np.random.default_rng(2026)
    seeds = real_seeds(args.workdir, args.data)
    print(f"real PDQ seeds: {len(seeds)}")
    for n in args.sizes:
        bank = make_bank(n, seeds, rng)
        queries = make_queries(bank, seeds, args.queries, rng)
        np.save(args.workdir / f"bank-{n}.npy", bank)
        np.save(args.workdir / f"queries-{n}.npy", queries)
        del bank
        results = {}
        for name in args.engines:
            cmd = [
                sys.executable,
                __file__,
                "--engine",
                name,
                "--n",
                str(n),
                "--workdir",
                str(args.workdir),
            ]
            try:
                before = os.getloadavg()[0]
                subprocess.run(cmd, check=True, timeout=args.timeout, env=pinned)
                print(f"  {name}: load average {before:.2f} before, {os.getloadavg()[0]:.2f} after")
                out = args.workdir / f"result-{name}-{n}.json"
                results[name] = json.loads(out.read_text())
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"  {name}: failed or timed out ({exc})")
        truth_source = results.get("faiss-flat")
        truth = {tuple(p) for p in truth_source["pairs"]} if truth_source else None
        print(f"\nN = {n:,} bank hashes, {len(queries):,} queries, threshold {THRESHOLD}")
        if truth is not None:
            print(f"  ground truth (exhaustive): {len(truth):,} query-bank pairs within 31")
        print(
            f"  {'engine':<15} {'build s':>8} {'load s':>7} {'RSS MB':>7} {'build RSS':>9} "
            f"{'batched/s':>10} "
            f"{'single/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'recall':>8} {'missed':>7} {'extra':>6}"
        )
        for name, r in results.items():
            recall, missed, extra = ("-", "-", "-")
            if truth is not None:
                rec, mis, ext = _recall(r["pairs"], truth, r.get("pairs_limit"))
                recall, missed, extra = f"{rec:.4%}", str(mis), str(ext)
            load = f"{r['load_s']:.2f}" if r.get("load_s") is not None else "-"
            build_rss = f"{r['build_rss_mb']:.0f}" if r.get("build_rss_mb") else "-"
            print(
                f"  {name:<15} {r['build_s']:>8.1f} {load:>7} {r['rss_mb']:>7.0f} {build_rss:>9} "
                f"{r['batched_per_s']:>10.0f} {r['single_per_s']:>9.0f} "
                f"{r['single_p50_ms']:>7.3f} {r['single_p99_ms']:>7.3f} {recall:>8} "
                f"{missed:>7} {extra:>6}"
            )
        if "ncii" in results:
            r = results["ncii"]
            print(
                f"  ncii chunk width {r.get('width')} bits; single lookups from {r['threads']} "
                f"threads at once: {r['concurrent_per_s']:.0f}/s, p50 "
                f"{r['concurrent_p50_ms']:.3f} ms, p99 {r['concurrent_p99_ms']:.3f} ms"
            )
        print(f"  load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
