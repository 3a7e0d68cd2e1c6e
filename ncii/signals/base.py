"""What every signal type knows about itself: its name, string form, distance and threshold.

A hash is parsed once at the edge into its canonical lowercase hex form; inside, matching code
turns it into an int and measures Hamming distance as ``(a ^ b).bit_count()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ncii.errors import InvalidSignal

_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class SignalType:
    """A fixed-width hex hash compared by Hamming distance.

    ``exact`` types (file digests) match only at distance 0; perceptual types match at
    ``threshold`` or below. Only ``decisive`` types decide a match on their own; the others
    (the 64-bit imagehash family, whose unrelated photos collide far too often at scale, see
    ``docs/detection.md``) only corroborate one, unless a bank opts in to them.
    """

    name: str
    bits: int
    threshold: int
    exact: bool
    description: str
    examples: tuple[str, ...] = ()
    decisive: bool = True

    HEX_PER_BYTE: ClassVar[int] = 2

    @property
    def hex_length(self) -> int:
        return self.bits // 4

    def parse(self, value: str) -> str:
        """Return the canonical form (lowercase hex) or raise :class:`InvalidSignal`."""
        if not isinstance(value, str):
            raise InvalidSignal(f"{self.name}: expected a hex string, got {type(value).__name__}")
        text = value.strip()
        if len(text) != self.hex_length or not _HEX.fullmatch(text):
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise InvalidSignal(
                f"invalid {self.name} hash {shown!r}: expected {self.hex_length} hex digits"
            )
        return text.lower()

    def to_int(self, value: str) -> int:
        return int(self.parse(value), 16)

    def distance(self, a: str, b: str) -> int:
        """Hamming distance between two hashes of this type."""
        return (self.to_int(a) ^ self.to_int(b)).bit_count()

    def matches(self, a: str, b: str, threshold: int | None = None) -> bool:
        limit = 0 if self.exact else (self.threshold if threshold is None else threshold)
        return self.distance(a, b) <= limit
