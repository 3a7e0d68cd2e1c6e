"""`ncii add` (media files and hash lists) and `ncii entry` on both engines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.hashing import hash_file
from ncii.service import history
from ncii.store.engine import open_store

runner = CliRunner()


def ncii(url: str, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--db", url], input=input)


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def bank_url(store_url: str) -> str:
    assert ncii(store_url, "bank", "create", "own").exit_code == 0
    return store_url


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Two small real photos: vendored ones when there, else drawn with Pillow."""
    folder = tmp_path / "images"
    folder.mkdir()
    vendored = [VENDORED / "rgb.jpeg", VENDORED / "q0003.jpg"]
    if all(p.is_file() for p in vendored):
        return [Path(shutil.copy(p, folder / p.name)) for p in vendored]
    made = []
    for i, colour in enumerate(((200, 30, 30), (30, 30, 200))):
        image = Image.new("RGB", (256, 192), colour)
        for x in range(0, 256, 16):
            image.paste((x, 255 - x, (x * 7) % 256), (x, (x * i) % 192, x + 8, 192))
        path = folder / f"made{i}.png"
        image.save(path)
        made.append(path)
    return made


def test_add_media_stores_every_signal_once(bank_url: str, images: list[Path]) -> None:
    result = ncii(bank_url, "add", "own", *map(str, images), "--case", "CASE-1", "--note", "n")
    assert result.exit_code == 0, result.output
    added = _jsonl(result.stdout)
    assert [r["outcome"] for r in added] == ["added", "added"]
    assert "2 added, 0 already there" in result.stderr
    expected = hash_file(images[0])
    assert added[0]["pdq"] == expected.get("pdq").value
    assert added[0]["signals"] == ",".join(s.type for s in expected.signals)

    again = ncii(bank_url, "add", "own", str(images[0].parent))  # a directory this time
    assert again.exit_code == 0
    assert [r["outcome"] for r in _jsonl(again.stdout)] == ["present", "present"]
    ids = {r["pdq"]: r["entry_id"] for r in added}
    assert {r["pdq"]: r["entry_id"] for r in _jsonl(again.stdout)} == ids

    listed = _jsonl(ncii(bank_url, "entry", "list", "own").stdout)
    assert [e["case_ref"] for e in listed] == ["CASE-1", "CASE-1"]
    stored = {(s["type"], s["value"], s.get("quality")) for s in listed[0]["signals"]}
    assert stored == {(s.type, s.value, s.quality) for s in expected.signals}
    assert not any("path" in e or images[0].name in json.dumps(e) for e in listed)
    with open_store(bank_url) as store, store.read() as session:
        actions = [e.action for e in history.audit_events(session)]
    assert actions.count("entry.add") == 2


def test_add_reports_bad_files_and_adds_the_rest(bank_url: str, images: list[Path]) -> None:
    broken = images[0].parent / "broken.jpg"
    broken.write_bytes(images[0].read_bytes()[:300])
    result = ncii(bank_url, "add", "own", str(images[0]), str(broken))
    assert result.exit_code == exit_codes.SOME_INPUTS_FAILED
    assert "broken.jpg" in result.stderr
    assert [r["outcome"] for r in _jsonl(result.stdout)] == ["added"]


def test_add_to_a_missing_bank_hashes_nothing(store_url: str, images: list[Path]) -> None:
    result = ncii(store_url, "add", "nope", str(images[0]))
    assert result.exit_code == exit_codes.ERROR
    assert result.stderr.strip() == "error: no bank named 'nope'"


def test_add_needs_files_or_hashes(bank_url: str, tmp_path: Path) -> None:
    assert ncii(bank_url, "add", "own").exit_code == exit_codes.USAGE
    hashes = tmp_path / "h.txt"
    hashes.write_text("x")
    both = ncii(bank_url, "add", "own", "a.jpg", "--hashes", str(hashes))
    assert both.exit_code == exit_codes.USAGE


def test_add_hashes_without_media(bank_url: str, tmp_path: Path) -> None:
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(f"{1:064x}\npdq {2:064x}\nmd5:{3:032x}\n")
    result = ncii(
        bank_url, "add", "own", "--hashes", str(hashes), "--type", "pdq", "--source-id", "s-1"
    )
    assert result.exit_code == 0, result.output
    rows = _jsonl(result.stdout)
    assert [(r["source"], r["outcome"]) for r in rows] == [
        ("line 1", "added"),
        ("line 2", "added"),
        ("line 3", "added"),
    ]
    again = ncii(bank_url, "add", "own", "--hashes", "-", input=f"pdq {2:064x}\n")
    assert [r["outcome"] for r in _jsonl(again.stdout)] == ["present"]
    listed = _jsonl(ncii(bank_url, "entry", "list", "own").stdout)
    assert {e["external_id"] for e in listed} == {"s-1"}


def test_add_hashes_in_other_formats(bank_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(f"signal_type,value,quality\npdq,{5:064x},77\n")
    result = ncii(bank_url, "add", "own", "--hashes", str(path), "--hashes-format", "csv")
    assert result.exit_code == 0 and _jsonl(result.stdout)[0]["pdq_quality"] == 77


def test_add_hashes_with_a_bad_line_adds_nothing(bank_url: str, tmp_path: Path) -> None:
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(f"pdq {1:064x}\npdq nothex\n")
    result = ncii(bank_url, "add", "own", "--hashes", str(hashes))
    assert result.exit_code == exit_codes.ERROR
    assert "hashes.txt, line 2: invalid pdq hash 'nothex'" in result.stderr
    assert "nothing was imported" in result.stderr
    assert _jsonl(ncii(bank_url, "entry", "list", "own").stdout) == []


def test_entry_status_commands(bank_url: str, tmp_path: Path) -> None:
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("".join(f"pdq {i:064x}\n" for i in range(1, 5)))
    assert ncii(bank_url, "add", "own", "--hashes", str(hashes)).exit_code == 0
    ids = [e["id"] for e in _jsonl(ncii(bank_url, "entry", "list", "own").stdout)]

    disabled = ncii(
        bank_url, "entry", "disable", str(ids[0]), "--reason", "review", "--until", "2099-01-01"
    )
    assert disabled.exit_code == 0, disabled.output
    [row] = _jsonl(disabled.stdout)
    assert (row["previous"], row["status"], row["changed"]) == ("active", "disabled", True)
    assert row["disabled_until"].startswith("2099-01-01T00:00:00")

    withdrawn = ncii(bank_url, "entry", "withdraw", str(ids[1]), str(ids[2]), "--reason", "gone")
    assert [r["status"] for r in _jsonl(withdrawn.stdout)] == ["withdrawn", "withdrawn"]
    enabled = ncii(bank_url, "entry", "enable", str(ids[0]), "--reason", "done")
    assert _jsonl(enabled.stdout)[0]["status"] == "active"

    by_status = _jsonl(ncii(bank_url, "entry", "list", "own", "--status", "withdrawn").stdout)
    assert [e["id"] for e in by_status] == ids[1:3]
    [shown] = _jsonl(ncii(bank_url, "bank", "show", "own").stdout)
    assert shown["by_status"] == {"active": 2, "disabled": 0, "withdrawn": 2}

    assert ncii(bank_url, "entry", "withdraw", str(ids[3])).exit_code == exit_codes.USAGE
    missing = ncii(bank_url, "entry", "withdraw", "999999", "--reason", "x")
    assert missing.exit_code == exit_codes.ERROR and "no entry with id 999999" in missing.stderr
    past = ncii(bank_url, "entry", "disable", str(ids[3]), "--reason", "x", "--until", "2000-01-01")
    assert past.exit_code == exit_codes.USAGE and "in the past" in past.stderr
    bad = ncii(bank_url, "entry", "disable", str(ids[3]), "--reason", "x", "--until", "soon")
    assert bad.exit_code == exit_codes.USAGE


def test_entry_list_pages_and_filters(bank_url: str, tmp_path: Path) -> None:
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("".join(f"pdq {i:064x}\n" for i in range(1, 6)) + f"md5 {9:032x}\n")
    assert ncii(bank_url, "add", "own", "--hashes", str(hashes)).exit_code == 0
    first = ncii(bank_url, "entry", "list", "own", "--limit", "4")
    ids = [e["id"] for e in _jsonl(first.stdout)]
    assert len(ids) == 4 and f"--after {ids[-1]}" in first.stderr
    rest = ncii(bank_url, "entry", "list", "own", "--limit", "4", "--after", str(ids[-1]))
    assert len(_jsonl(rest.stdout)) == 2 and "more entries" not in rest.stderr
    md5 = _jsonl(ncii(bank_url, "entry", "list", "own", "--type", "md5").stdout)
    assert [e["signals"][0]["type"] for e in md5] == ["md5"]
    table = ncii(bank_url, "entry", "list", "own", "--format", "table")
    assert table.exit_code == 0 and "active" in table.stdout


@pytest.mark.shared_data
def test_add_real_photos_from_shared_data(bank_url: str, shared_data: Path) -> None:
    photos = sorted((shared_data / "kodak24").glob("*.png"))[:4]
    result = ncii(bank_url, "add", "own", *map(str, photos), "--jobs", "2")
    assert result.exit_code == 0, result.output
    rows = _jsonl(result.stdout)
    assert [r["outcome"] for r in rows] == ["added"] * len(photos)
    assert all(len(r["pdq"]) == 64 and r["pdq_quality"] >= 50 for r in rows)
    [shown] = _jsonl(ncii(bank_url, "bank", "show", "own").stdout)
    assert shown["entries"] == len(photos)
    assert shown["by_signal_type"]["pdq"] == shown["by_signal_type"]["sha256"] == len(photos)


@pytest.mark.shared_data
def test_a_copy_with_the_same_pdq_extends_the_entry(bank_url: str, shared_data: Path) -> None:
    """A slightly blurred copy hashes to the original's PDQ: the same reported item, so its
    own file digests are attached to the original's entry rather than a new one made."""
    mods = shared_data / "threatexchange" / "pdq" / "data" / "bridge-mods"
    original, blurred = mods / "aaa-orig.jpg", mods / "blur-a-little.jpg"
    assert hash_file(original).get("pdq") == hash_file(blurred).get("pdq")
    first = _jsonl(ncii(bank_url, "add", "own", str(original)).stdout)
    second = _jsonl(ncii(bank_url, "add", "own", str(blurred)).stdout)
    assert second[0]["outcome"] == "extended"
    assert second[0]["entry_id"] == first[0]["entry_id"]
    [entry] = _jsonl(ncii(bank_url, "entry", "list", "own").stdout)
    digests = {s["value"] for s in entry["signals"] if s["type"] == "sha256"}
    assert digests == {hash_file(p).get("sha256").value for p in (original, blurred)}
