"""Victim cases on both engines, through the real CLI: open from real photos (or a hash-only
package), count matches, refuse wrong PINs and lock, withdraw everywhere within a second."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from shared_data import VENDORED
from sqlalchemy import select
from typer.testing import CliRunner

from ncii import hash_bytes, hash_file
from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.errors import CaseLocked, NotFound, WrongPin
from ncii.service import cases, history
from ncii.service.matching import Matcher
from ncii.store.engine import Store
from ncii.store.models import Case

PHOTOS = (VENDORED / "square-512x512.jpg", VENDORED / "q0291.jpg")
runner = CliRunner()


def ncii(url: str, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--db", url], input=input)


def _copy(path: Path, target: Path) -> Path:
    """Mirrored, resized and re-encoded at another JPEG quality: a typical re-upload."""
    with Image.open(path) as image:
        smaller = (image.width * 4 // 5, image.height * 4 // 5)
        ImageOps.mirror(image.convert("RGB")).resize(smaller).save(target, "JPEG", quality=55)
    return target


def _open(url: str, tmp_path: Path, *args: str) -> tuple[str, Path]:
    """Open a case from the two photos; returns its number and a file holding its PIN."""
    result = ncii(url, "case", "open", *map(str, PHOTOS), *args, "-f", "jsonl")
    assert result.exit_code == 0, result.output
    opened = json.loads(result.stdout)
    pin_file = tmp_path / f"{opened['case']}.pin"
    pin_file.write_text(opened["pin"] + "\n")
    return opened["case"], pin_file


def _status(url: str, number: str, pin_file: Path) -> dict:
    result = ncii(url, "case", "status", number, "--pin-file", str(pin_file), "-f", "jsonl")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


SECOND_PROCESS = textwrap.dedent(
    """
    import sys, time
    from ncii import hash_file
    from ncii.service.matching import Matcher
    from ncii.store.engine import open_store

    matcher = Matcher(open_store(sys.argv[1]))  # refreshes every half second
    upload = hash_file(sys.argv[2])
    print("matched" if matcher.match(upload) else "no match", flush=True)
    sys.stdin.readline()  # the case is being withdrawn
    start = time.monotonic()
    while matcher.match(upload) and time.monotonic() - start < 5:
        time.sleep(0.02)
    print(f"{time.monotonic() - start:.3f}", flush=True)
    """
)


def test_a_case_end_to_end_open_match_count_withdraw(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    number, pin_file = _open(store_url, tmp_path, "--name", "helpline 17")
    assert number.startswith("NC-")
    copy = _copy(PHOTOS[0], tmp_path / "reupload.jpg")

    # The case's hashes are entries of the case bank, with no file name anywhere.
    listed = ncii(store_url, "entry", "list", "cases", "-f", "jsonl")
    stored = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["case_ref"] for e in stored] == [number, number]
    assert {s["value"] for s in stored[0]["signals"]} == {
        s.value for s in hash_file(PHOTOS[0]).signals
    }
    assert not any(p.name in listed.stdout for p in PHOTOS)

    # A running matcher in this process, and one in a second process, both match the copy.
    matcher = Matcher(store)
    assert [m.case_ref for m in matcher.match(hash_file(copy))] == [number]
    other = subprocess.Popen(
        [sys.executable, "-c", SECOND_PROCESS, store_url, str(copy)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "matched"

        # `ncii match` reports it (exit 4) and the case counts it; nothing about the copy.
        assert _status(store_url, number, pin_file)["matches"] == 0
        hit = ncii(store_url, "match", str(copy), "-f", "jsonl")
        assert hit.exit_code == exit_codes.MATCH, hit.output
        status = _status(store_url, number, pin_file)
        assert (status["hashes"], status["active"], status["matches"]) == (2, 2, 1)
        assert status["status"] == "open" and status["name"] == "helpline 17"
        assert status["last_match_at"] is not None
        assert "reupload" not in json.dumps(status) and "pdq" not in json.dumps(status)

        withdrawn = ncii(
            store_url, "case", "withdraw", number, "--pin-file", str(pin_file), "--yes"
        )
        assert withdrawn.exit_code == 0, withdrawn.output
        other.stdin.write("go\n")
        other.stdin.flush()
        assert "2 hashes no longer match" in withdrawn.stderr

        # Same process: at once; the index itself drops it at the next refresh.
        assert matcher.match(hash_file(copy)) == []
        matcher.refresh(force=True)
        assert matcher.index.search(hash_file(copy)) == []
        # Second process: within a second of the withdrawal.
        elapsed = float(other.stdout.readline())
        assert elapsed < 1.0, f"the second process still matched after {elapsed}s"
    finally:
        other.kill()
        other.wait(timeout=10)
    assert ncii(store_url, "match", str(copy)).exit_code == 0
    status = _status(store_url, number, pin_file)
    assert (status["status"], status["active"], status["matches"]) == ("withdrawn", 0, 1)
    exported = ncii(store_url, "export", "cases", "--format", "csv").stdout.splitlines()[1:]
    assert exported and all(",withdrawn," in line for line in exported)
    with store.read() as session:
        actions = [e.action for e in history.audit_events(session)]
        case = session.scalar(select(Case).where(Case.number == number))
    assert actions[0] == "case.withdraw" and "case.open" in actions
    assert case is not None and case.status == "withdrawn"
    assert ncii(store_url, "audit", "verify").exit_code == 0


def test_the_pin_is_stored_only_as_a_salted_slow_hash(store: Store, store_url: str, tmp_path: Path):
    _, first_pin = _open(store_url, tmp_path)
    _, second_pin = _open(store_url, tmp_path)
    pins = [p.read_text().strip() for p in (first_pin, second_pin)]
    with store.read() as session:
        stored = list(session.scalars(select(Case.pin_hash).order_by(Case.id)))
        dumped = [str(e.to_dict()) for e in history.audit_events(session)]
    for pin, hashed in zip(pins, stored, strict=True):
        assert hashed.startswith("scrypt$16384$8$1$")
        assert pin not in hashed and pin.replace("-", "") not in hashed
        assert cases.pin_matches(pin, hashed) and not cases.pin_matches("0000-0000", hashed)
    assert stored[0].split("$")[4] != stored[1].split("$")[4]  # salted
    assert not any(pin in d or pin.replace("-", "") in d for pin in pins for d in dumped)


def test_wrong_pins_are_refused_counted_and_lock_the_case(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    number, pin_file = _open(store_url, tmp_path)
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("1111-2222\n")
    for left in (4, 3, 2, 1):
        result = ncii(store_url, "case", "status", number, "--pin-file", str(wrong))
        assert result.exit_code == exit_codes.ERROR
        assert f"wrong PIN for case {number} ({left} more wrong PIN" in result.stderr
    locked = ncii(store_url, "case", "withdraw", number, "--pin-file", str(wrong), "--yes")
    assert locked.exit_code == exit_codes.ERROR and "is locked" in locked.stderr
    # Locked: the right PIN is refused too, and the case was not withdrawn.
    right = ncii(store_url, "case", "status", number, "--pin-file", str(pin_file))
    assert right.exit_code == exit_codes.ERROR and "is locked" in right.stderr
    with store.read() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        actions = [e.action for e in history.audit_events(session)]
    assert case is not None and case.status == "open" and case.locked_until is not None
    assert actions.count("case.pin_failed") == 5 and actions.count("case.pin_refused") == 1
    # Once the lock expires, the right PIN works and clears the count.
    pin, second = pin_file.read_text(), dt.timedelta(seconds=1)
    with store.begin() as session:
        early = cases.check_pin(session, number, pin, actor="t", now=case.locked_until - second)
        with pytest.raises(CaseLocked):
            early.raise_if_refused()
        later = case.locked_until + second
        cases.check_pin(session, number, pin, actor="t", now=later).raise_if_refused()
        again = cases.check_pin(session, number, "9999-9999", actor="t", now=later)
    with pytest.raises(WrongPin, match="4 more wrong PINs"):
        again.raise_if_refused()


def test_the_pin_can_be_typed_at_the_prompt(store_url: str, tmp_path: Path) -> None:
    number, pin_file = _open(store_url, tmp_path)
    result = ncii(store_url, "case", "status", number, "-f", "jsonl", input=pin_file.read_text())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["hashes"] == 2


def test_unknown_case_and_bad_input_are_refused(store: Store, store_url: str, tmp_path: Path):
    pin = tmp_path / "pin"
    pin.write_text("1234-5678\n")
    for command in (["status"], ["withdraw", "--yes"]):
        result = ncii(store_url, "case", *command, "NC-0000-0000", "--pin-file", str(pin))
        assert result.exit_code == exit_codes.ERROR
        assert "no case 'NC-0000-0000'" in result.stderr
    with store.begin() as session, pytest.raises(NotFound):
        cases.withdraw_case(session, "NC-0000-0000", actor="t")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    failed = ncii(store_url, "case", "open", str(PHOTOS[0]), str(broken))
    assert failed.exit_code == exit_codes.SOME_INPUTS_FAILED
    assert "broken.jpg" in failed.stderr and "nothing was done" in failed.stderr
    assert ncii(store_url, "case", "open").exit_code == exit_codes.USAGE
    missing_bank = ncii(store_url, "case", "open", str(PHOTOS[0]), "--bank", "nope")
    assert (
        missing_bank.exit_code == exit_codes.ERROR and "no bank named 'nope'" in missing_bank.stderr
    )
    with store.read() as session:
        assert session.scalar(select(Case.id)) is None


def test_package_on_one_machine_open_elsewhere(store: Store, store_url: str, tmp_path: Path):
    package = tmp_path / "case.json"
    made = runner.invoke(app, ["case", "package", *map(str, PHOTOS), "-o", str(package)])
    assert made.exit_code == 0, made.output
    data = json.loads(package.read_text())
    assert data["format"] == "ncii-case-package" and len(data["items"]) == 2
    assert "path" not in package.read_text() and PHOTOS[0].name not in package.read_text()
    # Hashes (each photo's own and its variants'), not media.
    assert package.stat().st_size < min(8192, *(p.stat().st_size for p in PHOTOS))
    assert all(item["variants"] for item in data["items"])
    assert data["items"][1]["signals"] == [
        {"type": s.type, "value": s.value}
        | ({"quality": s.quality} if s.quality is not None else {})
        for s in hash_file(PHOTOS[1]).signals
    ]
    with_paths = tmp_path / "with-paths.json"
    runner.invoke(
        app, ["case", "package", str(PHOTOS[0]), "-o", str(with_paths), "--include-paths"]
    )
    assert json.loads(with_paths.read_text())["items"][0]["path"] == str(PHOTOS[0])

    opened = ncii(store_url, "case", "open", "--from", str(package), "-f", "jsonl")
    assert opened.exit_code == 0, opened.output
    assert json.loads(opened.stdout)["hashes"] == 2
    copy = _copy(PHOTOS[0], tmp_path / "copy.jpg")
    assert Matcher(store).match(hash_file(copy))

    package.write_text(package.read_text().replace('"pdq"', '"pdqq"', 1))
    bad = ncii(store_url, "case", "open", "--from", str(package))
    assert bad.exit_code == exit_codes.USAGE
    assert "case.json, item 1: unknown signal type 'pdqq'" in bad.stderr
    package.write_text("{}")
    assert "not a case package" in ncii(store_url, "case", "open", "--from", str(package)).stderr


def test_a_hash_two_cases_share_keeps_matching_until_both_withdraw(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    first, first_pin = _open(store_url, tmp_path)
    result = ncii(store_url, "case", "open", str(PHOTOS[0]), "-f", "jsonl")
    second = json.loads(result.stdout)
    assert (second["hashes"], second["added"], second["already_banked"]) == (1, 0, 1)
    done = ncii(
        store_url, "case", "withdraw", first, "--pin-file", str(first_pin), "--yes", "-f", "jsonl"
    )
    assert json.loads(done.stdout) == {
        "case": first,
        "withdrawn": 1,
        "kept_for_other_cases": 1,
        "already_withdrawn": False,
    }
    upload = hash_bytes(_copy(PHOTOS[0], tmp_path / "c.jpg").read_bytes())
    assert [m.case_ref for m in Matcher(store).match(upload)] == [first]  # the shared entry
    again = ncii(store_url, "case", "withdraw", first, "--pin-file", str(first_pin), "--yes")
    assert "already withdrawn" in again.stderr
    with store.begin() as session:
        cases.withdraw_case(session, second["case"], actor="t")
    assert Matcher(store).match(upload) == []
    # Reported again in a new case, the withdrawn entry matches again.
    third = ncii(store_url, "case", "open", str(PHOTOS[0]), "-f", "jsonl")
    assert json.loads(third.stdout)["already_banked"] == 1
    assert Matcher(store).match(upload)
    with store.read() as session:
        [event] = [e for e in history.audit_events(session) if e.action == "case.reactivate"]
    assert len(event.details["entries"]) == 1


def test_hash_lookups_are_not_counted_but_scans_are(store_url: str, tmp_path: Path) -> None:
    number, pin_file = _open(store_url, tmp_path)
    pdq = hash_file(PHOTOS[1]).get("pdq")
    assert pdq is not None
    assert ncii(store_url, "match", "--hash", f"pdq:{pdq.value}").exit_code == exit_codes.MATCH
    assert _status(store_url, number, pin_file)["matches"] == 0
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    _copy(PHOTOS[0], uploads / "a.jpg")
    _copy(PHOTOS[1], uploads / "b.jpg")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, "PNG")
    (uploads / "unrelated.png").write_bytes(buffer.getvalue())
    report = tmp_path / "scan.csv"
    scanned = ncii(store_url, "scan", str(uploads), "--report", str(report), "--jobs", "1")
    assert scanned.exit_code == exit_codes.MATCH, scanned.output
    assert _status(store_url, number, pin_file)["matches"] == 2
