"""Mutation fuzzing and decompression bombs: what hostile media costs ncii, and that every
input ends as a hash or a one-line error.

Mutants are made from small real JPEG, PNG, GIF, WebP, TIFF, HEIC, MP4 and WebM files in
``../shared/data`` by the seeded fuzzer of ``tests/hostile_media.py`` (bit flips, truncation,
byte insertion and deletion, chunk duplication, interesting values; one to three per mutant)
— the same one ``tests/test_fuzz_media.py`` runs on 320 mutants. Each input is hashed by
``ncii.hash_bytes`` in its own forked process with a wall-time limit (a hang is killed and
counted) and an address-space limit (so a memory blow-up shows as ncii's own error or a
crash, not as the machine swapping). Figures per format: outcomes, the error kinds, the
slowest mutant and the peak memory.

The bombs (``--bombs``) are built on the fly: PNG zlib bombs above and below ncii's 150 MP
image limit, GIF frame bombs (one-pixel frames on an 8K canvas) above and at the 2 G pixel
animation budget, and H.264 MP4s whose SPS claims 16384x16384, 8192x8192 and 7680x4320.

    .venv/bin/python bench/fuzz_media.py --mutants 10000        # ~8 minutes on 2 busy cores
    .venv/bin/python bench/fuzz_media.py --mutants 0 --bombs     # the bombs alone
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import hostile_media as hm  # noqa: E402


def _data_dir(explicit: str | None) -> Path:
    for candidate in (explicit, os.environ.get("NCII_SHARED_DATA"), REPO.parent / "shared/data"):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    raise SystemExit("no ../shared/data: pass --data DIR or set NCII_SHARED_DATA")


def fuzz(args: argparse.Namespace) -> dict[str, object]:
    seeds = hm.load_seeds(_data_dir(args.data))
    hm.warm_up(seeds)
    per_format = max(1, args.mutants // len(seeds))
    made = {name: (kind, how) for kind, name, _, how in hm.mutants(seeds, per_format, args.seed)}
    runner = hm.Runner(jobs=args.jobs, timeout=args.timeout, memory_limit=args.memory_limit)
    stats: dict[str, dict[str, object]] = {}
    bad = []
    started = time.perf_counter()
    items = ((name, data) for _, name, data, _ in hm.mutants(seeds, per_format, args.seed))
    for done, verdict in enumerate(runner.run(items), 1):
        kind, how = made[verdict.name]
        row = stats.setdefault(
            kind,
            {
                "seed_bytes": len(seeds[kind]),
                "mutants": 0,
                "outcomes": collections.Counter(),
                "errors": collections.Counter(),
                "slowest": (0.0, ""),
                "peak_rss_mb": 0.0,
                "peak_growth_mb": 0.0,
            },
        )
        row["mutants"] += 1  # type: ignore[operator]
        row["outcomes"][verdict.outcome] += 1  # type: ignore[index]
        if verdict.outcome == "refused":
            row["errors"][verdict.detail.split(":", 1)[0]] += 1  # type: ignore[index]
        if verdict.seconds > row["slowest"][0]:  # type: ignore[index]
            row["slowest"] = (round(verdict.seconds, 3), f"{verdict.name} ({how})")
        row["peak_rss_mb"] = max(row["peak_rss_mb"], verdict.max_rss_kb / 1024)  # type: ignore[call-overload]
        row["peak_growth_mb"] = max(row["peak_growth_mb"], verdict.rss_growth_kb / 1024)  # type: ignore[call-overload]
        if not verdict.well_behaved:
            bad.append(f"{verdict.name} ({how}): {verdict.outcome}: {verdict.detail}")
        if args.progress and done % 500 == 0:
            print(f"  {done} mutants, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(
        f"\n{len(made)} mutants (seed {args.seed}) in {seconds:.0f} s, {args.jobs} at a time, "
        f"{hm.cpu_load()} at the end"
    )
    print(
        f"{'format':6} {'seed B':>7} {'mutants':>7} {'hashed':>6} {'refused':>7} {'other':>5} "
        f"{'slowest s':>9} {'peak RSS MB':>11} {'growth MB':>9}  errors"
    )
    for kind, row in stats.items():
        outcomes = row["outcomes"]
        other = sum(n for o, n in outcomes.items() if o not in ("hashed", "refused"))  # type: ignore[union-attr]
        errors = ", ".join(f"{k} {n}" for k, n in row["errors"].most_common())  # type: ignore[union-attr]
        print(
            f"{kind:6} {row['seed_bytes']:>7} {row['mutants']:>7} {outcomes['hashed']:>6} "  # type: ignore[index]
            f"{outcomes['refused']:>7} {other:>5} {row['slowest'][0]:>9.2f} "  # type: ignore[index]
            f"{row['peak_rss_mb']:>11.0f} {row['peak_growth_mb']:>9.0f}  {errors}"
        )
    for kind, row in stats.items():
        print(f"slowest {kind}: {row['slowest'][0]:.2f} s {row['slowest'][1]}")  # type: ignore[index]
    print(f"not well behaved: {len(bad)}")
    for line in bad[:50]:
        print("  " + line[:2000])
    return {
        "mutants": len(made),
        "seed": args.seed,
        "seconds": seconds,
        "formats": stats,
        "bad": bad,
        "load": hm.cpu_load(),
    }


BOMBS = {
    "png-400mp": ("PNG zlib bomb, 20000x20000 1-bit", lambda: hm.png_zlib_bomb(20_000, 20_000)),
    "png-144mp": (
        "PNG zlib bomb, 12000x12000 1-bit (under the limit)",
        lambda: hm.png_zlib_bomb(12_000, 12_000),
    ),
    "gif-5000x8k": ("GIF frame bomb, 5,000 frames 7680x4320", lambda: hm.gif_frame_bomb()),
    "gif-100x8k": ("GIF frame bomb, 100 frames 7680x4320", lambda: hm.gif_frame_bomb(frames=100)),
    "gif-60x8k": (
        "GIF frame bomb, 60 frames 7680x4320 (at the budget)",
        lambda: hm.gif_frame_bomb(frames=60),
    ),
    "mp4-16384": ("H.264 MP4 claiming 16384x16384", lambda: hm.mp4_claiming(16384, 16384)),
    "mp4-8192": ("H.264 MP4 claiming 8192x8192", lambda: hm.mp4_claiming(8192, 8192)),
    "mp4-7680x4320": (
        "H.264 MP4 claiming 7680x4320, 10 frames (at the frame limit)",
        lambda: hm.mp4_claiming(7680, 4320),
    ),
}


def bombs(args: argparse.Namespace) -> dict[str, object]:
    hm.warm_up({"gif": hm.gif_frame_bomb(64, 64, 3), "mp4": hm.small_mp4()})
    runner = hm.Runner(jobs=1, timeout=args.bomb_timeout, memory_limit=args.memory_limit)
    results = {}
    print(
        f"\n{'bomb':14} {'file B':>8} {'outcome':8} {'s':>6} {'peak RSS MB':>11} "
        f"{'growth MB':>9}  detail"
    )
    for key, (label, make) in BOMBS.items():
        data = make()
        (verdict,) = runner.run(iter([(f"{key}.bin", data)]))
        results[key] = {
            "label": label,
            "bytes": len(data),
            "outcome": verdict.outcome,
            "seconds": round(verdict.seconds, 3),
            "detail": verdict.detail,
            "peak_rss_mb": round(verdict.max_rss_kb / 1024),
            "growth_mb": round(verdict.rss_growth_kb / 1024),
        }
        print(
            f"{key:14} {len(data):>8} {verdict.outcome:8} {verdict.seconds:>6.2f} "
            f"{verdict.max_rss_kb / 1024:>11.0f} {verdict.rss_growth_kb / 1024:>9.0f}  "
            f"{verdict.detail[:150]}"
        )
    print(hm.cpu_load())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=10_000, help="in all, split by format")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant")
    parser.add_argument("--bomb-timeout", type=float, default=300.0)
    parser.add_argument(
        "--memory-limit", type=int, default=3 * 1024**3, help="address space of each child, bytes"
    )
    parser.add_argument("--bombs", action="store_true", help="also the decompression bombs")
    parser.add_argument("--data", help="../shared/data")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {}
    if args.mutants:
        report["fuzz"] = fuzz(args)
    if args.bombs:
        report["bombs"] = bombs(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
