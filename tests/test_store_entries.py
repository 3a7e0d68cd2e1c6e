"""Entries on both engines: idempotent bulk adds, attaching signals, withdrawals, status
changes, listing, and the audit trail and change log every change writes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ncii.errors import ImportFailed, InvalidArgument, NotFound
from ncii.service import banks, entries, history, ingest
from ncii.service.entries import AddOptions, AddResult, Invalid, NewEntry, Outcome
from ncii.signals import Signal
from ncii.store.engine import Store
from ncii.store.models import ChangeKind, Entry, EntrySignal, EntryStatus, utcnow

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _pdq(i: int, quality: int | None = 90) -> Signal:
    return Signal("pdq", f"{i:064x}", quality)


def _counts(store: Store) -> tuple[int, int]:
    with store.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Entry)) or 0,
            session.scalar(select(func.count()).select_from(EntrySignal)) or 0,
        )


def _add(store: Store, items: list[NewEntry | Invalid], bank: str = "b", **kwargs: object):
    results: list[AddResult] = []
    with store.begin() as session:
        summary = ingest.add_entries(
            session, bank, items, actor="tester", on_result=results.append, **kwargs
        )
    return summary, results


@pytest.fixture
def bank(store: Store) -> str:
    with store.begin() as session:
        banks.create_bank(session, "b", actor="tester")
    return "b"


def test_adding_again_adds_nothing(store: Store, bank: str) -> None:
    items = [NewEntry((_pdq(i), Signal("md5", f"{i:032x}"))) for i in range(10)]
    first, results = _add(store, items)
    assert (first.added, first.present) == (10, 0)
    assert all(r.outcome is Outcome.added for r in results)
    assert _counts(store) == (10, 20)
    second, again = _add(store, items)
    assert (second.added, second.present) == (0, 10)
    assert [r.entry_id for r in again] == [r.entry_id for r in results]
    assert _counts(store) == (10, 20)


def test_duplicates_within_one_call_and_across_batches(store: Store, bank: str) -> None:
    items = [NewEntry((_pdq(i % 3),)) for i in range(7)]
    summary, results = _add(store, items, options=AddOptions(batch_size=2))
    assert (summary.added, summary.present) == (3, 4)
    by_value = {}
    for result in results:
        by_value.setdefault(result.item.signals[0].value, set()).add(result.entry_id)
    assert all(len(ids) == 1 for ids in by_value.values())
    assert _counts(store) == (3, 3)


def test_same_value_may_be_in_two_banks(store: Store, bank: str) -> None:
    with store.begin() as session:
        banks.create_bank(session, "other", actor="x")
    _add(store, [NewEntry((_pdq(1),))])
    summary, _ = _add(store, [NewEntry((_pdq(1),))], bank="other")
    assert summary.added == 1
    assert _counts(store) == (2, 2)


def test_missing_signals_are_attached_to_the_existing_entry(store: Store, bank: str) -> None:
    _, (first,) = _add(store, [NewEntry((_pdq(1),))])
    summary, (result,) = _add(
        store,
        [NewEntry((_pdq(1), Signal("md5", MD5), Signal("sha256", SHA)))],
        options=AddOptions(audit_each=True),
    )
    assert summary.extended == 1
    assert result.outcome is Outcome.extended
    assert result.entry_id == first.entry_id
    with store.read() as session:
        entry = entries.get_entry(session, first.entry_id)
        events = history.audit_events(session, entry_id=first.entry_id)
        changes = history.changes_since(session)
    assert sorted(s.type for s in entry.signals) == ["md5", "pdq", "sha256"]
    assert events[0].action == "entry.attach"
    assert [(c.entry_id, c.kind) for c in changes] == [
        (first.entry_id, ChangeKind.add),
        (first.entry_id, ChangeKind.add),
    ]


def test_attaching_within_one_call(store: Store, bank: str) -> None:
    _, results = _add(
        store,
        [NewEntry((_pdq(1),)), NewEntry((_pdq(1), Signal("md5", MD5)))],
    )
    assert [r.outcome for r in results] == [Outcome.added, Outcome.extended]
    assert results[0].entry_id == results[1].entry_id
    assert _counts(store) == (1, 2)


def test_an_item_matching_two_entries_is_present(store: Store, bank: str) -> None:
    _add(store, [NewEntry((_pdq(1),)), NewEntry((Signal("md5", MD5),))])
    _, (result,) = _add(store, [NewEntry((_pdq(1), Signal("md5", MD5)))])
    assert result.outcome is Outcome.present
    assert _counts(store) == (2, 2)


def test_a_withdrawn_item_withdraws_the_existing_entry(store: Store, bank: str) -> None:
    _, (added,) = _add(store, [NewEntry((_pdq(1),), case_ref="C1")])
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    withdrawal = NewEntry(
        (_pdq(1),), status=EntryStatus.withdrawn, withdrawn_at=when, withdraw_reason="gone"
    )
    summary, (result,) = _add(store, [withdrawal])
    assert summary.withdrawn == 1
    assert result.withdrawn and result.outcome is Outcome.present
    with store.read() as session:
        entry = entries.get_entry(session, added.entry_id)
        events = history.audit_events(session, entry_id=added.entry_id)
        changes = history.changes_since(session)
    assert entry.status is EntryStatus.withdrawn
    assert entry.withdrawn_at == when
    assert entry.withdraw_reason == "gone"
    assert entry.case_ref == "C1"
    assert events[0].action == "entry.withdraw"
    assert changes[-1].kind is ChangeKind.status
    # Again: nothing changes, nothing more is logged.
    summary, (result,) = _add(store, [withdrawal])
    assert summary.withdrawn == 0 and not result.withdrawn
    with store.read() as session:
        assert len(history.changes_since(session)) == len(changes)


def test_imports_never_reactivate_a_withdrawn_entry(store: Store, bank: str) -> None:
    _, (added,) = _add(store, [NewEntry((_pdq(1),))])
    with store.begin() as session:
        entries.withdraw_entry(session, added.entry_id, actor="x", reason="consent withdrawn")
    summary, _ = _add(store, [NewEntry((_pdq(1),), status=EntryStatus.active)])
    assert summary.present == 1
    with store.read() as session:
        assert entries.get_entry(session, added.entry_id).status is EntryStatus.withdrawn


def test_new_items_keep_their_status(store: Store, bank: str) -> None:
    until = utcnow() + dt.timedelta(days=3)
    summary, _ = _add(
        store,
        [
            NewEntry((_pdq(1),), status=EntryStatus.withdrawn, withdraw_reason="deleted"),
            NewEntry((_pdq(2),), status=EntryStatus.disabled, disabled_until=until),
            NewEntry((_pdq(3),)),
        ],
    )
    assert summary.added == 3 and summary.withdrawn == 1
    with store.read() as session:
        listed = entries.list_entries(session, "b").entries
    assert [e.status for e in listed] == [
        EntryStatus.withdrawn,
        EntryStatus.disabled,
        EntryStatus.active,
    ]
    assert listed[0].withdraw_reason == "deleted" and listed[0].withdrawn_at is not None
    assert listed[1].disabled_until == until


def test_a_later_duplicate_in_the_same_call_can_withdraw(store: Store, bank: str) -> None:
    summary, results = _add(
        store,
        [NewEntry((_pdq(1),)), NewEntry((_pdq(1),), status=EntryStatus.withdrawn)],
    )
    assert summary.added == 1 and summary.withdrawn == 1
    assert [r.withdrawn for r in results] == [False, True]
    with store.read() as session:
        assert entries.get_entry(session, results[0].entry_id).status is EntryStatus.withdrawn


def test_invalid_records_fail_the_call_unless_skipped(store: Store, bank: str) -> None:
    items: list[NewEntry | Invalid] = [NewEntry((_pdq(1),)), Invalid(7, "bad hash")]
    with pytest.raises(ImportFailed, match="line 7: bad hash") as raised:
        _add(store, items)
    assert raised.value.line == 7
    assert _counts(store) == (0, 0)
    skipped: list[Invalid] = []
    summary, _ = _add(store, items, options=AddOptions(skip_invalid=True), on_skip=skipped.append)
    assert summary.skipped == 1 and summary.added == 1
    assert skipped == [Invalid(7, "bad hash")]


def test_adding_to_a_missing_bank(store: Store) -> None:
    with pytest.raises(NotFound), store.begin() as session:
        ingest.add_entries(session, "nope", [NewEntry((_pdq(1),))], actor="x")


def test_new_entry_validation() -> None:
    with pytest.raises(InvalidArgument):
        NewEntry(())
    with pytest.raises(InvalidArgument):
        NewEntry((_pdq(1),), status="lost")
    with pytest.raises(InvalidArgument):
        NewEntry((_pdq(1),), withdrawn_at=dt.datetime(2024, 1, 1))
    assert NewEntry((_pdq(1), _pdq(1), _pdq(2))).signals == (_pdq(1), _pdq(2))
    assert NewEntry((_pdq(1),), status="Withdrawn").status is EntryStatus.withdrawn


def test_status_changes_are_audited_and_logged(store: Store, bank: str) -> None:
    _, (added,) = _add(store, [NewEntry((_pdq(1),))])
    entry_id = added.entry_id
    until = utcnow() + dt.timedelta(days=1)
    with store.begin() as session:
        disabled = entries.disable_entry(session, entry_id, actor="a", reason="review", until=until)
    assert disabled.changed and disabled.previous is EntryStatus.active
    assert disabled.entry.status is EntryStatus.disabled
    assert disabled.entry.disabled_until == until
    with store.begin() as session:
        again = entries.disable_entry(session, entry_id, actor="a", reason="review", until=until)
        enabled = entries.enable_entry(session, entry_id, actor="b")
        withdrawn = entries.withdraw_entry(session, entry_id, actor="c", reason="consent")
    assert not again.changed
    assert enabled.entry.status is EntryStatus.active and enabled.entry.disabled_until is None
    assert withdrawn.entry.withdraw_reason == "consent"
    assert withdrawn.entry.withdrawn_at is not None
    with store.read() as session:
        events = history.audit_events(session, entry_id=entry_id)
        changes = history.changes_since(session)
    assert [(e.action, e.actor) for e in reversed(events)] == [
        ("entry.disable", "a"),
        ("entry.enable", "b"),
        ("entry.withdraw", "c"),
    ]
    assert events[-1].details["reason"] == "review"
    assert [c.kind for c in changes] == [
        ChangeKind.add,
        ChangeKind.status,
        ChangeKind.status,
        ChangeKind.status,
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)


def test_status_change_errors(store: Store, bank: str) -> None:
    _, (added,) = _add(store, [NewEntry((_pdq(1),))])
    with pytest.raises(NotFound), store.begin() as session:
        entries.withdraw_entry(session, 999_999, actor="a", reason="x")
    with pytest.raises(InvalidArgument), store.begin() as session:
        entries.withdraw_entry(session, added.entry_id, actor="a", reason=" ")
    with pytest.raises(InvalidArgument, match="past"), store.begin() as session:
        entries.disable_entry(
            session, added.entry_id, actor="a", reason="x", until=utcnow() - dt.timedelta(1)
        )


def test_list_pages_and_filters(store: Store, bank: str) -> None:
    _add(store, [NewEntry((_pdq(i),)) for i in range(5)] + [NewEntry((Signal("md5", MD5),))])
    with store.begin() as session:
        first = entries.list_entries(session, "b", limit=4)
        second = entries.list_entries(session, "b", limit=4, after=first.next_after or 0)
        entries.withdraw_entry(session, first.entries[0].id, actor="a", reason="x")
        withdrawn = entries.list_entries(session, "b", status="withdrawn")
        md5 = entries.list_entries(session, "b", signal_type="MD5")
    assert len(first.entries) == 4 and first.next_after == first.entries[-1].id
    assert len(second.entries) == 2 and second.next_after is None
    assert [e.id for e in withdrawn.entries] == [first.entries[0].id]
    assert [e.signals[0].type for e in md5.entries] == ["md5"]
    assert first.entries[0].to_dict()["signals"][0]["quality"] == 90


def test_effective_status() -> None:
    now = utcnow()
    past, future = now - dt.timedelta(1), now + dt.timedelta(1)
    assert entries.effective_status(EntryStatus.disabled, past, now) is EntryStatus.active
    assert entries.effective_status(EntryStatus.disabled, future, now) is EntryStatus.disabled
    assert entries.effective_status(EntryStatus.disabled, None, now) is EntryStatus.disabled
    assert entries.effective_status(EntryStatus.withdrawn, past, now) is EntryStatus.withdrawn


def test_the_change_log_records_every_add(store: Store, bank: str) -> None:
    with store.read() as session:
        start = history.last_change(session)
    _, results = _add(store, [NewEntry((_pdq(i),)) for i in range(4)])
    with store.read() as session:
        changes = history.changes_since(session, start)
        assert history.last_change(session) == changes[-1].seq
        assert history.changes_since(session, changes[1].seq, limit=1) == [changes[2]]
    assert [(c.entry_id, c.kind) for c in changes] == [
        (r.entry_id, ChangeKind.add) for r in results
    ]
    assert all(c.at.tzinfo is not None for c in changes)


def test_a_shared_weak_hash_does_not_make_an_item_present(store: Store, bank: str) -> None:
    """Near-duplicate photos often share a 64-bit aHash; only pdq, md5 and sha256 identify."""
    ahash = Signal("ahash", "43d3e3010110fa3a")
    _, results = _add(
        store,
        [NewEntry((_pdq(1), ahash)), NewEntry((_pdq(2), ahash, Signal("md5", MD5)))],
    )
    assert [r.outcome for r in results] == [Outcome.added, Outcome.added]
    with store.read() as session:
        second = entries.get_entry(session, results[1].entry_id)
    assert sorted(s.type for s in second.signals) == ["md5", "pdq"]  # the aHash stays with #1
    only_weak, _ = _add(store, [NewEntry((ahash,))])
    assert only_weak.present == 1


@pytest.mark.parametrize(
    ("bits", "limit"), [(8, 20_000_000), (1 << 27, 3)], ids=["always-maybe", "limit-reached"]
)
def test_imports_into_an_empty_bank_find_duplicates_however_the_filter_answers(
    store: Store, bank: str, monkeypatch: pytest.MonkeyPatch, bits: int, limit: int
) -> None:
    """Into an empty bank, values stored earlier in the call are remembered in a Bloom filter
    rather than looked up; a saturated filter or one switched off must change nothing."""
    monkeypatch.setattr(ingest._Seen, "BITS", bits)
    monkeypatch.setattr(ingest, "SEEN_LIMIT", limit)
    items = [NewEntry((_pdq(i % 7),)) for i in range(30)]
    items.append(NewEntry((_pdq(3),), status=EntryStatus.withdrawn))
    summary, results = _add(store, items, options=AddOptions(batch_size=4))
    assert (summary.added, summary.present, summary.withdrawn) == (7, 24, 1)
    assert _counts(store) == (7, 7)
    assert len({r.entry_id for r in results}) == 7
