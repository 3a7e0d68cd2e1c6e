"""Video hashing speed against Meta's ``vpdq``: seconds of video vPDQ-hashed per second, one
frame a second, on one core and on two.

The clips are in ``../shared/data`` (beside the checkout, or ``--data DIR`` /
``NCII_SHARED_DATA``): Meta's TMK samples (with bars and logos: the overlay search runs), the
moviepy and OpenCV samples, from 180p to 1080p, VP8, H.264, MPEG-4 part 2 and MS-MPEG-4.

Meta's ``vpdq`` (PyPI, C++ over the system FFmpeg) runs in its own environment, as a worker
process fed one clip at a time, interleaved with ncii's runs of the same clip:

    python3 -m venv bench/.venv-vpdq && bench/.venv-vpdq/bin/pip install vpdq
    # vpdq builds against FFmpeg's headers: apt-get install libavcodec-dev libavformat-dev
    #   libavdevice-dev libavfilter-dev libswresample-dev libswscale-dev libavutil-dev

* **one core**: both processes pinned to the same CPU, one thread each (ncii's FFmpeg on one
  thread, ``vpdq`` with ``thread_count=1``); CPU seconds of the process, best of ``--repeat``.
* **two cores**: unpinned, wall seconds, best of ``--repeat``; ncii with FFmpeg on two
  threads, ``vpdq`` at its best of 1, 2 and automatic threads.

ncii hashes as ``ncii hash`` does (``compute_vpdq`` with the bars and overlay search), from the
file's bytes (read inside the timing). "same" is the share of the frames both sampled (same
frame number) whose PDQ hashes are bit-for-bit equal. The machine is shared: the load average
is printed before and after; the targets are judged on ratios.

    .venv/bin/python bench/hash_video.py            # ~3 minutes on 2 busy cores
    .venv/bin/python bench/hash_video.py --quick    # three clips

Targets (issue 19): ncii ≥ 1.5× vpdq on one core and ≥ 2× on two, every clip.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av

from ncii.signals.vpdq import compute_vpdq
from ncii.video import probe

REPO = Path(__file__).resolve().parent.parent
VPDQ_PYTHON = REPO / "bench" / ".venv-vpdq" / "bin" / "python"
TARGET_ONE_CORE = 1.5
TARGET_TWO_CORES = 2.0

CLIPS = [
    "moviepy_media/media/big_buck_bunny_0_30.webm",
    "threatexchange/tmk/sample-videos/chair-22-with-large-logo-bar.mp4",
    "threatexchange/tmk/sample-videos/pattern-sd-with-small-logo-bar.mp4",
    "threatexchange/tmk/sample-videos/chair-22-sd-grey-bar.mp4",
    "threatexchange/tmk/sample-videos/pattern-hd-no-bar.mp4",
    "moviepy_media/media/smpte-2997.mp4",
    "moviepy_media/media/fire2.mp4",
    "moviepy_media/media/chaplin.mp4",
    "moviepy_media/media/doc_medias/long_examples/example.mp4",
    "opencv_samples_debian/data/Megamind.avi",
    "opencv_samples_debian/data/vtest.avi",
    "perception_testdata/perception/testing/videos/v2.m4v",
]
QUICK = CLIPS[:3]

_WORKER = r"""
import json, sys, time, vpdq
for line in sys.stdin:
    job = json.loads(line)
    cpu = wall = float("inf")
    for _ in range(job["repeat"]):
        c, w = time.process_time(), time.perf_counter()
        features = vpdq.computeHash(job["path"], seconds_per_hash=1.0, thread_count=job["threads"])
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - w)
    frames = {f.frame_number: f.hex for f in features}
    print(json.dumps({"cpu": cpu, "wall": wall, "frames": frames}), flush=True)
"""


class Vpdq:
    """Meta's ``vpdq`` in a worker process of its own environment."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [str(VPDQ_PYTHON), "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def pin(self, cpus: set[int]) -> None:
        os.sched_setaffinity(self.process.pid, cpus)

    def run(self, path: Path, threads: int, repeat: int) -> tuple[float, float, dict[int, str]]:
        """(best CPU s, best wall s, frame number → PDQ hex)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        job = {"path": str(path), "threads": threads, "repeat": repeat}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        return answer["cpu"], answer["wall"], {int(k): v for k, v in answer["frames"].items()}

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def ncii_run(path: Path, threads: int, repeat: int) -> tuple[float, float, dict[int, str]]:
    """(best CPU s, best wall s, frame number → PDQ hex), as :meth:`Vpdq.run`."""
    cpu = wall = math.inf
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        hashes = compute_vpdq(path.read_bytes(), name=path.name, threads=threads)
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - w)
    return cpu, wall, {f.index: f.pdq for f in hashes.frames}


@dataclass(frozen=True, slots=True)
class Row:
    clip: str
    codec: str
    size: str
    seconds: float
    ncii_one: float
    vpdq_one: float
    ncii_two: float
    vpdq_two: float
    vpdq_threads: int
    common: int
    same: int


def measure(vpdq: Vpdq, path: Path, repeat: int, cores: list[int]) -> Row:
    info = probe(path.read_bytes(), name=path.name)
    seconds = compute_vpdq(path.read_bytes(), name=path.name).duration
    one = {cores[-1]}
    os.sched_setaffinity(0, one)
    vpdq.pin(one)
    try:
        ncii_run(path, 1, 1)  # warm up: numba kernels, page cache
        vpdq.run(path, 1, 1)
        ncii_one, _, ours = ncii_run(path, 1, repeat)
        vpdq_one, _, theirs = vpdq.run(path, 1, repeat)
    finally:
        os.sched_setaffinity(0, set(cores))
        vpdq.pin(set(cores))
    two = min(len(cores), 2)
    _, ncii_two, _ = ncii_run(path, two, repeat)
    best = min((vpdq.run(path, threads, repeat)[1], threads) for threads in (1, two, 0))
    common = sorted(set(ours) & set(theirs))
    return Row(
        clip=path.name,
        codec=info.codec,
        size=f"{info.width}x{info.height}",
        seconds=seconds,
        ncii_one=ncii_one,
        vpdq_one=vpdq_one,
        ncii_two=ncii_two,
        vpdq_two=best[0],
        vpdq_threads=best[1],
        common=len(common),
        same=sum(ours[n] == theirs[n] for n in common),
    )


def find_data(explicit: str | None) -> Path:
    beside = (REPO.parent / "shared/data", REPO.parent.parent / "shared/data")
    for candidate in (explicit, os.environ.get("NCII_SHARED_DATA"), *beside):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    sys.exit("no ../shared/data: pass --data DIR or set NCII_SHARED_DATA")


def machine() -> str:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("av", "numpy", "numba")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, {versions}, PyAV's FFmpeg libavcodec "
        f"{'.'.join(map(str, av.library_versions['libavcodec']))}"
    )


def report(rows: list[Row]) -> None:
    header = (
        f"{'clip':34} {'codec':8} {'size':>9} {'video s':>7} | {'ncii 1c':>7} {'vpdq 1c':>7} "
        f"{'ncii x':>6} {'vpdq x':>6} {'ratio':>6} | {'ncii 2c':>7} {'vpdq 2c':>7} {'thr':>3} "
        f"{'ratio':>6} | same"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.clip[:34]:34} {r.codec[:8]:8} {r.size:>9} {r.seconds:7.1f} | "
            f"{r.ncii_one:7.3f} {r.vpdq_one:7.3f} {r.seconds / r.ncii_one:6.1f} "
            f"{r.seconds / r.vpdq_one:6.1f} {r.vpdq_one / r.ncii_one:5.2f}x | "
            f"{r.ncii_two:7.3f} {r.vpdq_two:7.3f} {r.vpdq_threads:3d} "
            f"{r.vpdq_two / r.ncii_two:5.2f}x | {r.same}/{r.common}"
        )
    one = [r.vpdq_one / r.ncii_one for r in rows]
    two = [r.vpdq_two / r.ncii_two for r in rows]
    print()
    print(
        "1c: one core, CPU seconds (x: video seconds per CPU second); 2c: two cores, wall "
        "seconds (thr: vpdq's best thread count, 0 = automatic); ratio: vpdq ÷ ncii time; "
        "same: frames sampled by both with bit-identical PDQ."
    )
    for label, ratios, target in (
        ("one core", one, TARGET_ONE_CORE),
        ("two cores", two, TARGET_TWO_CORES),
    ):
        geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
        verdict = "PASS" if min(ratios) >= target else "FAIL"
        print(
            f"{verdict}: {label}: ncii ÷ vpdq speed {min(ratios):.2f}x worst, {geomean:.2f}x "
            f"geometric mean (target ≥ {target}x every clip)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="three clips (bunny, two logos)")
    args = parser.parse_args()
    if not VPDQ_PYTHON.is_file():
        sys.exit(f"no {VPDQ_PYTHON}: install Meta's vpdq there (see this script's docstring)")
    data = find_data(args.data)
    print(machine())
    cores = sorted(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    vpdq = Vpdq()
    rows = []
    try:
        for relative in QUICK if args.quick else CLIPS:
            path = data / relative
            if not path.is_file():
                print(f"missing {relative}, skipped")
                continue
            rows.append(measure(vpdq, path, args.repeat, cores))
            print(f"  {path.name}: done", file=sys.stderr)
    finally:
        vpdq.close()
    load_after = os.getloadavg()
    report(rows)
    print(
        "load average (1, 5, 15 min): "
        f"{' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after"
    )


if __name__ == "__main__":
    main()
