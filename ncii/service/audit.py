"""Verifying the hash-chained audit log: walk it in id order, recompute every hash, and name the
first event that was edited or deleted.

What the chain proves: nobody changed or removed an event without also recomputing every later
hash and the head. Someone with write access to the database can still do that; to catch them
too, keep the head hash ``ncii audit verify`` prints somewhere they cannot reach, and compare.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ncii.service.history import GENESIS, event_hash
from ncii.store.models import AuditChainHead, AuditEvent, Bank, Case, Entry, Takedown

VERIFY_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first break in the chain: which event, and how."""

    event_id: int | None
    kind: str
    """``edited``, ``deleted``, ``head`` (the head record disagrees with the log) or
    ``missing`` (the store holds a bank, case, entry or takedown the log never recorded)."""
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    events: int
    last_id: int | None
    head_hash: str | None
    problem: ChainProblem | None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "events": self.events,
            "last_id": self.last_id,
            "head_hash": self.head_hash,
            "problem": None
            if self.problem is None
            else {
                "event_id": self.problem.event_id,
                "kind": self.problem.kind,
                "message": self.problem.message,
            },
        }


def _ids(first: int, last: int) -> str:
    return f"event {first} was" if first == last else f"events {first}-{last} were"


@dataclass(slots=True)
class _Recorded:
    """What the audit log says was created: every bank, case, entry and takedown the store
    holds must be among it, or rows were deleted and the chain rebuilt (or emptied)."""

    banks: set[int] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)
    takedowns: set[int] = field(default_factory=set)
    entries: Counter[int] = field(default_factory=Counter)
    """Entries added per bank id (one per ``entry.add``, or a summary event's ``added``)."""

    def note(self, row: AuditEvent) -> None:
        details = row.details if isinstance(row.details, dict) else {}
        if row.action == "bank.create" and row.bank_id is not None:
            self.banks.add(row.bank_id)
        elif row.action == "entry.add" and row.bank_id is not None:
            self.entries[row.bank_id] += 1
        elif row.action == "takedown.receive" and isinstance(details.get("takedown"), int):
            self.takedowns.add(details["takedown"])
        if row.action == "case.open" and isinstance(details.get("case"), str):
            self.cases.add(details["case"])
        added = details.get("added")
        if row.action != "entry.add" and row.bank_id is not None and _count(added):
            self.entries[row.bank_id] += added


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def verify_chain(session: Session) -> ChainReport:
    """Check every audit event's hash, then its link, then the head; stop at the first break.
    An intact chain must then account for what the store holds (:func:`_unrecorded`): an
    emptied log beside banks and entries is not intact."""
    previous_hash, previous_id, count = GENESIS, None, 0
    recorded = _Recorded()

    def report(problem: ChainProblem | None) -> ChainReport:
        return ChainReport(count, previous_id, previous_hash if count else None, problem)

    rows = session.execute(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=VERIFY_BATCH)
    ).scalars()
    for row in rows:
        count += 1
        # The row's own hash first: a row moved to another id (ids swapped) or edited
        # without recomputing is named itself, not the intact row before it.
        expected = event_hash(
            row.prev_hash,
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            bank_id=row.bank_id,
            entry_id=row.entry_id,
            details=row.details,
        )
        if row.row_hash != expected and row.prev_hash == previous_hash:
            return report(
                ChainProblem(
                    row.id, "edited", f"audit event {row.id} was edited (its hash does not match)"
                )
            )
        if row.prev_hash != previous_hash:
            first_missing = 1 if previous_id is None else previous_id + 1
            if row.id > first_missing:
                return report(
                    ChainProblem(
                        first_missing,
                        "deleted",
                        f"audit {_ids(first_missing, row.id - 1)} deleted "
                        f"(event {row.id} does not follow "
                        + ("the start of the log)" if previous_id is None else f"{previous_id})"),
                    )
                )
            if previous_id is None or row.row_hash != expected:
                return report(
                    ChainProblem(
                        row.id,
                        "edited",
                        f"audit event {row.id} was edited or moved (it does not follow "
                        + (
                            "the start of the log"
                            if previous_id is None
                            else f"event {previous_id}"
                        )
                        + " and its hash does not match)",
                    )
                )
            return report(
                ChainProblem(
                    previous_id,
                    "edited",
                    f"audit event {previous_id} was edited and its hash recomputed "
                    f"(event {row.id} does not follow it)",
                )
            )
        recorded.note(row)
        previous_hash, previous_id = row.row_hash, row.id
    head = session.get(AuditChainHead, 1)
    if head is None:
        if count:
            return report(ChainProblem(None, "head", "the audit chain's head record is missing"))
        return report(_unrecorded(session, recorded, empty=True))
    if previous_id is None or head.last_id > previous_id:
        first = 1 if previous_id is None else previous_id + 1
        return report(
            ChainProblem(
                first,
                "deleted",
                f"audit {_ids(first, head.last_id)} deleted "
                f"(the chain head records event {head.last_id})",
            )
        )
    if head.last_id < previous_id or head.last_hash != previous_hash:
        return report(
            ChainProblem(
                previous_id,
                "head",
                f"the audit chain's head (event {head.last_id}) does not match the newest "
                f"event {previous_id}",
            )
        )
    return report(_unrecorded(session, recorded, empty=False))


def _unrecorded(session: Session, recorded: _Recorded, *, empty: bool) -> ChainProblem | None:
    """The first bank, case, entry count or takedown of the store the log does not account
    for: a log emptied (or cut and re-chained) while the data stayed."""
    if empty:
        held = {
            "banks": session.scalar(select(func.count()).select_from(Bank)) or 0,
            "cases": session.scalar(select(func.count()).select_from(Case)) or 0,
            "entries": session.scalar(select(func.count()).select_from(Entry)) or 0,
            "takedowns": session.scalar(select(func.count()).select_from(Takedown)) or 0,
        }
        if any(held.values()):
            what = ", ".join(
                f"{n:,} {kind if n != 1 else kind[:-1]}" for kind, n in held.items() if n
            )
            return ChainProblem(
                None, "missing", f"the audit log is empty but the store holds {what}"
            )
        return None
    for bank_id, name in session.execute(select(Bank.id, Bank.name).order_by(Bank.id)):
        if bank_id not in recorded.banks:
            return ChainProblem(
                None, "missing", f"bank {name} (id {bank_id}) has no bank.create audit event"
            )
    for number in session.scalars(select(Case.number).order_by(Case.id)):
        if number not in recorded.cases:
            return ChainProblem(None, "missing", f"case {number} has no case.open audit event")
    for takedown_id in session.scalars(select(Takedown.id).order_by(Takedown.id)):
        if takedown_id not in recorded.takedowns:
            return ChainProblem(
                None, "missing", f"takedown {takedown_id} has no takedown.receive audit event"
            )
    held_entries = session.execute(
        select(Entry.bank_id, func.count()).group_by(Entry.bank_id).order_by(Entry.bank_id)
    )
    for bank_id, entries in held_entries:
        if entries > recorded.entries[bank_id]:
            return ChainProblem(
                None,
                "missing",
                f"bank id {bank_id} holds {entries:,} entries but the audit log records "
                f"{recorded.entries[bank_id]:,} added",
            )
    return None
