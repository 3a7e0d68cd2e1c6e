"""The re-upload transforms `ncii eval` applies to each original: seeded and documented.

Each transform stands for something people do when they re-post a picture: re-encode it, resize
it, crop it, put it in bars or under a caption, watermark it, or post a screenshot of it. Every
random choice comes from a :class:`random.Random` seeded with the run's seed, the transform's
name and the original's identity (its SHA-256), so one seed gives the same variants on any
machine and in any order. The variant is returned as JPEG bytes, the form an upload takes, so
it goes through ncii's own decoder like any upload.

Sizes are relative to the picture (a blur radius, a bar, a caption band), so the transforms mean
the same on a 300 px Caltech photo and a 4,000 px camera photo.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from ncii.detection.variants import inscribed_scale

JPEG_QUALITY = 90
"""Quality every variant is saved at, except where the transform is the re-encoding."""

_CAPTION_TEXT = (
    "when you see it the moment she realised nobody asked why is this so real look again "
    "weekend mood me after one coffee not again they said it would never happen send help "
    "wait for it caught in 4k this is fine the audacity living my best life no context"
)
_WORDS = tuple(_CAPTION_TEXT.split())


@dataclass(frozen=True, slots=True)
class Transform:
    """One kind of re-upload: ``apply`` turns an RGB picture into the re-posted picture."""

    name: str
    description: str
    apply: Callable[[Image.Image, random.Random], Image.Image]
    jpeg_quality: int = JPEG_QUALITY


def _rng_for(seed: int, name: str, key: str) -> random.Random:
    # String seeds are hashed with SHA-512 by random.Random: stable across runs and machines.
    return random.Random(f"ncii-eval/{seed}/{name}/{key}")


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font (no font files needed on the machine)."""
    return ImageFont.load_default(size=max(8, size))


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(count))


# -- the transforms -------------------------------------------------------------------------------


def _identity(image: Image.Image, rng: random.Random) -> Image.Image:
    return image


def _resize(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    return image.resize(
        (max(1, round(width * 0.3)), max(1, round(height * 0.3))), Image.Resampling.BICUBIC
    )


def _upscale(image: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.uniform(1.5, 2.5)
    width, height = image.size
    return image.resize((round(width * factor), round(height * factor)), Image.Resampling.BICUBIC)


def _grey(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.convert("L").convert("RGB")


def _factor(rng: random.Random) -> float:
    """Darker (0.6–0.75) or brighter (1.3–1.5), half the time each."""
    return rng.uniform(0.6, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.5)


def _brightness(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(_factor(rng))


def _contrast(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(_factor(rng))


def _blur(image: Image.Image, rng: random.Random) -> Image.Image:
    radius = rng.uniform(1.5, 2.5) * max(image.size) / 512
    return image.filter(ImageFilter.GaussianBlur(radius))


def _flip(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _rot90(image: Image.Image, rng: random.Random) -> Image.Image:
    turn = Image.Transpose.ROTATE_90 if rng.random() < 0.5 else Image.Transpose.ROTATE_270
    return image.transpose(turn)


def rotate_and_crop(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate about the centre and keep the largest centred same-shape rectangle (no corners)."""
    width, height = image.size
    rotated = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
    scale = inscribed_scale(width, height, degrees)
    keep_w, keep_h = width * scale, height * scale
    left, top = (width - keep_w) / 2, (height - keep_h) / 2
    return rotated.crop((round(left), round(top), round(left + keep_w), round(top + keep_h)))


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    degrees = rng.uniform(2.5, 3.5) * rng.choice((-1, 1))
    return rotate_and_crop(image, degrees)


def crop_sides(
    image: Image.Image, left: float, top: float, right: float, bottom: float
) -> Image.Image:
    """Cut the given share of the width (left, right) and height (top, bottom) off each side."""
    width, height = image.size
    return image.crop(
        (
            round(width * left),
            round(height * top),
            round(width * (1 - right)),
            round(height * (1 - bottom)),
        )
    )


def _crop(low: float, high: float) -> Callable[[Image.Image, random.Random], Image.Image]:
    """A centred crop (a zoom, a platform's auto-crop): one share, drawn from [low, high], cut
    off every side."""

    def apply(image: Image.Image, rng: random.Random) -> Image.Image:
        share = rng.uniform(low, high)
        return crop_sides(image, share, share, share, share)

    return apply


def _crop_offcentre(image: Image.Image, rng: random.Random) -> Image.Image:
    """A hand crop: 0–12% cut off each side independently (not in the default set: see
    docs/detection.md for why plain PDQ variants cannot catch these)."""
    return crop_sides(image, *(rng.uniform(0.0, 0.12) for _ in range(4)))


def _bar_colour(rng: random.Random) -> tuple[int, int, int]:
    draw = rng.random()
    if draw < 0.6:
        return (0, 0, 0)
    if draw < 0.8:
        return (255, 255, 255)
    grey = rng.randrange(20, 236)
    return (grey, grey, grey)


def add_bars(
    image: Image.Image, *, share: float, horizontal: bool, colour: tuple[int, int, int]
) -> Image.Image:
    """Put the picture between two equal bars that add ``share`` of its height (letterbox,
    ``horizontal``) or width (pillarbox)."""
    width, height = image.size
    if horizontal:
        canvas = Image.new("RGB", (width, height + round(height * share)), colour)
        canvas.paste(image, (0, round(height * share / 2)))
    else:
        canvas = Image.new("RGB", (width + round(width * share), height), colour)
        canvas.paste(image, (round(width * share / 2), 0))
    return canvas


def _letterbox(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    horizontal = (width >= height) != (rng.random() < 0.25)
    return add_bars(
        image, share=rng.uniform(0.2, 0.6), horizontal=horizontal, colour=_bar_colour(rng)
    )


def _caption(image: Image.Image, rng: random.Random) -> Image.Image:
    """A meme caption: a white (or black) band of 15–25% of the height, above (or below) the
    picture, with one or two lines of bold-ish text."""
    width, height = image.size
    band = round(height * rng.uniform(0.15, 0.25))
    light = rng.random() < 0.8
    background, ink = ((255, 255, 255), (0, 0, 0)) if light else ((0, 0, 0), (255, 255, 255))
    canvas = Image.new("RGB", (width, height + band), background)
    on_top = rng.random() < 0.7
    canvas.paste(image, (0, band if on_top else 0))
    draw = ImageDraw.Draw(canvas)
    lines = [_words(rng, rng.randint(3, 5)) for _ in range(rng.randint(1, 2))]
    size = round(band / (len(lines) + 1.2))
    while size > 8 and max(_font(size).getlength(line) for line in lines) > width * 0.92:
        size -= 2  # meme makers shrink the text to fit the width
    font = _font(size)
    box_top = 0 if on_top else height
    line_height = band / len(lines)
    for i, line in enumerate(lines):
        centre = (width / 2, box_top + line_height * (i + 0.5))
        draw.text(centre, line, fill=ink, font=font, anchor="mm", stroke_width=1, stroke_fill=ink)
    return canvas


def _watermark(image: Image.Image, rng: random.Random) -> Image.Image:
    """A handle in a corner, white on a half-transparent dark pill, its text ~5% of the
    height: what sharing apps stamp on re-posted pictures."""
    width, height = image.size
    font = _font(round(min(width, height) * rng.uniform(0.04, 0.06)))
    text = "@" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_0123456789") for _ in range(9))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = (bottom - top) // 3
    box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
    margin = round(min(width, height) * 0.03)
    x = margin if rng.random() < 0.5 else width - margin - box_w
    y = margin if rng.random() < 0.5 else height - margin - box_h
    draw.rounded_rectangle((x, y, x + box_w, y + box_h), radius=pad, fill=(0, 0, 0, 110))
    draw.text((x + pad - left, y + pad - top), text, font=font, fill=(255, 255, 255, 200))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    """The picture inside a phone screenshot of a social-media post (status bar, header with
    avatar and name, action icons, likes and caption text; light or dark theme), or, a third of
    the time, inside a desktop image viewer (toolbar, dark surround, picture at 60–85% of the
    window's height)."""
    if rng.random() < 1 / 3:
        return _desktop_screenshot(image, rng)
    theme = rng.choice(((255, 255, 255), (0, 0, 0), (21, 32, 43)))
    ink = (20, 20, 20) if theme == (255, 255, 255) else (235, 235, 235)
    muted = (120, 120, 120)
    screen_w = 720
    margin = rng.choice((0, 0, 16, 24))
    photo_w = screen_w - 2 * margin
    photo_h = round(image.height * photo_w / image.width)
    photo = image.resize((photo_w, photo_h), Image.Resampling.BICUBIC)
    status, header = 44, rng.randint(88, 120)
    footer = rng.randint(170, 260)
    screen_h = max(1280, status + header + photo_h + footer)
    canvas = Image.new("RGB", (screen_w, screen_h), theme)
    draw = ImageDraw.Draw(canvas)
    draw.text((24, status // 2), f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", fill=ink,
              font=_font(24), anchor="lm")  # fmt: skip
    draw.rectangle((screen_w - 64, 14, screen_w - 24, 30), outline=ink, width=2)
    draw.rectangle((screen_w - 62, 16, screen_w - 62 + rng.randint(8, 36), 28), fill=ink)
    avatar = status + (header - 56) // 2
    draw.ellipse((16, avatar, 72, avatar + 56), fill=tuple(rng.randrange(40, 220) for _ in "rgb"))
    draw.text((88, avatar + 16), _words(rng, 2).replace(" ", "_"), fill=ink, font=_font(26),
              anchor="lm")  # fmt: skip
    draw.text((88, avatar + 44), f"{rng.randint(1, 59)} min", fill=muted, font=_font(20),
              anchor="lm")  # fmt: skip
    for i in range(3):
        draw.ellipse((screen_w - 48 + i * 12, status + header // 2 - 3,
                      screen_w - 42 + i * 12, status + header // 2 + 3), fill=ink)  # fmt: skip
    top = status + header
    canvas.paste(photo, (margin, top))
    y = top + photo_h + 20
    for i in range(4):
        x = 24 + i * 60 if i < 3 else screen_w - 60
        draw.rounded_rectangle((x, y, x + 36, y + 36), radius=8, outline=ink, width=3)
    y += 60
    draw.text((24, y), f"{rng.randint(2, 99)},{rng.randint(100, 999)} likes", fill=ink,
              font=_font(24))  # fmt: skip
    y += 36
    for _ in range(rng.randint(1, 3)):
        draw.text((24, y), _words(rng, rng.randint(4, 8)), fill=ink, font=_font(22))
        y += 30
    return canvas


def _desktop_screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    window_w, window_h = rng.choice(((1280, 800), (1366, 768), (1440, 900)))
    toolbar = rng.randint(56, 84)
    surround = rng.choice(((30, 30, 30), (50, 50, 54), (240, 240, 240)))
    ink = (230, 230, 230) if surround[0] < 128 else (30, 30, 30)
    canvas = Image.new("RGB", (window_w, window_h), surround)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, window_w, toolbar), fill=tuple(max(0, c - 15) for c in surround))
    for i, colour in enumerate(((237, 94, 88), (246, 190, 79), (98, 197, 84))):
        draw.ellipse((16 + i * 24, toolbar // 2 - 7, 30 + i * 24, toolbar // 2 + 7), fill=colour)
    draw.text((window_w // 2, toolbar // 2), f"IMG_{rng.randint(1000, 9999)}.jpg", fill=ink,
              font=_font(22), anchor="mm")  # fmt: skip
    space_h = window_h - toolbar
    scale = min(rng.uniform(0.6, 0.85) * space_h / image.height, 0.9 * window_w / image.width)
    photo = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
    )
    canvas.paste(photo, ((window_w - photo.width) // 2, toolbar + (space_h - photo.height) // 2))
    return canvas


def _combination(image: Image.Image, rng: random.Random) -> Image.Image:
    """Centred crop of 3–6% per side, mirror half the time, brightness ×0.85–1.15, then square
    black bars; saved at JPEG quality 50."""
    share = rng.uniform(0.03, 0.06)
    picture = crop_sides(image, share, share, share, share)
    if rng.random() < 0.5:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    picture = ImageEnhance.Brightness(picture).enhance(rng.uniform(0.85, 1.15))
    side = max(picture.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    return canvas


TRANSFORMS: tuple[Transform, ...] = (
    Transform("jpeg_q20", "re-encoded as JPEG quality 20", _identity, jpeg_quality=20),
    Transform("resize_30", "shrunk to 30% of each side (bicubic)", _resize),
    Transform("upscale", "enlarged 1.5–2.5× (bicubic)", _upscale),
    Transform("grey", "greyscale", _grey),
    Transform("brightness", "brightness ×0.6–0.75 or ×1.3–1.5", _brightness),
    Transform("contrast", "contrast ×0.6–0.75 or ×1.3–1.5", _contrast),
    Transform("blur", "Gaussian blur, radius 1.5–2.5 px per 512 px of the longer side", _blur),
    Transform("flip", "mirrored left to right", _flip),
    Transform("rot90", "rotated 90° either way", _rot90),
    Transform(
        "rotate_3", "rotated 2.5–3.5° either way, cropped to the inscribed rectangle", _rotate
    ),
    Transform("crop_5", "centred crop: 4–6% cut off every side", _crop(0.04, 0.06)),
    Transform("crop_12", "centred crop: 10–14% cut off every side", _crop(0.10, 0.14)),
    Transform(
        "letterbox",
        "bars adding 20–60% (letterbox for landscape, pillarbox for portrait, a quarter the "
        "other way); black, white or grey",
        _letterbox,
    ),
    Transform("caption", "meme caption band of 15–25% of the height, above or below", _caption),
    Transform(
        "watermark", "@handle on a dark pill in a corner, text 4–6% of the height", _watermark
    ),
    Transform(
        "screenshot",
        "inside a phone screenshot of a post (light/dark) or a desktop image viewer",
        _screenshot,
    ),
    Transform(
        "combination",
        "centred crop 3–6% per side, mirror (half), brightness ×0.85–1.15, square black bars, "
        "JPEG q50",
        _combination,
        jpeg_quality=50,
    ),
)
"""The transforms `ncii eval` applies by default, in report order (the issue's list)."""

EXTRA_TRANSFORMS: tuple[Transform, ...] = (
    Transform(
        "crop_offcentre", "hand crop: 0–12% cut off each side independently", _crop_offcentre
    ),
)
"""Harder transforms, measured on request (``--transform crop_offcentre``)."""

TRANSFORM_NAMES: tuple[str, ...] = tuple(t.name for t in TRANSFORMS)


def get_transform(name: str) -> Transform:
    for transform in TRANSFORMS + EXTRA_TRANSFORMS:
        if transform.name == name:
            return transform
    known = ", ".join(t.name for t in TRANSFORMS + EXTRA_TRANSFORMS)
    raise KeyError(f"unknown transform {name!r} (known: {known})")


def apply_transform(image: Image.Image, transform: Transform, *, seed: int, key: str) -> bytes:
    """The re-upload of ``image`` (RGB) made by ``transform``, as JPEG bytes.

    ``key`` identifies the original (its SHA-256): with ``seed`` it fixes every random choice.
    """
    variant = transform.apply(image, _rng_for(seed, transform.name, key))
    buffer = io.BytesIO()
    variant.convert("RGB").save(buffer, format="JPEG", quality=transform.jpeg_quality)
    return buffer.getvalue()
