"""Charts for the console's reports page, drawn on the server as SVG: no script, no build.

Each function takes figures and returns markup for the template; every chart has a title
and a text alternative, so that a screen reader (and a test) can read what it shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

from schema.reports import StageTime

PALETTE = ["#2563eb", "#dc2626", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d"]
INK, MUTED, GRID = "#111827", "#6b7280", "#e5e7eb"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: 45 s, 12 min, 3.4 h, 2.1 d."""
    if seconds is None:
        return "—"
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if seconds < limit:
            value = seconds / size
            return f"{value:.0f} {unit}" if value >= 10 or unit == "s" else f"{value:.1f} {unit}"
    return f"{seconds / 86400:.1f} d"


def _svg(width: int, height: int, label: str, body: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(label)}" {FONT}><title>{escape(label)}</title>'
        f"{body}</svg>"
    )


def stage_times(stages: dict[str, StageTime]) -> Markup:
    """Per stage, the range from the median to the 90th percentile on a logarithmic time axis."""
    width, left, right, row = 760, 110, 190, 26
    height = 30 + row * len(stages)
    ticks = [(1, "1 s"), (60, "1 min"), (3600, "1 h"), (86400, "1 d"), (604800, "1 w")]
    top = max([t.p90 or 0 for t in stages.values()] + [86400.0])
    span = math.log10(max(top, 2)) - 0  # from 1 s

    def x(seconds: float) -> float:
        return left + (width - left - right) * math.log10(max(seconds, 1)) / span

    parts = []
    for seconds, text in ticks:
        if seconds <= top:
            parts.append(
                f'<line x1="{x(seconds):.1f}" x2="{x(seconds):.1f}" y1="18" y2="{height - 6}" '
                f'stroke="{GRID}"/><text x="{x(seconds):.1f}" y="12" fill="{MUTED}" '
                f'text-anchor="middle">{text}</text>'
            )
    for i, (stage, time) in enumerate(stages.items()):
        y = 30 + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" fill="{INK}">{escape(stage)}</text>'
        )
        if time.p50 is None or time.p90 is None:
            parts.append(f'<text x="{left}" y="{y + 4}" fill="{MUTED}">no order has left it</text>')
            continue
        low, high = x(time.p50), max(x(time.p90), x(time.p50) + 2)
        parts.append(
            f'<rect x="{low:.1f}" y="{y - 7}" width="{high - low:.1f}" height="14" rx="3" '
            f'fill="{PALETTE[0]}" fill-opacity="0.35"/>'
            f'<circle cx="{low:.1f}" cy="{y}" r="5" fill="{PALETTE[0]}"/>'
            f'<text x="{width - right + 10}" y="{y + 4}" fill="{INK}">'
            f"{duration(time.p50)} · {duration(time.p90)} · n={time.count}</text>"
        )
    legend = "Time per stage: dot = median, bar to the 90th percentile"
    return _svg(width, height, legend, "".join(parts))


def stacked_columns(days: Sequence[date], series: dict[str, list[int]], label: str) -> Markup:
    """One column per day, stacked by series (e.g. cancellations by reason)."""
    width, height, left, bottom, top_pad = 760, 240, 36, 40, 12
    shown = {name: values for name, values in series.items() if any(values)}
    totals = [sum(values[i] for values in shown.values()) for i in range(len(days))]
    peak = max([*totals, 1])
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    slot = plot_w / max(len(days), 1)
    parts = [
        f'<line x1="{left}" x2="{width - 10}" y1="{top_pad + plot_h}" y2="{top_pad + plot_h}" stroke="{MUTED}"/>',
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" fill="{MUTED}">{peak}</text>',
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" fill="{MUTED}">0</text>',
    ]
    for i, day in enumerate(days):
        y = float(top_pad + plot_h)
        for color, values in zip(PALETTE, shown.values(), strict=False):
            h = plot_h * values[i] / peak
            if h:
                y -= h
                parts.append(
                    f'<rect x="{left + i * slot + slot * 0.15:.1f}" y="{y:.1f}" '
                    f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{color}"/>'
                )
        if len(days) <= 16 or i % math.ceil(len(days) / 12) == 0:
            parts.append(
                f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle" fill="{MUTED}">{day.strftime("%d.%m")}</text>'
            )
    for n, (name, color) in enumerate(zip(shown, PALETTE, strict=False)):
        lx = left + n * 150
        parts.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{height - 5}" fill="{INK}">{escape(name)}</text>'
        )
    if not shown:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{MUTED}">none</text>'
        )
    return _svg(width, height, label, "".join(parts))


def line(
    days: Sequence[date],
    values: Sequence[float | None],
    label: str,
    *,
    low: float,
    high: float,
    unit: str = "",
) -> Markup:
    """A trend per day between `low` and `high`; days without a value leave a gap."""
    width, height, left, bottom, top_pad = 370, 200, 40, 26, 12
    plot_w, plot_h = width - left - 12, height - bottom - top_pad

    def xy(i: int, value: float) -> str:
        x = left + plot_w * (i + 0.5) / max(len(days), 1)
        y = top_pad + plot_h * (high - value) / (high - low)
        return f"{x:.1f},{y:.1f}"

    parts = []
    for mark in (low, (low + high) / 2, high):
        y = top_pad + plot_h * (high - mark) / (high - low)
        parts.append(
            f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{mark:g}{unit}</text>"
        )
    runs: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(xy(i, value))
    for points in runs:
        if len(points) > 1:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>'
            )
        for point in points:
            cx, cy = point.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{PALETTE[0]}"/>')
    if days:
        for i in (0, len(days) - 1):
            parts.append(
                f'<text x="{xy(i, low).split(",")[0]}" y="{height - 8}" text-anchor="middle" '
                f'fill="{MUTED}">{days[i].strftime("%d.%m")}</text>'
            )
    if all(value is None for value in values):
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{MUTED}">no data</text>'
        )
    return _svg(width, height, label, "".join(parts))
