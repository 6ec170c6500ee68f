"""Writes results: JSON, a markdown summary, and an SVG bar chart drawn by hand (no matplotlib)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

RESULTS = Path(__file__).resolve().parent / "results"

COLOURS = {
    "twisted_ch": "#c0392b",
    "twisted": "#2c3e50",
    "twisted-direct": "#7f8c8d",
    "asyncio": "#2980b9",
}


def writeJSON(name: str, data: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def writeText(name: str, text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path


def _niceMax(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def cpuChart(rows: list[dict[str, Any]], title: str) -> str:
    """Grouped bars: CPU microseconds per poll, one group per device count."""
    sizes = sorted({r["devices"] for r in rows})
    impls = [i for i in COLOURS if any(r["impl"] == i for r in rows)]
    values: dict[tuple[str, int], float] = {
        (r["impl"], r["devices"]): float(r["cpuMicrosPerPoll"]) for r in rows
    }
    width, height = 760, 420
    left, right, top, bottom = 70, 180, 50, 60
    plotW, plotH = width - left - right, height - top - bottom
    top_value = _niceMax(max(values.values()) * 1.1)
    groupW = plotW / len(sizes)
    barW = groupW * 0.8 / max(1, len(impls))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2 - right / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(title)}</text>",
    ]
    for k in range(6):
        v = top_value * k / 5
        y = top + plotH - plotH * k / 5
        parts.append(
            f'<line x1="{left}" x2="{left + plotW}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(
        f'<text x="18" y="{top + plotH / 2}" transform="rotate(-90 18 {top + plotH / 2})" '
        f'text-anchor="middle">CPU µs per answered poll</text>'
    )
    for gi, n in enumerate(sizes):
        x0 = left + gi * groupW + groupW * 0.1
        for bi, impl in enumerate(impls):
            if (impl, n) not in values:
                continue
            v = values[(impl, n)]
            h = plotH * v / top_value
            x = x0 + bi * barW
            y = top + plotH - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{barW - 2:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[impl]}"><title>{impl} N={n}: {v:.1f} µs</title></rect>'
            )
            parts.append(
                f'<text x="{x + barW / 2 - 1:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                f'font-size="10">{v:.0f}</text>'
            )
        parts.append(
            f'<text x="{left + gi * groupW + groupW / 2:.1f}" y="{top + plotH + 20}" '
            f'text-anchor="middle">N = {n} devices at 1 Hz</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left + plotW}" y1="{top + plotH}" y2="{top + plotH}" '
        f'stroke="black"/>'
    )
    for li, impl in enumerate(impls):
        y = top + 10 + li * 22
        parts.append(
            f'<rect x="{left + plotW + 20}" y="{y}" width="14" height="14" fill="{COLOURS[impl]}"/>'
        )
        parts.append(f'<text x="{left + plotW + 40}" y="{y + 11}">{escape(impl)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
