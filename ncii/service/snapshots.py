"""Start a matcher from a saved index, verified against the store, instead of a rebuild.

Rebuilding the index of ten million hashes means reading them all from the database and
sorting them again (minutes); a snapshot is the built index as plain ``.npy`` arrays that load
memory-mapped in a second or two (and are shared between processes on one machine, through
the page cache), plus ``manifest.json``:

* the change-log position the index reflects (``seq``, and that change's timestamp, which
  ties the snapshot to this database and this log);
* a fingerprint of the rows it was built from: count, sum and maximum of the signal row ids
  (and the same for video frames, if any), read in the same transaction as the rows.

On load the fingerprint is recomputed over the rows up to the snapshot's maximum id. Equal
means no row the snapshot covers has been deleted and none below its highest id has appeared
since. On SQLite the count and maximum are read from the b-tree's page counts and the rows
added since (a sum would read every row: seconds at twenty million hashes); there ids come
from AUTOINCREMENT and one writer at a time, so a new row always lands above every id ever
used, and only a deletion can change what the snapshot covers, which the count shows.
Replaying the change log from ``seq`` then brings the index up to date exactly as a running
matcher does. Anything else (another database, a rewound log, a deleted bank, damaged
or missing files, other options) makes the caller rebuild from the store; a snapshot is never
trusted over the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ncii.match import MatchIndex
from ncii.store.engine import Store
from ncii.store.models import Change, EntrySignal, VideoFrame

FORMAT = 3
MIN_ROWS = 1
"""A snapshot is kept for any index that holds a hash: even at ten thousand entries, reading
and indexing the rows costs a one-file ``ncii match`` more than opening the snapshot."""


@dataclass(frozen=True)
class Fingerprint:
    """Count, sum and maximum of the row ids of the tables the index is built from."""

    signals: tuple[int, int, int]
    frames: tuple[int, int, int]


@dataclass(frozen=True)
class Manifest:
    format: int
    seq: int
    seq_at: str | None
    include_low_quality: bool
    fingerprint: Fingerprint
    counts: dict[str, int]
    types: list[str]
    """The signal types the index was loaded with (a type may have no rows)."""


def default_folder(url: str) -> Path:
    """Where the CLI keeps the snapshot of the store at ``url``: the user's cache directory,
    one folder per database (named by a digest of the URL, which may hold a password)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("ncii", appauthor=False)) / "index" / digest


def folder_for(store: Store, enabled: bool = True) -> Path | None:
    """The snapshot folder a command uses for ``store`` (``None`` when ``enabled`` is off)."""
    if not enabled:
        return None
    return default_folder(store.url.render_as_string(hide_password=False))


def _id_stats(session: Session, column, upto: int | None) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    query = select(
        func.count(column), func.coalesce(func.sum(column), 0), func.coalesce(func.max(column), 0)
    )
    if upto is not None:
        query = query.where(column <= upto)
    count, total, highest = session.execute(query).one()
    return int(count), int(total), int(highest)


def fingerprint(session: Session, upto: Fingerprint | None = None) -> Fingerprint:
    """The store's fingerprint now, or, given a snapshot's, over the rows up to its maxima."""
    return Fingerprint(
        signals=_id_stats(session, EntrySignal.id, upto.signals[2] if upto else None),
        frames=_id_stats(session, VideoFrame.id, upto.frames[2] if upto else None),
    )


def _covers(session: Session, column, saved: tuple[int, int, int]) -> bool:  # type: ignore[no-untyped-def]
    """Whether the rows up to ``saved``'s maximum id are still the ones counted in it."""
    if session.get_bind().dialect.name != "sqlite":
        return _id_stats(session, column, saved[2]) == saved
    count, _, highest = saved
    total = session.scalar(select(func.count()).select_from(column.table)) or 0
    above = session.scalar(select(func.count()).where(column > highest)) or 0
    top = session.scalar(select(func.coalesce(func.max(column), 0)).where(column <= highest))
    return (total - above, top) == (count, highest)


def still_covers(session: Session, saved: Fingerprint) -> bool:
    """Whether no row a snapshot with this fingerprint covers was deleted or has appeared."""
    return _covers(session, EntrySignal.id, saved.signals) and _covers(
        session, VideoFrame.id, saved.frames
    )


def change_time(session: Session, seq: int) -> str | None:
    if seq == 0:
        return None
    at = session.scalar(select(Change.at).where(Change.seq == seq))
    return None if at is None else at.astimezone(dt.UTC).isoformat()


def save(
    folder: Path,
    index: MatchIndex,
    *,
    seq: int,
    seq_at: str | None,
    include_low_quality: bool,
    fingerprint: Fingerprint,
    types: Iterable[str],
) -> None:
    """Write the snapshot beside ``folder`` and swap it in with renames, so a reader sees the
    old snapshot or the new one, never half of one (and processes that mapped the old files
    keep them until they exit)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f"{folder.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    index.save(staging / "index")
    manifest = Manifest(
        FORMAT, seq, seq_at, include_low_quality, fingerprint, index.counts(), sorted(types)
    )
    (staging / "manifest.json").write_text(json.dumps(asdict(manifest)))
    retired = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, retired)
    os.replace(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def read_manifest(folder: Path) -> Manifest:
    data = json.loads((folder / "manifest.json").read_text())
    data["fingerprint"] = Fingerprint(
        **{k: tuple(v) for k, v in data["fingerprint"].items()}  # type: ignore[arg-type]
    )
    return Manifest(**data)


def load(
    folder: Path, session: Session, *, include_low_quality: bool
) -> tuple[MatchIndex, int, list[str]] | str:
    """The snapshot's index, change-log position and signal types if it still describes this
    store (call inside the transaction the change log will be replayed from), else why not."""
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError:
        return "no snapshot"
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"unreadable manifest ({exc})"
    if manifest.format != FORMAT:
        return f"snapshot format {manifest.format}, expected {FORMAT}"
    if manifest.include_low_quality != include_low_quality:
        return "built with other quality options"
    if change_time(session, manifest.seq) != manifest.seq_at:
        return "the change log does not contain the snapshot's position (another database?)"
    if not still_covers(session, manifest.fingerprint):
        return "rows the snapshot covers were added or deleted since"
    try:
        index = MatchIndex.load_saved(folder / "index")
    except (OSError, ValueError, KeyError) as exc:
        return f"unreadable index ({exc})"
    if index.counts() != manifest.counts or not set(manifest.counts) <= set(manifest.types):
        return "index files disagree with the manifest"
    return index, manifest.seq, manifest.types
