"""Random edit families for `ncii eval`: edits nobody listed, drawn per picture.

The fixed transforms (:mod:`ncii.evaluation.transforms`) are a list a pipeline can be tuned to.
A re-uploader picks the next edit instead, so these families draw every parameter at random,
per picture, from broad ranges: where a crop box sits and how much it keeps, the angle of a
rotation and whether it is cropped to fill, the aspect a picture is padded to and what fills the
padding, what covers part of the picture and where, and so on. A pipeline that scores well on
one seed and as well on another seed it was never tuned on generalises to the family, not to
a list.

Every draw comes from a :class:`numpy.random.Generator` seeded with the run's seed, the
family's name and the original's identity (its SHA-256), so a seed gives the same edits on any
machine and in any order. Each edit returns the picture and the parameters drawn (what tests
check the ranges against). Sizes are relative to the picture.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ncii.detection.variants import inscribed_scale
from ncii.evaluation.transforms import _caption, _desktop_screenshot, _font, _screenshot, _words

Params = dict[str, Any]
Edit = Callable[[Image.Image, np.random.Generator], tuple[Image.Image, Params]]

CROP_AREA = (0.55, 0.95)
"""Share of the picture's area a random crop keeps."""
MAX_ROTATION = 12.0
"""Rotations are drawn from ±this many degrees."""
PAD_RATIOS = {"1:1": 1.0, "4:5": 4 / 5, "9:16": 9 / 16, "16:9": 16 / 9}
"""Width / height of the canvas a picture is padded to."""
PAD_FILLS = ("solid", "blurred", "mirrored", "gradient")
OCCLUDER_AREA = (0.02, 0.12)
"""Share of the picture an opaque occluder covers."""
OCCLUDER_SHAPES = ("disc", "emoji", "text", "logo")
JPEG_QUALITY = 90
COMBINATION_QUALITY = (40, 80)
"""JPEG quality a combination of edits is saved at."""


def generator_for(seed: int, family: str, key: str) -> np.random.Generator:
    """The generator one edit of one picture draws from: fixed by the run's seed, the family
    and the picture (stable across machines: SHA-256, not Python's salted ``hash``)."""
    digest = hashlib.sha256(f"ncii-eval/{seed}/{family}/{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


# -- crops ----------------------------------------------------------------------------------------


def crop_box(
    width: int, height: int, rng: np.random.Generator
) -> tuple[tuple[int, int, int, int], Params]:
    """A crop box keeping 55–95% of the area: one side cut, a corner kept, or anywhere."""
    area = float(rng.uniform(*CROP_AREA))
    kind = str(rng.choice(["one_sided", "corner", "offcentre"]))
    if kind == "one_sided":
        side = str(rng.choice(["left", "right", "top", "bottom"]))
        fx, fy = (area, 1.0) if side in ("left", "right") else (1.0, area)
        x0 = 1 - fx if side == "left" else 0.0
        y0 = 1 - fy if side == "top" else 0.0
    else:
        fx = float(rng.uniform(area, 1.0))
        fy = area / fx
        if kind == "corner":
            x0 = float(rng.choice([0.0, 1 - fx]))
            y0 = float(rng.choice([0.0, 1 - fy]))
        else:
            x0, y0 = float(rng.uniform(0, 1 - fx)), float(rng.uniform(0, 1 - fy))
    box = (
        round(x0 * width),
        round(y0 * height),
        round((x0 + fx) * width),
        round((y0 + fy) * height),
    )
    kept = (box[2] - box[0]) * (box[3] - box[1]) / (width * height)
    return box, {"kind": kind, "area": kept, "box": box}


def edit_crop(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    box, params = crop_box(*image.size, rng)
    return image.crop(box), params


# -- rotations ------------------------------------------------------------------------------------


def edit_rotate(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """A rotation anywhere in ±12°: cropped to the largest same-shape rectangle inside (a
    phone's straighten tool), or the whole rotated picture on a black or white canvas."""
    degrees = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    fill_to_crop = bool(rng.random() < 0.5)
    width, height = image.size
    if fill_to_crop:
        rotated = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
        scale = inscribed_scale(width, height, degrees)
        keep_w, keep_h = width * scale, height * scale
        left, top = (width - keep_w) / 2, (height - keep_h) / 2
        box = (round(left), round(top), round(left + keep_w), round(top + keep_h))
        return rotated.crop(box), {"degrees": degrees, "crop": True}
    colour = (0, 0, 0) if rng.random() < 0.6 else (255, 255, 255)
    rotated = image.rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=colour
    )
    return rotated, {"degrees": degrees, "crop": False, "colour": colour}


# -- padding --------------------------------------------------------------------------------------


def _canvas_size(width: int, height: int, ratio: float) -> tuple[int, int]:
    """The smallest canvas of ``ratio`` (width / height) that holds the picture."""
    if width / height > ratio:
        return width, max(height, round(width / ratio))
    return max(width, round(height * ratio)), height


def _gradient(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    width, height = size
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    vertical = bool(rng.random() < 0.5)
    steps = np.linspace(0, 1, height if vertical else width)[:, None]
    line = (a[None, :] * (1 - steps) + b[None, :] * steps).astype(np.uint8)
    pixels = (
        np.repeat(line[:, None, :], width, axis=1)
        if vertical
        else np.repeat(line[None, :, :], height, axis=0)
    )
    return Image.fromarray(pixels)


def _mirrored(image: Image.Image, size: tuple[int, int], offset: tuple[int, int]) -> Image.Image:
    """The canvas filled by reflecting the picture at its edges (numpy's ``symmetric`` pad,
    which repeats the reflection when the padding is wider than the picture)."""
    x, y = offset
    pad = ((y, size[1] - y - image.height), (x, size[0] - x - image.width), (0, 0))
    return Image.fromarray(np.pad(np.asarray(image), pad, mode="symmetric"))


def pad_to(
    image: Image.Image, ratio: float, fill: str, rng: np.random.Generator
) -> tuple[Image.Image, tuple[int, int]]:
    """The picture centred on a canvas of ``ratio``, the rest filled; and where it sits."""
    size = _canvas_size(*image.size, ratio)
    offset = ((size[0] - image.width) // 2, (size[1] - image.height) // 2)
    if fill == "solid":
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        canvas = Image.new("RGB", size, colour)  # type: ignore[arg-type]
    elif fill == "blurred":
        # What phone apps do: the picture stretched over the canvas and blurred heavily.
        radius = max(size) * float(rng.uniform(0.02, 0.05))
        canvas = image.resize(size, Image.Resampling.BILINEAR).filter(
            ImageFilter.GaussianBlur(radius)
        )
    elif fill == "mirrored":
        canvas = _mirrored(image, size, offset)
    else:
        canvas = _gradient(size, rng)
    canvas.paste(image, offset)
    return canvas, offset


def edit_pad(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """Padded to 1:1, 4:5, 9:16 or 16:9 (one that adds at least 8% to a side), with a solid,
    blurred-stretched, mirrored or gradient fill."""
    aspect = image.width / image.height
    usable = [n for n, r in PAD_RATIOS.items() if max(r / aspect, aspect / r) >= 1.08]
    name = str(rng.choice(usable or list(PAD_RATIOS)))
    fill = str(rng.choice(PAD_FILLS))
    canvas, offset = pad_to(image, PAD_RATIOS[name], fill, rng)
    box = (offset[0], offset[1], offset[0] + image.width, offset[1] + image.height)
    return canvas, {"ratio": name, "fill": fill, "box": box}


# -- occluders ------------------------------------------------------------------------------------


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _draw_shape(shape: str, side_w: int, side_h: int, rng: np.random.Generator) -> Image.Image:
    """An opaque shape on a transparent layer of ``side_w × side_h`` (RGBA)."""
    layer = Image.new("RGBA", (side_w, side_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    box = (0, 0, side_w - 1, side_h - 1)
    if shape == "disc":
        draw.ellipse(box, fill=(*_colour(rng), 255))
    elif shape == "emoji":
        draw.ellipse(box, fill=(255, 204, 51, 255), outline=(200, 140, 0, 255), width=2)
        eye = max(2, side_w // 10)
        for cx in (0.35, 0.65):
            x, y = round(side_w * cx), round(side_h * 0.38)
            draw.ellipse((x - eye, y - eye, x + eye, y + eye), fill=(60, 40, 20, 255))
        mouth = (side_w * 0.25, side_h * 0.35, side_w * 0.75, side_h * 0.8)
        draw.arc(mouth, 20, 160, fill=(60, 40, 20, 255), width=max(2, side_w // 16))
    elif shape == "text":
        draw.rectangle(box, fill=(*_colour(rng), 255))
        lines = 1 + int(rng.integers(0, 3))
        size = max(8, round(side_h / (lines + 1)))
        font = _font(size)
        text_rng = random.Random(int(rng.integers(2**62)))
        ink = (255, 255, 255, 255) if rng.random() < 0.5 else (0, 0, 0, 255)
        for i in range(lines):
            draw.text((4, 2 + i * size * 1.1), _words(text_rng, 4), fill=ink, font=font)
    else:  # a logo: a rounded badge with a mark and a word on it
        radius = min(side_w, side_h) // 4
        draw.rounded_rectangle(box, radius=radius, fill=(*_colour(rng), 255))
        mark = min(side_w, side_h) * 0.6
        cx, cy = side_w * 0.3, side_h / 2
        draw.regular_polygon((cx, cy, mark / 2), 3 + int(rng.integers(0, 4)),
                             fill=(*_colour(rng), 255))  # fmt: skip
        draw.text((side_w * 0.55, cy), "LOGO", fill=(255, 255, 255, 255),
                  font=_font(max(8, side_h // 4)), anchor="lm")  # fmt: skip
    return layer


def edit_occlude(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """An opaque disc, emoji-like face, text block or logo over 2–12% of the picture,
    anywhere inside it."""
    shape = str(rng.choice(OCCLUDER_SHAPES))
    share = float(rng.uniform(*OCCLUDER_AREA))
    width, height = image.size
    aspect = 1.0 if shape in ("disc", "emoji") else float(rng.uniform(1.5, 3.5))
    # Bounding box area: the disc covers π/4 of its box; the others fill theirs.
    box_area = share * width * height / (math.pi / 4 if shape in ("disc", "emoji") else 1.0)
    box_h = math.sqrt(box_area / aspect)
    box_w = box_h * aspect
    box_w, box_h = min(round(box_w), width), min(round(box_h), height)
    layer = _draw_shape(shape, box_w, box_h, rng)
    x = int(rng.integers(0, width - box_w + 1))
    y = int(rng.integers(0, height - box_h + 1))
    out = image.convert("RGBA")
    out.alpha_composite(layer, (x, y))
    covered = int(np.count_nonzero(np.asarray(layer)[..., 3])) / (width * height)
    return out.convert("RGB"), {
        "shape": shape,
        "area": covered,
        "box": (x, y, x + box_w, y + box_h),
    }


# -- captions and text ----------------------------------------------------------------------------


def edit_caption(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """A meme caption band above or below, or meme text over the top or bottom of the picture
    itself (white with a black outline, 8–14% of the height)."""
    text_rng = random.Random(int(rng.integers(2**62)))
    if rng.random() < 0.5:
        return _caption(image, text_rng), {"kind": "band"}
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    size = round(height * float(rng.uniform(0.08, 0.14)))
    line = _words(text_rng, 2 + int(rng.integers(0, 3))).upper()
    while size > 8 and _font(size).getlength(line) > width * 0.95:
        size -= 2
    places = ["top", "bottom"] if rng.random() < 0.5 else [str(rng.choice(["top", "bottom"]))]
    for place in places:
        y = height * (0.1 if place == "top" else 0.9)
        draw.text((width / 2, y), line, fill=(255, 255, 255), font=_font(size), anchor="mm",
                  stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))  # fmt: skip
    return out, {"kind": "overlay", "places": places}


# -- screenshots ----------------------------------------------------------------------------------


def _chat_screenshot(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A messaging app: the picture in a rounded bubble, right or left, among text bubbles."""
    dark = bool(rng.random() < 0.4)
    background = (11, 20, 26) if dark else (236, 229, 221)
    bubble = (0, 92, 75) if dark else (220, 248, 198)
    ink = (233, 237, 239) if dark else (17, 27, 33)
    screen_w, screen_h = 750, 1334
    canvas = Image.new("RGB", (screen_w, screen_h), background)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, screen_w, 150), fill=(32, 44, 51) if dark else (0, 128, 105))
    draw.ellipse((70, 45, 130, 105), fill=_colour(rng))
    draw.text((150, 75), "contact", fill=(255, 255, 255), font=_font(30), anchor="lm")
    photo_w = round(screen_w * float(rng.uniform(0.6, 0.75)))
    photo_h = min(round(image.height * photo_w / image.width), 900)
    photo_w = round(image.width * photo_h / image.height)
    photo = image.resize((photo_w, photo_h), Image.Resampling.BICUBIC)
    x = screen_w - photo_w - 40 if rng.random() < 0.5 else 40
    y = 150 + int(rng.integers(120, 260))
    draw.rounded_rectangle((x - 8, y - 8, x + photo_w + 8, y + photo_h + 40), radius=18,
                           fill=bubble)  # fmt: skip
    canvas.paste(photo, (x, y))
    draw.text((x + photo_w - 8, y + photo_h + 22), f"{int(rng.integers(0, 24))}:"
              f"{int(rng.integers(0, 60)):02d}", fill=ink, font=_font(20), anchor="rm")  # fmt: skip
    text_rng = random.Random(int(rng.integers(2**62)))
    for top in (160, y + photo_h + 70):
        if top + 60 < screen_h:
            draw.rounded_rectangle((40, top, 460, top + 56), radius=16, fill=bubble)
            draw.text((56, top + 28), _words(text_rng, 4), fill=ink, font=_font(22), anchor="lm")
    return canvas


def _story_screenshot(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A 9:16 story: the picture on a blurred copy of itself, progress bar, name and a reply
    field on top."""
    canvas, _ = pad_to(image.resize((720, round(image.height * 720 / image.width))),
                            9 / 16, "blurred", rng)  # fmt: skip
    canvas = canvas.resize((720, 1280))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((16, 16, 704, 20), fill=(200, 200, 200))
    draw.rectangle((16, 16, 16 + int(rng.integers(50, 680)), 20), fill=(255, 255, 255))
    draw.ellipse((24, 40, 84, 100), fill=_colour(rng))
    draw.text((100, 70), "username", fill=(255, 255, 255), font=_font(26), anchor="lm")
    draw.rounded_rectangle((24, 1190, 600, 1250), radius=30, outline=(255, 255, 255), width=2)
    return canvas


SCREENSHOT_STYLES = ("post", "viewer", "chat", "story")


def edit_screenshot(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """A screenshot of the picture in one of several app styles: a social post (light or dark),
    a desktop image viewer, a chat bubble, a story."""
    style = str(rng.choice(SCREENSHOT_STYLES))
    text_rng = random.Random(int(rng.integers(2**62)))
    if style == "post":
        while True:  # the post style; the viewer is its own style here
            shot = _screenshot(image, text_rng)
            if shot.size[0] == 720:
                break
    elif style == "viewer":
        shot = _desktop_screenshot(image, text_rng)
    elif style == "chat":
        shot = _chat_screenshot(image, rng)
    else:
        shot = _story_screenshot(image, rng)
    return shot, {"style": style}


# -- combinations ---------------------------------------------------------------------------------

SINGLE_EDITS: dict[str, Edit] = {
    "crop": edit_crop,
    "rotate": edit_rotate,
    "pad": edit_pad,
    "occlude": edit_occlude,
    "caption": edit_caption,
    "screenshot": edit_screenshot,
}


def edit_combination(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """Two or three of the other families in a random order (a frame last: a screenshot or a
    pad wraps whatever was done before), saved at JPEG quality 40–80."""
    count = 2 + int(rng.integers(0, 2))
    names = [str(n) for n in rng.choice(list(SINGLE_EDITS), size=count, replace=False)]
    framing = [n for n in names if n in ("screenshot", "pad")]
    names = [n for n in names if n not in framing] + framing
    steps = []
    for name in names:
        image, params = SINGLE_EDITS[name](image, rng)
        steps.append({"edit": name, **params})
    quality = int(rng.integers(COMBINATION_QUALITY[0], COMBINATION_QUALITY[1] + 1))
    return image, {"edits": names, "steps": steps, "jpeg_quality": quality}


@dataclass(frozen=True, slots=True)
class Family:
    """One family of random edits; ``edit`` draws the parameters and applies them."""

    name: str
    description: str
    edit: Edit


FAMILIES: tuple[Family, ...] = (
    Family(
        "rand_crop",
        "crop box anywhere (one side, a corner, off-centre), 55–95% of the area kept",
        edit_crop,
    ),
    Family(
        "rand_rotate",
        "rotation anywhere in ±12°, cropped to fill or on a plain canvas",
        edit_rotate,
    ),
    Family(
        "rand_pad",
        "padded to 1:1, 4:5, 9:16 or 16:9; solid, blurred-stretched, mirrored or gradient fill",
        edit_pad,
    ),
    Family(
        "rand_occlude", "opaque disc, emoji, text block or logo over 2–12%, anywhere", edit_occlude
    ),
    Family("rand_caption", "caption band above/below, or meme text over the picture", edit_caption),
    Family(
        "rand_screenshot",
        "screenshot: social post, image viewer, chat bubble, story",
        edit_screenshot,
    ),
    Family("rand_combination", "2–3 of the above, JPEG quality 40–80", edit_combination),
)
"""The random families, in report order."""

FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in FAMILIES)


def get_family(name: str) -> Family | None:
    return next((f for f in FAMILIES if f.name == name), None)


def apply_family(
    image: Image.Image, family: Family, *, seed: int, key: str
) -> tuple[bytes, Params]:
    """The re-upload of ``image`` (RGB) drawn from ``family``, as JPEG bytes, and the
    parameters drawn. ``key`` identifies the original (its SHA-256)."""
    edited, params = family.edit(image, generator_for(seed, family.name, key))
    quality = int(params.get("jpeg_quality", JPEG_QUALITY))
    buffer = io.BytesIO()
    edited.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), params
