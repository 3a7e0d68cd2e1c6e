"""Entries: reported items in a bank, each with one or more signals, and their status.

The types an add takes and returns live here; the adding itself is :mod:`ncii.service.ingest`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ncii.errors import InvalidArgument, NotFound
from ncii.service import history
from ncii.service.banks import get_bank, validate_actor
from ncii.service.jsontext import check_text
from ncii.signals import Signal
from ncii.store.models import (
    TEXT_LENGTH,
    Bank,
    ChangeKind,
    Entry,
    EntrySignal,
    EntryStatus,
    utcnow,
)

if TYPE_CHECKING:
    from ncii.detection import BankHash
    from ncii.signals.vpdq import VpdqFrame

BATCH_SIZE = 5_000
"""Items written per round trip of a bulk add."""
LOOKUP_CHUNK = 2_000
"""Entry ids per ``IN (…)`` when reading their signals."""

_entries = Entry.__table__
_signals = EntrySignal.__table__


@dataclass(slots=True)
class NewEntry:
    """An item to add: its signals and provenance. ``source`` and ``line`` only say where it
    came from in messages (a file path is never stored).

    Not frozen, unlike results: a million are made per big import, and frozen dataclasses
    are several times slower to create. Treat it as immutable all the same.
    """

    signals: tuple[Signal, ...]
    status: EntryStatus = EntryStatus.active
    external_id: str | None = None
    case_ref: str | None = None
    note: str | None = None
    disabled_until: dt.datetime | None = None
    withdrawn_at: dt.datetime | None = None
    withdraw_reason: str | None = None
    source: str | None = None
    line: int | None = None
    frames: tuple[VpdqFrame, ...] = ()
    """A video's vPDQ frame hashes (its file digests are among ``signals``); stored with the
    entry, or attached to the entry it turns out to be if that one has none yet."""
    variants: tuple[BankHash, ...] = ()
    """PDQ hashes of variants of the picture (``ncii.detection``): stored with the entry it
    is or turns out to be, each unless its value is in the bank already."""

    def __post_init__(self) -> None:
        if not self.signals:
            raise InvalidArgument("no signals")
        if self.frames and not isinstance(self.frames, tuple):
            self.frames = tuple(self.frames)
        if self.variants and not isinstance(self.variants, tuple):
            self.variants = tuple(self.variants)
        if len(self.signals) > 1:
            unique: dict[tuple[str, str], Signal] = {}
            for signal in self.signals:
                unique.setdefault((signal.type, signal.value), signal)
            self.signals = tuple(unique.values())
        if self.status.__class__ is not EntryStatus:
            self.status = _status(self.status)
        if self.external_id is not None and len(self.external_id) > TEXT_LENGTH:
            raise InvalidArgument(f"external_id longer than {TEXT_LENGTH} characters")
        if (
            self.note is not None
            or self.case_ref is not None
            or self.external_id is not None
            or self.withdraw_reason is not None
        ):
            _check_texts(self)
        if self.disabled_until is not None and self.disabled_until.tzinfo is None:
            raise InvalidArgument("disabled_until has no time zone")
        if self.withdrawn_at is not None and self.withdrawn_at.tzinfo is None:
            raise InvalidArgument("withdrawn_at has no time zone")

    @property
    def where(self) -> str | None:
        """Where the item came from, for messages: its file, else its line."""
        return self.source or (None if self.line is None else f"line {self.line}")


def _check_texts(item: NewEntry) -> None:
    """Text fields both engines can store (no NUL, UTF-8 only), else an error naming it."""
    joined = (
        f"{item.external_id or ''}{item.case_ref or ''}{item.note or ''}"
        f"{item.withdraw_reason or ''}"
    )
    if joined.isascii() and "\x00" not in joined:
        return  # the usual case, checked at once: this runs a million times per big import
    check_text(item.external_id, "external_id")
    check_text(item.case_ref, "case_ref")
    check_text(item.note, "note")
    check_text(item.withdraw_reason, "withdraw_reason")


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record of an input file that could not be read into a :class:`NewEntry`."""

    line: int
    reason: str
    unit: str = "line"
    """``line``, or ``record`` for the n-th record of a JSON document."""

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.reason}"


class Outcome(StrEnum):
    added = "added"
    """A new entry was created."""
    present = "present"
    """A signal of the item was already in the bank: nothing was stored."""
    extended = "extended"
    """Already in the bank; the item's other signals were attached to that entry."""


@dataclass(frozen=True, slots=True)
class AddResult:
    """What became of one item."""

    outcome: Outcome
    entry_id: int
    item: NewEntry
    withdrawn: bool = False
    """The item withdrew an entry that was not withdrawn before."""


@dataclass(frozen=True, slots=True)
class AddSummary:
    bank: str
    added: int = 0
    present: int = 0
    extended: int = 0
    withdrawn: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "added": self.added,
            "present": self.present,
            "extended": self.extended,
            "withdrawn": self.withdrawn,
            "skipped": self.skipped,
        }


@dataclass(frozen=True, slots=True)
class AddOptions:
    """How ``add_entries`` records what it did.

    ``audit_each``: one audit event per new or extended entry (``ncii add`` of media files);
    otherwise one summary event named ``audit_action`` with ``audit_details`` (imports).
    ``skip_invalid``: skip unreadable records (reported through ``on_skip``) instead of failing.
    """

    skip_invalid: bool = False
    audit_each: bool = False
    audit_action: str = "bank.import"
    audit_details: dict[str, Any] = field(default_factory=dict)
    batch_size: int = BATCH_SIZE


@dataclass(frozen=True, slots=True)
class EntryInfo:
    id: int
    bank: str
    status: EntryStatus
    signals: tuple[Signal, ...]
    external_id: str | None
    case_ref: str | None
    added_by: str | None
    note: str | None
    disabled_until: dt.datetime | None
    withdrawn_at: dt.datetime | None
    withdraw_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    frames: tuple[VpdqFrame, ...] = ()
    """A video entry's vPDQ frame hashes, when the reader asked for them."""
    variants: tuple[BankHash, ...] = ()
    """PDQ hashes of variants of the picture (``ncii.detection``), when the reader asked."""

    def to_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        frames = {"vpdq": [f.to_dict() for f in self.frames]} if self.frames else {}
        if self.variants:
            frames["variants"] = [variant_dict(v) for v in self.variants]
        return {
            "id": self.id,
            "bank": self.bank,
            "status": self.status.value,
            "signals": [_signal_dict(s) for s in self.signals],
            "external_id": self.external_id,
            "case_ref": self.case_ref,
            "added_by": self.added_by,
            "note": self.note,
            "disabled_until": iso(self.disabled_until),
            "withdrawn_at": iso(self.withdrawn_at),
            "withdraw_reason": self.withdraw_reason,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        } | frames


@dataclass(frozen=True, slots=True)
class EntryPage:
    entries: tuple[EntryInfo, ...]
    next_after: int | None
    """Pass as ``after`` for the next page; None on the last page."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    entry: EntryInfo
    previous: EntryStatus
    changed: bool


def variant_dict(variant: BankHash) -> dict[str, Any]:
    """A banked PDQ variant as exports write it: ncii's own detection data, which other tools
    may ignore (the picture's exchangeable hashes are under ``signals``)."""
    return {
        "variant": variant.label,
        "type": "pdq",
        "value": variant.value,
        "quality": variant.quality,
    }


def _signal_dict(signal: Signal) -> dict[str, Any]:
    data: dict[str, Any] = {"type": signal.type, "value": signal.value}
    if signal.quality is not None:
        data["quality"] = signal.quality
    return data


def _status(value: EntryStatus | str) -> EntryStatus:
    try:
        return EntryStatus(str(value).strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in EntryStatus)
        raise InvalidArgument(f"invalid status {value!r} (known: {known})") from None


def effective_status(
    status: EntryStatus, disabled_until: dt.datetime | None, now: dt.datetime
) -> EntryStatus:
    """A disabled entry whose ``disabled_until`` has passed counts as active again."""
    if status is EntryStatus.disabled and disabled_until is not None and disabled_until <= now:
        return EntryStatus.active
    return status


# --- reading ----------------------------------------------------------------------------------


def list_entries(
    session: Session,
    bank_name: str,
    *,
    status: EntryStatus | str | None = None,
    signal_type: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> EntryPage:
    """One page of a bank's entries in id order, optionally of one status or signal type."""
    if limit < 1:
        raise InvalidArgument(f"invalid page size {limit}: expected at least 1")
    bank = get_bank(session, bank_name)
    query = (
        select(Entry).where(Entry.bank_id == bank.id, Entry.id > after).order_by(Entry.id)
    ).limit(limit + 1)
    if status is not None:
        query = query.where(Entry.status == _status(status))
    if signal_type is not None:
        from ncii.signals import get_signal_type

        kind = get_signal_type(signal_type).name
        query = query.where(
            exists().where(EntrySignal.entry_id == Entry.id, EntrySignal.signal_type == kind)
        )
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    signals = signals_of(session, [e.id for e in rows])
    entries = tuple(_info(e, bank.name, signals.get(e.id, ())) for e in rows)
    return EntryPage(entries, rows[-1].id if more and rows else None)


def get_entry(session: Session, entry_id: int) -> EntryInfo:
    row = session.execute(
        select(Entry, Bank.name).join(Bank, Bank.id == Entry.bank_id).where(Entry.id == entry_id)
    ).first()
    if row is None:
        raise NotFound(f"no entry with id {entry_id}")
    entry, bank_name = row
    return _info(entry, bank_name, signals_of(session, [entry.id]).get(entry.id, ()))


def signals_of(session: Session, entry_ids: Sequence[int]) -> dict[int, tuple[Signal, ...]]:
    """Each entry's own signals (no detection variants), in the order they were stored."""
    found: dict[int, list[Signal]] = defaultdict(list)
    for start in range(0, len(entry_ids), LOOKUP_CHUNK):
        rows = session.execute(
            select(
                EntrySignal.entry_id,
                EntrySignal.signal_type,
                EntrySignal.value,
                EntrySignal.quality,
            )
            .where(
                EntrySignal.entry_id.in_(entry_ids[start : start + LOOKUP_CHUNK]),
                EntrySignal.variant.is_(None),
            )
            .order_by(EntrySignal.entry_id, EntrySignal.id)
        )
        for entry_id, kind, value, quality in rows:
            found[entry_id].append(Signal(kind, value, quality))
    return {k: tuple(v) for k, v in found.items()}


def _info(entry: Entry, bank_name: str, signals: tuple[Signal, ...]) -> EntryInfo:
    return EntryInfo(
        id=entry.id,
        bank=bank_name,
        status=EntryStatus(entry.status),
        signals=signals,
        external_id=entry.external_id,
        case_ref=entry.case_ref,
        added_by=entry.added_by,
        note=entry.note,
        disabled_until=entry.disabled_until,
        withdrawn_at=entry.withdrawn_at,
        withdraw_reason=entry.withdraw_reason,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )


# --- status -----------------------------------------------------------------------------------


def disable_entry(
    session: Session,
    entry_id: int,
    *,
    actor: str,
    reason: str,
    until: dt.datetime | None = None,
) -> StatusChange:
    """Stop an entry matching, for good or until ``until``."""
    if until is not None:
        if until.tzinfo is None:
            raise InvalidArgument("the disable-until time needs a time zone")
        if until <= utcnow():
            raise InvalidArgument(f"the disable-until time {until.isoformat()} is in the past")
    return _set_status(
        session, entry_id, EntryStatus.disabled, actor=actor, reason=reason, until=until
    )


def enable_entry(
    session: Session, entry_id: int, *, actor: str, reason: str | None = None
) -> StatusChange:
    """Make a disabled or withdrawn entry active again."""
    return _set_status(session, entry_id, EntryStatus.active, actor=actor, reason=reason)


def withdraw_entry(
    session: Session, entry_id: int, *, actor: str, reason: str, at: dt.datetime | None = None
) -> StatusChange:
    """Withdraw an entry: it no longer matches, and imports will not bring it back."""
    return _set_status(session, entry_id, EntryStatus.withdrawn, actor=actor, reason=reason, at=at)


def _set_status(
    session: Session,
    entry_id: int,
    status: EntryStatus,
    *,
    actor: str,
    reason: str | None,
    until: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> StatusChange:
    actor = validate_actor(actor)
    reason = check_text((reason or "").strip() or None, "reason")
    if reason is None and status is not EntryStatus.active:
        raise InvalidArgument(f"a reason is required to mark an entry {status.value}")
    entry = session.scalar(select(Entry).where(Entry.id == entry_id).with_for_update())
    if entry is None:
        raise NotFound(f"no entry with id {entry_id}")
    previous = EntryStatus(entry.status)
    now = utcnow()
    changed = previous is not status or (
        status is EntryStatus.disabled and entry.disabled_until != until
    )
    if changed:
        entry.status = status
        entry.disabled_until = until if status is EntryStatus.disabled else None
        entry.withdrawn_at = (at or now) if status is EntryStatus.withdrawn else None
        entry.withdraw_reason = reason if status is EntryStatus.withdrawn else None
        entry.updated_at = now
        session.flush()
        history.audit(
            session,
            actor=actor,
            action=f"entry.{_ACTIONS[status]}",
            bank_id=entry.bank_id,
            entry_id=entry.id,
            details={
                "from": previous.value,
                "to": status.value,
                "reason": reason,
                "until": until.isoformat() if until else None,
            },
            at=now,
        )
        history.log_changes(session, [(entry.bank_id, entry.id, ChangeKind.status)], at=now)
    bank_name = session.scalar(select(Bank.name).where(Bank.id == entry.bank_id)) or ""
    info = _info(entry, bank_name, signals_of(session, [entry.id]).get(entry.id, ()))
    return StatusChange(info, previous, changed)


_ACTIONS = {
    EntryStatus.active: "enable",
    EntryStatus.disabled: "disable",
    EntryStatus.withdrawn: "withdraw",
}
