"""Hostile media for tests and ``bench/fuzz_media.py``: decompression bombs made on the fly,
and a seeded mutation fuzzer that hashes each mutant in its own process, so a hang, a crash
or a memory blow-up is seen as what it is instead of stalling or killing the run.

Nothing here is committed as a file: bombs are a few KB of bytes built by the functions
below, mutants come from small real files in ``../shared/data``.
"""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SEED_FILES = {
    "jpeg": "threatexchange/pdq/data/reg-test-input/labelme-subset/q0003.jpg",
    "png": "opencv_samples_debian/data/templ.png",
    "gif": "imagededup_testdata/tests/data/formats_images/giphy.gif",
    "webp": "imagededup_testdata/tests/data/formats_images/ukbench09380.webp",
    "tiff": "imagededup_testdata/tests/data/formats_images/copyleft.tiff",
    "heic": "threatexchange/pdq/data/reg-test-input/labelme-subset/q0003.jpg",
    "mp4": "augly/augly/tests/assets/video/inputs/small_input_1.mp4",
    "webm": "moviepy_media/media/big_buck_bunny_432_433.webm",
}
"""Small real files in ``../shared/data``, one per format (the GIF is animated, the MP4 is
H.264 480x360, the WebM VP8 720p). ``../shared/data`` has no HEIC: the HEIC seed is the JPEG
re-encoded by pillow-heif when the seeds are loaded."""


def load_seeds(shared: Path) -> dict[str, bytes]:
    """Format → seed file bytes."""
    seeds = {kind: (shared / path).read_bytes() for kind, path in SEED_FILES.items()}
    seeds["heic"] = _to_heic(seeds["heic"])
    return seeds


def _to_heic(jpeg: bytes) -> bytes:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(out, format="HEIF", quality=60)
    return out.getvalue()


# -- mutations ---------------------------------------------------------------------------------

MUTATIONS = ("bitflip", "truncate", "insert", "delete", "duplicate", "overwrite")


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One to three random mutations of ``data``; returns the mutant and what was done."""
    out = bytearray(data)
    done = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.choice(MUTATIONS)
        done.append(_MUTATORS[kind](out, rng))
    return bytes(out), "+".join(done)


def _bitflip(out: bytearray, rng: random.Random) -> str:
    count = rng.choice((1, 2, 4, 8, 32))
    # Headers are where parsers branch: half the flips land in the first 1 KB.
    for _ in range(count):
        limit = min(len(out), 1024) if rng.random() < 0.5 else len(out)
        pos = rng.randrange(max(limit, 1))
        if pos < len(out):
            out[pos] ^= 1 << rng.randrange(8)
    return f"bitflip{count}"


def _truncate(out: bytearray, rng: random.Random) -> str:
    keep = rng.randrange(1, max(len(out), 2))
    del out[keep:]
    return f"truncate@{keep}"


def _insert(out: bytearray, rng: random.Random) -> str:
    pos = rng.randrange(len(out) + 1)
    size = rng.choice((1, 4, 16, 256))
    out[pos:pos] = rng.randbytes(size)
    return f"insert{size}@{pos}"


def _delete(out: bytearray, rng: random.Random) -> str:
    if len(out) < 2:
        return "delete0"
    pos = rng.randrange(len(out) - 1)
    size = min(rng.choice((1, 4, 16, 256)), len(out) - pos - 1)
    del out[pos : pos + size]
    return f"delete{size}@{pos}"


def _duplicate(out: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(out))
    size = min(rng.choice((8, 64, 512, 4096)), len(out) - start)
    chunk = bytes(out[start : start + size])
    pos = rng.randrange(len(out) + 1)
    out[pos:pos] = chunk
    return f"duplicate{size}@{start}->{pos}"


def _overwrite(out: bytearray, rng: random.Random) -> str:
    """Interesting values (0, 0xff, 0x7f…, big lengths) over 1-4 bytes: sizes and counts."""
    pos = rng.randrange(len(out))
    value = rng.choice((b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff", b"\x7f\xff\xff\xff"))
    out[pos : pos + len(value)] = value
    return f"overwrite{value.hex()}@{pos}"


_MUTATORS: dict[str, Callable[[bytearray, random.Random], str]] = {
    "bitflip": _bitflip,
    "truncate": _truncate,
    "insert": _insert,
    "delete": _delete,
    "duplicate": _duplicate,
    "overwrite": _overwrite,
}


def mutants(
    seeds: dict[str, bytes], per_format: int, seed: int
) -> Iterator[tuple[str, str, bytes, str]]:
    """(format, name, bytes, mutations) for ``per_format`` mutants of each seed, the same
    ones for the same ``seed``."""
    rng = random.Random(seed)
    for kind, data in seeds.items():
        for i in range(per_format):
            mutant, how = mutate(data, rng)
            yield kind, f"mutant-{kind}-{i:05d}.{kind}", mutant, how


# -- running one input in its own process ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What hashing one input did."""

    name: str
    outcome: str
    """``hashed``, ``refused`` (an NciiError), ``traceback`` (any other exception), ``hang``
    (over the time limit, killed) or ``crash`` (the process died, e.g. of a signal)."""
    detail: str = ""
    """The error class and message, the traceback, or the exit code."""
    seconds: float = 0.0
    max_rss_kb: int = 0
    """Peak resident memory of the child, what it inherited included."""
    rss_growth_kb: int = 0
    """How far hashing raised the peak above what the child started with."""

    @property
    def well_behaved(self) -> bool:
        """Hashed, or refused with one line naming the input."""
        if self.outcome == "hashed":
            return True
        if self.outcome != "refused":
            return False
        message = self.detail.split(": ", 1)[1] if ": " in self.detail else ""
        return "\n" not in self.detail and message.startswith(self.name)


def _child(
    name: str, data: bytes, memory_limit: int | None, conn: multiprocessing.connection.Connection
) -> None:
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    import traceback

    from ncii.errors import NciiError
    from ncii.hashing import hash_bytes

    rss_before = _memory_kb("VmRSS")
    start = time.perf_counter()
    try:
        hash_bytes(data, name=name)
        outcome, detail = "hashed", ""
    except NciiError as exc:
        outcome, detail = "refused", f"{type(exc).__name__}: {exc}"
    except BaseException:  # everything else is the defect this harness looks for
        outcome, detail = "traceback", traceback.format_exc()
    seconds = time.perf_counter() - start
    rss = _memory_kb("VmHWM")
    conn.send((outcome, detail, seconds, rss, rss - rss_before))
    conn.close()


def _memory_kb(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc (Linux); elsewhere the
    peak from getrusage (which a forked child may inherit from its parent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_CONTEXT = multiprocessing.get_context("fork")


def warm_up(seeds: dict[str, bytes]) -> None:
    """Hash each seed once in this process, so the children forked from it start with every
    lazy import done (scipy, PyAV, pillow-heif: ~0.7 s a child otherwise)."""
    from ncii.hashing import hash_bytes

    for kind, data in seeds.items():
        hash_bytes(data, name=f"seed.{kind}")


class Runner:
    """Hashes inputs in child processes forked from this one (call :func:`warm_up` first),
    ``jobs`` at a time, each with a wall-time limit and (optionally) an address-space limit."""

    def __init__(self, *, jobs: int = 2, timeout: float = 20.0, memory_limit: int | None = None):
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.memory_limit = memory_limit

    def run(self, items: Iterator[tuple[str, bytes]]) -> Iterator[Verdict]:
        """Verdicts in completion order (not input order)."""
        running: list[tuple[str, multiprocessing.process.BaseProcess, object, float]] = []
        pending = iter(items)
        exhausted = False
        while running or not exhausted:
            while not exhausted and len(running) < self.jobs:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                name, data = item
                receive, send = _CONTEXT.Pipe(duplex=False)
                process = _CONTEXT.Process(
                    target=_child, args=(name, data, self.memory_limit, send), daemon=True
                )
                process.start()
                send.close()
                running.append((name, process, receive, time.perf_counter()))
            if not running:
                break
            ready = multiprocessing.connection.wait(
                [r for _, _, r, _ in running] + [p.sentinel for _, p, _, _ in running],
                timeout=0.2,
            )
            still = []
            for name, process, receive, started in running:
                verdict = self._collect(name, process, receive, started, ready)
                if verdict is None:
                    still.append((name, process, receive, started))
                else:
                    yield verdict
            running = still

    def _collect(self, name, process, receive, started, ready) -> Verdict | None:  # type: ignore[no-untyped-def]
        elapsed = time.perf_counter() - started
        if receive in ready:
            try:
                outcome, detail, seconds, rss, growth = receive.recv()
            except EOFError:
                outcome = None
            if outcome is not None:
                process.join(5)
                receive.close()
                return Verdict(name, outcome, detail, seconds, rss, growth)
        if process.sentinel in ready and not process.is_alive():
            if receive.poll():
                return self._collect(name, process, receive, started, [receive])
            receive.close()
            return Verdict(name, "crash", f"exit code {process.exitcode}", elapsed)
        if elapsed > self.timeout:
            process.kill()
            process.join(5)
            receive.close()
            return Verdict(name, "hang", f"killed after {self.timeout:g} s", elapsed)
        return None


# -- decompression bombs -----------------------------------------------------------------------


def gif_frame_bomb(width: int = 7680, height: int = 4320, frames: int = 5000) -> bytes:
    """An animated GIF whose every frame is one pixel on a ``width`` × ``height`` canvas:
    23 bytes a frame (5,000 frames at 8K: 115 KB) that a decoder draws on the whole canvas."""
    out = bytearray(b"GIF89a" + struct.pack("<HH", width, height) + bytes((0x80, 0, 0)))
    out += bytes((0, 0, 0, 255, 255, 255))  # two-colour global table
    for i in range(frames):
        out += bytes((0x21, 0xF9, 4, 0)) + struct.pack("<H", 10) + bytes((0, 0))  # 0.1 s
        x, y = i % width, (i // width) % height
        out += b"\x2c" + struct.pack("<HHHH", x, y, 1, 1) + b"\x00"
        out += bytes((2, 2, 0x44, 0x01, 0))  # LZW: clear, index 0, end
    return bytes(out + b"\x3b")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_zlib_bomb(width: int, height: int) -> bytes:
    """A real, valid black 1-bit PNG of ``width`` × ``height``: zlib shrinks its rows of zeros
    ~1000x (20,000 × 20,000, 400 MP, is ~50 KB)."""
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then zero bits
    packer = zlib.compressobj(9)
    rows_per_chunk = max(1, (1 << 20) // len(row))
    block = row * rows_per_chunk
    parts = []
    left = height
    while left:
        count = min(left, rows_per_chunk)
        parts.append(packer.compress(block if count == rows_per_chunk else row * count))
        left -= count
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def small_mp4(width: int = 64, height: int = 48, frames: int = 10) -> bytes:
    """A real H.264 MP4 made with PyAV (a moving gradient)."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ramp = np.add.outer(np.arange(height), np.arange(width)).astype(np.uint8)
        for i in range(frames):
            rgb = np.dstack([ramp + i * 8, ramp * 2, 255 - ramp]).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def peak_rss_kb() -> int:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_load() -> str:
    """The 1-minute load average and core count, to print next to figures."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


# -- an H.264 MP4 whose SPS claims huge frames ---------------------------------------------------


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos : self.pos + n], 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos + zeros] == "0":
            zeros += 1
        self.pos += zeros
        return self.u(zeros + 1) - 1


def _ue(value: int) -> str:
    code = f"{value + 1:b}"
    return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _sps_with_size(sps: bytes, width: int, height: int) -> bytes:
    """An H.264 SPS NAL unit (header byte first) rewritten to ``width`` × ``height``
    (multiples of 16, progressive, no cropping)."""
    bits = _Bits(_unescape(sps[1:]))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    if profile in _HIGH_PROFILES:
        if bits.ue() == 3:  # chroma_format_idc
            bits.u(1)
        bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime bypass
        if bits.u(1):
            raise AssertionError("SPS with scaling matrices: not rewritten")
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        raise AssertionError("SPS with POC type 1: not rewritten")
    bits.ue(), bits.u(1)  # max_num_ref_frames, gaps allowed
    before = bits.bits[: bits.pos]
    bits.ue(), bits.ue()  # the size, in macroblocks minus one
    rest = bits.bits[bits.pos :].rstrip("0")[:-1]  # without the stop bit and its padding
    body = before + _ue(width // 16 - 1) + _ue(height // 16 - 1) + rest + "1"
    body += "0" * (-len(body) % 8)
    rbsp = int(body, 2).to_bytes(len(body) // 8, "big")
    return sps[:1] + _escape(rbsp)


_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def mp4_claiming(width: int, height: int) -> bytes:
    """A small real H.264 MP4 (PyAV) whose SPS, and sample description, claim ``width`` ×
    ``height`` frames (e.g. 16384 × 16384: 268 MP a frame); FFmpeg reports that size before
    decoding anything."""
    data = bytearray(small_mp4())
    path = _box_path(data, b"avcC")
    avcc = path[-1]
    sps_len = struct.unpack(">H", data[avcc + 14 : avcc + 16])[0]
    old = bytes(data[avcc + 16 : avcc + 16 + sps_len])
    new = _sps_with_size(old, width, height)
    data[avcc + 14 : avcc + 16 + sps_len] = struct.pack(">H", len(new)) + new
    delta = len(new) - len(old)
    for start in path:  # every box around the SPS grows with it
        size = struct.unpack(">I", data[start : start + 4])[0]
        data[start : start + 4] = struct.pack(">I", size + delta)
    avc1 = path[-2]
    data[avc1 + 32 : avc1 + 36] = struct.pack(">HH", min(width, 65535), min(height, 65535))
    return bytes(data)


def _box_path(data: bytearray, target: bytes) -> list[int]:
    """Offsets of the boxes from the top level down to the first ``target`` box."""

    def walk(start: int, end: int, path: list[int]) -> list[int] | None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if size < 8:
                return None
            if kind == target:
                return [*path, pos]
            inner = {b"stsd": 16, b"avc1": 8 + 78}.get(kind, 8 if kind in _CONTAINERS else 0)
            if inner:
                found = walk(pos + inner, pos + size, [*path, pos])
                if found:
                    return found
            pos += size
        return None

    found = walk(0, len(data), [])
    if found is None:
        raise AssertionError(f"no {target!r} box in the MP4 PyAV made")
    return found
