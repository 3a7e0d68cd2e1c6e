"""Where the test data lives: vendored Meta images, and ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENDORED = REPO / "tests" / "data" / "meta"


def _find_shared() -> Path | None:
    explicit = os.environ.get("NCII_SHARED_DATA")
    candidates = [Path(explicit)] if explicit else []
    candidates += [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
    return next((c for c in candidates if (c / "README.md").is_file()), None)


SHARED = _find_shared()

requires_shared = pytest.mark.skipif(
    SHARED is None,
    reason="../shared/data is not beside this checkout (CI has it; set NCII_SHARED_DATA)",
)


def shared(relative: str) -> Path:
    """A path under ../shared/data; only call from tests marked ``requires_shared``."""
    assert SHARED is not None
    return SHARED / relative


def read_expected(tsv: Path) -> list[tuple[str, str, str]]:
    """Rows (path, expected PDQ hex, note) of an EXPECTED_PDQ.tsv file."""
    rows = []
    for line in tsv.read_text().splitlines():
        if line and not line.startswith("#"):
            path, expected, note = line.split("\t")
            rows.append((path, expected, note))
    return rows
