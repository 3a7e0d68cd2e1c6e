"""`ncii eval`'s engine: bank the originals, match their re-uploads, count false positives.

For each pipeline (:mod:`ncii.detection.pipeline`), every distinct image (originals and
negatives) is banked with the pipeline's bank-side hashes; every seeded re-upload of each
original (:mod:`ncii.evaluation.transforms`) and every distinct image itself is looked up with
the query-side hashes, all at once through one :class:`~ncii.index.HammingIndex` (exact, so the
figures are what brute force gives, at any scale). Then, per threshold:

* **recall** per transform: the share of re-uploads whose original is within the threshold;
* **wrong matches**: re-uploads that also hit another image (originals or negatives);
* **false-positive pairs**: unordered pairs of distinct images where either one, looked up as an
  upload, hits the other's bank entry. Every pair is checked, not a sample.

Low-quality query hashes (PDQ quality < 50) are not looked up, as ``ncii match`` does not.
Pure: no database, web or CLI code.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from ncii.detection.pipeline import (
    BankHash,
    DetectionPipeline,
    QueryHash,
    decode_for_hashing,
    get_pipeline,
)
from ncii.errors import MediaError
from ncii.evaluation.families import FAMILY_NAMES, apply_family, get_family
from ncii.evaluation.transforms import TRANSFORM_NAMES, apply_transform, get_transform
from ncii.hashing import read_media
from ncii.index import HammingIndex, hex_to_words
from ncii.media import DecodeOptions, decode_image
from ncii.signals.pdq import PDQ_DETECTION_MARGIN, PDQ_MIN_QUALITY

DEFAULT_SEED = 20261127
SOURCE_SIDE = 1024
"""Originals are shrunk to fit this square before being transformed: every pipeline hashes at
≤512 px, so a larger source changes nothing but the time taken."""

EXAMPLES_KEPT = 20
"""False-positive pairs and wrong matches listed by name in a report (all are counted)."""


@dataclass(frozen=True, slots=True)
class EvalOptions:
    transforms: tuple[str, ...] = TRANSFORM_NAMES
    pipelines: tuple[str, ...] = ("pdq", "default")
    thresholds: tuple[int, ...] = (31,)
    seed: int = DEFAULT_SEED
    jobs: int = 1
    detection_margin: int = PDQ_DETECTION_MARGIN
    """Bits off the threshold for hits only the detection pipeline makes (a banked variant, a
    region, probe or pixel flip of the upload), as ``ncii match`` judges them."""

    def __post_init__(self) -> None:
        for name in self.transforms:
            if get_family(name) is None:
                get_transform(name)
        for name in self.pipelines:
            get_pipeline(name)
        if not self.thresholds or min(self.thresholds) < 0 or max(self.thresholds) > 256:
            raise ValueError("thresholds must be between 0 and 256")


@dataclass(frozen=True, slots=True)
class _Hashed:
    """One distinct image after hashing: what each pipeline banks and looks up."""

    path: str
    sha256: str
    original: bool
    bank: dict[str, tuple[BankHash, ...]]
    query: dict[str, tuple[QueryHash, ...]]
    variants: dict[str, dict[str, tuple[QueryHash, ...]]]
    """transform → pipeline → the re-upload's query hashes."""
    seconds: dict[str, float]
    """``decode``, ``<pipeline>/bank``, ``<pipeline>/query``: time spent on this image."""


@dataclass(frozen=True, slots=True)
class _Failed:
    path: str
    error: str


@dataclass(frozen=True, slots=True)
class TransformRecall:
    transform: str
    found: int
    total: int
    wrong: int
    """Re-uploads that also matched another image."""

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    distance: int


@dataclass(frozen=True, slots=True)
class PipelineResult:
    pipeline: str
    threshold: int
    transforms: tuple[TransformRecall, ...]
    false_positive_pairs: int
    false_positive_examples: tuple[Pair, ...]
    wrong_match_examples: tuple[Pair, ...]
    known_duplicates_matched: int = 0
    """Pairs listed as the same picture (``known_duplicates``) that matched: not counted as
    false positives."""

    @property
    def found(self) -> int:
        return sum(t.found for t in self.transforms)

    @property
    def total(self) -> int:
        return sum(t.total for t in self.transforms)

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else 0.0

    @property
    def wrong_matches(self) -> int:
        return sum(t.wrong for t in self.transforms)

    def get(self, transform: str) -> TransformRecall:
        return next(t for t in self.transforms if t.transform == transform)


@dataclass(frozen=True, slots=True)
class PipelineCost:
    pipeline: str
    bank_hashes_per_entry: float
    query_hashes_per_upload: float
    """Hashes looked up per upload, flips and rotations included."""
    bank_ms: float
    """Mean milliseconds to compute an entry's bank hashes from decoded pixels."""
    query_ms: float


@dataclass(frozen=True, slots=True)
class EvalReport:
    originals: int
    negatives: int
    seed: int
    transforms: tuple[str, ...]
    thresholds: tuple[int, ...]
    results: tuple[PipelineResult, ...]
    costs: tuple[PipelineCost, ...]
    decode_ms: float
    low_quality_originals: int
    duplicates_dropped: int
    failed: tuple[tuple[str, str], ...] = field(default=())

    @property
    def distinct(self) -> int:
        return self.originals + self.negatives

    @property
    def pairs(self) -> int:
        return self.distinct * (self.distinct - 1) // 2

    def result(self, pipeline: str, threshold: int) -> PipelineResult:
        return next(r for r in self.results if r.pipeline == pipeline and r.threshold == threshold)

    def to_dict(self) -> dict[str, object]:
        return {
            "originals": self.originals,
            "negatives": self.negatives,
            "distinct_images": self.distinct,
            "pairs": self.pairs,
            "seed": self.seed,
            "transforms": list(self.transforms),
            "thresholds": list(self.thresholds),
            "low_quality_originals": self.low_quality_originals,
            "duplicates_dropped": self.duplicates_dropped,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "decode_ms": round(self.decode_ms, 2),
            "costs": [asdict(c) for c in self.costs],
            "results": [
                {
                    "pipeline": r.pipeline,
                    "threshold": r.threshold,
                    "recall": r.recall,
                    "found": r.found,
                    "total": r.total,
                    "wrong_matches": r.wrong_matches,
                    "false_positive_pairs": r.false_positive_pairs,
                    "known_duplicates_matched": r.known_duplicates_matched,
                    "transforms": {
                        t.transform: {
                            "recall": t.recall,
                            "found": t.found,
                            "total": t.total,
                            "wrong": t.wrong,
                        }
                        for t in r.transforms
                    },
                    "false_positive_examples": [asdict(p) for p in r.false_positive_examples],
                    "wrong_match_examples": [asdict(p) for p in r.wrong_match_examples],
                }
                for r in self.results
            ],
        }


# -- hashing (in worker processes) ----------------------------------------------------------------


def _hash_one(path: str, *, original: bool, options: EvalOptions) -> _Hashed | _Failed:
    """Bank and query hashes of one image for every pipeline, and those of its re-uploads."""
    try:
        data = read_media(path)
        started = time.perf_counter()
        rgb = decode_for_hashing(data, name=path)
        seconds = {"decode": time.perf_counter() - started}
    except MediaError as exc:
        return _Failed(path, str(exc))
    pipelines = [get_pipeline(name) for name in options.pipelines]
    bank: dict[str, tuple[BankHash, ...]] = {}
    query: dict[str, tuple[QueryHash, ...]] = {}
    for pipeline in pipelines:
        started = time.perf_counter()
        bank[pipeline.name] = pipeline.bank_hashes(rgb)
        seconds[f"{pipeline.name}/bank"] = time.perf_counter() - started
        started = time.perf_counter()
        query[pipeline.name] = pipeline.query_hashes(rgb)
        seconds[f"{pipeline.name}/query"] = time.perf_counter() - started
    sha256 = hashlib.sha256(data).hexdigest()
    variants: dict[str, dict[str, tuple[QueryHash, ...]]] = {}
    if original:
        source = decode_image(data, name=path, options=DecodeOptions(max_side=SOURCE_SIDE)).image
        for name in options.transforms:
            upload = make_upload(source, name, seed=options.seed, key=sha256)
            pixels = decode_for_hashing(upload, name=f"{path}#{name}")
            variants[name] = {p.name: p.query_hashes(pixels) for p in pipelines}
    return _Hashed(path, sha256, original, bank, query, variants, seconds)


def make_upload(source: Image.Image, name: str, *, seed: int, key: str) -> bytes:
    """The re-upload of ``source`` made by a fixed transform or drawn from a random family."""
    family = get_family(name)
    if family is not None:
        return apply_family(source, family, seed=seed, key=key)[0]
    return apply_transform(source, get_transform(name), seed=seed, key=key)


EDIT_SETS: dict[str, tuple[str, ...]] = {
    "fixed": TRANSFORM_NAMES,
    "random": FAMILY_NAMES,
    "both": TRANSFORM_NAMES + FAMILY_NAMES,
}
"""``ncii eval --edits``: today's fixed transforms (the regression floor), the random
families (:mod:`ncii.evaluation.families`), or both."""


def _hash_all(
    tasks: Sequence[tuple[str, bool]],
    options: EvalOptions,
    progress: Callable[[], None] | None,
) -> Iterator[_Hashed | _Failed]:
    if options.jobs <= 1:
        for task in tasks:
            yield _hash_task(task, options)
            if progress:
                progress()
        return
    context = multiprocessing.get_context(
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with ProcessPoolExecutor(max_workers=options.jobs, mp_context=context) as pool:
        # Originals first (they carry the variants: the slow tasks), in small chunks.
        results = pool.map(_hash_task, tasks, [options] * len(tasks), chunksize=4)
        for result in results:
            yield result
            if progress:
                progress()


def _hash_task(task: tuple[str, bool], options: EvalOptions) -> _Hashed | _Failed:
    path, original = task
    return _hash_one(path, original=original, options=options)


# -- matching -------------------------------------------------------------------------------------


def evaluate(
    originals: Sequence[str],
    negatives: Sequence[str] = (),
    *,
    options: EvalOptions = EvalOptions(),
    known_duplicates: Sequence[tuple[str, str]] = (),
    progress: Callable[[], None] | None = None,
) -> EvalReport:
    """Run the whole evaluation. ``originals`` are the pictures to bank and re-upload;
    ``negatives`` are other, distinct pictures (a file listed in both counts as an original).
    Files that cannot be decoded are reported and left out.

    ``known_duplicates`` names pairs of files that are in fact one picture (a mirrored or
    re-cropped copy, found by looking at them), by the end of their paths: when such a pair
    matches it is counted apart, not as a false positive. A pair is matched by path suffix, so
    ``Leopards/image_0079.jpg`` names that file wherever the data set lives."""
    chosen = set(originals)
    tasks = [(p, True) for p in originals] + [(p, False) for p in negatives if p not in chosen]
    images: list[_Hashed] = []
    failed: list[tuple[str, str]] = []
    seen: set[str] = set()
    duplicates = 0
    for outcome in _hash_all(tasks, options, progress):
        if isinstance(outcome, _Failed):
            failed.append((outcome.path, outcome.error))
        elif outcome.sha256 in seen:
            duplicates += 1
        else:
            seen.add(outcome.sha256)
            images.append(outcome)
    same = _resolve_pairs(images, known_duplicates)
    results = []
    for name in options.pipelines:
        results.extend(_match(get_pipeline(name), images, options, same))
    n_originals = sum(1 for image in images if image.original)
    low_quality = sum(
        1
        for image in images
        if image.original and image.bank[options.pipelines[0]][0].quality < PDQ_MIN_QUALITY
    )
    return EvalReport(
        originals=n_originals,
        negatives=len(images) - n_originals,
        seed=options.seed,
        transforms=options.transforms,
        thresholds=tuple(sorted(set(options.thresholds))),
        results=tuple(results),
        costs=tuple(_cost(get_pipeline(name), images) for name in options.pipelines),
        decode_ms=_mean_ms(images, "decode"),
        low_quality_originals=low_quality,
        duplicates_dropped=duplicates,
        failed=tuple(failed),
    )


def _resolve_pairs(
    images: Sequence[_Hashed], pairs: Sequence[tuple[str, str]]
) -> set[tuple[int, int]]:
    """Index pairs (low, high) of the images named by path suffixes."""

    def find(suffix: str) -> int | None:
        tail = "/" + suffix.strip().lstrip("/")
        return next(
            (i for i, image in enumerate(images) if ("/" + image.path).endswith(tail)), None
        )

    found = set()
    for a, b in pairs:
        i, j = find(a), find(b)
        if i is not None and j is not None and i != j:
            found.add((min(i, j), max(i, j)))
    return found


def _match(
    pipeline: DetectionPipeline,
    images: Sequence[_Hashed],
    options: EvalOptions,
    same: set[tuple[int, int]],
) -> list[PipelineResult]:
    """Every threshold's figures for one pipeline, from one search at the largest threshold."""
    name = pipeline.name
    n = len(images)
    transforms = options.transforms
    bank_values = [h.value for image in images for h in image.bank[name]]
    bank_owner = np.asarray(
        [i for i, image in enumerate(images) for _ in image.bank[name]], dtype=np.int64
    )
    bank_variant = np.asarray(
        [h.label != "original" for image in images for h in image.bank[name]], dtype=bool
    )
    index = HammingIndex.build(256, bank_values, list(range(len(bank_values))))
    index.compact()
    # Owners: image i looked up as itself is owner i; re-upload t of image i is n + i*T + t.
    query_values: list[str] = []
    owners: list[int] = []
    detecting: list[bool] = []
    for i, image in enumerate(images):
        _add_queries(image.query[name], i, query_values, owners, detecting)
        for t, transform in enumerate(transforms):
            if image.original:
                variant = image.variants[transform][name]
                _add_queries(
                    variant, n + i * len(transforms) + t, query_values, owners, detecting
                )
    hits = (
        index.search_arrays(hex_to_words(query_values, 256), max(options.thresholds))
        if query_values
        else np.empty((0, 3), dtype=np.int64)
    )
    query, row = hits[:, 0], hits[:, 1]
    owner = np.asarray(owners, dtype=np.int64)[query] if len(hits) else query
    # A hit only the detection pipeline makes is judged with the margin, as ncii match does.
    detection = bank_variant[row] | np.asarray(detecting, dtype=bool)[query] if len(hits) else row
    distance = hits[:, 2] + options.detection_margin * detection.astype(np.int64)
    best = _closest(owner, bank_owner[row] if len(hits) else row, distance)
    results = []
    for threshold in sorted(set(options.thresholds)):
        results.append(_figures(name, threshold, best, images, transforms, same))
    return results


def _add_queries(
    hashes: Sequence[QueryHash],
    owner: int,
    values: list[str],
    owners: list[int],
    detecting: list[bool],
) -> None:
    for region in hashes:
        if region.quality < PDQ_MIN_QUALITY:
            continue
        values.extend(region.dihedral)
        owners.extend([owner] * len(region.dihedral))
        # The upload's own hash and its DCT flips are plain PDQ; any other probe is detection.
        detecting.extend([region.label != "original"] * len(region.dihedral))


def _closest(
    owner: np.ndarray, key: np.ndarray, distance: np.ndarray
) -> dict[tuple[int, int], int]:
    """The smallest distance for each (owner, key) hit."""
    best: dict[tuple[int, int], int] = {}
    for o, k, d in zip(owner.tolist(), key.tolist(), distance.tolist(), strict=True):
        if d < best.get((o, k), 257):
            best[(o, k)] = d
    return best


def _figures(
    pipeline: str,
    threshold: int,
    best: dict[tuple[int, int], int],
    images: Sequence[_Hashed],
    transforms: Sequence[str],
    same: set[tuple[int, int]],
) -> PipelineResult:
    n, per = len(images), len(transforms)
    found = [0] * per
    wrong = [0] * per
    pairs: dict[tuple[int, int], int] = {}
    wrong_examples: list[Pair] = []
    originals = sum(1 for image in images if image.original)
    total = [originals] * per
    matched_variants: set[int] = set()
    wrong_variants: set[int] = set()
    for (o, k), d in best.items():
        if d > threshold:
            continue
        if o < n:
            if k != o:
                pair = (min(o, k), max(o, k))
                pairs[pair] = min(d, pairs.get(pair, 257))
            continue
        i, t = divmod(o - n, per)
        if k == i:
            matched_variants.add(o)
        else:
            if o not in wrong_variants and len(wrong_examples) < EXAMPLES_KEPT:
                wrong_examples.append(Pair(f"{images[i].path}#{transforms[t]}", images[k].path, d))
            wrong_variants.add(o)
    for o in matched_variants:
        found[(o - n) % per] += 1
    for o in wrong_variants:
        wrong[(o - n) % per] += 1
    duplicates = sum(1 for pair in pairs if pair in same)
    false = {pair: d for pair, d in pairs.items() if pair not in same}
    examples = tuple(
        Pair(images[a].path, images[b].path, d)
        for (a, b), d in sorted(false.items(), key=lambda item: item[1])[:EXAMPLES_KEPT]
    )
    return PipelineResult(
        pipeline=pipeline,
        threshold=threshold,
        transforms=tuple(
            TransformRecall(name, found[t], total[t], wrong[t]) for t, name in enumerate(transforms)
        ),
        false_positive_pairs=len(false),
        false_positive_examples=examples,
        wrong_match_examples=tuple(wrong_examples),
        known_duplicates_matched=duplicates,
    )


def _mean_ms(images: Sequence[_Hashed], key: str) -> float:
    values = [image.seconds[key] for image in images if key in image.seconds]
    return 1000 * sum(values) / len(values) if values else 0.0


def _cost(pipeline: DetectionPipeline, images: Sequence[_Hashed]) -> PipelineCost:
    name = pipeline.name
    count = max(len(images), 1)
    return PipelineCost(
        pipeline=name,
        bank_hashes_per_entry=sum(len(image.bank[name]) for image in images) / count,
        query_hashes_per_upload=sum(len(r.dihedral) for image in images for r in image.query[name])
        / count,
        bank_ms=_mean_ms(images, f"{name}/bank"),
        query_ms=_mean_ms(images, f"{name}/query"),
    )


__all__ = [
    "DEFAULT_SEED",
    "EDIT_SETS",
    "EvalOptions",
    "EvalReport",
    "Pair",
    "PipelineCost",
    "PipelineResult",
    "TransformRecall",
    "evaluate",
]
