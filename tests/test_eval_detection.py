"""Finding the picture inside an upload, and the pipelines' hashes, on real photos.

Pinned cases: a crop, a letterbox, a caption and a screenshot frame of a photo each match the
photo's bank entry under the default pipeline (plain PDQ misses them); a distinct photo does not.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image
from shared_data import VENDORED, requires_shared, shared

from ncii.detection.pipeline import DEFAULT, PLAIN, decode_for_hashing
from ncii.detection.regions import find_framed_picture, picture_regions, trim_bands, trim_bars
from ncii.detection.variants import centre_crop, rotate_crop
from ncii.evaluation.transforms import add_bars, apply_transform, get_transform

PHOTO = VENDORED / "q0746.jpg"
"""Stairs (256×256, Meta's labelme subset)."""
DISTINCT = [
    VENDORED / name for name in ("q0291.jpg", "q1050.jpg", "q0122.jpg", "square-512x512.jpg")
]


def _source(path) -> Image.Image:
    return Image.open(path).convert("RGB")


def _upload(path, transform: str, seed: int = 7) -> np.ndarray:
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()
    jpeg = apply_transform(_source(path), get_transform(transform), seed=seed, key=key)
    return decode_for_hashing(jpeg)


def _best_distance(pipeline, original: np.ndarray, upload: np.ndarray) -> int:
    bank = pipeline.bank_hashes(original)
    return min(
        (int(b.value, 16) ^ int(q, 16)).bit_count()
        for region in pipeline.query_hashes(upload)
        if region.quality >= 50
        for q in region.dihedral
        for b in bank
    )


def _pixels(path) -> np.ndarray:
    return decode_for_hashing(path.read_bytes())


@pytest.mark.parametrize("transform", ["crop_12", "letterbox", "caption", "screenshot"])
def test_default_pipeline_catches_what_plain_pdq_misses(transform):
    original, upload = _pixels(PHOTO), _upload(PHOTO, transform)
    assert _best_distance(PLAIN, original, upload) > 31
    assert _best_distance(DEFAULT, original, upload) <= 31


def test_a_distinct_photo_does_not_match():
    original = _pixels(PHOTO)
    for other in DISTINCT:
        assert _best_distance(DEFAULT, original, _pixels(other)) > 60


def test_bars_are_trimmed_to_the_picture():
    photo = _source(PHOTO)
    barred = add_bars(photo, share=0.5, horizontal=True, colour=(0, 0, 0))
    buffer = io.BytesIO()
    barred.save(buffer, format="JPEG", quality=90)
    pixels = decode_for_hashing(buffer.getvalue())  # 256×384
    box = trim_bars(pixels)
    assert box is not None
    assert abs(box.top - 64) <= 2 and abs(box.bottom - 320) <= 2
    assert box.left <= 2 and box.right == 256  # the photo's own 2-pixel dark edge may go too


def test_caption_band_is_cut_text_and_all():
    tree = VENDORED / "square-512x512.jpg"
    pixels = _upload(tree, "caption")
    assert trim_bars(pixels) != trim_bands(pixels)
    box = trim_bands(pixels)
    assert box is not None and abs(box.height - box.width) <= 3


def test_screenshot_frame_is_found():
    pixels = _upload(PHOTO, "screenshot")
    box = find_framed_picture(pixels)
    assert box is not None
    assert abs(box.width / box.height - 1.0) < 0.03  # the square photo, not the phone screen


def test_a_plain_photo_has_no_regions():
    for name in ("q0746.jpg", "square-512x512.jpg", "q2821.jpg"):
        assert picture_regions(_pixels(VENDORED / name)) == {}


def test_a_real_border_is_trimmed():
    """q1050.jpg carries an 8-pixel grey strip on its right (padding to 256 px)."""
    assert picture_regions(_pixels(VENDORED / "q1050.jpg")) == {"trimmed": (0, 256, 0, 248)}


def test_bank_variants_are_distinct_pdq_hashes():
    original = _pixels(PHOTO)
    hashes = DEFAULT.bank_hashes(original)
    assert hashes[0].label == "original"
    assert hashes[0].value == PLAIN.bank_hashes(original)[0].value
    assert len({h.value for h in hashes}) == len(hashes) > 1
    assert all(len(h.value) == 64 for h in hashes)
    assert len(PLAIN.query_hashes(original)) == 1
    assert len(PLAIN.query_hashes(original)[0].dihedral) == 8


def test_variant_geometry():
    pixels = np.zeros((200, 300, 3), dtype=np.uint8)
    assert centre_crop(pixels, 0.1).shape == (160, 240, 3)
    rotated = rotate_crop(pixels, 3.0)
    assert 0.9 < rotated.shape[0] / 200 < 0.95 and 0.9 < rotated.shape[1] / 300 < 0.95


@requires_shared
def test_augly_real_screenshot_and_meme():
    """AugLy's own meme and padding outputs of dfdc_1.jpg match it under the default pipeline."""
    base = shared("augly/augly/tests/assets/image")
    original = decode_for_hashing((base / "inputs/dfdc_1.jpg").read_bytes())
    for name in ("test_meme_format.png", "test_pad.png"):
        upload = decode_for_hashing((base / "dfdc_expected_output" / name).read_bytes())
        assert _best_distance(PLAIN, original, upload) > 31, name
        assert _best_distance(DEFAULT, original, upload) <= 31, name
