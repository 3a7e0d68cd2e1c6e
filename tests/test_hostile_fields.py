"""Hostile names and free-text fields through the real CLI on both engines (issue 14, items 6
and 13): NUL characters, bytes that are not UTF-8, line breaks in actor names and 10,000-
character bank names give one short line naming the field, the same on SQLite and PostgreSQL,
and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app

runner = CliRunner()
PHOTO = Path(__file__).parent / "data" / "meta" / "q0291.jpg"
LONG = "b" * 10_000
UNDECODABLE = b"caf\xe9".decode("utf-8", "surrogateescape")
"""What a non-UTF-8 command-line argument reaches Python as."""


def ncii(url: str, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--db", url], input=input)


def _one_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def _audit_count(url: str) -> int:
    return len(ncii(url, "audit", "list", "--limit", "1000", "-f", "jsonl").stdout.splitlines())


def test_a_10000_character_bank_name_is_refused_in_a_short_line(store_url: str) -> None:
    created = _one_error(ncii(store_url, "bank", "create", LONG), exit_codes.USAGE)
    assert "invalid bank name 'bbbb" in created and "(10,000 characters)" in created
    assert len(created) < 250
    for args in (("bank", "show", LONG), ("entry", "list", LONG), ("export", LONG)):
        missing = _one_error(ncii(store_url, *args), exit_codes.ERROR)
        assert missing.startswith("error: no bank named 'bbbb") and len(missing) < 150
    assert ncii(store_url, "bank", "list", "-f", "jsonl").stdout == ""


@pytest.mark.parametrize("name", ["x\x00y", "b" + UNDECODABLE])
def test_bank_names_no_database_could_hold_are_not_found(store_url: str, name: str) -> None:
    assert ncii(store_url, "bank", "create", "b").exit_code == 0
    line = _one_error(ncii(store_url, "bank", "show", name), exit_codes.ERROR)
    assert line.startswith("error: no bank named ")
    refused = _one_error(ncii(store_url, "bank", "rename", "b", name), exit_codes.USAGE)
    assert refused.startswith("error: invalid bank name ")


@pytest.mark.parametrize(
    ("actor", "shown"),
    [("bob\nmallory", "'bob\\nmallory'"), ("bob\x1b[2J", "'bob\\x1b[2J'"), ("a\x00", "'a\\x00'")],
)
def test_actor_names_with_line_breaks_or_control_characters_are_refused(
    store_url: str, tmp_path: Path, actor: str, shown: str
) -> None:
    expected = f"error: invalid actor {shown}: control characters and line breaks are not allowed"
    created = ncii(store_url, "bank", "create", "b", "--actor", actor)
    assert _one_error(created, exit_codes.USAGE) == expected
    assert ncii(store_url, "bank", "create", "b").exit_code == 0
    path = tmp_path / "h.txt"
    path.write_text(f"pdq {'1' * 64}\n")
    imported = ncii(store_url, "import", "b", str(path), "-f", "tx", "--actor", actor)
    assert _one_error(imported, exit_codes.USAGE) == expected
    added = ncii(store_url, "add", "b", str(PHOTO), "--actor", actor)
    assert _one_error(added, exit_codes.USAGE) == expected
    assert _audit_count(store_url) == 1  # the bank.create only


@pytest.mark.parametrize("text", ["a\x00b", UNDECODABLE])
def test_unstorable_text_is_refused_naming_the_field(
    store_url: str, tmp_path: Path, text: str
) -> None:
    why = "contains a NUL character" if "\x00" in text else "contains text that is not valid UTF-8"
    description = ncii(store_url, "bank", "create", "b", "--description", text)
    assert _one_error(description, exit_codes.USAGE) == f"error: description {why}"
    assert ncii(store_url, "bank", "create", "b").exit_code == 0
    for option, field in (("--note", "note"), ("--case", "case_ref")):
        added = ncii(store_url, "add", "b", str(PHOTO), option, text)
        assert _one_error(added, exit_codes.USAGE) == f"error: {field} {why}"
    hashes = tmp_path / "h.txt"
    hashes.write_text(f"pdq {'1' * 64}\npdq {'2' * 64}\n")
    imported = ncii(store_url, "import", "b", str(hashes), "-f", "tx", "--note", text)
    assert _one_error(imported, exit_codes.ERROR) == (
        f"error: h.txt, line 1: note {why}; nothing was imported"
    )
    skipped = ncii(
        store_url, "import", "b", str(hashes), "-f", "tx", "--note", text, "--skip-invalid"
    )
    assert skipped.exit_code == exit_codes.SOME_INPUTS_FAILED
    assert [line.split(": ", 1)[1] for line in skipped.stderr.splitlines()] == [
        f"h.txt, line 1: note {why} (skipped)",
        f"h.txt, line 2: note {why} (skipped)",
    ]
    opened = ncii(store_url, "case", "open", str(PHOTO), "--name", text)
    assert _one_error(opened, exit_codes.USAGE) == f"error: case name {why}"
    status = ncii(store_url, "case", "status", "NC-" + text, input="1234-5678\n")
    assert _one_error(status, exit_codes.USAGE) == f"error: case number {why}"
    [shown] = [json.loads(line) for line in ncii(store_url, "bank", "list").stdout.splitlines()]
    assert shown["entries"] == 0
    assert ncii(store_url, "add", "b", str(PHOTO)).exit_code == 0
    withdrawn = ncii(store_url, "entry", "withdraw", "1", "--reason", text)
    assert _one_error(withdrawn, exit_codes.USAGE) == f"error: reason {why}"
