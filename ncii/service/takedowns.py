"""Takedown requests under the TAKE IT DOWN Act (47 U.S.C. § 223a): a valid request has four
elements, and the depiction, with its known identical copies, must be removed within 48 hours.

A request is refused unless it has every element: a physical or electronic signature, an
identification of the depiction with what is needed to find it (URLs, post ids, or hashes of
the media computed where the media is), a good-faith statement that it is non-consensual, and
contact information. Its receipt time fixes the deadline. It moves received → in review →
removed, or to rejected with a reason; each step is a row in ``takedown_events`` and an event
in the chained audit log.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from ncii.errors import IncompleteRequest, InvalidArgument, NotFound
from ncii.hashing import HashResult
from ncii.service import history
from ncii.service.banks import validate_actor
from ncii.service.cases import case_id
from ncii.service.ingest import IDENTITY_TYPES
from ncii.service.matching import BankMatch, Matcher
from ncii.signals import Signal
from ncii.store.models import (
    Case,
    CopySource,
    Takedown,
    TakedownCopy,
    TakedownEvent,
    TakedownItem,
    TakedownItemKind,
    TakedownState,
    utcnow,
)

DEADLINE = dt.timedelta(hours=48)
"""§ 223a(a)(3): remove within 48 hours of receiving a valid request."""
OPEN_STATES = (TakedownState.received, TakedownState.in_review)
NEXT_STATES: dict[TakedownState, tuple[TakedownState, ...]] = {
    TakedownState.received: (
        TakedownState.in_review,
        TakedownState.removed,
        TakedownState.rejected,
    ),
    TakedownState.in_review: (TakedownState.removed, TakedownState.rejected),
    TakedownState.removed: (),
    TakedownState.rejected: (),
}
MAX_TEXT = 10_000


@dataclass(frozen=True, slots=True)
class NewTakedown:
    """A request as received. ``signals`` are hashes of the depiction, computed locally."""

    signature: str | None = None
    statement: str | None = None
    contact: str | None = None
    urls: tuple[str, ...] = ()
    posts: tuple[str, ...] = ()
    signals: tuple[Signal, ...] = ()
    description: str | None = None
    case: str | None = None
    received_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FoundCopy:
    """A known copy of the depiction on the platform."""

    source: CopySource
    entry_id: int | None
    bank: str | None = None
    signal_type: str | None = None
    distance: int | None = None
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "entry_id": self.entry_id,
            "bank": self.bank,
            "signal_type": self.signal_type,
            "distance": self.distance,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class TakedownInfo:
    id: int
    state: TakedownState
    received_at: dt.datetime
    due_at: dt.datetime
    state_changed_at: dt.datetime
    removed_at: dt.datetime | None
    reject_reason: str | None
    case: str | None

    def overdue(self, now: dt.datetime) -> bool:
        """Still open after the deadline (exactly 48 hours is still in time)."""
        return self.state in OPEN_STATES and now > self.due_at

    def removed_in_time(self) -> bool | None:
        if self.removed_at is None:
            return None
        return self.removed_at <= self.due_at

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        left = (self.due_at - now).total_seconds() / 3600 if self.state in OPEN_STATES else None
        return {
            "id": self.id,
            "state": self.state.value,
            "received_at": iso(self.received_at),
            "due_at": iso(self.due_at),
            "hours_left": None if left is None else round(left, 2),
            "overdue": self.overdue(now),
            "removed_at": iso(self.removed_at),
            "removed_in_time": self.removed_in_time(),
            "reject_reason": self.reject_reason,
            "case": self.case,
        }


@dataclass(frozen=True, slots=True)
class TakedownDetail:
    info: TakedownInfo
    signature: str
    statement: str
    contact: str
    description: str | None
    urls: tuple[str, ...]
    posts: tuple[str, ...]
    signals: tuple[Signal, ...]
    copies: tuple[FoundCopy, ...]
    events: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        return self.info.to_dict(now) | {
            "signature": self.signature,
            "statement": self.statement,
            "contact": self.contact,
            "description": self.description,
            "urls": list(self.urls),
            "posts": list(self.posts),
            "hashes": [str(s) for s in self.signals],
            "copies": [c.to_dict() for c in self.copies],
            "events": list(self.events),
        }


# --- receiving --------------------------------------------------------------------------------


def problems(request: NewTakedown, *, now: dt.datetime) -> list[str]:
    """Every element missing or invalid, one message each (empty: the request is complete)."""
    found: list[str] = []
    if not (request.signature or "").strip():
        found.append(
            "missing signature: a valid request is signed, physically or electronically "
            "(--signature, e.g. the requester's typed full name)"
        )
    if not (request.urls or request.posts or request.signals):
        found.append(
            "missing identification of the depiction: give where to find it (--url, --post) "
            "or the media to hash locally (--media, --hash)"
        )
    for url in request.urls:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            found.append(f"invalid URL {url!r}: expected http:// or https:// with a host")
    if any(not post.strip() for post in request.posts):
        found.append("invalid post id: empty")
    if not (request.statement or "").strip():
        found.append(
            "missing good-faith statement: the requester must state a good-faith belief that "
            "the depiction was published without consent (--statement)"
        )
    if not (request.contact or "").strip():
        found.append(
            "missing contact information: an email address, phone number or postal address "
            "to reach the requester (--contact)"
        )
    for name in ("signature", "statement", "contact", "description"):
        value = getattr(request, name)
        if value and len(value) > MAX_TEXT:
            found.append(f"the {name} is too long ({len(value):,} > {MAX_TEXT:,} characters)")
    found += _control_problems(request)
    if request.received_at is not None:
        if request.received_at.tzinfo is None:
            found.append("the receipt time needs a time zone")
        elif request.received_at > now + dt.timedelta(minutes=5):
            found.append(f"the receipt time {request.received_at.isoformat()} is in the future")
    return found


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (escape sequences among them) other than tab and newline: never stored,
as they would later be printed to someone's terminal or into a mail header."""
SINGLE_LINE = ("signature", "contact", "case")
"""Fields that are one line: a newline in them is refused too."""


def _control_problems(request: NewTakedown) -> list[str]:
    """Fields holding terminal control characters (or, in one-line fields, line breaks)."""
    found = []
    for name in ("signature", "statement", "contact", "description", "case"):
        value = getattr(request, name) or ""
        if CONTROL.search(value) or (name in SINGLE_LINE and "\n" in value):
            found.append(f"the {name} contains control characters or line breaks; refused")
    for name, values in (("URL", request.urls), ("post id", request.posts)):
        if any(CONTROL.search(v) or "\n" in v for v in values):
            found.append(f"a {name} contains control characters or line breaks; refused")
    return found


def create_takedown(
    session: Session,
    request: NewTakedown,
    *,
    actor: str,
    copies: Sequence[FoundCopy] = (),
    now: dt.datetime | None = None,
) -> TakedownDetail:
    """Record a complete request, its items and known copies, in the caller's transaction.

    Raises :class:`~ncii.errors.IncompleteRequest` listing every missing element.
    """
    actor = validate_actor(actor)
    now = now or utcnow()
    missing = problems(request, now=now)
    if missing:
        raise IncompleteRequest(missing)
    received = request.received_at or now
    linked = case_id(session, request.case) if request.case else None
    takedown = Takedown(
        received_at=received,
        due_at=received + DEADLINE,
        state=TakedownState.received,
        state_changed_at=received,
        signature=request.signature.strip(),  # type: ignore[union-attr]
        statement=request.statement.strip(),  # type: ignore[union-attr]
        contact=request.contact.strip(),  # type: ignore[union-attr]
        description=(request.description or "").strip() or None,
        case_id=linked,
        created_by=actor,
    )
    session.add(takedown)
    session.flush()
    items = [
        *((TakedownItemKind.url, u.strip(), None, None) for u in request.urls),
        *((TakedownItemKind.post, p.strip(), None, None) for p in request.posts),
        *(
            (TakedownItemKind.signal, s.value, s.type, s.quality)
            for s in dict.fromkeys(request.signals)
        ),
    ]
    session.execute(
        insert(TakedownItem),
        [
            {"takedown_id": takedown.id, "kind": k, "value": v, "signal_type": t, "quality": q}
            for k, v, t, q in items
        ],
    )
    if copies:
        session.execute(
            insert(TakedownCopy),
            [{"takedown_id": takedown.id, "found_at": now} | c.to_dict() for c in copies],
        )
    _event(session, takedown.id, None, TakedownState.received, actor=actor, at=received)
    history.audit(
        session,
        actor=actor,
        action="takedown.receive",
        details={
            "takedown": takedown.id,
            "received_at": received.isoformat(),
            "due_at": takedown.due_at.isoformat(),
            "case": request.case,
            "items": len(items),
            "copies": len(copies),
        },
        at=now,
    )
    return get_takedown(session, takedown.id)


def request_signals(hashes: HashResult) -> tuple[Signal, ...]:
    """The hashes of a request's media worth keeping: PDQ and the file digests."""
    return tuple(s for s in hashes.signals if s.type in IDENTITY_TYPES)


def find_copies(
    matcher: Matcher,
    media: Sequence[HashResult] = (),
    signals: Sequence[Signal] = (),
    scan_reports: Sequence[str | Path] = (),
) -> list[FoundCopy]:
    """Known copies of the request's media: bank entries its hashes match (flips included),
    and uploads the scan reports list as matching those entries."""
    matches: list[BankMatch] = []
    for hashes in media:
        matches.extend(matcher.match(hashes, include_inactive=True))
    if signals:
        matches.extend(matcher.match_signals(signals, include_inactive=True))
    best: dict[int, BankMatch] = {}
    for match in matches:
        known = best.get(match.entry_id)
        if known is None or match.distance < known.distance:
            best[match.entry_id] = match
    copies = [
        FoundCopy(CopySource.bank, m.entry_id, m.bank, m.signal_type, int(m.distance))
        for m in sorted(best.values(), key=lambda m: m.entry_id)
    ]
    for report in scan_reports:
        copies.extend(_scan_copies(Path(report), best))
    return copies


def _scan_copies(report: Path, entries: dict[int, BankMatch]) -> list[FoundCopy]:
    try:
        with report.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidArgument(f"{report}: cannot read this scan report ({exc})") from None
    if rows and not {"path", "status", "entry_ids"} <= set(rows[0]):
        raise InvalidArgument(f"{report}: not a scan report (no path, status, entry_ids columns)")
    found = []
    for row in rows:
        if row.get("status") != "match":
            continue
        for text in (row.get("entry_ids") or "").split(";"):
            if text.strip().isdigit() and int(text) in entries:
                match = entries[int(text)]
                found.append(
                    FoundCopy(
                        CopySource.scan,
                        match.entry_id,
                        match.bank,
                        match.signal_type,
                        int(match.distance),
                        row["path"],
                    )
                )
                break
    return found


# --- moving along -----------------------------------------------------------------------------


def _event(
    session: Session,
    takedown_id: int,
    before: TakedownState | None,
    after: TakedownState,
    *,
    actor: str,
    at: dt.datetime,
    reason: str | None = None,
) -> None:
    session.execute(
        insert(TakedownEvent).values(
            takedown_id=takedown_id,
            at=at,
            from_state=before,
            to_state=after,
            actor=actor,
            reason=reason,
        )
    )


def advance(
    session: Session,
    takedown_id: int,
    state: TakedownState | str,
    *,
    actor: str,
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> TakedownDetail:
    """Move a request to ``state`` (``at``: when it happened, default now); rejecting needs a
    reason. Refuses moves the workflow does not allow, e.g. out of removed or rejected."""
    actor = validate_actor(actor)
    try:
        state = TakedownState(state)
    except ValueError:
        known = ", ".join(s.value for s in TakedownState)
        raise InvalidArgument(f"invalid state {state!r} (known: {known})") from None
    now = utcnow()
    at = at or now
    if at.tzinfo is None:
        raise InvalidArgument("the time of the change needs a time zone")
    takedown = session.scalar(select(Takedown).where(Takedown.id == takedown_id).with_for_update())
    if takedown is None:
        raise NotFound(f"no takedown request {takedown_id}")
    before = TakedownState(takedown.state)
    if state not in NEXT_STATES[before]:
        allowed = ", ".join(s.value for s in NEXT_STATES[before]) or "none: it is closed"
        raise InvalidArgument(
            f"takedown request {takedown_id} is {before.value}; it cannot become {state.value} "
            f"(allowed: {allowed})"
        )
    reason = (reason or "").strip() or None
    if state is TakedownState.rejected and reason is None:
        raise InvalidArgument(f"rejecting takedown request {takedown_id} needs a reason")
    if at < takedown.received_at:
        raise InvalidArgument(f"{at.isoformat()} is before the request was received")
    if at > now + dt.timedelta(minutes=5):
        raise InvalidArgument(f"{at.isoformat()} is in the future")
    takedown.state, takedown.state_changed_at = state, at
    if state is TakedownState.removed:
        takedown.removed_at = at
    if state is TakedownState.rejected:
        takedown.reject_reason = reason
    session.flush()
    _event(session, takedown.id, before, state, actor=actor, at=at, reason=reason)
    history.audit(
        session,
        actor=actor,
        action=f"takedown.{state.value}",
        details={
            "takedown": takedown.id,
            "from": before.value,
            "to": state.value,
            "at": at.isoformat(),
            "reason": reason,
        },
        at=now,
    )
    return get_takedown(session, takedown.id)


# --- reading ----------------------------------------------------------------------------------


def _info(takedown: Takedown, case: str | None) -> TakedownInfo:
    return TakedownInfo(
        id=takedown.id,
        state=TakedownState(takedown.state),
        received_at=takedown.received_at,
        due_at=takedown.due_at,
        state_changed_at=takedown.state_changed_at,
        removed_at=takedown.removed_at,
        reject_reason=takedown.reject_reason,
        case=case,
    )


def get_takedown(session: Session, takedown_id: int) -> TakedownDetail:
    row = session.execute(
        select(Takedown, Case.number)
        .outerjoin(Case, Case.id == Takedown.case_id)
        .where(Takedown.id == takedown_id)
    ).first()
    if row is None:
        raise NotFound(f"no takedown request {takedown_id}")
    takedown, number = row
    items = list(
        session.scalars(
            select(TakedownItem)
            .where(TakedownItem.takedown_id == takedown_id)
            .order_by(TakedownItem.id)
        )
    )
    copies = tuple(
        FoundCopy(CopySource(c.source), c.entry_id, c.bank, c.signal_type, c.distance, c.location)
        for c in session.scalars(
            select(TakedownCopy)
            .where(TakedownCopy.takedown_id == takedown_id)
            .order_by(TakedownCopy.id)
        )
    )
    events = tuple(
        {
            "at": e.at.isoformat(),
            "from": e.from_state.value if e.from_state else None,
            "to": TakedownState(e.to_state).value,
            "actor": e.actor,
            "reason": e.reason,
        }
        for e in session.scalars(
            select(TakedownEvent)
            .where(TakedownEvent.takedown_id == takedown_id)
            .order_by(TakedownEvent.id)
        )
    )
    return TakedownDetail(
        info=_info(takedown, number),
        signature=takedown.signature,
        statement=takedown.statement,
        contact=takedown.contact,
        description=takedown.description,
        urls=tuple(i.value for i in items if i.kind == TakedownItemKind.url),
        posts=tuple(i.value for i in items if i.kind == TakedownItemKind.post),
        signals=tuple(
            Signal(i.signal_type or "", i.value, i.quality)
            for i in items
            if i.kind == TakedownItemKind.signal
        ),
        copies=copies,
        events=events,
    )


def list_takedowns(
    session: Session,
    *,
    now: dt.datetime | None = None,
    overdue: bool = False,
    due_within: dt.timedelta | None = None,
    state: TakedownState | None = None,
    limit: int = 1_000,
) -> list[TakedownInfo]:
    """Requests by deadline. ``overdue``: open past their deadline; ``due_within``: open and
    due within that time from now, not yet overdue; both together: either."""
    now = now or utcnow()
    query = (
        select(Takedown, Case.number)
        .outerjoin(Case, Case.id == Takedown.case_id)
        .order_by(Takedown.due_at, Takedown.id)
        .limit(limit)
    )
    if state is not None:
        query = query.where(Takedown.state == state)
    if overdue or due_within is not None:
        query = query.where(Takedown.state.in_(OPEN_STATES))
        windows = []
        if overdue:
            windows.append(Takedown.due_at < now)
        if due_within is not None:
            windows.append((Takedown.due_at >= now) & (Takedown.due_at <= now + due_within))
        query = query.where(or_(*windows))
    return [_info(t, number) for t, number in session.execute(query)]
