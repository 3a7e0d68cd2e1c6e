"""`ncii import` and `ncii export` on both engines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app

runner = CliRunner()
NCII = str(Path(sys.executable).with_name("ncii"))
PDQ = [f"{i:064x}" for i in range(1, 30)]


def ncii(url: str, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--db", url], input=input)


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def bank_url(store_url: str) -> str:
    assert ncii(store_url, "bank", "create", "b").exit_code == 0
    return store_url


def _csv(path: Path, values: list[str], bad: dict[int, str] | None = None) -> Path:
    lines = ["signal_type,value,quality,status,external_id,case_ref,note"]
    lines += [f"pdq,{v},90,,ext-{i},CASE,note {i}" for i, v in enumerate(values)]
    for line_number, text in (bad or {}).items():
        lines[line_number - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_is_idempotent(bank_url: str, tmp_path: Path) -> None:
    path = _csv(tmp_path / "h.csv", PDQ[:10])
    first = ncii(bank_url, "import", "b", str(path), "--format", "csv")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "bank b: 10 added, 0 already there"
    second = ncii(bank_url, "import", "b", str(path), "-f", "csv")
    assert second.stdout.strip() == "bank b: 0 added, 10 already there"
    [shown] = _jsonl(ncii(bank_url, "bank", "show", "b").stdout)
    assert shown["entries"] == 10


def test_a_bad_row_in_the_middle_changes_nothing(bank_url: str, tmp_path: Path) -> None:
    ncii(bank_url, "import", "b", str(_csv(tmp_path / "a.csv", PDQ[20:23])), "-f", "csv")
    before = ncii(bank_url, "export", "b", "-f", "jsonl").stdout
    path = _csv(tmp_path / "h.csv", PDQ[:10], bad={6: "pdq,12345,90,,,,"})
    result = ncii(bank_url, "import", "b", str(path), "-f", "csv")
    assert result.exit_code == exit_codes.ERROR
    assert result.stderr.strip() == (
        "error: h.csv, line 6: invalid pdq hash '12345': expected 64 hex digits; "
        "nothing was imported"
    )
    assert ncii(bank_url, "export", "b", "-f", "jsonl").stdout == before


def test_skip_invalid_reports_every_line(bank_url: str, tmp_path: Path) -> None:
    path = _csv(tmp_path / "h.csv", PDQ[:10], bad={3: "pdq,xyz", 8: "sha1,abc"})
    result = ncii(bank_url, "import", "b", str(path), "-f", "csv", "--skip-invalid")
    assert result.exit_code == exit_codes.SOME_INPUTS_FAILED
    assert "8 added" in result.stdout and "2 skipped" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if "(skipped)" in line]
    assert [line.split(",")[1].split(":")[0].strip() for line in skipped] == ["line 3", "line 8"]


def test_stopncii_withdrawal(bank_url: str, tmp_path: Path) -> None:
    def record(value: str, status: str) -> dict:
        return {
            "lastModtimestamp": 1700000000,
            "signalType": "ImagePDQ",
            "hashValue": value,
            "hashStatus": status,
            "caseNumbers": {"case-1": status},
        }

    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(record(v, "Active")) for v in PDQ[:3]) + "\n")
    assert ncii(bank_url, "import", "b", str(feed), "-f", "stopncii").exit_code == 0
    update = tmp_path / "update.json"
    update.write_text(json.dumps({"hashRecords": [record(PDQ[0], "Withdrawn")]}, indent=2))
    result = ncii(bank_url, "import", "b", str(update), "-f", "stopncii")
    assert result.exit_code == 0, result.output
    assert "1 withdrawn" in result.stdout
    withdrawn = _jsonl(ncii(bank_url, "entry", "list", "b", "--status", "withdrawn").stdout)
    assert [e["signals"][0]["value"] for e in withdrawn] == [PDQ[0]]
    assert withdrawn[0]["case_ref"] == "case-1"
    assert withdrawn[0]["withdrawn_at"].startswith("2023-11-14T22:13:20")


def test_export_formats_and_round_trip(bank_url: str, tmp_path: Path) -> None:
    ncii(bank_url, "import", "b", str(_csv(tmp_path / "h.csv", PDQ[:4])), "-f", "csv")
    [first] = _jsonl(ncii(bank_url, "entry", "list", "b", "--limit", "1").stdout)
    ncii(bank_url, "entry", "withdraw", str(first["id"]), "--reason", "gone")

    as_csv = ncii(bank_url, "export", "b", "--format", "csv")
    assert as_csv.exit_code == 0
    rows = as_csv.stdout.splitlines()
    assert rows[0] == "entry,signal_type,value,quality,status,external_id,case_ref,note"
    assert rows[1].split(",")[4] == "withdrawn" and len(rows) == 5
    assert "exported 4 entries (4 signals) from bank b" in as_csv.stderr

    tx = ncii(bank_url, "export", "b", "--format", "tx").stdout
    assert tx.splitlines() == [f"pdq {v}" for v in PDQ[1:4]]

    out = tmp_path / "out.jsonl"
    assert ncii(bank_url, "export", "b", "-o", str(out)).exit_code == 0
    assert not Path(f"{out}.part").exists()
    assert ncii(bank_url, "bank", "create", "copy").exit_code == 0
    copied = ncii(bank_url, "import", "copy", str(out), "-f", "jsonl")
    assert "4 added" in copied.stdout and "1 withdrawn" in copied.stdout
    [shown] = _jsonl(ncii(bank_url, "bank", "show", "copy").stdout)
    assert shown["by_status"] == {"active": 3, "disabled": 0, "withdrawn": 1}


def test_import_from_stdin_and_pytx_files(bank_url: str) -> None:
    text = f"pdq {PDQ[0]}\nvideo_md5 {'0' * 31}1\n"
    result = ncii(bank_url, "import", "b", "-", "--format", "tx", input=text)
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout


def test_import_file_errors(bank_url: str, tmp_path: Path) -> None:
    missing = ncii(bank_url, "import", "b", str(tmp_path / "nope.csv"), "-f", "csv")
    assert missing.exit_code == exit_codes.ERROR and "cannot open" in missing.stderr
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"signal_type,value\n\xff\xfe\x00")
    result = ncii(bank_url, "import", "b", str(binary), "-f", "csv")
    assert result.exit_code == exit_codes.ERROR and "not UTF-8" in result.stderr
    no_bank = ncii(bank_url, "import", "nope", str(binary), "-f", "csv")
    assert no_bank.exit_code == exit_codes.ERROR and "no bank named" in no_bank.stderr
    assert ncii(bank_url, "import", "b", str(binary)).exit_code == exit_codes.USAGE


def test_installed_command_import_and_export(bank_url: str, tmp_path: Path) -> None:
    path = _csv(tmp_path / "h.csv", PDQ[:5])
    imported = subprocess.run(
        [NCII, "import", "b", str(path), "--format", "csv", "--db", bank_url],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    exported = subprocess.run(
        [NCII, "export", "b", "--format", "tx", "--db", bank_url], capture_output=True, text=True
    )
    assert exported.stdout.splitlines() == [f"pdq {v}" for v in PDQ[:5]]
