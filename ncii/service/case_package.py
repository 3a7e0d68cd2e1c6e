"""Hash-only case packages: what a victim's own machine hands over to open a case elsewhere.

``ncii case package`` hashes the media where it is and writes this JSON; ``ncii case open
--from`` reads it. The file holds hashes (and a video's frame hashes) and the media type, never
media, and file paths only when asked. Pure: no database or CLI code.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from ncii.detection import BankHash
from ncii.errors import InvalidArgument, InvalidSignal, MediaError
from ncii.hashing import HashResult
from ncii.signals import Signal, get_signal_type
from ncii.signals.vpdq import VideoHashes, VpdqFrame

FORMAT = "ncii-case-package"
VERSION = 1
MAX_ITEMS = 10_000


@dataclass(frozen=True, slots=True)
class PackageItem:
    """One reported file, as hashes."""

    signals: tuple[Signal, ...]
    media_type: str | None = None
    frames: tuple[VpdqFrame, ...] = ()
    path: str | None = None
    variants: tuple[BankHash, ...] = ()
    """PDQ hashes of variants of the picture (crops, small rotations), see ``ncii.detection``."""


def item_of(hashes: HashResult, *, include_path: bool = False) -> PackageItem:
    frames = hashes.frames if isinstance(hashes, VideoHashes) else ()
    return PackageItem(
        signals=tuple(hashes.signals),
        media_type=hashes.media_type,
        frames=tuple(frames),
        path=hashes.source if include_path else None,
        variants=hashes.pdq_variants,
    )


def build_package(items: list[PackageItem], *, created_at: dt.datetime | None = None) -> dict:
    """The package as a JSON-ready dict."""
    if not items:
        raise InvalidArgument("a case package needs at least one hashed file")
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": (created_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "items": [_item_dict(item) for item in items],
    }


def _item_dict(item: PackageItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "media_type": item.media_type,
        "signals": [
            {"type": s.type, "value": s.value}
            | ({"quality": s.quality} if s.quality is not None else {})
            for s in item.signals
        ],
    }
    if item.frames:
        data["frames"] = [
            [f.index, f.quality, f.pdq, round(f.timestamp, 3), f.unbarred] for f in item.frames
        ]
    if item.variants:
        data["variants"] = [[v.label, v.value, v.quality] for v in item.variants]
    if item.path is not None:
        data["path"] = item.path
    return data


def read_package(text: str, *, name: str) -> list[PackageItem]:
    """Parse and validate a package; errors name the file and the item."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{name}: not a case package (invalid JSON: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgument(f'{name}: not a case package (no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise InvalidArgument(f"{name}: case package version {data.get('version')!r} unknown")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{name}: the case package lists no items")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(f"{name}: more than {MAX_ITEMS:,} items")
    return [_item(raw, f"{name}, item {n}") for n, raw in enumerate(items, 1)]


def _item(raw: Any, where: str) -> PackageItem:
    if not isinstance(raw, dict) or not isinstance(raw.get("signals"), list):
        raise InvalidArgument(f"{where}: expected an object with a list of signals")
    try:
        signals = tuple(_signal(s) for s in raw["signals"])
        frames = tuple(_frame(f) for f in raw.get("frames") or ())
        variants = tuple(_variant(v) for v in raw.get("variants") or ())
    except (InvalidSignal, MediaError, TypeError, ValueError, KeyError) as exc:
        raise InvalidArgument(f"{where}: {exc}") from None
    if not signals:
        raise InvalidArgument(f"{where}: no signals")
    media_type = raw.get("media_type")
    path = raw.get("path")
    return PackageItem(
        signals=signals,
        media_type=media_type if isinstance(media_type, str) else None,
        frames=frames,
        path=path if isinstance(path, str) else None,
        variants=variants,
    )


def _signal(raw: Any) -> Signal:
    if not isinstance(raw, dict):
        raise ValueError("a signal must be an object with type and value")
    quality = raw.get("quality")
    if quality is not None and not isinstance(quality, int):
        raise ValueError(f"invalid quality {quality!r}")
    return Signal.of(str(raw["type"]), raw["value"], quality=quality)


def _variant(raw: Any) -> BankHash:
    label, value, quality = raw
    if not isinstance(label, str) or not 0 < len(label) <= 32:
        raise ValueError(f"invalid variant label {label!r}")
    if not isinstance(quality, int) or not 0 <= quality <= 100:
        raise ValueError(f"invalid variant quality {quality!r}")
    return BankHash(label, get_signal_type("pdq").parse(value), quality)


def _frame(raw: Any) -> VpdqFrame:
    index, quality, pdq, timestamp, unbarred = raw
    kind = get_signal_type("pdq")
    if not isinstance(index, int) or not isinstance(quality, int) or not 0 <= quality <= 100:
        raise ValueError(f"invalid video frame {raw!r}")
    return VpdqFrame(
        index=index,
        quality=quality,
        pdq=kind.parse(pdq),
        timestamp=float(timestamp),
        unbarred=None if unbarred is None else kind.parse(unbarred),
    )
