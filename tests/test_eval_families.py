"""The random edit families of `ncii eval` on small real photos: seeded, and each family makes
what it says within its ranges."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli.app import app
from ncii.evaluation.families import (
    CROP_AREA,
    FAMILIES,
    MAX_ROTATION,
    OCCLUDER_AREA,
    PAD_RATIOS,
    apply_family,
    edit_crop,
    edit_occlude,
    edit_pad,
    edit_rotate,
    generator_for,
    get_family,
)

PHOTOS = [VENDORED / name for name in ("q0746.jpg", "q0291.jpg", "q1050.jpg")]
runner = CliRunner()


def _photo(index: int = 0) -> Image.Image:
    return Image.open(PHOTOS[index]).convert("RGB")


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_each_family_is_determined_by_its_seed(family):
    photo = _photo()
    first, params = apply_family(photo, family, seed=5, key="a")
    again, same = apply_family(photo, family, seed=5, key="a")
    assert first == again and json.dumps(params, default=str) == json.dumps(same, default=str)
    others = {apply_family(photo, family, seed=s, key=k)[0] for s, k in ((6, "a"), (5, "b"))}
    assert first not in others
    with Image.open(io.BytesIO(first)) as image:
        assert image.format == "JPEG"


def _draws(edit, count=60):
    photo = _photo(1)
    return [edit(photo, generator_for(3, "test", str(i))) for i in range(count)]


def test_crops_keep_55_to_95_percent_in_every_kind_of_box():
    draws = _draws(edit_crop)
    kinds = {params["kind"] for _, params in draws}
    assert kinds == {"one_sided", "corner", "offcentre"}
    width, height = _photo(1).size
    for image, params in draws:
        assert CROP_AREA[0] - 0.02 <= params["area"] <= CROP_AREA[1] + 0.02
        left, top, right, bottom = params["box"]
        assert image.size == (right - left, bottom - top)
        touching = [left == 0, top == 0, right == width, bottom == height]
        if params["kind"] == "one_sided":
            assert sum(touching) == 3
        if params["kind"] == "corner":
            assert sum(touching) >= 2 and (touching[0] or touching[2])
            assert touching[1] or touching[3]


def test_rotations_stay_within_12_degrees_with_and_without_crop():
    draws = _draws(edit_rotate)
    angles = [params["degrees"] for _, params in draws]
    assert max(abs(a) for a in angles) <= MAX_ROTATION
    assert max(angles) > 6 and min(angles) < -6
    width, height = _photo(1).size
    cropped = [image for image, params in draws if params["crop"]]
    canvas = [(image, params) for image, params in draws if not params["crop"]]
    assert cropped and canvas
    assert all(image.width <= width and image.height <= height for image in cropped)
    for image, params in canvas:
        pixels = np.asarray(image)
        # The canvas grows to hold the turned picture, its corner is the fill colour.
        assert image.width >= width or image.height >= height
        assert np.abs(pixels[0, 0].astype(int) - params["colour"]).max() <= 8


def test_pads_reach_their_ratio_and_keep_the_picture_intact():
    draws = _draws(edit_pad)
    assert {params["fill"] for _, params in draws} == {"solid", "blurred", "mirrored", "gradient"}
    photo = np.asarray(_photo(1)).astype(int)
    for image, params in draws:
        assert abs(image.width / image.height - PAD_RATIOS[params["ratio"]]) < 0.02
        left, top, right, bottom = params["box"]
        inside = np.asarray(image)[top:bottom, left:right].astype(int)
        assert np.array_equal(inside, photo)


def test_occluders_cover_at_most_12_percent_and_change_only_their_box():
    draws = _draws(edit_occlude)
    assert {params["shape"] for _, params in draws} == {"disc", "emoji", "text", "logo"}
    photo = np.asarray(_photo(1)).astype(int)
    for image, params in draws:
        assert OCCLUDER_AREA[0] * 0.8 <= params["area"] <= OCCLUDER_AREA[1]
        changed = np.any(np.asarray(image).astype(int) != photo, axis=-1)
        left, top, right, bottom = params["box"]
        outside = changed.copy()
        outside[top:bottom, left:right] = False
        assert not outside.any()
        assert changed.mean() <= OCCLUDER_AREA[1]


def test_combinations_chain_two_or_three_families_and_recompress():
    family = get_family("rand_combination")
    assert family is not None
    seen = set()
    for key in range(20):
        _, params = apply_family(_photo(2), family, seed=9, key=str(key))
        assert 2 <= len(params["edits"]) <= 3 and len(set(params["edits"])) == len(params["edits"])
        assert 40 <= params["jpeg_quality"] <= 80
        seen.update(params["edits"])
    assert len(seen) >= 5


def test_eval_runs_the_random_families_through_the_cli(tmp_path):
    originals = tmp_path / "originals"
    originals.mkdir()
    for photo in PHOTOS[:2]:
        (originals / photo.name).write_bytes(photo.read_bytes())
    args = ["eval", str(originals), "--edits", "random", "--pipeline", "pdq", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["transforms"] == [f.name for f in FAMILIES]
    assert report["results"][0]["total"] == 2 * len(FAMILIES)
    bad = runner.invoke(app, ["eval", str(originals), "--edits", "some"])
    assert bad.exit_code == 2 and "--edits" in bad.stderr
