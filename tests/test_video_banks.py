"""Video entries in banks and video matching, through the real CLI on SQLite and PostgreSQL:
``ncii add`` stores a video's digests and vPDQ frames (every frame by default), ``ncii match``
and ``ncii scan`` hash query videos once a second and match them by vPDQ's rule, and a running
Matcher follows video entries through the change log. Also per-bank thresholds
(``ncii bank create/update --threshold``).

The reference families (``../shared/data``) are decoded once per session: ``ncii add`` and
``ncii match`` run for real, with ``ncii.hashing.hash_file`` answered from the shared
every-frame hashes (``tests/video_families.py``); everything else here hashes for real.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shared_data import VENDORED, requires_shared, shared
from sqlalchemy import func, select
from test_video import audio, mp4, webm
from typer.testing import CliRunner
from video_families import BUNNY, cached_hash_file, family, video_paths

from ncii import hash_bytes
from ncii.cli.app import app
from ncii.hashing import HashOptions
from ncii.service.banks import create_bank, show_bank, update_bank
from ncii.service.entries import NewEntry, disable_entry, enable_entry
from ncii.service.history import audit_events, changes_since
from ncii.service.ingest import add_entries
from ncii.service.matching import Matcher
from ncii.service.video_matching import VideoOptions
from ncii.store.engine import open_store
from ncii.store.models import AuditEvent, Change, Entry, VideoFrame

runner = CliRunner()
NCII = Path(sys.executable).with_name("ncii")


def cli(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output)
    return result


def jsonl(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def count(url: str, model) -> int:  # type: ignore[no-untyped-def]
    with open_store(url) as store, store.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def cached_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ncii.hashing.hash_file", cached_hash_file)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 3-second 24 fps MPEG-4 clip made here."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4())
    return path


# -- families, through ncii add and ncii match --------------------------------------------------


@requires_shared
def test_families_match_through_add_and_match(store_url, cached_hashing, tmp_path):
    videos = video_paths()
    bunny = shared(BUNNY)
    banked = {
        "chairs": [n for n in videos if n.startswith("chair-")],
        "patterns": [n for n in videos if n.startswith("pattern-")],
        "v2": ["v2"],
        "megamind": ["Megamind"],
    }
    names_by_entry: dict[int, str] = {}
    for bank, names in banked.items():
        cli("bank", "create", bank, "--db", store_url)
        added = cli("add", bank, *(str(videos[n]) for n in names), "--db", store_url, "-f", "jsonl")
        for row in jsonl(added):
            assert row["outcome"] == "added" and row["frames"] > 100  # every frame
            names_by_entry[row["entry_id"]] = Path(row["source"]).stem
    cli("bank", "create", "bunny", "--db", store_url)
    added = cli("add", "bunny", str(bunny), "--every", "1", "--db", store_url, "-f", "jsonl")
    [row] = jsonl(added)
    assert row["frames"] == 30  # one a second, as asked
    names_by_entry[row["entry_id"]] = "bunny"
    assert count(store_url, Entry) == len(names_by_entry) == 15

    queries = {**videos, "bunny": bunny}
    matched = cli("match", *map(str, queries.values()), "--db", store_url, "-f", "jsonl", code=4)
    found: dict[str, dict[str, dict]] = {name: {} for name in queries}
    exact: dict[str, set[str]] = {name: set() for name in queries}
    for row in jsonl(matched):
        query = "bunny" if row["input"] == str(bunny) else Path(row["input"]).stem
        if row.get("bank") is None:
            continue
        entry = names_by_entry[row["entry_id"]]
        if row["signal_type"] == "vpdq":
            found[query][entry] = row
        else:
            assert row["signal_type"] in ("md5", "sha256")
            exact[query].add(entry)

    for query in queries:
        expected = {
            entry
            for entry in names_by_entry.values()
            if entry == query or family(entry) == family(query)
        }
        assert set(found[query]) == expected, query
        assert exact[query] == ({query} if query in names_by_entry.values() else set()), query
    # Each chair-* matches the other chair-* and no pattern-*, and vice versa: the large-logo
    # copies too, as the query and as the banked video (through their overlay-painted hashes).
    for names in (banked["chairs"], banked["patterns"]):
        for query in names:
            assert set(found[query]) == set(names), query
    assert set(found["v2s"]) == {"v2"} and set(found["Megamind_bugy"]) == {"Megamind"}
    assert set(found["bunny"]) == {"bunny"}
    assert not any("bunny" in found[q] for q in videos)

    cut = found["v2s"]["v2"]  # a cut of v2.m4v: all of it is in v2, a part of v2 in it
    assert cut["query_pct"] == 100.0 and 0 < cut["bank_pct"] < 100
    assert cut["query_ranges"][0][0] == 0.0 and cut["bank_ranges"]
    assert cut["query_frames"] == 4 and cut["bank_frames"] == 147
    retimed = found["Megamind_bugy"]["Megamind"]
    assert retimed["query_pct"] >= 80 and retimed["distance"] <= 31 and retimed["active"]
    # Matched seconds on both sides: Megamind_bugy plays Megamind's 23.976 fps frames at 30 fps,
    # so its second t shows Megamind's second 1.25 t.
    # (The bank frames matched are the nearest few of each, so within a few frames.)
    [(query_start, query_end)] = retimed["query_ranges"]
    [(bank_start, bank_end)] = retimed["bank_ranges"]
    assert query_start <= 1.0 and query_end >= 8.0
    assert bank_start == pytest.approx(query_start * 30 / 23.976, abs=0.25)
    assert bank_end == pytest.approx(query_end * 30 / 23.976, abs=0.25)

    flat = cli("match", str(videos["v2s"]), "--db", store_url, "-f", "csv", code=4)
    [row] = [r for r in csv.DictReader(flat.stdout.splitlines()) if r["signal_type"] == "vpdq"]
    assert row["bank"] == "v2" and row["query_pct"] == "100.0" and row["ranges"] == "0.0-3.0s"
    strict = cli(
        "match", str(videos["v2s"]), "--video-query-pct", "100", "--video-bank-pct", "100",
        "--db", store_url, "-f", "jsonl",
    )  # fmt: skip
    assert all(row.get("bank") is None for row in jsonl(strict))


# -- storing video entries ----------------------------------------------------------------------


def test_a_video_is_stored_once_with_its_frames(store_url, clip, tmp_path):
    cli("bank", "create", "reports", "--db", store_url)
    first = cli("add", "reports", str(clip), "--case", "C-1", "--db", store_url, "-f", "jsonl")
    [row] = jsonl(first)
    assert row["outcome"] == "added" and row["frames"] == 72 and row["signals"] == "md5,sha256"
    assert count(store_url, VideoFrame) == 72
    entry_id = row["entry_id"]
    with open_store(store_url) as store, store.read() as session:
        frames = session.execute(
            select(VideoFrame.frame, VideoFrame.timestamp, VideoFrame.value, VideoFrame.quality)
            .where(VideoFrame.entry_id == entry_id)
            .order_by(VideoFrame.frame)
        ).all()
        expected = hash_bytes(clip.read_bytes(), options=HashOptions(video_every=0)).frames
        assert [(f.frame, f.value, f.quality) for f in frames] == [
            (f.index, f.pdq, f.quality) for f in expected
        ]
        assert frames[-1].timestamp == pytest.approx(71 / 24)
        assert [c.entry_id for c in changes_since(session)] == [entry_id]
        [event] = [e for e in audit_events(session) if e.action == "entry.add"]
        assert event.details["video_frames"] == 72
        assert show_bank(session, "reports").video_frames == 72

    again = cli("add", "reports", str(clip), "--db", store_url, "-f", "jsonl")
    assert [r["outcome"] for r in jsonl(again)] == ["present"]
    assert count(store_url, VideoFrame) == 72 and count(store_url, Change) == 1

    sparse = tmp_path / "clip.webm"
    sparse.write_bytes(webm())
    added = cli("add", "reports", str(sparse), "--every", "0.5", "--db", store_url, "-f", "jsonl")
    assert jsonl(added)[0]["frames"] == 6
    shown = cli("bank", "show", "reports", "--db", store_url, "-f", "jsonl")
    assert jsonl(shown)[0]["video_frames"] == 78


def test_frames_join_an_entry_first_known_by_its_md5(store_url, clip, tmp_path):
    """A StopNCII-style video MD5 imported first: adding the video attaches its frames."""
    md5 = hash_bytes(clip.read_bytes()).get("md5")
    assert md5 is not None
    listing = tmp_path / "md5.txt"
    listing.write_text(f"video_md5 {md5.value}\n")
    cli("bank", "create", "stopncii", "--db", store_url)
    [imported] = jsonl(cli("add", "stopncii", "--hashes", str(listing), "--db", store_url))
    with open_store(store_url) as store:
        matcher = Matcher(store, refresh_interval=0)
        query = hash_bytes(webm())  # the same scene, another codec
        assert matcher.match(query) == []
        [row] = jsonl(cli("add", "stopncii", str(clip), "--db", store_url, "-f", "jsonl"))
        assert row["outcome"] == "extended" and row["entry_id"] == imported["entry_id"]
        assert count(store_url, VideoFrame) == 72 and count(store_url, Entry) == 1
        [match] = matcher.match(query)
        assert (match.signal_type, match.entry_id) == ("vpdq", imported["entry_id"])
        # Adding it again attaches nothing more.
        [row] = jsonl(cli("add", "stopncii", str(clip), "--db", store_url, "-f", "jsonl"))
        assert row["outcome"] == "present" and count(store_url, VideoFrame) == 72


def test_bad_videos_are_refused_one_line_each_and_nothing_is_written(store_url, tmp_path):
    cli("bank", "create", "reports", "--db", store_url)
    data = mp4()
    bad = {
        "empty.mp4": b"",
        "cut.mp4": data[: len(data) // 2],
        "tone.wav": audio("wav", "pcm_s16le"),
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    for name in bad:
        result = cli("add", "reports", str(tmp_path / name), "--db", store_url, code=1)
        [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert str(tmp_path / name) in line and "Traceback" not in result.output
    result = cli("add", "reports", *(str(tmp_path / n) for n in bad), "--db", store_url, code=1)
    assert sum(line.startswith("error:") for line in result.stderr.splitlines()) == 3
    assert "empty" in result.stderr and "truncated" in result.stderr
    assert "audio only" in result.stderr
    for model in (Entry, VideoFrame, Change):
        assert count(store_url, model) == 0
    assert count(store_url, AuditEvent) == 1  # bank.create


def test_a_rolled_back_add_leaves_no_frames(store, clip):
    hashes = hash_bytes(clip.read_bytes(), options=HashOptions(video_every=0))
    with store.begin() as session:
        create_bank(session, "reports", actor="test")
    with pytest.raises(RuntimeError), store.begin() as session:
        add_entries(
            session, "reports", [NewEntry(hashes.signals, frames=hashes.frames)], actor="test"
        )
        raise RuntimeError("crash before commit")
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(VideoFrame)) == 0
        assert session.scalar(select(func.count()).select_from(Entry)) == 0


# -- matching: the change log, scan ------------------------------------------------------------


def test_a_running_matcher_follows_video_entries_from_another_process(store, clip):
    url = store.url.render_as_string(hide_password=False)
    with store.begin() as session:
        create_bank(session, "reports", actor="test")
    matcher = Matcher(store)  # default refresh interval: half a second
    query = hash_bytes(webm(), name="upload.webm")
    assert matcher.match(query) == []

    def ncii(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(NCII), *args, "--db", url], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done

    def within_a_second(expected: bool) -> None:
        since = time.monotonic()
        while bool(matcher.match(query)) != expected:
            assert time.monotonic() - since < 1.0, f"still {not expected} a second later"
            time.sleep(0.05)

    [row] = jsonl(ncii("add", "reports", str(clip), "--format", "jsonl"))
    within_a_second(True)
    [match] = matcher.match(query)
    assert match.signal_type == "vpdq" and match.video is not None
    assert match.video.query_pct == 100.0 and match.video.query_ranges[0].start == 0.0
    assert len(matcher.videos) == 1

    with open_store(url) as other, other.begin() as session:
        disable_entry(session, row["entry_id"], actor="other", reason="review")
    within_a_second(False)
    [flagged] = matcher.match(query, include_inactive=True)
    assert not flagged.active
    with open_store(url) as other, other.begin() as session:
        enable_entry(session, row["entry_id"], actor="other")
    within_a_second(True)

    ncii("entry", "withdraw", str(row["entry_id"]), "--reason", "victim withdrew")
    within_a_second(False)
    assert matcher.match(query, include_inactive=True) == []
    matcher.refresh(force=True)
    assert len(matcher.videos) == 0  # the change log reached the video index too


def test_scan_reports_video_matches(store_url, clip, tmp_path):
    cli("bank", "create", "reports", "--db", store_url)
    cli("add", "reports", str(clip), "--db", store_url)
    backlog = tmp_path / "backlog"
    backlog.mkdir()
    (backlog / "copy.webm").write_bytes(webm())
    (backlog / "photo.jpg").write_bytes((VENDORED / "rgb.jpeg").read_bytes())
    report = tmp_path / "scan.csv"
    cli("scan", str(backlog), "--report", str(report), "--db", store_url, "-j", "1", code=4)
    with report.open() as handle:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert rows["copy.webm"]["status"] == "match"
    assert float(rows["copy.webm"]["video_query_pct"]) == 100.0
    assert rows["copy.webm"]["video_ranges"] == "0.0-2.0s"
    assert rows["photo.jpg"]["status"] == "no_match" and rows["photo.jpg"]["video_ranges"] == ""


def test_video_match_options_are_checked():
    with pytest.raises(Exception, match="0-100"):
        VideoOptions(query_pct=120)
    result = runner.invoke(app, ["match", "x.mp4", "--video-query-pct", "101"])
    assert result.exit_code == 2


# -- per-bank thresholds -------------------------------------------------------------------------


def test_bank_thresholds_on_create_and_update(store_url):
    created = cli("bank", "create", "partner", "--threshold", "pdq=20", "--threshold", "PHash=8",
                  "--db", store_url, "-f", "jsonl")  # fmt: skip
    assert jsonl(created)[0]["match_thresholds"] == {"pdq": 20, "phash": 8}
    for bad, message in [
        ("md5=3", "matched exactly"),
        ("pdq=300", "expected 0-256"),
        ("nope=3", "unknown signal type"),
        ("pdq", "expected TYPE=N"),
    ]:
        result = runner.invoke(app, ["bank", "create", "x", "--threshold", bad, "--db", store_url])
        assert result.exit_code == 2 and message in result.stderr, (bad, result.output)
    updated = cli("bank", "update", "partner", "--threshold", "pdq=12", "--clear-threshold",
                  "phash", "--trust", "60", "--description", "partner X", "--db", store_url,
                  "-f", "jsonl")  # fmt: skip
    [info] = jsonl(updated)
    assert info["match_thresholds"] == {"pdq": 12} and info["trust_level"] == 60
    assert info["description"] == "partner X"
    both = runner.invoke(
        app,
        ["bank", "update", "partner", "--threshold", "pdq=3", "--clear-threshold", "pdq",
         "--db", store_url],
    )  # fmt: skip
    assert both.exit_code == 2
    missing = runner.invoke(app, ["bank", "update", "nobody", "--trust", "1", "--db", store_url])
    assert missing.exit_code == 3 and "no bank named" in missing.stderr
    shown = cli("bank", "show", "partner", "--db", store_url, "-f", "table")
    assert "pdq=12" in shown.stdout
    with open_store(store_url) as store, store.read() as session:
        [event] = [e for e in audit_events(session) if e.action == "bank.update"]
        assert event.details["match_thresholds"] == {
            "from": {"pdq": 20, "phash": 8},
            "to": {"pdq": 12},
        }
        assert event.details["trust_level"] == {"from": 100, "to": 60}
    # Nothing to change: no event.
    cli("bank", "update", "partner", "--trust", "60", "--db", store_url)
    with open_store(store_url) as store, store.read() as session:
        assert len([e for e in audit_events(session) if e.action == "bank.update"]) == 1


def test_a_running_matcher_uses_bank_thresholds_as_they_change(store, clip, tmp_path):
    from test_matching import PHOTO, _flipped_copy

    url = store.url.render_as_string(hide_password=False)
    photo = hash_bytes(PHOTO.read_bytes())
    video = hash_bytes(clip.read_bytes(), options=HashOptions(video_every=0))
    with store.begin() as session:
        create_bank(session, "strict", actor="test")
        create_bank(session, "loose", actor="test")
        for bank in ("strict", "loose"):
            add_entries(
                session,
                bank,
                [NewEntry(photo.signals), NewEntry(video.signals, frames=video.frames)],
                actor="test",
            )
    image_query = hash_bytes(_flipped_copy(PHOTO))
    video_query = hash_bytes(webm())
    matcher = Matcher(store)
    [distance] = {m.distance for m in matcher.match(image_query) if m.signal_type == "pdq"}
    assert 0 < distance <= 31

    def banks_matching(query, signal_type: str, **kwargs) -> set[str]:  # type: ignore[no-untyped-def]
        return {m.bank for m in matcher.match(query, **kwargs) if m.signal_type == signal_type}

    assert banks_matching(image_query, "pdq") == {"strict", "loose"}
    assert banks_matching(video_query, "vpdq") == {"strict", "loose"}
    with open_store(url) as other, other.begin() as session:
        update_bank(session, "strict", actor="other", set_thresholds={"pdq": distance - 1})
    since = time.monotonic()
    while banks_matching(image_query, "pdq") != {"loose"}:
        assert time.monotonic() - since < 1.0, "the new threshold is not used a second later"
        time.sleep(0.05)
    # Video frames follow the bank's pdq threshold (most of this copy's frames are more than
    # 4 bits from the original's).
    with open_store(url) as other, other.begin() as session:
        update_bank(session, "strict", actor="other", set_thresholds={"pdq": 4})
    time.sleep(0.6)
    assert banks_matching(video_query, "vpdq") == {"loose"}
    [loose] = [m for m in matcher.match(video_query) if m.bank == "loose"]
    assert loose.threshold == 31
    # A threshold given with the query applies to every bank.
    from ncii.match import QueryOptions

    explicit = QueryOptions(thresholds={"pdq": 31})
    assert banks_matching(image_query, "pdq", options=explicit) == {"strict", "loose"}
    assert banks_matching(video_query, "vpdq", options=explicit) == {"strict", "loose"}
    # Cleared: the type's default again.
    with open_store(url) as other, other.begin() as session:
        update_bank(session, "strict", actor="other", clear_thresholds=["pdq"])
    time.sleep(0.6)
    assert banks_matching(image_query, "pdq") == {"strict", "loose"}
    # Through the CLI too.
    cli("bank", "update", "loose", "--threshold", f"pdq={distance - 1}", "--db", url)
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(_flipped_copy(PHOTO))
    # Plain PDQ with its flips (asked for: plain PDQ has none by default); the default pipeline
    # also hashes the mirrored pixels, closer than the DCT flip.
    plain = ("--pipeline", "pdq", "--dihedral", "--db", url, "-f", "jsonl")
    rows = jsonl(cli("match", str(upload), *plain, code=4))
    assert {r["bank"] for r in rows if r["signal_type"] == "pdq"} == {"strict"}
    rows = jsonl(cli("match", str(upload), "--threshold", "31", *plain, code=4))
    assert {r["bank"] for r in rows if r["signal_type"] == "pdq"} == {"strict", "loose"}


# -- moving video hashes without media -----------------------------------------------------------


def test_video_frames_travel_through_hash_export_and_import(store_url, clip, tmp_path):
    """The victim-side flow: hash on one machine, import the hashes (never the video) into a
    bank; and a bank's jsonl export re-imports with its frames."""
    hashed = tmp_path / "hashes.jsonl"
    result = cli("hash", str(clip), "--every", "0", "-f", "jsonl")
    hashed.write_text(result.stdout)
    cli("bank", "create", "reports", "--db", store_url)
    cli("import", "reports", str(hashed), "-f", "jsonl", "--case", "C-9", "--db", store_url)
    assert count(store_url, VideoFrame) == 72
    again = cli("import", "reports", str(hashed), "-f", "jsonl", "--db", store_url)
    assert "0 added, 1 already there" in again.stdout and count(store_url, VideoFrame) == 72

    exported = tmp_path / "reports.jsonl"
    done = cli("export", "reports", "-f", "jsonl", "-o", str(exported), "--db", store_url)
    assert "72 video frames" in done.stderr
    [record] = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(record["vpdq"]) == 72 and record["case_ref"] == "C-9"
    as_csv = cli("export", "reports", "-f", "csv", "--db", store_url)
    assert "left out 72 video frames csv cannot carry" in as_csv.stderr

    cli("bank", "create", "copy", "--db", store_url)
    cli("import", "copy", str(exported), "-f", "jsonl", "--db", store_url)
    assert count(store_url, VideoFrame) == 144
    upload = tmp_path / "upload.webm"
    upload.write_bytes(webm())
    rows = jsonl(cli("match", str(upload), "--db", store_url, "-f", "jsonl", code=4))
    assert {(r["bank"], r["signal_type"]) for r in rows} == {
        ("reports", "vpdq"),
        ("copy", "vpdq"),
    }

    # Meta's vPDQ text in one string is read too; a bad frame names its line and frame.
    frames = hash_bytes(clip.read_bytes(), options=HashOptions(video_every=0)).frames
    text = "".join(f.to_line() + "\n" for f in frames)
    md5 = hash_bytes(clip.read_bytes()).get("md5")
    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        json.dumps({"signals": [{"type": "md5", "value": md5.value}], "vpdq": text})  # type: ignore[union-attr]
        + "\n"
        + json.dumps({"signals": [{"type": "md5", "value": "0" * 32}], "vpdq": [{"frame": 0}]})
        + "\n"
    )
    cli("bank", "create", "meta", "--db", store_url)
    failed = runner.invoke(app, ["import", "meta", str(meta), "-f", "jsonl", "--db", store_url])
    assert failed.exit_code == 3 and "line 2" in failed.stderr and "vpdq frame 1" in failed.stderr
    assert count(store_url, VideoFrame) == 144  # nothing imported
    skipped = cli(
        "import", "meta", str(meta), "-f", "jsonl", "--skip-invalid", "--db", store_url, code=1
    )
    assert "1 added" in skipped.stdout and count(store_url, VideoFrame) == 216
