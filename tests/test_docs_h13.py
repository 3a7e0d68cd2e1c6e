"""The README documents what a user needs and cannot find elsewhere (issue 13 item 12)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_the_shared_data_variable() -> None:
    source = (ROOT / "tests" / "shared_data.py").read_text(encoding="utf-8")
    assert "NCII_SHARED_DATA" in source and "NCII_SHARED_DATA" in README


def test_every_stopncii_field_ncii_reads_is_in_the_readme() -> None:
    source = (ROOT / "ncii" / "service" / "formats.py").read_text(encoding="utf-8")
    reader = source[source.index("def _read_stopncii") : source.index("def _epoch")]
    fields = set(re.findall(r'record\.get\("(\w+)"\)', reader)) | {"hashRecords"}
    assert {"signalType", "hashValue", "hashStatus", "caseNumbers"} <= fields
    missing = sorted(f for f in fields if f"`{f}`" not in README)
    assert not missing, f"StopNCII fields read but not documented: {missing}"


def test_the_readme_states_detection_limits_beside_the_recall_figure() -> None:
    recall = README.index("98.7%")
    nearby = README[recall : README.index("\n## ", recall)]  # the rest of its section
    assert "limits" in nearby and "one side only" in nearby


def test_benchmarks_put_current_figures_before_older_ones() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    images = text[text.index("## Hashing images") : text.index("## imagehash thresholds")]
    assert images.index("### Current") < images.index("### Earlier")
    imports = text[text.index("## Importing and exporting hashes") :]
    assert imports.index("**Current") < imports.index("Earlier runs")
