"""`kill -9` during `ncii import` on each engine (issue 14, "Must show"): the bank holds none of
the file or all of it, never a partial batch, and `ncii audit verify` still passes.

One full import measures how long the file takes here; three more are killed with SIGKILL at
0.3 s (starting up), half-way and near the end of that time, each into its own bank. A kill
can land after the commit (then the bank is complete); at least one must land mid-import.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncii.cli.app import app

runner = CliRunner()
NCII = str(Path(sys.executable).with_name("ncii"))
ROWS = 100_000


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


@pytest.fixture(scope="module")
def hash_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "hashes.csv"
    rows = ["signal_type,value,quality,status,external_id,case_ref,note"]
    rows += [f"pdq,{n:064x},90,,ext-{n},C-{n % 97},note {n}" for n in range(1, ROWS + 1)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _import(url: str, bank: str, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [NCII, "import", bank, str(path), "-f", "csv", "--db", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _held(url: str, bank: str) -> tuple[int, int]:
    """(entries, pdq signals) the bank holds."""
    shown = ncii(url, "bank", "show", bank, "-f", "jsonl")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    return data["entries"], data["by_signal_type"].get("pdq", 0)


def _audit_intact(url: str) -> None:
    verified = ncii(url, "audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_killed_imports_leave_the_bank_empty_or_complete(store_url: str, hash_file: Path) -> None:
    for bank in ("whole", "k1", "k2", "k3"):
        assert ncii(store_url, "bank", "create", bank).exit_code == 0
    started = time.monotonic()
    assert _import(store_url, "whole", hash_file).wait(timeout=120) == 0
    duration = time.monotonic() - started
    assert _held(store_url, "whole") == (ROWS, ROWS)
    killed_mid_import = 0
    for bank, delay in (("k1", 0.3), ("k2", duration * 0.5), ("k3", duration * 0.9)):
        process = _import(store_url, bank, hash_file)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=30)
        held = _held(store_url, bank)
        assert held in ((0, 0), (ROWS, ROWS)), f"{bank} after {delay:.1f} s: {held}"
        _audit_intact(store_url)
        print(f"{bank}: killed after {delay:.2f} s of a {duration:.2f} s import: {held[0]} held")
        if code == -signal.SIGKILL and held == (0, 0):
            killed_mid_import += 1
    assert killed_mid_import >= 1, (
        f"no kill landed mid-import (a full import took {duration:.1f} s)"
    )
    # A killed import's server side is gone for good: the banks stay as they were found.
    time.sleep(0.5)
    for bank in ("k1", "k2", "k3"):
        assert _held(store_url, bank) in ((0, 0), (ROWS, ROWS))
    _audit_intact(store_url)
