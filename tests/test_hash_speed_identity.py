"""Issue 19 (image hashing speed): the faster hash path gives exactly the bits it gave before.

The imagehash family now shares one greyscale conversion; these tests hold every value to the
imagehash library's own output on the same decoded picture, over real photos.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imagehash
import pytest
from shared_data import SHARED, VENDORED, requires_shared, shared

from ncii.hashing import HashOptions, hash_file
from ncii.media import decode_image
from ncii.signals.imagehashes import compute_imagehash, compute_imagehashes

WEAK = ("phash", "dhash", "ahash", "whash")
LIBRARY = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}
BENCH = Path(__file__).resolve().parent.parent / "bench"


def _vendored_images() -> list[Path]:
    return sorted(p for p in VENDORED.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _shared_photos() -> list[Path]:
    """Kodak (768x512 PNG), every 20th Caltech-101 photo (odd sizes, some greyscale) and the
    bridge photo: the sizes and modes real uploads have."""
    if SHARED is None:
        return []
    caltech = sorted(shared("caltech101_negatives/images").glob("*/*.jpg"))[::20]
    kodak = sorted(shared("kodak24").glob("*.png"))
    return caltech + kodak + [shared("threatexchange/pdq/data/bridge-mods/aaa-orig.jpg")]


def _assert_library_bits(path: Path) -> None:
    data = path.read_bytes()
    picture = decode_image(data, name=str(path)).image
    expected = {name: str(LIBRARY[name](picture)) for name in WEAK}
    assert compute_imagehashes(WEAK, picture) == expected, path.name
    assert {name: compute_imagehash(name, picture) for name in WEAK} == expected, path.name
    hashed = hash_file(path)
    got = {name: s.value for name in WEAK if (s := hashed.get(name)) is not None}
    assert got == expected, path.name


def test_vendored_images_keep_imagehash_bits() -> None:
    images = _vendored_images()
    assert len(images) >= 10
    for path in images:
        _assert_library_bits(path)


@requires_shared
def test_real_photos_keep_imagehash_bits() -> None:
    photos = _shared_photos()
    assert len(photos) >= 150
    for path in photos:
        _assert_library_bits(path)


def test_a_subset_of_signals_computes_only_those() -> None:
    path = _vendored_images()[0]
    picture = decode_image(path.read_bytes(), name=str(path)).image
    assert compute_imagehashes((), picture) == {}
    assert compute_imagehashes(("whash",), picture) == {"whash": str(imagehash.whash(picture))}
    result = hash_file(path, options=HashOptions(signals=("dhash", "md5")))
    assert [s.type for s in result.signals] == ["dhash", "md5"]
    assert picture.mode == "RGB"  # the caller's picture is left as it was


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"])
def test_bench_pins_every_engine_to_one_thread(variable: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != variable}
    code = (
        f"import sys, os; sys.path.insert(0, {str(BENCH)!r}); import hash_images; "
        f"print(os.environ[{variable!r}], hash_images.load_average())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    pinned, rest = out.split(" ", 1)
    assert pinned == "1"
    assert rest.startswith("load average ") and f"({os.cpu_count()} cores)" in rest
