"""``compare`` as text (terminal), markdown (PR comment) and JSON: pure functions of a Comparison."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ncu_advisor.analysis.compare import NOISE_K, Comparison
from ncu_advisor.analysis.summary import REFERENCE_NAME
from ncu_advisor.model import Finding
from ncu_advisor.render.units import milliseconds


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _time(value: float | None) -> str:
    """A kernel's ncu duration (ms) in the unit that fits it: a 3 us kernel reads 3.1 us, not 0.003."""
    return "–" if value is None else milliseconds(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1%}"


#: How a metric delta reads, with its unit: percentage points for the percentages, a count for registers.
DELTA_TEXT = {
    "dram_pct": "DRAM {:+.1f} pp",
    "sm_pct": "SM {:+.1f} pp",
    "l2_hit_pct": "L2 hit {:+.1f} pp",
    "warps_active_pct": "active warps {:+.1f} pp",
    "registers": "{:+.0f} registers/thread",
}


def _metric_text(deltas: dict[str, float]) -> str:
    parts = [DELTA_TEXT.get(k, k + " {:+.3g}").format(v) for k, v in deltas.items() if abs(v) >= 0.05]
    return ", ".join(parts) or "–"


def render_text(result: Comparison) -> str:
    """Plain text for a terminal."""
    lines = [
        f"compare {result.base} -> {result.new} on {result.gpu} (threshold {result.threshold_pct:g}%, "
        f"noise bar {NOISE_K:g} x pooled MAD spread)"
    ]
    lines += [f"warning: {w}" for w in result.warnings]
    width = max([len(v.name) for v in result.variants] + [7])
    lines.append(f"{'variant':<{width}}  {'base ms':>9}  {'new ms':>9}  {'change':>7}  {'bar':>6}  verdict")
    for v in result.variants:
        bar = "–" if v.bar is None else f"{v.bar:.1%}"
        flag = "  REGRESSION: " + "; ".join(v.reasons) if v.regression else ""
        if v.name == REFERENCE_NAME and v.verdict in ("slower", "faster"):
            flag = "  (the reference: not gated, see the warning)"
        lines.append(
            f"{v.name:<{width}}  {_ms(v.base_ms):>9}  {_ms(v.new_ms):>9}  {_pct(v.change):>7}  {bar:>6}  "
            f"{v.verdict}{flag}"
        )
    if result.kernels:
        lines.append("")
        lines.append("kernels (one ncu measurement each: threshold only):")
        for k in result.kernels:
            lines.append(
                f"  {k.variant} {k.kernel[:50]}#{k.occurrence}: {_time(k.base_ms)} -> {_time(k.new_ms)} "
                f"{_pct(k.change)} {k.verdict}; {_metric_text(k.metric_deltas)}"
            )
    for label, names in (("only in BASE", result.only_in_base), ("only in NEW", result.only_in_new)):
        if names:
            lines.append(f"{label} (not compared): {', '.join(names)}")
    lines += _findings_text(result)
    lines.append(f"{len(result.regressions)} regression(s)")
    return "\n".join(lines) + "\n"


def _finding_line(finding: Finding) -> str:
    return (
        f"{finding.rule} {finding.name} ({finding.severity.value}) on {finding.variant} "
        f"{finding.kernel[:50]}#{finding.launch}"
    )


def _findings_text(result: Comparison) -> list[str]:
    lines = [
        f"findings in NEW: {len(result.findings)} (+{len(result.library_findings)} on library kernels); "
        f"{len(result.findings_added)} new, {len(result.findings_resolved)} resolved"
    ]
    lines += [f"  new: {_finding_line(f)}" for f in result.findings_added]
    lines += [f"  resolved: {_finding_line(f)}" for f in result.findings_resolved]
    return lines


def _correct_word(correct: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "?"}[correct]


def render_markdown(result: Comparison) -> str:
    """Markdown for a pull-request comment."""
    verdict_icon = {"faster": "🟢 faster", "slower": "🔴 slower", "same": "⚪ same", "unknown": "❔ unknown"}
    lines = [
        f"## ncu-advisor compare on {result.gpu}",
        "",
        f"`{result.base}` → `{result.new}`; threshold {result.threshold_pct:g}%, a change counts when it "
        f"exceeds max(threshold, {NOISE_K:g} × pooled robust spread of the repetition medians).",
        "",
    ]
    lines += [f"> ⚠️ {w}" for w in result.warnings]
    lines.append(
        "| variant | base ms | new ms | change | bar | verdict | correct "
        "| key metric deltas (longest kernel) |"
    )
    lines.append("|---|---:|---:|---:|---:|---|---|---|")
    for v in result.variants:
        bar = "–" if v.bar is None else f"{v.bar:.1%}"
        correct = (
            "reference"
            if v.name == REFERENCE_NAME
            else f"{_correct_word(v.base_correct)} → {_correct_word(v.new_correct)}"
        )
        verdict = verdict_icon.get(v.verdict, v.verdict) + (" **regression**" if v.regression else "")
        if v.name == REFERENCE_NAME and v.verdict in ("slower", "faster"):
            verdict += " (reference: not gated)"
        lines.append(
            f"| {v.name} | {_ms(v.base_ms)} | {_ms(v.new_ms)} | {_pct(v.change)} | {bar} | {verdict} "
            f"| {correct} | {_metric_text(v.metric_deltas)} |"
        )
    if result.kernels:
        lines += [
            "",
            "<details><summary>Per kernel (ncu durations, threshold only)</summary>",
            "",
            "| variant | kernel | base | new | change | verdict | metric deltas |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for k in result.kernels:
            lines.append(
                f"| {k.variant} | `{k.kernel[:60]}` #{k.occurrence} | {_time(k.base_ms)} | {_time(k.new_ms)} "
                f"| {_pct(k.change)} | {k.verdict} | {_metric_text(k.metric_deltas)} |"
            )
        lines += ["", "</details>"]
    for label, names in (("Only in BASE", result.only_in_base), ("Only in NEW", result.only_in_new)):
        if names:
            lines += ["", f"{label} (not compared): {', '.join(names)}"]
    lines += ["", *[f"- {line.strip()}" for line in _findings_text(result)]]
    lines += [
        "",
        f"**{len(result.regressions)} regression(s)**"
        + (
            ": " + "; ".join(f"{v.name} ({'; '.join(v.reasons)})" for v in result.regressions)
            if result.regressions
            else ""
        ),
    ]
    return "\n".join(lines) + "\n"


def _finding_dict(finding: Finding, library: bool = False) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "name": finding.name,
        "severity": finding.severity.value,
        "variant": finding.variant,
        "kernel": finding.kernel,
        "launch": finding.launch,
        "message": finding.message,
        "library": library,
    }


#: ``schema_version`` of ``compare --format json`` (ncu_advisor/schemas/comparison.schema.json).
COMPARISON_SCHEMA_VERSION = 1


def render_json(result: Comparison) -> str:
    """JSON: the ``Comparison`` fields (findings as in ``report --format json``, shortened), plus
    ``regressions`` (names) and ``exit_code``."""
    document = {"schema_version": COMPARISON_SCHEMA_VERSION, **asdict(result)}
    document["findings"] = [_finding_dict(f) for f in result.findings] + [
        _finding_dict(f, library=True) for f in result.library_findings
    ]
    document.pop("library_findings")
    document["findings_added"] = [_finding_dict(f) for f in result.findings_added]
    document["findings_resolved"] = [_finding_dict(f) for f in result.findings_resolved]
    document["regressions"] = [v.name for v in result.regressions]
    document["exit_code"] = result.exit_code
    document["noise_k"] = NOISE_K
    return json.dumps(document, indent=2, default=str) + "\n"
