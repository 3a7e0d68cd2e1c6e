"""The PNG chart of an evaluation: recall per transform, one bar per pipeline.

Drawn with Pillow, already a dependency, rather than matplotlib: one grouped bar chart does not
justify a 40 MB plotting stack in a tool platforms install on upload servers, and the chart must
come out the same on any machine (Pillow's bundled font, no system fonts).
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from ncii.evaluation.harness import EvalReport, PipelineResult
from ncii.signals.pdq import PDQ_MATCH_THRESHOLD

FIXED_COLOURS = {"pdq": (150, 150, 150), "default": (31, 119, 180)}
"""The baseline is always grey and ncii's default always blue, whatever else is compared."""
PALETTE = ((255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
"""Colours of the other pipelines, in the order given."""

BAR_HEIGHT = 7
"""Pixels per bar; a transform's row holds one bar per pipeline."""
LABEL_WIDTH = 170
PLOT_WIDTH = 560
MARGIN = 20


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_chart(report: EvalReport, *, threshold: int | None = None) -> bytes:
    """PNG bytes: for each transform and overall, the recall of every pipeline at
    ``threshold`` (default: PDQ's 31 when it was measured, else the first threshold), with
    false-positive pairs in the legend."""
    if threshold is None:
        threshold = PDQ_MATCH_THRESHOLD if PDQ_MATCH_THRESHOLD in report.thresholds else None
        threshold = report.thresholds[0] if threshold is None else threshold
    results = [r for r in report.results if r.threshold == threshold]
    row_height = 8 + BAR_HEIGHT * max(len(results), 2)
    rows = [*report.transforms, "overall"]
    header, legend = 56, 24 * len(results) + 16
    legends = [_legend(r) for r in results]
    longest = max((_font(13).getlength(text) for text in legends), default=0)
    width = int(
        max(MARGIN * 2 + LABEL_WIDTH + PLOT_WIDTH + 60, MARGIN * 2 + LABEL_WIDTH + 22 + longest)
    )
    height = header + row_height * len(rows) + 30 + legend
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    title = (
        f"Recall at PDQ distance {threshold}: {report.originals} originals, "
        f"{report.distinct:,} distinct images ({report.pairs:,} pairs)"
    )
    draw.text((MARGIN, 14), title, fill=(0, 0, 0), font=_font(16))
    left, top = MARGIN + LABEL_WIDTH, header
    bottom = top + row_height * len(rows)
    for percent in range(0, 101, 20):
        x = left + PLOT_WIDTH * percent / 100
        draw.line((x, top - 4, x, bottom), fill=(225, 225, 225))
        draw.text((x, bottom + 4), f"{percent}%", fill=(90, 90, 90), font=_font(12), anchor="mt")
    bar = BAR_HEIGHT
    others = iter(PALETTE * len(results))
    colours = [FIXED_COLOURS.get(r.pipeline) or next(others) for r in results]
    for i, row in enumerate(rows):
        y = top + i * row_height
        if row == "overall":
            draw.line((MARGIN, y, left + PLOT_WIDTH, y), fill=(120, 120, 120))
        draw.text((left - 8, y + row_height / 2), row, fill=(0, 0, 0), font=_font(13), anchor="rm")
        for j, result in enumerate(results):
            recall = result.recall if row == "overall" else result.get(row).recall
            y0 = y + 4 + j * bar
            colour = colours[j]
            draw.rectangle((left, y0, left + PLOT_WIDTH * recall, y0 + bar - 1), fill=colour)
            draw.text(
                (left + PLOT_WIDTH * recall + 4, y0 + bar / 2),
                f"{100 * recall:.0f}",
                fill=(60, 60, 60),
                font=_font(10),
                anchor="lm",
            )
    y = bottom + 30
    for j, text in enumerate(legends):
        draw.rectangle((left, y + 3, left + 14, y + 15), fill=colours[j])
        draw.text((left + 22, y + 9), text, fill=(0, 0, 0), font=_font(13), anchor="lm")
        y += 24
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _legend(result: PipelineResult) -> str:
    text = (
        f"{result.pipeline}: {100 * result.recall:.1f}% overall, "
        f"{result.false_positive_pairs} false-positive pairs, "
        f"{result.wrong_matches} wrong matches"
    )
    if result.known_duplicates_matched:
        text += f" ({result.known_duplicates_matched} known duplicates matched)"
    return text
