"""Media file → every signal ncii computes for it. The one hasher behind `ncii hash`, `ncii add`
and `ncii match`.

Pure: no database, web or CLI code. The bytes are read, hashed and dropped within the call.
"""

from __future__ import annotations

import errno
import multiprocessing
import multiprocessing.context
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from ncii.detection import BankHash, DetectionPipeline, QueryHash
from ncii.errors import MediaError, MediaTooLarge, NciiError, UnsupportedMedia
from ncii.media import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, DecodeOptions, decode_image
from ncii.signals import FILE_SIGNALS, IMAGE_SIGNALS, SIGNAL_TYPES, Signal, get_signal_type
from ncii.signals.exact import compute_digests
from ncii.signals.imagehashes import compute_imagehashes
from ncii.signals.pdq import compute_pdq
from ncii.signals.vpdq import DEFAULT_EVERY, VideoHashes, compute_vpdq
from ncii.video import VideoLimits, is_video

MAX_FILE_BYTES = 2 * 1024**3
"""Refuse to read files larger than this into memory (2 GiB)."""


@dataclass(frozen=True, slots=True)
class HashOptions:
    """How to hash. The defaults are Meta's reference pipeline plus browser conventions."""

    signals: tuple[str, ...] = IMAGE_SIGNALS + FILE_SIGNALS
    max_side: int | None = DEFAULT_MAX_SIDE
    apply_exif_orientation: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    video_every: float = DEFAULT_EVERY
    """Seconds between the video frames hashed (0: every frame)."""
    video_limits: VideoLimits = field(default_factory=VideoLimits)
    bank_variants: DetectionPipeline | None = None
    """Also hash the variants of an image this pipeline banks (crops, small rotations, its
    region inside bars or a frame): for images going into a bank (``ncii add``)."""
    query_regions: DetectionPipeline | None = None
    """Also hash the regions of an image this pipeline looks uploads up by (the picture inside
    bars, a caption or a screenshot frame; mirrored pixels): for uploads (``ncii match``)."""

    def __post_init__(self) -> None:
        names = tuple(get_signal_type(s).name for s in self.signals)
        object.__setattr__(self, "signals", tuple(n for n in SIGNAL_TYPES if n in names))

    @classmethod
    def for_uploads(cls, **kwargs: object) -> HashOptions:
        """Hash uploads to look them up: also the regions of ncii's default detection pipeline
        (the picture inside bars, a caption or a screenshot frame), as ``ncii match`` does."""
        from ncii.detection import DEFAULT

        return cls(query_regions=DEFAULT, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def for_bank(cls, **kwargs: object) -> HashOptions:
        """Hash reported media for a bank: also the variants of ncii's default detection
        pipeline (crops, small rotations, its own region), as ``ncii add`` does."""
        from ncii.detection import DEFAULT

        return cls(bank_variants=DEFAULT, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def full_resolution(cls, **kwargs: object) -> HashOptions:
        """Hash without the 512 px shrink, as HMA and python-threatexchange do."""
        return cls(max_side=None, **kwargs)  # type: ignore[arg-type]

    @property
    def decode(self) -> DecodeOptions:
        return DecodeOptions(
            max_side=self.max_side,
            apply_exif_orientation=self.apply_exif_orientation,
            max_pixels=self.max_pixels,
        )


@dataclass(frozen=True, slots=True)
class MediaHashes:
    """What ncii knows about one media file after hashing it: never its bytes."""

    source: str
    media_type: str
    size: int
    width: int
    height: int
    signals: tuple[Signal, ...]
    pdq_dihedral: tuple[str, ...] = field(default=(), repr=False)
    """The PDQ hashes of the seven flips/rotations after the original, for query-side matching."""
    pdq_variants: tuple[BankHash, ...] = field(default=(), repr=False)
    """Bank side: PDQ hashes of variants of the picture (``HashOptions.bank_variants``)."""
    pdq_regions: tuple[QueryHash, ...] = field(default=(), repr=False)
    """Query side: PDQ hashes of regions of the upload (``HashOptions.query_regions``)."""

    def get(self, signal_type: str) -> Signal | None:
        return next((s for s in self.signals if s.type == signal_type), None)

    def to_dict(self, *, dihedral: bool = False) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.source,
            "media_type": self.media_type,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "signals": [
                {"type": s.type, "value": s.value}
                | ({"quality": s.quality} if s.quality is not None else {})
                for s in self.signals
            ],
        }
        if dihedral:
            data["pdq_dihedral"] = list(self.pdq_dihedral)
        if self.pdq_variants:
            data["pdq_variants"] = [
                {"variant": v.label, "value": v.value, "quality": v.quality}
                for v in self.pdq_variants
            ]
        return data


HashResult = MediaHashes | VideoHashes
"""An image's hashes, or a video's (or animation's) frame hashes and digests."""


def hash_bytes(
    data: bytes, *, name: str = "<bytes>", options: HashOptions | None = None
) -> HashResult:
    """Hash a media file's bytes; videos and animations are told apart by their content.

    Raises a :class:`~ncii.errors.MediaError` naming ``name``.
    """
    options = options or HashOptions()
    try:
        return _hash_bytes(data, name, options)
    except NciiError:
        raise
    except MemoryError:
        raise MediaTooLarge(f"{name}: out of memory while decoding") from None
    except Exception as exc:  # a decoder surprised by hostile bytes: this input's error only
        raise UnsupportedMedia(
            f"{name}: cannot be hashed ({type(exc).__name__}: {_one_line(exc)})"
        ) from None


def _hash_bytes(data: bytes, name: str, options: HashOptions) -> HashResult:
    if is_video(data):
        return compute_vpdq(data, name=name, every=options.video_every, limits=options.video_limits)
    wanted = options.signals
    signals: list[Signal] = []
    dihedral: tuple[str, ...] = ()
    variants: tuple[BankHash, ...] = ()
    regions: tuple[QueryHash, ...] = ()
    image_signals = [s for s in wanted if s in IMAGE_SIGNALS]
    decoded = decode_image(data, name=name, options=options.decode)
    try:
        if "pdq" in image_signals:
            pixels = np.asarray(decoded.image, dtype=np.uint8)  # one copy out of Pillow
            pdq = compute_pdq(pixels)
            signals.append(Signal("pdq", pdq.hash, pdq.quality))
            dihedral = pdq.dihedral[1:]
            if options.bank_variants or options.query_regions:
                # [0] of each is the picture's own PDQ, already in ``signals``.
                if options.bank_variants:
                    variants = options.bank_variants.bank_hashes(pixels)[1:]
                if options.query_regions:
                    regions = options.query_regions.query_hashes(pixels)[1:]
        weak = compute_imagehashes([k for k in image_signals if k != "pdq"], decoded.image)
        signals.extend(Signal(kind, value) for kind, value in weak.items())
    finally:
        decoded.image.close()
    signals = _flat_picture_quality(signals)
    digests = compute_digests(data) if any(s in FILE_SIGNALS for s in wanted) else {}
    signals.extend(Signal(kind, digests[kind]) for kind in FILE_SIGNALS if kind in wanted)
    order = {name: i for i, name in enumerate(SIGNAL_TYPES)}
    signals.sort(key=lambda s: order[s.type])
    return MediaHashes(
        source=name,
        media_type=decoded.media_type,
        size=len(data),
        width=decoded.width,
        height=decoded.height,
        signals=tuple(signals),
        pdq_dihedral=dihedral,
        pdq_variants=variants,
        pdq_regions=regions,
    )


def _flat_picture_quality(signals: list[Signal]) -> list[Signal]:
    """A picture whose PDQ quality is low (below 50: blank, flat or tiny) says too little for
    any perceptual hash: every blank picture has the same aHash, dHash, pHash and wHash as it
    has the same all-zero PDQ. Those hashes carry the PDQ's quality, so matching and banking
    leave them out like the PDQ itself; only the exact digests still identify the file."""
    pdq = next((s for s in signals if s.type == "pdq"), None)
    if pdq is None or not pdq.low_quality:
        return signals
    return [Signal(s.type, s.value, pdq.quality) if s.type in IMAGE_SIGNALS else s for s in signals]


def hash_file(path: str | os.PathLike[str], *, options: HashOptions | None = None) -> HashResult:
    """Hash one media file on disk (``-`` reads standard input)."""
    name = os.fspath(path)
    return hash_bytes(read_media(name), name=name, options=options)


def read_media(name: str) -> bytes:
    """Read a whole media file, refusing directories, special files (FIFOs, sockets, devices:
    never opened, so never waited on) and oversized inputs."""
    if isinstance(name, UnreadableInput):
        raise MediaError(name.error)
    data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1) if name == "-" else _read_regular(name)
    if len(data) > MAX_FILE_BYTES:
        raise UnsupportedMedia(f"{name}: file too large (over {MAX_FILE_BYTES:,} bytes)")
    return data


def _read_regular(name: str) -> bytes:
    try:
        _check_regular(name, os.stat(name))
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it cannot block.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        with os.fdopen(os.open(name, flags), "rb") as handle:
            info = os.fstat(handle.fileno())
            _check_regular(name, info)
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise MediaError(_unreachable(name, exc)) from None


def _check_regular(name: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise MediaError(f"{name}: is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise MediaError(f"{name}: {_file_kind(info.st_mode)}, not a regular file (not read)")
    if info.st_size > MAX_FILE_BYTES:
        raise UnsupportedMedia(f"{name}: file too large ({info.st_size:,} bytes)")


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "a special file"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return exc.strerror or _one_line(exc)


class UnreadableInput(str):
    """A path found while walking a tree that cannot be hashed: a directory that cannot be
    listed, a dangling link, a link loop. It stays in the list of inputs, so the batch reports
    it like any other failed input instead of skipping it in silence; ``error`` is the one-line
    reason :func:`read_media` raises for it."""

    error: str

    def __new__(cls, path: str, error: str) -> UnreadableInput:
        made = super().__new__(cls, path)
        made.error = error
        return made

    def __reduce__(self) -> tuple[object, ...]:  # keep ``error`` across worker processes
        return (UnreadableInput, (str(self), self.error))


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files as given, directories walked recursively in sorted order (hidden entries skipped),
    ``-`` for standard input kept as is.

    Links are followed; what a walk cannot read (a directory it cannot list, a dangling link,
    a link loop) is kept as an :class:`UnreadableInput`, and special files (FIFOs, sockets,
    devices) as they are, for hashing to report each as that input's error.
    """
    paths: list[str] = []
    for item in inputs:
        if item != "-" and os.path.isdir(item):
            paths.extend(_walk(str(Path(item))))
        else:
            paths.append(item)
    return paths


def _walk(root: str) -> Iterator[str]:
    """Depth first, entries in name order, without recursion (a tree may be deep)."""
    stack: list[tuple[Iterator[os.DirEntry[str]], frozenset[tuple[int, int]]]] = []
    listed = _list_dir(root)
    try:
        top = os.stat(root)
    except OSError as exc:  # gone since it was found to be a directory
        listed = UnreadableInput(root, _unreachable(root, exc))
    if isinstance(listed, UnreadableInput):
        yield listed
        return
    stack.append((iter(listed), frozenset({(top.st_dev, top.st_ino)})))
    while stack:
        entries, above = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        try:
            info = os.stat(entry.path)  # follows links
        except OSError as exc:
            yield UnreadableInput(entry.path, _unreachable(entry.path, exc))
            continue
        if not stat.S_ISDIR(info.st_mode):
            yield entry.path  # a file, or a special file read_media refuses unopened
            continue
        key = (info.st_dev, info.st_ino)
        if key in above:
            yield UnreadableInput(
                entry.path,
                f"{entry.path}: symbolic link loop (leads back to a directory above it), "
                "not followed",
            )
            continue
        listed = _list_dir(entry.path)
        if isinstance(listed, UnreadableInput):
            yield listed
        else:
            stack.append((iter(listed), above | {key}))


def _list_dir(path: str) -> list[os.DirEntry[str]] | UnreadableInput:
    try:
        with os.scandir(path) as found:
            return sorted(found, key=lambda e: e.name)
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else _os_reason(exc)
        return UnreadableInput(path, f"{path}: cannot list directory ({reason})")


def _unreachable(path: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return f"{path}: dangling symbolic link (its target does not exist)"
        return f"{path}: no such file"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied"
    return f"{path}: cannot read ({_os_reason(exc)})"


@dataclass(frozen=True, slots=True)
class HashOutcome:
    """One input of a batch: its hashes, or the one-line reason it could not be hashed."""

    source: str
    hashes: HashResult | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def hash_outcome(name: str, options: HashOptions | None = None) -> HashOutcome:
    """Hash one input and never raise: the error becomes part of the outcome."""
    try:
        return HashOutcome(name, hash_file(name, options=options))
    except MediaError as exc:
        return HashOutcome(name, None, str(exc))
    except MemoryError:
        return HashOutcome(name, None, f"{name}: out of memory while decoding")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def hash_many(
    names: Iterable[str], *, options: HashOptions | None = None, jobs: int = 1
) -> Iterator[HashOutcome]:
    """Hash many inputs in order, on ``jobs`` worker processes (each reads its own files).

    Bad inputs yield an outcome with an error and the batch goes on.
    """
    options = options or HashOptions()
    names = list(names)
    if jobs <= 1 or len(names) < 2:
        for name in names:
            yield hash_outcome(name, options)
        return
    stdin_outcome = hash_outcome("-", options) if "-" in names else None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context()) as pool:
        remote = pool.map(
            partial(hash_outcome, options=options),
            [n for n in names if n != "-"],
            chunksize=max(1, min(16, len(names) // (jobs * 8))),
        )
        for name in names:
            yield stdin_outcome if name == "-" and stdin_outcome else next(remote)


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers never inherit the parent's threads, database connections or locks.
    # The server imports the hashers once and each worker forks from it ready to go, instead
    # of paying ~0.5 s of imports (numpy, Pillow, scipy via imagehash) per worker.
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context
