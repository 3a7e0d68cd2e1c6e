"""Hostile import files through the real CLI on both engines (issue 14, items 5, 6, 8, 13):
each bad record gives one line naming the file and line, the bank is unchanged without
``--skip-invalid``, and with it only the bad line is left out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.service import banks, ingest
from ncii.service.entries import NewEntry
from ncii.signals import Signal
from ncii.signals.vpdq import VpdqFrame
from ncii.store.engine import Store

runner = CliRunner()
PDQ = [f"{i:064x}" for i in range(1, 40)]
GOOD = [json.dumps({"signal_type": "pdq", "value": PDQ[i], "note": f"n{i}"}) for i in range(3)]


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


@pytest.fixture
def bank_url(store_url: str) -> str:
    assert ncii(store_url, "bank", "create", "b").exit_code == 0
    return store_url


def _export(url: str) -> str:
    return ncii(url, "export", "b", "-f", "jsonl").stdout


def _values(url: str) -> set[str]:
    return {
        signal["value"]
        for line in _export(url).splitlines()
        for signal in json.loads(line)["signals"]
    }


def _errors(result) -> list[str]:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _check_refused(url: str, path: Path, fmt: str, expected: str, good: set[str]) -> None:
    """Refused whole naming the line, then skipped alone under --skip-invalid."""
    before = _export(url)
    refused = ncii(url, "import", "b", str(path), "-f", fmt)
    assert refused.exit_code == exit_codes.ERROR, refused.output
    assert _errors(refused) == [f"error: {path.name}, {expected}; nothing was imported"]
    assert _export(url) == before
    skipped = ncii(url, "import", "b", str(path), "-f", fmt, "--skip-invalid")
    assert skipped.exit_code == exit_codes.SOME_INPUTS_FAILED, skipped.output
    assert _errors(skipped) == [f"error: {path.name}, {expected} (skipped)"]
    assert _values(url) == good


VIDEO = {"signals": [{"type": "md5", "value": "a" * 32}]}
HOSTILE_JSONL = {
    "5000-digit integer": (
        f'{{"signal_type": "pdq", "value": "{PDQ[9]}", "quality": {"9" * 5000}}}',
        "line 2: invalid JSON: a number of more than 4,300 digits",
    ),
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "line 2: invalid JSON: nested more"),
    "frame index 10**30": (
        json.dumps(
            VIDEO | {"vpdq": [{"frame": 10**30, "quality": 90, "pdq": PDQ[5], "timestamp": 0}]}
        ),
        "line 2: vpdq frame 1: frame number of 100 bits is not 0-2147483647",
    ),
    "frame index 2**31": (
        json.dumps(
            VIDEO | {"vpdq": [{"frame": 2**31, "quality": 90, "pdq": PDQ[5], "timestamp": 0}]}
        ),
        "line 2: vpdq frame 1: frame number 2147483648 is not 0-2147483647",
    ),
    "NUL in a note": (
        json.dumps({"signal_type": "pdq", "value": PDQ[9], "note": "a\x00b"}),
        "line 2: note contains a NUL character",
    ),
    "NUL in a case reference": (
        json.dumps({"signal_type": "pdq", "value": PDQ[9], "case_ref": "C-1\x00"}),
        "line 2: case_ref contains a NUL character",
    ),
    "lone surrogate in external_id": (
        json.dumps({"signal_type": "pdq", "value": PDQ[9], "external_id": "x\ud800"}),
        "line 2: external_id contains text that is not valid UTF-8",
    ),
    "bad frame hash (one prefix)": (
        json.dumps(VIDEO | {"vpdq": [{"frame": 1, "quality": 90, "pdq": "zz", "timestamp": 0}]}),
        "line 2: vpdq frame 1: invalid pdq hash 'zz': expected 64 hex digits",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSONL), ids=list(HOSTILE_JSONL))
def test_hostile_jsonl_line(bank_url: str, tmp_path: Path, case: str) -> None:
    line, expected = HOSTILE_JSONL[case]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join([GOOD[0], line, GOOD[1], GOOD[2]]) + "\n")
    if expected.endswith("nested more"):
        expected += " than 512 deep"
    _check_refused(bank_url, path, "jsonl", expected, {PDQ[0], PDQ[1], PDQ[2]})


def _stopncii(value: str, **fields: object) -> dict:
    record = {"hashValue": value, "signalType": "ImagePDQ", "hashStatus": "Active"}
    return record | fields


HOSTILE_STOPNCII = {
    "NUL in a case number": (
        _stopncii(PDQ[9], caseNumbers={"C\x00": "Active"}),
        "line 2: caseNumbers: case number 'C\\x00' contains a NUL character",
    ),
    "unknown hashStatus": (
        _stopncii(PDQ[9], hashStatus="Whatever"),
        "line 2: unknown StopNCII hashStatus 'Whatever' "
        "(known: Active, Deleted, Received, Unknown, Withdrawn)",
    ),
    "unknown case status": (
        _stopncii(PDQ[9], caseNumbers={"C1": "Gone?"}),
        "line 2: unknown StopNCII status of case 'C1' 'Gone?' "
        "(known: Active, Deleted, Received, Unknown, Withdrawn)",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_STOPNCII), ids=list(HOSTILE_STOPNCII))
def test_hostile_stopncii_record(bank_url: str, tmp_path: Path, case: str) -> None:
    record, expected = HOSTILE_STOPNCII[case]
    path = tmp_path / "fetch.jsonl"
    lines = [json.dumps(_stopncii(PDQ[0])), json.dumps(record), json.dumps(_stopncii(PDQ[1]))]
    path.write_text("\n".join(lines) + "\n")
    _check_refused(bank_url, path, "stopncii", expected, {PDQ[0], PDQ[1]})


def test_hostile_stopncii_lines_and_documents(bank_url: str, tmp_path: Path) -> None:
    """A huge number in JSON lines is that line's fault; in a pretty-printed document (read
    whole) the import fails naming the line the number is on, even with --skip-invalid."""
    huge = tmp_path / "huge.jsonl"
    good = json.dumps(_stopncii(PDQ[0]))
    huge.write_text(good + f'\n{{"hashValue": "{PDQ[1]}", "lastModtimestamp": {"7" * 5000}}}\n')
    _check_refused(
        bank_url,
        huge,
        "stopncii",
        "line 2: invalid JSON: a number of more than 4,300 digits",
        {PDQ[0]},
    )
    document = tmp_path / "page.json"
    records = [_stopncii(PDQ[3]), _stopncii(PDQ[4])]
    text = json.dumps({"hashRecords": records}, indent=1).replace('"Active"', "1" + "0" * 5000, 1)
    document.write_text(text)
    line = 1 + text[: text.index("1" + "0" * 5000)].count("\n")
    deep = tmp_path / "deep.json"
    deep.write_text("[\n" + "[" * 100_000 + "]" * 100_000 + "\n]\n")
    for path, expected in (
        (document, f"line {line}: invalid JSON: a number of more than 4,300 digits"),
        (deep, "line 2: invalid JSON: nested more than 512 deep"),
    ):
        for extra in ((), ("--skip-invalid",)):
            result = ncii(bank_url, "import", "b", str(path), "-f", "stopncii", *extra)
            assert result.exit_code == exit_codes.ERROR, result.output
            assert _errors(result) == [f"error: {path.name}, {expected}; nothing was imported"]
    assert _values(bank_url) == {PDQ[0]}


CSV_HEADER = "signal_type,value,quality,status,external_id,case_ref,note"


def _csv_rows(numbers: range) -> list[str]:
    return [f"pdq,{PDQ[i]},90,,ext-{i},CASE,note {i}" for i in numbers]


@pytest.mark.parametrize("where", ["middle", "last line"])
def test_csv_unterminated_quote_keeps_the_rows_after_it(
    bank_url: str, tmp_path: Path, where: str
) -> None:
    bad = f'pdq,{PDQ[30]},90,,,,"an unterminated note'
    rows = [*_csv_rows(range(3)), bad, *_csv_rows(range(3, 8))]
    if where == "last line":
        rows = [*_csv_rows(range(8)), bad]
    path = tmp_path / "h.csv"
    path.write_text("\n".join([CSV_HEADER, *rows]) + "\n")
    line = 2 + rows.index(bad)
    expected = f"line {line}: malformed CSV: a quoted field is never closed"
    _check_refused(bank_url, path, "csv", expected, {PDQ[i] for i in range(8)})


def test_csv_quoted_line_breaks_still_round_trip(bank_url: str, tmp_path: Path) -> None:
    """A note with line breaks is quoted across lines by exports and read back whole."""
    path = tmp_path / "h.csv"
    note = "first line\nsecond, with a comma\nthird"
    path.write_text(
        "\n".join([CSV_HEADER, *_csv_rows(range(2)), f'pdq,{PDQ[2]},90,,,,"{note}"', ""])
    )
    assert ncii(bank_url, "import", "b", str(path), "-f", "csv").exit_code == 0
    exported = tmp_path / "out.csv"
    assert ncii(bank_url, "export", "b", "-f", "csv", "-o", str(exported)).exit_code == 0
    assert ncii(bank_url, "bank", "create", "copy").exit_code == 0
    copied = ncii(bank_url, "import", "copy", str(exported), "-f", "csv")
    assert copied.exit_code == 0, copied.output
    notes = [
        json.loads(line)["note"]
        for line in ncii(bank_url, "export", "copy", "-f", "jsonl").stdout.splitlines()
    ]
    assert notes == ["note 0", "note 1", note]


def test_csv_invalid_utf8_names_its_line(bank_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    rows = [CSV_HEADER, *_csv_rows(range(3))]
    data = ("\n".join(rows) + "\n").encode()
    data += f"pdq,{PDQ[30]},90,,,,caf".encode() + b"\xe9\n"
    data += ("\n".join(_csv_rows(range(3, 6))) + "\n").encode()
    path.write_bytes(data)
    _check_refused(bank_url, path, "csv", "line 5: not UTF-8 text", {PDQ[i] for i in range(6)})


def test_jsonl_invalid_utf8_names_its_line(bank_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    bad = json.dumps({"signal_type": "pdq", "value": PDQ[30], "note": "caf"}).encode()
    bad = bad.replace(b'caf"', b'caf\xff"')
    path.write_bytes(b"\n".join([GOOD[0].encode(), bad, GOOD[1].encode()]) + b"\n")
    _check_refused(bank_url, path, "jsonl", "line 2: not UTF-8 text", {PDQ[0], PDQ[1]})


def test_jsonl_export_never_writes_infinity(store: Store, store_url: str, tmp_path: Path) -> None:
    """A frame time of Infinity, as old `case open --from` stored it, fails the export in one
    line naming the entry, and no file (whole or partial) is left behind."""
    with store.begin() as session:
        banks.create_bank(session, "b", actor="t")
        ingest.add_entries(
            session,
            "b",
            [
                NewEntry(
                    (Signal("md5", "a" * 32),),
                    frames=(VpdqFrame(0, 90, PDQ[0], math.inf), VpdqFrame(1, 90, PDQ[1], 1.0)),
                )
            ],
            actor="t",
        )
    out = tmp_path / "out" / "bank.jsonl"
    out.parent.mkdir()
    result = ncii(store_url, "export", "b", "-f", "jsonl", "-o", str(out))
    assert result.exit_code == exit_codes.ERROR, result.output
    assert _errors(result) == [
        "error: entry 1: a video frame time is not a finite number (Infinity and NaN are not "
        "JSON); withdraw the entry and add the video again"
    ]
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("tx", "t" * 10_000 + " " + PDQ[9]),
        ("jsonl", json.dumps({"signal_type": "t" * 10_000, "value": PDQ[9]})),
        ("jsonl", json.dumps({"signal_type": "pdq", "value": PDQ[9], "status": "s" * 10_000})),
        ("csv", f"pdq,{PDQ[9]},{'9' * 10_000},,,,"),
    ],
    ids=["tx type", "jsonl type", "jsonl status", "csv quality"],
)
def test_huge_values_are_not_echoed_in_full(
    bank_url: str, tmp_path: Path, fmt: str, line: str
) -> None:
    path = tmp_path / f"h.{fmt}"
    header = [CSV_HEADER] if fmt == "csv" else []
    path.write_text("\n".join([*header, line]) + "\n")
    result = ncii(bank_url, "import", "b", str(path), "-f", fmt)
    assert result.exit_code == exit_codes.ERROR, result.output
    [error] = _errors(result)
    assert "(10,000 characters)" in error and len(error) < 300, error
