"""Static overlays (logos, watermarks) painted over in each frame's second hash.

A copy with a large logo stamped on it shares no frame within 31 bits with the original, in
either direction. ``compute_vpdq`` finds pixels that stay put while the picture moves under
them (:class:`~ncii.video.OverlayFinder`, over the first seconds at one frame a second), paints
them over with the picture around them and hashes that as :attr:`VpdqFrame.unbarred` (with any
bars cut off too), on the bank side and the query side alike.

Made here: a panning clip with and without a logo. From ``../shared/data``: Meta's two
large-logo sample videos against their families (hashed once per session,
``tests/video_families.py``).
"""

from __future__ import annotations

import io
from functools import cache

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw
from shared_data import VENDORED, requires_shared
from video_families import LOGOS, every_frame_hashes, family, video_paths

from ncii.signals import vpdq
from ncii.signals.vpdq import VpdqFrame, compute_vpdq, match_videos, sample_frames
from ncii.video import OverlayFinder, find_bars, luma, open_video

SIZE = (320, 240)
FPS = 12


@cache
def _photo() -> Image.Image:
    with Image.open(VENDORED / "square-512x512.jpg") as image:
        return image.convert("RGB")


@cache
def logo_mask(size: tuple[int, int] = SIZE) -> np.ndarray:
    """A line-drawn face over a third of the picture, like Meta's large-logo samples."""
    width, height = size
    layer = Image.new("L", size, 0)
    draw = ImageDraw.Draw(layer)
    line = max(3, width // 40)
    draw.ellipse((width * 0.4, height * 0.1, width * 0.6, height * 0.35), outline=255, width=line)
    draw.ellipse((width * 0.7, height * 0.1, width * 0.9, height * 0.35), outline=255, width=line)
    draw.chord((width * 0.35, height * 0.2, width * 0.95, height * 0.8), 10, 170, outline=255,
               width=line)  # fmt: skip
    return np.asarray(layer) > 127


@cache
def clip(
    logo: bool = True,
    *,
    seconds: int = 8,
    still: bool = False,
    canvas: tuple[int, int] | None = None,
    black: int = 0,
) -> bytes:
    """A pan across the vendored photo (or a still shot of it), ``logo`` stamped in black at
    a fixed place, pillarboxed in black on ``canvas``, after ``black`` seconds of black."""
    width, height = canvas or SIZE
    stamp = Image.fromarray(logo_mask().astype(np.uint8) * 255)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 2_000_000
        for i in range(seconds * FPS):
            x, y = (0, 0) if still else (2 * i, i)
            picture = _photo().crop((x, y, x + 256, y + 192)).resize(SIZE)
            if logo:
                picture.paste((0, 0, 0), (0, 0), stamp)
            if canvas:
                boxed = Image.new("RGB", canvas)
                boxed.paste(picture, ((width - SIZE[0]) // 2, (height - SIZE[1]) // 2))
                picture = boxed
            if i < black * FPS:
                picture = Image.new("RGB", (width, height))
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def find_overlay(data: bytes):  # type: ignore[no-untyped-def]
    finder = OverlayFinder()
    with open_video(data) as video:
        for frame in video.frames(1.0):
            finder.offer(frame.rgb, frame.timestamp, find_bars(frame.rgb))
    return finder.result()


def plain(frames) -> list[VpdqFrame]:  # type: ignore[no-untyped-def]
    """The frames without ncii's second hash: Meta's vPDQ."""
    return [VpdqFrame(f.index, f.quality, f.pdq, f.timestamp) for f in frames]


# -- made here ----------------------------------------------------------------------------------


def test_the_overlay_found_is_the_logo():
    overlay = find_overlay(clip())
    assert overlay is not None
    logo = logo_mask()
    covered = np.count_nonzero(overlay.mask & logo) / np.count_nonzero(logo)
    assert covered > 0.95  # its anti-aliased edge and the codec's ringing too:
    assert np.count_nonzero(overlay.mask) < 3 * np.count_nonzero(logo)  # but little else
    assert find_overlay(clip(logo=False)) is None


def test_no_overlay_without_motion_or_time():
    """A still shot shows no difference between picture and overlay; five seconds are five
    frames, fewer than it takes to tell (``OVERLAY_MIN_FRAMES``)."""
    assert find_overlay(clip(still=True)) is None
    assert find_overlay(clip(seconds=5)) is None


def test_a_logo_copy_matches_both_ways_through_the_painted_hash():
    stamped = compute_vpdq(clip(), every=0).frames
    original = compute_vpdq(clip(logo=False), every=0).frames
    assert all(f.unbarred is not None for f in stamped)
    for query, bank in ((stamped, original), (original, stamped)):
        once = sample_frames(query, 1.0)
        assert match_videos(plain(once), plain(bank)).query_pct == 0  # vPDQ alone: lost
        result = match_videos(once, bank)
        assert result.is_match and result.query_pct == 100


def test_a_logo_and_bars_together():
    boxed = compute_vpdq(clip(canvas=(400, 240)), every=0).frames
    original = compute_vpdq(clip(logo=False), every=0).frames
    assert match_videos(sample_frames(boxed, 1.0), original).query_pct == 100
    assert match_videos(sample_frames(original, 1.0), boxed).query_pct == 100


def test_a_fade_from_black_does_not_hide_the_overlay():
    """A black first second has no bars to find: the picture's box is where most frames put
    it, so the black frame neither widens it nor stops the picture counting as moving."""
    faded = clip(canvas=(400, 240), black=1)
    overlay = find_overlay(faded)
    assert overlay is not None and not overlay.mask[:, :40].any()  # nothing in the bars
    original = compute_vpdq(clip(logo=False), every=0).frames
    result = match_videos(compute_vpdq(faded, every=1).frames, original)
    assert result.is_match and result.query_pct == 100  # the black frame is not usable


@pytest.mark.parametrize("canvas", [None, (400, 240)], ids=["full", "pillarboxed"])
def test_one_frame_a_second_is_every_frame_sampled(canvas):
    """Hashing once a second paints the first seconds from memory, hashing every frame
    decodes them again: the same hashes either way (the bank and the query must agree, and
    the test suite answers one-a-second hashing from every-frame hashes)."""
    data = clip(canvas=canvas)
    every = compute_vpdq(data, every=0).frames
    assert list(compute_vpdq(data, every=1).frames) == sample_frames(every, 1.0)
    assert list(compute_vpdq(data, every=2).frames) == sample_frames(every, 2.0)


def test_without_unbar_there_is_no_second_hash():
    assert all(f.unbarred is None for f in compute_vpdq(clip(), unbar=False).frames)


@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
def test_painting_changes_only_the_overlay_region_of_the_block(monkeypatch, kernel):
    """The painted hash filters only the overlay's region again (PDQ's filters are linear):
    the same 64×64 block as filtering the whole painted frame."""
    monkeypatch.setattr(vpdq, "USE_KERNEL", kernel)
    overlay = find_overlay(clip())
    assert overlay is not None
    with open_video(clip()) as video:
        rgb = next(iter(video.frames(1.0))).rgb
    top, left, delta = overlay.change(rgb)  # type: ignore[misc]
    assert np.count_nonzero(delta) <= np.count_nonzero(overlay.mask)
    block = vpdq._pdq_block(rgb)
    assert block is not None
    vpdq._add_to_block(block, rgb.shape[:2], top, left, delta)
    painted = luma(rgb).astype(np.float64)
    painted[top : top + delta.shape[0], left : left + delta.shape[1]] += delta
    rows, columns = vpdq._reducer(rgb.shape[0])[2], vpdq._reducer(rgb.shape[1])[2]
    np.testing.assert_allclose(block, rows @ painted @ columns.T, atol=1e-3)
    # Painting from the rounded luma (what hashing once a second keeps) is the same change.
    rounded = np.rint(luma(rgb)).astype(np.uint8)
    again = overlay.change(rounded)
    assert again is not None and np.array_equal(again[2], delta)


# -- Meta's sample videos -------------------------------------------------------------------------


@requires_shared
def test_overlays_are_found_in_the_logo_videos_only():
    found = {}
    for name, path in video_paths().items():
        overlay = find_overlay(path.read_bytes())
        found[name] = None if overlay is None else round(100 * overlay.share, 2)
    print({name: share for name, share in found.items() if share is not None})
    assert {name for name, share in found.items() if share} == {
        "chair-22-with-large-logo-bar",
        "chair-22-with-small-logo-bar",
        "pattern-sd-with-large-logo-bar",
        "pattern-sd-with-small-logo-bar",
    }
    assert all(found[name] < 5 for name in LOGOS)  # % of the frame: the strokes, not the box


@requires_shared
@pytest.mark.parametrize("logo", LOGOS)
def test_large_logo_videos_match_their_family_both_ways(logo):
    """Bank every frame, query once a second (vPDQ's 80%/0%). Without the painted hash at
    most 26% of either side's frames are found (Meta's reference hashes alike)."""
    hashes = {name: h.frames for name, h in every_frame_hashes().items()}
    kin = [name for name in hashes if family(name) == family(logo) and name != logo]
    assert len(kin) >= 4
    print()
    for other in kin:
        for query, bank in ((logo, other), (other, logo)):
            once = sample_frames(hashes[query], 1.0)
            result = match_videos(once, hashes[bank])
            before = match_videos(plain(once), plain(hashes[bank]))
            print(
                f"{query:>32} in {bank:<32} {result.query_pct:5.1f}% of query, "
                f"{result.bank_pct:4.1f}% of bank (plain vPDQ: {before.query_pct:4.1f}%)"
            )
            assert result.is_match, (query, bank, result.query_pct)
            assert not before.is_match
