"""The default detection pipeline through `ncii add` and `ncii match`, on both engines.

A reported photo is banked with its variants (crops, small rotations, its own region); a crop,
a letterbox, a caption and a screenshot of it each match its entry, a distinct photo does not,
a withdrawn entry stops matching through its variants too, and variants never leave the bank
(exports) nor make two reports one entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.detection import DEFAULT
from ncii.detection.pipeline import decode_for_hashing
from ncii.detection.variants import centre_crop
from ncii.errors import InvalidArgument
from ncii.evaluation.transforms import apply_transform, get_transform
from ncii.hashing import HashOptions, hash_file
from ncii.service import case_package, ingest
from ncii.service.entries import NewEntry
from ncii.service.matching import Matcher
from ncii.store.engine import open_store

PHOTO = VENDORED / "q0746.jpg"
"""Stairs (256×256, Meta's labelme subset, BSD: tests/data/meta/LICENSE)."""
DISTINCT = [VENDORED / name for name in ("q0291.jpg", "q1050.jpg", "q0122.jpg")]
RE_UPLOADS = ("crop_12", "letterbox", "caption", "screenshot")

runner = CliRunner()


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _re_upload(folder: Path, transform: str) -> Path:
    data = PHOTO.read_bytes()
    image = Image.open(PHOTO).convert("RGB")
    jpeg = apply_transform(
        image, get_transform(transform), seed=7, key=hashlib.sha256(data).hexdigest()
    )
    path = folder / f"{transform}.jpg"
    path.write_bytes(jpeg)
    return path


@pytest.fixture
def uploads(tmp_path: Path) -> dict[str, Path]:
    return {t: _re_upload(tmp_path, t) for t in RE_UPLOADS}


def _pdq_matches(url: str, *paths: Path, pipeline: str = "default") -> dict[str, list[dict]]:
    result = ncii(url, "match", *map(str, paths), "--pipeline", pipeline, "-f", "jsonl")
    assert result.exit_code in (0, exit_codes.MATCH), result.output
    found: dict[str, list[dict]] = {Path(p).name: [] for p in paths}
    for row in _jsonl(result.output):
        if row.get("signal_type") == "pdq":
            found[Path(row["input"]).name].append(row)
    return found


def test_re_uploads_match_the_banked_photo_and_a_distinct_photo_does_not(
    store_url: str, uploads: dict[str, Path]
) -> None:
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    added = ncii(store_url, "add", "reports", str(PHOTO), "-f", "jsonl")
    assert added.exit_code == 0, added.output
    entry_id = _jsonl(added.output)[0]["entry_id"]
    detail = _jsonl(ncii(store_url, "bank", "show", "reports", "-f", "jsonl").output)[0]
    assert detail["by_signal_type"]["pdq"] == 1  # the picture's own hash only
    assert 5 <= detail["pdq_variants"] <= DEFAULT.bank_size - 1

    found = _pdq_matches(store_url, *uploads.values(), *DISTINCT)
    for transform in RE_UPLOADS:
        hits = found[f"{transform}.jpg"]
        assert [h["entry_id"] for h in hits] == [entry_id], (transform, hits)
        assert hits[0]["distance"] <= 31
    # Each found its own way: a crop through a banked crop, a frame through its region.
    assert found["crop_12.jpg"][0]["variant"].startswith("crop_")
    region = found["screenshot.jpg"][0]["transform"].split("/")[0]
    assert region in ("trimmed", "banded", "framed"), found["screenshot.jpg"]
    for path in DISTINCT:
        assert found[path.name] == [], path.name

    # Plain PDQ on both sides (a bank of plain hashes, queried without regions) misses them.
    assert ncii(store_url, "bank", "create", "plain").exit_code == 0
    assert ncii(store_url, "add", "plain", str(PHOTO), "--pipeline", "pdq").exit_code == 0
    plain = _jsonl(ncii(store_url, "bank", "show", "plain", "-f", "jsonl").output)[0]
    assert plain["pdq_variants"] == 0
    found = _pdq_matches(store_url, uploads["crop_12"], uploads["screenshot"], pipeline="pdq")
    assert {h["bank"] for rows in found.values() for h in rows} == {"reports"}
    assert found["screenshot.jpg"] == []  # no region looked up: not even the bank's crops help

    # Withdrawn: no longer matched, through its variants or its regions either.
    withdrawn = ncii(store_url, "entry", "withdraw", str(entry_id), "--reason", "victim asked")
    assert withdrawn.exit_code == 0, withdrawn.output
    found = _pdq_matches(store_url, *uploads.values())
    assert all(h["bank"] != "reports" for rows in found.values() for h in rows), found


def test_variants_are_not_exported_and_do_not_merge_reports(store_url: str, tmp_path: Path) -> None:
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    # A second report that is exactly a banked crop of the first one: its own hash equals a
    # variant of the first entry. It is a report of its own (a new entry), in one call or two.
    crop = tmp_path / "crop.png"
    Image.fromarray(centre_crop(decode_for_hashing(PHOTO.read_bytes()), 0.12)).save(crop)
    crop_pdq = hash_file(crop).get("pdq")
    variants = hash_file(PHOTO, options=HashOptions(bank_variants=DEFAULT)).pdq_variants
    assert crop_pdq.value in {v.value for v in variants}

    first = ncii(store_url, "add", "reports", str(PHOTO), "-f", "jsonl")
    second = ncii(store_url, "add", "reports", str(crop), "-f", "jsonl")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    (photo_row,), (crop_row,) = _jsonl(first.output), _jsonl(second.output)
    assert crop_row["outcome"] == "added" and crop_row["entry_id"] != photo_row["entry_id"]
    found = _pdq_matches(store_url, crop)["crop.png"]
    exact = [h for h in found if h["distance"] == 0]
    assert [(h["entry_id"], h["variant"]) for h in exact] == [(crop_row["entry_id"], None)]

    assert ncii(store_url, "bank", "create", "together").exit_code == 0
    both = ncii(store_url, "add", "together", str(PHOTO), str(crop), "-f", "jsonl")
    assert [r["outcome"] for r in _jsonl(both.output)] == ["added", "added"], both.output

    # Adding the photo again changes nothing; its variants are all there.
    again = ncii(store_url, "add", "reports", str(PHOTO), "-f", "jsonl")
    assert _jsonl(again.output)[0]["outcome"] == "present"

    exported = ncii(store_url, "export", "reports", "-f", "jsonl")
    assert exported.exit_code == 0, exported.output
    pdq_values = [
        s["value"]
        for line in _jsonl(exported.output)
        for s in line["signals"]
        if s["type"] == "pdq"
    ]
    assert sorted(pdq_values) == sorted([hash_file(PHOTO).get("pdq").value, crop_pdq.value])


def test_an_entry_imported_as_hashes_gains_variants_when_its_media_is_added(
    store_url: str, tmp_path: Path, uploads: dict[str, Path]
) -> None:
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(hash_file(PHOTO).get("pdq").value + "\n")
    imported = ncii(store_url, "add", "reports", "--hashes", str(hashes), "--type", "pdq")
    assert imported.exit_code == 0, imported.output
    with open_store(store_url) as store:
        matcher = Matcher(store, refresh_interval=0)
        options = HashOptions.for_uploads()
        crop = hash_file(uploads["crop_12"], options=options)
        assert matcher.match(crop) == []  # a plain hash: the crop is too far from it
        # The query side alone catches a screenshot of it (plain hashing of the upload does not).
        screenshot = uploads["screenshot"]
        assert [m.entry_id for m in matcher.match(hash_file(screenshot, options=options))]
        assert matcher.match(hash_file(screenshot)) == []

        media = hash_file(PHOTO, options=HashOptions.for_bank())
        with store.begin() as session:
            summary = ingest.add_entries(
                session,
                "reports",
                [NewEntry(media.signals, variants=media.pdq_variants)],
                actor="tester",
            )
        assert (summary.added, summary.extended) == (0, 1)
        # The running matcher picks the new variants up from the change log.
        assert [m.variant is not None for m in matcher.match(crop) if m.signal_type == "pdq"] == [
            True
        ]


def test_case_packages_carry_variants() -> None:
    hashed = hash_file(PHOTO, options=HashOptions(bank_variants=DEFAULT))
    package = case_package.build_package([case_package.item_of(hashed)])
    text = json.dumps(package)
    (item,) = case_package.read_package(text, name="case.json")
    assert item.variants == hashed.pdq_variants and item.variants
    broken = text.replace(hashed.pdq_variants[0].value, "zz" * 32)
    with pytest.raises(InvalidArgument, match=r"case\.json, item 1: .*zzzz"):
        case_package.read_package(broken, name="case.json")
