"""The installed `ncii` on a real terminal: data on stdout only, progress on stderr only,
results streamed per input (issue 13 items 1, 9, 10, 11; issue 12 item 5)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shared_data import VENDORED, requires_shared, shared

NCII = Path(sys.executable).with_name("ncii")
TERMINAL_ENV = {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return env | TERMINAL_ENV | extra


def run_on_terminal(
    args: list[str], *, stdout_path: Path, stdin_path: Path | None = None, timeout: float = 120
) -> tuple[int, str]:
    """Run the installed ncii with stderr (and stdin, unless given) on a pseudo-terminal and
    stdout redirected to a file, as `ncii ... > file` in a shell; returns (exit code, what the
    terminal showed)."""
    controller, terminal = pty.openpty()
    stdin = stdin_path.open("rb") if stdin_path is not None else terminal
    with stdout_path.open("wb") as out:
        process = subprocess.Popen(
            [str(NCII), *args],
            stdin=stdin,
            stdout=out,
            stderr=terminal,
            env=_env(),
            close_fds=True,
        )
    os.close(terminal)
    if stdin_path is not None:
        stdin.close()  # type: ignore[union-attr]
    shown = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    os.close(controller)
    return code, shown.decode("utf-8", "replace")


PDQ_RGB = "fb4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f862166272cda"


@pytest.mark.parametrize("mode", ["file", "stdin", "folder"])
def test_hash_to_a_file_from_a_terminal_keeps_the_data_on_stdout(tmp_path, mode):
    """Item 1: with stderr on a terminal, the JSON lines go to the redirected stdout, never to
    the screen, and the progress bar (when shown) stays on the terminal."""
    out = tmp_path / "hashes.jsonl"
    if mode == "file":
        args, stdin = ["hash", str(VENDORED / "rgb.jpeg"), "--format", "jsonl"], None
    elif mode == "stdin":
        args, stdin = ["hash", "-"], VENDORED / "rgb.jpeg"
    else:
        folder = tmp_path / "uploads"
        folder.mkdir()
        for name in ("rgb.jpeg", "LA.png", "small.jpg"):
            (folder / name).write_bytes((VENDORED / name).read_bytes())
        args, stdin = ["hash", str(folder), "--format", "jsonl", "--jobs", "0"], None
    code, shown = run_on_terminal(args, stdout_path=out, stdin_path=stdin)
    assert code == 0, shown
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records, "nothing was written to stdout"
    assert all(r["error"] is None for r in records)
    if mode != "folder":
        [record] = records
        assert {s["type"]: s["value"] for s in record["signals"]}["pdq"] == PDQ_RGB
    else:
        assert len(records) == 3
    assert "signals" not in shown and PDQ_RGB not in shown


# -- item 9: progress on stderr when it is a terminal, nothing otherwise ----------------------


def _store_with_bank(tmp_path: Path) -> str:
    from typer.testing import CliRunner

    from ncii.cli.app import app

    url = f"sqlite:///{tmp_path / 'ncii.db'}"
    assert CliRunner().invoke(app, ["bank", "create", "reports", "--db", url]).exit_code == 0
    return url


def _folder(tmp_path: Path, names: tuple[str, ...] = ("rgb.jpeg", "LA.png", "small.jpg")) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes((VENDORED / name).read_bytes())
    return folder


@pytest.mark.parametrize("command", ["add", "match", "import"])
def test_long_commands_show_progress_on_a_terminal_only(tmp_path: Path, command: str) -> None:
    url = _store_with_bank(tmp_path)
    folder = _folder(tmp_path)
    hashes = tmp_path / "hashes.csv"
    hashes.write_text("signal_type,value\n" + "".join(f"pdq,{i:064x}\n" for i in range(1, 500)))
    args, label = {
        "add": (["add", "reports", str(folder), "--pipeline", "pdq"], "hashing"),
        "match": (["match", str(folder), "--format", "jsonl"], "matching"),
        "import": (["import", "reports", str(hashes), "--format", "csv"], "importing"),
    }[command]
    code, shown = run_on_terminal([*args, "--db", url], stdout_path=tmp_path / "out")
    assert code == 0, shown
    assert label in shown
    plain = subprocess.run(
        [str(NCII), *args, "--db", url], capture_output=True, text=True, env=_env(), check=False
    )
    assert label not in plain.stderr and label not in plain.stdout


def test_an_import_counts_its_rows_on_a_terminal(tmp_path: Path) -> None:
    """Item 9: an import shows the rows read, not only the share of the file."""
    url = _store_with_bank(tmp_path)
    hashes = tmp_path / "hashes.csv"
    hashes.write_text("signal_type,value\n" + "".join(f"pdq,{i:064x}\n" for i in range(1, 5001)))
    code, shown = run_on_terminal(
        ["import", "reports", str(hashes), "--format", "csv", "--db", url],
        stdout_path=tmp_path / "out",
    )
    assert code == 0, shown
    assert " rows)" in shown, shown


@requires_shared
def test_one_long_video_shows_its_seconds_hashed(tmp_path: Path) -> None:
    """Item 9: a single video is not a bar stuck at 0 of 1: a second line counts the seconds
    of it hashed (in this process; worker processes hash without a bar)."""
    clip = shared("threatexchange/tmk/sample-videos/chair-19-sd-bar.mp4")
    code, shown = run_on_terminal(
        ["hash", str(clip), "--format", "jsonl"], stdout_path=tmp_path / "out"
    )
    assert code == 0, shown
    assert "video seconds" in shown, shown
    [record] = [json.loads(line) for line in (tmp_path / "out").read_text().splitlines()]
    assert record["error"] is None and record["vpdq"]


# -- issue 12 item 5: results stream, one input at a time -------------------------------------


def test_match_writes_each_inputs_rows_before_the_next_is_hashed(tmp_path: Path) -> None:
    """The second input is standard input, held open: the first input's row must arrive
    before it is sent."""
    url = _store_with_bank(tmp_path)
    process = subprocess.Popen(
        [str(NCII), "match", str(VENDORED / "rgb.jpeg"), "-", "--db", url, "-f", "jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "no output while the last input was still pending"
        first = json.loads(process.stdout.readline())
        assert first["input"].endswith("rgb.jpeg") and first["error"] is None
        assert process.poll() is None  # still waiting for the second input
        process.stdin.write((VENDORED / "LA.png").read_bytes())
        process.stdin.close()
        rest = process.stdout.read().decode()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    [second] = [json.loads(line) for line in rest.splitlines()]
    assert second["input"] == "-" and second["error"] is None


# -- item 11: help texts and messages --------------------------------------------------------


def _help(*command: str) -> str:
    from typer.testing import CliRunner

    from ncii.cli.app import app

    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_help_paragraphs_are_not_broken_mid_sentence() -> None:
    text = _help("hash")
    [line] = [line for line in text.splitlines() if "Bad inputs are reported" in line]
    assert "2 on a bad command line" in line  # one paragraph, one line at 200 columns
    assert "<bool>" not in text
    assert "pdq,phash,dhash,ahash,whash,md5,sha256" in text  # the whole default


def test_help_names_the_url_the_readme_uses() -> None:
    for command in (["match"], ["db", "upgrade"], ["audit", "verify"]):
        text = _help(*command)
        assert "postgresql+psycopg://" in text and "postgresql://" not in text


def test_a_piped_pin_gives_no_getpass_warning(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ncii.cli.app import app

    url = f"sqlite:///{tmp_path / 'ncii.db'}"
    assert CliRunner().invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0
    result = subprocess.run(
        [str(NCII), "case", "status", "NC-ZZZZ-ZZZZ", "--db", url],
        input="1234\n",
        capture_output=True,
        text=True,
        env=_env(),
        start_new_session=True,  # no controlling terminal: getpass would fall back and warn
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "Warning" not in result.stderr and "getpass" not in result.stderr
    assert result.stderr.strip() == "error: no case 'NC-ZZZZ-ZZZZ'"


def test_audit_details_are_json_not_a_python_repr(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ncii.cli.app import app

    url = f"sqlite:///{tmp_path / 'ncii.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["bank", "create", "reports", "--db", url]).exit_code == 0
    for fmt in ("table", "csv"):
        shown = runner.invoke(app, ["audit", "list", "--db", url, "-f", fmt], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        assert "{'" not in shown.stdout and '{"' in shown.stdout


def test_one_wrong_pin_left_reads_right(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ncii.cli.app import app

    url = f"sqlite:///{tmp_path / 'ncii.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0
    opened = runner.invoke(
        app, ["case", "open", str(VENDORED / "rgb.jpeg"), "--db", url, "-f", "jsonl"]
    )
    assert opened.exit_code == 0, opened.output
    number = json.loads(opened.stdout)["case"]
    messages = [
        runner.invoke(app, ["case", "status", number, "--db", url], input="000000\n").stderr
        for _ in range(4)
    ]
    assert "(1 more wrong PIN locks the case" in messages[-1]
    assert "(2 more wrong PINs lock the case" in messages[-2]


def test_a_huge_png_is_refused_citing_nciis_limit(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)  # 400 MP, 8-bit grey
    png = tmp_path / "huge.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )  # fmt: skip
    result = subprocess.run(
        [str(NCII), "hash", str(png)], capture_output=True, text=True, env=_env(), check=False
    )
    assert result.returncode == 1
    assert "150,000,000" in result.stderr and "178,956,970" not in result.stderr
