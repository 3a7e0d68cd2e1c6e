"""Two processes writing to the same bank at once lose nothing and do not trip over the
one-value-per-bank constraint (on PostgreSQL they take turns on the bank's row lock; SQLite
serialises writers)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import func, select

from ncii.service import banks, history, ingest
from ncii.service.entries import AddSummary, NewEntry
from ncii.signals import Signal
from ncii.store.engine import Store
from ncii.store.models import Change, Entry, EntrySignal

NCII = str(Path(sys.executable).with_name("ncii"))


def _hashes(path: Path, values: range) -> Path:
    path.write_text("".join(f"pdq {v:064x}\n" for v in values))
    return path


def test_two_processes_adding_to_one_bank_lose_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    with store.begin() as session:
        banks.create_bank(session, "shared", actor="t")
    # Overlapping halves, each of several batches, big enough for the imports to overlap.
    files = [
        _hashes(tmp_path / "a.txt", range(12_000)),
        _hashes(tmp_path / "b.txt", range(8_000, 20_000)),
    ]
    processes = [
        subprocess.Popen(
            [NCII, "import", "shared", str(f), "--format", "tx", "--db", store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    added = [int(out.split(": ")[1].split(" added")[0].replace(",", "")) for out, _ in outputs]
    assert sum(added) == 20_000
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Entry)) == 20_000
        assert session.scalar(select(func.count()).select_from(EntrySignal)) == 20_000
        changes = session.scalar(select(func.count()).select_from(Change))
        imports = [e for e in history.audit_events(session) if e.action == "bank.import"]
    assert changes == 20_000
    assert sorted(e.details["added"] for e in imports) == sorted(added)


def test_a_second_writer_waits_for_the_first(store: Store) -> None:
    """Deterministic version of the above: the second writer blocks on the bank until the
    first commits, then finds the first one's entries."""
    with store.begin() as session:
        banks.create_bank(session, "b", actor="t")
    first = [NewEntry((Signal("pdq", f"{i:064x}"),)) for i in range(100)]
    second = [NewEntry((Signal("pdq", f"{i:064x}"),)) for i in range(50, 150)]
    results: list[AddSummary] = []

    def write_second() -> None:
        with store.begin() as session:
            results.append(ingest.add_entries(session, "b", second, actor="t2"))

    with store.begin() as session:
        ingest.add_entries(session, "b", first, actor="t1")
        thread = threading.Thread(target=write_second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the second writer did not wait for the first"
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert (results[0].added, results[0].present) == (50, 50)


def test_two_processes_creating_the_same_bank(store_url: str) -> None:
    processes = [
        subprocess.Popen(
            [NCII, "bank", "create", "race", "--db", store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in processes]
    assert sorted(code for code, _ in results) == [0, 3]
    assert any("already exists" in err for _, err in results)
