"""Reports of a `tune` run directory (``tune.json``): markdown, self-contained HTML, JSON and CSV.

The HTML page embeds the time-per-trial plot (``ncu_advisor.render.plot.trajectory_svg``) inline, beside the
trajectory table, the metrics each kept trial moved, the rules' notes per configuration, and the final
configuration ready to paste. Like the profile-run report it needs no network and runs no script from
outside the file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ncu_advisor.analysis.trajectory import Trajectory, Trial, summary_rows
from ncu_advisor.model import LaunchConfig
from ncu_advisor.render.paste import METHOD_LAUNCH, paste_text
from ncu_advisor.render.plot import trajectory_svg
from ncu_advisor.render.report_html import html_page, markdown_html
from ncu_advisor.render.units import evidence_unit, quantity

#: Formats a tune run can be rendered in (JUnit and SARIF describe findings of a profile run).
TUNE_FORMATS = ("md", "html", "json", "csv")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def start_trial(trajectory: Trajectory) -> Trial | None:
    return next((t for t in trajectory.trials if t.verdict == "start"), None)


def speedup(trajectory: Trajectory) -> float | None:
    start = start_trial(trajectory)
    if start is None or not start.median_ms or not trajectory.best_median_ms:
        return None
    return start.median_ms / trajectory.best_median_ms


def paste(trajectory: Trajectory) -> str | None:
    """The best configuration as the tune command printed it (the pin method decides the form)."""
    if trajectory.best is None:
        return None
    options = trajectory.options
    return paste_text(
        trajectory.best,
        trajectory.kernel,
        str(options.get("method") or METHOD_LAUNCH),
        options.get("autotune_key"),
        options.get("launch_line"),
    )


def render_tune_markdown(trajectory: Trajectory, run_dir: Path | None = None) -> str:
    """The tune run as GitHub-flavoured markdown (pastes into a PR)."""
    env = trajectory.environment
    gpu = (env.get("gpu") or {}).get("name") or "unknown GPU"
    start = start_trial(trajectory)
    gain = speedup(trajectory)
    recommender = "ncu profiles" if trajectory.options.get("ncu") else "Triton n_regs/n_spills"
    lines = [
        f"# ncu-advisor tune: {trajectory.variant} / {trajectory.kernel}",
        "",
        f"- kernel file: `{trajectory.kernel_file}`" + (f" (run `{run_dir}`)" if run_dir else ""),
        f"- GPU: {gpu}; torch {env.get('torch', '?')}, triton {env.get('triton', '?')}",
        f"- start: `{start.config.label()}` {_ms(start.median_ms)} ms" if start else "- start: not measured",
        (
            f"- best: `{trajectory.best.label()}` {_ms(trajectory.best_median_ms)} ms"
            + (f" (**{gain:.2f}x** vs start)" if gain else "")
            if trajectory.best
            else "- best: none measured"
        ),
        f"- trials: {trajectory.measured_trials()} measured, {len(trajectory.trials)} in all; "
        f"stopped: {trajectory.stop_reason or '-'}" + ("" if trajectory.complete else " (incomplete)"),
        _space_line(trajectory),
        f"- recommendations from: {recommender}"
        f"; a candidate is kept when it beats the best by {trajectory.options.get('min_gain', 0.02):.0%} "
        "beyond the measured noise",
        "",
        "## Trials",
        "",
        "| # | config | rule | status | median ms | vs start | regs | verdict | why |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary_rows(trajectory):
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    row["trial"],
                    f"`{row['config']}`",
                    row["rule"],
                    row["status"],
                    _ms(row["median_ms"]),
                    "-" if row["vs_start"] is None else f"{row['vs_start']:.2f}x",
                    "-" if row["regs"] is None else row["regs"],
                    row["verdict"],
                    row["why"] or "",
                )
            )
            + " |"
        )
    lines += _profiled_section(trajectory)
    kept = [t for t in trajectory.trials if t.verdict == "kept" and t.metrics_moved]
    if kept:
        lines += ["", "## What the kept trials moved", ""]
        for trial in kept:
            moved = ", ".join(
                f"`{name}` {_num(before, name)} → {_num(after, name)}"
                for name, (before, after) in sorted(trial.metrics_moved.items())
            )
            lines.append(f"- #{trial.index} `{trial.config.label()}` ({trial.rule}): {moved}")
    recommendations = trajectory.options.get("recommendations") or []
    if recommendations:
        lines += ["", "## What the rules said about each new best", ""]
        for item in recommendations:
            config = item.get("config") or {}
            label = _label(config)
            notes = item.get("notes") or []
            lines.append(f"- `{label}`:" + ("" if notes else " no rule fired"))
            lines.extend(f"  - {_cell(note)}" for note in notes)
    text = paste(trajectory)
    if text:
        lines += ["", "## Final configuration", "", "```python", text, "```"]
    return "\n".join(lines) + "\n"


def _space_line(trajectory: Trajectory) -> str:
    size = trajectory.options.get("space_size")
    space = trajectory.options.get("space") or {}
    if not size:
        return "- search space: not recorded"
    dims = "; ".join(f"{name} {values}" for name, values in space.items())
    share = trajectory.measured_trials() / size if size else 0.0
    return f"- search space: {size} configs ({dims}); measured {share:.0%} of it"


def _profiled_section(trajectory: Trajectory) -> list[str]:
    """The start and the final configuration under ncu: what moved between them, which findings went."""
    profiled = trajectory.options.get("profiled") or {}
    start, final = profiled.get("start") or {}, profiled.get("final") or {}
    if not start or not final:
        return []
    gain = speedup(trajectory)
    lines = [
        "",
        "## Start and final configuration under ncu",
        "",
        f"ncu profiled only these two (`{_label(start.get('config') or {})}` and "
        f"`{_label(final.get('config') or {})}`); the final one wins by "
        + (f"{gain:.2f}x in do_bench time." if gain else "an unmeasured margin."),
    ]
    moved = profiled.get("moved") or {}
    if moved:
        lines += ["", "| metric | start | final | change |", "|---|---:|---:|---:|"]
        for name, (before, after) in sorted(moved.items(), key=lambda kv: -abs(_rel(kv[1]))):
            lines.append(
                f"| `{name}` | {_num(before, name)} | {_num(after, name)} | {_rel([before, after]):+.0%} |"
            )
    else:
        lines.append("No profiled metric moved by 5% or more.")
    gone = [n for n in start.get("findings") or [] if n.split(":")[0] not in _rule_ids(final)]
    if gone:
        lines += ["", "Findings of the start that the final configuration no longer triggers:", ""]
        lines += [f"- {_cell(note)}" for note in gone]
    return lines


def _rule_ids(profiled: dict[str, Any]) -> set[str]:
    return {str(note).split(":")[0] for note in profiled.get("findings") or []}


def _rel(pair: Any) -> float:
    before, after = pair
    return (float(after) - float(before)) / max(abs(float(before)), 1e-12)


def _num(value: Any, name: str = "") -> str:
    """A metric value with its unit (``render.units``; the metric catalogue's unit of ``name``)."""
    return quantity(value, evidence_unit(name)) if isinstance(value, (int, float)) else str(value)


def _label(config: dict[str, Any]) -> str:
    try:
        return LaunchConfig.from_dict(config).label()
    except (KeyError, TypeError, ValueError):
        return json.dumps(config, sort_keys=True)


def render_tune_html(trajectory: Trajectory, run_dir: Path | None = None) -> str:
    """One self-contained HTML page: the time-per-trial plot inline, then the markdown report as HTML."""
    title = f"ncu-advisor tune: {trajectory.variant} / {trajectory.kernel}"
    legend = (
        '<p class="legend">Bars: median ms of each trial, coloured by verdict '
        '(<span style="color:#4e79a7">start</span>, <span style="color:#59a14f">kept</span>, '
        '<span style="color:#bab0ac">reverted</span>, <span style="color:#e15759">rejected</span>); '
        "the dashed line is the best. Hover a bar for its config, rule and verdict.</p>"
    )
    markdown = render_tune_markdown(trajectory, run_dir)
    body_markdown = markdown.split("\n", 1)[1] if markdown.startswith("# ") else markdown
    return html_page(
        title,
        [
            legend,
            f'<figure id="tune-trials">{trajectory_svg(trajectory)}</figure>',
            markdown_html(body_markdown),
        ],
    )


#: ``schema_version`` of a tune run's ``report --format json`` (ncu_advisor/schemas/tune-report.schema.json).
TUNE_REPORT_SCHEMA_VERSION = 1


def render_tune_json(trajectory: Trajectory) -> str:
    """``schema_version``, the trajectory as written, plus the summary rows and the paste text."""
    data = {"schema_version": TUNE_REPORT_SCHEMA_VERSION, **trajectory.to_json()}
    data["summary"] = summary_rows(trajectory)
    data["speedup_vs_start"] = speedup(trajectory)
    data["paste"] = paste(trajectory)
    return json.dumps(data, indent=2, default=str) + "\n"


def render_tune_csv(trajectory: Trajectory) -> str:
    """One row per trial (the summary table's columns)."""
    rows = summary_rows(trajectory)
    out = io.StringIO()
    columns = ["trial", "config", "rule", "status", "median_ms", "vs_start", "regs", "verdict", "why"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in columns})
    return out.getvalue()


def render_tune(fmt: str, trajectory: Trajectory, run_dir: Path | None = None) -> str:
    if fmt == "md":
        return render_tune_markdown(trajectory, run_dir)
    if fmt == "html":
        return render_tune_html(trajectory, run_dir)
    if fmt == "csv":
        return render_tune_csv(trajectory)
    return render_tune_json(trajectory)
