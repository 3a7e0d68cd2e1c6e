"""Import a million PDQ hashes from CSV into SQLite and PostgreSQL, and export them back.

Each step runs the installed ``ncii`` command in its own process, so the figures are what a
user gets (start-up and all), and peak RSS is that process's alone (``wait4``).

    python bench/import_hashes.py                      # 1,000,000 rows, SQLite + PostgreSQL
    python bench/import_hashes.py --rows 100000 --no-postgres
    python bench/import_hashes.py --postgres postgresql://postgres@127.0.0.1:5432/test

The CSV is generated from a fixed seed and shaped like a real bank: PDQ hashes with balanced
bits, a few percent of them near-duplicates of earlier ones (edits of the same photo, 1-30
bits apart), qualities mostly 70-100, a source id per hash, case references shared by a few
hashes, about 1.5% withdrawn and 0.5% disabled. PostgreSQL gets a scratch database on the
server given, dropped afterwards. Targets: SQLite <= 30 s, PostgreSQL <= 60 s, export in
bounded memory.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NCII = str(Path(sys.executable).with_name("ncii"))
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = ("signal_type", "value", "quality", "status", "external_id", "case_ref", "note")


def generate(path: Path, rows: int, seed: int = 20240601) -> None:
    """A realistic bank as CSV, deterministic for a given seed and size."""
    rng = random.Random(seed)
    recent: list[int] = []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        case = 0
        for _ in range(rows):
            if recent and rng.random() < 0.04:  # an edit of a recent photo
                value = rng.choice(recent)
                for bit in rng.sample(range(256), rng.randint(1, 30)):
                    value ^= 1 << bit
            else:
                value = rng.getrandbits(256)
            recent.append(value)
            if len(recent) > 1000:
                recent.pop(0)
            if rng.random() < 0.35:
                case += 1
            roll = rng.random()
            status = "withdrawn" if roll < 0.015 else "disabled" if roll < 0.02 else "active"
            quality = min(100, max(50, int(rng.gauss(88, 10))))
            writer.writerow(
                ("pdq", f"{value:064x}", quality, status, f"src-{rng.getrandbits(64):016x}",
                 f"CASE-{case:07d}", "")
            )  # fmt: skip
    # Near-duplicates flip bits, so values stay distinct; check rather than assume.
    with path.open() as handle:
        next(handle)
        distinct = len({line.split(",", 2)[1] for line in handle})
    if distinct != rows:
        raise SystemExit(f"generated {rows} rows but only {distinct} distinct hashes")


@dataclass
class Step:
    engine: str
    step: str
    rows: int
    seconds: float
    cpu_seconds: float
    """User + system time of the ncii process (the database server's is not counted)."""
    peak_rss_mb: float
    output: str


def run(engine: str, step: str, rows: int, args: list[str], url: str) -> Step:
    """Run one ``ncii`` command; measure its wall time and its own peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [NCII, *args, "--db", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{engine} {step} failed ({process.returncode}):\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return Step(engine, step, rows, seconds, cpu, usage.ru_maxrss / 1024, output.strip())


def bench_engine(engine: str, url: str, data: Path, rows: int, out_dir: Path) -> list[Step]:
    run(engine, "create", 0, ["bank", "create", "bench", "--source", "stopncii"], url)
    exported = out_dir / f"export-{engine}.csv"
    steps = [
        run(engine, "import", rows, ["import", "bench", str(data), "--format", "csv"], url),
        run(engine, "re-import", rows, ["import", "bench", str(data), "--format", "csv"], url),
        run(engine, "export csv", rows, ["export", "bench", "-f", "csv", "-o", str(exported)], url),
        run(engine, "export tx", rows, ["export", "bench", "-f", "tx", "-o", os.devnull], url),
    ]
    with exported.open() as handle:
        written = sum(1 for _ in handle) - 1
    if written != rows:
        raise SystemExit(f"{engine}: exported {written} rows, expected {rows}")
    if f"{rows:,} added" not in steps[0].output or f"{rows:,} already there" not in steps[1].output:
        raise SystemExit(
            f"{engine}: unexpected import results:\n{steps[0].output}\n{steps[1].output}"
        )
    return steps


def scratch_postgres(server: str) -> tuple[str, str]:
    import psycopg

    name = f"ncii_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}", name


def drop_postgres(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("NCII_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="An existing database on the server to use (a scratch one is created beside it).",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--workdir", type=Path, help="Keep the CSV and exports here.")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ncii-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"pdq-{args.rows}.csv"
    if not data.exists():
        started = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {data} in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    load_before = os.getloadavg()[0]
    steps: list[Step] = []
    sqlite = workdir / "bench.db"
    for leftover in workdir.glob("bench.db*"):
        leftover.unlink()
    try:
        steps += bench_engine("sqlite", f"sqlite:///{sqlite}", data, args.rows, workdir)
        if not args.no_postgres:
            url, name = scratch_postgres(args.postgres)
            try:
                steps += bench_engine("postgresql", url, data, args.rows, workdir)
            finally:
                drop_postgres(args.postgres, name)
    finally:
        for leftover in workdir.glob("bench.db*"):
            leftover.unlink()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\n{args.rows:,} PDQ hashes; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n"
    )
    print("| engine | step | rows | seconds | rows/s | ncii CPU s | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for s in steps:
        print(
            f"| {s.engine} | {s.step} | {s.rows:,} | {s.seconds:.1f} | "
            f"{s.rows / s.seconds:,.0f} | {s.cpu_seconds:.1f} | {s.peak_rss_mb:.0f} |"
        )


if __name__ == "__main__":
    main()
