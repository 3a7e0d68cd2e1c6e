"""Import hash lists into a bank and export a bank, streaming both ways."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ncii.detection import BankHash
from ncii.service import entries, formats, ingest
from ncii.service.banks import get_bank
from ncii.service.entries import AddOptions, AddSummary, EntryInfo, Invalid
from ncii.service.formats import ExportFormat, ImportFormat, Provenance
from ncii.signals import Signal
from ncii.signals.vpdq import VpdqFrame
from ncii.store.models import Entry, EntrySignal, EntryStatus, VideoFrame

EXPORT_CHUNK = 10_000
FRAME_LOOKUP_CHUNK = 1_000
"""Entries whose video frames are read per query while exporting."""
"""Rows fetched per round trip while exporting (a server-side cursor on PostgreSQL)."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    bank: str
    format: ExportFormat
    entries: int
    signals: int
    left_out: int
    frames: int = 0
    """Video frames exported (jsonl)."""
    frames_left_out: int = 0
    """Video frames of the bank a format other than jsonl cannot carry."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "format": self.format.value,
            "entries": self.entries,
            "signals": self.signals,
            "left_out": self.left_out,
            "frames": self.frames,
            "frames_left_out": self.frames_left_out,
        }


def import_records(
    session: Session,
    bank_name: str,
    stream: TextIO,
    fmt: ImportFormat | str,
    *,
    actor: str,
    defaults: Provenance | None = None,
    skip_invalid: bool = False,
    on_skip: Callable[[Invalid], None] | None = None,
    on_result: Callable[[entries.AddResult], None] | None = None,
    source_name: str | None = None,
) -> AddSummary:
    """Import a hash list file into the bank, in the caller's transaction.

    Idempotent: values already in the bank are counted as present and nothing is added for
    them (withdrawals still apply). A malformed record raises
    :class:`~ncii.errors.ImportFailed` and the caller's rollback leaves the bank unchanged;
    with ``skip_invalid`` each is passed to ``on_skip`` and the rest is imported.
    """
    fmt = ImportFormat(fmt)
    get_bank(session, bank_name, lock=True)  # a missing bank is reported before the file
    records = formats.read_records(stream, fmt, defaults=defaults)
    details: dict[str, Any] = {"format": fmt.value}
    if source_name:
        details["file"] = source_name
    return ingest.add_entries(
        session,
        bank_name,
        records,
        actor=actor,
        options=AddOptions(
            skip_invalid=skip_invalid, audit_action="bank.import", audit_details=details
        ),
        on_result=on_result,
        on_skip=on_skip,
    )


def export_bank(
    session: Session, bank_name: str, out: TextIO, fmt: ExportFormat | str
) -> ExportSummary:
    """Write every entry of the bank to ``out`` (withdrawn ones marked so), in bounded memory."""
    fmt = ExportFormat(fmt)
    bank = get_bank(session, bank_name)
    with_frames = fmt is ExportFormat.jsonl
    counts = formats.write_records(
        iter_entries(session, bank.id, bank.name, frames=with_frames), fmt, out
    )
    left_out = 0
    if not with_frames and session.scalar(select(VideoFrame.id).limit(1)) is not None:
        left_out = (
            session.scalar(
                select(func.count()).select_from(VideoFrame).where(VideoFrame.bank_id == bank.id)
            )
            or 0
        )
    return ExportSummary(
        bank.name,
        fmt,
        counts.entries,
        counts.signals,
        counts.left_out,
        frames=counts.frames,
        frames_left_out=left_out,
    )


def iter_entries(
    session: Session, bank_id: int, bank_name: str, *, frames: bool = False
) -> Iterator[EntryInfo]:
    """Every entry of a bank with its signals (and, with ``frames``, a video entry's vPDQ
    frames), in id order, streamed from the database."""
    entries = _iter_entries(session, bank_id, bank_name)
    if not frames or session.scalar(select(VideoFrame.id).limit(1)) is None:
        yield from entries  # no video in the store: nothing to look up
        return
    while chunk := list(itertools.islice(entries, FRAME_LOOKUP_CHUNK)):
        found: dict[int, list[VpdqFrame]] = defaultdict(list)
        rows = session.execute(
            select(
                VideoFrame.entry_id,
                VideoFrame.frame,
                VideoFrame.quality,
                VideoFrame.value,
                VideoFrame.timestamp,
                VideoFrame.unbarred,
            )
            .where(VideoFrame.entry_id.in_([e.id for e in chunk]))
            .order_by(VideoFrame.entry_id, VideoFrame.id)
        )
        for entry_id, *frame in rows:
            found[entry_id].append(VpdqFrame(*frame))
        for entry in chunk:
            listed = found.get(entry.id)
            yield replace(entry, frames=tuple(listed)) if listed else entry


def _iter_entries(session: Session, bank_id: int, bank_name: str) -> Iterator[EntryInfo]:
    e, s = Entry.__table__.c, EntrySignal.__table__.c
    query = (
        select(
            e.id,
            e.status,
            e.external_id,
            e.case_ref,
            e.added_by,
            e.note,
            e.disabled_until,
            e.withdrawn_at,
            e.withdraw_reason,
            e.created_at,
            e.updated_at,
            s.signal_type,
            s.value,
            s.quality,
            s.variant,
        )
        .join_from(Entry.__table__, EntrySignal.__table__, s.entry_id == e.id)
        .where(e.bank_id == bank_id)
        .order_by(e.id, s.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    current: list[Any] | None = None
    signals: list[Signal] = []
    variants: list[BankHash] = []
    # Variants ride along apart from the signals (jsonl writes them under "variants"; csv and tx
    # cannot carry them). Told apart here rather than in SQL: right after a big import, before
    # PostgreSQL has statistics, "variant IS NULL" looks so selective to its planner that the
    # cursor's plan became a nested loop over both tables (minutes instead of seconds).
    for row in session.execute(query):
        if current is None or row[0] != current[0]:
            if current is not None:
                yield _entry_info(current, bank_name, signals, variants)
            current, signals, variants = list(row[:11]), [], []
        if row[14] is not None:
            variants.append(BankHash(row[14], row[12], row[13] or 0))
        else:
            signals.append(Signal(row[11], row[12], row[13]))
    if current is not None:
        yield _entry_info(current, bank_name, signals, variants)


def _entry_info(
    row: list[Any], bank_name: str, signals: list[Signal], variants: list[BankHash]
) -> EntryInfo:
    (
        entry_id,
        status,
        external_id,
        case_ref,
        added_by,
        note,
        disabled_until,
        withdrawn_at,
        withdraw_reason,
        created_at,
        updated_at,
    ) = row
    return EntryInfo(
        id=entry_id,
        bank=bank_name,
        status=EntryStatus(status),
        signals=tuple(signals),
        external_id=external_id,
        case_ref=case_ref,
        added_by=added_by,
        note=note,
        disabled_until=disabled_until,
        withdrawn_at=withdrawn_at,
        withdraw_reason=withdraw_reason,
        created_at=created_at,
        updated_at=updated_at,
        variants=tuple(variants),
    )
