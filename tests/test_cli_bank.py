"""`ncii bank` and `ncii db` on both engines, through typer's runner and as the installed
command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app

runner = CliRunner()
NCII = str(Path(sys.executable).with_name("ncii"))


def ncii(url: str, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--db", url], input=input)


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_bank_create_list_show(store_url: str) -> None:
    result = ncii(
        store_url, "bank", "create", "stopncii", "--source", "stopncii", "--trust", "80",
        "--description", "StopNCII feed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [created] = _jsonl(result.stdout)
    assert (created["name"], created["source"], created["trust_level"]) == (
        "stopncii",
        "stopncii",
        80,
    )
    assert ncii(store_url, "bank", "create", "own").exit_code == 0

    listed = _jsonl(ncii(store_url, "bank", "list").stdout)
    assert [(b["name"], b["entries"], b["active"]) for b in listed] == [
        ("own", 0, 0),
        ("stopncii", 0, 0),
    ]
    [shown] = _jsonl(ncii(store_url, "bank", "show", "own").stdout)
    assert shown["by_status"] == {"active": 0, "disabled": 0, "withdrawn": 0}
    table = ncii(store_url, "bank", "show", "stopncii", "--format", "table")
    assert table.exit_code == 0 and "StopNCII feed" in table.stdout
    as_csv = ncii(store_url, "bank", "list", "--format", "csv").stdout.splitlines()
    assert as_csv[0] == "name,source,trust_level,entries,active,created_at"


def test_bank_errors_are_one_line_with_exit_codes(store_url: str) -> None:
    assert ncii(store_url, "bank", "create", "own").exit_code == 0
    again = ncii(store_url, "bank", "create", "own")
    assert again.exit_code == exit_codes.ERROR
    assert again.stderr.strip() == "error: bank 'own' already exists"
    bad = ncii(store_url, "bank", "create", "not ok")
    assert bad.exit_code == exit_codes.USAGE and "invalid bank name" in bad.stderr
    missing = ncii(store_url, "bank", "show", "nope")
    assert missing.exit_code == exit_codes.ERROR and "no bank named 'nope'" in missing.stderr
    assert "Traceback" not in again.output + bad.output + missing.output
    trust = ncii(store_url, "bank", "create", "t", "--trust", "101")
    assert trust.exit_code == exit_codes.USAGE


def test_bank_rename_and_delete(store_url: str, tmp_path: Path) -> None:
    assert ncii(store_url, "bank", "create", "old").exit_code == 0
    hashes = tmp_path / "h.txt"
    hashes.write_text("".join(f"pdq {i:064x}\n" for i in range(3)))
    assert ncii(store_url, "add", "old", "--hashes", str(hashes)).exit_code == 0
    renamed = ncii(store_url, "bank", "rename", "old", "new")
    assert renamed.exit_code == 0 and "renamed bank old to new" in renamed.stderr
    assert [b["name"] for b in _jsonl(ncii(store_url, "bank", "list").stdout)] == ["new"]
    declined = ncii(store_url, "bank", "delete", "new", input="n\n")
    assert declined.exit_code != 0 and "3 entries" in declined.output
    assert len(_jsonl(ncii(store_url, "bank", "list").stdout)) == 1
    deleted = ncii(store_url, "bank", "delete", "new", "--yes")
    assert deleted.exit_code == 0 and "deleted bank new and its 3 entries" in deleted.stderr
    assert _jsonl(ncii(store_url, "bank", "list").stdout) == []


def test_db_current_and_upgrade(empty_database_url: str) -> None:
    current = ncii(empty_database_url, "db", "current")
    if empty_database_url.startswith("sqlite"):  # no file yet: reading must not create one
        assert current.exit_code == exit_codes.ERROR and "no ncii database" in current.stderr
    else:
        [before] = _jsonl(current.stdout)
        assert (before["revision"], before["state"]) == (None, "empty")
    upgraded = ncii(empty_database_url, "db", "upgrade")
    assert upgraded.exit_code == 0 and "upgraded from an empty database" in upgraded.stderr
    [after] = _jsonl(ncii(empty_database_url, "db", "current").stdout)
    assert (after["revision"], after["state"]) == (after["head"], "up to date")
    again = ncii(empty_database_url, "db", "upgrade")
    assert "already at revision" in again.stderr


def test_db_downgrade_asks_then_drops_newer_schema(empty_database_url: str) -> None:
    assert ncii(empty_database_url, "bank", "create", "reports").exit_code == 0
    unknown = ncii(empty_database_url, "db", "downgrade", "0999", "--yes")
    assert unknown.exit_code == exit_codes.USAGE and "unknown revision '0999'" in unknown.stderr
    declined = ncii(empty_database_url, "db", "downgrade", "0001", input="n\n")
    assert declined.exit_code != 0
    [still] = _jsonl(ncii(empty_database_url, "db", "current").stdout)
    assert still["state"] == "up to date"
    down = ncii(empty_database_url, "db", "downgrade", "0001", "--yes")
    assert down.exit_code == 0 and "downgraded from" in down.stderr and "to 0001" in down.stderr
    [after] = _jsonl(ncii(empty_database_url, "db", "current").stdout)
    assert (after["revision"], after["state"]) == ("0001", "behind")
    # The bank made under the newer schema survives the downgrade, and an upgrade is clean.
    assert ncii(empty_database_url, "db", "upgrade").exit_code == 0
    assert [b["name"] for b in _jsonl(ncii(empty_database_url, "bank", "list").stdout)] == [
        "reports"
    ]
    base = ncii(empty_database_url, "db", "downgrade", "base", "--yes")
    assert base.exit_code == 0 and "an empty database" in base.stderr


def test_an_unreachable_database_is_one_line() -> None:
    result = ncii("postgresql://nobody@127.0.0.1:1/none", "bank", "list")
    assert result.exit_code == exit_codes.ERROR
    assert result.stderr.startswith("error: cannot open database postgresql+psycopg://")
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_has_examples() -> None:
    for command in (["bank", "create"], ["bank", "delete"], ["db", "upgrade"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.stdout


def test_installed_command_uses_the_environment_url(store_url: str) -> None:
    env = os.environ | {"NCII_DATABASE_URL": store_url, "NCII_ACTOR": "ci-bot"}
    created = subprocess.run(
        [NCII, "bank", "create", "from-env"], env=env, capture_output=True, text=True, check=False
    )
    assert created.returncode == 0, created.stderr
    listed = subprocess.run(
        [NCII, "bank", "list", "--format", "jsonl"], env=env, capture_output=True, text=True
    )
    assert [b["name"] for b in _jsonl(listed.stdout)] == ["from-env"]
    missing = subprocess.run(
        [NCII, "bank", "show", "nope"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode == exit_codes.ERROR
    assert missing.stderr.strip() == "error: no bank named 'nope'"


@pytest.mark.parametrize("command", [["bank", "list"], ["db", "current"]])
def test_default_database_needs_no_setup(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NCII_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ncii" / "ncii.db").is_file()
