"""Issue #14, the media side: a corrupt file never stops a batch (item 1), a tree walk reports
what it cannot read and never opens special files (item 3), animations and videos are budgeted
by decoded pixels (item 4), low-quality pictures neither identify nor match (item 12), and a
400 MP PNG is refused citing ncii's own limit (#13 item 11)."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_media import (
    Runner,
    gif_frame_bomb,
    mp4_claiming,
    png_zlib_bomb,
    small_mp4,
    warm_up,
)
from PIL import Image
from shared_data import VENDORED
from typer.testing import CliRunner

from ncii.cli import exit_codes
from ncii.cli.app import app
from ncii.errors import MediaError, MediaTooLarge
from ncii.hashing import MediaHashes, expand_inputs, hash_bytes, hash_file, read_media
from ncii.media import DEFAULT_MAX_PIXELS
from ncii.video import VideoLimits

runner = CliRunner()
NCII = [str(Path(sys.executable).parent / "ncii")]
"""The installed command, beside this Python."""


def ncii(url: str, *args: str):
    return runner.invoke(app, [*args, "--db", url])


def _jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def _truncated_png(folder: Path) -> Path:
    """A real PNG cut in half: Pillow reads its header, then fails on the pixel data (and its
    getexif() reads the whole file)."""
    data = (VENDORED / "LA.png").read_bytes()
    path = folder / "trunc.png"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def banked(store_url: str, tmp_path: Path) -> tuple[str, Path]:
    """A bank holding one real photo; returns the URL and a copy of the photo."""
    photo = Path(shutil.copy(VENDORED / "rgb.jpeg", tmp_path / "banked.jpg"))
    assert ncii(store_url, "bank", "create", "reports").exit_code == 0
    assert ncii(store_url, "add", "reports", str(photo)).exit_code == 0
    return store_url, photo


# -- item 1: a corrupt file is that file's error, the batch goes on ---------------------------


def test_match_reports_the_banked_picture_past_a_truncated_png(banked, tmp_path: Path) -> None:
    url, photo = banked
    trunc = _truncated_png(tmp_path)
    result = ncii(url, "match", str(trunc), str(photo), "--format", "jsonl")
    assert result.exit_code == exit_codes.MATCH, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    rows = _jsonl(result.stdout)
    assert {r["entry_id"] for r in rows if r["input"] == str(photo)} == {1}
    assert _errors(result.stderr) == [
        f"error: {trunc}: corrupt or truncated image (image file is truncated)"
    ]
    assert "Traceback" not in result.output


def test_add_a_directory_with_a_corrupt_file_adds_every_good_one(store_url, tmp_path) -> None:
    folder = tmp_path / "reported"
    folder.mkdir()
    good = ["rgb.jpeg", "q0003.jpg", "q0746.jpg"]
    for name in good:
        shutil.copy(VENDORED / name, folder / name)
    trunc = _truncated_png(folder)
    assert ncii(store_url, "bank", "create", "own").exit_code == 0
    result = ncii(store_url, "add", "own", str(folder))
    assert result.exit_code == exit_codes.SOME_INPUTS_FAILED, result.output
    added = _jsonl(result.stdout)
    assert sorted(Path(r["source"]).name for r in added) == sorted(good)
    assert {r["outcome"] for r in added} == {"added"}
    assert [e for e in _errors(result.stderr)] == [
        f"error: {trunc}: corrupt or truncated image (image file is truncated)"
    ]


def test_scan_goes_past_a_corrupt_file_every_time(banked, tmp_path: Path) -> None:
    url, photo = banked
    backlog = tmp_path / "uploads"
    backlog.mkdir()
    _truncated_png(backlog)  # sorts before the banked copy: the scan used to stop here
    shutil.copy(photo, backlog / "upload.jpg")
    shutil.copy(VENDORED / "q0003.jpg", backlog / "zz-other.jpg")
    report = tmp_path / "scan.csv"
    args = ["scan", str(backlog), "--report", str(report), "--jobs", "1"]
    first = ncii(url, *args)
    assert first.exit_code == exit_codes.MATCH, first.output
    assert "scanned 3, matched 1, failed 1" in first.stderr
    lines = report.read_text().splitlines()
    statuses = {line.split(",")[0].rsplit("/", 1)[1]: line.split(",")[1] for line in lines[1:]}
    assert statuses == {"trunc.png": "error", "upload.jpg": "match", "zz-other.jpg": "no_match"}
    again = ncii(url, *args)
    assert again.exit_code == exit_codes.MATCH
    assert "scanned 0, matched 0, failed 0, skipped 3" in again.stderr


def test_case_package_refuses_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    trunc = _truncated_png(tmp_path)
    package = tmp_path / "case.json"
    result = runner.invoke(
        app, ["case", "package", str(VENDORED / "rgb.jpeg"), str(trunc), "-o", str(package)]
    )
    assert result.exit_code == exit_codes.SOME_INPUTS_FAILED, result.output
    assert _errors(result.stderr)[0] == (
        f"error: {trunc}: corrupt or truncated image (image file is truncated)"
    )
    assert "Traceback" not in result.output and not package.exists()


def test_case_open_and_takedown_media_refuse_in_one_line(store_url: str, tmp_path) -> None:
    trunc = _truncated_png(tmp_path)
    good = str(VENDORED / "rgb.jpeg")
    opened = ncii(store_url, "case", "open", good, str(trunc))
    assert opened.exit_code == exit_codes.SOME_INPUTS_FAILED, opened.output
    assert _errors(opened.stderr)[0] == (
        f"error: {trunc}: corrupt or truncated image (image file is truncated)"
    )
    request = ["takedown", "new", "--signature", "Jane Doe", "--contact", "jane@example.org"]
    request += ["--statement", "I did not consent", "--url", "https://example.com/p/1"]
    taken = ncii(store_url, *request, "--media", good, "--media", str(trunc))
    assert taken.exit_code == exit_codes.SOME_INPUTS_FAILED, taken.output
    assert _errors(taken.stderr) == [
        f"error: {trunc}: corrupt or truncated image (image file is truncated); "
        "the request was not recorded"
    ]
    assert "Traceback" not in opened.output + taken.output
    listed = ncii(store_url, "takedown", "list", "--format", "jsonl")
    assert listed.exit_code == 0 and _jsonl(listed.stdout) == []


def _formats() -> dict[str, bytes]:
    """One real photo saved in every still format Pillow writes, plus the vendored PNGs."""
    photo = Image.open(VENDORED / "rgb.jpeg")
    made = {
        "jpeg": (VENDORED / "rgb.jpeg").read_bytes(),
        "la.png": (VENDORED / "LA.png").read_bytes(),
    }
    made["i16.png"] = (VENDORED / "I16.png").read_bytes()
    for fmt in ("PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF"):
        out = io.BytesIO()
        photo.save(out, format=fmt)
        made[fmt.lower()] = out.getvalue()
    return made


@pytest.mark.parametrize(
    "fmt", ["jpeg", "la.png", "i16.png", "png", "gif", "webp", "tiff", "bmp", "heif"]
)
def test_every_truncation_of_a_real_image_hashes_or_fails_naming_it(fmt: str) -> None:
    data = _formats()[fmt]
    for keep in sorted({1, 8, 16, 33, 64, 100, *range(128, len(data), max(1, len(data) // 24))}):
        name = f"cut-{keep}.{fmt}"
        try:
            result = hash_bytes(data[:keep], name=name)
        except MediaError as exc:
            message = str(exc)
            assert message.startswith(f"{name}: ") and "\n" not in message, message
        else:
            assert result.get("pdq") is not None or getattr(result, "frames", None) is not None


# -- item 3: walking a tree -------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """good.jpg, a dangling link, a link to itself, a link back up the tree, a FIFO, and a
    directory that cannot be listed (chmod 000; root reads it anyway, see ``locked``)."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "locked").mkdir()
    shutil.copy(VENDORED / "rgb.jpeg", root / "good.jpg")
    shutil.copy(VENDORED / "q0003.jpg", root / "locked" / "hidden-away.jpg")
    (root / "dangling.jpg").symlink_to(root / "gone.jpg")
    (root / "self.jpg").symlink_to(root / "self.jpg")
    (root / "sub" / "up").symlink_to(root)
    os.mkfifo(root / "pipe.jpg")
    return root


@pytest.fixture
def locked(tree: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tree/locked`` cannot be listed. chmod 000 does that for a normal user; the tests run
    as root, which ignores it, so listing it is refused the way the kernel refuses a normal
    user (PermissionError from scandir) by wrapping os.scandir for that one path."""
    path = tree / "locked"
    path.chmod(0)
    real = os.scandir

    def scandir(target=".", *args, **kwargs):  # type: ignore[no-untyped-def]
        # os.scandir takes file descriptors too (shutil.rmtree passes them)
        if not isinstance(target, int) and Path(os.fspath(target)) == path:
            raise PermissionError(13, "Permission denied", os.fspath(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    yield path
    path.chmod(0o755)


def test_a_walk_reports_what_it_cannot_read_instead_of_skipping_it(tree, locked) -> None:
    from ncii.hashing import UnreadableInput

    found = expand_inputs([str(tree)])
    problems = {
        Path(p).relative_to(tree).as_posix(): p.error
        for p in found
        if isinstance(p, UnreadableInput)
    }
    assert problems == {
        "dangling.jpg": f"{tree}/dangling.jpg: dangling symbolic link (its target does not exist)",
        "locked": f"{tree}/locked: cannot list directory (permission denied)",
        "self.jpg": f"{tree}/self.jpg: cannot read (symbolic link loop)",
        "sub/up": f"{tree}/sub/up: symbolic link loop (leads back to a directory above it), "
        "not followed",
    }
    assert [Path(p).name for p in found if not isinstance(p, UnreadableInput)] == [
        "good.jpg",
        "pipe.jpg",
    ]
    # Problems survive the trip to a worker process (``--jobs``).
    copy = pickle.loads(pickle.dumps(found))
    assert [getattr(p, "error", None) for p in copy] == [getattr(p, "error", None) for p in found]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_hash_a_tree_reports_each_unreadable_path_and_hashes_the_rest(tree, locked, jobs) -> None:
    result = runner.invoke(app, ["hash", str(tree), "--format", "jsonl", "--jobs", jobs])
    assert result.exit_code == exit_codes.SOME_INPUTS_FAILED, result.output
    rows = {Path(r["path"]).relative_to(tree).as_posix(): r for r in _jsonl(result.stdout)}
    assert set(rows) == {"dangling.jpg", "good.jpg", "locked", "pipe.jpg", "self.jpg", "sub/up"}
    assert rows["good.jpg"].get("error") is None and rows["good.jpg"]["signals"]
    assert rows["pipe.jpg"]["error"] == (
        f"{tree}/pipe.jpg: a named pipe (FIFO), not a regular file (not read)"
    )
    assert len(_errors(result.stderr)) == 5


def test_scan_counts_a_locked_directory_as_failed(banked, tree, locked, tmp_path) -> None:
    url, _ = banked
    report = tmp_path / "scan.csv"
    result = ncii(url, "scan", str(tree), "--report", str(report), "--jobs", "1")
    assert result.exit_code == exit_codes.MATCH  # good.jpg is the banked photo
    assert "failed 5" in result.stderr
    assert f"{tree}/locked,error" in report.read_text()


def test_special_files_are_refused_unopened_and_never_hang(tmp_path: Path) -> None:
    """A FIFO with no writer blocks open() forever: the real CLI must refuse it at once."""
    fifo = tmp_path / "upload.jpg"
    os.mkfifo(fifo)
    good = shutil.copy(VENDORED / "rgb.jpeg", tmp_path / "good.jpg")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock.jpg"))
    listening.listen()
    started = time.monotonic()
    inputs = [str(fifo), "/dev/null", str(tmp_path / "sock.jpg"), str(good)]
    done = subprocess.run(
        [*NCII, "hash", *inputs, "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == exit_codes.SOME_INPUTS_FAILED, done.stderr
    assert time.monotonic() - started < 60
    assert _errors(done.stderr) == [
        f"error: {fifo}: a named pipe (FIFO), not a regular file (not read)",
        "error: /dev/null: a character device, not a regular file (not read)",
        f"error: {tmp_path}/sock.jpg: a socket, not a regular file (not read)",
    ]
    listening.close()
    assert [r.get("error") is None for r in _jsonl(done.stdout)] == [False, False, False, True]
    with pytest.raises(MediaError, match="dangling symbolic link"):
        (tmp_path / "link.jpg").symlink_to(tmp_path / "nowhere.jpg")
        read_media(str(tmp_path / "link.jpg"))


# -- item 4 and #13 item 11: decompression bombs ----------------------------------------------


@pytest.fixture(scope="module")
def warm() -> None:
    warm_up({"gif": gif_frame_bomb(64, 64, 3), "mp4": small_mp4()})


def _in_child(name: str, data: bytes):  # type: ignore[no-untyped-def]
    (verdict,) = Runner(jobs=1, timeout=60).run(iter([(name, data)]))
    return verdict


def test_a_115_kb_gif_of_5000_8k_frames_is_refused_at_once(warm) -> None:
    bomb = gif_frame_bomb(7680, 4320, 5000)
    assert len(bomb) == 115_020
    verdict = _in_child("bomb.gif", bomb)
    assert verdict.outcome == "refused", verdict
    assert verdict.detail == (
        "MediaTooLarge: bomb.gif: 5,000 frames of 33,177,600 pixels are 165,888,000,000 "
        "pixels to decode, over the limit of 2,000,000,000 (possible decompression bomb)"
    )
    assert verdict.seconds < 5 and verdict.rss_growth_kb < 100_000


def test_a_2_kb_gif_of_100_8k_frames_is_refused(warm) -> None:
    verdict = _in_child("small-bomb.gif", gif_frame_bomb(7680, 4320, 100))
    assert verdict.outcome == "refused" and "3,317,760,000 pixels" in verdict.detail
    assert verdict.seconds < 5


def test_the_animation_budget_counts_canvas_times_frames() -> None:
    gif = gif_frame_bomb(320, 240, 30)  # 30 frames of 76,800 pixels: 2.3 M
    assert hash_bytes(gif, name="ok.gif").frame_count == 30
    tight = VideoLimits(max_animation_pixels=1_000_000)
    with pytest.raises(MediaTooLarge, match=r"^tight.gif: 30 frames of 76,800 pixels"):
        hash_bytes(gif, name="tight.gif", options=_with_limits(tight))


def _with_limits(limits: VideoLimits):  # type: ignore[no-untyped-def]
    from ncii.hashing import HashOptions

    return HashOptions(video_limits=limits)


def _webm(frames: int) -> bytes:
    """A real VP8 WebM: Matroska declares no frame count, so only the running count bounds it."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            rgb = np.full((48, 64, 3), (i * 20) % 256, dtype=np.uint8)
            rgb[:, : (i * 5) % 64] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return out.getvalue()


def test_the_video_budget_refuses_a_declared_count_up_front_and_counts_the_rest() -> None:
    mp4 = small_mp4()  # 10 frames of 64x48 = 30,720 pixels, declared in the header
    assert hash_bytes(mp4, name="ok.mp4").frame_count == 10
    with pytest.raises(MediaTooLarge, match=r"^up-front.mp4: 10 frames of 3,072 pixels"):
        hash_bytes(
            mp4, name="up-front.mp4", options=_with_limits(VideoLimits(max_decoded_pixels=20_000))
        )
    webm = _webm(20)
    assert hash_bytes(webm, name="ok.webm").frame_count == 20
    with pytest.raises(
        MediaTooLarge, match=r"^counted.webm: more than 20,000 pixels to decode after 7 frames"
    ):
        hash_bytes(
            webm, name="counted.webm", options=_with_limits(VideoLimits(max_decoded_pixels=20_000))
        )


def test_an_mp4_claiming_huge_frames_is_refused_before_decoding(warm) -> None:
    over_ffmpeg = _in_child("claim-16k.mp4", mp4_claiming(16384, 16384))
    assert (
        over_ffmpeg.detail == "VideoError: claim-16k.mp4: no valid frame size in its header (0x0)"
    )
    over_ncii = _in_child("claim-8k.mp4", mp4_claiming(8192, 8192))
    assert over_ncii.detail == (
        "MediaTooLarge: claim-8k.mp4: 8192x8192 frames are 67,108,864 pixels, over the limit "
        "of 33,177,600"
    )
    assert over_ncii.seconds < 5 and over_ncii.rss_growth_kb < 100_000


def test_a_400_mp_png_is_refused_citing_ncii_own_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_zlib_bomb(20_000, 20_000))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(MediaTooLarge) as refused:
        hash_file(bomb)
    assert str(refused.value) == (
        f"{bomb}: 400,000,000 pixels, over the limit of {DEFAULT_MAX_PIXELS:,} "
        "(possible decompression bomb)"
    )
    assert "178,956,970" not in str(refused.value)
    result = runner.invoke(app, ["hash", str(bomb), "--format", "jsonl"])
    assert result.exit_code == exit_codes.SOME_INPUTS_FAILED
    assert _errors(result.stderr) == [f"error: {refused.value}"]


# -- item 12: low-quality pictures ------------------------------------------------------------


@pytest.fixture
def blanks(tmp_path: Path) -> dict[str, Path]:
    """Different files whose pictures say nothing: PDQ 000…0 at quality 0 for each."""
    made = {
        "black-1x1.png": Image.new("RGB", (1, 1), (0, 0, 0)),
        "white-2x3000.png": Image.new("RGB", (2, 3000), (255, 255, 255)),
        "grey-64.png": Image.new("RGB", (64, 64), (128, 128, 128)),
        "green-3x3.png": Image.new("RGB", (3, 3), (10, 200, 30)),
    }
    paths = {}
    for name, image in made.items():
        image.save(tmp_path / name)
        paths[name] = tmp_path / name
    return paths


def test_a_flat_picture_marks_all_its_perceptual_hashes_low_quality(blanks) -> None:
    hashes = hash_file(blanks["grey-64.png"])
    assert isinstance(hashes, MediaHashes)
    assert {s.type: s.quality for s in hashes.signals} == {
        "pdq": 0,
        "phash": 0,
        "dhash": 0,
        "ahash": 0,
        "whash": 0,
        "md5": None,
        "sha256": None,
    }
    photo = hash_file(VENDORED / "rgb.jpeg")
    assert [s.quality for s in photo.signals if s.type != "pdq"] == [None] * 6


def test_add_keeps_different_blank_files_apart(store_url: str, blanks) -> None:
    assert ncii(store_url, "bank", "create", "own").exit_code == 0
    files = [str(blanks["black-1x1.png"]), str(blanks["white-2x3000.png"])]
    result = ncii(store_url, "add", "own", *files)
    assert result.exit_code == 0, result.output
    rows = _jsonl(result.stdout)
    assert [(r["outcome"], r["pdq_quality"]) for r in rows] == [("added", 0), ("added", 0)]
    assert rows[0]["entry_id"] != rows[1]["entry_id"]
    again = ncii(store_url, "add", "own", files[1])  # the same file is still the same entry
    assert [(r["outcome"], r["entry_id"]) for r in _jsonl(again.stdout)] == [
        ("present", rows[1]["entry_id"])
    ]


def test_a_blank_upload_does_not_match_a_banked_blank_picture(store_url: str, blanks) -> None:
    assert ncii(store_url, "bank", "create", "own").exit_code == 0
    assert ncii(store_url, "add", "own", str(blanks["black-1x1.png"])).exit_code == 0
    others = [
        str(blanks["grey-64.png"]),
        str(blanks["green-3x3.png"]),
        str(blanks["white-2x3000.png"]),
    ]
    result = ncii(store_url, "match", *others, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [r["bank"] for r in _jsonl(result.stdout)] == [None, None, None]
    same = ncii(store_url, "match", str(blanks["black-1x1.png"]), "--format", "jsonl")
    assert same.exit_code == exit_codes.MATCH  # the very same file still matches, by digest
    assert {r["signal_type"] for r in _jsonl(same.stdout)} == {"md5", "sha256"}
