"""Bytes → upright 8-bit RGB pixels, ready for hashing. No hashing here.

Every convention that changes pixels before hashing is decided here, once, and documented in
``docs/hashing.md``:

* **Shrink to fit 512×512** (Pillow ``thumbnail``) like Meta's reference PDQ, with JPEG *draft*
  decoding so a 12 MP photo is decoded at a fraction of its size; both are bit-for-bit the
  reference pipeline. ``max_side=None`` hashes at full resolution like HMA.
* **EXIF orientation applied**, as every browser (where victim-side hashing happens) does.
* **Fully transparent pixels blackened**, alpha dropped, as a browser canvas yields them.
* **16-bit samples scaled to 8 bits** (``value >> 8``) instead of Pillow's clamp to 255.

Decoding is bounded: the header's pixel count is checked against ``max_pixels`` before any
pixel is decoded, truncated files are refused, and no bytes are kept after the call.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from ncii.errors import EmptyMedia, MediaTooLarge, UnsupportedMedia

try:  # HEIC/HEIF from phones; AVIF is built into Pillow >= 11.3.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a dependency, but keep decoding JPEGs
    pass

DEFAULT_MAX_SIDE = 512
"""Meta's reference shrinks to fit 512×512 before hashing."""

DEFAULT_MAX_PIXELS = 150_000_000
"""Refuse images whose header claims more pixels than this (a 200 MP phone photo is 1.3× it;
raise ``max_pixels`` for those). Kept below Pillow's own hard bomb limit (~179 MP) so the
error is always ours."""

_DRAFT_FACTOR = 1
"""JPEGs decode at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the target size.
Pillow's ``thumbnail()``, in Meta's reference, keeps at least twice the target (its
``reducing_gap``); a 12 MP photo then decodes at 2016x1512 instead of 1008x756. Measured on
the 14 real JPEGs in ``../shared/data`` where the two scales differ: 11 identical hashes,
the others 1-2 bits apart; a 12 MP photo hashes ~35% faster, a 3 MP one decodes at half
size instead of full."""

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}

_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation → the transpose that makes the image upright (as ImageOps.exif_transpose)."""


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    max_side: int | None = DEFAULT_MAX_SIDE
    """Shrink to fit this square before hashing; ``None`` keeps full resolution (HMA)."""
    apply_exif_orientation: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True, slots=True)
class DecodedImage:
    image: Image.Image
    """Upright 8-bit RGB, shrunk to ``max_side`` when that was asked."""
    format: str
    """Pillow's format name, e.g. ``JPEG``."""
    media_type: str
    width: int
    height: int
    """Size of the upright image before any shrinking."""


def decode_image(
    data: bytes, *, name: str, options: DecodeOptions = DecodeOptions()
) -> DecodedImage:
    """Decode an image file's bytes (first frame of an animation) into hashable pixels.

    Raises :class:`EmptyMedia`, :class:`UnsupportedMedia` or :class:`MediaTooLarge` with a
    one-line message naming ``name``.
    """
    if not data:
        raise EmptyMedia(f"{name}: empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise UnsupportedMedia(f"{name}: not an image ncii can decode") from None
        except Image.DecompressionBombError:
            raise MediaTooLarge(
                f"{name}: image too large, over the limit of {options.max_pixels:,} pixels "
                "(possible decompression bomb)"
            ) from None
        except Exception as exc:  # Pillow plugins raise many types on hostile input
            raise UnsupportedMedia(f"{name}: corrupt image ({_one_line(exc)})") from None
        return _decode(image, name, options)


def _decode(image: Image.Image, name: str, options: DecodeOptions) -> DecodedImage:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnsupportedMedia(f"{name}: image has no pixels ({width}x{height})")
    if width * height > options.max_pixels:
        raise MediaTooLarge(
            f"{name}: {width}x{height} is {width * height:,} pixels, over the limit of "
            f"{options.max_pixels:,} (possible decompression bomb)"
        )
    fmt = image.format or "unknown"
    media_type = Image.MIME.get(fmt, f"image/{fmt.lower()}")
    orientation = image.getexif().get(0x0112, 1) if options.apply_exif_orientation else 1
    if options.max_side is not None and fmt == "JPEG":
        target = options.max_side * _DRAFT_FACTOR
        image.draft("RGB", (target, target))
    try:
        image.load()
        rgb = to_rgb8(image)
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{name}: image too large to decode ({exc})") from None
    except MemoryError:
        raise MediaTooLarge(f"{name}: out of memory while decoding") from None
    except Exception as exc:  # truncated data, bad chunks, codec errors: all one kind for users
        raise UnsupportedMedia(f"{name}: corrupt or truncated image ({_one_line(exc)})") from None
    transpose = _ORIENTATION_TRANSPOSE.get(orientation)
    if transpose is not None:
        rgb = rgb.transpose(transpose)
        if orientation >= 5:
            width, height = height, width
    if options.max_side is not None:
        rgb.thumbnail((options.max_side, options.max_side))
    return DecodedImage(rgb, fmt, media_type, width, height)


def to_rgb8(image: Image.Image) -> Image.Image:
    """Any Pillow mode → 8-bit RGB under ncii's conventions (see module docstring)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_to_rgb(image)
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        return _blacken_transparent(image.convert("RGBA"))
    if mode == "LAB":
        from PIL import ImageCms

        lab = ImageCms.createProfile("LAB")
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(image, lab, srgb, outputMode="RGB")
    return image.convert("RGB")


def _blacken_transparent(rgba: Image.Image) -> Image.Image:
    """Fully transparent pixels become black and the alpha channel is dropped, which is what a
    browser canvas hands to JavaScript hashers (it keeps premultiplied pixels, so a colour
    hidden under alpha 0 is lost while partly transparent pixels keep theirs)."""
    pixels = np.array(rgba)
    pixels[pixels[:, :, 3] == 0, :3] = 0
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), "RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit samples scale to 8 bits (``>> 8``), as browsers decode them; ``I``/``F`` images
    whose values already fit 0–255 (an 8-bit picture stored wide) are kept as they are."""
    pixels = np.asarray(image)
    if pixels.dtype.kind == "f":
        pixels = np.nan_to_num(pixels, nan=0.0, posinf=65535.0, neginf=0.0)
    sixteen_bit = image.mode.startswith("I;16") or float(pixels.max(initial=0)) > 255
    if sixteen_bit:
        grey = np.clip(pixels, 0, 65535).astype(np.uint32) >> 8
    else:
        grey = np.clip(np.rint(pixels), 0, 255)
    return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
