"""Tampered case packages through `ncii case open --from` on both engines (issue 14, items 5 and
9): each is refused in one line naming the file and the line or item, no case is opened, and
a package never carries Infinity or NaN."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.errors import InvalidArgument
from ncii.hashing import hash_file
from ncii.service import case_package

runner = CliRunner()
PHOTO = Path(__file__).parent / "data" / "meta" / "q0291.jpg"
CLIP = Path("moviepy_media/media/big_buck_bunny_432_433.webm")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real package of a photo and a one-second video clip, made by `ncii case package`."""
    from shared_data import SHARED

    if SHARED is None:
        pytest.skip("../shared/data is not beside this checkout (set NCII_SHARED_DATA)")
    out = tmp_path_factory.mktemp("package") / "case.json"
    made = runner.invoke(app, ["case", "package", str(PHOTO), str(SHARED / CLIP), "-o", str(out)])
    assert made.exit_code == 0, made.output
    data = json.loads(out.read_text())
    assert [bool(item.get("frames")) for item in data["items"]] == [False, True]
    return data


def _open(url: str, path: Path):
    return runner.invoke(app, ["case", "open", "--from", str(path), "--db", url, "-f", "jsonl"])


def _cases_bank_entries(url: str) -> int:
    shown = runner.invoke(app, ["bank", "list", "--db", url, "-f", "jsonl"])
    return sum(json.loads(line)["entries"] for line in shown.stdout.splitlines())


def _frame(index: int, change: Callable[[list[Any]], None]) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        change(data["items"][1]["frames"][index])

    return edit


def _set(position: int, value: Any) -> Callable[[list[Any]], None]:
    def change(frame: list[Any]) -> None:
        frame[position] = value

    return change


def _many_frames(data: dict) -> None:
    frame = data["items"][1]["frames"][0]
    data["items"][1]["frames"] = [[n, *frame[1:]] for n in range(200_000)]


def _many_variants(data: dict) -> None:
    variants = data["items"][0]["variants"]
    data["items"][0]["variants"] = [[f"v{n}", *variants[0][1:]] for n in range(65)]


TAMPERED: dict[str, tuple[Callable[[dict], None], str]] = {
    "65 variants in one item": (_many_variants, "item 1: more than 64 variants"),
    "timestamp -1": (
        _frame(0, _set(3, -1.0)),
        "item 2: invalid video frame timestamp -1.0: expected a time >= 0",
    ),
    "frame index 10**30": (
        _frame(0, _set(0, 10**30)),
        "item 2: invalid video frame index of 100 bits: expected 0-2147483647",
    ),
    "frame quality true": (
        _frame(0, _set(1, True)),
        "item 2: invalid video frame quality True: expected 0-100",
    ),
    "frame as a string": (
        lambda d: d["items"][1]["frames"].__setitem__(0, "abcde"),
        "item 2: a video frame must be [index, quality, pdq, timestamp, unbarred]",
    ),
    "200,000 frames in one item": (
        _many_frames,
        "more than 100,000 hashes (signals and video frames) by item 2",
    ),
    "version true": (
        lambda d: d.__setitem__("version", True),
        "case package version True unknown",
    ),
    "created_at a number": (
        lambda d: d.__setitem__("created_at", 5),
        "created_at 5 is not an ISO 8601 time",
    ),
    "unknown field": (
        lambda d: d["items"][0].__setitem__("pixels", "..."),
        "item 1: unknown field 'pixels'",
    ),
    "NUL in a path": (
        lambda d: d["items"][0].__setitem__("path", "a\x00b"),
        "item 1: path contains a NUL character",
    ),
    "media type not text": (
        lambda d: d["items"][0].__setitem__("media_type", ["image/jpeg"]),
        "item 1: invalid media_type ['image/jpeg']",
    ),
    "a signal type twice": (
        lambda d: d["items"][0]["signals"].append(dict(d["items"][0]["signals"][0])),
        "item 1: a signal type is listed twice",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED), ids=list(TAMPERED))
def test_tampered_package_is_refused(
    store_url: str, tmp_path: Path, package: dict, case: str
) -> None:
    edit, expected = TAMPERED[case]
    data = copy.deepcopy(package)
    edit(data)
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data))
    result = _open(store_url, path)
    assert result.exit_code == exit_codes.USAGE, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [f"error: case.json: {expected}"] or (
        result.stderr.splitlines() == [f"error: case.json, {expected}"]
    ), result.stderr
    assert _cases_bank_entries(store_url) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Infinity", "invalid video frame timestamp inf: expected a time >= 0"),
        ("NaN", "invalid video frame timestamp nan: expected a time >= 0"),
        ("1e400", "invalid video frame timestamp inf: expected a time >= 0"),
    ],
)
def test_non_finite_timestamps_are_refused(
    store_url: str, tmp_path: Path, package: dict, text: str, expected: str
) -> None:
    """What the old `case package` wrote for an infinite time (`Infinity`, not JSON)."""
    data = copy.deepcopy(package)
    data["items"][1]["frames"][0][3] = 123.25
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data, indent=1).replace("123.25", text, 1))
    result = _open(store_url, path)
    assert result.exit_code == exit_codes.USAGE, result.output
    assert result.stderr.splitlines() == [f"error: case.json, item 2: {expected}"]
    assert _cases_bank_entries(store_url) == 0


def test_hostile_json_names_the_line(store_url: str, tmp_path: Path, package: dict) -> None:
    text = json.dumps(package, indent=1)
    huge = text.replace('"version": 1', '"version": ' + "1" * 5000)
    line = 1 + huge[: huge.index("1" * 5000)].count("\n")
    deep = text.replace('"items": [', '"items": [\n' + "[" * 100_000 + "]" * 100_000 + ",", 1)
    deep_line = 1 + deep[: deep.index("[" * 100)].count("\n")
    for name, content, expected in (
        ("huge.json", huge, f"line {line}: not a case package (invalid JSON: a number of more"),
        ("deep.json", deep, f"line {deep_line}: not a case package (invalid JSON: nested more"),
    ):
        path = tmp_path / name
        path.write_text(content)
        result = _open(store_url, path)
        assert result.exit_code == exit_codes.USAGE, result.output
        [error] = result.stderr.splitlines()
        assert error.startswith(f"error: {name}, {expected}"), error
    assert _cases_bank_entries(store_url) == 0


def test_a_real_package_still_opens(store_url: str, tmp_path: Path, package: dict) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(package))
    result = _open(store_url, path)
    assert result.exit_code == 0, result.output
    assert _cases_bank_entries(store_url) == 2


def test_infinity_is_never_written_into_a_package() -> None:
    hashed = hash_file(PHOTO)
    item = case_package.item_of(hashed)
    frames = (case_package.VpdqFrame(0, 90, hashed.get("pdq").value, float("inf")),)
    broken = case_package.PackageItem(item.signals, "video/mp4", frames)
    with pytest.raises(InvalidArgument, match="not a finite time"):
        case_package.build_package([broken])
