"""Inline SVG charts, generated in Python: no JavaScript, no network, no style attributes (the report's
CSP forbids them; colours are presentation attributes and classes). Every label is escaped."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from safemlrm.analysis.reasoning_tax import PairedComparison

BASE_COLOUR = "#4c78a8"
REASONING_COLOUR = "#f58518"
BLIND_COLOUR = "#d62728"
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#eeca3b", "#9d755d")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _f(x: float) -> str:
    return f"{x:.1f}"


MAX_LABEL_W = 340.0  # longer labels are shortened with an ellipsis; the full text is in their tooltip


def text_width(text: str, size: float = 12.0) -> float:
    """A generous estimate of a label's rendered width in px (no font metrics in Python): wide East Asian
    characters take a full em, others 0.62 em (bold digits and capitals in system-ui stay under it)."""
    return sum(size if unicodedata.east_asian_width(c) in ("W", "F") else 0.62 * size for c in text)


def fit(text: str, width: float, size: float = 12.0) -> str:
    """`text`, shortened with an ellipsis to fit `width` px (estimated)."""
    if text_width(text, size) <= width:
        return text
    out = ""
    for c in text:
        if text_width(out + c + "…", size) > width:
            break
        out += c
    return out + "…"


def label_width(labels: Sequence[str], size: float = 12.0, *, least: float = 120.0) -> float:
    """Width of a label column that holds the longest label (up to MAX_LABEL_W), plus padding."""
    return max(least, min(MAX_LABEL_W, max((text_width(t, size) for t in labels), default=0.0)) + 16)


def _label(x: float, y: float, text: str, width: float, cls: str = "label", size: float = 12.0) -> str:
    """A right-aligned label that fits its column; a shortened one keeps the full text as its tooltip."""
    shown = fit(text, width - 12, size)
    tip = f"<title>{_e(text)}</title>" if shown != text else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="end" class="{cls}">{tip}{_e(shown)}</text>'


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.1f}%"


@dataclass(frozen=True)
class Bar:
    series: str
    value: float
    low: float
    high: float
    n: int


def scenario_bars(
    categories: Sequence[str], series: Sequence[str], values: dict[tuple[str, str], Bar], *, title: str
) -> str:
    """Horizontal grouped bars: one group per scenario, one bar per series (e.g. base, reasoning), with CIs.

    The label column is as wide as the longest scenario (long ones are shortened, full text in the
    tooltip); the legend wraps onto as many rows as the series names need.
    """
    label_w, plot_w, right = label_width(categories), 470, 70
    bar_h, gap = 11, 10
    group_h = bar_h * len(series) + gap
    width = label_w + plot_w + right
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    legend: list[tuple[float, int, str]] = []  # x, row, series
    lx, row = 8.0, 0
    for s in series:
        name = fit(s, width - 40, 12)
        need = 17 + text_width(name, 12) + 16
        if lx > 8 and lx + need > width:
            lx, row = 8.0, row + 1
        legend.append((lx, row, s))
        lx += need
    top, bottom = 34 + 18 * row, 36
    height = top + group_h * len(categories) + bottom
    out = [
        f'<svg class="chart" viewBox="0 0 {_f(width)} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="11">',
        f"<title>{_e(title)}</title>",
    ]
    for tick in range(0, 101, 20):
        x = label_w + plot_w * tick / 100
        out.append(f'<line x1="{_f(x)}" y1="{top - 6}" x2="{_f(x)}" y2="{height - bottom + 4}" class="grid"/>')
        out.append(f'<text x="{_f(x)}" y="{height - bottom + 18}" text-anchor="middle" class="axis">{tick}%</text>')
    out.append(
        f'<text x="{label_w + plot_w / 2}" y="{height - 4}" text-anchor="middle" class="axis">'
        "attack success rate (95% CI)</text>"
    )
    for x, r, s in legend:
        y = 8 + 18 * r
        shown = fit(s, width - 40, 12)
        tip = f"<title>{_e(s)}</title>" if shown != s else ""
        out.append(f'<rect x="{_f(x)}" y="{y}" width="12" height="12" rx="2" fill="{colours[s]}"/>')
        out.append(f'<text x="{_f(x + 17)}" y="{y + 10}" class="legend">{tip}{_e(shown)}</text>')
    for gi, category in enumerate(categories):
        y0 = top + gi * group_h
        out.append(_label(label_w - 8, y0 + bar_h * len(series) / 2 + 4, category, label_w))
        for si, s in enumerate(series):
            bar = values.get((category, s))
            if bar is None or math.isnan(bar.value):
                continue
            y = y0 + si * bar_h
            w = plot_w * bar.value
            tip = f"{category} · {s}: {_pct(bar.value)} [{_pct(bar.low)}, {_pct(bar.high)}], n={bar.n}"
            out.append(
                f'<g class="bar"><title>{_e(tip)}</title>'
                f'<rect x="{label_w}" y="{_f(y + 1)}" width="{_f(max(w, 0.5))}" height="{bar_h - 2}" rx="2" '
                f'fill="{colours[s]}"/>'
            )
            if not math.isnan(bar.low):
                x1, x2 = label_w + plot_w * bar.low, label_w + plot_w * bar.high
                ym = y + bar_h / 2
                out.append(f'<line x1="{_f(x1)}" y1="{_f(ym)}" x2="{_f(x2)}" y2="{_f(ym)}" class="whisker"/>')
            out.append(
                f'<text x="{_f(label_w + plot_w * max(bar.high, bar.value) + 4)}" y="{_f(y + bar_h - 2)}" '
                f'class="value">{_pct(bar.value)}</text></g>'
            )
    out.append("</svg>")
    return "".join(out)


def forest_plot(rows: Sequence[PairedComparison], *, title: str) -> str:
    """ASR difference (reasoning - base) with paired 95% CIs: the overall row first, then each scenario."""
    names = ["overall" if r.group.get("scope") == "overall" else r.group.get("category", "") for r in rows]
    label_w, plot_w = label_width(names), 400
    right = 8 + max([text_width("+100.0 [+100, +100]", 11), *(text_width(_value_text(r), 11) for r in rows)]) + 12
    row_h, top, bottom = 22, 16, 40
    height = top + row_h * len(rows) + bottom
    width = round(label_w + plot_w + right)
    finite = [v for r in rows for v in (r.asr_diff.low, r.asr_diff.high) if not math.isnan(v)]
    lo = min([-0.1, *finite])
    hi = max([0.1, *finite])
    span = hi - lo

    def xpos(v: float) -> float:
        return label_w + plot_w * (v - lo) / span

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="11">',
        f"<title>{_e(title)}</title>",
    ]
    step = 0.1 if span <= 1.0 else 0.2
    tick = math.ceil(lo / step) * step
    while tick <= hi + 1e-9:
        x = xpos(tick)
        out.append(f'<line x1="{_f(x)}" y1="{top - 4}" x2="{_f(x)}" y2="{height - bottom + 4}" class="grid"/>')
        out.append(
            f'<text x="{_f(x)}" y="{height - bottom + 18}" text-anchor="middle" class="axis">{100 * tick:+.0f}</text>'
        )
        tick += step
    x0 = xpos(0)
    out.append(f'<line x1="{_f(x0)}" y1="{top - 4}" x2="{_f(x0)}" y2="{height - bottom + 4}" class="zero"/>')
    out.append(
        f'<text x="{label_w + plot_w / 2}" y="{height - 4}" text-anchor="middle" class="axis">'
        "ASR difference, reasoning − base (percentage points, paired 95% CI)</text>"
    )
    for i, r in enumerate(rows):
        y = top + i * row_h + row_h / 2
        overall = r.group.get("scope") == "overall"
        name = "overall" if overall else r.group.get("category", "")
        colour = BLIND_COLOUR if r.blind_spot else ("#222" if overall else REASONING_COLOUR)
        cls = "label strong" if overall else "label"
        out.append(_label(label_w - 8, y + 4, name, label_w, cls))
        d = r.asr_diff
        if math.isnan(d.value):
            continue
        tip = (
            f"{name}: {100 * d.value:+.1f} pp [{100 * d.low:+.1f}, {100 * d.high:+.1f}]; ASR "
            f"{_pct(r.asr_first.value)} vs {_pct(r.asr_second.value)}; n={r.n_pairs}; McNemar p={r.mcnemar_p:.3g}"
            + ("; BLIND SPOT" if r.blind_spot else "")
        )
        out.append(f'<g class="point"><title>{_e(tip)}</title>')
        out.append(
            f'<line x1="{_f(xpos(d.low))}" y1="{_f(y)}" x2="{_f(xpos(d.high))}" y2="{_f(y)}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        if overall:
            cx = xpos(d.value)
            out.append(
                f'<polygon points="{_f(cx - 7)},{_f(y)} {_f(cx)},{_f(y - 6)} {_f(cx + 7)},{_f(y)} '
                f'{_f(cx)},{_f(y + 6)}" fill="{colour}"/>'
            )
        else:
            size = 4 + min(4.0, math.sqrt(r.n_pairs) / 3)
            out.append(
                f'<rect x="{_f(xpos(d.value) - size / 2)}" y="{_f(y - size / 2)}" width="{_f(size)}" '
                f'height="{_f(size)}" fill="{colour}"/>'
            )
        out.append(
            f'<text x="{label_w + plot_w + 8}" y="{_f(y + 4)}" class="value{" blind" if r.blind_spot else ""}">'
            f"{_e(_value_text(r))}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _value_text(r: PairedComparison) -> str:
    d = r.asr_diff
    if math.isnan(d.value):
        return ""
    flag = "  ◆ blind spot" if r.blind_spot else ""
    return f"{100 * d.value:+.1f} [{100 * d.low:+.0f}, {100 * d.high:+.0f}]{flag}"


def heatmap(matrix: Sequence[Sequence[int]], *, title: str, edge: int = 4) -> str:
    """Reasoning bin (rows) by answer bin (columns), counts; self-correction cells outlined.

    `edge` is the first unsafe bin (`harm.unsafe_bin(threshold)`): the outlined region (reasoning bin
    >= edge, answer bin < edge) is exactly the items the self-corrected rate counts.
    """
    cell, left, top = 46, 70, 40
    n = len(matrix)
    width, height = left + cell * n + 130, top + cell * n + 50
    peak = max([1, *(c for row in matrix for c in row)])
    total = max(1, sum(c for row in matrix for c in row))
    out = [
        f'<svg class="chart heat" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="12">',
        f"<title>{_e(title)}</title>",
        f'<text x="{left + cell * n / 2}" y="14" text-anchor="middle" class="axis">answer score →</text>',
        f'<text x="14" y="{top + cell * n / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {top + cell * n / 2})">reasoning score →</text>',
    ]
    for j in range(n):
        out.append(f'<text x="{left + cell * j + cell / 2}" y="{top - 8}" text-anchor="middle" class="axis">{j}</text>')
    for i, row in enumerate(matrix):
        out.append(
            f'<text x="{left - 10}" y="{top + cell * i + cell / 2 + 4}" text-anchor="end" class="axis">{i}</text>'
        )
        for j, count in enumerate(row):
            x, y = left + cell * j, top + cell * i
            strength = math.sqrt(count / peak) if count else 0.0
            # white -> deep orange
            r = round(255 - strength * (255 - 200))
            g = round(255 - strength * (255 - 80))
            b = round(255 - strength * (255 - 20))
            text_class = "cell-dark" if strength > 0.6 else "cell"
            tip = f"reasoning {i}, answer {j}: {count} ({100 * count / total:.1f}%)"
            out.append(
                f'<g><title>{_e(tip)}</title><rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                f'fill="rgb({r},{g},{b})" class="heat-cell"/>'
                f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 4}" text-anchor="middle" class="{text_class}">'
                f"{count}</text></g>"
            )
    # self-correction region: unsafe reasoning (rows >= edge), safe answer (columns < edge)
    rows_in, cols_in = max(0, n - edge), min(n, edge)
    if rows_in and cols_in:
        boxed = sum(matrix[i][j] for i in range(edge, n) for j in range(cols_in))
        out.append(
            f'<rect x="{left - 2}" y="{top + cell * edge - 2}" width="{cell * cols_in + 2}" '
            f'height="{cell * rows_in + 2}" class="region" rx="4" data-count="{boxed}"/>'
        )
        ly = top + cell * edge + 14
        out.append(f'<text x="{left + cell * n + 10}" y="{ly}" class="legend">self-corrected: {boxed}</text>')
        out.append(
            f'<text x="{left + cell * n + 10}" y="{ly + 15}" class="axis">unsafe thought,</text>'
            f'<text x="{left + cell * n + 10}" y="{ly + 29}" class="axis">safe answer</text>'
        )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    x_low: float
    x_high: float
    y: float
    y_low: float
    y_high: float
    colour: str


def scatter(points: Sequence[Point], *, title: str, x_label: str, y_label: str) -> str:
    """Safety / over-refusal trade-off: both axes 0-100%, CI crosses; the lower left corner is best.

    The legend column is as wide as the longest label (up to MAX_LABEL_W) and grows downwards.
    """
    left, top, size, bottom = 60, 20, 320, 46
    right = round(12 + label_width([p.label for p in points], 12, least=150) + 14)
    height = max(top + size + bottom, top + 14 + 18 * len(points) + 10)
    width = left + size + right

    def px(v: float) -> float:
        return left + size * v

    def py(v: float) -> float:
        return top + size * (1 - v)

    out = [
        f'<svg class="chart scatter" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="11">',
        f"<title>{_e(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" class="frame"/>',
        f'<text x="{left + 8}" y="{top + size - 8}" class="hint">safe and helpful</text>',
        f'<text x="{left + size - 8}" y="{top + 16}" text-anchor="end" class="hint">unsafe and unhelpful</text>',
    ]
    for tick in range(0, 101, 25):
        v = tick / 100
        out.append(f'<line x1="{_f(px(v))}" y1="{top}" x2="{_f(px(v))}" y2="{top + size}" class="grid"/>')
        out.append(f'<line x1="{left}" y1="{_f(py(v))}" x2="{left + size}" y2="{_f(py(v))}" class="grid"/>')
        out.append(f'<text x="{_f(px(v))}" y="{top + size + 16}" text-anchor="middle" class="axis">{tick}%</text>')
        out.append(f'<text x="{left - 6}" y="{_f(py(v) + 4)}" text-anchor="end" class="axis">{tick}%</text>')
    out.append(
        f'<text x="{left + size / 2}" y="{top + size + bottom - 6}" text-anchor="middle" class="axis">'
        f"{_e(x_label)}</text>"
    )
    out.append(
        f'<text x="16" y="{top + size / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 16 {top + size / 2})">{_e(y_label)}</text>'
    )
    for i, p in enumerate(points):
        if math.isnan(p.x) or math.isnan(p.y):
            continue
        tip = f"{p.label}: {x_label} {_pct(p.x)} [{_pct(p.x_low)}, {_pct(p.x_high)}]; {y_label} {_pct(p.y)} " + (
            f"[{_pct(p.y_low)}, {_pct(p.y_high)}]"
        )
        out.append(f'<g class="point"><title>{_e(tip)}</title>')
        if not math.isnan(p.x_low):
            out.append(
                f'<line x1="{_f(px(p.x_low))}" y1="{_f(py(p.y))}" x2="{_f(px(p.x_high))}" y2="{_f(py(p.y))}" '
                f'stroke="{p.colour}" stroke-width="1.5"/>'
            )
        if not math.isnan(p.y_low):
            out.append(
                f'<line x1="{_f(px(p.x))}" y1="{_f(py(p.y_low))}" x2="{_f(px(p.x))}" y2="{_f(py(p.y_high))}" '
                f'stroke="{p.colour}" stroke-width="1.5"/>'
            )
        out.append(f'<circle cx="{_f(px(p.x))}" cy="{_f(py(p.y))}" r="6" fill="{p.colour}" class="dot"/>')
        shown = fit(p.label, right - 40, 12)
        tip = f"<title>{_e(p.label)}</title>" if shown != p.label else ""
        out.append(
            f'<text x="{left + size + 12}" y="{top + 14 + 18 * i}" class="legend">{tip}'
            f'<tspan fill="{p.colour}">●</tspan> {_e(shown)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)
