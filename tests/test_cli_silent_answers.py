"""Answers that were silently wrong: --include-inactive, notices to the wrong host, the 48-hour
percentage, photo digests exported as a video's, hostile takedown fields on the terminal
(issue 13 items 3, 4, 5, 7, 10; issue 14 item 7)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from shared_data import VENDORED
from sqlalchemy import update
from typer.testing import CliRunner

from ncii import hash_file
from ncii.cli import exit_codes, output
from ncii.cli.app import app
from ncii.service import reports, takedowns
from ncii.service.matching import Matcher
from ncii.service.takedowns import NewTakedown
from ncii.store.engine import Store, open_store
from ncii.store.models import Takedown

runner = CliRunner()
PHOTO = VENDORED / "rgb.jpeg"
OTHER = VENDORED / "q0746.jpg"
ESC = "\x1b"


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def banked_url(store_url: str) -> str:
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    assert ncii(store_url, "add", "reports", str(PHOTO)).exit_code == 0
    return store_url


# -- item 3 --------------------------------------------------------------------------------


def test_include_inactive_reports_a_disabled_entry(banked_url: str) -> None:
    disabled = ncii(banked_url, "entry", "disable", "1", "--reason", "under review")
    assert disabled.exit_code == 0, disabled.output
    plain = ncii(banked_url, "match", str(PHOTO), "-f", "jsonl")
    assert plain.exit_code == 0 and _jsonl(plain.stdout)[0]["bank"] is None
    flagged = ncii(banked_url, "match", str(PHOTO), "-f", "jsonl", "--include-inactive")
    assert flagged.exit_code == 0, flagged.output  # reported, never blocking
    rows = _jsonl(flagged.stdout)
    assert rows and {(r["entry_id"], r["active"]) for r in rows} == {(1, False)}
    assert "pdq" in {r["signal_type"] for r in rows}
    with open_store(banked_url) as store:
        matcher = Matcher(store)
        hashes = hash_file(PHOTO)
        assert matcher.match(hashes) == []
        assert {m.entry_id for m in matcher.match(hashes, include_inactive=True)} == {1}
        # ...and takedown copy lookups, which use the same flag, find it too.
        copies = takedowns.find_copies(matcher, [hashes], (), [])
        assert {c.entry_id for c in copies} == {1}


# -- item 4 and issue 14 item 7: notices ----------------------------------------------------


def _takedown(url: str, *extra: str) -> str:
    made = ncii(
        url, "takedown", "new", "--signature", "Jane Doe", "--statement", "not consensual",
        "--contact", "jane@example.org", "--url", "https://example.com/p/123", *extra,
        "-f", "jsonl",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    return str(json.loads(made.stdout)["id"])


def test_a_notice_to_a_host_with_none_of_the_urls_is_refused(store_url: str, tmp_path: Path):
    request_id = _takedown(store_url)
    out = tmp_path / "notices"
    result = ncii(
        store_url, "takedown", "notice", request_id, "--to", "nothere.org",
        "--from", "tns@platform.test", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == exit_codes.USAGE
    assert "no URL on nothere.org" in result.stderr and "example.com" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "option,value",
    [
        ("--to", "example.com\r\nBcc: victim@example.org"),
        ("--from", "tns@platform.test\nBcc: x@y.z"),
        ("--to-address", "abuse@example.com\rX: y"),
    ],
)
def test_line_breaks_in_notice_headers_are_refused_before_any_file(
    store_url: str, tmp_path: Path, option: str, value: str
) -> None:
    request_id = _takedown(store_url)
    out = tmp_path / "notices"
    args = {"--to": "example.com", "--from": "tns@platform.test"} | {option: value}
    flat = [a for pair in args.items() for a in pair]
    result = ncii(store_url, "takedown", "notice", request_id, *flat, "-o", str(out))
    assert result.exit_code == exit_codes.USAGE, result.output
    [line] = result.stderr.splitlines()
    assert option in line and "Traceback" not in result.output
    assert not out.exists()


def test_escape_sequences_in_takedown_fields_are_refused(store_url: str) -> None:
    result = ncii(
        store_url, "takedown", "new", "--signature", f"{ESC}[2J{ESC}[31mJane",
        "--statement", "not consensual", "--contact", "jane@example.org",
        "--url", "https://example.com/p/1",
    )  # fmt: skip
    assert result.exit_code == exit_codes.USAGE
    assert "signature contains control characters" in result.stderr
    assert ESC not in result.output


def test_stored_escape_sequences_are_never_printed_raw(store_url: str) -> None:
    """A field stored before control characters were refused is shown escaped."""
    with open_store(store_url) as store, store.begin() as session:
        detail = takedowns.create_takedown(
            session,
            NewTakedown(
                signature="Jane Doe",
                statement="not consensual",
                contact="jane@example.org",
                urls=("https://example.com/p/1",),
            ),
            actor="t",
        )
        session.execute(  # as an older ncii, or another writer, may have stored it
            update(Takedown)
            .where(Takedown.id == detail.info.id)
            .values(signature=f"Jane{ESC}]0;pwned{ESC}\\ [bold]Doe[/]")
        )
    shown = ncii(store_url, "takedown", "show", str(detail.info.id), "-f", "table")
    assert shown.exit_code == 0, shown.output
    assert ESC not in shown.output
    assert "\\x1b]0;pwned" in shown.stdout and "[bold]Doe[/]" in shown.stdout


# -- item 5: the 48-hour percentage ----------------------------------------------------------


def test_a_request_not_yet_due_is_left_out_of_the_percentage(store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.begin() as session:
        takedowns.create_takedown(
            session,
            NewTakedown(
                signature="Jane Doe",
                statement="not consensual",
                contact="jane@example.org",
                urls=("https://example.com/p/1",),
                received_at=now - dt.timedelta(minutes=5),
            ),
            actor="t",
        )
    with store.read() as session:
        report = reports.takedown_report(
            session, now - dt.timedelta(days=1), now + dt.timedelta(minutes=1), now=now
        )
    figures = report.to_dict()
    assert figures["removed_within_48h_pct"] is None  # nothing decided yet: not 0.0%
    assert (figures["still_open"], figures["open_not_yet_due"], figures["overdue"]) == (1, 1, 0)
    later = now + dt.timedelta(hours=49)
    with store.read() as session:
        overdue = reports.takedown_report(session, now - dt.timedelta(days=1), later, now=later)
    assert overdue.removed_in_time_pct == 0.0 and overdue.open_not_yet_due == 0


# -- item 7: export labels -----------------------------------------------------------------


def test_a_photos_digest_is_exported_as_a_photo_md5(banked_url: str) -> None:
    exported = ncii(banked_url, "export", "reports", "--format", "tx")
    assert exported.exit_code == 0, exported.output
    lines = dict(line.split(" ", 1) for line in exported.stdout.splitlines())
    md5 = hash_file(PHOTO).get("md5")
    assert md5 is not None and lines["photo_md5"] == md5.value
    assert "video_md5" not in lines and "video_sha256" not in lines


# -- item 10: terminal tables ----------------------------------------------------------------


@pytest.fixture
def terminal_120(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table console as wide as a 120-column terminal."""
    monkeypatch.setattr(output.stdout_console, "width", 120)


def test_match_table_has_one_row_per_input_with_the_verdict_first(
    banked_url: str, terminal_120: None
) -> None:
    result = runner.invoke(
        app, ["match", str(PHOTO), str(OTHER), "--db", banked_url, "-f", "table"]
    )
    assert result.exit_code == exit_codes.MATCH
    body = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(body) == 2  # one line per input: no row per signal type, nothing wrapped
    assert body[0].split("│")[1].strip() == "MATCH" and PHOTO.name in body[0]
    assert body[1].split("│")[1].strip() == "no match" and OTHER.name in body[1]
    assert all(len(line) <= 120 for line in result.stdout.splitlines())


def test_hash_table_keeps_hashes_and_paths_on_one_line(tmp_path: Path, terminal_120: None) -> None:
    deep = tmp_path / "a-rather-long-folder-name" / "and-another-long-one" / "uploads"
    deep.mkdir(parents=True)
    (deep / "photo.jpg").write_bytes(PHOTO.read_bytes())
    result = runner.invoke(app, ["hash", str(deep / "photo.jpg"), "-f", "table"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    first = rows[0]
    assert "photo.jpg" in first and "256×256" in first  # width and height shown
    pdq = hash_file(PHOTO).get("pdq")
    assert pdq is not None and pdq.value[:16] + "…" in first  # cut, never folded
    shown = "\n".join(rows)
    for kind in ("phash", "dhash", "ahash", "whash", "md5", "sha256"):
        assert f"{kind}:" in shown  # every signal is there
    assert all(len(line) <= 120 for line in result.stdout.splitlines())
