"""bench/hash_images.py cleans up after itself and --quick stays quick (issue 13 item 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {bench!r})
    import hash_images
    hash_images.importlib.util.find_spec = lambda name: True  # pytx is not needed here
    hash_images.find_data = lambda folder: Path(".")

    def run(args, count, jobs, data, workdir):
        (workdir / "image.jpg").write_bytes(b"x" * 1000)
        print(workdir, count, args.max_wait, flush=True)
        time.sleep(120)
        return 0

    hash_images.run = run
    sys.exit(hash_images.main(["--quick"]))
    """
)


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    env = os.environ | {"TMPDIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER.format(bench=str(BENCH))],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_terminated_run_removes_its_images_and_quick_never_waits(tmp_path: Path) -> None:
    process = _start(tmp_path)
    assert process.stdout is not None
    workdir, count, max_wait = process.stdout.readline().split()
    assert Path(workdir).is_dir() and Path(workdir).parent == tmp_path
    assert (int(count), float(max_wait)) == (24, 0.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert not Path(workdir).exists()


def test_a_killed_runs_images_are_removed_by_the_next_run(tmp_path: Path) -> None:
    first = _start(tmp_path)
    assert first.stdout is not None
    left = Path(first.stdout.readline().split()[0])
    first.kill()  # SIGKILL: no chance to clean up
    first.wait(timeout=30)
    assert left.is_dir()
    second = _start(tmp_path)
    assert second.stdout is not None
    mine = Path(second.stdout.readline().split()[0])
    try:
        assert not left.exists() and mine.is_dir()  # the stale one only
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert not mine.exists()
