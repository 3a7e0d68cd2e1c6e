"""Image hashing throughput: ncii against python-threatexchange's PDQ hasher, same files, same run.

The set: ``--count`` (default 1,000) real JPEGs made from the original photos in
``../shared/data`` (Kodak, Thorn perception, OpenCV samples, Meta's bridge photo, Caltech-101),
cropped to 4:3 (a quarter of them portrait), resized (mostly upscaled) to six phone-photo
sizes from 0.3 MP to 12 MP (4032x3024), given sensor-like grain (``--grain``, sigma 6) and saved
at JPEG quality 90. The grain makes upscaled photos weigh what camera photos weigh (12 MP: ~2.7 MB
on average, as phone JPEGs; without it ~0.9 MB), which matters because every decoder has to
read the whole entropy-coded stream, however small it decodes.
The size mix is the ``SIZE_CLASSES`` table below and is printed with the results; the set is
the same for the same ``--seed`` and ``--count``.

Each hasher runs on 1 core and on every core (``--jobs``, default all): ncii through its
public batch API ``ncii.hashing.hash_many`` (PDQ only, then every signal), python-threatexchange
through ``pdq_from_file`` in a loop or a ``multiprocessing.Pool``. Every size class is timed as
its own batch, and the whole shuffled set as one batch ("overall"); pool start-up is inside the
timings, as it is for a user. Files are read from the page cache (they were just written).
1-core figures are CPU time, multi-core ones wall time on a machine that other processes leave
alone (see ``ForeignLoad``); ``--profile N`` splits the pipelines into stages instead.

Then the PDQ hashes are compared: ncii's default pipeline (shrink to 512 px, Meta's reference)
against python-threatexchange (full resolution), and ``HashOptions.full_resolution()`` against
python-threatexchange, which must agree to the bit.

python-threatexchange is installed in the benchmark's own venv, never in the project's::

    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -e . threatexchange
    bench/.venv/bin/python bench/hash_images.py --quick     # smoke test, a minute or two
    bench/.venv/bin/python bench/hash_images.py             # the real run, ~25 minutes

``--quick`` hashes 24 images as one batch and never waits for a quiet machine (its figures
are flagged when other processes interfered: a smoke test, not a measurement). The generated
images live in a temporary folder removed on exit, on Ctrl-C and on SIGTERM; a run killed
outright (SIGKILL) leaves it behind, and the next run removes it.

``--per-size N`` instead times N images at each of 0.3, 1, 3 and 12 MP (smooth and
camera-like), engines and sizes interleaved over ``--repeats`` runs, 1-core figures as CPU time
(issue 19's table; the machine is shared, so the load average is printed with it).

``bench/.venv*/`` is git-ignored.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    # Every engine runs one thread per process (pools give each worker its own): numpy, scipy
    # and pywt must not add BLAS/OpenMP threads to one engine and not the other.
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, features  # noqa: E402

from ncii.hashing import HashOptions, hash_many  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

JPEG_QUALITY = 90
PORTRAIT_SHARE = 0.25
"""A quarter of the photos are portrait (height > width), as phones take them."""
CALTECH_SHARE = 0.5
"""Half the photos come from Caltech-101 (~300x200 web photos, upscaled a lot), half from the
larger originals (Kodak 768x512, the 1600x1004 bridge, OpenCV and perception photos)."""
CALTECH_SAMPLE = 400
"""Distinct Caltech-101 photos drawn (seeded) as sources."""

FOREIGN_LIMIT = 0.15
"""A timed batch is re-run when other processes used more than this many cores meanwhile."""

TARGET_OVERALL = 3.0
"""ncii ≥ 3x python-threatexchange's throughput over the whole set, on every core."""
TARGET_12MP = 10.0
"""ncii ≥ 10x python-threatexchange's throughput on 12 MP photos, on every core."""


@dataclass(frozen=True, slots=True)
class SizeClass:
    name: str
    width: int
    height: int
    share: float
    why: str

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


SIZE_CLASSES: tuple[SizeClass, ...] = (
    SizeClass("0.3MP", 640, 480, 0.15, "thumbnails, old phones, screenshots of photos"),
    SizeClass("1.2MP", 1280, 960, 0.20, "messaging apps' re-compressed copies"),
    SizeClass("3MP", 2048, 1536, 0.20, "social networks' 2048 px re-uploads"),
    SizeClass("5MP", 2592, 1944, 0.10, "older phone cameras"),
    SizeClass("8MP", 3264, 2448, 0.10, "front cameras, older phones"),
    SizeClass("12MP", 4032, 3024, 0.25, "current phone main camera (4032x3024)"),
)

OPENCV_PHOTOS = (
    "aero1.jpg",
    "aero3.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "Blender_Suzanne1.jpg",
    "board.jpg",
    "building.jpg",
    "butterfly.jpg",
    "ela_original.jpg",
    "fruits.jpg",
    "graf1.png",
    "HappyFish.jpg",
    "home.jpg",
    "left.jpg",
    "leuvenA.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "smarties.png",
    "squirrel_cls.jpg",
    "starry_night.jpg",
    "stuff.jpg",
)
"""The OpenCV sample images that are photos (not charts, logos, masks or text)."""


# --------------------------------------------------------------------------------------------
# The image set


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything that decides the generated set; a ``--workdir`` with the same spec is reused."""

    count: int
    seed: int
    grain: float
    quality: int
    classes: tuple[tuple[str, int, int, float], ...]


@dataclass(frozen=True, slots=True)
class Job:
    index: int
    source: str
    size_class: str
    width: int
    height: int
    path: str
    seed: int
    grain: float


def find_data(explicit: str | None) -> Path:
    candidates = [Path(explicit)] if explicit else []
    if env := os.environ.get("NCII_SHARED_DATA"):
        candidates.append(Path(env))
    candidates += [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "README.md").is_file():
            return candidate
    sys.exit("shared data not found: pass --data or set NCII_SHARED_DATA")


def source_photos(data: Path, seed: int) -> tuple[list[Path], list[Path]]:
    """(larger originals, Caltech-101 sample), in a fixed order."""
    large = sorted((data / "kodak24").glob("*.png"))
    large += sorted((data / "perception_testdata/perception/testing/images").glob("*.jpg"))
    large.append(data / "threatexchange/pdq/data/bridge-mods/aaa-orig.jpg")
    large += [data / "opencv_samples_debian/data" / name for name in OPENCV_PHOTOS]
    missing = [p for p in large if not p.is_file()]
    if missing:
        sys.exit(f"missing source photos: {', '.join(map(str, missing))}")
    caltech_all = sorted((data / "caltech101_negatives/images").glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(caltech_all), size=min(CALTECH_SAMPLE, len(caltech_all)), replace=False)
    return large, [caltech_all[i] for i in sorted(picked)]


def class_counts(count: int) -> list[int]:
    """Images per size class: the shares of ``count``, rounded, summing to ``count``."""
    raw = [c.share * count for c in SIZE_CLASSES]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    return counts


def plan(count: int, seed: int, grain: float, data: Path, workdir: Path) -> list[Job]:
    """The deterministic list of images to make, in the (shuffled) order of the overall run."""
    large, caltech = source_photos(data, seed)
    rng = np.random.default_rng([seed, 1])
    labels = [c for c, n in zip(SIZE_CLASSES, class_counts(count), strict=True) for _ in range(n)]
    order = rng.permutation(len(labels))
    jobs = []
    for index, position in enumerate(order):
        size_class = labels[position]
        pool = caltech if rng.random() < CALTECH_SHARE else large
        source = pool[int(rng.integers(len(pool)))]
        width, height = size_class.width, size_class.height
        if rng.random() < PORTRAIT_SHARE:
            width, height = height, width
        name = f"{index:05d}_{size_class.name}_{source.stem}.jpg"
        jobs.append(
            Job(
                index=index,
                source=str(source),
                size_class=size_class.name,
                width=width,
                height=height,
                path=str(workdir / name),
                seed=int(rng.integers(2**31)),
                grain=grain,
            )
        )
    return jobs


def make_image(job: Job) -> int:
    """Write one JPEG: random 4:3 crop of the source, resized, grain added. Returns its size."""
    rng = np.random.default_rng(job.seed)
    with Image.open(job.source) as opened:
        source = opened.convert("RGB")
    sw, sh = source.size
    aspect = job.width / job.height
    crop_w, crop_h = (sw, sw / aspect) if sw / sh < aspect else (sh * aspect, sh)
    scale = rng.uniform(0.8, 1.0)
    crop_w, crop_h = crop_w * scale, crop_h * scale
    left = rng.uniform(0, sw - crop_w)
    top = rng.uniform(0, sh - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    image = source.resize((job.width, job.height), Image.Resampling.BICUBIC, box=box)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if job.grain > 0:
        image = add_grain(image, job.grain, rng)
    image.save(job.path, "JPEG", quality=JPEG_QUALITY)
    return os.path.getsize(job.path)


def add_grain(image: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    """Gaussian noise per channel, from a 509x509 tile repeated (cheap on 12 MP; 509 is prime,
    so the tile never lines up with JPEG's 8x8 blocks)."""
    tile_side = 509
    tile = np.rint(rng.normal(0.0, sigma, (tile_side, tile_side, 3))).astype(np.int16)
    pixels = np.asarray(image, dtype=np.int16)
    h, w = pixels.shape[:2]
    reps = (-(-h // tile_side), -(-w // tile_side), 1)
    noise = np.tile(tile, reps)[:h, :w]
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def generate(jobs: list[Job], workdir: Path, spec: Spec, processes: int) -> dict[str, int]:
    """Make the set (or reuse it when ``workdir`` holds the same spec). Returns path → bytes."""
    manifest = workdir / "manifest.json"
    wanted = asdict(spec) | {"files": [j.path for j in jobs]}
    wanted = json.loads(json.dumps(wanted))
    if manifest.is_file():
        stored = json.loads(manifest.read_text())
        if stored.get("spec") == wanted and all(Path(j.path).is_file() for j in jobs):
            print(f"reusing the {len(jobs)} images in {workdir}", flush=True)
            return {j.path: os.path.getsize(j.path) for j in jobs}
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("*.jpg"):
        old.unlink()
    started = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        sizes = pool.map(make_image, jobs, chunksize=4)
    print(
        f"generated {len(jobs)} JPEGs in {time.perf_counter() - started:.0f} s into {workdir}",
        flush=True,
    )
    manifest.write_text(json.dumps({"spec": wanted}, indent=1))
    return {j.path: s for j, s in zip(jobs, sizes, strict=True)}


# --------------------------------------------------------------------------------------------
# The hashers


def chunksize(n: int, jobs: int) -> int:
    """ncii's own rule in hash_many, used for python-threatexchange's pool too."""
    return max(1, min(16, n // (jobs * 8)))


def ncii_runner(options: HashOptions) -> Callable[[Sequence[str], int], list[str]]:
    def run(paths: Sequence[str], jobs: int) -> list[str]:
        hashes = []
        for outcome in hash_many(paths, options=options, jobs=jobs):
            if not outcome.ok or outcome.hashes is None:
                raise RuntimeError(f"ncii failed: {outcome.error}")
            signal = outcome.hashes.get("pdq")
            hashes.append(signal.value if signal else "")
        return hashes

    return run


def pytx_pdq(path: str) -> str:
    """python-threatexchange's PDQ of one file (a top-level function, for the Pool)."""
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

    pdq_hex, _quality = pdq_from_file(Path(path))
    return pdq_hex


def pytx_run(paths: Sequence[str], jobs: int) -> list[str]:
    if jobs <= 1:
        return [pytx_pdq(p) for p in paths]
    with multiprocessing.Pool(jobs) as pool:
        return pool.map(pytx_pdq, paths, chunksize=chunksize(len(paths), jobs))


@dataclass(frozen=True, slots=True)
class Hasher:
    key: str
    label: str
    run: Callable[[Sequence[str], int], list[str]]


def hashers() -> list[Hasher]:
    return [
        Hasher("ncii", "ncii PDQ", ncii_runner(HashOptions(signals=("pdq",)))),
        Hasher("ncii_all", "ncii all 7 signals", ncii_runner(HashOptions())),
        Hasher("pytx", "pytx PDQ", pytx_run),
    ]


# --------------------------------------------------------------------------------------------
# Where the time goes (--profile)


def _cpu_ms(step: Callable[[], object]) -> tuple[float, object]:
    """CPU time of one call in this process, in ms (robust to other processes' load)."""
    t0 = time.process_time()
    out = step()
    return (time.process_time() - t0) * 1000, out


def pdqhash_luma(pixels: np.ndarray) -> np.ndarray:
    """The first line of ``pdqhash.compute``: its luma, in float64 numpy, then float32."""
    return (pixels[:, :, 0] * 0.299 + pixels[:, :, 1] * 0.587 + pixels[:, :, 2] * 0.114).astype(
        "float32"
    )


def profile(by_class: dict[str, list[str]], per_class: int) -> None:
    """ncii's and pytx's pipelines cut into stages, CPU ms per image, per size class.

    The ncii stages replay ``ncii.media.decode_image`` step by step (draft to at least twice
    512 px, load, RGB, thumbnail to 512) with ncii's own hashers; "ncii total" is the real
    ``hash_file`` call, to check that the replay adds up.
    """
    import io

    import pdqhash
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

    from ncii.hashing import hash_file, read_media
    from ncii.media import _DRAFT_FACTOR, DEFAULT_MAX_SIDE, to_rgb8
    from ncii.signals.exact import compute_digests
    from ncii.signals.imagehashes import compute_imagehashes
    from ncii.signals.pdq import compute_pdq

    stages = (
        "ncii read",
        "ncii JPEG decode (draft)",
        "ncii shrink to 512",
        "ncii pdqhash 8 dihedral",
        "(pdqhash 1 hash at 512)",
        "(of which pdqhash's numpy luma)",
        "ncii 4 imagehashes",
        "ncii md5+sha256",
        "ncii total, PDQ only",
        "ncii total, all signals",
        "pytx JPEG decode (full)",
        "pytx pdqhash (full res)",
        "pytx total",
    )
    pdq_only = HashOptions(signals=("pdq",))
    first = next(m[0] for m in by_class.values() if m)
    hash_file(first), pdq_from_file(Path(first))  # warm-up: first-call costs
    columns: list[str] = []
    cells: dict[tuple[str, str], float] = {}
    drafted: dict[str, str] = {}
    for name, members in by_class.items():
        sample = members[:per_class]
        if not sample:
            continue
        columns.append(name)
        sums = dict.fromkeys(stages, 0.0)
        for path in sample:
            ms, data = _cpu_ms(lambda p=path: read_media(p))
            sums["ncii read"] += ms
            assert isinstance(data, bytes)

            def decode(data: bytes = data) -> Image.Image:
                image = Image.open(io.BytesIO(data))
                image.getexif()
                target = DEFAULT_MAX_SIDE * _DRAFT_FACTOR  # as ncii.media drafts
                image.draft("RGB", (target, target))
                image.load()
                return image

            ms, image = _cpu_ms(decode)
            sums["ncii JPEG decode (draft)"] += ms
            assert isinstance(image, Image.Image)
            drafted[name] = f"{image.width}x{image.height}"

            def shrink(image: Image.Image = image) -> Image.Image:
                rgb = to_rgb8(image)
                rgb.thumbnail((DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE))
                return rgb

            ms, small = _cpu_ms(shrink)
            sums["ncii shrink to 512"] += ms
            assert isinstance(small, Image.Image)
            sums["ncii pdqhash 8 dihedral"] += _cpu_ms(lambda s=small: compute_pdq(s))[0]
            pixels = np.asarray(small)
            sums["(pdqhash 1 hash at 512)"] += _cpu_ms(lambda x=pixels: pdqhash.compute(x))[0]
            sums["(of which pdqhash's numpy luma)"] += _cpu_ms(lambda x=pixels: pdqhash_luma(x))[0]
            sums["ncii 4 imagehashes"] += _cpu_ms(
                lambda s=small: compute_imagehashes(("phash", "dhash", "ahash", "whash"), s)
            )[0]
            sums["ncii md5+sha256"] += _cpu_ms(lambda d=data: compute_digests(d))[0]
            sums["ncii total, PDQ only"] += _cpu_ms(lambda p=path: hash_file(p, options=pdq_only))[
                0
            ]
            sums["ncii total, all signals"] += _cpu_ms(lambda p=path: hash_file(p))[0]

            def full_decode(path: str = path) -> np.ndarray:
                return np.asarray(Image.open(path))

            ms, array = _cpu_ms(full_decode)
            sums["pytx JPEG decode (full)"] += ms
            sums["pytx pdqhash (full res)"] += _cpu_ms(lambda a=array: pdqhash.compute(a))[0]
            sums["pytx total"] += _cpu_ms(lambda p=path: pdq_from_file(Path(p)))[0]
        for stage in stages:
            cells[stage, name] = sums[stage] / len(sample)
    print(f"\n## Where the time goes: CPU ms per image (mean of {per_class} per class)\n")
    rows = [["decoded at (ncii draft)", *(drafted[c] for c in columns)]]
    rows += [[stage, *(f"{cells[stage, c]:.1f}" for c in columns)] for stage in stages]
    print(table(["stage", *columns], rows))


# --------------------------------------------------------------------------------------------
# Per size (--per-size): where uploads are, interleaved, CPU time


@dataclass(frozen=True, slots=True)
class PerSize:
    name: str
    width: int
    height: int
    camera: bool
    """Sensor-like grain (``--grain``) as camera JPEGs have; without it a smooth upscale."""


PER_SIZE_CLASSES: tuple[PerSize, ...] = (
    PerSize("0.3MP", 640, 480, True),
    PerSize("1MP", 1152, 864, True),
    PerSize("3MP", 2048, 1536, True),
    PerSize("12MP smooth", 4032, 3024, False),
    PerSize("12MP camera", 4032, 3024, True),
)
PER_SIZE_TARGETS = {"0.3MP": 1.5, "1MP": 3.0, "12MP camera": 10.0}
"""Issue 19: ncii PDQ-only ÷ pytx on one core, per size; ncii's default signals ≥ 1x."""


def per_size_jobs(per_class: int, seed: int, grain: float, data: Path, workdir: Path) -> list[Job]:
    """``per_class`` landscape JPEGs per :data:`PER_SIZE_CLASSES` entry, half from Caltech-101."""
    large, caltech = source_photos(data, seed)
    rng = np.random.default_rng([seed, 2])
    jobs = []
    for size in PER_SIZE_CLASSES:
        for i in range(per_class):
            pool = caltech if i % 2 else large
            source = pool[int(rng.integers(len(pool)))]
            slug = size.name.replace(" ", "_")
            jobs.append(
                Job(
                    index=len(jobs),
                    source=str(source),
                    size_class=size.name,
                    width=size.width,
                    height=size.height,
                    path=str(workdir / f"size_{slug}_{i:03d}_{source.stem}.jpg"),
                    seed=int(rng.integers(2**31)),
                    grain=grain if size.camera else 0.0,
                )
            )
    return jobs


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def timed_batch(hasher: Hasher, paths: Sequence[str], cores: int) -> tuple[float, float, list[str]]:
    """(CPU seconds, wall seconds, hashes) of one batch. CPU counts this process and the pool
    workers it waited for (``RUSAGE_CHILDREN``); ncii's forkserver workers are not our
    children, so on 2 cores only wall time is compared."""
    import resource

    def children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    c0, k0, t0 = time.process_time(), children(), time.perf_counter()
    hashes = hasher.run(paths, cores)
    wall = time.perf_counter() - t0
    return time.process_time() - c0 + children() - k0, wall, hashes


def interleaved_one_core(
    engines: Sequence[Hasher], paths: Sequence[str]
) -> dict[Hasher, tuple[float, list[str]]]:
    """Each engine's CPU seconds over ``paths`` (and its hashes), hashing one image at a time
    in this process with the engines taking turns on every image."""
    spent = dict.fromkeys(engines, 0.0)
    found: dict[Hasher, list[str]] = {e: [] for e in engines}
    for path in paths:
        for engine in engines:
            c0 = time.process_time()
            found[engine] += engine.run([path], 1)
            spent[engine] += time.process_time() - c0
    return {e: (spent[e], found[e]) for e in engines}


def per_size(args: argparse.Namespace, data: Path, workdir: Path) -> int:
    """The per-size table of issue 19: ncii PDQ-only, ncii default signals and pytx, on 1 core
    (CPU time, engines taking turns image by image) and on ``--jobs`` cores (wall time of each
    batch, engines in turn), ``--repeats`` times with the order rotated; medians kept."""
    jobs = per_size_jobs(args.per_size, args.seed, args.grain, data, workdir)
    spec = Spec(
        count=args.per_size,
        seed=args.seed,
        grain=args.grain,
        quality=JPEG_QUALITY,
        classes=tuple((c.name, c.width, c.height, float(c.camera)) for c in PER_SIZE_CLASSES),
    )
    sizes = generate(jobs, workdir, spec, max(1, args.jobs))
    by_class = {c.name: [j.path for j in jobs if j.size_class == c.name] for c in PER_SIZE_CLASSES}
    print(f"\n{args.per_size} JPEGs per size, quality {JPEG_QUALITY}, grain {args.grain}:")
    rows = []
    for c in PER_SIZE_CLASSES:
        kb = [sizes[p] / 1000 for p in by_class[c.name]]
        rows.append([c.name, f"{c.width}x{c.height}", f"{min(kb):,.0f}-{max(kb):,.0f}"])
    print(table(["size", "pixels", "KB"], rows))
    if args.profile:
        profile(by_class, args.profile)
        return 0
    engines = hashers()
    cores = sorted({1, max(1, args.jobs)})
    for hasher in engines:  # warm-up: imports, first calls, pool start-up code paths
        hasher.run(by_class[PER_SIZE_CLASSES[0].name][:2], 1)
    cpu: dict[tuple[str, str, int], list[float]] = {}
    wall: dict[tuple[str, str, int], list[float]] = {}
    hashes: dict[tuple[str, str], list[str]] = {}
    print(f"\nbefore: {load_average()}", flush=True)
    for repeat in range(args.repeats):
        for c in PER_SIZE_CLASSES:
            turn = repeat % len(engines)
            order = engines[turn:] + engines[:turn]
            # 1 core: the engines take turns image by image, so a burst of load from other
            # processes lands on all of them alike; the sum over the class is one "batch".
            for hasher, (spent, found) in interleaved_one_core(order, by_class[c.name]).items():
                cpu.setdefault((hasher.key, c.name, 1), []).append(spent)
                hashes.setdefault((hasher.key, c.name), found)
            for hasher in order:
                for n in cores[1:]:
                    spent, elapsed, _ = timed_batch(hasher, by_class[c.name], n)
                    cpu.setdefault((hasher.key, c.name, n), []).append(spent)
                    wall.setdefault((hasher.key, c.name, n), []).append(elapsed)
        print(f"repeat {repeat + 1}/{args.repeats} done: {load_average()}", flush=True)
    return report_per_size(args, by_class, engines, cores, cpu, wall, hashes)


def report_per_size(
    args: argparse.Namespace,
    by_class: dict[str, list[str]],
    engines: list[Hasher],
    cores: list[int],
    cpu: dict[tuple[str, str, int], list[float]],
    wall: dict[tuple[str, str, int], list[float]],
    hashes: dict[tuple[str, str], list[str]],
) -> int:
    names = [c.name for c in PER_SIZE_CLASSES]

    def rate(key: str, size: str, n: int) -> float:
        """Images per second: 1 core from CPU time, more from wall time (medians)."""
        seconds = statistics.median((cpu if n == 1 else wall)[key, size, n])
        return len(by_class[size]) / seconds

    print(f"\n## Images per second, median of {args.repeats} interleaved runs ({load_average()})")
    print("1 core: per CPU second of the process; 2 cores: per wall second (load-dependent)\n")
    rows = []
    for n in cores:
        for hasher in engines:
            rows.append(
                [f"{hasher.label}, {n} core(s)", *(f"{rate(hasher.key, s, n):.1f}" for s in names)]
            )
        for key, label in (("ncii", "ncii PDQ"), ("ncii_all", "ncii default")):
            rows.append(
                [f"{label} ÷ pytx, {n} core(s)"]
                + [f"{rate(key, s, n) / rate('pytx', s, n):.2f}x" for s in names]
            )
    print(table(["images/s", *names], rows))
    spread = max((max(v) - min(v)) / statistics.median(v) for k, v in cpu.items() if k[2] == 1)
    print(f"largest spread of one 1-core batch over its repeats: {spread:.0%} of its median")

    failures = 0
    print("\n## PDQ drift: ncii default (512 px) vs pytx (full resolution)")
    for size in names:
        pairs = zip(hashes["ncii", size], hashes["pytx", size], strict=True)
        d = [distance(a, b) for a, b in pairs]
        same = hashes["ncii", size] == hashes["ncii_all", size]
        ok = max(d) <= 31 and statistics.median(d) <= 10 and same
        failures += not ok
        print(f"  {size:12} max {max(d):3}, median {statistics.median(d):4g}, PDQ-only = "
              f"default: {'yes' if same else 'NO'}  {verdict(ok)}")  # fmt: skip
    print("\n## Targets (1 core, CPU time)")
    for size, target in PER_SIZE_TARGETS.items():
        ratio = rate("ncii", size, 1) / rate("pytx", size, 1)
        ok = verdict(ratio >= target)
        print(f"  ncii PDQ ÷ pytx at {size:12} ≥ {target:4g}x: {ratio:.2f}x {ok}")
    for size in names:
        ratio = rate("ncii_all", size, 1) / rate("pytx", size, 1)
        print(f"  ncii default ÷ pytx at {size:12} ≥ 1x: {ratio:.2f}x {verdict(ratio >= 1)}")
    print(f"\nafter: {load_average()}")
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------
# Other processes on the machine


class ForeignLoad:
    """CPU time used by processes outside this benchmark's process tree while it is entered,
    sampled from ``/proc`` every ``interval`` seconds (in cores: 1.0 = one core kept busy).

    A shared machine (other test suites, a database) makes multi-core figures meaningless, so
    every timed batch is watched and re-run when something else took a noticeable share.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.cores = 0.0
        self._ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _processes() -> dict[int, tuple[int, int]]:
        """pid → (parent pid, user + system ticks so far)."""
        found = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    text = handle.read()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        return found

    @staticmethod
    def _ours(processes: dict[int, tuple[int, int]]) -> set[int]:
        ours = {os.getpid()}
        grew = True
        while grew:
            children = {pid for pid, (ppid, _) in processes.items() if ppid in ours} - ours
            ours |= children
            grew = bool(children)
        return ours

    def _watch(self) -> None:
        before = self._processes()
        while not self._stop.wait(self.interval):
            now = self._processes()
            ours = self._ours(now)
            for pid, (_, ticks) in now.items():
                if pid not in ours:
                    self._ticks += max(0, ticks - before.get(pid, (0, 0))[1])
            before = now

    def __enter__(self) -> ForeignLoad:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self._started
        self.cores = self._ticks / self._hz / wall if wall > 0 else 0.0


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until other processes use under ``limit`` cores for a
    second; return their load in that last second."""
    deadline = time.monotonic() + max_wait
    while True:
        with ForeignLoad() as probe:
            time.sleep(1.0)
        if probe.cores < limit or time.monotonic() > deadline:
            return probe.cores
        time.sleep(2.0)


# --------------------------------------------------------------------------------------------
# Reporting


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    packages = ["ncii", "pdqhash", "pillow", "numpy", "ImageHash", "threatexchange"]
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    turbo = features.version("libjpeg_turbo") or "no"
    import ncii

    return [
        f"cores (os.cpu_count): {os.cpu_count()}; CPU: {cpu}; RAM: {mem_kib / 2**20:.1f} GiB",
        f"Python {platform.python_version()} ({platform.machine()}), {platform.platform()}",
        ", ".join(versions) + f", libjpeg-turbo {turbo}",
        f"ncii imported from {Path(ncii.__file__).parent}",
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
    return "\n".join([line(header), f"|{rule}|", *(line(r) for r in rows)])


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def describe_distances(name: str, distances: list[int]) -> None:
    n = len(distances)
    differ = sum(d > 0 for d in distances)
    print(f"\n{name}: {differ} of {n} hashes differ", end="")
    if not distances:
        print()
        return
    print(
        f"; distance max {max(distances)}, median {statistics.median(distances):g}, "
        f"mean {statistics.fmean(distances):.2f}, over 31 (would not match): "
        f"{sum(d > 31 for d in distances)}"
    )
    buckets = [(0, 0), (1, 2), (3, 4), (5, 8), (9, 16), (17, 31), (32, 256)]
    rows = []
    for low, high in buckets:
        hits = sum(low <= d <= high for d in distances)
        label = str(low) if low == high else f"{low}-{high}"
        rows.append([label, str(hits), f"{100 * hits / n:.1f}%", "#" * round(40 * hits / n)])
    print(table(["bits", "hashes", "share", ""], rows))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="images to generate (1000)")
    parser.add_argument("--workdir", help="generate (and keep) the images here; reused if same")
    parser.add_argument(
        "--quick", action="store_true", help="24 images, one batch, no waiting: a smoke test"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="'all cores'")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--grain", type=float, default=6.0, help="noise sigma (0: none)")
    parser.add_argument("--data", help="shared data folder (default ../shared/data)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="instead of timing, split each pipeline into stages on N images per class",
    )
    parser.add_argument(
        "--per-size",
        type=int,
        default=0,
        metavar="N",
        help="instead: N images per size (0.3, 1, 3, 12 MP smooth and camera-like), engines "
        "interleaved, CPU time, medians of --repeats (issue 19's table); with --profile: "
        "the stages on that set",
    )
    parser.add_argument("--repeats", type=int, default=3, help="--per-size runs per batch (3)")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=None,
        help="seconds per batch to wait for a quiet machine and re-run (1800; --quick: 0)",
    )
    args = parser.parse_args(argv)

    if importlib.util.find_spec("threatexchange") is None:
        sys.exit(
            "python-threatexchange is not installed in this interpreter. Run the benchmark from "
            "its own venv:\n  python3 -m venv bench/.venv && "
            "bench/.venv/bin/pip install -e . threatexchange\n"
            "  bench/.venv/bin/python bench/hash_images.py"
        )
    count = QUICK_COUNT if args.quick else args.count
    if args.max_wait is None:
        args.max_wait = 0.0 if args.quick else 1800.0
    jobs_all = max(1, args.jobs)
    data = find_data(args.data)
    remove_stale_workdirs()
    tmp = None if args.workdir else tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
    workdir = Path(args.workdir or tmp or ".").resolve()
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(args, count, jobs_all, data, workdir)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


QUICK_COUNT = 24
TMP_PREFIX = "ncii-bench-"
"""Temporary folders are ``ncii-bench-<pid>-…``: a folder whose process is gone is stale."""


def _exit_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM and SIGHUP end the run through ``finally``, so the images are removed."""
    raise SystemExit(128 + signum)


def remove_stale_workdirs(folder: Path | None = None) -> list[Path]:
    """Remove image folders left by runs killed outright (their process no longer exists)."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        pid = path.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(args: argparse.Namespace, count: int, jobs_all: int, data: Path, workdir: Path) -> int:
    print("# Hashing images: ncii vs python-threatexchange (pytx)\n")
    for line in machine():
        print(line)
    print(load_average())
    if args.per_size:
        return per_size(args, data, workdir)
    spec = Spec(
        count=count,
        seed=args.seed,
        grain=args.grain,
        quality=JPEG_QUALITY,
        classes=tuple((c.name, c.width, c.height, c.share) for c in SIZE_CLASSES),
    )
    jobs = plan(count, args.seed, args.grain, data, workdir)
    sizes = generate(jobs, workdir, spec, jobs_all)
    by_class: dict[str, list[str]] = {c.name: [] for c in SIZE_CLASSES}
    for job in jobs:
        by_class[job.size_class].append(job.path)
    paths = [j.path for j in jobs]
    sources = Counter(Path(j.source).relative_to(data).parts[0] for j in jobs)

    print(
        f"\n{count} JPEGs, quality {JPEG_QUALITY}, grain sigma {args.grain}, seed {args.seed}, "
        f"{PORTRAIT_SHARE:.0%} portrait; sources: "
        + ", ".join(f"{k} {v}" for k, v in sources.most_common())
    )
    mix_rows = []
    for c in SIZE_CLASSES:
        members = by_class[c.name]
        mean_kb = statistics.fmean(sizes[p] for p in members) / 1000 if members else 0
        mix_rows.append(
            [c.name, f"{c.width}x{c.height}", f"{c.megapixels:.1f}", f"{c.share:.0%}",
             str(len(members)), f"{mean_kb:,.0f}", c.why]
        )  # fmt: skip
    print(table(["class", "size", "MP", "share", "images", "mean KB", "stands for"], mix_rows))
    if args.profile:
        profile(by_class, args.profile)
        return 0

    # Warm up every hasher in this process (imports, first-call costs) before timing.
    sample = paths[:2]
    for hasher in hashers():
        hasher.run(sample, 1)

    started = time.perf_counter()
    pool_start = ncii_runner(HashOptions(signals=("pdq",)))
    t0 = time.perf_counter()
    pool_start(sample, jobs_all)
    ncii_pool_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    pytx_run(sample, jobs_all)
    pytx_pool_seconds = time.perf_counter() - t0

    batches: list[tuple[str, list[str]]] = [
        (c.name, by_class[c.name]) for c in SIZE_CLASSES if not args.quick
    ]
    batches.append(("overall", paths))
    core_counts = [1] if jobs_all == 1 else [1, jobs_all]
    seconds: dict[tuple[str, int, str], float] = {}
    results: dict[tuple[str, int], list[str]] = {}
    foreign: list[float] = []
    busy_batches: list[str] = []

    def timed(label: str, n: int, run: Callable[[], list[str]]) -> tuple[float, list[str]]:
        """Seconds for one batch on ``n`` cores, measured so other processes cannot skew it.

        On 1 core everything runs in this process: the figure is its CPU time (user + system,
        as the wall time on a quiet machine), and other processes may use the cores this run
        leaves free. On ``n`` > 1 cores it is wall time, and the machine must be quiet: the
        batch is re-run while other processes took more than FOREIGN_LIMIT cores during it,
        for at most ``--max-wait`` seconds (then the figure is kept and flagged).
        """
        free = (os.cpu_count() or 1) - n
        limit = max(FOREIGN_LIMIT, free - FOREIGN_LIMIT)
        deadline = time.monotonic() + args.max_wait
        while True:
            wait_for_quiet(limit, max(0.0, deadline - time.monotonic()))
            with ForeignLoad() as load:
                t0, c0 = time.perf_counter(), time.process_time()
                hashes = run()
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            elapsed = cpu if n == 1 else wall
            note = f"wall {wall:.1f} s, CPU {cpu:.1f} s, others {load.cores:.2f} cores"
            if load.cores < limit or time.monotonic() > deadline:
                flag = "" if load.cores < limit else ": kept, UNRELIABLE"
                print(f"  {label} {elapsed:7.1f} s  ({note}{flag})", flush=True)
                if n > 1:
                    foreign.append(load.cores)
                busy_batches.extend([label] if load.cores >= limit else [])
                return elapsed, hashes
            print(f"  {label} {elapsed:7.1f} s  ({note}: re-running)", flush=True)

    for batch_name, batch in batches:
        if not batch:
            continue
        for hasher in hashers():
            for n in core_counts:
                label = f"{hasher.label:20} {n} core(s) {batch_name:8} {len(batch):5} images"
                elapsed, hashes = timed(label, n, partial(hasher.run, batch, n))
                seconds[hasher.key, n, batch_name] = elapsed
                if batch_name == "overall":
                    results[hasher.key, n] = hashes
    full_runner = ncii_runner(HashOptions.full_resolution(signals=("pdq",)))
    full_seconds, full = timed(
        f"{'ncii PDQ full-res':20} {jobs_all} core(s) {'overall':8} {len(paths):5} images",
        jobs_all,
        partial(full_runner, paths, jobs_all),
    )
    print(f"timed runs took {time.perf_counter() - started:.0f} s")

    # Throughput table.
    columns = [name for name, batch in batches if batch]

    def rate(key: str, n: int, column: str) -> float:
        size = len(paths) if column == "overall" else len(by_class[column])
        return size / seconds[key, n, column]

    print(f"\n## Throughput (images/s; all cores = {jobs_all})\n")
    rows = []
    for hasher in hashers():
        for n in core_counts:
            cores = "1 core" if n == 1 else f"{n} cores"
            rows.append(
                [f"{hasher.label}, {cores}", *(f"{rate(hasher.key, n, c):.1f}" for c in columns)]
            )
    print(table(["images/s", *columns], rows))

    print("\n## Speed-up\n")
    rows = []
    for n in core_counts:
        cores = "1 core" if n == 1 else f"{n} cores"
        for key, label in (("ncii", "ncii PDQ"), ("ncii_all", "ncii all signals")):
            rows.append(
                [f"{label} / pytx, {cores}"]
                + [f"{rate(key, n, c) / rate('pytx', n, c):.2f}x" for c in columns]
            )
    if jobs_all > 1:
        for key, label in (("ncii", "ncii PDQ"), ("ncii_all", "ncii all"), ("pytx", "pytx")):
            rows.append(
                [f"{label}, {jobs_all} cores / 1 core"]
                + [f"{rate(key, jobs_all, c) / rate(key, 1, c):.2f}x" for c in columns]
            )
    print(table(["ratio", *columns], rows))
    print(
        f"\nPool start-up with 2 tiny images on {jobs_all} workers (inside every multi-core "
        f"figure above): ncii hash_many {ncii_pool_seconds:.2f} s (forkserver; workers import "
        f"ncii), pytx Pool {pytx_pool_seconds:.2f} s (fork)."
    )
    multi = foreign or [0.0]
    print(
        f"Other processes during the multi-core batches: max {max(multi):.2f} cores, mean "
        f"{statistics.fmean(multi):.2f}. 1-core figures are CPU time. Kept under load after "
        f"--max-wait: {len(busy_batches)}"
        + (f" ({', '.join(busy_batches)}: unreliable)" if busy_batches else "")
    )
    print(
        f"ncii PDQ at full resolution (HashOptions.full_resolution()), {jobs_all} cores, overall: "
        f"{len(paths) / full_seconds:.1f} images/s "
        f"(pytx: {rate('pytx', jobs_all, 'overall'):.1f})"
    )

    # Hash agreement.
    pytx_hashes = results["pytx", jobs_all]
    ncii_hashes = results["ncii", jobs_all]
    consistent = (
        results["ncii", 1] == ncii_hashes
        and results["ncii_all", jobs_all] == ncii_hashes
        and results["pytx", 1] == pytx_hashes
    )
    print("\n## PDQ agreement")
    print(
        "1 core = all cores, PDQ-only = all-signals (sanity): "
        + ("yes" if consistent else "NO: hashers are not deterministic")
    )
    default_d = [distance(a, b) for a, b in zip(ncii_hashes, pytx_hashes, strict=True)]
    full_d = [distance(a, b) for a, b in zip(full, pytx_hashes, strict=True)]
    describe_distances(
        "ncii default (512 px, Meta's reference) vs pytx (full resolution)", default_d
    )
    for c in SIZE_CLASSES:
        ds = [d for d, j in zip(default_d, jobs, strict=True) if j.size_class == c.name]
        if ds:
            print(
                f"  {c.name:6} differ {sum(d > 0 for d in ds):4}/{len(ds):4}, "
                f"max {max(ds):3}, median {statistics.median(ds):4g}"
            )
    describe_distances("ncii full_resolution() vs pytx", full_d)

    # Targets.
    overall_ratio = rate("ncii", jobs_all, "overall") / rate("pytx", jobs_all, "overall")
    big = SIZE_CLASSES[-1].name
    measured = by_class[big] and ("ncii", jobs_all, big) in seconds  # not with --quick
    big_ratio = rate("ncii", jobs_all, big) / rate("pytx", jobs_all, big) if measured else 0.0
    full_ok = max(full_d, default=0) == 0
    print(f"\n## Targets ({jobs_all} cores, ncii PDQ vs pytx PDQ)")
    overall_ok = overall_ratio >= TARGET_OVERALL
    print(f"overall ≥ {TARGET_OVERALL:g}x: {overall_ratio:.2f}x {verdict(overall_ok)}")
    if measured:
        print(f"12 MP   ≥ {TARGET_12MP:g}x: {big_ratio:.2f}x {verdict(big_ratio >= TARGET_12MP)}")
    else:
        print("12 MP: not timed on its own (--quick)")
    print(f"full_resolution() = pytx to the bit: {verdict(full_ok)}")
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
