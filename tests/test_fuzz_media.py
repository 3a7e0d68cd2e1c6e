"""Seeded mutation fuzzing of small real JPEG, PNG, GIF, WebP, TIFF, HEIC, MP4 and WebM files
(``tests/hostile_media.py``): every mutant hashes or is refused with one line naming it, in a
child process with a time limit, so a hang or a crash fails the test instead of stalling it.
The longer run is ``bench/fuzz_media.py``; its figures are in ``docs/robustness.md``."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_media import Runner, load_seeds, mutants, warm_up
from shared_data import SHARED, requires_shared

from ncii.cli import exit_codes
from ncii.hashing import hash_bytes

SEED = 14
PER_FORMAT = 40
"""320 mutants: ~15 s on 2 busy cores."""
TIMEOUT = 30.0
"""Seconds one mutant may take (the slowest take ~1 s); over it is a hang."""
MEMORY_LIMIT = 3 * 1024**3
"""Address space of each child: a mutant that would need more fails with MemoryError, which
ncii must turn into its one-line error like any other."""

pytestmark = [pytest.mark.shared_data, requires_shared]


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    assert SHARED is not None
    loaded = load_seeds(SHARED)
    for kind, data in loaded.items():  # the seeds themselves are good files
        hash_bytes(data, name=f"seed.{kind}")
    warm_up(loaded)
    return loaded


def test_every_mutant_hashes_or_is_refused_in_one_line_naming_it(seeds) -> None:
    made = {name: (kind, how) for kind, name, _, how in mutants(seeds, PER_FORMAT, SEED)}
    runner = Runner(jobs=2, timeout=TIMEOUT, memory_limit=MEMORY_LIMIT)
    verdicts = list(
        runner.run((name, data) for _, name, data, _ in mutants(seeds, PER_FORMAT, SEED))
    )
    assert len(verdicts) == len(made) == PER_FORMAT * len(seeds)
    bad = [
        f"{v.name} ({made[v.name][1]}): {v.outcome}: {v.detail}"
        for v in verdicts
        if not v.well_behaved
    ]
    assert not bad, "\n".join(bad)
    outcomes = collections.Counter((made[v.name][0], v.outcome) for v in verdicts)
    # Fuzzing that refuses everything tests only the first check: enough mutants get through
    # the parsers to reach the decoders and hashers.
    assert sum(n for (_, outcome), n in outcomes.items() if outcome == "hashed") >= 40
    assert {kind for (kind, outcome) in outcomes if outcome == "refused"} == set(seeds)


def test_mutants_through_the_real_cli_never_give_a_traceback(seeds, tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    for _, name, data, _ in mutants(seeds, 3, SEED + 1):
        (folder / name).write_bytes(data)
    ncii = str(Path(sys.executable).parent / "ncii")
    done = subprocess.run(
        [ncii, "hash", str(folder), "--format", "jsonl", "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, exit_codes.SOME_INPUTS_FAILED), done.stderr
    assert "Traceback" not in done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in folder.iterdir())
    failed = [r for r in rows if r.get("error")]
    for row in failed:
        assert row["error"].startswith(f"{row['path']}: ") and "\n" not in row["error"]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {r['error']}" for r in failed]
