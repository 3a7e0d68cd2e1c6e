"""Victim cases: a case number and a PIN for the person who reported, the case's hashes as bank
entries, and a withdrawal that takes every one of them out of matching at once.

The PIN is shown once, when the case opens, and stored only as a salted scrypt hash; wrong PINs
are counted and, after :data:`MAX_PIN_FAILURES` in a row, lock the case for :data:`LOCKOUT`.
A case keeps no media, no file names, and no name unless one is given.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ncii.errors import CaseLocked, InvalidArgument, NotFound, WrongPin
from ncii.hashing import HashResult
from ncii.service import history, ingest
from ncii.service.banks import create_bank, get_bank, validate_actor
from ncii.service.entries import AddOptions, AddResult, NewEntry
from ncii.service.jsontext import check_text, shown
from ncii.signals.vpdq import VideoHashes
from ncii.store.models import (
    TEXT_LENGTH,
    Bank,
    BankSource,
    Case,
    CaseEntry,
    CaseStatus,
    ChangeKind,
    Entry,
    EntryStatus,
    MatchEvent,
    Takedown,
    TakedownState,
    utcnow,
)

CASE_BANK = "cases"
"""The bank case hashes go to unless another is named; created (source ``case``) on first use."""
MAX_PIN_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
PIN_DIGITS = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt's cost (16 MiB, ~50 ms a check): slow enough that a stolen database's PINs take
years to guess offline at 10^8 candidates each, fast enough for a person typing one."""
_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


@dataclass(frozen=True, slots=True)
class OpenedCase:
    """A new case: its number and PIN (shown this once, then only its hash exists)."""

    number: str
    pin: str
    bank: str
    entries: int
    added: int
    present: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.number,
            "pin": self.pin,
            "bank": self.bank,
            "hashes": self.entries,
            "added": self.added,
            "already_banked": self.present,
        }


@dataclass(frozen=True, slots=True)
class CaseTakedown:
    id: int
    state: TakedownState
    received_at: dt.datetime
    due_at: dt.datetime
    removed_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "received_at": self.received_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "removed_at": self.removed_at.isoformat() if self.removed_at else None,
        }


@dataclass(frozen=True, slots=True)
class CaseStatusInfo:
    """What ``ncii case status`` shows: counts and times, nothing that identifies the media."""

    number: str
    status: CaseStatus
    label: str | None
    opened_at: dt.datetime
    withdrawn_at: dt.datetime | None
    hashes: int
    active: int
    matches: int
    """Uploads that matched one of the case's hashes since the case opened."""
    last_match_at: dt.datetime | None
    takedowns: tuple[CaseTakedown, ...]

    def to_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "case": self.number,
            "status": self.status.value,
            "name": self.label,
            "opened_at": iso(self.opened_at),
            "withdrawn_at": iso(self.withdrawn_at),
            "hashes": self.hashes,
            "active": self.active,
            "matches": self.matches,
            "last_match_at": iso(self.last_match_at),
            "takedowns": [t.to_dict() for t in self.takedowns],
        }


@dataclass(frozen=True, slots=True)
class WithdrawnCase:
    number: str
    withdrawn: int
    """Entries that stopped matching."""
    kept: int
    """Entries another open case also holds: they keep matching for that case."""
    already: bool
    """The case was withdrawn before; nothing changed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.number,
            "withdrawn": self.withdrawn,
            "kept_for_other_cases": self.kept,
            "already_withdrawn": self.already,
        }


# --- PINs and case numbers --------------------------------------------------------------------


def new_pin() -> str:
    digits = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
    return f"{digits[:4]}-{digits[4:]}"


def _normalise_pin(pin: str) -> str:
    return "".join(ch for ch in pin if ch.isdigit())


def hash_pin(pin: str) -> str:
    """``scrypt$N$r$p$salt$hash``, salt and hash in base64: the only form a PIN is stored in."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(_normalise_pin(pin), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    encoded = (base64.b64encode(v).decode() for v in (salt, digest))
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'$'.join(encoded)}"


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(_normalise_pin(pin), base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024**2, dklen=32)


def new_case_number() -> str:
    """``NC-XXXX-XXXX``: 40 random bits, so numbers say nothing about how many cases exist."""
    chars = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))
    return f"NC-{chars[:4]}-{chars[4:]}"


def normalise_number(number: str) -> str:
    """A case number as stored; one no database could hold (a NUL in it) is refused here, so
    both engines answer "no such case" the same way."""
    number = (number or "").strip().upper()
    check_text(number, "case number")
    return number


# --- opening ----------------------------------------------------------------------------------


def entry_for(hashes: HashResult) -> NewEntry:
    """A bank entry for one hashed file (a video's frame hashes included)."""
    frames = hashes.frames if isinstance(hashes, VideoHashes) else ()
    return NewEntry(tuple(hashes.signals), frames=tuple(frames), variants=hashes.pdq_variants)


def open_case(
    session: Session,
    items: Sequence[NewEntry],
    *,
    actor: str,
    bank: str = CASE_BANK,
    label: str | None = None,
    now: dt.datetime | None = None,
) -> OpenedCase:
    """Open a case holding ``items`` (hashes only) in ``bank``, in the caller's transaction.

    Items the bank already holds are linked rather than copied; any of those withdrawn (by an
    earlier case) match again, since this case reports them anew. The bank named must exist,
    except the default :data:`CASE_BANK`, created on first use.
    """
    actor = validate_actor(actor)
    if not items:
        raise InvalidArgument("a case needs at least one hashed file")
    label = check_text((label or "").strip() or None, "case name")
    if label is not None and len(label) > TEXT_LENGTH:
        raise InvalidArgument(f"the case name is too long ({len(label)} > {TEXT_LENGTH})")
    now = now or utcnow()
    if bank == CASE_BANK and session.scalar(select(Bank.id).where(Bank.name == bank)) is None:
        create_bank(session, bank, actor=actor, source=BankSource.case, description="case hashes")
    bank_row = get_bank(session, bank)
    number = _unused_number(session)
    pin = new_pin()
    case = Case(
        number=number,
        pin_hash=hash_pin(pin),
        label=label,
        bank_id=bank_row.id,
        status=CaseStatus.open,
        opened_at=now,
        failed_pins=0,
    )
    session.add(case)
    session.flush()
    results: list[AddResult] = []
    summary = ingest.add_entries(
        session,
        bank,
        [replace(item, case_ref=number, note=None, source=None) for item in items],
        actor=actor,
        options=AddOptions(audit_action="case.open", audit_details={"case": number}),
        on_result=results.append,
    )
    entry_ids = sorted({r.entry_id for r in results})
    session.execute(insert(CaseEntry), [{"case_id": case.id, "entry_id": i} for i in entry_ids])
    _reactivate(session, entry_ids, number=number, actor=actor, now=now)
    return OpenedCase(number, pin, bank, len(entry_ids), summary.added, summary.present)


def _unused_number(session: Session) -> str:
    while True:
        number = new_case_number()
        if session.scalar(select(Case.id).where(Case.number == number)) is None:
            return number


def _reactivate(
    session: Session, entry_ids: list[int], *, number: str, actor: str, now: dt.datetime
) -> None:
    """Entries of a new case that an earlier case's withdrawal left withdrawn match again."""
    rows = session.execute(
        select(Entry.id, Entry.bank_id).where(
            Entry.id.in_(entry_ids), Entry.status == EntryStatus.withdrawn
        )
    ).all()
    if not rows:
        return
    ids = [row.id for row in rows]
    session.execute(
        update(Entry)
        .where(Entry.id.in_(ids))
        .values(status=EntryStatus.active, withdrawn_at=None, withdraw_reason=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    history.log_changes(session, [(row.bank_id, row.id, ChangeKind.status) for row in rows], at=now)
    history.audit(
        session,
        actor=actor,
        action="case.reactivate",
        details={"case": number, "entries": ids},
        at=now,
    )


# --- PIN checks -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The outcome of one PIN attempt, recorded in the caller's transaction (which must commit
    even when the PIN is refused, so that failures count)."""

    number: str
    accepted: bool
    locked_until: dt.datetime | None = None
    attempts_left: int = MAX_PIN_FAILURES

    def raise_if_refused(self) -> None:
        if self.accepted:
            return
        if self.locked_until is not None:
            raise CaseLocked(
                f"case {self.number} is locked after repeated wrong PINs; try again after "
                f"{self.locked_until.isoformat(timespec='minutes')}"
            )
        left = self.attempts_left
        raise WrongPin(
            f"wrong PIN for case {self.number} ({left} more wrong "
            f"{'PIN locks' if left == 1 else 'PINs lock'} the case for "
            f"{int(LOCKOUT.total_seconds() // 60)} minutes)"
        )


def check_pin(
    session: Session, number: str, pin: str, *, actor: str, now: dt.datetime | None = None
) -> PinCheck:
    """Check a PIN against the case's hash, counting failures and locking the case after
    :data:`MAX_PIN_FAILURES` in a row; a locked case refuses even the right PIN."""
    number = normalise_number(number)
    actor = validate_actor(actor)
    now = now or utcnow()
    case = session.scalar(select(Case).where(Case.number == number).with_for_update())
    if case is None:
        hash_pin(pin)  # as slow as a real check: timing does not tell which numbers exist
        raise NotFound(f"no case {shown(number)}")
    if case.locked_until is not None and case.locked_until > now:
        history.audit(
            session, actor=actor, action="case.pin_refused", details={"case": number}, at=now
        )
        return PinCheck(number, False, locked_until=case.locked_until, attempts_left=0)
    if pin_matches(pin, case.pin_hash):
        case.failed_pins, case.locked_until = 0, None
        return PinCheck(number, True)
    case.failed_pins += 1
    details: dict[str, Any] = {"case": number, "failures": case.failed_pins}
    locked = case.failed_pins >= MAX_PIN_FAILURES
    if locked:
        case.locked_until, case.failed_pins = now + LOCKOUT, 0
        details["locked_until"] = case.locked_until.isoformat()
    session.flush()
    history.audit(session, actor=actor, action="case.pin_failed", details=details, at=now)
    if locked:
        return PinCheck(number, False, locked_until=case.locked_until, attempts_left=0)
    return PinCheck(number, False, attempts_left=MAX_PIN_FAILURES - case.failed_pins)


# --- status and withdrawal --------------------------------------------------------------------


def _case(session: Session, number: str, *, lock: bool = False) -> Case:
    query = select(Case).where(Case.number == normalise_number(number))
    case = session.scalar(query.with_for_update() if lock else query)
    if case is None:
        raise NotFound(f"no case {shown(normalise_number(number))}")
    return case


def case_status(session: Session, number: str) -> CaseStatusInfo:
    """The case's counts: hashes, how many still match, matches since it opened, takedowns."""
    case = _case(session, number)
    in_case = select(CaseEntry.entry_id).where(CaseEntry.case_id == case.id)
    hashes, active = session.execute(
        select(func.count(), func.count().filter(Entry.status == EntryStatus.active)).where(
            Entry.id.in_(in_case)
        )
    ).one()
    matches, last = session.execute(
        select(func.count(), func.max(MatchEvent.at)).where(
            MatchEvent.entry_id.in_(in_case), MatchEvent.at >= case.opened_at
        )
    ).one()
    takedowns = tuple(
        CaseTakedown(t.id, TakedownState(t.state), t.received_at, t.due_at, t.removed_at)
        for t in session.scalars(
            select(Takedown).where(Takedown.case_id == case.id).order_by(Takedown.id)
        )
    )
    return CaseStatusInfo(
        number=case.number,
        status=CaseStatus(case.status),
        label=case.label,
        opened_at=case.opened_at,
        withdrawn_at=case.withdrawn_at,
        hashes=hashes,
        active=active,
        matches=matches,
        last_match_at=last,
        takedowns=takedowns,
    )


def withdraw_case(
    session: Session,
    number: str,
    *,
    actor: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> WithdrawnCase:
    """Withdraw the case: each of its entries no other open case holds is withdrawn in one
    statement, and the change log tells every running Matcher (they drop it within their
    refresh interval; lookups resolve against the store, so at once for new lookups)."""
    actor = validate_actor(actor)
    now = now or utcnow()
    case = _case(session, number, lock=True)
    if case.status == CaseStatus.withdrawn:
        return WithdrawnCase(case.number, 0, 0, already=True)
    mine = set(session.scalars(select(CaseEntry.entry_id).where(CaseEntry.case_id == case.id)))
    shared = set(
        session.scalars(
            select(CaseEntry.entry_id)
            .join(Case, Case.id == CaseEntry.case_id)
            .where(
                CaseEntry.entry_id.in_(mine),
                CaseEntry.case_id != case.id,
                Case.status == CaseStatus.open,
            )
        )
    )
    targets = session.execute(
        select(Entry.id, Entry.bank_id).where(
            Entry.id.in_(sorted(mine - shared)), Entry.status != EntryStatus.withdrawn
        )
    ).all()
    why = check_text((reason or "").strip(), "reason") or f"case {case.number} withdrawn"
    if targets:
        session.execute(
            update(Entry)
            .where(Entry.id.in_([t.id for t in targets]))
            .values(
                status=EntryStatus.withdrawn,
                disabled_until=None,
                withdrawn_at=now,
                withdraw_reason=why,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    case.status, case.withdrawn_at = CaseStatus.withdrawn, now
    session.flush()
    history.audit(
        session,
        actor=actor,
        action="case.withdraw",
        details={
            "case": case.number,
            "reason": why,
            "entries": sorted(t.id for t in targets),
            "kept_for_other_cases": sorted(shared),
        },
        at=now,
    )
    history.log_changes(
        session, [(t.bank_id, t.id, ChangeKind.status) for t in sorted(targets)], at=now
    )
    return WithdrawnCase(case.number, len(targets), len(shared), already=False)


def case_id(session: Session, number: str) -> int:
    """The id of case ``number`` (for linking a takedown request to it)."""
    return _case(session, number).id
