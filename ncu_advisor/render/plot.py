"""A self-contained SVG of a tune trajectory: one bar per trial (median ms), coloured by verdict.

Written as ``tune.svg`` beside ``tune.json``; ``trajectory_svg`` is what an HTML report can embed.
No plotting library: plain SVG text, every value escaped.
"""

from __future__ import annotations

from html import escape

from ncu_advisor.analysis.trajectory import Trajectory
from ncu_advisor.render.axes import Axis, linear_ticks, milliseconds, tick_marks

COLOURS = {"start": "#4e79a7", "kept": "#59a14f", "reverted": "#bab0ac", "rejected": "#e15759"}
WIDTH_PER_TRIAL = 36
HEIGHT = 220
MARGIN_LEFT = 64
MARGIN_BOTTOM = 40
MARGIN_TOP = 28
MIN_WIDTH = 480


def trajectory_svg(trajectory: Trajectory) -> str:
    """The time-per-trial plot: bars of the median ms (rejected: a short red mark), the best dashed."""
    trials = trajectory.trials
    timed = [t.median_ms for t in trials if t.median_ms]
    ticks = linear_ticks(0.0, max(timed) * 1.05 if timed else 1.0)  # 4-8 ticks in ms/us, never one bare top
    top = ticks[-1]
    plot_height = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    y_axis = Axis(0.0, top, MARGIN_TOP, plot_height, invert=True)
    # at least wide enough for the title and the legend row under the axis
    width = max(MARGIN_LEFT + WIDTH_PER_TRIAL * max(len(trials), 1) + 16, MIN_WIDTH)
    title = f"tune {trajectory.variant} / {trajectory.kernel}: median ms per trial"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif" font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN_LEFT}" y="14" font-size="12">{escape(title)}</text>',
        f'<line x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" x2="{width - 8}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#333"/>',
        *tick_marks(y_axis, ticks, milliseconds, vertical=True, other=(MARGIN_LEFT, width - 8)),
    ]
    for position, trial in enumerate(trials):
        x = MARGIN_LEFT + position * WIDTH_PER_TRIAL + 4
        colour = COLOURS.get(trial.verdict, "#999")
        label = escape(f"#{trial.index} {trial.config.label()} [{trial.rule}] {trial.verdict}: {trial.why}")
        if trial.median_ms:
            bar = plot_height * trial.median_ms / top
            y = HEIGHT - MARGIN_BOTTOM - bar
            parts.append(
                f'<rect class="bar" x="{x}" y="{y:.1f}" width="{WIDTH_PER_TRIAL - 8}" height="{bar:.1f}" '
                f'fill="{colour}">'
                f"<title>{label} ({trial.median_ms:.4g} ms)</title></rect>"
            )
        else:
            parts.append(
                f'<rect class="bar" x="{x}" y="{HEIGHT - MARGIN_BOTTOM - 4}" '
                f'width="{WIDTH_PER_TRIAL - 8}" height="4" '
                f'fill="{colour}"><title>{label}</title></rect>'
            )
        parts.append(
            f'<text x="{x + (WIDTH_PER_TRIAL - 8) / 2}" y="{HEIGHT - MARGIN_BOTTOM + 12}" '
            f'text-anchor="middle">{trial.index}</text>'
        )
    if trajectory.best_median_ms:
        y = HEIGHT - MARGIN_BOTTOM - plot_height * trajectory.best_median_ms / top
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#59a14f" '
            f'stroke-dasharray="4 3"><title>best {trajectory.best_median_ms:.4g} ms</title></line>'
        )
    legend_x = MARGIN_LEFT
    for verdict, colour in COLOURS.items():
        parts.append(f'<rect x="{legend_x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{HEIGHT - 5}">{verdict}</text>')
        legend_x += 70
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
