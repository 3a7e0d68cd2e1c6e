"""`ncii hash` through typer's runner and as the installed command."""

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli.app import app

runner = CliRunner()
GOOD = ["rgb.jpeg", "square-256x256.jpg", "LA.png"]


def _folder_with_one_bad_file(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    (folder / "nested").mkdir(parents=True)
    for name in GOOD[:2]:
        shutil.copy(VENDORED / name, folder / name)
    shutil.copy(VENDORED / GOOD[2], folder / "nested" / GOOD[2])
    (folder / "broken.jpg").write_bytes((VENDORED / "rgb.jpeg").read_bytes()[:500])
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    return folder


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_jsonl_output_for_one_file():
    result = runner.invoke(app, ["hash", str(VENDORED / "rgb.jpeg"), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    [record] = _jsonl(result.stdout)
    signals = {s["type"]: s for s in record["signals"]}
    assert signals["pdq"] == {
        "type": "pdq",
        "value": "fb4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f862166272cda",
        "quality": 100,
    }
    assert record["media_type"] == "image/jpeg"
    assert record["size"] == (VENDORED / "rgb.jpeg").stat().st_size
    assert len(signals["sha256"]["value"]) == 64 and len(signals["md5"]["value"]) == 32
    assert record["error"] is None
    assert "pdq_dihedral" not in record


def test_directory_with_a_bad_file_hashes_the_good_ones(tmp_path):
    folder = _folder_with_one_bad_file(tmp_path)
    result = runner.invoke(app, ["hash", str(folder), "--format", "jsonl"])
    assert result.exit_code == 1
    records = _jsonl(result.stdout)
    by_name = {Path(r["path"]).name: r for r in records}
    assert set(by_name) == {*GOOD, "broken.jpg"}  # hidden file skipped
    assert all(by_name[n]["error"] is None for n in GOOD)
    assert "broken.jpg" in by_name["broken.jpg"]["error"]
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr
    assert "1 of 4 inputs could not be hashed" in result.stderr


def test_parallel_jobs_give_the_same_results_in_the_same_order(tmp_path):
    folder = _folder_with_one_bad_file(tmp_path)
    one = runner.invoke(app, ["hash", str(folder), "-f", "jsonl", "--jobs", "1"])
    two = runner.invoke(app, ["hash", str(folder), "-f", "jsonl", "--jobs", "2"])
    assert one.exit_code == two.exit_code == 1
    assert _jsonl(one.stdout) == _jsonl(two.stdout)


def test_csv_output_and_signal_selection():
    result = runner.invoke(
        app, ["hash", str(VENDORED / "rgb.jpeg"), "-f", "csv", "--signals", "pdq,md5"]
    )
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["pdq"].startswith("fb4eed46") and row["pdq_quality"] == "100"
    assert row["md5"] and row["phash"] == "" and row["error"] == ""


def test_table_output_and_dihedral_flag():
    table = runner.invoke(app, ["hash", str(VENDORED / "rgb.jpeg"), "-f", "table"])
    assert table.exit_code == 0
    assert "fb4eed46" in table.stdout and "image/jpeg" in table.stdout
    dihedral = runner.invoke(app, ["hash", str(VENDORED / "rgb.jpeg"), "-f", "jsonl", "--dihedral"])
    [record] = _jsonl(dihedral.stdout)
    assert len(record["pdq_dihedral"]) == 7


def test_unknown_signal_is_a_usage_error():
    result = runner.invoke(app, ["hash", str(VENDORED / "rgb.jpeg"), "--signals", "tmk"])
    assert result.exit_code == 2
    assert "unknown signal type 'tmk'" in result.stderr


def test_stdin_input():
    data = (VENDORED / "rgb.jpeg").read_bytes()
    result = runner.invoke(app, ["hash", "-", "-f", "jsonl"], input=data)
    assert result.exit_code == 0, result.output
    [record] = _jsonl(result.stdout)
    assert record["path"] == "-"
    assert record["signals"][0]["value"].startswith("fb4eed46")


def test_missing_path_fails_with_one_line():
    result = runner.invoke(app, ["hash", "/nonexistent/photo.jpg", "-f", "jsonl"])
    assert result.exit_code == 1
    assert "/nonexistent/photo.jpg: no such file" in result.stderr


def test_installed_command_runs_as_a_subprocess(tmp_path):
    folder = _folder_with_one_bad_file(tmp_path)
    ncii = Path(sys.executable).with_name("ncii")
    completed = subprocess.run(
        [str(ncii), "hash", str(folder), "--format", "jsonl", "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1
    assert len(_jsonl(completed.stdout)) == 4
    assert completed.stderr.count("error:") == 1
    assert "Traceback" not in completed.stderr
    version = subprocess.run([str(ncii), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("ncii ")


def test_videos_and_animations_are_hashed_transparently(tmp_path):
    """Detected by content: an mp4 named .jpg still takes the video path."""
    from test_video import animation, mp4

    (tmp_path / "clip.jpg").write_bytes(mp4())
    (tmp_path / "loop.gif").write_bytes(animation("GIF"))
    shutil.copy(VENDORED / "rgb.jpeg", tmp_path / "photo.jpeg")
    result = runner.invoke(app, ["hash", str(tmp_path), "-f", "jsonl", "--every", "0.5"])
    assert result.exit_code == 0, result.output
    by_name = {Path(r["path"]).name: r for r in _jsonl(result.stdout)}
    clip = by_name["clip.jpg"]
    assert clip["media_type"] == "video/mp4" and clip["every"] == 0.5
    assert len(clip["vpdq"]) >= 2
    assert [s["type"] for s in clip["signals"]] == ["md5", "sha256"]
    assert all(len(f["pdq"]) == 64 and 0 <= f["quality"] <= 100 for f in clip["vpdq"])
    assert by_name["loop.gif"]["media_type"] == "image/gif" and by_name["loop.gif"]["vpdq"]
    assert by_name["photo.jpeg"]["signals"][0]["type"] == "pdq"
    table = runner.invoke(app, ["hash", str(tmp_path / "clip.jpg"), "-f", "csv"])
    [row] = list(csv.DictReader(io.StringIO(table.stdout)))
    assert row["frames"] and row["pdq"] == ""
