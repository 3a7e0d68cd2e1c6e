"""The match log: one row each time an upload matches an active entry, so a case can say how
often its images were caught (``ncii case status``) and reports can count matches.

Nothing about the upload is kept (no path, no hash): only which entry, when, how closely and
what found it. ``ncii match`` and ``ncii scan`` record what they report; an application
embedding a :class:`~ncii.service.matching.Matcher` calls :func:`record_matches` the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ncii.errors import InvalidArgument
from ncii.service.matching import BankMatch
from ncii.store.models import MatchEvent, utcnow


def record_matches(
    session: Session,
    uploads: Iterable[Sequence[BankMatch]],
    *,
    source: str = "match",
    at: dt.datetime | None = None,
) -> int:
    """Log each upload's active matches, one row per entry (its closest signal), in the
    caller's transaction; returns the rows written. Inactive matches are not counted."""
    if not source or len(source) > 16:
        raise InvalidArgument(f"invalid match source {source!r}: 1-16 characters")
    when = at or utcnow()
    rows = []
    for matches in uploads:
        best: dict[int, BankMatch] = {}
        for match in matches:
            if not match.active:
                continue
            known = best.get(match.entry_id)
            if known is None or match.distance < known.distance:
                best[match.entry_id] = match
        rows.extend(
            {
                "at": when,
                "entry_id": m.entry_id,
                "signal_type": m.signal_type,
                "distance": int(m.distance),
                "source": source,
            }
            for m in best.values()
        )
    if rows:
        session.execute(insert(MatchEvent), rows)
    return len(rows)
