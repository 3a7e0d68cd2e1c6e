"""Finding a real photo inside blurred, gradient and mirrored padding, and turning a photo
rotated on a plain canvas back upright (ncii.detection.fills)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from shared_data import requires_shared, shared

from ncii.detection.fills import derotate, find_padded_picture, rotation_on_canvas
from ncii.detection.pipeline import decode_for_hashing, get_pipeline
from ncii.detection.variants import centre_crop
from ncii.evaluation.families import generator_for, pad_to
from ncii.signals.vpdq import pdq_frame

pytestmark = requires_shared


def _photo(name: str) -> Image.Image:
    return Image.open(shared(f"kodak24/{name}")).convert("RGB")


def _as_upload(image: Image.Image) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return decode_for_hashing(buffer.getvalue())


def _distance(a: np.ndarray, b: np.ndarray) -> int:
    return (int(pdq_frame(a)[0], 16) ^ int(pdq_frame(b)[0], 16)).bit_count()


@pytest.mark.parametrize("fill", ["blurred", "gradient", "mirrored"])
@pytest.mark.parametrize("name", ["kodim05.png", "kodim19.png"])
def test_the_picture_is_found_inside_any_fill(name, fill):
    photo = _photo(name)
    canvas, (left, top) = pad_to(photo, 9 / 16 if photo.width > photo.height else 16 / 9, fill,
                                 generator_for(3, "fills", name))  # fmt: skip
    upload = _as_upload(canvas)
    scale = upload.shape[1] / canvas.width
    box = find_padded_picture(upload)
    assert box is not None
    truth = (top * scale, (top + photo.height) * scale, left * scale, (left + photo.width) * scale)
    assert np.allclose(box, truth, atol=2.5), (box, truth)
    original = decode_for_hashing(shared(f"kodak24/{name}").read_bytes())
    assert _distance(box.crop(upload), original) <= 31


def test_plain_photos_have_no_fill():
    for name in ("kodim05.png", "kodim13.png", "kodim23.png"):
        assert (
            find_padded_picture(decode_for_hashing(shared(f"kodak24/{name}").read_bytes())) is None
        )


@pytest.mark.parametrize("degrees", [-11.0, -6.5, 4.0, 9.0])
def test_a_photo_rotated_on_a_canvas_is_turned_back(degrees):
    photo = _photo("kodim13.png")
    turned = photo.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True,
                          fillcolor=(255, 255, 255))  # fmt: skip
    upload = _as_upload(turned)
    found = rotation_on_canvas(upload)
    assert found is not None and abs(found[0] - abs(degrees)) < 0.5
    upright = derotate(upload)
    assert upright is not None
    original = decode_for_hashing(shared("kodak24/kodim13.png").read_bytes())
    assert _distance(upright, centre_crop(original, 0.03)) <= 31
    assert derotate(original) is None


@pytest.mark.parametrize("height", [1, 2, 3, 15, 16, 17])
@pytest.mark.parametrize("width", [1, 2, 5, 512])
def test_slivers_hash_on_both_sides(height: int, width: int) -> None:
    """A picture a few pixels wide (a 2x3000 PNG decodes to 1x512) is hashed, never an
    IndexError: the canvas and fill searches need no corners it does not have."""
    rng = np.random.default_rng(height * 1000 + width)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pipeline = get_pipeline("default")
    for rgb in (noise, np.full_like(noise, 255)):
        assert pipeline.bank_hashes(rgb)[0].label == "original"
        assert pipeline.query_hashes(rgb)[0].label == "original"
