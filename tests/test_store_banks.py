"""Banks on both engines: create, list, show, rename, delete; each writes an audit event."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ncii.errors import AlreadyExists, InvalidArgument, NotFound
from ncii.service import banks, entries, history, ingest
from ncii.service.entries import NewEntry
from ncii.signals import Signal
from ncii.store.engine import Store
from ncii.store.models import BankSource, ChangeKind, Entry, EntrySignal, EntryStatus

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def _pdq(i: int) -> Signal:
    return Signal("pdq", f"{i:064x}", 90)


def test_create_list_show(store: Store) -> None:
    with store.begin() as session:
        created = banks.create_bank(
            session,
            "stopncii",
            actor="alice",
            description="StopNCII feed",
            source="stopncii",
            trust_level=80,
        )
        banks.create_bank(session, "own", actor="alice")
    assert created.source is BankSource.stopncii
    assert created.trust_level == 80
    assert created.created_at.tzinfo is not None
    with store.begin() as session:
        ingest.add_entries(
            session,
            "own",
            [NewEntry((_pdq(1), Signal("md5", MD5))), NewEntry((_pdq(2),))],
            actor="alice",
        )
    with store.read() as session:
        listed = banks.list_banks(session)
        detail = banks.show_bank(session, "own")
    assert [(b.bank.name, b.entries, b.active) for b in listed] == [
        ("own", 2, 2),
        ("stopncii", 0, 0),
    ]
    assert detail.entries == 2
    assert detail.by_status == {"active": 2, "disabled": 0, "withdrawn": 0}
    assert detail.by_signal_type == {"md5": 1, "pdq": 2}
    assert detail.to_dict()["by_signal_type"] == {"md5": 1, "pdq": 2}


def test_create_rejects_duplicates_and_bad_values(store: Store) -> None:
    with store.begin() as session:
        banks.create_bank(session, "own", actor="a")
    with pytest.raises(AlreadyExists), store.begin() as session:
        banks.create_bank(session, "own", actor="a")
    for name in ("", "has space", "-leading", "x" * 65, "naïve"):
        with pytest.raises(InvalidArgument), store.begin() as session:
            banks.create_bank(session, name, actor="a")
    with pytest.raises(InvalidArgument), store.begin() as session:
        banks.create_bank(session, "t", actor="a", trust_level=101)
    with pytest.raises(InvalidArgument), store.begin() as session:
        banks.create_bank(session, "t", actor="a", source="elsewhere")
    with pytest.raises(InvalidArgument), store.begin() as session:
        banks.create_bank(session, "t", actor=" ")


def test_rename(store: Store) -> None:
    with store.begin() as session:
        banks.create_bank(session, "a", actor="x")
        banks.create_bank(session, "b", actor="x")
    with store.begin() as session:
        renamed = banks.rename_bank(session, "a", "c", actor="x")
    assert renamed.name == "c"
    with pytest.raises(AlreadyExists), store.begin() as session:
        banks.rename_bank(session, "c", "b", actor="x")
    with pytest.raises(NotFound), store.begin() as session:
        banks.rename_bank(session, "a", "d", actor="x")
    with store.read() as session:
        assert [b.bank.name for b in banks.list_banks(session)] == ["b", "c"]
        events = history.audit_events(session, bank_id=renamed.id)
    assert events[0].action == "bank.rename"
    assert events[0].details == {"from": "a", "to": "c"}


def test_delete_removes_entries_and_keeps_the_audit_trail(store: Store) -> None:
    with store.begin() as session:
        bank = banks.create_bank(session, "gone", actor="x")
        banks.create_bank(session, "kept", actor="x")
        ingest.add_entries(session, "gone", [NewEntry((_pdq(i),)) for i in range(5)], actor="x")
        ingest.add_entries(session, "kept", [NewEntry((_pdq(1),))], actor="x")
    with store.begin() as session:
        deleted = banks.delete_bank(session, "gone", actor="bob")
    assert deleted.entries == 5
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Entry)) == 1
        assert session.scalar(select(func.count()).select_from(EntrySignal)) == 1
        events = history.audit_events(session, bank_id=bank.id)
        changes = history.changes_since(session, 0)
    assert events[0].action == "bank.delete"
    assert events[0].actor == "bob"
    assert events[0].details["name"] == "gone"
    assert events[0].details["entries"] == 5
    assert changes[-1].kind is ChangeKind.delete_bank
    assert changes[-1].bank_id == bank.id
    with pytest.raises(NotFound), store.read() as session:
        banks.show_bank(session, "gone")


def test_every_bank_change_is_audited(store: Store) -> None:
    with store.begin() as session:
        created = banks.create_bank(session, "a", actor="alice")
        banks.rename_bank(session, "a", "b", actor="bob")
        banks.delete_bank(session, "b", actor="carol")
    with store.read() as session:
        events = history.audit_events(session, bank_id=created.id)
    assert [(e.action, e.actor) for e in reversed(events)] == [
        ("bank.create", "alice"),
        ("bank.rename", "bob"),
        ("bank.delete", "carol"),
    ]
    assert all(e.at.tzinfo is not None for e in events)


def test_status_counts_follow_entry_status(store: Store) -> None:
    with store.begin() as session:
        banks.create_bank(session, "b", actor="x")
        ingest.add_entries(session, "b", [NewEntry((_pdq(i),)) for i in range(3)], actor="x")
    with store.begin() as session:
        first, second = (e.id for e in entries.list_entries(session, "b", limit=2).entries)
        entries.disable_entry(session, first, actor="x", reason="review")
        entries.withdraw_entry(session, second, actor="x", reason="consent withdrawn")
    with store.read() as session:
        detail = banks.show_bank(session, "b")
        summary = banks.list_banks(session)[0]
    assert detail.by_status == {
        EntryStatus.active.value: 1,
        EntryStatus.disabled.value: 1,
        EntryStatus.withdrawn.value: 1,
    }
    assert (summary.entries, summary.active) == (3, 1)
