"""The store-backed Matcher on both engines: matches, statuses, and changes from other
processes reflected within a second."""

import io
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageOps
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii import hash_bytes, hash_file
from ncii.cli.app import app
from ncii.service.banks import create_bank
from ncii.service.entries import NewEntry, disable_entry, withdraw_entry
from ncii.service.ingest import add_entries
from ncii.service.matching import Matcher
from ncii.store.engine import open_store
from ncii.store.models import EntryStatus

PHOTO = VENDORED / "square-512x512.jpg"
OTHER = VENDORED / "rgb.jpeg"


def _flipped_copy(path: Path) -> bytes:
    with Image.open(path) as image:
        buffer = io.BytesIO()
        ImageOps.mirror(image.convert("RGB")).resize((400, 400)).save(buffer, "JPEG", quality=60)
        return buffer.getvalue()


def _bank_with(store, *paths: Path, case: str = "CASE-1") -> list[int]:
    with store.begin() as session:
        create_bank(session, "reports", actor="test")
        ids: list[int] = []
        add_entries(
            session,
            "reports",
            [NewEntry(hash_file(p).signals, case_ref=case) for p in paths],
            actor="test",
            on_result=lambda r: ids.append(r.entry_id),
        )
    return ids


def test_flipped_reencoded_copy_matches_with_case_and_distinct_image_does_not(store):
    [entry_id] = _bank_with(store, PHOTO)
    matcher = Matcher(store)
    matches = matcher.match(hash_bytes(_flipped_copy(PHOTO), name="upload.jpg"))
    assert [(m.bank, m.entry_id, m.signal_type, m.case_ref, m.active) for m in matches] == [
        ("reports", entry_id, "pdq", "CASE-1", True)
    ]
    assert matches[0].transform == "flipy" and matches[0].distance <= 31
    assert matcher.match(hash_file(OTHER)) == []
    exact = matcher.match(hash_file(PHOTO))
    assert {m.signal_type for m in exact} >= {"pdq", "md5", "sha256"}
    assert matcher.match(hash_file(PHOTO), banks=["elsewhere"]) == []


def test_withdrawn_and_disabled_entries_stop_matching_in_the_same_process(store):
    [entry_id] = _bank_with(store, PHOTO)
    matcher = Matcher(store, refresh_interval=60)  # only the forced refresh below applies
    upload = hash_bytes(_flipped_copy(PHOTO))
    assert matcher.match(upload)
    with store.begin() as session:
        disable_entry(session, entry_id, actor="test", reason="false positive review")
    assert matcher.match(upload) == []  # resolved against the store at once
    [flagged] = matcher.match(upload, include_inactive=True)
    assert flagged.status is EntryStatus.disabled and not flagged.active
    with store.begin() as session:
        withdraw_entry(session, entry_id, actor="test", reason="victim withdrew")
    assert matcher.match(upload, include_inactive=True) == []
    assert matcher.refresh(force=True) >= 2
    assert matcher.index.search(upload) == []  # and gone from the index itself


def test_an_entry_added_elsewhere_is_matched_after_a_refresh(store):
    _bank_with(store, OTHER)
    matcher = Matcher(store, refresh_interval=0.0)
    upload = hash_bytes(_flipped_copy(PHOTO))
    assert matcher.match(upload) == []
    url = store.url.render_as_string(hide_password=False)
    with open_store(url) as other, other.begin() as session:
        add_entries(session, "reports", [NewEntry(hash_file(PHOTO).signals)], actor="other")
    assert len(matcher.match(upload)) == 1


def test_low_quality_hashes_are_left_out_unless_asked(store):
    flat = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(flat, "PNG")
    hashes = hash_bytes(flat.getvalue())
    pdq = hashes.get("pdq")
    assert pdq is not None and pdq.low_quality
    with store.begin() as session:
        create_bank(session, "reports", actor="test")
        add_entries(session, "reports", [NewEntry((pdq,))], actor="test")
    assert Matcher(store).match(hashes) == []
    assert len(Matcher(store, include_low_quality=True).match(hashes)) == 1


def test_a_running_matcher_stops_reporting_an_entry_withdrawn_by_another_process(store):
    [entry_id] = _bank_with(store, PHOTO)
    matcher = Matcher(store)  # default refresh interval: half a second
    upload = hash_bytes(_flipped_copy(PHOTO))
    assert matcher.match(upload)
    url = store.url.render_as_string(hide_password=False)
    ncii = Path(sys.executable).with_name("ncii")
    done = subprocess.run(
        [str(ncii), "entry", "withdraw", str(entry_id), "--reason", "victim withdrew", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    withdrawn_at = time.monotonic()
    while matcher.match(upload):
        assert time.monotonic() - withdrawn_at < 1.0, "still matching a second later"
        time.sleep(0.05)
    time.sleep(0.6)
    matcher.match(upload)
    assert matcher.index.search(upload) == []  # the change log reached the index too


def test_match_cli_exit_codes_and_output(store, tmp_path):
    _bank_with(store, PHOTO)
    url = store.url.render_as_string(hide_password=False)
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(_flipped_copy(PHOTO))
    runner = CliRunner()
    hit = runner.invoke(app, ["match", str(upload), "--db", url, "-f", "jsonl"])
    assert hit.exit_code == 4, hit.output
    assert '"case_ref":"CASE-1"' in hit.stdout and '"active":true' in hit.stdout
    miss = runner.invoke(app, ["match", str(OTHER), "--db", url, "-f", "jsonl"])
    assert miss.exit_code == 0, miss.output
    pdq = hash_file(PHOTO).get("pdq")
    assert pdq is not None
    by_hash = runner.invoke(app, ["match", "--hash", f"pdq:{pdq.value}", "--db", url])
    assert by_hash.exit_code == 4
    bad = runner.invoke(app, ["match", "--hash", "pdq:xyz", "--db", url])
    assert bad.exit_code == 2 and "invalid pdq hash" in bad.stderr
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    failed = runner.invoke(app, ["match", str(broken), "--db", url])
    assert failed.exit_code == 1 and "broken.jpg" in failed.stderr


def test_scan_writes_a_report_and_resumes(store, tmp_path):
    _bank_with(store, PHOTO)
    url = store.url.render_as_string(hide_password=False)
    backlog = tmp_path / "backlog"
    backlog.mkdir()
    (backlog / "copy.jpg").write_bytes(_flipped_copy(PHOTO))
    (backlog / "other.jpeg").write_bytes(OTHER.read_bytes())
    (backlog / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    report = tmp_path / "scan.csv"
    runner = CliRunner()
    first = runner.invoke(
        app, ["scan", str(backlog), "--report", str(report), "--db", url, "--jobs", "1"]
    )
    assert first.exit_code == 4, first.output
    lines = report.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("path,status")
    assert sum(",match," in line for line in lines) == 1
    assert sum(",error," in line for line in lines) == 1
    # An interrupted run: the last row was cut short; the rerun finishes the job.
    report.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])
    (backlog / "new.jpg").write_bytes(_flipped_copy(PHOTO))
    second = runner.invoke(
        app, ["scan", str(backlog), "--report", str(report), "--db", url, "--jobs", "1"]
    )
    assert second.exit_code == 4, second.output
    assert "skipped 1 already" in second.stderr
    rows = report.read_text().splitlines()[1:]
    assert sorted(r.split(",")[0].rsplit("/", 1)[-1] for r in rows) == [
        "broken.jpg",
        "copy.jpg",
        "new.jpg",
        "other.jpeg",
    ]


def test_scan_report_counts_entries_not_signal_types(store, tmp_path):
    """A banked photo uploaded again byte for byte is found by its PDQ, MD5 and SHA-256: one
    entry matched, listed once."""
    import csv

    [entry_id] = _bank_with(store, PHOTO)
    url = store.url.render_as_string(hide_password=False)
    backlog = tmp_path / "backlog"
    backlog.mkdir()
    (backlog / "same.jpg").write_bytes(PHOTO.read_bytes())
    report = tmp_path / "scan.csv"
    result = CliRunner().invoke(
        app, ["scan", str(backlog), "--report", str(report), "--db", url, "--jobs", "1"]
    )
    assert result.exit_code == 4, result.output
    (row,) = csv.DictReader(report.open())
    assert (row["status"], row["matches"], row["entry_ids"]) == ("match", "1", str(entry_id))
