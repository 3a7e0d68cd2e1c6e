"""The hash-chained audit log on both engines: every writer chains its rows, `ncii audit verify`
names an edited or a deleted row, existing rows are chained by the migration, and concurrent
writers keep one unbroken chain."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.service import audit, banks, entries, history, ingest
from ncii.service.entries import NewEntry
from ncii.signals import Signal
from ncii.store import migrate
from ncii.store.engine import Store, open_store
from ncii.store.models import AuditEvent, EntryStatus

runner = CliRunner()


def _pdq(n: int) -> Signal:
    return Signal("pdq", f"{n:064x}")


def _history(store: Store) -> int:
    """A few audited writes of every kind: bank create, per-file add, import with a
    withdrawal, a status change. Returns the number of events."""
    with store.begin() as session:
        banks.create_bank(session, "b", actor="alice")
        ingest.add_entries(
            session,
            "b",
            [NewEntry((_pdq(1),)), NewEntry((_pdq(2),))],
            actor="alice",
            options=entries.AddOptions(audit_each=True),
        )
    with store.begin() as session:
        ingest.add_entries(
            session,
            "b",
            [NewEntry((_pdq(1),), status=EntryStatus.withdrawn), NewEntry((_pdq(3),))],
            actor="bob",
        )
    with store.begin() as session:
        entries.disable_entry(session, 2, actor="carol", reason="review")
    with store.read() as session:
        return len(history.audit_events(session, limit=1000))


def _verify(url: str):
    return runner.invoke(app, ["audit", "verify", "--db", url, "-f", "jsonl"])


def test_every_writer_chains_its_events_and_verify_passes(store: Store, store_url: str) -> None:
    count = _history(store)
    with store.read() as session:
        rows = session.execute(
            select(
                AuditEvent.id, AuditEvent.action, AuditEvent.prev_hash, AuditEvent.row_hash
            ).order_by(AuditEvent.id)
        ).all()
    # bank.create, 2 x entry.add, entry.withdraw + bank.import, entry.disable
    assert [r.action for r in rows] == [
        "bank.create",
        "entry.add",
        "entry.add",
        "entry.withdraw",
        "bank.import",
        "entry.disable",
    ]
    assert [r.id for r in rows] == list(range(1, count + 1))
    assert rows[0].prev_hash == history.GENESIS
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    result = _verify(store_url)
    assert result.exit_code == 0, result.output
    assert '"intact":true' in result.stdout and f'"events":{count}' in result.stdout
    assert rows[-1].row_hash in result.stdout


def test_verify_names_an_edited_row(store: Store, store_url: str) -> None:
    _history(store)
    with store.begin() as session:
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 3"))
    result = _verify(store_url)
    assert result.exit_code == exit_codes.TAMPERED
    assert "audit event 3 was edited" in result.stderr
    assert '"intact":false' in result.stdout


def test_verify_names_a_row_edited_with_its_hash_recomputed(store: Store) -> None:
    _history(store)
    with store.begin() as session:
        row = session.get(AuditEvent, 2)
        assert row is not None
        row.details = {"signals": ["pdq:" + "0" * 64]}
        row.row_hash = history.event_hash(
            row.prev_hash,
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            bank_id=row.bank_id,
            entry_id=row.entry_id,
            details=row.details,
        )
    with store.read() as session:
        report = audit.verify_chain(session)
    assert report.problem is not None
    assert (report.problem.event_id, report.problem.kind) == (2, "edited")
    assert "event 3 does not follow it" in report.problem.message


@pytest.mark.parametrize("deleted", [[1], [3], [3, 4]])
def test_verify_names_deleted_rows(store: Store, store_url: str, deleted: list[int]) -> None:
    _history(store)
    with store.begin() as session:
        session.execute(
            text(f"DELETE FROM audit_events WHERE id IN ({','.join(map(str, deleted))})")
        )
    result = _verify(store_url)
    assert result.exit_code == exit_codes.TAMPERED
    named = f"event {deleted[0]} was" if len(deleted) == 1 else "events 3-4 were"
    assert f"audit {named} deleted" in result.stderr


def test_deleting_the_newest_rows_is_caught_by_the_head_and_stays_caught(store: Store) -> None:
    count = _history(store)
    with store.begin() as session:
        session.execute(text(f"DELETE FROM audit_events WHERE id >= {count - 1}"))
    with store.read() as session:
        report = audit.verify_chain(session)
    assert report.problem is not None and report.problem.kind == "deleted"
    assert report.problem.message.startswith(f"audit events {count - 1}-{count} were deleted")
    # New events chain from the head, not from the newest row left: the gap stays visible.
    with store.begin() as session:
        banks.create_bank(session, "later", actor="alice")
    with store.read() as session:
        report = audit.verify_chain(session)
    assert report.problem is not None
    assert report.problem.message.startswith(f"audit events {count - 1}-{count} were deleted")


def test_migration_chains_events_written_before_it(empty_database_url: str) -> None:
    with open_store(empty_database_url, migrate_schema=False) as store:
        migrate.upgrade(store.engine, "0002")
        when = dt.datetime(2025, 3, 1, 9, 30, 15, 250000, tzinfo=dt.UTC)
        with store.engine.begin() as connection:
            for n, action in enumerate(("bank.create", "bank.import", "entry.withdraw"), 1):
                connection.execute(
                    text(
                        "INSERT INTO audit_events (id, at, actor, action, bank_id, entry_id, "
                        "details) VALUES (:id, :at, 'old', :action, 1, NULL, :details)"
                    ),
                    {
                        "id": n * 2,  # gaps, as rolled-back transactions leave them
                        "at": when.replace(tzinfo=None) if store.dialect == "sqlite" else when,
                        "action": action,
                        "details": json.dumps({"n": n, "nested": {"b": [1, 2.5, None], "a": "é"}}),
                    },
                )
        migrate.upgrade(store.engine)
        with store.read() as session:
            report = audit.verify_chain(session)
        assert report.intact and (report.events, report.last_id) == (3, 6)
        with store.begin() as session:
            banks.create_bank(session, "new", actor="t")
        with store.read() as session:
            report = audit.verify_chain(session)
            newest = history.audit_events(session, limit=1)[0]
        assert report.intact and report.events == 4 and newest.id == 7
        migrate.downgrade(store.engine, "0002")
        migrate.upgrade(store.engine)
        with store.read() as session:
            assert audit.verify_chain(session).intact


def _create_banks(url: str, prefix: str) -> None:
    with open_store(url) as store:
        for n in range(15):
            with store.begin() as session:
                banks.create_bank(session, f"{prefix}{n}", actor=prefix)


def test_concurrent_writers_keep_one_unbroken_chain(store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        pool.starmap(_create_banks, [(store_url, p) for p in ("a", "b", "c")])
    with open_store(store_url) as store, store.read() as session:
        report = audit.verify_chain(session)
        ids = list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
    assert report.intact, report.problem
    assert ids == list(range(1, 46))
