"""Axis ticks for the SVG plots: readable values with their units, on linear and logarithmic axes.

A linear axis gets 4-8 "nice" ticks (steps of 1, 2 or 5 x 10^k) from zero or the data's low end to at least
its high end; a log axis gets one tick per decade. Labels carry an SI prefix and the unit
(``1 TFLOP/s``, ``250 us``, ``0.1 FLOP/B``), so no axis ever shows a bare ``7.65``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ncu_advisor.render.units import milliseconds, si

#: Grid line colour, inline so a standalone SVG (tune.svg) draws its grid without the page's CSS.
GRID = "#e6e6e6"

__all__ = ["GRID", "Axis", "linear_ticks", "log_ticks", "milliseconds", "nice_step", "si", "tick_marks"]


def nice_step(span: float, target: int = 5) -> float:
    """A step of 1, 2 or 5 x 10^k giving about ``target`` intervals over ``span`` (> 0)."""
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 5.0, 10.0):
        if raw <= multiple * power:
            return multiple * power
    return 10.0 * power  # pragma: no cover - 10 x power always covers raw


def linear_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Nice ticks covering [low, high]: the first <= low, the last >= high (4-8 of them for target 5).

    Raises:
        ValueError: ``high`` is not above ``low`` or either is not finite.
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(f"an axis needs low < high, got {low!r}, {high!r}")
    step = nice_step(high - low, target)
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(first + step * len(ticks))
    return [round(t, 12) for t in ticks]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten from the one at or below ``low`` to the one at or above ``high`` (both > 0)."""
    if low <= 0 or high <= low:
        raise ValueError(f"a log axis needs 0 < low < high, got {low!r}, {high!r}")
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**k for k in range(first, max(last, first + 1) + 1)]


@dataclass(frozen=True)
class Axis:
    """Maps data values to pixels along one axis (``start`` is where ``low`` lands, ``size`` the length;
    ``invert`` for y, where pixels grow downwards)."""

    low: float
    high: float
    start: float
    size: float
    log: bool = False
    invert: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            lo, hi = math.log10(self.low), math.log10(self.high)
            at = (math.log10(min(max(value, self.low), self.high)) - lo) / (hi - lo)
        else:
            at = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
        return self.start + self.size * ((1.0 - at) if self.invert else at)


def tick_marks(
    axis: Axis,
    ticks: list[float],
    label: Callable[[float], str],
    *,
    vertical: bool,
    other: tuple[float, float],
) -> list[str]:
    """SVG grid lines and labels for ``ticks``; ``other`` is the (start, end) of the perpendicular axis."""
    out: list[str] = []
    for tick in ticks:
        at = axis(tick)
        if vertical:  # a y axis: horizontal grid lines, labels left of the plot
            out.append(
                f'<line class="grid" stroke="{GRID}" x1="{other[0]:.1f}" y1="{at:.1f}" '
                f'x2="{other[1]:.1f}" y2="{at:.1f}"/>'
                f'<text class="tick" x="{other[0] - 6:.1f}" y="{at + 4:.1f}" text-anchor="end">'
                f"{label(tick)}</text>"
            )
        else:
            out.append(
                f'<line class="grid" stroke="{GRID}" x1="{at:.1f}" y1="{other[0]:.1f}" '
                f'x2="{at:.1f}" y2="{other[1]:.1f}"/>'
                f'<text class="tick" x="{at:.1f}" y="{other[1] + 16:.1f}" text-anchor="middle">'
                f"{label(tick)}</text>"
            )
    return out
