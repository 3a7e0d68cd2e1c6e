"""Compliance figures for a period: how many takedown requests came in, how many were removed
within the 48 hours the law allows, how fast, and what matching and withdrawals did meanwhile.

Requests are counted by when they were received (``start <= received_at < end``); what became
of them is counted as of ``now``, whenever it happened. The share removed within 48 hours is of
the requests whose outcome is known: removed (in time or late) or still open past their
deadline. Rejected ones are left out (a request rejected as invalid has no deadline to meet),
and so are open ones not yet due (counted apart: they may still be removed in time).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ncii.errors import InvalidArgument
from ncii.service.takedowns import DEADLINE, OPEN_STATES
from ncii.store.models import Case, Entry, MatchEvent, Takedown, TakedownState, utcnow


@dataclass(frozen=True, slots=True)
class DayFigures:
    """Requests received on one UTC day, by what became of them."""

    day: dt.date
    received: int = 0
    removed_in_time: int = 0
    removed_late: int = 0
    rejected: int = 0
    open: int = 0


@dataclass(frozen=True, slots=True)
class TakedownReport:
    start: dt.datetime
    end: dt.datetime
    received: int
    removed: int
    removed_in_time: int
    removed_in_time_pct: float | None
    """Of requests removed or past their deadline; None when there were none."""
    median_hours: float | None
    p90_hours: float | None
    """90th percentile of hours from receipt to removal (nearest rank)."""
    rejected: int
    still_open: int
    overdue: int
    matches: int
    withdrawals: int
    """Cases withdrawn in the period."""
    entries_withdrawn: int
    """Bank entries withdrawn in the period (by cases and by imports alike)."""
    days: tuple[DayFigures, ...] = ()
    open_not_yet_due: int = 0
    """Open requests still within their 48 hours: in neither side of the percentage."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "received": self.received,
            "removed": self.removed,
            "removed_within_48h": self.removed_in_time,
            "removed_within_48h_pct": self.removed_in_time_pct,
            "median_hours_to_removal": self.median_hours,
            "p90_hours_to_removal": self.p90_hours,
            "rejected": self.rejected,
            "still_open": self.still_open,
            "overdue": self.overdue,
            "open_not_yet_due": self.open_not_yet_due,
            "matches": self.matches,
            "withdrawals": self.withdrawals,
            "entries_withdrawn": self.entries_withdrawn,
        }


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of the values
    at or below it (no interpolation, so it is always a time that actually happened)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def takedown_report(
    session: Session, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
) -> TakedownReport:
    """The figures for requests received in ``[start, end)``, as of ``now``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidArgument("report bounds need a time zone")
    if end <= start:
        raise InvalidArgument(f"the report ends ({end.isoformat()}) before it starts")
    now = now or utcnow()
    rows = session.execute(
        select(Takedown.received_at, Takedown.state, Takedown.removed_at, Takedown.due_at).where(
            Takedown.received_at >= start, Takedown.received_at < end
        )
    ).all()
    hours: list[float] = []
    days: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, int] = defaultdict(int)
    for received_at, state, removed_at, due_at in rows:
        state = TakedownState(state)
        day = days[received_at.astimezone(dt.UTC).date()]
        day["received"] += 1
        if state is TakedownState.removed and removed_at is not None:
            hours.append((removed_at - received_at).total_seconds() / 3600)
            kind = "removed_in_time" if removed_at <= due_at else "removed_late"
        elif state is TakedownState.rejected:
            kind = "rejected"
        else:
            kind = "open"
            if state in OPEN_STATES and now > received_at + DEADLINE:
                counts["overdue"] += 1
        day[kind] += 1
        counts[kind] += 1
    decided = len(hours) + counts["overdue"]
    return TakedownReport(
        start=start,
        end=end,
        received=len(rows),
        removed=len(hours),
        removed_in_time=counts["removed_in_time"],
        removed_in_time_pct=(
            round(100 * counts["removed_in_time"] / decided, 1) if decided else None
        ),
        median_hours=round(statistics.median(hours), 2) if hours else None,
        p90_hours=round(nearest_rank(hours, 0.9), 2) if hours else None,
        rejected=counts["rejected"],
        still_open=counts["open"],
        overdue=counts["overdue"],
        matches=_count(session, MatchEvent.at, start, end),
        withdrawals=_count(session, Case.withdrawn_at, start, end),
        entries_withdrawn=_count(session, Entry.withdrawn_at, start, end),
        days=tuple(DayFigures(day, **figures) for day, figures in sorted(days.items())),
        open_not_yet_due=counts["open"] - counts["overdue"],
    )


def _count(session: Session, column: Any, start: dt.datetime, end: dt.datetime) -> int:
    return session.scalar(select(func.count()).where(column >= start, column < end)) or 0
