"""Decoding: formats, modes and bad input, each failing with one line naming the file."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_data import VENDORED, requires_shared, shared

from ncii import (
    EmptyMedia,
    HashOptions,
    MediaError,
    MediaTooLarge,
    UnsupportedMedia,
    get_signal_type,
    hash_bytes,
    hash_file,
)
from ncii.signals.vpdq import VideoHashes

PDQ = get_signal_type("pdq")
PHOTO = VENDORED / "square-512x512.jpg"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png_bomb(path: Path, side: int = 30_000) -> Path:
    """A valid 1-bit PNG of side×side black pixels: ~110 KB on disk, 900 MP decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )
    return path


def assert_one_line_naming(exc: BaseException, name: str) -> None:
    message = str(exc)
    assert name in message, message
    assert "\n" not in message and "Traceback" not in message


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMedia) as info:
        hash_file(empty)
    assert_one_line_naming(info.value, "empty.jpg")


def test_truncated_jpeg_is_refused(tmp_path):
    data = PHOTO.read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsupportedMedia) as info:
        hash_file(truncated)
    assert_one_line_naming(info.value, "truncated.jpg")
    assert "truncated" in str(info.value)


def test_text_file_named_jpg(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a photo\n" * 20)
    with pytest.raises(UnsupportedMedia) as info:
        hash_file(fake)
    assert_one_line_naming(info.value, "notes.jpg")


def test_png_bomb_is_refused_before_decoding(tmp_path):
    bomb = make_png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(MediaTooLarge) as info:
        hash_file(bomb)
    assert_one_line_naming(info.value, "bomb.png")
    assert "decompression bomb" in str(info.value)


def test_pixel_limit_is_configurable(tmp_path):
    with pytest.raises(MediaTooLarge, match="over the limit of 1,000"):
        hash_file(PHOTO, options=HashOptions(max_pixels=1_000))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        hash_file(tmp_path / "absent.jpg")
    with pytest.raises(MediaError, match="is a directory"):
        hash_file(tmp_path)


def test_hash_bytes_equals_hash_file():
    from_bytes = hash_bytes(PHOTO.read_bytes(), name="upload")
    from_file = hash_file(PHOTO)
    assert from_bytes.signals == from_file.signals
    assert from_bytes.source == "upload"
    assert from_file.media_type == "image/jpeg"
    assert (from_file.width, from_file.height) == (512, 512)
    assert {s.type for s in from_file.signals} == {
        "pdq",
        "phash",
        "dhash",
        "ahash",
        "whash",
        "md5",
        "sha256",
    }


def test_signal_selection():
    result = hash_file(PHOTO, options=HashOptions(signals=("sha256", "pdq")))
    assert [s.type for s in result.signals] == ["pdq", "sha256"]


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {}),
        ("BMP", {}),
        ("GIF", {}),
        ("AVIF", {"quality": 90}),
        ("HEIF", {"quality": 90}),
    ],
)
def test_formats_decode_to_the_same_picture(tmp_path, fmt, params):
    with Image.open(PHOTO) as image:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **params)
    result = hash_bytes(buffer.getvalue(), name=f"photo.{fmt.lower()}")
    original = hash_file(PHOTO).get("pdq")
    pdq = result.get("pdq")
    assert pdq is not None and original is not None
    limit = 31 if fmt == "GIF" else 12  # GIF quantises to 256 colours
    assert PDQ.distance(pdq.value, original.value) <= limit, fmt
    assert result.media_type.startswith("image/")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_mode_hashes(mode):
    with Image.open(PHOTO) as image:
        if mode == "I;16":  # a real 16-bit picture spans 0-65535
            converted = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
            assert converted.mode == "I;16"
        elif mode in ("I", "F"):
            converted = image.convert("L").convert(mode)
        else:
            converted = image.convert(mode)
    buffer = io.BytesIO()
    converted.save(buffer, "TIFF")
    pdq = hash_bytes(buffer.getvalue(), name=mode).get("pdq")
    original = hash_file(PHOTO).get("pdq")
    assert pdq is not None and original is not None
    assert PDQ.distance(pdq.value, original.value) <= (40 if mode == "1" else 10), mode


def test_transparent_pixels_are_blackened():
    """A hidden colour under alpha 0 does not change the hash (browsers drop it too)."""
    with Image.open(PHOTO) as image:
        rgba = image.convert("RGBA")
    hidden_red, hidden_blue = rgba.copy(), rgba.copy()
    box = (0, 0, 256, 512)
    hidden_red.paste((255, 0, 0, 0), box)
    hidden_blue.paste((0, 0, 255, 0), box)
    hashes = []
    for image in (hidden_red, hidden_blue):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        hashes.append(hash_bytes(buffer.getvalue()).get("pdq"))
    assert hashes[0] == hashes[1]


@requires_shared
def test_every_format_sample_hashes_or_fails_in_one_line():
    folder = shared("imagededup_testdata/tests/data/formats_images")
    files = sorted(folder.iterdir())
    assert len(files) >= 10
    hashed = 0
    for path in files:
        try:
            result = hash_file(path)
        except MediaError as exc:
            assert_one_line_naming(exc, path.name)
        else:
            hashed += 1
            if isinstance(result, VideoHashes):  # giphy.gif is animated: the video path
                assert result.frames and len(result.frames[0].pdq) == 64
            else:
                pdq = result.get("pdq")
                assert pdq is not None and len(pdq.value) == 64
    assert hashed >= 9


@requires_shared
def test_corrupt_jpeg_from_imagededup_fails_cleanly():
    path = shared("imagededup_testdata/tests/data/mixed_images/ukbench09268_corrupt.jpg")
    with pytest.raises(UnsupportedMedia) as info:
        hash_file(path)
    assert_one_line_naming(info.value, path.name)
