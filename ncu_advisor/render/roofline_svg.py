"""A roofline chart per kernel, drawn as inline SVG: each launch against the GPU's memory and compute roofs.

Axes are log-log: arithmetic intensity (FLOP per DRAM byte) across, achieved FLOP/s up. The roofs:

* memory: bytes/s of the GPU catalogue (``gpus.yaml``): the measured copy bandwidth (``copy_bw_gbs``) where
  there is one, else the datasheet figure (``mem_bw_gbs``) -- the same roof ``analysis.roofline`` judges by;
* compute: the FP32 peak (``fp32_tflops``), and for kernels that call ``tl.dot`` the dense tensor-core peak
  (``bf16_tflops``; TF32 runs at half of it, FP8 at twice).

A launch's point needs its DRAM bytes (read + written), its duration and its FLOPs. FLOPs come from, in
order: ncu's FP32 instruction counts (``sm__sass_thread_inst_executed_op_{fadd,fmul,ffma}_pred_on.sum``:
add + mul + 2 fma, ncu's own roofline formula), ncu's per-cycle rates of the same (``--set full``), or the
busy share of the pipe the kernel uses times that pipe's peak (``analysis.roofline``: an upper estimate).
Without FLOPs the launch's achieved bandwidth is drawn as a dashed line parallel to the memory roof -- the
launch lies somewhere on it -- and the chart says so.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from ncu_advisor.render.axes import Axis, log_ticks, milliseconds, si, tick_marks
from ncu_advisor.render.units import quantity

WIDTH, HEIGHT = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 96, 24, 34, 52
#: ncu metric names the FLOP count is built from (FP32 add, mul, fma thread instructions).
FLOP_COUNTERS = (
    "sm__sass_thread_inst_executed_op_fadd_pred_on.sum",
    "sm__sass_thread_inst_executed_op_fmul_pred_on.sum",
    "sm__sass_thread_inst_executed_op_ffma_pred_on.sum",
)
#: The same as per-cycle rates, and the SM clock they are multiplied by (ncu's ``--set full`` roofline).
FLOP_RATES = (
    "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum.per_cycle_elapsed",
    "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum.per_cycle_elapsed",
    "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum.per_cycle_elapsed",
)
SMSP_CLOCK = "smsp__cycles_elapsed.avg.per_second"
DRAM_BYTES = ("dram__bytes_read.sum", "dram__bytes_write.sum")
DRAM_RATE = "dram__bytes.sum.per_second"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class ComputeRoof:
    """One horizontal roof: its name and peak in FLOP/s."""

    name: str
    flops_per_s: float


@dataclass(frozen=True)
class RooflinePoint:
    """One launch: achieved DRAM bytes/s, FLOP/s (None: not measured) and where the FLOPs come from."""

    label: str
    color: str
    duration_ms: float | None
    bytes_per_s: float | None
    flops_per_s: float | None
    flops_source: str

    @property
    def intensity(self) -> float | None:
        """FLOP per DRAM byte, None when either is unknown or zero."""
        if not self.flops_per_s or not self.bytes_per_s:
            return None
        return self.flops_per_s / self.bytes_per_s


@dataclass(frozen=True)
class RooflineChart:
    """Everything one kernel's chart draws. ``bandwidth`` in bytes/s, None for a GPU with no known figure."""

    kernel: str
    bandwidth: float | None
    bandwidth_source: str
    roofs: tuple[ComputeRoof, ...]
    points: tuple[RooflinePoint, ...]
    uses_dot: bool | None

    @property
    def placed(self) -> list[RooflinePoint]:
        """Points with both coordinates."""
        return [p for p in self.points if p.intensity is not None]

    @property
    def memory_only(self) -> list[RooflinePoint]:
        """Points with a bandwidth but no FLOPs: drawn as a dashed line."""
        return [p for p in self.points if p.intensity is None and p.bytes_per_s]

    def note(self) -> str:
        """What the chart shows and lacks, as one sentence for the caption."""
        parts = []
        if self.memory_only:
            parts.append(
                f"{len(self.memory_only)} launch(es) have no FLOP counts in the report: each dashed line is "
                "the launch's achieved DRAM bandwidth, and the launch lies somewhere on it (profile with "
                "--metrics " + ", ".join(FLOP_COUNTERS) + " to place it)"
            )
        if any(p.flops_source.startswith("pipe") for p in self.placed):
            parts.append("FLOP/s from a pipe's busy share are an upper estimate")
        if self.uses_dot and any(p.flops_source.startswith("FP32") for p in self.placed):
            parts.append("FP32 instruction counts leave out tensor-core work, so tl.dot points sit low")
        if not self.points:
            parts.append("no launch has DRAM bytes and a duration: nothing to place")
        return "; ".join(parts)


def _metric(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(name)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def launch_flops(metrics: dict[str, float], duration_ms: float | None) -> tuple[float | None, str]:
    """Achieved FP32 FLOP/s of one launch from its ncu metrics, and the source; (None, "") without them."""
    counts = [_metric(metrics, n) for n in FLOP_COUNTERS]
    if all(c is not None for c in counts) and duration_ms:
        add, mul, fma = (float(c or 0.0) for c in counts)
        return (add + mul + 2.0 * fma) / (duration_ms * 1e-3), "FP32 instruction counts"
    rates = [_metric(metrics, n) for n in (*FLOP_RATES, SMSP_CLOCK)]
    if all(r is not None for r in rates):
        add, mul, fma, clock = (float(r or 0.0) for r in rates)
        return (add + mul + 2.0 * fma) * clock, "FP32 instruction rates x SM clock"
    return None, ""


def launch_bandwidth(metrics: dict[str, float], duration_ms: float | None) -> float | None:
    """DRAM bytes read + written per second, from the byte counts and the duration, else ncu's rate."""
    moved = [_metric(metrics, n) for n in DRAM_BYTES]
    if any(m is not None for m in moved) and duration_ms:
        return sum(m or 0.0 for m in moved) / (duration_ms * 1e-3)
    return _metric(metrics, DRAM_RATE)


def launch_point(
    label: str, color: str, metrics: dict[str, float], duration_ms: float | None, roofline: Any = None
) -> RooflinePoint | None:
    """One launch's point; ``roofline`` is its ``analysis.roofline.Roofline`` when the analysis made one
    (its pipe-based FLOP/s is used when the instruction counts are absent). None: nothing to draw."""
    bandwidth = launch_bandwidth(metrics, duration_ms)
    flops, source = launch_flops(metrics, duration_ms)
    if flops is None and roofline is not None and getattr(roofline, "flops_per_s", None):
        share = getattr(roofline, "pipe_fraction", None) or 0.0
        flops = float(roofline.flops_per_s)
        source = f"pipe: {roofline.pipe} pipe {share:.0%} busy x its peak"
    if bandwidth is None and getattr(roofline, "bytes_per_s", None):
        bandwidth = float(roofline.bytes_per_s)
    if bandwidth is None:
        return None
    return RooflinePoint(label, color, duration_ms, bandwidth, flops if flops else None, source)


def roofs_for(spec: Any, uses_dot: bool | None) -> tuple[float | None, str, tuple[ComputeRoof, ...]]:
    """(bandwidth bytes/s, its source, compute roofs) of a ``gpus.GpuSpec`` (None: an unknown GPU).

    The tensor-core roof is drawn for ``tl.dot`` kernels, and when it is not known whether the kernel
    calls ``tl.dot`` (``uses_dot`` None), beside the FP32 roof.
    """
    if spec is None:
        return None, "unknown GPU", ()
    bandwidth, source = None, "no bandwidth figure"
    if getattr(spec, "copy_bw_gbs", None):
        bandwidth, source = float(spec.copy_bw_gbs) * 1e9, "measured copy bandwidth"
    elif getattr(spec, "mem_bw_gbs", None):
        bandwidth, source = float(spec.mem_bw_gbs) * 1e9, "datasheet bandwidth"
    roofs: list[ComputeRoof] = []
    if uses_dot is not False and getattr(spec, "bf16_tflops", None):
        roofs.append(ComputeRoof("tensor cores, BF16/FP16 dense", float(spec.bf16_tflops) * 1e12))
    if getattr(spec, "fp32_tflops", None):
        roofs.append(ComputeRoof("FP32", float(spec.fp32_tflops) * 1e12))
    return bandwidth, source, tuple(roofs)


def _ranges(chart: RooflineChart) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x range FLOP/B, y range FLOP/s), each a pair of powers of ten around roofs and points."""
    top = max((r.flops_per_s for r in chart.roofs), default=0.0)
    bandwidth = chart.bandwidth or max((p.bytes_per_s or 0.0 for p in chart.points), default=0.0) or 1e12
    ridge = top / bandwidth if top else 10.0
    xs = [0.01, ridge * 10.0] + [p.intensity for p in chart.placed if p.intensity]
    ys = [top * 2.0 if top else bandwidth * 10.0]
    ys += [p.flops_per_s for p in chart.placed if p.flops_per_s]
    x_lo, x_hi = min(xs) / 2.0, max(xs) * 2.0
    ys.append(bandwidth * x_lo)
    ys += [(p.bytes_per_s or 0.0) * x_lo for p in chart.memory_only if p.bytes_per_s]
    y_lo, y_hi = min(y for y in ys if y > 0) / 2.0, max(ys) * 1.5
    x_ticks, y_ticks = log_ticks(x_lo, x_hi), log_ticks(y_lo, y_hi)
    return (x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1])


def _intensity_label(value: float) -> str:
    return f"{value:g}"


def _roof_lines(chart: RooflineChart, x: Axis, y: Axis) -> list[str]:
    out: list[str] = []
    top = max((r.flops_per_s for r in chart.roofs), default=None)
    if chart.bandwidth:
        end = min(x.high, top / chart.bandwidth) if top else x.high
        x0, y0, x1, y1 = x(x.low), y(chart.bandwidth * x.low), x(end), y(chart.bandwidth * end)
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        label = f"DRAM {si(chart.bandwidth, 'B/s')} ({chart.bandwidth_source})"
        out.append(
            f'<line class="roof memory-roof" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}"/>'
            f'<text class="roof-label" transform="translate({x0 + 8:.1f},{y0 - 6:.1f}) rotate({angle:.1f})">'
            f"{_e(label)}</text>"
        )
    for i, roof in enumerate(chart.roofs):
        start = roof.flops_per_s / chart.bandwidth if chart.bandwidth else x.low
        x0, x1, at = x(max(start, x.low)), x(x.high), y(roof.flops_per_s)
        dash = ' stroke-dasharray="6 3"' if i else ""
        out.append(
            f'<line class="roof compute-roof" x1="{x0:.1f}" y1="{at:.1f}" x2="{x1:.1f}" y2="{at:.1f}"{dash}/>'
            f'<text class="roof-label" x="{x1 - 4:.1f}" y="{at - 5:.1f}" text-anchor="end">'
            f"{_e(roof.name)} {si(roof.flops_per_s, 'FLOP/s')}</text>"
        )
    return out


def _marks(chart: RooflineChart, x: Axis, y: Axis) -> list[str]:
    out: list[str] = []
    top = max((r.flops_per_s for r in chart.roofs), default=None)
    for i, p in enumerate(chart.memory_only):
        rate = p.bytes_per_s or 0.0
        end = min(x.high, top / rate) if top else x.high
        tip = f"{p.label}: DRAM {si(rate, 'B/s')}, FLOPs not measured"
        x0, y0, x1, y1 = x(x.low), y(rate * x.low), x(end), y(rate * end)
        out.append(
            f'<line class="achieved-bandwidth" stroke="{p.color}" x1="{x0:.1f}" y1="{y0:.1f}" '
            f'x2="{x1:.1f}" y2="{y1:.1f}"><title>{_e(tip)}</title></line>'
        )
        # The label sits on the line, staggered along it so several launches stay readable.
        at = 0.3 + 0.1 * (i % 4)
        lx, ly = x0 + (x1 - x0) * at, y0 + (y1 - y0) * at
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        out.append(
            f'<text class="line-label" fill="{p.color}" transform="translate({lx:.1f},{ly + 12:.1f}) '
            f'rotate({angle:.1f})">{_e(p.label[:28])} {_e(si(rate, "B/s"))}</text>'
        )
    for p in chart.placed:
        ai, flops = p.intensity or 0.0, p.flops_per_s or 0.0
        tip = (
            f"{p.label}: {quantity(ai, 'FLOP/B')}, {si(flops, 'FLOP/s')}, "
            f"DRAM {si(p.bytes_per_s or 0.0, 'B/s')} "
            f"({p.flops_source})"
        )
        out.append(
            f'<circle class="point" cx="{x(ai):.1f}" cy="{y(flops):.1f}" r="6" fill="{p.color}" '
            f'stroke="#222"><title>{_e(tip)}</title></circle>'
        )
    return out


def chart_svg(chart: RooflineChart, svg_id: str) -> str:
    """The chart as one ``<svg class="plot roofline">`` element (fixed viewBox, scales to its container)."""
    (x_lo, x_hi), (y_lo, y_hi) = _ranges(chart)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x = Axis(x_lo, x_hi, LEFT, pw, log=True)
    y = Axis(y_lo, y_hi, TOP, ph, log=True, invert=True)
    title = f"Roofline: {chart.kernel}"
    short = title if len(title) <= 70 else title[:69] + "…"  # the section heading has the full name
    out = [
        f'<svg id="{_e(svg_id)}" class="plot roofline" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>',
    ]
    out += tick_marks(x, log_ticks(x_lo, x_hi), _intensity_label, vertical=False, other=(TOP, TOP + ph))
    flops_label = lambda v: si(v, "FLOP/s")  # noqa: E731 - one-line label function
    out += tick_marks(y, log_ticks(y_lo, y_hi), flops_label, vertical=True, other=(LEFT, LEFT + pw))
    out += _roof_lines(chart, x, y)
    out += _marks(chart, x, y)
    out += [
        f'<text class="axis-title" x="{LEFT + pw / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
        "arithmetic intensity (FLOP per DRAM byte, log scale)</text>",
        f'<text class="axis-title" transform="translate(16,{TOP + ph / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">achieved FLOP/s (log scale)</text>',
        f'<text class="ptitle" x="{LEFT}" y="20">{_e(short)}</text>',
        "</svg>",
    ]
    return "\n".join(out)


def _pct(value: float | None, roof: float | None) -> str:
    if value is None or not roof:
        return ""
    return f" ({value / roof:.0%} of roof)"


def chart_table(chart: RooflineChart) -> str:
    """The numbers behind the chart: one row per launch (time, DRAM bytes/s, FLOP/s, intensity, source)."""
    top = chart.roofs[-1].flops_per_s if chart.roofs else None  # FP32 comes last
    rows = []
    for p in chart.points:
        flops = "not measured" if p.flops_per_s is None else si(p.flops_per_s, "FLOP/s")
        if p.flops_per_s is not None and p.flops_source.startswith("FP32"):
            flops += _pct(p.flops_per_s, top)
        rows.append(
            "<tr>"
            f'<td><span class="swatch" style="background:{p.color}"></span>{_e(p.label)}</td>'
            f"<td>{'' if p.duration_ms is None else _e(milliseconds(p.duration_ms))}</td>"
            f"<td>{_e(si(p.bytes_per_s or 0.0, 'B/s'))}{_e(_pct(p.bytes_per_s, chart.bandwidth))}</td>"
            f"<td>{_e(flops)}</td>"
            f"<td>{'' if p.intensity is None else quantity(p.intensity, 'FLOP/B')}</td>"
            f"<td>{_e(p.flops_source)}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>launch</th><th>time</th><th>DRAM read + write</th><th>FLOP/s</th>"
        "<th>intensity</th><th>FLOPs from</th></tr>"
    )
    return f'<div class="table-scroll"><table class="roofline-numbers">{head}{"".join(rows)}</table></div>'
