"""Mistakes fail closed: a typo in a database path or bank name, a scan report that is not one,
a bad output path, an empty import (issue 13 items 2, 6, 8; issue 14 items 2, 11)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.cli.scan_report import REPORT_COLUMNS

runner = CliRunner()
PHOTO = VENDORED / "rgb.jpeg"
OTHER = VENDORED / "q0746.jpg"


def ncii(url: str, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--db", url], input=input)


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The single ``error:`` line a refused command prints, with no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture
def banked_url(store_url: str) -> str:
    """A store with bank ``reports`` holding PHOTO."""
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    added = ncii(store_url, "add", "reports", str(PHOTO))
    assert added.exit_code == 0, added.output
    return store_url


# -- item 2: typos fail open --------------------------------------------------------------


READ_COMMANDS = [
    ["match", str(PHOTO)],
    ["export", "reports"],
    ["entry", "list", "reports"],
    ["report"],
    ["audit", "verify"],
    ["takedown", "list"],
    ["bank", "list"],
    ["db", "current"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_fresh_path_is_an_error_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "typo.db"
    result = ncii(str(typo), *args)
    assert result.exit_code == exit_codes.ERROR, result.output
    assert str(typo) in one_error_line(result)
    assert not typo.exists()


def test_a_path_in_a_missing_folder_is_refused_even_by_bank_create(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.db"
    result = ncii(str(target), "bank", "create", "reports")
    assert result.exit_code == exit_codes.ERROR
    assert "no folder" in one_error_line(result)
    assert not target.parent.exists()


def test_bank_create_and_db_upgrade_may_create(tmp_path: Path) -> None:
    created = ncii(str(tmp_path / "a.db"), "bank", "create", "reports")
    assert created.exit_code == 0, created.output
    upgraded = ncii(str(tmp_path / "b.db"), "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert (tmp_path / "a.db").is_file() and (tmp_path / "b.db").is_file()
    assert ncii(str(tmp_path / "b.db"), "bank", "list").exit_code == 0


def test_an_empty_postgresql_database_is_not_a_store(postgres_database: str) -> None:
    result = ncii(postgres_database, "match", str(PHOTO))
    assert result.exit_code == exit_codes.ERROR
    assert "holds no ncii store" in one_error_line(result)
    from sqlalchemy import create_engine, inspect

    engine = create_engine(postgres_database)
    try:
        assert inspect(engine).get_table_names() == []  # nothing was migrated into it
    finally:
        engine.dispose()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    not_db = tmp_path / "photo.db"
    shutil.copy(PHOTO, not_db)
    result = ncii(str(not_db), "match", str(PHOTO))
    assert result.exit_code == exit_codes.ERROR
    one_error_line(result)
    assert not_db.read_bytes() == PHOTO.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ["match", str(PHOTO), "-b", "reprots"],
        ["scan", "FOLDER", "--report", "REPORT", "-b", "reprots"],
        ["add", "reprots", str(PHOTO)],
        ["export", "reprots"],
        ["entry", "list", "reprots"],
        ["bank", "show", "reprots"],
    ],
    ids=lambda a: a[0],
)
def test_an_unknown_bank_is_an_error_everywhere(
    banked_url: str, tmp_path: Path, args: list[str]
) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "upload.jpg")
    given = {"FOLDER": str(folder), "REPORT": str(tmp_path / "r.csv")}
    args = [given.get(a, a) for a in args]
    result = ncii(banked_url, *args)
    assert result.exit_code == exit_codes.ERROR, result.output
    assert "reprots" in one_error_line(result)
    assert not (tmp_path / "r.csv").exists()


def test_a_known_bank_still_matches(banked_url: str) -> None:
    result = ncii(banked_url, "match", str(PHOTO), "-b", "reports", "--format", "jsonl")
    assert result.exit_code == exit_codes.MATCH, result.output


# -- issue 14 item 11: in-memory and empty --db ---------------------------------------------


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused(url: str) -> None:
    result = ncii(url, "bank", "create", "reports")
    assert result.exit_code == exit_codes.ERROR
    assert "in-memory" in one_error_line(result)


def test_an_empty_db_option_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("NCII_DATABASE_URL", raising=False)
    result = ncii("", "bank", "create", "reports")
    assert result.exit_code == exit_codes.ERROR
    assert "empty" in one_error_line(result)
    assert not (tmp_path / "data").exists()  # the default database was not used instead


# -- item 6 and issue 14 item 2: scan -----------------------------------------------------


def _uploads(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "a-banked.jpg")
    shutil.copy(OTHER, folder / "b-other.jpg")
    (folder / "c-broken.jpg").write_bytes(PHOTO.read_bytes()[:300])
    return folder


def test_scan_reports_failures_on_stderr_and_resumes_with_the_same_verdict(
    banked_url: str, tmp_path: Path
) -> None:
    folder, report = _uploads(tmp_path), tmp_path / "scan.csv"
    first = ncii(banked_url, "scan", str(folder), "--report", str(report), "--jobs", "1")
    assert first.exit_code == exit_codes.MATCH, first.output
    assert "c-broken.jpg" in one_error_line(first)
    assert "matched 1" in first.stderr
    again = ncii(banked_url, "scan", str(folder), "--report", str(report), "--jobs", "1")
    assert again.exit_code == exit_codes.MATCH
    assert "skipped 3" in again.stderr and "1 of which matched earlier" in again.stderr
    rows = list(csv.DictReader(report.open()))
    assert [r["status"] for r in rows] == ["match", "no_match", "error"]


def test_scan_of_a_missing_folder_is_fatal_and_writes_nothing(
    banked_url: str, tmp_path: Path
) -> None:
    report = tmp_path / "scan.csv"
    result = ncii(banked_url, "scan", str(tmp_path / "nope"), "--report", str(report))
    assert result.exit_code == exit_codes.ERROR
    assert "no such folder" in one_error_line(result)
    assert not report.exists()


def test_scan_report_in_a_missing_folder_is_one_line(banked_url: str, tmp_path: Path) -> None:
    report = tmp_path / "nonexistent" / "x.csv"
    result = ncii(banked_url, "scan", str(_uploads(tmp_path)), "-o", str(report))
    assert result.exit_code == exit_codes.ERROR
    assert "no folder" in one_error_line(result)


def _not_reports(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("first line\nsecond line\nlast line without newline")
    other_csv = tmp_path / "people.csv"
    other_csv.write_text("name,email\nJane,jane@example.org\n")
    png = tmp_path / "photo.png"
    shutil.copy(VENDORED / "LA.png", png)
    return {
        "text": text,
        "csv": other_csv,
        "png": png,
        "folder": tmp_path,
        "device": Path("/dev/zero"),
    }


@pytest.mark.parametrize("kind", ["text", "csv", "png", "folder", "device"])
def test_scan_never_touches_a_file_that_is_not_a_scan_report(
    banked_url: str, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "in").mkdir()
    folder = _uploads(tmp_path / "in")
    target = _not_reports(tmp_path)[kind]
    before = target.read_bytes() if target.is_file() else None
    result = ncii(banked_url, "scan", str(folder), "--report", str(target), "--jobs", "1")
    assert result.exit_code == exit_codes.ERROR, result.output
    assert str(target) in one_error_line(result)
    if before is not None:
        assert target.read_bytes() == before


def test_scan_resumes_a_report_cut_short(banked_url: str, tmp_path: Path) -> None:
    folder, report = _uploads(tmp_path), tmp_path / "scan.csv"
    header = ",".join(REPORT_COLUMNS)
    report.write_text(f"{header}\n{folder / 'b-other.jpg'},no_match,0,,,,,,,,\n{folder}/a-ban")
    result = ncii(banked_url, "scan", str(folder), "--report", str(report), "--jobs", "1")
    assert result.exit_code == exit_codes.MATCH, result.output
    rows = list(csv.DictReader(report.open()))
    assert sorted(Path(r["path"]).name for r in rows) == [
        "a-banked.jpg",
        "b-other.jpg",
        "c-broken.jpg",
    ]


# -- item 8: an empty import ----------------------------------------------------------------


@pytest.mark.parametrize("fmt,content", [("csv", ""), ("jsonl", "\n\n"), ("tx", "")])
def test_an_empty_import_file_is_an_error(
    banked_url: str, tmp_path: Path, fmt: str, content: str
) -> None:
    path = tmp_path / f"empty.{fmt}"
    path.write_text(content)
    result = ncii(banked_url, "import", "reports", str(path), "--format", fmt)
    assert result.exit_code == exit_codes.ERROR, result.output
    assert "no records" in one_error_line(result)


def test_an_import_of_header_only_csv_is_an_error(banked_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("signal_type,value\n")
    result = ncii(banked_url, "import", "reports", str(path), "--format", "csv")
    assert result.exit_code == exit_codes.ERROR
    assert "no records" in one_error_line(result)


def test_add_hashes_from_an_empty_file_is_an_error(banked_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.txt"
    path.write_text("")
    result = ncii(banked_url, "add", "reports", "--hashes", str(path))
    assert result.exit_code == exit_codes.ERROR
    assert "no records" in one_error_line(result)


def test_match_output_is_valid_json_per_input(banked_url: str) -> None:
    result = ncii(banked_url, "match", str(PHOTO), str(OTHER), "--format", "jsonl")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {Path(r["input"]).name for r in rows} == {PHOTO.name, OTHER.name}
