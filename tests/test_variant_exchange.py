"""Detection survives exchange (issue 12, part 4): the PDQ variants a bank holds travel in
ncii's jsonl export and in case packages, and come back on import, on both engines.

A helpline banks a real photo, exports the bank as jsonl, a platform imports it into another
database: a centred crop that matched at the helpline matches at the platform too. tx and csv
carry the picture's own hashes only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image
from shared_data import requires_shared, shared
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.evaluation.transforms import apply_transform, get_transform
from ncii.hashing import HashOptions, hash_file

pytestmark = requires_shared

runner = CliRunner()

PHOTO = "kodak24/kodim05.png"
"""Motorbikes on a track (768×512, Kodak's free-use test set)."""


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _crop(folder: Path) -> Path:
    """A centred crop of the photo (10–14% off every side), re-encoded as JPEG."""
    source = shared(PHOTO)
    jpeg = apply_transform(
        Image.open(source).convert("RGB"),
        get_transform("crop_12"),
        seed=3,
        key=hashlib.sha256(source.read_bytes()).hexdigest(),
    )
    path = folder / "crop.jpg"
    path.write_bytes(jpeg)
    return path


def _pdq_hits(url: str, upload: Path, *args: str) -> list[dict]:
    result = ncii(url, "match", str(upload), "-f", "jsonl", *args)
    assert result.exit_code in (0, exit_codes.MATCH), result.output
    return [r for r in _jsonl(result.stdout) if r.get("signal_type") == "pdq"]


def test_a_crop_matches_after_the_bank_went_through_a_jsonl_export_and_import(
    store_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    helpline, platform = store_url, empty_database_url
    assert ncii(helpline, "bank", "create", "reports").exit_code == 0
    added = ncii(helpline, "add", "reports", str(shared(PHOTO)), "-f", "jsonl")
    assert added.exit_code == 0, added.output
    crop = _crop(tmp_path)
    # The crop is too far from the picture's own hash: only a banked variant catches it.
    (hit,) = _pdq_hits(helpline, crop)
    assert hit["variant"] and hit["distance"] <= 31

    exported = ncii(helpline, "export", "reports", "--format", "jsonl")
    assert exported.exit_code == 0, exported.output
    (line,) = _jsonl(exported.stdout)
    banked = hash_file(shared(PHOTO), options=HashOptions.for_bank())
    # Labelled apart from the exchangeable signals, so other tools can ignore them.
    assert [s["type"] for s in line["signals"]] == [s.type for s in banked.signals]
    assert [(v["variant"], v["type"], v["value"]) for v in line["variants"]] == [
        (v.label, "pdq", v.value) for v in banked.pdq_variants
    ]
    bank_file = tmp_path / "reports.jsonl"
    bank_file.write_text(exported.stdout)

    assert ncii(platform, "bank", "create", "from-helpline").exit_code == 0
    imported = ncii(platform, "import", "from-helpline", str(bank_file), "--format", "jsonl")
    assert imported.exit_code == 0, imported.output
    shown = _jsonl(ncii(platform, "bank", "show", "from-helpline", "-f", "jsonl").stdout)[0]
    assert shown["pdq_variants"] == len(banked.pdq_variants)
    (hit,) = _pdq_hits(platform, crop)
    assert (
        hit["bank"] == "from-helpline" and hit["variant"] == _pdq_hits(helpline, crop)[0]["variant"]
    )
    # Importing the same file again adds nothing, variants included.
    again = ncii(platform, "import", "from-helpline", str(bank_file), "--format", "jsonl")
    assert again.exit_code == 0, again.output
    shown = _jsonl(ncii(platform, "bank", "show", "from-helpline", "-f", "jsonl").stdout)[0]
    assert (shown["entries"], shown["pdq_variants"]) == (1, len(banked.pdq_variants))

    # A re-export from the platform carries them on.
    (line_again,) = _jsonl(ncii(platform, "export", "from-helpline", "-f", "jsonl").stdout)
    assert line_again["variants"] == line["variants"]


def test_tx_and_csv_exports_carry_one_hash_per_picture(store_url: str, tmp_path: Path) -> None:
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    assert ncii(store_url, "add", "reports", str(shared(PHOTO))).exit_code == 0
    own = hash_file(shared(PHOTO)).get("pdq").value
    tx = ncii(store_url, "export", "reports", "--format", "tx").stdout
    assert [row for row in tx.splitlines() if row.startswith("pdq ")] == [f"pdq {own}"]
    csv_rows = ncii(store_url, "export", "reports", "--format", "csv").stdout.splitlines()
    assert [r.split(",")[2] for r in csv_rows[1:] if r.split(",")[1] == "pdq"] == [own]
    # So a tx round trip loses the crop (what the README says).
    (tmp_path / "reports.txt").write_text(tx)
    assert ncii(store_url, "bank", "create", "via-tx").exit_code == 0
    via_tx = ncii(store_url, "import", "via-tx", str(tmp_path / "reports.txt"), "-f", "tx")
    assert via_tx.exit_code == 0, via_tx.output
    assert [h["bank"] for h in _pdq_hits(store_url, _crop(tmp_path))] == ["reports"]


def test_bad_variants_in_a_jsonl_import_are_refused_by_line(store_url: str, tmp_path: Path):
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    assert ncii(store_url, "add", "reports", str(shared(PHOTO))).exit_code == 0
    (line,) = _jsonl(ncii(store_url, "export", "reports", "-f", "jsonl").stdout)
    assert ncii(store_url, "bank", "create", "copy").exit_code == 0
    cases = {
        "not a list": "crop",
        "bad hash": [{"variant": "crop_0.03", "type": "pdq", "value": "zz"}],
        "not pdq": [{"variant": "crop_0.03", "type": "phash", "value": "d1c1b2a3c4e5f607"}],
        "no label": [{"type": "pdq", "value": line["variants"][0]["value"]}],
    }
    for what, variants in cases.items():
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(line | {"variants": variants}) + "\n")
        result = ncii(store_url, "import", "copy", str(path), "-f", "jsonl")
        assert result.exit_code != 0, what
        assert "line 1" in result.stderr and "Traceback" not in result.output, result.stderr
    shown = _jsonl(ncii(store_url, "bank", "show", "copy", "-f", "jsonl").stdout)[0]
    assert shown["entries"] == 0


def test_a_case_package_carries_variants_to_the_case_it_opens(
    store_url: str, tmp_path: Path
) -> None:
    package = tmp_path / "case.json"
    made = runner.invoke(app, ["case", "package", str(shared(PHOTO)), "-o", str(package)])
    assert made.exit_code == 0, made.output
    (item,) = json.loads(package.read_text())["items"]
    banked = hash_file(shared(PHOTO), options=HashOptions.for_bank())
    assert [tuple(v) for v in item["variants"]] == [
        (v.label, v.value, v.quality) for v in banked.pdq_variants
    ]
    opened = ncii(store_url, "case", "open", "--from", str(package), "-f", "jsonl")
    assert opened.exit_code == 0, opened.output
    (hit,) = _pdq_hits(store_url, _crop(tmp_path))
    assert hit["bank"] == "cases" and hit["variant"]
