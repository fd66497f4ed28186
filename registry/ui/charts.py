"""Server-rendered SVG charts (line and grouped bar): no JavaScript, no CDN, nothing to download.

Every chart is an ``<svg>`` element with a ``<title>`` per point or bar (the browser shows
it on hover).  Each line series is a ``<g class="series" data-series=... data-points=N>``
holding one ``<circle class="pt">`` per point, so tests (and people) can count them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Tableau 10: distinct, colour-blind-friendly enough, readable on white.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # (x, y), x ascending
    key: str = ""  # data-series attribute (defaults to the label)
    dashed: bool | str = False  # True: dashed; a string: an SVG stroke-dasharray
    color_index: int | None = None  # palette entry (defaults to the series' position)


def _series_color(i: int, s: Series) -> str:
    return color(i if s.color_index is None else s.color_index)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        if lo == 0:
            hi = 1.0
        else:
            pad = abs(lo) * 0.1
            lo, hi = (0.0, hi + pad) if lo > 0 else (lo - pad, hi + pad)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-4:
        return f"{v:.1e}"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.4g}"


def _dash(dashed: bool | str) -> str:
    pattern = dashed if isinstance(dashed, str) else ("5 3" if dashed else "")
    return f' stroke-dasharray="{escape(pattern)}"' if pattern else ""


def _legend(labels: Sequence[tuple[str, str, bool | str]], x: float, y: float, width: float) -> tuple[str, float]:
    """Legend entries laid out in rows under the plot; returns (svg, height used)."""
    parts, cx, cy = [], x, y
    for label, col, dashed in labels:
        w = 28 + 6.6 * min(len(label), 48)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 16
        dash = _dash(dashed)
        parts.append(
            f'<g class="legend-item"><line x1="{cx:.1f}" y1="{cy - 4:.1f}" x2="{cx + 18:.1f}" y2="{cy - 4:.1f}" '
            f'stroke="{col}" stroke-width="2.5"{dash}/>'
            f'<text x="{cx + 22:.1f}" y="{cy:.1f}">{escape(label[:48])}</text></g>'
        )
        cx += w
    return "".join(parts), (cy - y + 16 if labels else 0)



def _svg_open(css_class: str, width: float, total_h: float, attrs: dict | None, title: str | None, left: float) -> list[str]:
    """The chart's ``<svg>`` start tag (with ``attrs``, e.g. data attributes the tests read) and title."""
    extra = "".join(f' {escape(k)}="{escape(v)}"' for k, v in (attrs or {}).items())
    out = [
        f'<svg class="{escape(css_class)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_h:.0f}" '
        f'width="{width}" height="{total_h:.0f}" role="img"{extra}>'
    ]
    if title:
        out.append(f'<text class="chart-title" x="{left}" y="16">{escape(title)}</text>')
    return out



def _y_axis(y_ticks: Sequence[float], sy: Callable[[float], float], left: float, pw: float) -> list[str]:
    """Opens the axes group: a grid line and a label per y tick."""
    out = ['<g class="axes">']
    for t in y_ticks:
        out.append(f'<line class="grid" x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}"/>'
                   f'<text class="tick" x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "epoch",
    y_label: str = "",
    width: int = 520,
    height: int = 240,
    css_class: str = "chart curve",
    attrs: dict[str, str] | None = None,
) -> Markup:
    """Lines with a dot per point; integer x ticks when every x is an integer (epochs)."""
    pts = [p for s in series for p in s.points if math.isfinite(p[1])]
    left, right, top, bottom = 58, 14, 26 if title else 10, 38
    legend_svg, legend_h = "", 0.0
    if len(series) > 1 or (series and series[0].label):
        legend_svg, legend_h = _legend(
            [(s.label, _series_color(i, s), s.dashed) for i, s in enumerate(series)], left, height + 14,
            width - left - right,
        )
    total_h = height + legend_h + (8 if legend_h else 0)
    out = _svg_open(css_class, width, total_h, attrs, title, left)
    if not pts:
        out.append(f'<text class="empty" x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">no data</text></svg>')
        return Markup("".join(out))
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    integer_x = all(float(x).is_integer() for x in xs)
    x_lo, x_hi = min(xs), max(xs)
    if integer_x:
        span = x_hi - x_lo
        step = max(1, math.ceil(span / 8)) if span else 1
        x_ticks = [float(v) for v in range(int(x_lo), int(x_hi) + 1, step)]
        if x_lo == x_hi:
            x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    else:
        x_ticks = nice_ticks(x_lo, x_hi, 6)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
    y_ticks = nice_ticks(min(ys), max(ys), 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_lo) / ((x_hi - x_lo) or 1) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y_lo) / ((y_hi - y_lo) or 1) * ph

    out += _y_axis(y_ticks, sy, left, pw)
    for t in x_ticks:
        out.append(f'<line class="tickmark" x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}"/>'
                   f'<text class="tick" x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{fmt_tick(t)}</text>')
    out.append(f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>'
               f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}"/>')
    if x_label:
        out.append(f'<text class="axis-label" x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle">'
                   f'{escape(x_label)}</text>')
    if y_label:
        out.append(f'<text class="axis-label" transform="translate(12 {top + ph / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(y_label)}</text>')
    out.append("</g>")
    for i, s in enumerate(series):
        col = _series_color(i, s)
        good = [(x, y) for x, y in s.points if math.isfinite(y)]
        key = s.key or s.label
        out.append(f'<g class="series" data-series="{escape(key)}" data-points="{len(good)}">')
        if len(good) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
            dash = _dash(s.dashed)
            out.append(f'<polyline fill="none" stroke="{col}" stroke-width="2"{dash} points="{path}"/>')
        for x, y in good:
            tip = f"{s.label}: {x_label or 'x'} {fmt_tick(x)} = {y:.6g}"
            out.append(f'<circle class="pt" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{col}">'
                       f'<title>{escape(tip)}</title></circle>')
        out.append("</g>")
    out.append(legend_svg)
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str = "",
    y_label: str = "",
    height: int = 240,
    css_class: str = "chart bars",
    attrs: dict[str, str] | None = None,
) -> Markup:
    """Grouped bars: one group per ``groups`` entry, one bar per series (missing values leave a gap)."""
    n_groups, n_series = len(groups), max(len(series), 1)
    group_w = max(36.0, 14.0 * n_series + 18)
    left, right, top, bottom = 58, 14, 26 if title else 10, 40
    width = int(max(360, left + right + group_w * n_groups))
    legend_svg, legend_h = _legend([(lab, color(i), False) for i, (lab, _) in enumerate(series)],
                                   left, height + 14, width - left - right)
    total_h = height + legend_h + (8 if legend_h else 0)
    out = _svg_open(css_class, width, total_h, attrs, title, left)
    vals = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    if not vals or not groups:
        out.append(f'<text class="empty" x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">no data</text></svg>')
        return Markup("".join(out))
    y_ticks = nice_ticks(min(0.0, min(vals)), max(vals) if max(vals) > 0 else 1.0, 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    pw, ph = width - left - right, height - top - bottom
    gw = pw / n_groups

    def sy(y: float) -> float:
        return top + ph - (y - y_lo) / ((y_hi - y_lo) or 1) * ph

    out += _y_axis(y_ticks, sy, left, pw)
    for g, name in enumerate(groups):
        out.append(f'<text class="tick" x="{left + gw * (g + 0.5):.1f}" y="{top + ph + 16}" text-anchor="middle">'
                   f'{escape(name)}</text>')
    out.append(f'<line class="axis" x1="{left}" y1="{sy(0):.1f}" x2="{left + pw}" y2="{sy(0):.1f}"/>')
    if y_label:
        out.append(f'<text class="axis-label" transform="translate(12 {top + ph / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(y_label)}</text>')
    out.append("</g>")
    bar_w = gw * 0.8 / n_series
    for i, (label, values) in enumerate(series):
        out.append(f'<g class="series" data-series="{escape(label)}">')
        for g, v in enumerate(values):
            if v is None or not math.isfinite(v):
                continue
            x = left + gw * g + gw * 0.1 + bar_w * i
            y0, y1 = sorted((sy(0), sy(v)))
            out.append(f'<rect class="bar" x="{x:.1f}" y="{y0:.1f}" width="{bar_w * 0.92:.1f}" '
                       f'height="{max(y1 - y0, 0.5):.1f}" fill="{color(i)}">'
                       f'<title>{escape(f"{label}, {groups[g]}: {v:.6g}")}</title></rect>')
        out.append("</g>")
    out.append(legend_svg)
    out.append("</svg>")
    return Markup("".join(out))
