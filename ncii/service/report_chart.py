"""The report's chart as a PNG: requests received per day, stacked by what became of them.

Drawn with Pillow, which ncii already needs for decoding images, rather than matplotlib: one
stacked bar chart does not justify a 40 MB plotting stack (and its font cache set-up on first
run) in a tool that is often installed on locked-down moderation hosts. Pure: no database.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ncii.service.reports import DayFigures, TakedownReport

WIDTH, HEIGHT = 900, 480
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 60, 20, 60, 90
SERIES = (
    ("removed_in_time", "removed within 48 h", (46, 139, 87)),
    ("removed_late", "removed late", (230, 145, 30)),
    ("rejected", "rejected", (150, 150, 150)),
    ("open", "still open", (65, 105, 225)),
)
"""Stacking order bottom-up: field of :class:`DayFigures`, legend, colour."""
BACKGROUND, INK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)


def _days(report: TakedownReport) -> list[DayFigures]:
    """One bar per day of the period (empty days too), at most the last 92 days."""
    known = {d.day: d for d in report.days}
    first = report.start.astimezone(dt.UTC).date()
    last = (report.end - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date()
    first = max(first, last - dt.timedelta(days=91))
    count = (last - first).days + 1
    return [
        known.get(day, DayFigures(day)) for day in (first + dt.timedelta(n) for n in range(count))
    ]


def draw_chart(report: TakedownReport) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    days = _days(report)
    tallest = max((d.received for d in days), default=0) or 1
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base = MARGIN_TOP + plot_h
    pct = "n/a" if report.removed_in_time_pct is None else f"{report.removed_in_time_pct:g}%"
    title = (
        f"Takedown requests {days[0].day} to {days[-1].day}: {report.received} received, "
        f"{report.removed_in_time} removed within 48 h ({pct})"
    )
    draw.text((MARGIN_LEFT, 12), title, fill=INK, font=font)
    hours = "n/a" if report.median_hours is None else f"{report.median_hours:g} h"
    p90 = "n/a" if report.p90_hours is None else f"{report.p90_hours:g} h"
    figures = (
        f"median time to removal {hours}, 90th percentile {p90}; {report.rejected} rejected, "
        f"{report.overdue} overdue; {report.matches} matches, {report.withdrawals} withdrawals"
    )
    draw.text((MARGIN_LEFT, 30), figures, fill=INK, font=font)
    step = max(1, tallest // 5)
    for value in range(0, tallest + 1, step):
        y = base - round(value / tallest * plot_h)
        draw.line([(MARGIN_LEFT, y), (WIDTH - MARGIN_RIGHT, y)], fill=GRID)
        draw.text((8, y - 6), str(value), fill=INK, font=font)
    slot = plot_w / len(days)
    bar = max(1, int(slot * 0.7))
    for n, day in enumerate(days):
        x = MARGIN_LEFT + int(n * slot + (slot - bar) / 2)
        top = base
        for field, _, colour in SERIES:
            height = round(getattr(day, field) / tallest * plot_h)
            if height:
                draw.rectangle([(x, top - height), (x + bar - 1, top - 1)], fill=colour)
                top -= height
        if len(days) <= 16 or n % max(1, len(days) // 8) == 0:
            draw.text((x, base + 6), day.day.strftime("%m-%d"), fill=INK, font=font)
    draw.line([(MARGIN_LEFT, base), (WIDTH - MARGIN_RIGHT, base)], fill=INK)
    x = MARGIN_LEFT
    for _, label, colour in SERIES:
        draw.rectangle([(x, HEIGHT - 40), (x + 12, HEIGHT - 28)], fill=colour)
        draw.text((x + 18, HEIGHT - 40), label, fill=INK, font=font)
        x += 190
    return image


def write_chart(report: TakedownReport, path: str | Path) -> Path:
    target = Path(path)
    draw_chart(report).save(target, "PNG")
    return target
