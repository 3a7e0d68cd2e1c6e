"""File digests: exact-match signals over the file's bytes (StopNCII exchanges video MD5s)."""

from __future__ import annotations

import hashlib

from ncii.signals.base import SignalType

MD5 = SignalType(
    name="md5",
    bits=128,
    threshold=0,
    exact=True,
    description="MD5 of the file bytes (exact match only)",
    examples=("d41d8cd98f00b204e9800998ecf8427e",),
)

SHA256 = SignalType(
    name="sha256",
    bits=256,
    threshold=0,
    exact=True,
    description="SHA-256 of the file bytes (exact match only)",
    examples=("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",),
)


def compute_digests(data: bytes) -> dict[str, str]:
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
