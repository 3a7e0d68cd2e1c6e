"""CPU cost of a one-file ``ncii match photo.jpg`` against banks of 10k, 100k and 1M entries.

Each bank is shaped like one the default pipeline builds: per entry, the picture's PDQ hash
plus 14 PDQ variants (crops, small rotations, banded; a few bits to a few dozen bits from the
picture's hash), its four weak 64-bit hashes (phash, dhash, ahash, whash) and its md5 and
sha256: 21 signal rows an entry. The hashes are synthetic (fixed seed) but stored through the
bulk import path (``ncii.service.ingest.add_entries``) with the real row shapes; the query
photo itself is banked too, so the match finds an entry and reports its corroboration.

Every match runs the installed ``ncii`` command in its own process; the figure is that
process's user + system CPU (``wait4``), SQLite running in-process so its work is counted.
``cold`` is the first call with an empty index cache, ``warm`` the median of later calls.
``matcher`` isolates the start-up this benchmark is about: a fresh process hashes the photo
first (imports and hashing are the same at every bank size), then the CPU of opening the
store, starting the :class:`~ncii.service.matching.Matcher` (index cache present) and the one
lookup is measured, as ``ncii match`` does them.

    python bench/match_startup.py                       # 10k and 100k entries
    python bench/match_startup.py --sizes 10000 100000 1000000 --keep /tmp/banks

``--keep`` keeps the generated databases there and reuses them on the next run. Banks above
100k entries are grown from the 100k one (:func:`grow`), as bulk-importing 21M rows takes
over an hour on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ncii.detection.pipeline import BankHash
from ncii.hashing import HashOptions, hash_file
from ncii.service.banks import create_bank
from ncii.service.entries import AddOptions, NewEntry
from ncii.service.ingest import add_entries
from ncii.signals import Signal
from ncii.store.engine import open_store

NCII = str(Path(sys.executable).with_name("ncii"))
PHOTO = Path(__file__).resolve().parents[1] / "tests" / "data" / "meta" / "q0122.jpg"
VARIANTS = (
    *(f"crop_{f / 1000:g}" for f in range(30, 151, 15)),
    "rotate_-3",
    "rotate_-1.5",
    "rotate_1.5",
    "rotate_3",
    "banded",
)


def _near(rng: random.Random, value: int, bits: int, most: int) -> int:
    for bit in rng.sample(range(bits), rng.randint(1, most)):
        value ^= 1 << bit
    return value


def synthetic_entries(count: int, seed: int = 19) -> Iterator[NewEntry]:
    """``count`` entries with the row shapes of the default pipeline's bank side."""
    rng = random.Random(seed)
    for _ in range(count):
        pdq = rng.getrandbits(256)
        weak = rng.getrandbits(64)
        signals = (
            Signal("pdq", f"{pdq:064x}", 100),
            *(
                Signal(kind, f"{_near(rng, weak, 64, 12):016x}")
                for kind in ("phash", "dhash", "ahash", "whash")
            ),
            Signal("md5", f"{rng.getrandbits(128):032x}"),
            Signal("sha256", f"{rng.getrandbits(256):064x}"),
        )
        variants = tuple(
            BankHash(label, f"{_near(rng, pdq, 256, 40):064x}", 100) for label in VARIANTS
        )
        yield NewEntry(signals, variants=variants)


def build(path: Path, entries: int) -> float:
    """A SQLite bank of ``entries`` synthetic entries plus the query photo; seconds taken."""
    url = f"sqlite:///{path}"
    started = time.perf_counter()
    store = open_store(url)
    photo = hash_file(str(PHOTO), options=HashOptions.for_bank())
    with store.begin() as session:
        create_bank(session, "bench", actor="bench")
        add_entries(
            session,
            "bench",
            [NewEntry(photo.signals, variants=photo.pdq_variants)],
            actor="bench",
        )
        add_entries(
            session,
            "bench",
            synthetic_entries(entries - 1),
            actor="bench",
            options=AddOptions(batch_size=20_000),
        )
    store.engine.dispose()
    return time.perf_counter() - started


GROW_FROM = 100_000
"""Banks above this size are grown from the bulk-imported bank of this size (see grow)."""


def grow(source: Path, target: Path, copies: int) -> float:
    """``source`` plus ``copies`` copies of every entry, each signal XORed with a per-copy
    mask (distances within an entry exactly as imported), in SQL: 21M rows through
    ``add_entries`` take over an hour here, the unique index outgrowing the page cache."""
    started = time.perf_counter()
    staging = target.with_suffix(".growing")
    shutil.copy(source, staging)
    connection = sqlite3.connect(staging)
    connection.execute("PRAGMA cache_size=-1500000")
    rng = random.Random(1)
    masks = {k: {n: rng.getrandbits(4 * n) for n in (16, 32, 64)} for k in range(1, copies + 1)}
    connection.create_function(
        "mask", 2, lambda v, k: format(int(v, 16) ^ masks[k][len(v)], f"0{len(v)}x")
    )
    n = connection.execute("SELECT max(id) FROM entries").fetchone()[0]
    columns = (
        "bank_id, status, disabled_until, withdrawn_at, withdraw_reason, external_id, "
        "case_ref, added_by, note, created_at, updated_at"
    )
    for k in range(1, copies + 1):
        connection.execute(
            f"INSERT INTO entries (id, {columns}) SELECT id + {k * n}, {columns} FROM entries"
            f" WHERE id <= {n}"
        )
        connection.execute(
            "INSERT INTO entry_signals (entry_id, bank_id, signal_type, value, quality, variant)"
            f" SELECT entry_id + {k * n}, bank_id, signal_type, mask(value, {k}), quality,"
            f" variant FROM entry_signals WHERE entry_id <= {n} ORDER BY 4"
        )
        connection.commit()
    connection.close()
    staging.rename(target)
    return time.perf_counter() - started


def one_match(url: str, cache: Path, extra: list[str]) -> float:
    """CPU seconds (user + sys) of one ``ncii match`` process; it must find the photo."""
    env = os.environ | {"XDG_CACHE_HOME": str(cache), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [NCII, "match", str(PHOTO), "--db", url, "--format", "jsonl", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 4:
        raise SystemExit(f"ncii match {' '.join(extra)} exited {code}, expected 4:\n{output}")
    return usage.ru_utime + usage.ru_stime


MATCHER_CPU = """
import inspect, sys, time
from ncii.cli.match_cmd import _query_options
from ncii.detection import get_pipeline
from ncii.hashing import HashOptions, hash_file
from ncii.service import snapshots
from ncii.service.matching import Matcher
from ncii.store.engine import open_store

url, photo, pipeline = sys.argv[1:]
hashes = hash_file(photo, options=HashOptions(query_regions=get_pipeline(pipeline)))
options = _query_options(None, None, False, pipeline)
extra = {"warm": False} if "warm" in inspect.signature(Matcher).parameters else {}
started = time.process_time()
store = open_store(url)
matcher = Matcher(store, snapshot=snapshots.folder_for(store), **extra)
found = matcher.match(hashes, options=options)
print(time.process_time() - started, matcher.loaded_from_snapshot, len(found))
"""


def matcher_cpu(url: str, cache: Path, pipeline: str) -> float:
    """CPU seconds of store + Matcher + one lookup in a fresh process (hashing excluded)."""
    env = os.environ | {"XDG_CACHE_HOME": str(cache), "OMP_NUM_THREADS": "1"}
    output = subprocess.run(
        [sys.executable, "-c", MATCHER_CPU, url, str(PHOTO), pipeline],
        env=env,
        cwd=cache.parent,  # not the checkout: PYTHONPATH decides which ncii runs
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if output[2] == "0":
        raise SystemExit(f"the {pipeline} matcher found nothing")
    return float(output[0])


PIPELINES = {"default": [], "pdq": ["--pipeline", "pdq"]}


def measure(url: str, cache: Path, warm_runs: int) -> list[float]:
    """CPU seconds: a cold default call, then per pipeline the median warm call and the
    median matcher cost. Runs of the two pipelines alternate, so load changes hit both."""
    shutil.rmtree(cache, ignore_errors=True)
    cold = one_match(url, cache, [])
    warm: dict[str, list[float]] = {name: [] for name in PIPELINES}
    matcher: dict[str, list[float]] = {name: [] for name in PIPELINES}
    for _ in range(warm_runs):
        for name, extra in PIPELINES.items():
            warm[name].append(one_match(url, cache, extra))
            matcher[name].append(matcher_cpu(url, cache, name))
    return [
        cold,
        *(statistics.median(warm[name]) for name in PIPELINES),
        *(statistics.median(matcher[name]) for name in PIPELINES),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the databases here")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ncii-match-startup-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, OMP_NUM_THREADS=1")
    base = one_match_baseline(folder)
    print(f"baseline: `ncii match` on an empty bank {base:.2f} s CPU")
    print(
        "| entries | signal rows | cold, default | warm, default | warm, pdq "
        "| matcher, default | matcher, pdq | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    try:
        for size in args.sizes:
            path = folder / f"bank-{size}.db"
            if not path.exists() and size > GROW_FROM and size % GROW_FROM == 0:
                source = folder / f"bank-{GROW_FROM}.db"
                if not source.exists():
                    build(source, GROW_FROM)
                seconds = grow(source, path, size // GROW_FROM - 1)
                print(f"(grew {size:,} entries in {seconds:.0f} s)", file=sys.stderr)
            elif not path.exists():
                seconds = build(path, size)
                print(f"(built {size:,} entries in {seconds:.0f} s)", file=sys.stderr)
            url = f"sqlite:///{path}"
            figures = measure(url, folder / "cache", args.warm_runs)
            cells = " | ".join(f"{x:.2f}" for x in figures)
            load = os.getloadavg()[0]
            print(f"| {size:,} | {21 * size:,} | {cells} | {load:.2f} |", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def one_match_baseline(folder: Path) -> float:
    """The fixed cost: start-up, hashing and an empty index (a bank holding only the photo)."""
    path = folder / "bank-1.db"
    if not path.exists():
        build(path, 1)
    return measure(f"sqlite:///{path}", folder / "cache", 3)[1]


if __name__ == "__main__":
    main()
