"""Video hashing speed: seconds to vPDQ-hash real clips on one core, as a multiple of real time.

The clips are in ``../shared/data`` (beside the checkout, or ``--data DIR`` / ``NCII_SHARED_DATA``):
the 30 s 720p Big Buck Bunny WebM (VP8) first, then H.264, MPEG-4 part 2 and MS-MPEG-4 clips
from 180p to 1080p and an animated GIF. Each clip is hashed with ncii's public
``compute_vpdq`` from bytes already in memory:

* at one frame per second (the default) on one core: the process is pinned to one CPU and
  FFmpeg decodes on one thread, so the figure is what one worker of a batch achieves;
* at every frame on one core (what a bank built for re-timed copies costs);
* at one frame per second with FFmpeg's threads on every core (one big upload, wall clock).

For reference, the cost of decoding alone (PyAV, every frame, nothing converted or hashed) is
timed too, so the rest is what ncii adds. Each figure is the best of ``--repeat`` runs (3) of
CPU time (one core) or wall time (every core); the load the rest of the machine put on it is
printed, because a shared machine slows every figure.

    .venv/bin/python bench/hash_video.py            # ~2 minutes on 2 cores
    .venv/bin/python bench/hash_video.py --quick    # Big Buck Bunny only

Target: ≥ 20x real time for the 720p clip at one frame per second on one core.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av

from ncii.signals.vpdq import compute_vpdq
from ncii.video import probe

REPO = Path(__file__).resolve().parent.parent
TARGET_720P = 20.0

CLIPS = [
    "moviepy_media/media/big_buck_bunny_0_30.webm",
    "moviepy_media/media/smpte-2997.mp4",
    "moviepy_media/media/fire2.mp4",
    "moviepy_media/media/chaplin.mp4",
    "moviepy_media/media/doc_medias/long_examples/example.mp4",
    "threatexchange/tmk/sample-videos/chair-22-sd-grey-bar.mp4",
    "threatexchange/tmk/sample-videos/pattern-hd-no-bar.mp4",
    "opencv_samples_debian/data/Megamind.avi",
    "opencv_samples_debian/data/vtest.avi",
    "perception_testdata/perception/testing/videos/v2.m4v",
    "moviepy_media/media/pigs_in_a_polka.gif",
]


@dataclass(frozen=True, slots=True)
class Row:
    clip: str
    codec: str
    size: str
    seconds: float
    decoded: int
    sampled: int
    decode_only: float
    one_fps: float
    every_frame: float
    all_cores: float


def find_data(explicit: str | None) -> Path:
    for candidate in (explicit, os.environ.get("NCII_SHARED_DATA"), REPO.parent / "shared/data"):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    sys.exit("no ../shared/data: pass --data DIR or set NCII_SHARED_DATA")


def best(step: Callable[[], object], repeat: int, *, wall: bool = False) -> float:
    """Best of ``repeat`` runs, in CPU seconds of this process (or wall seconds)."""
    clock = time.perf_counter if wall else time.process_time
    times = []
    for _ in range(repeat):
        started = clock()
        step()
        times.append(clock() - started)
    return min(times)


def decode_only(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def measure(name: str, data: bytes, repeat: int) -> Row:
    """Every one-core figure (``all_cores`` is filled in by the caller, unpinned)."""
    info = probe(data, name=name)
    once = compute_vpdq(data, name=name, threads=1)
    is_animation = info.container in ("gif", "apng", "webp")
    return Row(
        clip=name,
        codec=info.codec,
        size=f"{info.width}x{info.height}",
        seconds=once.duration,
        decoded=once.frame_count,
        sampled=len(once.frames),
        decode_only=float("nan") if is_animation else best(lambda: decode_only(data), repeat),
        one_fps=best(lambda: compute_vpdq(data, threads=1), repeat),
        every_frame=best(lambda: compute_vpdq(data, every=0, threads=1), repeat),
        all_cores=float("nan"),
    )


def machine() -> str:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("av", "numpy", "numba", "pillow")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, {versions}, FFmpeg libavcodec "
        f"{'.'.join(map(str, av.library_versions['libavcodec']))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="Big Buck Bunny only")
    args = parser.parse_args()
    data = find_data(args.data)
    print(machine())
    cores = sorted(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    rows = []
    for relative in CLIPS[:1] if args.quick else CLIPS:
        path = data / relative
        if not path.is_file():
            print(f"missing {relative}, skipped")
            continue
        clip = path.read_bytes()
        os.sched_setaffinity(0, {cores[-1]})  # one core for the one-core figures
        try:
            compute_vpdq(clip, threads=1)  # warm up: numba kernels, allocator
            row = measure(path.name, clip, args.repeat)
        finally:
            os.sched_setaffinity(0, set(cores))
        all_cores = best(lambda clip=clip: compute_vpdq(clip, threads=0), args.repeat, wall=True)
        rows.append(replace(row, all_cores=all_cores))
    load_after = os.getloadavg()[0]

    header = (
        f"{'clip':34} {'codec':9} {'size':>9} {'video s':>7} {'frames':>6} {'hashed':>6} "
        f"{'decode s':>8} {'1 fps s':>7} {'1 fps x':>7} {'all fr s':>8} {'all fr x':>8} "
        f"{'cores x':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.clip[:34]:34} {r.codec[:9]:9} {r.size:>9} {r.seconds:7.1f} {r.decoded:6d} "
            f"{r.sampled:6d} {r.decode_only:8.2f} {r.one_fps:7.2f} {r.seconds / r.one_fps:6.1f}x "
            f"{r.every_frame:8.2f} {r.seconds / r.every_frame:7.1f}x "
            f"{r.seconds / r.all_cores:6.1f}x"
        )
    print()
    print(
        "decode s: PyAV decoding every frame, nothing else (one core); 1 fps / all fr: ncii "
        "compute_vpdq at one frame per second / every frame, one core, CPU seconds; "
        "x: video seconds per second of hashing; cores x: 1 fps, FFmpeg threads on every core, "
        "wall clock."
    )
    print(f"load average (1 min) of the machine: {load_before:.2f} before, {load_after:.2f} after")
    bunny = next((r for r in rows if r.clip.startswith("big_buck_bunny")), None)
    if bunny is not None:
        speed = bunny.seconds / bunny.one_fps
        verdict = "PASS" if speed >= TARGET_720P else "FAIL"
        print(f"{verdict}: 720p at 1 frame/s on one core = {speed:.1f}x real time (target ≥ 20x)")


if __name__ == "__main__":
    main()
