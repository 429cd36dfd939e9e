"""HTML report: one self-contained file (no network, no CDN) with plots drawn as inline SVG by this module.

Plots:
    * **FP32 roofline** of every launch (FLOPs = add + mul + 2 fma thread instructions) when the run holds
      ncu's roofline metrics (``--set full``: per-cycle instruction rates x SM clock over
      ``dram__bytes.sum.per_second``) or the instruction counts with DRAM bytes; against the GPU
      catalogue's FP32 and DRAM peaks, else the report's own peaks at the measured clocks (as ncu's
      roofline chart). Otherwise a **speed-of-light** chart: achieved DRAM throughput % of peak (x)
      against SM throughput % of peak (y) per launch, which needs neither; the title says which.
    * **Time per variant**: median ms bars with the min-max of the repetitions.
    * **Occupancy limits**: the four blocks-per-SM limits of each variant's longest launch; the smallest
      (the limiter) is highlighted.

A small inline script records JavaScript errors in ``#render-status`` (``data-errors``) and counts the
SVG plots once loaded, so a headless browser test can read the outcome from the DOM.
"""

from __future__ import annotations

import html
import math

from ncu_advisor.analysis.report_data import (
    DRAM_BYTES,
    FLOP_COUNTERS,
    OCCUPANCY_LIMITS,
    ROOFLINE_RATES,
    Launch,
    ReportData,
    gpu_name,
)
from ncu_advisor.render.report_md import render_markdown

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WIDTH, HEIGHT = 640, 360
MARGIN = {"left": 70, "right": 20, "top": 30, "bottom": 50}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _colors(data: ReportData) -> dict[str, str]:
    return {v.name: PALETTE[i % len(PALETTE)] for i, v in enumerate(data.variants)}


def _svg_open(title: str, plot_id: str, width: int = WIDTH, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg id="{plot_id}" class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<text x="{width / 2}" y="18" text-anchor="middle" class="ptitle">{_e(title)}</text>',
    ]


def launch_roofline(launch: Launch) -> tuple[float, float] | None:
    """(FLOP per DRAM byte, FLOP/s) of one launch, FP32 (add + mul + 2 fma), or None.

    From ncu's rate metrics when the run has them (what ncu's own roofline uses: per-cycle instruction
    rates x the SM clock, ``dram__bytes.sum.per_second``), else from the instruction counts, DRAM bytes
    read + written and the launch time.
    """
    m = {key: launch.metrics.get(name) for key, name in ROOFLINE_RATES.items()}
    rates = [m["fadd_per_cycle"], m["fmul_per_cycle"], m["ffma_per_cycle"], m["smsp_cycles_per_second"]]
    if all(r is not None for r in rates) and m["dram_bytes_per_second"]:
        add, mul, fma, clock = (float(r) for r in rates)  # type: ignore[arg-type]
        flop_rate = (add + mul + 2.0 * fma) * clock
        return (flop_rate / float(m["dram_bytes_per_second"]), flop_rate) if flop_rate > 0 else None
    counts = [launch.metrics.get(c) for c in FLOP_COUNTERS.values()]
    moved = [launch.metrics.get(c) for c in DRAM_BYTES]
    if any(c is None for c in counts + moved) or not launch.duration_ms:
        return None
    add, mul, fma = (float(c) for c in counts)  # type: ignore[arg-type]
    flops = add + mul + 2.0 * fma
    total_bytes = float(sum(moved))  # type: ignore[arg-type]
    if flops <= 0 or total_bytes <= 0:
        return None
    return flops / total_bytes, flops / (launch.duration_ms * 1e-3)


def roofline_peaks(data: ReportData) -> tuple[float, float, str] | None:
    """(peak FP32 FLOP/s, peak DRAM byte/s, where from): the GPU catalogue's, else the report's own
    (``2 x ffma peak per cycle x SM clock``, ``DRAM bytes peak per cycle x DRAM clock``), else None."""
    if "fp32_tflops" in data.gpu_peaks and "mem_bw_gbs" in data.gpu_peaks:
        return data.gpu_peaks["fp32_tflops"] * 1e12, data.gpu_peaks["mem_bw_gbs"] * 1e9, "GPU catalogue"
    for v in data.variants:
        for x in v.launches:
            m = {key: x.metrics.get(name) for key, name in ROOFLINE_RATES.items()}
            needed = (
                "ffma_peak_per_cycle",
                "sm_cycles_per_second",
                "dram_bytes_peak_per_cycle",
                "dram_cycles_per_second",
            )
            if all(m[k] for k in needed):
                flops = 2.0 * float(m["ffma_peak_per_cycle"]) * float(m["sm_cycles_per_second"])  # type: ignore[arg-type]
                bandwidth = float(m["dram_bytes_peak_per_cycle"]) * float(m["dram_cycles_per_second"])  # type: ignore[arg-type]
                return flops, bandwidth, "the report's peaks at the measured clocks"
    return None


def roofline_points(data: ReportData) -> list[tuple[str, str, float, float]]:
    """(variant, kernel, FLOP/byte, GFLOP/s) of every launch whose FP32 roofline point is known."""
    points = []
    for v in data.variants:
        for x in v.launches:
            point = launch_roofline(x)
            if point is not None:
                points.append((v.name, x.kernel, point[0], point[1] / 1e9))
    return points


def _log_axis(lo: float, hi: float, size: float, start: float, invert: bool = False):  # type: ignore[no-untyped-def]
    a, b = math.log10(lo), math.log10(hi)

    def place(value: float) -> float:
        t = (math.log10(max(value, lo)) - a) / (b - a)
        return start + (size * (1 - t) if invert else size * t)

    return place


def _roofline_svg(
    data: ReportData, points: list[tuple[str, str, float, float]], peaks: tuple[float, float, str]
) -> str:
    peak_gflops = peaks[0] / 1e9
    peak_bw = peaks[1] / 1e9
    colors = _colors(data)
    ai_lo = min(0.01, min(p[2] for p in points) / 2)
    ai_hi = max(1000.0, max(p[2] for p in points) * 2)
    perf_lo = min(peak_gflops / 1e4, min(p[3] for p in points) / 2)
    perf_hi = peak_gflops * 2
    pw = WIDTH - MARGIN["left"] - MARGIN["right"]
    ph = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    x = _log_axis(ai_lo, ai_hi, pw, MARGIN["left"])
    y = _log_axis(perf_lo, perf_hi, ph, MARGIN["top"], invert=True)
    out = _svg_open(
        f"FP32 roofline (tensor-core work not counted): {peak_gflops / 1e3:.1f} TFLOP/s, "
        f"{peak_bw:.0f} GB/s from {peaks[2]}",
        "plot-roofline",
    )
    ridge = peak_gflops / peak_bw
    roof = [(ai_lo, min(ai_lo * peak_bw, peak_gflops)), (ridge, peak_gflops), (ai_hi, peak_gflops)]
    out.append(
        '<polyline class="roof" fill="none" stroke="#333" stroke-width="2" points="'
        + " ".join(f"{x(a):.1f},{y(p):.1f}" for a, p in roof)
        + '"/>'
    )
    for decade in range(math.ceil(math.log10(ai_lo)), math.floor(math.log10(ai_hi)) + 1):
        px = x(10.0**decade)
        out.append(
            f'<line x1="{px:.1f}" y1="{MARGIN["top"]}" x2="{px:.1f}" y2="{MARGIN["top"] + ph}" '
            f'class="grid"/><text x="{px:.1f}" y="{MARGIN["top"] + ph + 15}" text-anchor="middle">'
            f"1e{decade}</text>"
        )
    for decade in range(math.ceil(math.log10(perf_lo)), math.floor(math.log10(perf_hi)) + 1):
        py = y(10.0**decade)
        out.append(
            f'<line x1="{MARGIN["left"]}" y1="{py:.1f}" x2="{MARGIN["left"] + pw}" y2="{py:.1f}" '
            f'class="grid"/><text x="{MARGIN["left"] - 5}" y="{py + 4:.1f}" text-anchor="end">'
            f"1e{decade}</text>"
        )
    for variant, kernel, ai, perf in points:
        out.append(
            f'<circle class="point" cx="{x(ai):.1f}" cy="{y(perf):.1f}" r="5" fill="{colors[variant]}">'
            f"<title>{_e(variant)}: {_e(kernel)} — {ai:.3g} FLOP/byte, {perf:.4g} GFLOP/s</title></circle>"
        )
    out.append(
        f'<text x="{MARGIN["left"] + pw / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
        "arithmetic intensity (FLOP / DRAM byte)</text>"
    )
    out.append(
        f'<text transform="translate(14,{MARGIN["top"] + ph / 2}) rotate(-90)" text-anchor="middle">'
        "GFLOP/s</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _speed_of_light_svg(data: ReportData) -> str:
    colors = _colors(data)
    pw = WIDTH - MARGIN["left"] - MARGIN["right"]
    ph = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    out = _svg_open("Speed of light per launch (the run has no FLOP counters: no roofline)", "plot-sol")

    def px(value: float) -> float:
        return MARGIN["left"] + pw * min(max(value, 0.0), 100.0) / 100.0

    def py(value: float) -> float:
        return MARGIN["top"] + ph * (1 - min(max(value, 0.0), 100.0) / 100.0)

    for tick in range(0, 101, 20):
        out.append(
            f'<line x1="{px(tick):.1f}" y1="{MARGIN["top"]}" x2="{px(tick):.1f}" y2="{MARGIN["top"] + ph}" '
            f'class="grid"/><text x="{px(tick):.1f}" y="{MARGIN["top"] + ph + 15}" '
            f'text-anchor="middle">{tick}</text>'
        )
        out.append(
            f'<line x1="{MARGIN["left"]}" y1="{py(tick):.1f}" x2="{MARGIN["left"] + pw}" y2="{py(tick):.1f}" '
            f'class="grid"/><text x="{MARGIN["left"] - 5}" y="{py(tick) + 4:.1f}" '
            f'text-anchor="end">{tick}</text>'
        )
    out.append(
        f'<line x1="{px(60):.1f}" y1="{MARGIN["top"]}" x2="{px(60):.1f}" y2="{MARGIN["top"] + ph}" '
        'class="threshold"/><line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" class="threshold"/>'.format(
            MARGIN["left"], py(60), MARGIN["left"] + pw
        )
    )
    for v in data.variants:
        for launch in v.launches:
            dram = launch.metrics.get("dram__throughput.avg.pct_of_peak_sustained_elapsed")
            sm = launch.metrics.get("sm__throughput.avg.pct_of_peak_sustained_elapsed")
            if dram is None or sm is None:
                continue
            radius = 4 + 8 * math.sqrt(
                (launch.duration_ms or 0.0)
                / max((x.duration_ms or 0.0 for w in data.variants for x in w.launches), default=1.0)
                or 0.0
            )
            out.append(
                f'<circle class="point" cx="{px(dram):.1f}" cy="{py(sm):.1f}" r="{radius:.1f}" '
                f'fill="{colors[v.name]}" fill-opacity="0.7"><title>{_e(v.name)}: {_e(launch.kernel)} — '
                f"DRAM {dram:.1f}%, SM {sm:.1f}%, {launch.duration_ms or 0:.3f} ms</title></circle>"
            )
    out.append(
        f'<text x="{MARGIN["left"] + pw / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
        "DRAM throughput, % of peak (circle area: launch time)</text>"
    )
    out.append(
        f'<text transform="translate(14,{MARGIN["top"] + ph / 2}) rotate(-90)" text-anchor="middle">'
        "SM throughput, % of peak</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _time_svg(data: ReportData) -> str:
    timed = [v for v in data.variants if v.median_ms is not None]
    colors = _colors(data)
    row = 28
    height = MARGIN["top"] + row * max(len(timed), 1) + 16
    left = 200
    pw = WIDTH - left - 160  # room for the "12.345 ms (0.51×)" label right of the longest bar
    out = _svg_open(
        "Time per variant: median ms (whiskers: min-max of repetitions)", "plot-time", height=height
    )
    top = max((max(v.timings_ms or [v.median_ms or 0.0]) for v in timed), default=1.0) or 1.0
    for i, v in enumerate(timed):
        y0 = MARGIN["top"] + i * row + 4
        width = pw * (v.median_ms or 0.0) / top
        out.append(f'<text x="{left - 6}" y="{y0 + 14}" text-anchor="end">{_e(v.name)}</text>')
        out.append(
            f'<rect class="bar" x="{left}" y="{y0}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{colors[v.name]}"><title>{_e(v.name)}: {v.median_ms:.4f} ms</title></rect>'
        )
        if v.timings_ms:
            lo, hi = left + pw * min(v.timings_ms) / top, left + pw * max(v.timings_ms) / top
            mid = y0 + (row - 8) / 2
            out.append(
                f'<line class="whisker" x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" y2="{mid:.1f}" '
                'stroke="#000"/>'
            )
        label = f"{v.median_ms:.3f} ms"
        if v.speedup_vs_reference is not None and not v.is_reference:
            label += f" ({v.speedup_vs_reference:.2f}×)"
        out.append(f'<text x="{left + width + 4:.1f}" y="{y0 + 14}">{_e(label)}</text>')
    if not timed:
        out.append(f'<text x="{WIDTH / 2}" y="{MARGIN["top"] + 16}" text-anchor="middle">no timings</text>')
    out.append("</svg>")
    return "\n".join(out)


def _occupancy_svg(data: ReportData) -> str:
    shown = []
    for v in data.variants:
        main = next((x for x in v.launches if x.kernel == v.main_kernel), None)
        if main is None:
            continue
        limits = {name: main.metrics.get(column) for name, column in OCCUPANCY_LIMITS.items()}
        if any(value is not None for value in limits.values()):
            shown.append((v.name, main, limits))
    block = 4 * 16 + 26
    height = MARGIN["top"] + block * max(len(shown), 1) + 20
    left = 200
    pw = WIDTH - left - 60
    out = _svg_open(
        "Occupancy limits of each variant's longest launch (blocks per SM; red = limiter)",
        "plot-occupancy",
        height=height,
    )
    top = max(
        (value for _, _, limits in shown for value in limits.values() if value is not None), default=1.0
    )
    for i, (name, main, limits) in enumerate(shown):
        y0 = MARGIN["top"] + i * block
        out.append(f'<text x="8" y="{y0 + 14}" class="vname">{_e(name)}: {_e(main.kernel[:40])}</text>')
        for j, (limit, value) in enumerate(limits.items()):
            y1 = y0 + 20 + j * 16
            fill = "#d62728" if limit == main.occupancy_limiter else "#9ecae1"
            out.append(f'<text x="{left - 6}" y="{y1 + 11}" text-anchor="end">{limit}</text>')
            if value is None:
                continue
            width = pw * value / top
            out.append(
                f'<rect class="bar" x="{left}" y="{y1}" width="{width:.1f}" height="12" fill="{fill}">'
                f"<title>{_e(name)} {limit}: {value:g} blocks/SM</title></rect>"
                f'<text x="{left + width + 4:.1f}" y="{y1 + 11}">{value:g}</text>'
            )
    if not shown:
        out.append(
            f'<text x="{WIDTH / 2}" y="{MARGIN["top"] + 16}" text-anchor="middle">'
            "no occupancy metrics in the run</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _legend(data: ReportData) -> str:
    colors = _colors(data)
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{c}"></span>{_e(n)}</span>'
        for n, c in colors.items()
    )
    return f'<div class="legend">{items}</div>'


STATUS_SCRIPT = """
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
window.addEventListener('load', function () {
  var status = document.getElementById('render-status');
  var plots = document.querySelectorAll('svg.plot');
  var marks = document.querySelectorAll('svg.plot circle, svg.plot rect');
  status.setAttribute('data-plots', String(plots.length));
  status.setAttribute('data-marks', String(marks.length));
  status.setAttribute('data-errors', String(window.__errors.length));
  status.textContent = window.__errors.length ? ('errors: ' + window.__errors.join('; '))
                                              : ('rendered ' + plots.length + ' plots');
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
svg.plot { background: #fff; border: 1px solid #ddd; margin: 8px 0; display: block; }
svg text { font-size: 11px; fill: #222; } svg .ptitle { font-size: 13px; font-weight: bold; }
.grid { stroke: #eee; } .threshold { stroke: #c44; stroke-dasharray: 4 3; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 3px 6px; font-size: 13px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
.legend .key { margin-right: 14px; font-size: 13px; } .swatch { display: inline-block; width: 11px;
  height: 11px; margin-right: 4px; vertical-align: middle; }
#render-status { color: #888; font-size: 11px; }
"""


def _markdown_to_html(text: str) -> str:
    """The markdown report's content as simple HTML (tables, headings, lists, code blocks, paragraphs)."""
    out: list[str] = []
    in_code = False
    in_table = False
    in_list = False
    for line in text.splitlines():
        if line.startswith("```"):
            if in_code:
                out.append("</pre>")
            else:
                out.append("<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(_e(line))
            continue
        for icon in ("✅ ", "❌ ", "⚠️ "):  # emoji fonts are often missing where the page is opened
            line = line.replace(icon, "")
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
            if set("".join(cells)) <= set("-:| "):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
                out.append("<tr>" + "".join(f"<th>{_e(c)}</th>" for c in cells) + "</tr>")
            else:
                out.append("<tr>" + "".join(f"<td>{_e(c.strip('`'))}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.lstrip().startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_e(line.lstrip()[2:].replace('**', ''))}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 0, 6)
            out.append(f"<h{level}>{_e(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_e(line.strip().rstrip(' ').replace('**', ''))}</p>")
    if in_table:
        out.append("</table>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


def render_html(data: ReportData) -> str:
    """Render the report as one self-contained HTML page (inline CSS, SVG and script; no external URL)."""
    points = roofline_points(data)
    peaks = roofline_peaks(data)
    chart = _roofline_svg(data, points, peaks) if points and peaks else _speed_of_light_svg(data)
    title = f"ncu-advisor: {data.kernel_path or data.run_path.name} on {gpu_name(data)}"
    return html_page(
        title,
        [
            _legend(data),
            chart,
            _time_svg(data),
            _occupancy_svg(data),
            _markdown_to_html(render_markdown(data)),
        ],
    )


def html_page(title: str, body: list[str]) -> str:
    """A self-contained page: inline style and status script, the title as h1, ``body``, the status line."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
            f"<script>{STATUS_SCRIPT}</script>",
            "</head><body>",
            f"<h1>{_e(title)}</h1>",
            *body,
            '<p id="render-status" data-errors="-1">not rendered</p>',
            "</body></html>",
            "",
        ]
    )
