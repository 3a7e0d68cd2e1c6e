"""Video and animation hashing (vPDQ) and matching, on media made here with PyAV and Pillow,
so a fresh clone tests the whole path; Meta's reference videos are in
``test_vpdq_conformance.py``."""

import io
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from functools import cache
from itertools import pairwise

import av
import numpy as np
import pdqhash
import pytest
from PIL import Image
from shared_data import VENDORED, requires_shared, shared

from ncii import EmptyMedia, MediaError, MediaTooLarge, UnsupportedMedia, hash_bytes
from ncii.errors import InvalidArgument, InvalidVpdq, VideoError
from ncii.signals import vpdq
from ncii.signals.exact import compute_digests
from ncii.signals.vpdq import (
    VideoIndex,
    VpdqFrame,
    compute_vpdq,
    dedupe_frames,
    format_vpdq,
    match_videos,
    parse_vpdq,
    pdq_frame,
    sample_frames,
)
from ncii.video import VideoLimits, find_bars, is_video, open_video, probe, sniff

PHOTO = VENDORED / "square-512x512.jpg"
FPS = 24
FRAMES = 72  # three seconds


FAST = {
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
    "libx264": {"preset": "ultrafast"},
}
"""Encoder settings that keep the test media quick to make."""


@cache
def _photo() -> Image.Image:
    with Image.open(PHOTO) as image:
        return image.convert("RGB")


def scene(i: int, size: tuple[int, int] = (320, 180)) -> Image.Image:
    """Frame ``i`` of a slow pan and zoom across the vendored photo."""
    x, y = i, i // 2
    return _photo().crop((x, y, x + 320 + i, y + 180 + i // 2)).resize(size)


def encode(
    fmt: str = "mp4",
    codec: str = "mpeg4",
    *,
    frames: int = FRAMES,
    fps: int = FPS,
    size: tuple[int, int] = (320, 180),
    canvas: tuple[int, int] | None = None,
) -> bytes:
    """A real video made in memory; ``canvas`` letterboxes the scene in black."""
    buffer = io.BytesIO()
    width, height = canvas or size
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps, options=FAST.get(codec, {}))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            picture = scene(i, size)
            if canvas:
                boxed = Image.new("RGB", canvas)
                boxed.paste(picture, ((width - size[0]) // 2, (height - size[1]) // 2))
                picture = boxed
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def animation(fmt: str, frames: int = 12, **params: object) -> bytes:
    images = [scene(4 * i) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=250, **params)
    return buffer.getvalue()


def audio(fmt: str, codec: str) -> bytes:
    """One second of a 440 Hz tone, no video."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=16000, layout="mono")
        tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
        if codec == "pcm_s16le":
            frame = av.AudioFrame.from_ndarray(
                (tone * 10000).astype(np.int16)[None, :], format="s16", layout="mono"
            )
        else:
            frame = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return buffer.getvalue()


@cache
def mp4() -> bytes:
    return encode()


@cache
def webm() -> bytes:
    return encode("webm", "libvpx")


def assert_one_line_naming(exc: BaseException, name: str) -> None:
    message = str(exc)
    assert message.startswith(f"{name}: "), message
    assert "\n" not in message and "Traceback" not in message


def pdq_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


# -- frame PDQ --------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize(
    "shape", [(180, 320), (5, 5), (7, 1001), (1001, 7), (720, 1280), (67, 129)]
)
def test_frame_pdq_equals_pdqhash(monkeypatch, kernel, shape):
    """Same hash and quality as pdqhash (Meta's C++ PDQ) on the same pixels."""
    monkeypatch.setattr(vpdq, "USE_KERNEL", kernel)
    rng = np.random.default_rng(sum(shape))
    photo = np.asarray(_photo().resize(shape[::-1]))
    noisy = np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)
    for pixels in (photo, noisy):
        bits, quality = pdqhash.compute(pixels)
        assert pdq_frame(pixels) == (np.packbits(bits).tobytes().hex(), quality)


def test_frame_pdq_of_real_video_frames_equals_pdqhash():
    with open_video(mp4()) as video:
        for frame in video.frames(0.5):
            bits, quality = pdqhash.compute(frame.rgb)
            assert pdq_frame(frame.rgb) == (np.packbits(bits).tobytes().hex(), quality)


def test_frames_too_small_to_hash():
    assert pdq_frame(np.zeros((4, 100, 3), dtype=np.uint8)) == ("0" * 64, 0)


# -- hashing ----------------------------------------------------------------------------------


def test_hash_a_video_at_one_frame_per_second():
    data = mp4()
    result = compute_vpdq(data, name="clip.mp4")
    assert result.source == "clip.mp4"
    assert result.media_type == "video/mp4"
    assert (result.width, result.height) == (320, 180)
    assert result.frame_count == FRAMES
    assert result.duration == pytest.approx(FRAMES / FPS)
    assert [f.index for f in result.frames] == [0, 24, 48]
    assert [f.timestamp for f in result.frames] == pytest.approx([0.0, 1.0, 2.0])
    assert all(f.quality >= 50 for f in result.frames)
    assert result.digests == compute_digests(data)
    assert [str(s) for s in result.signals] == [f"{k}:{v}" for k, v in result.digests.items()]
    assert result.size == len(data)


def test_every_frame_and_custom_interval():
    every_frame = compute_vpdq(mp4(), every=0)
    assert [f.index for f in every_frame.frames] == list(range(FRAMES))
    half = compute_vpdq(mp4(), every=0.5)
    assert [f.index for f in half.frames] == list(range(0, FRAMES, 12))
    assert sample_frames(every_frame.frames, 0.5) == list(half.frames)
    assert sample_frames(every_frame.frames, 1) == list(compute_vpdq(mp4()).frames)


def test_timeline_survives_mislabelled_and_broken_clocks():
    from ncii.video import _Timeline

    def placed(step: float, raws: list[float | None]) -> list[float]:
        timeline = _Timeline(step)
        times = [timeline.place(raw) for raw in raws]
        assert all(b > a for a, b in pairwise(times)), times
        return times

    # AVI with packed B-frames labels frames 1, 2, 3, 5, 4, 6, ...: no drift.
    mislabelled = placed(1 / 24, [n / 24 for n in (1, 2, 3, 5, 4, 6, 8, 7, 9, 240)])
    assert mislabelled[-1] == pytest.approx(239 / 24)
    # Two streams joined end to end: the second goes on after the first.
    joined = placed(0.04, [i * 0.04 for i in range(50)] + [i * 0.04 for i in range(3)])
    assert joined[-3:] == pytest.approx([2.0, 2.04, 2.08])
    # A clock stuck at one value, or no timestamps at all, still advances.
    assert placed(0.1, [5.0] * 20)[-1] > 1.4
    assert placed(0.1, [None] * 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])


@pytest.mark.parametrize("every", [-1, float("nan"), float("inf"), "1"])
def test_bad_interval(every):
    with pytest.raises(InvalidArgument):
        compute_vpdq(mp4(), every=every)


def test_containers_and_codecs_decode_to_the_same_frames():
    original = compute_vpdq(mp4(), every=0.5).frames
    for fmt, codec in [
        ("matroska", "mpeg4"),
        ("avi", "mpeg4"),
        ("mp4", "libx264"),
        ("webm", "libvpx"),
    ]:
        try:
            data = encode(fmt, codec)
        except (av.FFmpegError, ValueError):  # an encoder this PyAV build lacks
            continue
        other = compute_vpdq(data, name=fmt, every=0.5)
        assert len(other.frames) == len(original)
        for a, b in zip(original, other.frames, strict=True):
            assert pdq_distance(a.pdq, b.pdq) <= 20, (fmt, codec, a.index)
        assert match_videos(other.frames, original).is_match


def test_animated_gif_webp_and_png_take_the_video_path():
    hashes = {}
    for fmt, params in [("GIF", {"loop": 0}), ("WEBP", {"loop": 0, "quality": 90}), ("PNG", {})]:
        data = animation(fmt, **params)
        assert is_video(data), fmt
        result = compute_vpdq(data, name=fmt, every=0)
        assert [f.timestamp for f in result.frames] == pytest.approx([i / 4 for i in range(12)])
        assert result.duration == pytest.approx(3.0)
        assert result.media_type in ("image/gif", "image/webp", "image/apng")
        hashes[fmt] = result
    assert match_videos(hashes["GIF"].frames, hashes["WEBP"].frames).query_pct == 100
    assert match_videos(hashes["PNG"].frames, hashes["GIF"].frames).query_pct == 100


def test_first_frame_of_an_animation_hashes_as_the_image_path_does():
    still = io.BytesIO()
    scene(0).save(still, "PNG")
    image_pdq = hash_bytes(still.getvalue()).get("pdq")
    assert image_pdq is not None
    first = compute_vpdq(animation("PNG"), every=0).frames[0]
    assert first.pdq == image_pdq.value


def test_an_animated_gif_matches_the_video_it_was_made_from():
    video = compute_vpdq(encode(frames=48, fps=4), every=0).frames
    gif = compute_vpdq(animation("GIF", frames=12)).frames  # 4 frames per second, 3 s
    assert match_videos(gif, video).is_match


def test_gif_delays_under_20_ms_play_as_100_ms():
    images = [scene(8 * i) for i in range(3)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=0, loop=0)
    frames = compute_vpdq(buffer.getvalue(), every=0).frames
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2])


def test_static_images_are_not_videos():
    for fmt in ("GIF", "PNG", "WEBP", "JPEG", "AVIF"):
        buffer = io.BytesIO()
        scene(0).save(buffer, fmt)
        assert not is_video(buffer.getvalue()), fmt


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "quicktime"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", None),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", None),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00", None),
        (b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00", "flv"),
        (b"OggS\x00\x02" + bytes(10), "ogg"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89", "mpegps"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xf1\x50\x80\x00\x1f\xfc" + bytes(6), "aac"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", None),
        (b"hello world, this is text", None),
        (b"", None),
    ],
)
def test_sniffing_by_content(head, kind):
    found = sniff(head + bytes(64))
    assert (found.kind if found else None) == kind


def test_transport_stream_is_sniffed():
    packet = b"\x47" + bytes(187)
    assert sniff(packet * 4).kind == "mpegts"


def test_probe_reads_the_header_only():
    info = probe(mp4(), name="clip.mp4")
    assert (info.width, info.height, info.codec, info.container) == (320, 180, "mpeg4", "mp4")
    assert info.frame_rate == pytest.approx(FPS)
    assert info.declared_duration == pytest.approx(FRAMES / FPS)


# -- letterbox and pillarbox bars -------------------------------------------------------------


def test_find_bars():
    picture = np.asarray(scene(0, (320, 180)))
    boxed = np.zeros((240, 320, 3), dtype=np.uint8)
    boxed[30:210] = picture
    assert find_bars(boxed) == pytest.approx((30, 210, 0, 320), abs=2)
    grey = np.full((180, 400, 3), 128, dtype=np.uint8)
    grey[:, 40:360] = picture
    assert find_bars(grey) == pytest.approx((0, 180, 40, 360), abs=4)
    assert find_bars(picture) is None
    assert find_bars(np.zeros((100, 100, 3), dtype=np.uint8)) is None  # all flat: no content
    thin = np.zeros((180, 320, 3), dtype=np.uint8)
    thin[2:178] = picture[2:178]
    assert find_bars(thin) is None  # two-pixel edges are not worth a second hash


def test_a_letterboxed_copy_matches_through_its_unbarred_hashes():
    original = compute_vpdq(encode(), every=0).frames
    boxed = compute_vpdq(encode(canvas=(320, 260)), every=1).frames
    assert all(f.unbarred is not None for f in boxed)
    assert all(f.unbarred is None for f in original)
    plain = [VpdqFrame(f.index, f.quality, f.pdq, f.timestamp) for f in boxed]
    assert not match_videos(plain, original).is_match
    assert match_videos(boxed, original).query_pct == 100
    assert match_videos(sample_frames(original, 1), boxed).query_pct == 100
    without = compute_vpdq(encode(canvas=(320, 260)), every=1, unbar=False).frames
    assert all(f.unbarred is None for f in without)


# -- bad input --------------------------------------------------------------------------------


def _refused(data: bytes, name: str, kind: type[MediaError] = VideoError, **kwargs) -> str:
    started = time.monotonic()
    with pytest.raises(kind) as info:
        compute_vpdq(data, name=name, **kwargs)
    assert time.monotonic() - started < 5
    assert_one_line_naming(info.value, name)
    return str(info.value)


def test_zero_bytes():
    _refused(b"", "empty.mp4", EmptyMedia)


def test_random_bytes_and_text():
    _refused(random.Random(1).randbytes(100_000), "noise.mp4")
    _refused(b"this is not a video\n" * 100, "notes.mp4")


def test_truncated_mp4_without_its_index():
    data = mp4()
    assert data.index(b"moov") > data.index(b"mdat")  # written at the end, as cameras do
    message = _refused(data[: len(data) // 2], "cut.mp4")
    assert "truncated" in message


@requires_shared
def test_truncated_mp4_with_its_index_first():
    data = shared("threatexchange/tmk/sample-videos/doorknob-hd-no-bar.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    for fraction in (0.3, 0.9):
        message = _refused(data[: int(len(data) * fraction)], "cut.mp4")
        assert "truncated" in message


def test_truncated_webm():
    data = webm()
    assert "truncated" in _refused(data[: len(data) * 6 // 10], "cut.webm")


def test_audio_only():
    for name, fmt, codec in [("tone.wav", "wav", "pcm_s16le"), ("tone.m4a", "mp4", "aac")]:
        assert is_video(audio(fmt, codec)), name
        assert "audio only" in _refused(audio(fmt, codec), name)


def test_a_stream_no_decoder_reads():
    data = encode("mp4", "libx264")
    assert b"avc1" in data
    message = _refused(data.replace(b"avc1", b"zzzz"), "odd-codec.mp4")
    assert "no decoder" in message


def test_a_header_that_lies_about_the_length():
    data = webm()
    at = data.index(b"\x44\x89")  # Matroska Segment Duration, an 8-byte float (milliseconds)
    assert data[at + 2] == 0x88
    declared = struct.unpack(">d", data[at + 3 : at + 11])[0]
    lying = data[: at + 3] + struct.pack(">d", declared * 1000) + data[at + 11 :]
    message = _refused(lying, "long.webm")
    assert "declares 3000.0 s" in message
    # Claiming less than there is costs nothing: the streams are read, within the limits.
    modest = data[: at + 3] + struct.pack(">d", declared / 100) + data[at + 11 :]
    assert len(compute_vpdq(modest).frames) == 3


def test_corrupt_animation():
    data = animation("GIF")
    _refused(data[: len(data) // 2], "cut.gif")


def test_limits_bound_the_work():
    _refused(mp4(), "long.mp4", MediaTooLarge, limits=VideoLimits(max_frames=10))
    _refused(mp4(), "big.mp4", MediaTooLarge, limits=VideoLimits(max_pixels=320 * 100))
    _refused(mp4(), "slow.mp4", MediaTooLarge, limits=VideoLimits(max_seconds=0))
    _refused(animation("GIF"), "long.gif", MediaTooLarge, limits=VideoLimits(max_frames=3))


def test_video_errors_are_unsupported_media():
    assert issubclass(VideoError, UnsupportedMedia)


def test_nothing_reaches_stderr_or_disk(capfd):
    before = set(os.listdir(tempfile.gettempdir()))
    compute_vpdq(mp4())
    for data in (mp4()[:5000], audio("wav", "pcm_s16le")):
        with pytest.raises(MediaError):
            compute_vpdq(data)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert set(os.listdir(tempfile.gettempdir())) <= before


# -- the text form ----------------------------------------------------------------------------


def test_format_and_parse_round_trip():
    frames = list(compute_vpdq(mp4(), every=0.5).frames)
    text = format_vpdq(frames)
    first = text.splitlines()[0].split(",")
    assert first[0] == "0" and first[3] == "0.000" and len(first[2]) == 64
    parsed = parse_vpdq(text)
    assert [(f.index, f.quality, f.pdq) for f in parsed] == [
        (f.index, f.quality, f.pdq) for f in frames
    ]
    assert [f.timestamp for f in parsed] == pytest.approx([f.timestamp for f in frames], abs=5e-4)
    assert format_vpdq(parsed) == text


def test_parse_python_threatexchange_json():
    text = '["' + "f" * 64 + ',100,0.000", "' + "0" * 64 + ',49,1.5"]'
    frames = parse_vpdq(text)
    assert frames == [VpdqFrame(0, 100, "f" * 64, 0.0), VpdqFrame(1, 49, "0" * 64, 1.5)]


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        ("0,100,abc,0.000", "64 hex digits"),
        ("0,100," + "f" * 64, "expected frame,quality,pdqhex,timestamp"),
        ("0,100," + "f" * 64 + ",0.0,extra", "expected frame,quality,pdqhex,timestamp"),
        ("x,100," + "f" * 64 + ",0.000", "must be numbers"),
        ("0,101," + "f" * 64 + ",0.000", "quality 101"),
        ("-1,100," + "f" * 64 + ",0.000", "negative"),
        ("0,100," + "f" * 64 + ",nan", "not a time"),
        ("0,100," + "g" * 64 + ",0.000", "64 hex digits"),
    ],
)
def test_malformed_lines_name_the_line(line, fault):
    text = "0,100," + "f" * 64 + ",0.000\n\n" + line + "\n"
    with pytest.raises(InvalidVpdq) as info:
        parse_vpdq(text, name="hashes.txt")
    message = str(info.value)
    assert message.startswith("hashes.txt: line 3: "), message
    assert fault in message and "\n" not in message


def test_empty_and_bad_json():
    for text in ("", "\n\n", "[]"):
        with pytest.raises(InvalidVpdq):
            parse_vpdq(text)
    with pytest.raises(InvalidVpdq, match="item 1"):
        parse_vpdq('["nope"]')


@requires_shared
def test_meta_sample_hashes_round_trip_byte_for_byte():
    folder = shared("threatexchange/vpdq/sample-hashes")
    for path in sorted(folder.glob("*.txt"))[:6]:
        text = path.read_text()
        assert format_vpdq(parse_vpdq(text, name=path.name)) == text, path.name


# -- matching ---------------------------------------------------------------------------------


def _random_hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _flip(value: str, bits: int, rng: random.Random) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), bits):
        number ^= 1 << bit
    return f"{number:064x}"


def _video(hashes: list[str], quality: int = 100, step: float = 1.0) -> list[VpdqFrame]:
    return [VpdqFrame(i, quality, h, i * step) for i, h in enumerate(hashes)]


def test_distance_31_matches_and_32_does_not():
    rng = random.Random(3)
    base = _random_hash(rng)
    assert match_videos(_video([_flip(base, 31, rng)]), _video([base])).is_match
    assert not match_videos(_video([_flip(base, 32, rng)]), _video([base])).is_match
    assert match_videos(_video([_flip(base, 32, rng)]), _video([base]), threshold=32).is_match


def test_percentages_thresholds_and_ranges():
    rng = random.Random(4)
    shared_hashes = [_random_hash(rng) for _ in range(8)]
    query = _video([*shared_hashes[:4], _random_hash(rng), *shared_hashes[4:8]])  # 8 of 9
    bank = _video(shared_hashes + [_random_hash(rng) for _ in range(8)])  # 8 of 16
    result = match_videos(query, bank)
    assert result.query_pct == pytest.approx(800 / 9)
    assert result.bank_pct == pytest.approx(50)
    assert result.is_match
    assert result.matched_ranges == ((0.0, 3.0), (5.0, 8.0))
    assert result.bank_ranges == ((0.0, 7.0),)
    assert (result.query_frames, result.bank_frames) == (9, 16)
    assert not match_videos(query, bank, query_match_pct=90).is_match
    assert not match_videos(query, bank, bank_match_pct=60).is_match
    assert match_videos(query, bank, query_match_pct=88, bank_match_pct=50).is_match
    with pytest.raises(InvalidArgument):
        match_videos(query, bank, query_match_pct=101)


def test_low_quality_frames_are_dropped_and_duplicates_counted_once():
    rng = random.Random(5)
    a, b, c = (_random_hash(rng) for _ in range(3))
    frames = [
        VpdqFrame(0, 100, a, 0.0),
        VpdqFrame(1, 100, a, 1.0),
        VpdqFrame(2, 49, b, 2.0),
        VpdqFrame(3, 50, c, 3.0),
    ]
    assert dedupe_frames(frames) == [frames[0], frames[3]]
    bank = _video([a])
    result = match_videos(frames, bank)
    assert result.query_pct == 50  # a (twice) found, c not; b too weak to count
    assert result.matched_ranges == ((0.0, 1.0),)
    assert not match_videos(_video([b], quality=10), _video([b], quality=10)).is_match
    assert match_videos(_video([b], quality=10), _video([b], quality=10), min_quality=0).is_match


def test_empty_sides_never_match():
    assert not match_videos([], _video(["f" * 64])).is_match
    assert match_videos(_video(["f" * 64]), []).query_pct == 0


def test_index_agrees_with_brute_force():
    rng = random.Random(6)
    bases = [[_random_hash(rng) for _ in range(20)] for _ in range(30)]
    bank = {}
    for video, hashes in enumerate(bases):
        kept = [_flip(h, rng.randrange(12), rng) for h in hashes[: rng.randrange(5, 20)]]
        bank[video] = _video(kept, step=0.5)
    index = VideoIndex()
    for video, frames in bank.items():
        index.add(video, frames)
    assert len(index) == 30 and index.frame_count == sum(len(f) for f in bank.values())
    for source in range(0, 30, 3):
        query = _video([_flip(h, rng.randrange(20), rng) for h in bases[source][2:12]])
        found = {hit.video: hit.match for hit in index.search(query, candidates=True)}
        for video, frames in bank.items():
            brute = match_videos(query, frames)
            if video in found:
                assert found[video] == brute
            else:
                assert brute.query_pct == 0
        matching = [hit.video for hit in index.search(query)]
        assert matching == [v for v in found if found[v].is_match]


def test_index_disable_and_errors():
    rng = random.Random(7)
    frames = _video([_random_hash(rng) for _ in range(5)])
    index = VideoIndex()
    assert index.add(11, frames + frames) == 5
    assert [hit.video for hit in index.search(frames)] == [11]
    index.set_active(11, False)
    assert index.search(frames) == []
    index.set_active(11, True)
    assert index.search(frames)[0].match.query_pct == 100
    with pytest.raises(InvalidArgument):
        index.add(11, frames)
    with pytest.raises(InvalidArgument):
        index.set_active(99, False)


def test_index_uses_unbarred_hashes_on_both_sides():
    rng = random.Random(8)
    plain = [_random_hash(rng) for _ in range(4)]
    barred = [
        VpdqFrame(i, 100, _random_hash(rng), float(i), unbarred=h) for i, h in enumerate(plain)
    ]
    index = VideoIndex()
    index.add(1, _video(plain))
    index.add(2, barred)
    assert {hit.video for hit in index.search(barred)} == {1, 2}
    assert {hit.video for hit in index.search(_video(plain))} == {1, 2}


def test_pure_video_modules_import_no_database_web_or_cli_code():
    code = (
        "import sys, ncii.video, ncii.signals.vpdq; "
        "bad = [m for m in ('sqlalchemy', 'alembic', 'typer', 'click', 'rich', 'fastapi') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
