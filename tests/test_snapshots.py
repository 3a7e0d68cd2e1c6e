"""A Matcher starts from a saved index only while it still describes the store, on both
engines; otherwise it rebuilds, and it never reports what the store no longer holds."""

import io
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from shared_data import VENDORED

from ncii import HashOptions, hash_bytes, hash_file
from ncii.service import snapshots
from ncii.service.banks import create_bank, delete_bank
from ncii.service.entries import NewEntry, withdraw_entry
from ncii.service.ingest import add_entries
from ncii.service.matching import Matcher
from ncii.store.engine import open_store

PHOTOS = [VENDORED / n for n in ("q0122.jpg", "q0746.jpg", "q2821.jpg", "rgb.jpeg")]


@pytest.fixture(autouse=True)
def small_snapshots(monkeypatch):
    """Snapshot even the tiny test banks."""
    monkeypatch.setattr(snapshots, "MIN_ROWS", 1)


def _flipped(path: Path) -> bytes:
    with Image.open(path) as image:
        buffer = io.BytesIO()
        ImageOps.mirror(image.convert("RGB")).save(buffer, "JPEG", quality=70)
        return buffer.getvalue()


def _upload(path: Path):
    """A mirrored re-upload, hashed as uploads are (the mirrored pixels hashed too: PDQ's DCT
    flip of a small picture misses it, and its wHash alone no longer decides a match)."""
    return hash_bytes(_flipped(path), options=HashOptions.for_uploads())


def _add(store, bank: str, paths: list[Path]) -> list[int]:
    """A new bank holding the photos; their entry ids."""
    ids: list[int] = []
    with store.begin() as session:
        create_bank(session, bank, actor="test")
        add_entries(
            session,
            bank,
            [NewEntry(hash_file(p).signals) for p in paths],
            actor="test",
            on_result=lambda r: ids.append(r.entry_id),
        )
    return ids


def test_second_matcher_starts_from_the_snapshot_and_matches_the_same(store, tmp_path):
    _add(store, "reports", PHOTOS[:2])
    folder = tmp_path / "snap"
    first = Matcher(store, snapshot=folder)
    assert not first.loaded_from_snapshot
    assert (folder / "manifest.json").is_file()
    second = Matcher(store, snapshot=folder)
    assert second.loaded_from_snapshot
    assert second.index.counts() == first.index.counts()
    upload = _upload(PHOTOS[0])
    assert [m.entry_id for m in second.match(upload)] == [m.entry_id for m in first.match(upload)]
    assert second.match(upload)


def test_changes_after_the_snapshot_are_replayed_from_the_change_log(store, tmp_path):
    [first_id, _] = _add(store, "reports", PHOTOS[:2])
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    with store.begin() as session:
        withdraw_entry(session, first_id, actor="test", reason="victim withdrew")
        add_entries(session, "reports", [NewEntry(hash_file(PHOTOS[2]).signals)], actor="test")
    matcher = Matcher(store, snapshot=folder)
    assert matcher.loaded_from_snapshot
    # The index itself, not only resolution against the store, reflects both changes.
    assert matcher.index.search(_upload(PHOTOS[0])) == []
    assert matcher.index.search(_upload(PHOTOS[2]))
    assert matcher.match(_upload(PHOTOS[2]))


def test_a_deleted_bank_forces_a_rebuild(store, tmp_path):
    _add(store, "reports", PHOTOS[:1])
    _add(store, "partner", PHOTOS[1:2])
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    with store.begin() as session:
        delete_bank(session, "reports", actor="test")
    matcher = Matcher(store, snapshot=folder)
    assert not matcher.loaded_from_snapshot
    assert matcher.index.search(_upload(PHOTOS[0])) == []
    assert matcher.match(_upload(PHOTOS[1]))
    assert Matcher(store, snapshot=folder).loaded_from_snapshot  # the rebuild saved anew


def test_a_snapshot_of_another_database_is_refused(store, tmp_path, empty_database_url):
    _add(store, "reports", PHOTOS[:2])
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    with open_store(empty_database_url) as other:
        _add(other, "reports", PHOTOS[2:3])
        matcher = Matcher(other, snapshot=folder)
        assert not matcher.loaded_from_snapshot
        assert matcher.index.search(_upload(PHOTOS[0])) == []
        assert matcher.match(_upload(PHOTOS[2]))


@pytest.mark.parametrize("damage", ["missing array", "truncated array", "bad manifest"])
def test_damaged_snapshot_files_mean_a_rebuild_not_a_crash(store, tmp_path, damage):
    _add(store, "reports", PHOTOS[:2])
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    words = next(folder.rglob("words.npy"))
    if damage == "missing array":
        words.unlink()
    elif damage == "truncated array":
        words.write_bytes(words.read_bytes()[:100])
    else:
        (folder / "manifest.json").write_text("{not json")
    matcher = Matcher(store, snapshot=folder)
    assert not matcher.loaded_from_snapshot
    assert matcher.match(_upload(PHOTOS[0]))
    assert Matcher(store, snapshot=folder).loaded_from_snapshot


def test_no_snapshot_below_the_size_threshold(store, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "MIN_ROWS", 1_000)
    _add(store, "reports", PHOTOS[:2])
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    assert not folder.exists()


def test_ncii_match_keeps_its_index_cache_per_database(store, store_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ncii.cli.app import app

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _add(store, "reports", PHOTOS[:2])
    runner = CliRunner()
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(_flipped(PHOTOS[0]))
    args = ["match", str(upload), "--db", store_url, "--format", "jsonl"]
    off = runner.invoke(app, [*args, "--no-index-cache"])
    assert off.exit_code == 4 and not (tmp_path / "cache").exists()
    first = runner.invoke(app, args)
    assert first.exit_code == 4
    [folder] = (tmp_path / "cache" / "ncii" / "index").iterdir()
    assert folder == snapshots.folder_for(store)
    assert (folder / "manifest.json").is_file()
    assert runner.invoke(app, args).exit_code == 4  # from the snapshot this time
    assert Matcher(store, snapshot=folder).loaded_from_snapshot
