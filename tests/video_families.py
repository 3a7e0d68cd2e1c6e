"""The reference video families in ../shared/data, hashed every frame once per test session.

Meta's sample videos (chair-*, pattern-*, …), ``v2.m4v`` and its cut ``v2s.mov``,
``Megamind.avi`` and ``Megamind_bugy.avi`` (the same frames stamped at 30 fps), and the Big Buck
Bunny clip that matches none of them. ``test_vpdq_conformance.py`` and ``test_video_banks.py``
share the one every-frame decode of each: hashing at one frame per second gives exactly the
frames :func:`~ncii.signals.vpdq.sample_frames` picks from it (checked in the conformance
module), so :func:`cached_hash_file` answers ``ncii add`` and ``ncii match`` from it.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import cache
from pathlib import Path

from shared_data import SHARED, shared

from ncii.hashing import HashOptions, HashResult, hash_file
from ncii.signals.vpdq import VideoHashes, compute_vpdq, sample_frames

SAMPLES = "threatexchange/tmk/sample-videos"
OTHERS = {
    "v2": "perception_testdata/perception/testing/videos/v2.m4v",
    "v2s": "perception_testdata/perception/testing/videos/v2s.mov",
    "Megamind": "opencv_samples_debian/data/Megamind.avi",
    "Megamind_bugy": "opencv_samples_debian/data/Megamind_bugy.avi",
}
BUNNY = "moviepy_media/media/big_buck_bunny_0_30.webm"

KNOWN_MISSES: dict[str, str] = {}
"""Family members vPDQ cannot match (name: why). None since static overlays are painted over
in the second hash of each frame: the two large-logo videos, which plain PDQ misses (at most
21% of their frames, Meta's own reference hashes alike), match their families both ways."""

LOGOS = ("chair-22-with-large-logo-bar", "pattern-sd-with-large-logo-bar")
"""A logo over a third of the picture: only the overlay-painted hash finds these."""


def family(name: str) -> str:
    """``chair``, ``pattern``, ``v2``, ``Megamind`` or the video's own name."""
    if name.startswith(("chair-", "pattern-")):
        return name.split("-")[0]
    return name.replace("_bugy", "").replace("v2s", "v2")


def video_paths() -> dict[str, Path]:
    """Every sample video and the other family videos, by name (the Bunny clip is apart)."""
    paths = {p.stem: p for p in sorted(shared(SAMPLES).glob("*.mp4"))}
    return paths | {name: shared(relative) for name, relative in OTHERS.items()}


def _hash_every_frame(path: Path) -> VideoHashes:
    return compute_vpdq(path.read_bytes(), name=path.name, every=0)


@cache
def every_frame_hashes() -> dict[str, VideoHashes]:
    """Every frame of each of :func:`video_paths`, on two worker processes."""
    paths = video_paths()
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        # Longest first, so the two workers finish together.
        order = sorted(paths, key=lambda n: -paths[n].stat().st_size)
        results = pool.map(_hash_every_frame, [paths[n] for n in order])
        return dict(zip(order, results, strict=True))


@cache
def _by_path() -> dict[Path, VideoHashes]:
    paths = video_paths()
    return {paths[name].resolve(): hashes for name, hashes in every_frame_hashes().items()}


_other: dict[tuple[Path, float], HashResult] = {}


def cached_hash_file(path: str | os.PathLike[str], *, options: HashOptions | None = None):  # type: ignore[no-untyped-def]
    """``ncii.hashing.hash_file`` for the family videos without decoding them again: their
    every-frame hashes sampled as ``options.video_every`` asks. Anything else is hashed (once
    per path and interval)."""
    options = options or HashOptions()
    name = os.fspath(path)
    resolved = Path(name).resolve()
    every = float(options.video_every)
    full = _by_path().get(resolved)
    if full is not None:
        frames = tuple(sample_frames(full.frames, every))
        return replace(full, source=name, every=every, frames=frames)
    if SHARED is None or not resolved.is_relative_to(SHARED.resolve()):
        return hash_file(name, options=options)
    key = (resolved, every)
    if key not in _other:
        _other[key] = hash_file(name, options=options)
    return replace(_other[key], source=name)
