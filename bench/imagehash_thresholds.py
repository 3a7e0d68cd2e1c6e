"""Match thresholds for the 64-bit imagehash signals (pHash, dHash, aHash, wHash), measured.

Every image is hashed with ncii's own pipeline (``ncii.hash_file`` / ``hash_bytes``: EXIF
orientation, shrink to 512 px, then imagehash), so the figures hold for the hashes ncii makes.

Positives, known edits of the same photo (each pair: original, edit):

* Meta's ``bridge-mods``: 11 edits of ``aaa-orig.jpg`` (blur, contrast, saturation, sharpen,
  shrink, squash to a square);
* AugLy's expected outputs of ``dfdc_1.jpg``: the 26 pixel-level ones (colour, blur, JPEG,
  resize, aspect ratio, small overlays) are "mild"; the 16 that move or hide the picture (crop,
  flips, rotations, pads, meme caption, screenshot, perspective, skew, stripes, large text,
  shuffle) are "hard" and only reported;
* imagededup's UKBench variants: resize (squashed to 300x300), greyscale and WebP copies are
  mild, the horizontal flip and the rotation are hard;
* generated from each of the 24 Kodak photos: JPEG quality 30, resize to 50%, Gaussian blur
  (radius 1), brightness +20% and greyscale (120 pairs).

Negatives: every pair of the 2,500 distinct Caltech-101 photos plus the 24 Kodak photos
(2,524 photos, 3,184,026 pairs), distances computed with numpy (uint64 XOR + popcount).

The rule: for each type the threshold is the largest distance t in 0..20 at which at most one
negative pair in 100,000 (rate ≤ 1e-5) is within t. That is the role PDQ's 31 of 256 bits
plays: the loosest setting before unrelated photos start to match. At 1e-5 a bank of 10,000
hashes yields ≤ 0.1 false candidates per upload and signal; recall is reported, not optimised,
because imagehash signals are second opinions next to PDQ and a false match costs a wrongful
takedown. PDQ at 31 is printed for comparison (note: the Caltech set was built by dropping
pairs within PDQ 31, so PDQ's false positives on it are 0 by construction).

Run with the project's venv (about a minute on 2 cores)::

    .venv/bin/python bench/imagehash_thresholds.py
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ncii.hashing import HashOptions, MediaHashes, hash_bytes, hash_many
from ncii.signals import IMAGE_SIGNALS, get_signal_type
from ncii.signals.pdq import PDQ_MATCH_THRESHOLD

REPO = Path(__file__).resolve().parent.parent
IMAGEHASHES = ("phash", "dhash", "ahash", "whash")
MAX_THRESHOLD = 20
MAX_FP_RATE = 1e-5
OPTIONS = HashOptions(signals=IMAGE_SIGNALS)

AUGLY_MILD = (
    "RandomAspectRatio",
    "RandomBlur",
    "RandomBrightness",
    "RandomEmojiOverlay",
    "RandomPixelization",
    "apply_lambda",
    "apply_pil_filter",
    "blur",
    "brightness",
    "change_aspect_ratio",
    "clip_image_size",
    "color_jitter",
    "compose",
    "contrast",
    "convert_color",
    "encoding_quality",
    "grayscale",
    "opacity",
    "overlay_emoji",
    "overlay_image",
    "overlay_text",
    "pixelization",
    "resize",
    "saturation",
    "scale",
    "sharpen",
)
AUGLY_HARD = (
    "RandomRotation",
    "crop",
    "hflip",
    "masked_composite",
    "meme_format",
    "overlay_onto_background_image",
    "overlay_onto_screenshot",
    "overlay_stripes",
    "overlay_wrap_text",
    "pad",
    "pad_square",
    "perspective_transform",
    "rotate",
    "skew",
    "split_and_shuffle",
    "vflip",
)


KODAK_EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg-q30": lambda im: im,  # the edit is the encoding, see encode_edit()
    "resize-50%": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BICUBIC),
    "blur-r1": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
    "brightness+20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "grey": lambda im: im.convert("L"),
}


@dataclass(frozen=True, slots=True)
class Pair:
    group: str
    name: str
    original: str
    """Key of the original in the hash table."""
    edit: str
    mild: bool


def find_data(explicit: str | None) -> Path:
    candidates = [Path(explicit)] if explicit else []
    if env := os.environ.get("NCII_SHARED_DATA"):
        candidates.append(Path(env))
    candidates += [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "README.md").is_file():
            return candidate
    sys.exit("shared data not found: pass --data or set NCII_SHARED_DATA")


def encode_edit(name: str, image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    edited = KODAK_EDITS[name](image)
    if name == "jpeg-q30":
        edited.save(buffer, "JPEG", quality=30)
    else:
        edited.save(buffer, "PNG")
    return buffer.getvalue()


def hash_paths(paths: Sequence[Path], jobs: int) -> dict[str, MediaHashes]:
    hashes = {}
    for outcome in hash_many([str(p) for p in paths], options=OPTIONS, jobs=jobs):
        if outcome.hashes is None:
            sys.exit(f"cannot hash: {outcome.error}")
        hashes[outcome.source] = outcome.hashes
    return hashes


def positives(data: Path, jobs: int) -> tuple[list[Pair], dict[str, MediaHashes]]:
    pairs: list[Pair] = []
    files: list[Path] = []

    def add(group: str, name: str, original: Path, edit: Path, mild: bool) -> None:
        for path in (original, edit):
            if not path.is_file():
                sys.exit(f"missing {path}")
        files.extend([original, edit])
        pairs.append(Pair(group, name, str(original), str(edit), mild))

    bridge = data / "threatexchange/pdq/data/bridge-mods"
    for edit in sorted(bridge.glob("*.jpg")):
        if edit.name != "aaa-orig.jpg":
            add("bridge-mods", edit.stem, bridge / "aaa-orig.jpg", edit, True)

    augly = data / "augly/augly/tests/assets/image"
    for names, mild in ((AUGLY_MILD, True), (AUGLY_HARD, False)):
        for name in names:
            edit = augly / "dfdc_expected_output" / f"test_{name}.png"
            add("augly" if mild else "augly (hard)", name, augly / "inputs/dfdc_1.jpg", edit, mild)

    dedup = data / "imagededup_testdata/tests/data"
    base = dedup / "base_images"
    ukb120, mixed = base / "ukbench00120.jpg", dedup / "mixed_images"
    for name, original, edit, mild in (
        ("resize", ukb120, mixed / "ukbench00120_resize.jpg", True),
        ("grey", ukb120, dedup / "ukbench00120_gray.jpg", True),
        ("webp", base / "ukbench09380.jpg", dedup / "formats_images/ukbench09380.webp", True),
        ("hflip", ukb120, mixed / "ukbench00120_hflip.jpg", False),
        ("rotation", ukb120, mixed / "ukbench00120_rotation.jpg", False),
    ):
        add("imagededup" if mild else "imagededup (hard)", name, original, edit, mild)

    hashes = hash_paths(sorted(set(files)), jobs)

    for original in sorted((data / "kodak24").glob("*.png")):
        with Image.open(original) as opened:
            image = opened.convert("RGB")
        hashes[str(original)] = hash_bytes(
            original.read_bytes(), name=str(original), options=OPTIONS
        )
        for edit_name in KODAK_EDITS:
            key = f"{original.stem}:{edit_name}"
            hashes[key] = hash_bytes(encode_edit(edit_name, image), name=key, options=OPTIONS)
            pairs.append(
                Pair("kodak edits", f"{original.stem} {edit_name}", str(original), key, True)
            )
    return pairs, hashes


def as_words(values: Sequence[str], bits: int) -> np.ndarray:
    """Hex hashes → (n, bits/64) uint64, most significant word first."""
    words = bits // 64
    out = np.zeros((len(values), words), dtype=np.uint64)
    for i, value in enumerate(values):
        for w in range(words):
            out[i, w] = int(value[16 * w : 16 * (w + 1)], 16)
    return out


def negative_distances(
    words: np.ndarray, keep_within: int
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Histogram of the distances of every pair i < j, and the pairs within ``keep_within``."""
    n, _ = words.shape
    bits = 64 * words.shape[1]
    histogram = np.zeros(bits + 1, dtype=np.int64)
    close: list[tuple[int, int, int]] = []
    block = 128
    columns = np.arange(n)
    for start in range(0, n, block):
        rows = words[start : start + block]
        d = np.bitwise_count(rows[:, None, :] ^ words[None, :, :]).sum(axis=2, dtype=np.int64)
        upper = columns[None, :] > np.arange(start, start + len(rows))[:, None]
        histogram += np.bincount(d[upper], minlength=bits + 1)
        for i, j in zip(*np.nonzero(upper & (d <= keep_within)), strict=True):
            close.append((start + int(i), int(j), int(d[i, j])))
    return histogram, close


def choose(fp: np.ndarray, total_pairs: int) -> tuple[int, bool]:
    """The rule: the largest t ≤ MAX_THRESHOLD with fp[t] / pairs ≤ MAX_FP_RATE, and whether
    any t met it (if none did, 0: exact hash equality, the least it can be)."""
    allowed = [t for t in range(MAX_THRESHOLD + 1) if fp[t] / total_pairs <= MAX_FP_RATE]
    return max(allowed, default=0), bool(allowed)


@dataclass(frozen=True, slots=True)
class Result:
    kind: str
    chosen: int
    met: bool
    fp: np.ndarray
    """Cumulative false-positive pairs at each distance."""
    pairs: int
    positive_distances: list[int]


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


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


def hits(distances: Sequence[int], pairs: Sequence[Pair], t: int, *, mild: bool) -> int:
    """How many mild (or hard) positive pairs are within ``t``."""
    return sum(d <= t for d, p in zip(distances, pairs, strict=True) if p.mild == mild)


def category(path: str, data: Path) -> str:
    parts = Path(path).relative_to(data).parts
    return parts[2] if parts[0] == "caltech101_negatives" else parts[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="shared data folder (default ../shared/data)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    data = find_data(args.data)

    pairs, pos_hashes = positives(data, args.jobs)
    negative_paths = sorted((data / "caltech101_negatives/images").glob("*/*.jpg"))
    negative_paths += sorted((data / "kodak24").glob("*.png"))
    neg_hashes = hash_paths(negative_paths, args.jobs)
    names = [str(p) for p in negative_paths]
    n = len(names)
    total_pairs = n * (n - 1) // 2
    mild = [p for p in pairs if p.mild]
    hard = [p for p in pairs if not p.mild]
    groups = Counter(p.group for p in pairs)
    print("# imagehash thresholds (ncii pipeline: 512 px shrink, then imagehash)\n")
    print(
        f"positives: {len(mild)} mild edit pairs ("
        + ", ".join(f"{g} {c}" for g, c in groups.items() if "hard" not in g)
        + f") + {len(hard)} hard ones reported apart; negatives: {n} distinct photos, "
        f"{total_pairs:,} pairs; rule: largest t ≤ {MAX_THRESHOLD} with false-positive pair "
        f"rate ≤ {MAX_FP_RATE:g} (≤ {int(MAX_FP_RATE * total_pairs)} pairs)"
    )

    def value(hashes: MediaHashes, kind: str) -> str:
        signal = hashes.get(kind)
        assert signal is not None
        return signal.value

    results: dict[str, Result] = {}
    closest: dict[str, list[tuple[int, int, int]]] = {}
    all_words: dict[str, np.ndarray] = {}
    for kind in (*IMAGEHASHES, "pdq"):
        bits = get_signal_type(kind).bits
        words = as_words([value(neg_hashes[p], kind) for p in names], bits)
        keep = MAX_THRESHOLD if kind != "pdq" else PDQ_MATCH_THRESHOLD
        histogram, close = negative_distances(words, keep)
        fp = np.cumsum(histogram)
        signal_type = get_signal_type(kind)
        pos = [
            signal_type.distance(
                value(pos_hashes[p.original], kind), value(pos_hashes[p.edit], kind)
            )
            for p in pairs
        ]
        chosen, met = choose(fp, total_pairs)
        results[kind] = Result(kind, chosen, met, fp, total_pairs, pos)
        closest[kind] = close
        all_words[kind] = words
        if kind == "pdq":
            continue
        mean = float((np.arange(bits + 1) * histogram).sum() / total_pairs)
        balanced = float(np.mean(np.bitwise_count(words[:, 0]) == bits // 2))
        print(
            f"\n## {kind} (64 bits): negatives' mean distance {mean:.1f}, closest pair "
            f"{int(np.argmax(histogram > 0))}, hashes with exactly 32 one-bits {balanced:.0%}; "
            + (f"chosen threshold {chosen}\n" if met else "NO threshold meets the rule: 0\n")
        )
        rows = []
        for t in range(MAX_THRESHOLD + 1):
            hit_mild = hits(pos, pairs, t, mild=True)
            hit_hard = hits(pos, pairs, t, mild=False)
            rows.append(
                [
                    f"{t}{(' ←' if met else ' ← (rule not met)') if t == chosen else ''}",
                    pct(hit_mild, len(mild)),
                    pct(hit_hard, len(hard)),
                    f"{int(fp[t]):,}",
                    f"{fp[t] / total_pairs:.1e}",
                ]
            )
        print(table(["t", "recall mild", "recall hard", "FP pairs", "FP rate"], rows))

    print("\n## Summary (chosen thresholds; PDQ at its standard 31 of 256 for comparison)\n")
    rows = []
    for kind, result in results.items():
        t = PDQ_MATCH_THRESHOLD if kind == "pdq" else result.chosen
        hit_mild = hits(result.positive_distances, pairs, t, mild=True)
        hit_hard = hits(result.positive_distances, pairs, t, mild=False)
        bits = get_signal_type(kind).bits
        rows.append(
            [
                kind,
                f"{t}/{bits}",
                pct(hit_mild, len(mild)),
                pct(hit_hard, len(hard)),
                f"{int(result.fp[t]):,}",
                f"{result.fp[t] / total_pairs:.1e}",
                str(get_signal_type(kind).threshold),
            ]
        )
    print(
        table(
            ["type", "threshold", "recall mild", "recall hard", "FP pairs", "FP rate", "in ncii"],
            rows,
        )
    )

    print("\n## Recall by group at the chosen thresholds\n")
    group_names = list(groups)
    rows = []
    for group in group_names:
        members = [i for i, p in enumerate(pairs) if p.group == group]
        row = [f"{group} ({len(members)})"]
        for kind, result in results.items():
            t = PDQ_MATCH_THRESHOLD if kind == "pdq" else result.chosen
            row.append(pct(sum(result.positive_distances[i] <= t for i in members), len(members)))
        rows.append(row)
    print(table(["group", *results], rows))

    print("\n## Mild edits missed at the chosen thresholds (distance)\n")
    for kind, result in results.items():
        t = PDQ_MATCH_THRESHOLD if kind == "pdq" else result.chosen
        missed = [
            f"{p.group}/{p.name} {d}"
            for d, p in zip(result.positive_distances, pairs, strict=True)
            if p.mild and d > t
        ]
        print(f"{kind} (t={t}): " + ("; ".join(missed) if missed else "none"))

    print("\n## Which negatives match at the chosen thresholds (category pairs)\n")
    for kind, result in results.items():
        t = PDQ_MATCH_THRESHOLD if kind == "pdq" else result.chosen
        within = [(i, j) for i, j, d in closest[kind] if d <= t]
        kinds = Counter(
            " ~ ".join(sorted((category(names[i], data), category(names[j], data))))
            for i, j in within
        )
        shown = ", ".join(f"{k} {v}" for k, v in kinds.most_common(6))
        print(f"{kind} (t={t}): {len(within)} pairs" + (f": {shown}" if shown else ""))

    print("\n## Sensitivity: the rule without the category behind most false positives\n")
    for kind in IMAGEHASHES:
        result = results[kind]
        first_failing = result.chosen + 1 if result.met else 0
        culprits = Counter(
            category(names[x], data)
            for i, j, d in closest[kind]
            if d <= first_failing
            for x in (i, j)
        )
        if not culprits:
            continue
        worst, _ = culprits.most_common(1)[0]
        keep = [i for i, name in enumerate(names) if category(name, data) != worst]
        histogram, _ = negative_distances(all_words[kind][keep], 0)
        m = len(keep)
        sub_pairs = m * (m - 1) // 2
        fp = np.cumsum(histogram)
        t, met = choose(fp, sub_pairs)
        print(
            f"{kind}: without {worst} ({len(names) - m} photos): "
            + (f"t = {t}" if met else "still no threshold")
            + f" ({int(fp[t])} of {sub_pairs:,} pairs within it), against {result.chosen}"
            + ("" if result.met else " (rule not met)")
            + " with it"
        )

    stale = [
        kind for kind in IMAGEHASHES if get_signal_type(kind).threshold != results[kind].chosen
    ]
    if stale:
        print(
            "\nncii/signals/imagehashes.py differs from the measurement for: "
            + ", ".join(
                f"{k} ({get_signal_type(k).threshold} → {results[k].chosen})" for k in stale
            )
        )
    else:
        print("\nncii/signals/imagehashes.py holds the chosen thresholds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
