"""Signal types: a registry of the hash kinds ncii computes, parses and compares."""

from __future__ import annotations

from dataclasses import dataclass

from ncii.errors import InvalidSignal, UnknownSignalType
from ncii.signals.base import SignalType
from ncii.signals.exact import MD5, SHA256
from ncii.signals.imagehashes import AHASH, DHASH, PHASH, WHASH
from ncii.signals.pdq import PDQ, PDQ_MATCH_THRESHOLD, PDQ_MIN_QUALITY

SIGNAL_TYPES: dict[str, SignalType] = {
    t.name: t for t in (PDQ, PHASH, DHASH, AHASH, WHASH, MD5, SHA256)
}
"""Every registered signal type by name, in the order results list them."""

IMAGE_SIGNALS: tuple[str, ...] = ("pdq", "phash", "dhash", "ahash", "whash")
FILE_SIGNALS: tuple[str, ...] = ("md5", "sha256")
WEAK_SIGNALS: tuple[str, ...] = tuple(t.name for t in SIGNAL_TYPES.values() if not t.decisive)
"""The 64-bit imagehash family: supporting evidence, deciding only in banks that opt in."""


def get_signal_type(name: str) -> SignalType:
    try:
        return SIGNAL_TYPES[name.strip().lower()]
    except KeyError:
        known = ", ".join(SIGNAL_TYPES)
        raise UnknownSignalType(f"unknown signal type {name!r} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class Signal:
    """One computed or parsed hash: type, canonical value and quality (PDQ's; a picture's
    imagehash family carries its PDQ quality too when that is low, see ncii.hashing)."""

    type: str
    value: str
    quality: int | None = None

    @property
    def low_quality(self) -> bool:
        """True for a PDQ hash too weak to match on (returned, but skipped unless asked)."""
        return self.quality is not None and self.quality < PDQ_MIN_QUALITY

    @classmethod
    def parse(cls, text: str, *, quality: int | None = None) -> Signal:
        """Parse ``TYPE:VALUE`` (e.g. ``pdq:f8f8…``) into a validated signal."""
        kind, sep, value = text.partition(":")
        if not sep:
            raise InvalidSignal(f"invalid signal {text!r}: expected TYPE:VALUE, e.g. pdq:<64 hex>")
        return cls.of(kind, value, quality=quality)

    @classmethod
    def of(cls, kind: str, value: str, *, quality: int | None = None) -> Signal:
        signal_type = get_signal_type(kind)
        if quality is not None and not (0 <= quality <= 100):
            raise InvalidSignal(f"invalid {signal_type.name} quality {quality!r}: expected 0-100")
        return cls(signal_type.name, signal_type.parse(value), quality)

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


__all__ = [
    "FILE_SIGNALS",
    "IMAGE_SIGNALS",
    "PDQ_MATCH_THRESHOLD",
    "PDQ_MIN_QUALITY",
    "SIGNAL_TYPES",
    "WEAK_SIGNALS",
    "Signal",
    "SignalType",
    "get_signal_type",
]
