"""Banks: named collections of reported items from one source."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ncii.errors import AlreadyExists, InvalidArgument, NotFound
from ncii.service import history
from ncii.service.jsontext import check_line, check_text, shown
from ncii.signals import get_signal_type
from ncii.store.models import (
    NAME_LENGTH,
    TEXT_LENGTH,
    Bank,
    BankSource,
    ChangeKind,
    Entry,
    EntrySignal,
    EntryStatus,
    VideoFrame,
    utcnow,
)

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_LENGTH - 1}}}")


@dataclass(frozen=True, slots=True)
class BankInfo:
    id: int
    name: str
    description: str
    source: BankSource
    source_ref: str | None
    trust_level: int
    created_at: dt.datetime
    match_thresholds: dict[str, int] = field(default_factory=dict)
    """Signal type → distance at or below which this bank's entries match, where it differs
    from the type's default (``pdq`` also applies to video frames)."""

    @classmethod
    def of(cls, bank: Bank) -> BankInfo:
        return cls(
            id=bank.id,
            name=bank.name,
            description=bank.description,
            source=BankSource(bank.source),
            source_ref=bank.source_ref,
            trust_level=bank.trust_level,
            created_at=bank.created_at,
            match_thresholds=dict(sorted((bank.match_thresholds or {}).items())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "source": self.source.value,
            "source_ref": self.source_ref,
            "trust_level": self.trust_level,
            "created_at": self.created_at.isoformat(),
            "match_thresholds": dict(self.match_thresholds),
        }


@dataclass(frozen=True, slots=True)
class BankSummary:
    """A bank with its entry counts, as ``ncii bank list`` shows it."""

    bank: BankInfo
    entries: int
    active: int

    def to_dict(self) -> dict[str, Any]:
        return self.bank.to_dict() | {"entries": self.entries, "active": self.active}


@dataclass(frozen=True, slots=True)
class BankDetail:
    """A bank with its entries counted by status and its signals by type."""

    bank: BankInfo
    by_status: dict[str, int] = field(default_factory=dict)
    by_signal_type: dict[str, int] = field(default_factory=dict)
    video_frames: int = 0
    """vPDQ frame hashes stored for the bank's video entries."""
    pdq_variants: int = 0
    """PDQ hashes of variants of reported pictures (crops, rotations…; ``ncii.detection``),
    not counted in ``by_signal_type``."""

    @property
    def entries(self) -> int:
        return sum(self.by_status.values())

    def to_dict(self) -> dict[str, Any]:
        return self.bank.to_dict() | {
            "entries": self.entries,
            "by_status": self.by_status,
            "by_signal_type": self.by_signal_type,
            "video_frames": self.video_frames,
            "pdq_variants": self.pdq_variants,
        }


@dataclass(frozen=True, slots=True)
class DeletedBank:
    bank: BankInfo
    entries: int


def validate_name(name: str) -> str:
    """A bank name as stored; a refused one is echoed cut short (it may be 10,000 characters)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid bank name {shown(name)}: use 1-{NAME_LENGTH} letters, digits, '_', '.' "
            "or '-', starting with a letter or digit"
        )
    return name


def validate_actor(actor: str) -> str:
    """Who did it, as the audit log records it: one line, no control characters."""
    actor = (actor or "").strip()
    if not actor or len(actor) > TEXT_LENGTH:
        raise InvalidArgument(f"invalid actor {shown(actor)}: 1-{TEXT_LENGTH} characters")
    return check_line(actor, "actor")


def _validate_trust(trust_level: int) -> int:
    if not 0 <= trust_level <= 100:
        raise InvalidArgument(f"invalid trust level {trust_level}: expected 0-100")
    return trust_level


def validate_thresholds(thresholds: Mapping[str, int]) -> dict[str, int]:
    """Per-bank thresholds by canonical signal type name, each within its type's range.

    Only distance-matched types take one: an exact type (md5, sha256) matches at 0 or not at
    all.
    """
    checked: dict[str, int] = {}
    for name, value in thresholds.items():
        kind = get_signal_type(name)
        if kind.exact:
            raise InvalidArgument(f"{kind.name} is matched exactly: it takes no threshold")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= kind.bits:
            raise InvalidArgument(
                f"invalid {kind.name} threshold {value!r}: expected 0-{kind.bits}"
            )
        checked[kind.name] = value
    return dict(sorted(checked.items()))


def parse_threshold(text: str) -> tuple[str, int]:
    """``TYPE=N`` (as ``--threshold`` takes it) → (canonical type, N), validated."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip().isdigit():
        raise InvalidArgument(f"invalid threshold {text!r}: expected TYPE=N, e.g. pdq=24")
    [(kind, number)] = validate_thresholds({name.strip(): int(value)}).items()
    return kind, number


def _optional_text(value: str | None, what: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > TEXT_LENGTH:
        raise InvalidArgument(f"{what} is too long ({len(value)} > {TEXT_LENGTH} characters)")
    return check_text(value.strip(), what)


def create_bank(
    session: Session,
    name: str,
    *,
    actor: str,
    description: str = "",
    source: BankSource | str = BankSource.own,
    source_ref: str | None = None,
    trust_level: int = 100,
    match_thresholds: Mapping[str, int] | None = None,
) -> BankInfo:
    """Create an empty bank. Raises :class:`AlreadyExists` if the name is taken.

    ``match_thresholds``: per signal type, the distance at or below which its entries match
    where it should differ from the type's default (a partner bank matched more strictly).
    """
    try:
        source = BankSource(source)
    except ValueError:
        known = ", ".join(s.value for s in BankSource)
        raise InvalidArgument(f"invalid bank source {source!r} (known: {known})") from None
    bank = Bank(
        name=validate_name(name),
        description=check_text(description or "", "description"),
        source=source,
        source_ref=_optional_text(source_ref, "source reference"),
        trust_level=_validate_trust(trust_level),
        created_at=utcnow(),
        match_thresholds=validate_thresholds(match_thresholds or {}),
    )
    if session.scalar(select(Bank.id).where(Bank.name == name)) is not None:
        raise AlreadyExists(f"bank {name!r} already exists")
    try:
        with session.begin_nested():
            session.add(bank)
            session.flush()
    except IntegrityError:  # created by someone else since the check above
        raise AlreadyExists(f"bank {name!r} already exists") from None
    info = BankInfo.of(bank)
    history.audit(
        session,
        actor=validate_actor(actor),
        action="bank.create",
        bank_id=bank.id,
        details=info.to_dict(),
    )
    return info


def get_bank(session: Session, name: str, *, lock: bool = False) -> Bank:
    """The bank called ``name``; with ``lock``, hold its row until the transaction ends.

    Every writer of a bank's entries takes this lock first, so concurrent writers to one bank
    take turns (on PostgreSQL; SQLite serialises all writers anyway) and never race on the
    one-value-per-bank constraint.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        # Never a bank (names are validated on the way in); not sent to the database either,
        # where a NUL in it would be an error rather than "not found".
        raise NotFound(f"no bank named {shown(name)}")
    query = select(Bank).where(Bank.name == name)
    if lock:
        query = query.with_for_update()
    bank = session.scalar(query)
    if bank is None:
        raise NotFound(f"no bank named {name!r}")
    return bank


def bank_info(session: Session, name: str) -> BankInfo:
    return BankInfo.of(get_bank(session, name))


def list_banks(session: Session) -> list[BankSummary]:
    """Every bank by name, with its number of entries and of active ones."""
    counts = (
        select(
            Entry.bank_id,
            func.count().label("entries"),
            func.count().filter(Entry.status == EntryStatus.active).label("active"),
        )
        .group_by(Entry.bank_id)
        .subquery()
    )
    rows = session.execute(
        select(Bank, counts.c.entries, counts.c.active)
        .outerjoin(counts, counts.c.bank_id == Bank.id)
        .order_by(Bank.name)
    )
    return [
        BankSummary(BankInfo.of(bank), entries or 0, active or 0) for bank, entries, active in rows
    ]


def show_bank(session: Session, name: str) -> BankDetail:
    bank = get_bank(session, name)
    by_status = {
        status: count
        for status, count in session.execute(
            select(Entry.status, func.count())
            .where(Entry.bank_id == bank.id)
            .group_by(Entry.status)
        )
    }
    by_type: dict[str, int] = {}
    variants = 0
    for kind, is_variant, count in session.execute(
        select(EntrySignal.signal_type, EntrySignal.variant.is_not(None), func.count())
        .join(Entry, Entry.id == EntrySignal.entry_id)  # entries is indexed by bank
        .where(Entry.bank_id == bank.id)
        .group_by(EntrySignal.signal_type, EntrySignal.variant.is_not(None))
        .order_by(EntrySignal.signal_type)
    ):
        if is_variant:
            variants += count
        else:
            by_type[kind] = count
    frames = session.scalar(
        select(func.count())
        .select_from(VideoFrame)
        .join(Entry, Entry.id == VideoFrame.entry_id)
        .where(Entry.bank_id == bank.id)
    )
    return BankDetail(
        bank=BankInfo.of(bank),
        by_status={s.value: by_status.get(s, 0) for s in EntryStatus},
        by_signal_type=by_type,
        video_frames=frames or 0,
        pdq_variants=variants,
    )


def rename_bank(session: Session, name: str, new_name: str, *, actor: str) -> BankInfo:
    validate_name(new_name)
    bank = get_bank(session, name, lock=True)
    if new_name == name:
        return BankInfo.of(bank)
    if session.scalar(select(Bank.id).where(Bank.name == new_name)) is not None:
        raise AlreadyExists(f"bank {new_name!r} already exists")
    try:
        with session.begin_nested():
            session.execute(update(Bank).where(Bank.id == bank.id).values(name=new_name))
    except IntegrityError:
        raise AlreadyExists(f"bank {new_name!r} already exists") from None
    session.refresh(bank)
    history.audit(
        session,
        actor=validate_actor(actor),
        action="bank.rename",
        bank_id=bank.id,
        details={"from": name, "to": new_name},
    )
    return BankInfo.of(bank)


def update_bank(
    session: Session,
    name: str,
    *,
    actor: str,
    description: str | None = None,
    trust_level: int | None = None,
    set_thresholds: Mapping[str, int] | None = None,
    clear_thresholds: Iterable[str] = (),
) -> BankInfo:
    """Change a bank's description, trust level or per-type match thresholds (``None``: leave
    as is). Records a ``bank.update`` audit event with what changed, and a change-log row so
    running matchers pick up new thresholds at their next refresh."""
    actor = validate_actor(actor)
    bank = get_bank(session, name, lock=True)
    before = BankInfo.of(bank)
    thresholds = dict(bank.match_thresholds or {})
    for kind in clear_thresholds:
        thresholds.pop(get_signal_type(kind).name, None)
    thresholds.update(validate_thresholds(set_thresholds or {}))
    values: dict[str, Any] = {}
    if description is not None and description != bank.description:
        values["description"] = check_text(description, "description")
    if trust_level is not None and _validate_trust(trust_level) != bank.trust_level:
        values["trust_level"] = trust_level
    if dict(sorted(thresholds.items())) != before.match_thresholds:
        values["match_thresholds"] = dict(sorted(thresholds.items()))
    if not values:
        return before
    session.execute(update(Bank).where(Bank.id == bank.id).values(**values))
    session.refresh(bank)
    after = BankInfo.of(bank)
    changed = {
        key: {"from": before.to_dict()[key], "to": after.to_dict()[key]} for key in sorted(values)
    }
    history.audit(session, actor=actor, action="bank.update", bank_id=bank.id, details=changed)
    if "match_thresholds" in values:
        # No entry changed: a bank-wide row (no entry id) tells matchers to reload the banks.
        history.log_changes(session, [(bank.id, None, ChangeKind.status)])
    return after


def delete_bank(session: Session, name: str, *, actor: str) -> DeletedBank:
    """Delete a bank and every entry in it. The audit trail keeps a record of it."""
    actor = validate_actor(actor)
    bank = get_bank(session, name, lock=True)
    info = BankInfo.of(bank)
    entries = session.scalar(select(func.count()).where(Entry.bank_id == bank.id)) or 0
    # Explicit deletes, children first: much faster than row-by-row cascades on SQLite.
    in_bank = select(Entry.id).where(Entry.bank_id == bank.id)
    for statement in (
        delete(VideoFrame).where(VideoFrame.entry_id.in_(in_bank)),
        delete(EntrySignal).where(EntrySignal.entry_id.in_(in_bank)),
        delete(Entry).where(Entry.bank_id == bank.id),
        delete(Bank).where(Bank.id == bank.id),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    session.expunge(bank)
    history.audit(
        session,
        actor=actor,
        action="bank.delete",
        bank_id=info.id,
        details=info.to_dict() | {"entries": entries},
    )
    history.log_changes(session, [(info.id, None, ChangeKind.delete_bank)])
    return DeletedBank(info, entries)
