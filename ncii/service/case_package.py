"""Hash-only case packages: what a victim's own machine hands over to open a case elsewhere.

``ncii case package`` hashes the media where it is and writes this JSON; ``ncii case open
--from`` reads it. The file holds hashes (and a video's frame hashes) and the media type, never
media, and file paths only when asked. Pure: no database or CLI code.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from ncii.detection import BankHash
from ncii.errors import InvalidArgument, InvalidSignal, MediaError
from ncii.hashing import HashResult
from ncii.service import jsontext
from ncii.signals import Signal, get_signal_type
from ncii.signals.vpdq import VideoHashes, VpdqFrame

FORMAT = "ncii-case-package"
VERSION = 1
MAX_ITEMS = 10_000
"""Files per package."""
MAX_HASHES = 100_000
"""Signals and video frames per package in all: 10,000 photos' 7 signals each and 30,000
frames besides (one a second: 8 hours of video). Without it one item of 200,000 frames would
get around :data:`MAX_ITEMS`."""
MAX_VARIANTS = 64
"""Variants per item (the default pipeline makes 14), so at most 64 per item in all."""
MEDIA_TYPE_LENGTH = 100
PACKAGE_KEYS = frozenset({"format", "version", "created_at", "items"})
ITEM_KEYS = frozenset({"media_type", "signals", "frames", "variants", "path"})


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
    if not all(math.isfinite(f.timestamp) and f.timestamp >= 0 for f in frames):
        raise InvalidArgument(f"{hashes.source}: a video frame's time is not a finite number")
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
        if not all(math.isfinite(f.timestamp) and f.timestamp >= 0 for f in item.frames):
            # Infinity and NaN are not JSON: such a package would not read back anywhere.
            raise InvalidArgument(
                f"{item.path or 'a video'}: a frame timestamp is not a finite time >= 0"
            )
        data["frames"] = [
            [f.index, f.quality, f.pdq, round(f.timestamp, 3), f.unbarred] for f in item.frames
        ]
    if item.variants:
        data["variants"] = [[v.label, v.value, v.quality] for v in item.variants]
    if item.path is not None:
        data["path"] = item.path
    return data


def read_package(text: str, *, name: str) -> list[PackageItem]:
    """Parse and validate a package as strictly as a jsonl import: every field is checked,
    numbers must be finite and in range, and :data:`MAX_ITEMS` files and :data:`MAX_HASHES`
    hashes bound what one package can make the store write. Errors name the file and the line
    or item."""
    try:
        data = jsontext.loads(text)
    except jsontext.BadJson as exc:
        raise InvalidArgument(
            f"{name}, line {exc.line}: not a case package ({exc.reason})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgument(f'{name}: not a case package (no "format": "{FORMAT}")')
    version = data.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise InvalidArgument(f"{name}: case package version {jsontext.shown(version)} unknown")
    _known_keys(data, PACKAGE_KEYS, name)
    created = data.get("created_at")
    try:
        if not isinstance(created, str):
            raise ValueError
        dt.datetime.fromisoformat(created)
    except ValueError:
        raise InvalidArgument(
            f"{name}: created_at {jsontext.shown(created)} is not an ISO 8601 time"
        ) from None
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{name}: the case package lists no items")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(f"{name}: more than {MAX_ITEMS:,} items")
    read, hashes = [], 0
    for number, raw in enumerate(items, 1):
        item = _item(raw, f"{name}, item {number}")
        hashes += len(item.signals) + len(item.frames)
        if hashes > MAX_HASHES:
            raise InvalidArgument(
                f"{name}: more than {MAX_HASHES:,} hashes (signals and video frames) by item "
                f"{number}"
            )
        read.append(item)
    return read


def _known_keys(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidArgument(f"{where}: unknown field {jsontext.shown(unknown[0])}")


def _item(raw: Any, where: str) -> PackageItem:
    if not isinstance(raw, dict) or not isinstance(raw.get("signals"), list):
        raise InvalidArgument(f"{where}: expected an object with a list of signals")
    _known_keys(raw, ITEM_KEYS, where)
    try:
        signals = tuple(_signal(s) for s in raw["signals"])
        frames = tuple(_frame(f) for f in _list(raw, "frames"))
        variants = tuple(_variant(v) for v in _list(raw, "variants"))
        media_type = _optional_text(raw, "media_type", MEDIA_TYPE_LENGTH)
        path = _optional_text(raw, "path", None)
    except (InvalidSignal, MediaError, TypeError, ValueError, KeyError) as exc:
        raise InvalidArgument(f"{where}: {exc}") from None
    if not signals:
        raise InvalidArgument(f"{where}: no signals")
    if len({s.type for s in signals}) != len(signals):
        raise InvalidArgument(f"{where}: a signal type is listed twice")
    if len(variants) > MAX_VARIANTS:
        raise InvalidArgument(f"{where}: more than {MAX_VARIANTS} variants")
    return PackageItem(
        signals=signals, media_type=media_type, frames=frames, path=path, variants=variants
    )


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    return value


def _optional_text(raw: dict[str, Any], key: str, limit: int | None) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise ValueError(f"invalid {key} {jsontext.shown(value)}")
    return jsontext.check_text(value, key)


def _int(value: Any, what: str, low: int, high: int) -> int:
    """An integer in [low, high]; JSON's true/false are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        big = isinstance(value, int) and value.bit_length() > 64
        shown = f"of {value.bit_length()} bits" if big else jsontext.shown(value)
        raise ValueError(f"invalid {what} {shown}: expected {low}-{high}")
    return value


def _signal(raw: Any) -> Signal:
    if not isinstance(raw, dict) or not {"type", "value"} <= set(raw):
        raise ValueError("a signal must be an object with type and value")
    unknown = sorted(set(raw) - {"type", "value", "quality"})
    if unknown:
        raise ValueError(f"unknown signal field {jsontext.shown(unknown[0])}")
    quality = raw.get("quality")
    if quality is not None:
        quality = _int(quality, "quality", 0, 100)
    if not isinstance(raw["type"], str) or not isinstance(raw["value"], str):
        raise ValueError("a signal's type and value must be strings")
    return Signal.of(raw["type"], raw["value"], quality=quality)


def _variant(raw: Any) -> BankHash:
    if not isinstance(raw, list) or len(raw) != 3:
        raise ValueError("a variant must be [label, pdq, quality]")
    label, value, quality = raw
    if not isinstance(label, str) or not 0 < len(label) <= 32 or not label.isprintable():
        raise ValueError(f"invalid variant label {jsontext.shown(label)}")
    if not isinstance(value, str):
        raise ValueError(f"invalid variant hash {jsontext.shown(value)}")
    return BankHash(
        label, get_signal_type("pdq").parse(value), _int(quality, "variant quality", 0, 100)
    )


def _frame(raw: Any) -> VpdqFrame:
    if not isinstance(raw, list) or len(raw) != 5:
        raise ValueError("a video frame must be [index, quality, pdq, timestamp, unbarred]")
    index, quality, pdq, timestamp, unbarred = raw
    kind = get_signal_type("pdq")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise ValueError(f"invalid video frame timestamp {jsontext.shown(timestamp)}")
    seconds = float(timestamp)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"invalid video frame timestamp {seconds}: expected a time >= 0")
    if not isinstance(pdq, str) or not (unbarred is None or isinstance(unbarred, str)):
        raise ValueError("a video frame's hashes must be strings")
    return VpdqFrame(
        index=_int(index, "video frame index", 0, jsontext.MAX_FRAME_INDEX),
        quality=_int(quality, "video frame quality", 0, 100),
        pdq=kind.parse(pdq),
        timestamp=seconds,
        unbarred=None if unbarred is None else kind.parse(unbarred),
    )
