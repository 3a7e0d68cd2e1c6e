"""The database schema as SQLAlchemy 2 typed models: banks, entries, their signals, the audit
trail and the change log. Only hashes and metadata: there is no column for media bytes.

The migrations in ``migrations/versions`` must agree with these models; a test runs Alembic's
autogenerate comparison on both engines and fails on any difference.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Every constraint gets a predictable name, so migrations can refer to it on both engines
(SQLite's batch mode rebuilds tables and would otherwise lose unnamed constraints)."""

NAME_LENGTH = 64
TEXT_LENGTH = 255
SIGNAL_TYPE_LENGTH = 16
SIGNAL_VALUE_LENGTH = 128
VARIANT_LENGTH = 32


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every engine.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are converted to UTC
    and stored without an offset, and read back as aware UTC datetimes. Naive datetimes are
    refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: ncii stores timezone-aware UTC times")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# 64-bit ids on PostgreSQL; SQLite's rowid alias must be spelt INTEGER (it is 64-bit anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class BankSource(StrEnum):
    """Where a bank's hashes come from."""

    own = "own"
    stopncii = "stopncii"
    ncmec = "ncmec"
    partner = "partner"
    case = "case"


class EntryStatus(StrEnum):
    """``active`` entries match; ``disabled`` ones do not (until ``disabled_until``, if set);
    ``withdrawn`` ones never do (the person who reported it withdrew, or the source deleted it)."""

    active = "active"
    disabled = "disabled"
    withdrawn = "withdrawn"


class ChangeKind(StrEnum):
    """What the matching index must reload when it follows the change log."""

    add = "add"
    """An entry was created, or signals were attached to it."""
    status = "status"
    """An entry's status changed."""
    delete_bank = "delete_bank"
    """A bank and all its entries were deleted."""


def _str_enum(enum: type[StrEnum]) -> Enum:
    """A VARCHAR holding the enum's values, read back as enum members. Its CHECK constraint is
    declared separately, by :func:`_one_of`."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def _one_of(column: str, enum: type[StrEnum]) -> CheckConstraint:
    # Spelt as ORs: SQLite evaluates ``IN (…)`` in a CHECK several times slower, which shows
    # when importing a million rows.
    allowed = " OR ".join(f"{column} = '{member.value}'" for member in enum)
    return CheckConstraint(allowed, name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012


class Bank(Base):
    """A named collection of reported items from one source."""

    __tablename__ = "banks"
    __table_args__ = (
        CheckConstraint("trust_level BETWEEN 0 AND 100", name="trust_level"),
        _one_of("source", BankSource),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[BankSource] = mapped_column(_str_enum(BankSource))
    source_ref: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    """Which partner or case, when ``source`` alone does not say."""
    trust_level: Mapped[int] = mapped_column(SmallInteger, default=100)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    match_thresholds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    """Per signal type, the distance at or below which this bank's entries match, where it
    differs from the type's default (a partner bank may be matched more strictly)."""


class Entry(Base):
    """One reported item in a bank: its signals, provenance and status."""

    __tablename__ = "entries"
    __table_args__ = (
        Index(None, "bank_id", "status"),
        UniqueConstraint("id", "bank_id"),  # the target of entry_signals' foreign key
        _one_of("status", EntryStatus),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    status: Mapped[EntryStatus] = mapped_column(_str_enum(EntryStatus), default=EntryStatus.active)
    disabled_until: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    """The item's id at its source (a StopNCII hash id, a partner's reference, …)."""
    case_ref: Mapped[str | None] = mapped_column(Text)
    """Case numbers or references; a StopNCII hash can belong to many cases."""
    added_by: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EntrySignal(Base):
    """One hash of an entry. ``bank_id`` repeats the entry's bank (the foreign key on both
    columns keeps the two in step) so that the unique constraint can say: a signal value is
    stored once per bank.

    The unique index leads with ``value`` and no index starts with ``bank_id``, so looking
    values up, in bulk or across banks, is always an index search, even while the planner has
    no statistics yet (during the first big import into a new database). ``id`` is never
    reused (the matching index keys signals by it).
    """

    __tablename__ = "entry_signals"
    __table_args__ = (
        UniqueConstraint("value", "signal_type", "bank_id"),
        ForeignKeyConstraint(
            ["entry_id", "bank_id"], ["entries.id", "entries.bank_id"], ondelete="CASCADE"
        ),
        CheckConstraint("quality BETWEEN 0 AND 100", name="quality"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, index=True)
    bank_id: Mapped[int] = mapped_column(BigId)
    signal_type: Mapped[str] = mapped_column(String(SIGNAL_TYPE_LENGTH))
    value: Mapped[str] = mapped_column(String(SIGNAL_VALUE_LENGTH))
    """Canonical form: lowercase hex, as ``ncii.signals.get_signal_type(t).parse`` returns."""
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    variant: Mapped[str | None] = mapped_column(String(VARIANT_LENGTH))
    """For a PDQ hash of a variant of the entry's picture (``crop_0.06``, ``framed``…, see
    ``ncii.detection``), its label; NULL for the picture's own hashes. Variant rows match like
    any other but never identify an entry and are never exported."""


class AuditEvent(Base):
    """Who did what to which bank or entry, and when. Kept when the bank is deleted, so the
    ids are plain columns rather than foreign keys.

    Append-only and hash-chained: ``row_hash`` covers the row's content and ``prev_hash`` (the
    row before's ``row_hash``), and :class:`AuditChainHead` remembers the newest row, so an
    edited or deleted row shows (``ncii.service.audit.verify_chain``). Written only through
    ``ncii.service.history``, which numbers rows itself, one after the other.
    """

    __tablename__ = "audit_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    action: Mapped[str] = mapped_column(String(NAME_LENGTH))
    bank_id: Mapped[int | None] = mapped_column(BigId, index=True)
    entry_id: Mapped[int | None] = mapped_column(BigId, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class Change(Base):
    """The change log the matching index follows by ``seq`` to stay current across processes.

    Rows are written in the same transaction as the change, and ``seq`` grows in commit order
    (on PostgreSQL writers take a transaction-level advisory lock before appending), so a reader
    that has seen ``seq`` N never later finds a committed row below N.
    """

    __tablename__ = "changes"
    __table_args__ = (_one_of("kind", ChangeKind), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    bank_id: Mapped[int] = mapped_column(BigId)
    entry_id: Mapped[int | None] = mapped_column(BigId)
    kind: Mapped[ChangeKind] = mapped_column(_str_enum(ChangeKind))


class VideoFrame(Base):
    """One sampled frame of a video entry (vPDQ): its PDQ hash, quality and time.

    Frames belong to one entry and are not de-duplicated across a bank (two videos can share
    an intro or a blank frame); the video's file hashes (md5, sha256) are the entry's signals.
    """

    __tablename__ = "video_frames"
    __table_args__ = (
        ForeignKeyConstraint(
            ["entry_id", "bank_id"], ["entries.id", "entries.bank_id"], ondelete="CASCADE"
        ),
        CheckConstraint("quality BETWEEN 0 AND 100", name="quality"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, index=True)
    bank_id: Mapped[int] = mapped_column(BigId)
    frame: Mapped[int] = mapped_column(Integer)
    """Frame number in decoding order, as vPDQ counts it."""
    timestamp: Mapped[float] = mapped_column(Float)
    """Seconds from the start of the video."""
    value: Mapped[str] = mapped_column(String(64))
    """PDQ hash, 64 lowercase hex digits."""
    quality: Mapped[int] = mapped_column(SmallInteger)
    unbarred: Mapped[str | None] = mapped_column(String(64))
    """The frame's second PDQ hash, when it differs from ``value``: with its uniform
    letterbox/pillarbox bars cut away and a static overlay (a logo the picture moves under)
    painted over (``docs/hashing.md``)."""


# --- cases, takedown requests, the match log (schema 0003) ------------------------------------


class AuditChainHead(Base):
    """The newest audit event's id and hash (one row), so deleting the newest events shows."""

    __tablename__ = "audit_chain"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))


class CaseStatus(StrEnum):
    open = "open"
    withdrawn = "withdrawn"
    """The victim withdrew the case: its hashes no longer match."""


class Case(Base):
    """A victim's case: a number, a PIN (only its salted scrypt hash) and the entries holding
    the case's hashes (:class:`CaseEntry`). No media, and no name unless one was given."""

    __tablename__ = "cases"
    __table_args__ = (_one_of("status", CaseStatus), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    label: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    bank_id: Mapped[int | None] = mapped_column(
        ForeignKey("banks.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[CaseStatus] = mapped_column(_str_enum(CaseStatus), default=CaseStatus.open)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[dt.datetime | None]
    failed_pins: Mapped[int] = mapped_column(SmallInteger, default=0)
    """Wrong PINs in a row; reset by a right one."""
    locked_until: Mapped[dt.datetime | None]


class CaseEntry(Base):
    """Which entries hold a case's hashes (an entry can belong to several cases)."""

    __tablename__ = "case_entries"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class MatchEvent(Base):
    """One upload matching one active entry: when, how closely, found by what. Nothing about
    the upload itself (no path, no hash)."""

    __tablename__ = "match_events"
    __table_args__ = (Index(None, "entry_id", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    entry_id: Mapped[int] = mapped_column(BigId)
    signal_type: Mapped[str] = mapped_column(String(SIGNAL_TYPE_LENGTH))
    distance: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(16))
    """What reported it: ``match``, ``scan``, ``takedown`` or an embedding application."""


class TakedownState(StrEnum):
    received = "received"
    in_review = "in_review"
    removed = "removed"
    rejected = "rejected"


class TakedownItemKind(StrEnum):
    url = "url"
    post = "post"
    """A post or content id on the platform."""
    signal = "signal"
    """A hash of the media, computed where the media was."""


class CopySource(StrEnum):
    bank = "bank"
    """An entry of one of the platform's banks."""
    scan = "scan"
    """An upload a scan report lists as matching such an entry."""


class Takedown(Base):
    """A removal request under 47 U.S.C. § 223a: its four required elements, its receipt
    time and 48-hour deadline, and where it stands."""

    __tablename__ = "takedowns"
    __table_args__ = (
        _one_of("state", TakedownState),
        Index(None, "state", "due_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    due_at: Mapped[dt.datetime]
    state: Mapped[TakedownState] = mapped_column(
        _str_enum(TakedownState), default=TakedownState.received
    )
    state_changed_at: Mapped[dt.datetime]
    removed_at: Mapped[dt.datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    statement: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(TEXT_LENGTH))


class TakedownItem(Base):
    """What a request identifies: a URL, a post id, or a hash of the media."""

    __tablename__ = "takedown_items"
    __table_args__ = (_one_of("kind", TakedownItemKind), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    takedown_id: Mapped[int] = mapped_column(
        ForeignKey("takedowns.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[TakedownItemKind] = mapped_column(_str_enum(TakedownItemKind))
    value: Mapped[str] = mapped_column(Text)
    signal_type: Mapped[str | None] = mapped_column(String(SIGNAL_TYPE_LENGTH))
    quality: Mapped[int | None] = mapped_column(SmallInteger)


class TakedownCopy(Base):
    """A known copy of a request's media on the platform: a bank entry it matched, or an
    upload a scan report lists as matching that entry (``location``)."""

    __tablename__ = "takedown_copies"
    __table_args__ = (_one_of("source", CopySource), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    takedown_id: Mapped[int] = mapped_column(
        ForeignKey("takedowns.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[CopySource] = mapped_column(_str_enum(CopySource))
    entry_id: Mapped[int | None] = mapped_column(BigId)
    bank: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    signal_type: Mapped[str | None] = mapped_column(String(SIGNAL_TYPE_LENGTH))
    distance: Mapped[int | None] = mapped_column(SmallInteger)
    location: Mapped[str | None] = mapped_column(Text)
    found_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TakedownEvent(Base):
    """One state transition of a request (also in the audit log, which is chained)."""

    __tablename__ = "takedown_events"
    __table_args__ = (
        _one_of("from_state", TakedownState),
        _one_of("to_state", TakedownState),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    takedown_id: Mapped[int] = mapped_column(
        ForeignKey("takedowns.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime]
    from_state: Mapped[TakedownState | None] = mapped_column(_str_enum(TakedownState))
    to_state: Mapped[TakedownState] = mapped_column(_str_enum(TakedownState))
    actor: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    reason: Mapped[str | None] = mapped_column(Text)
