"""The audit trail (who did what, for people) and the change log (what changed, for the
matching index, which follows it by sequence number)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from ncii.store.models import AuditChainHead, AuditEvent, Change, ChangeKind, utcnow

CHANGE_LOG_LOCK = 0x6E636969
"""PostgreSQL advisory lock key ("ncii") serialising appends to the change log and to the
audit chain (one key for both: a transaction takes it once, in whichever order it writes them,
so two writers can never each hold one and wait for the other)."""
GENESIS = "0" * 64
"""The ``prev_hash`` of the first audit event."""


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    seq: int
    at: dt.datetime
    bank_id: int
    entry_id: int | None
    kind: ChangeKind


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: dt.datetime
    actor: str
    action: str
    bank_id: int | None
    entry_id: int | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "bank_id": self.bank_id,
            "entry_id": self.entry_id,
            "details": self.details,
        }


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    bank_id: int | None = None,
    entry_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Record one audit event in the caller's transaction."""
    append_audit(
        session,
        [
            {
                "at": at or utcnow(),
                "actor": actor,
                "action": action,
                "bank_id": bank_id,
                "entry_id": entry_id,
                "details": details or {},
            }
        ],
    )


def event_hash(
    prev_hash: str,
    *,
    id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    bank_id: int | None,
    entry_id: int | None,
    details: Any,
) -> str:
    """The chain hash of one audit event: SHA-256 of the previous event's hash and this one's
    content as canonical JSON (version 1; migration 0003 has a frozen copy)."""
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    payload = json.dumps(
        [
            id,
            at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            actor,
            action,
            bank_id,
            entry_id,
            details,
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def append_audit(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Append audit events (``at, actor, action, bank_id, entry_id, details``), chained, in
    order, in the caller's transaction: the one way rows enter ``audit_events``.

    Holds the change-log lock until the transaction ends (PostgreSQL; SQLite writers are
    serialised already), so chain order is commit order. Rows are numbered here, after the
    chain head's, so a gap in the ids is a deleted row; ``details`` are stored as they read
    back from JSON, so the hash verifies later.
    """
    if not events:
        return
    lock_change_log(session)
    head = session.execute(select(AuditChainHead.last_id, AuditChainHead.last_hash)).first()
    last = session.execute(
        select(AuditEvent.id, AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    # Chain from the head, not the newest row: deleted newest rows must stay visible.
    previous = head.last_hash if head else (last.row_hash if last else GENESIS)
    next_id = max(head.last_id if head else 0, last.id if last else 0) + 1
    rows = []
    for event in events:
        row = {
            "id": next_id,
            "at": event.get("at") or utcnow(),
            "actor": event["actor"],
            "action": event["action"],
            "bank_id": event.get("bank_id"),
            "entry_id": event.get("entry_id"),
            "details": json.loads(json.dumps(dict(event.get("details") or {}))),
        }
        row["prev_hash"] = previous
        row["row_hash"] = previous = event_hash(
            previous,
            id=row["id"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            bank_id=row["bank_id"],
            entry_id=row["entry_id"],
            details=row["details"],
        )
        rows.append(row)
        next_id += 1
    session.execute(insert(AuditEvent), rows)
    values = {"last_id": rows[-1]["id"], "last_hash": previous}
    if head is None:
        session.execute(insert(AuditChainHead).values(id=1, **values))
    else:
        session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(**values))


def lock_change_log(session: Session) -> None:
    """Serialise writers of the change log until the transaction ends, so that ``seq`` order is
    commit order and a reader never skips a row that commits late.

    SQLite needs nothing: its write transactions are serialised already. Call this as the
    last step of a transaction, to hold the lock briefly.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOG_LOCK})


def log_changes(
    session: Session,
    changes: Iterable[tuple[int, int | None, ChangeKind]],
    *,
    at: dt.datetime | None = None,
) -> None:
    """Append ``(bank_id, entry_id, kind)`` rows to the change log, in order."""
    rows = [
        {"at": at or utcnow(), "bank_id": bank_id, "entry_id": entry_id, "kind": kind}
        for bank_id, entry_id, kind in changes
    ]
    if rows:
        lock_change_log(session)
        session.execute(insert(Change), rows)


def log_changes_from(
    session: Session, query: Select[Any], *, kind: ChangeKind, at: dt.datetime | None = None
) -> None:
    """Append one change per row of ``query`` (selecting ``bank_id, entry_id``), server-side.

    Not sorted: the rows commit together, so their order among themselves does not matter
    to a reader, and sorting a million rows would cost seconds.
    """
    lock_change_log(session)
    rows = query.subquery()
    session.execute(
        insert(Change).from_select(
            ["at", "bank_id", "entry_id", "kind"],
            select(
                literal(at or utcnow(), Change.at.type),
                rows.c.bank_id,
                rows.c.entry_id,
                literal(kind, Change.kind.type),
            ),
        )
    )


def changes_since(session: Session, seq: int = 0, *, limit: int = 10_000) -> list[ChangeRecord]:
    """Change-log rows after ``seq``, oldest first (at most ``limit``)."""
    rows = session.execute(
        select(Change.seq, Change.at, Change.bank_id, Change.entry_id, Change.kind)
        .where(Change.seq > seq)
        .order_by(Change.seq)
        .limit(limit)
    )
    return [ChangeRecord(*row) for row in rows]


def last_change(session: Session) -> int:
    """The newest sequence number (0 for an empty log)."""
    return session.scalar(select(func.coalesce(func.max(Change.seq), 0))) or 0


def audit_events(
    session: Session,
    *,
    bank_id: int | None = None,
    entry_id: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """The newest audit events, newest first, optionally for one bank or entry."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if bank_id is not None:
        query = query.where(AuditEvent.bank_id == bank_id)
    if entry_id is not None:
        query = query.where(AuditEvent.entry_id == entry_id)
    return [
        AuditRecord(e.id, e.at, e.actor, e.action, e.bank_id, e.entry_id, dict(e.details))
        for e in session.scalars(query)
    ]
