"""`ncii eval` through typer's runner, the transforms, and the pure modules' imports."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli.app import app
from ncii.evaluation.transforms import EXTRA_TRANSFORMS, TRANSFORMS, apply_transform

runner = CliRunner()
ORIGINALS = ("q0746.jpg", "square-512x512.jpg")
NEGATIVES = ("q0291.jpg", "q1050.jpg", "q2821.jpg")
PINNED = ("crop_12", "letterbox", "screenshot")


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    originals, negatives = tmp_path / "reported", tmp_path / "uploads"
    originals.mkdir()
    negatives.mkdir()
    for name in ORIGINALS:
        shutil.copy(VENDORED / name, originals / name)
    for name in NEGATIVES:
        shutil.copy(VENDORED / name, negatives / name)
    return originals, negatives


def _args(originals: Path, negatives: Path, *extra: str) -> list[str]:
    transforms = [arg for name in PINNED for arg in ("--transform", name)]
    return ["eval", str(originals), "--negatives", str(negatives), *transforms, *extra]


def test_json_report_and_chart(tmp_path):
    originals, negatives = _folders(tmp_path)
    chart = tmp_path / "recall.png"
    result = runner.invoke(
        app,
        _args(
            originals,
            negatives,
            "--json",
            "--chart",
            str(chart),
            "--threshold",
            "31",
            "--threshold",
            "20",
        ),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["originals"], report["negatives"], report["pairs"]) == (2, 3, 10)
    assert report["transforms"] == list(PINNED) and report["thresholds"] == [20, 31]
    by = {(r["pipeline"], r["threshold"]): r for r in report["results"]}
    assert set(by) == {("pdq", 20), ("pdq", 31), ("default", 20), ("default", 31)}
    default, plain = by[("default", 31)], by[("pdq", 31)]
    assert default["transforms"]["crop_12"] == {"recall": 1.0, "found": 2, "total": 2, "wrong": 0}
    assert default["recall"] == 1.0 and plain["recall"] == 0.0
    assert default["false_positive_pairs"] == 0 and default["wrong_matches"] == 0
    assert by[("default", 20)]["found"] <= default["found"]
    costs = {c["pipeline"]: c for c in report["costs"]}
    assert costs["pdq"]["bank_hashes_per_entry"] == 1.0
    assert costs["default"]["bank_hashes_per_entry"] > 1.0
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width > 400


def test_table_output(tmp_path):
    originals, negatives = _folders(tmp_path)
    result = runner.invoke(app, _args(originals, negatives, "--pipeline", "default"))
    assert result.exit_code == 0, result.output
    assert "Recall per transform" in result.stdout
    assert "default @31" in result.stdout and "pdq @31" not in result.stdout
    assert "false-positive pairs" in result.stdout
    assert "2 originals × 3 transforms" in result.stdout


def test_unreadable_picture_is_reported_and_left_out(tmp_path):
    originals, negatives = _folders(tmp_path)
    (negatives / "broken.jpg").write_bytes((VENDORED / "q0291.jpg").read_bytes()[:300])
    result = runner.invoke(app, _args(originals, negatives, "--json"))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["negatives"] == 3
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr


def test_bad_command_lines(tmp_path):
    originals, _ = _folders(tmp_path)
    unknown = runner.invoke(app, ["eval", str(originals), "--transform", "sepia"])
    assert unknown.exit_code == 2 and "sepia" in unknown.stderr
    missing = runner.invoke(app, ["eval", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 3


@pytest.mark.parametrize("transform", TRANSFORMS + EXTRA_TRANSFORMS, ids=lambda t: t.name)
def test_transforms_are_seeded_jpegs(transform):
    photo = Image.open(VENDORED / "q0746.jpg").convert("RGB")
    first = apply_transform(photo, transform, seed=1, key="k")
    assert first == apply_transform(photo, transform, seed=1, key="k")
    with Image.open(io.BytesIO(first)) as variant:
        assert variant.format == "JPEG" and min(variant.size) >= 32


def test_pure_modules_import_no_cli_or_database():
    code = (
        "import sys, ncii.evaluation.harness, ncii.evaluation.chart, ncii.detection; "
        "bad = [m for m in ('typer', 'sqlalchemy', 'rich') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
