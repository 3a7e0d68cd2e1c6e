"""Verifying the hash-chained audit log: walk it in id order, recompute every hash, and name the
first event that was edited or deleted.

What the chain proves: nobody changed or removed an event without also recomputing every later
hash and the head. Someone with write access to the database can still do that; to catch them
too, keep the head hash ``ncii audit verify`` prints somewhere they cannot reach, and compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ncii.service.history import GENESIS, event_hash
from ncii.store.models import AuditChainHead, AuditEvent

VERIFY_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first break in the chain: which event, and how."""

    event_id: int | None
    kind: str
    """``edited``, ``deleted`` or ``head`` (the head record disagrees with the log)."""
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


def verify_chain(session: Session) -> ChainReport:
    """Check every audit event's hash and link, then the head; stop at the first break."""
    previous_hash, previous_id, count = GENESIS, None, 0

    def report(problem: ChainProblem | None) -> ChainReport:
        return ChainReport(count, previous_id, previous_hash if count else None, problem)

    rows = session.execute(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=VERIFY_BATCH)
    ).scalars()
    for row in rows:
        count += 1
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
            if previous_id is None:
                return report(ChainProblem(row.id, "edited", f"audit event {row.id} was edited"))
            return report(
                ChainProblem(
                    previous_id,
                    "edited",
                    f"audit event {previous_id} was edited and its hash recomputed "
                    f"(event {row.id} does not follow it)",
                )
            )
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
        if row.row_hash != expected:
            return report(
                ChainProblem(
                    row.id, "edited", f"audit event {row.id} was edited (its hash does not match)"
                )
            )
        previous_hash, previous_id = row.row_hash, row.id
    head = session.get(AuditChainHead, 1)
    if head is None:
        if count:
            return report(ChainProblem(None, "head", "the audit chain's head record is missing"))
        return report(None)
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
    return report(None)
