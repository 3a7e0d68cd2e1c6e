"""Sampling a video decodes only the frames the samples need (``ncii.video._Plan``), and
hashes exactly what decoding every frame hashed: the same frames, numbers, times and hashes
(plain and unbarred), on Meta's TMK samples (against hashes stored before the change) and on
the other clips of the shared data (against the every-frame path, which decodes all)."""

import json
from functools import cache
from pathlib import Path

import pytest
from shared_data import SHARED, requires_shared, shared

from ncii.errors import MediaTooLarge
from ncii.signals.vpdq import compute_vpdq, sample_frames
from ncii.video import VideoLimits, open_video

pytestmark = requires_shared

REFERENCE = Path(__file__).parent / "data" / "vpdq_decode" / "reference.json"

OTHER_CLIPS = [
    "moviepy_media/media/big_buck_bunny_0_30.webm",  # VP8 in WebM
    "moviepy_media/media/smpte-2997.mp4",  # H.264 with B-frames, 1080p
    "moviepy_media/media/chaplin.mp4",
    "moviepy_media/media/doc_medias/long_examples/example.mp4",  # H.264 without B-frames
    "perception_testdata/perception/testing/videos/v2.m4v",  # an edit list drops 138 packets
    "opencv_samples_debian/data/Megamind.avi",  # AVI, packed B-frames: every frame decoded
]


@cache
def reference() -> dict[str, dict]:
    return json.loads(REFERENCE.read_text())


def _keys() -> list[str]:
    return sorted(reference()) if SHARED is not None else ["(no shared data)"]


@pytest.mark.parametrize("key", _keys())
def test_tmk_samples_hash_as_before(key):
    clip, every = key.rsplit("@", 1)
    hashes = compute_vpdq(shared(clip).read_bytes(), name=clip, every=float(every))
    want = reference()[key]
    assert [f.to_dict() for f in hashes.frames] == want["frames"]
    assert hashes.frame_count == want["frame_count"]
    assert round(hashes.duration, 6) == want["duration"]


@pytest.mark.parametrize("clip", OTHER_CLIPS)
def test_sampled_frames_are_the_every_frame_hashes(clip):
    data = shared(clip).read_bytes()
    every = compute_vpdq(data, name=clip, every=0, unbar=False)
    for seconds in (1.0, 2.5):
        sampled = compute_vpdq(data, name=clip, every=seconds, unbar=False)
        assert sampled.frames == tuple(sample_frames(every.frames, seconds)), seconds
        assert sampled.frame_count == every.frame_count
        assert sampled.duration == every.duration


@pytest.mark.parametrize(
    ("clip", "least"),
    [
        ("threatexchange/tmk/sample-videos/chair-22-sd-grey-bar.mp4", 0.5),  # keyframe every 2 s
        ("moviepy_media/media/smpte-2997.mp4", 0.5),  # keyframes every 0.6 s, B-frames
        ("moviepy_media/media/big_buck_bunny_0_30.webm", 0.0),  # VP8: most frames needed
    ],
)
def test_frames_nothing_needs_are_not_decoded(clip, least):
    data = shared(clip).read_bytes()
    with open_video(data, name=clip) as video:
        hashed = sum(1 for _ in video.frames(1.0))
        assert video.skipped_frames > least * video.decoded_frames
        assert hashed <= video.decoded_frames - video.skipped_frames
    with open_video(data, name=clip) as video:
        assert sum(1 for _ in video.frames(0)) == video.decoded_frames
        assert video.skipped_frames == 0


def test_avi_decodes_every_frame():
    """AVI timestamps are FFmpeg's guesses (packed B-frames come out of order): no plan."""
    clip = "opencv_samples_debian/data/Megamind.avi"
    with open_video(shared(clip).read_bytes(), name=clip) as video:
        assert sum(1 for _ in video.frames(1.0)) == 12
        assert video.skipped_frames == 0


@pytest.mark.parametrize(
    "clip",
    [
        "threatexchange/tmk/sample-videos/chair-22-with-large-logo-bar.mp4@1.0",
        "threatexchange/tmk/sample-videos/pattern-hd-no-bar.mp4@2.5",
    ],
)
def test_frame_threads_hash_as_before(clip):
    """FFmpeg's frame threads decode packets late; the plan's skipping holds all the same."""
    path, every = clip.rsplit("@", 1)
    hashes = compute_vpdq(shared(path).read_bytes(), name=path, every=float(every), threads=2)
    assert [f.to_dict() for f in hashes.frames] == reference()[clip]["frames"]


def test_frame_limit_holds_before_anything_is_decoded():
    """The plan holds the packets: more than ``max_frames`` of them refuse the video."""
    clip = "threatexchange/tmk/sample-videos/chair-22-sd-grey-bar.mp4"  # 673 frames
    data = shared(clip).read_bytes()
    with pytest.raises(MediaTooLarge, match=r"chair\.mp4: more than 600 frames"):
        compute_vpdq(data, name="chair.mp4", limits=VideoLimits(max_frames=600))
    assert compute_vpdq(data, limits=VideoLimits(max_frames=673)).frame_count == 673
