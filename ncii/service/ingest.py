"""Adding entries in bulk: the one way entries are written, for ``ncii add`` and for imports
alike. In batches, in the caller's transaction, idempotent (a value already in the bank makes
its item "already there"), with every change in the change log and the audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, select, text, update
from sqlalchemy.orm import Session

from ncii.errors import ImportFailed
from ncii.service import history
from ncii.service.banks import get_bank, validate_actor
from ncii.service.entries import (
    AddOptions,
    AddResult,
    AddSummary,
    Invalid,
    NewEntry,
    Outcome,
)
from ncii.signals import SIGNAL_TYPES, Signal
from ncii.store import bulk
from ncii.store.models import (
    ChangeKind,
    Entry,
    EntrySignal,
    EntryStatus,
    VideoFrame,
    utcnow,
)

IDENTITY_TYPES = frozenset(
    name for name, kind in SIGNAL_TYPES.items() if kind.exact or kind.bits >= 256
)
"""Signal types that identify an item (pdq, md5, sha256): an item sharing one of these with an
entry is that entry. The 64-bit imagehash family does not: near-duplicate photos (a blurred
copy, say) often share an aHash or wHash value, which then stays with the first entry."""

SEEN_LIMIT = 20_000_000
"""Past this many values stored into a bank that started empty, :class:`_Seen` answers "maybe"
too often (14%) to save anything, and values are looked up like in any other import."""


class _Seen:
    """The signal values stored by one call, as a Bloom filter with one hash function: 16 MiB
    whatever the size of the import, wrong ("maybe there") for ~0.7% of values per million
    stored. Only "maybe" values are looked up in the database, so a false answer costs a
    lookup, never a duplicate."""

    BITS = 1 << 27

    def __init__(self) -> None:
        self.bits = bytearray(self.BITS >> 3)
        self.count = 0

    def add_all(self, keys: Iterable[tuple[str, str]]) -> None:
        bits, mask, added = self.bits, self.BITS - 1, 0
        for key in keys:
            slot = hash(key) & mask
            bits[slot >> 3] |= 1 << (slot & 7)
            added += 1
        self.count += added

    def __contains__(self, key: tuple[str, str]) -> bool:
        slot = hash(key) & (self.BITS - 1)
        return bool(self.bits[slot >> 3] & (1 << (slot & 7)))


_entries = Entry.__table__
_signals = EntrySignal.__table__
_frames = VideoFrame.__table__


def add_entries(
    session: Session,
    bank_name: str,
    items: Iterable[NewEntry | Invalid],
    *,
    actor: str,
    options: AddOptions | None = None,
    on_result: Callable[[AddResult], None] | None = None,
    on_skip: Callable[[Invalid], None] | None = None,
) -> AddSummary:
    """Store ``items`` in the bank, in the caller's transaction, streaming in batches.

    An item sharing an identity signal (see :data:`IDENTITY_TYPES`) with an entry of the bank
    is "present": nothing new is stored for it, except that its signals the bank lacks are
    attached to that entry ("extended") and a withdrawn item withdraws that entry. Adds never
    re-activate or disable existing entries.

    An :class:`Invalid` record raises :class:`~ncii.errors.ImportFailed` (the caller rolls back,
    leaving the bank as it was) unless ``options.skip_invalid``.
    """
    options = options or AddOptions()
    actor = validate_actor(actor)
    bank = get_bank(session, bank_name, lock=True)
    now = utcnow()
    floor = session.scalar(select(func.coalesce(func.max(Entry.id), 0))) or 0
    counts: dict[str, int] = defaultdict(int)
    later_changes: list[tuple[int, int | None, ChangeKind]] = []

    def batches() -> Iterator[list[NewEntry]]:
        batch: list[NewEntry] = []
        for item in items:
            if isinstance(item, Invalid):
                if not options.skip_invalid:
                    raise ImportFailed(item.line, item.reason, unit=item.unit)
                counts["skipped"] += 1
                if on_skip is not None:
                    on_skip(item)
                continue
            batch.append(item)
            if len(batch) >= options.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    keep_all = on_result is not None or options.audit_each
    # Into an empty bank, remember what this call stored instead of looking every value up:
    # the first big import into a new bank is the one that must be fast.
    seen: _Seen | None = None
    if session.scalar(select(exists().where(Entry.bank_id == bank.id))) is False:
        seen = _Seen()
    audit_rows: list[dict[str, Any]] = []  # appended to the chained audit log at the end
    with bulk.bulk_cache(session):
        for batch in batches():
            done = _write_batch(
                session, bank.id, batch, now=now, actor=actor, keep_all=keep_all, seen=seen
            )
            if seen is not None and seen.count > SEEN_LIMIT:
                seen = None  # too full to be useful: look values up from here on
            counts["added"] += done.added
            counts["present"] += done.present
            counts["extended"] += done.extended
            for result in done.results:
                if result.withdrawn:
                    counts["withdrawn"] += 1
                if result.withdrawn and result.outcome is not Outcome.added:
                    # An existing entry (or one added earlier in this call) was withdrawn.
                    audit_rows.append(_withdraw_audit(result, bank.id, actor, now))
                    later_changes.append((bank.id, result.entry_id, ChangeKind.status))
                if result.outcome is Outcome.extended:
                    later_changes.append((bank.id, result.entry_id, ChangeKind.add))
                if options.audit_each and result.outcome is not Outcome.present:
                    audit_rows.append(_add_audit(result, bank.id, actor, now))
                if on_result is not None:
                    on_result(result)

    summary = AddSummary(bank=bank.name, **counts)
    if summary.added:
        history.log_changes_from(
            session,
            select(Entry.bank_id, Entry.id.label("entry_id")).where(
                Entry.bank_id == bank.id, Entry.id > floor
            ),
            kind=ChangeKind.add,
            at=now,
        )
    history.log_changes(session, later_changes, at=now)
    history.append_audit(session, audit_rows)
    if not options.audit_each:
        history.audit(
            session,
            actor=actor,
            action=options.audit_action,
            bank_id=bank.id,
            details=options.audit_details | summary.to_dict(),
            at=now,
        )
    return summary


@dataclass(slots=True)
class _BatchDone:
    results: list[AddResult]
    """Every item's result if asked for, else only those that withdrew or extended."""
    added: int
    present: int
    extended: int


def _write_batch(
    session: Session,
    bank_id: int,
    batch: Sequence[NewEntry],
    *,
    now: dt.datetime,
    actor: str,
    keep_all: bool,
    seen: _Seen | None,
) -> _BatchDone:
    """Plan which items are new, present or extend an entry, then write them in bulk.

    New entries are planned as parallel lists (item, signals to store, index of the item that
    withdraws it) indexed by their place in ``new``; ``plan`` holds, per item, its outcome and
    its target: an index in ``new`` or an existing entry id.
    """
    existing, variant_rows = _existing_signals(session, bank_id, batch, seen)
    displaced: list[int] = []  # variant rows giving way to a reported picture's own hash
    with_frames = any(item.frames for item in batch)
    # Entries of the bank this batch may attach video frames to, that have frames already.
    framed = _entries_with_frames(session, set(existing.values())) if with_frames else set()
    new: list[NewEntry] = []
    new_signals: list[list[Signal]] = []
    new_frames: list[tuple[Any, ...]] = []  # video frames of each new entry
    frame_attach: dict[int, tuple[Any, ...]] = {}  # existing entry id -> frames it gains
    new_withdrawn_by: list[int | None] = []
    claims: dict[tuple[str, str], int] = {}  # signal -> index in new
    attach: list[tuple[int, Signal]] = []  # (existing entry id, signal)
    withdraw: dict[int, int] = {}  # existing entry id -> index of the item withdrawing it
    plan: list[tuple[Outcome, bool, int]] = []  # outcome, target is new, target
    notable: list[int] = []  # items that extend or withdraw
    present_count = extended_count = 0
    # Enum attribute access is slow in a hot loop: look the members up once.
    withdrawn_status, added, present = EntryStatus.withdrawn, Outcome.added, Outcome.present
    extended = Outcome.extended

    for index, item in enumerate(batch):
        withdrawing = item.status is withdrawn_status
        signals = item.signals
        if len(signals) == 1 and not item.frames and not item.variants:  # fast: bulk imports
            signal = signals[0]
            key = (signal.type, signal.value)
            if variant_rows and key in variant_rows:
                displaced.append(variant_rows.pop(key))
            target = existing.get(key) if existing else None
            if target is not None:
                if withdrawing:
                    withdraw.setdefault(target, index)
                    notable.append(index)
                plan.append((present, False, target))
                present_count += 1
                continue
            target = claims.get(key)
            if target is not None:
                if withdrawing and new_withdrawn_by[target] is None:
                    new_withdrawn_by[target] = index
                    notable.append(index)
                plan.append((present, True, target))
                present_count += 1
                continue
            claims[key] = target = len(new)
            plan.append((added, True, target))
            new.append(item)
            new_signals.append([signal])
            new_frames.append(())
            new_withdrawn_by.append(index if withdrawing else None)
            continue
        keys = [(s.type, s.value) for s in signals]
        displaced.extend(variant_rows.pop(k) for k in keys if k in variant_rows)
        identity = _identity(signals, keys)
        found = sorted({existing[k] for k in identity if k in existing})
        claimed = sorted({claims[k] for k in identity if k in claims})
        # Signals not yet in the bank (a weak hash shared with another photo stays with it).
        missing = [
            s for s, k in zip(signals, keys, strict=True) if k not in existing and k not in claims
        ]
        # A video's frames go to the entry it turns out to be when that entry has none yet.
        gains_frames = bool(item.frames) and (
            (bool(found) and found[0] not in framed)
            or (not found and bool(claimed) and not new_frames[claimed[0]])
        )
        outcome = extended if missing or gains_frames else present
        if found or claimed:
            if missing or withdrawing or gains_frames:
                notable.append(index)
            if outcome is extended:
                extended_count += 1
            else:
                present_count += 1
        if found:
            target = found[0]
            for signal in missing:
                attach.append((target, signal))
                existing[signal.type, signal.value] = target
            if gains_frames:
                frame_attach[target] = item.frames
                framed.add(target)
            if withdrawing:
                withdraw.setdefault(target, index)
            plan.append((outcome, False, target))
        elif claimed:
            target = claimed[0]
            new_signals[target].extend(missing)
            if gains_frames:
                new_frames[target] = item.frames
            claims.update(((s.type, s.value), target) for s in missing)
            if withdrawing and new_withdrawn_by[target] is None:
                new_withdrawn_by[target] = index
            plan.append((outcome, True, target))
        else:
            target = len(new)
            claims.update(((s.type, s.value), target) for s in missing)
            plan.append((added, True, target))
            new.append(item)
            new_signals.append(missing)
            new_frames.append(item.frames)
            new_withdrawn_by.append(index if withdrawing else None)

    # Variants go with the entry each item is (or turned out to be), unless their value is in
    # the bank already; an existing entry gaining some is extended.
    variant_plan: list[tuple[bool, int, Signal, str]] = []  # target is new, target, hash, label
    for index, item in enumerate(batch):
        if not item.variants:
            continue
        outcome, is_new, target = plan[index]
        gained = False
        for variant in item.variants:
            key = ("pdq", variant.value)
            if key in existing or key in claims or key in variant_rows:
                continue
            variant_rows[key] = -1  # planned
            variant_plan.append(
                (is_new, target, Signal("pdq", variant.value, variant.quality), variant.label)
            )
            gained = True
        if gained and not is_new and outcome is present:
            plan[index] = (extended, False, target)
            present_count -= 1
            extended_count += 1
            notable.append(index)

    if displaced:
        _delete_signal_rows(session, displaced)
    new_ids = _insert_entries(session, bank_id, batch, new, new_withdrawn_by, now=now, actor=actor)
    signal_rows = [
        (entry_id, bank_id, signal.type, signal.value, signal.quality)
        for entry_id, signals in zip(new_ids, new_signals, strict=True)
        for signal in signals
    ]
    signal_rows.extend(
        (entry_id, bank_id, signal.type, signal.value, signal.quality)
        for entry_id, signal in attach
    )
    if signal_rows:
        bulk.insert_rows(session, _signals, _SIGNAL_COLUMNS, signal_rows)
        if seen is not None:
            seen.add_all((row[2], row[3]) for row in signal_rows)
    if variant_plan:
        variant_entries = {
            new_ids[target] if is_new else target for is_new, target, _, _ in variant_plan
        }
        bulk.insert_rows(
            session,
            _signals,
            _VARIANT_COLUMNS,
            [
                (new_ids[target] if is_new else target, bank_id, "pdq", v.value, v.quality, label)
                for is_new, target, v, label in variant_plan
            ],
        )
        if seen is not None:
            seen.add_all(("pdq", v.value) for _, _, v, _ in variant_plan)
    else:
        variant_entries = set()
    if with_frames:
        frame_rows = [
            (entry_id, bank_id, f.index, f.timestamp, f.pdq, f.quality, f.unbarred)
            for entry_id, frames in [*zip(new_ids, new_frames, strict=True), *frame_attach.items()]
            for f in frames
        ]
        if frame_rows:
            bulk.insert_rows(session, _frames, _FRAME_COLUMNS, frame_rows)
    withdrawn = _withdraw_existing(session, {i: batch[n] for i, n in withdraw.items()}, now=now)
    gained = {entry_id for entry_id, _ in attach} | set(frame_attach)
    gained |= variant_entries - set(new_ids)
    extended_ids = sorted(gained - withdrawn)
    if extended_ids:
        session.connection().execute(
            update(_entries).where(_entries.c.id == bindparam("entry_id")).values(updated_at=now),
            [{"entry_id": entry_id} for entry_id in extended_ids],
        )

    def result(index: int) -> AddResult:
        outcome, is_new, target = plan[index]
        if is_new:
            entry_id = new_ids[target]
            did_withdraw = new_withdrawn_by[target] == index
        else:
            entry_id = target
            did_withdraw = entry_id in withdrawn and withdraw[entry_id] == index
        return AddResult(outcome, entry_id, batch[index], did_withdraw)

    if keep_all:
        indices: Iterable[int] = range(len(batch))
    else:  # only what the caller acts on: extensions and withdrawals (of new entries too)
        indices = sorted(set(notable).union(n for n in new_withdrawn_by if n is not None))
    results = [result(index) for index in indices]
    return _BatchDone(results, len(new), present_count, extended_count)


def _identity(signals: Sequence[Signal], keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The keys that say which entry an item is: its identity signals of usable quality.

    A low-quality PDQ (below 50, Meta's rule: a blank or tiny picture, all zeros at quality 0)
    is shared by unrelated files, so it never makes two files one entry; nor does anything
    else marked low quality. With no identity signal, the item's other usable signals are
    used; with none at all, every key (an item of one weak hash is the entry holding it)."""
    usable = [k for s, k in zip(signals, keys, strict=True) if not s.low_quality]
    return [k for k in usable if k[0] in IDENTITY_TYPES] or usable or keys


def _existing_signals(
    session: Session, bank_id: int, batch: Sequence[NewEntry], seen: _Seen | None
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Which of the batch's signal and variant values the bank holds already: the entry of
    each picture's own hash, and the row id of each variant hash (a variant never identifies
    an entry).

    ``seen``, when given, has every value stored in the bank (it was empty when this call
    began): only values it may contain are looked up, so usually none.
    """
    wanted: dict[str, set[str]] = defaultdict(set)
    for item in batch:
        for signal in item.signals:
            if seen is None or (signal.type, signal.value) in seen:
                wanted[signal.type].add(signal.value)
        for variant in item.variants:
            if seen is None or ("pdq", variant.value) in seen:
                wanted["pdq"].add(variant.value)
    found: dict[tuple[str, str], int] = {}
    variants: dict[tuple[str, str], int] = {}
    for signal_type, values in wanted.items():
        for value, entry_id, row_id, variant in bulk.lookup_values(
            session,
            "SELECT value, entry_id, id, variant FROM entry_signals"
            " WHERE signal_type = {p} AND bank_id = {p} AND value IN ({values})",
            (signal_type, bank_id),
            sorted(values),
        ):
            if variant is None:
                found[signal_type, value] = entry_id
            else:
                variants[signal_type, value] = row_id
    return found, variants


def _delete_signal_rows(session: Session, row_ids: Sequence[int]) -> None:
    """Delete signal rows by id (variants displaced by a picture's own hash). Matchers still
    holding them in their index drop them when resolving, as the rows are gone."""
    rows = sorted(set(row_ids))
    for start in range(0, len(rows), 1_000):
        session.connection().execute(
            _signals.delete().where(_signals.c.id.in_(rows[start : start + 1_000]))
        )


_ENTRY_COLUMNS = (
    "id",
    "bank_id",
    "status",
    "disabled_until",
    "withdrawn_at",
    "withdraw_reason",
    "external_id",
    "case_ref",
    "added_by",
    "note",
    "created_at",
    "updated_at",
)
_SIGNAL_COLUMNS = ("entry_id", "bank_id", "signal_type", "value", "quality")
_VARIANT_COLUMNS = (*_SIGNAL_COLUMNS, "variant")
_FRAME_COLUMNS = ("entry_id", "bank_id", "frame", "timestamp", "value", "quality", "unbarred")


def _entries_with_frames(session: Session, entry_ids: set[int]) -> set[int]:
    """Which of ``entry_ids`` have video frames stored."""
    if not entry_ids:
        return set()
    return {
        row[0]
        for row in bulk.lookup_values(
            session,
            "SELECT DISTINCT entry_id FROM video_frames WHERE entry_id IN ({values})",
            (),
            sorted(entry_ids),
        )
    }


def _insert_entries(
    session: Session,
    bank_id: int,
    batch: Sequence[NewEntry],
    new: Sequence[NewEntry],
    withdrawn_by: Sequence[int | None],
    *,
    now: dt.datetime,
    actor: str,
) -> list[int]:
    if not new:
        return []
    ids = _allocate_entry_ids(session, len(new))
    stamp = bulk.db_value(session, _entries.c.created_at, now)

    def when(value: dt.datetime | None) -> Any:
        return bulk.db_value(session, _entries.c.withdrawn_at, value)

    rows = []
    active, disabled, withdrawn = EntryStatus.active, EntryStatus.disabled, EntryStatus.withdrawn
    for entry_id, item, withdrawing_index in zip(ids, new, withdrawn_by, strict=True):
        status = item.status
        if status is active and withdrawing_index is None:  # the common case, fast
            rows.append(
                (entry_id, bank_id, "active", None, None, None, item.external_id, item.case_ref,
                 actor, item.note, stamp, stamp)
            )  # fmt: skip
            continue
        disabled_until = when(item.disabled_until) if status is disabled else None
        withdrawn_at = withdraw_reason = None
        if withdrawing_index is not None:
            withdrawing = batch[withdrawing_index]
            status = withdrawn
            disabled_until = None
            withdrawn_at = when(withdrawing.withdrawn_at) or stamp
            withdraw_reason = withdrawing.withdraw_reason or "added as withdrawn"
        rows.append(
            (
                entry_id,
                bank_id,
                status.value,
                disabled_until,
                withdrawn_at,
                withdraw_reason,
                item.external_id,
                item.case_ref,
                actor,
                item.note,
                stamp,
                stamp,
            )
        )
    bulk.insert_rows(session, _entries, _ENTRY_COLUMNS, rows)
    return ids


def _allocate_entry_ids(session: Session, count: int) -> list[int]:
    """Ids for ``count`` new entries, so that their signals can be inserted in bulk with them
    (far faster than ``INSERT … RETURNING`` row by row).

    PostgreSQL draws them from the table's sequence. On SQLite the caller holds the database
    write lock, so the next ids after the highest ever used (``AUTOINCREMENT`` keeps it in
    ``sqlite_sequence``) are free.
    """
    if session.get_bind().dialect.name == "postgresql":
        # The sequence is named once: pg_get_serial_sequence() per row costs five times more.
        sequence = session.scalar(text("SELECT pg_get_serial_sequence('entries', 'id')"))
        return list(
            session.scalars(
                text("SELECT nextval(CAST(:seq AS regclass)) FROM generate_series(1, :n)"),
                {"seq": sequence, "n": count},
            )
        )
    last = session.scalar(
        text(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0),"
            " coalesce((SELECT max(id) FROM entries), 0))"
        )
    )
    return list(range(last + 1, last + 1 + count))


def _withdraw_existing(
    session: Session, withdraw: dict[int, NewEntry], *, now: dt.datetime
) -> set[int]:
    """Withdraw the existing entries named by withdrawn items; returns those that changed."""
    if not withdraw:
        return set()
    ids = sorted(withdraw)
    statuses = {
        entry_id: status
        for entry_id, status in session.execute(
            select(_entries.c.id, _entries.c.status).where(_entries.c.id.in_(ids))
        )
    }
    changing = [i for i in ids if statuses.get(i) is not EntryStatus.withdrawn]
    if changing:
        session.connection().execute(
            update(_entries)
            .where(_entries.c.id == bindparam("entry_id"))
            .values(
                status=EntryStatus.withdrawn,
                disabled_until=None,
                withdrawn_at=bindparam("at"),
                withdraw_reason=bindparam("reason"),
                updated_at=now,
            ),
            [
                {
                    "entry_id": i,
                    "at": withdraw[i].withdrawn_at or now,
                    "reason": withdraw[i].withdraw_reason or "withdrawn by an import",
                }
                for i in changing
            ],
        )
    return set(changing)


def _add_audit(result: AddResult, bank_id: int, actor: str, now: dt.datetime) -> dict[str, Any]:
    action = "entry.add" if result.outcome is Outcome.added else "entry.attach"
    details: dict[str, Any] = {"signals": [str(s) for s in result.item.signals]}
    if result.item.frames:
        details["video_frames"] = len(result.item.frames)
    if result.item.variants:
        details["pdq_variants"] = len(result.item.variants)
    return {
        "at": now,
        "actor": actor,
        "action": action,
        "bank_id": bank_id,
        "entry_id": result.entry_id,
        "details": details,
    }


def _withdraw_audit(
    result: AddResult, bank_id: int, actor: str, now: dt.datetime
) -> dict[str, Any]:
    return {
        "at": now,
        "actor": actor,
        "action": "entry.withdraw",
        "bank_id": bank_id,
        "entry_id": result.entry_id,
        "details": {
            "reason": result.item.withdraw_reason,
            "source": result.item.where,
            "line": result.item.line,
        },
    }
