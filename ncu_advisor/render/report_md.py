"""Markdown report for a GitHub job summary or a pull-request comment."""

from __future__ import annotations

from ncu_advisor.analysis.report_data import ReportData, VariantSummary, gpu_name

#: How many findings per variant the markdown lists in full (the rest are counted).
MAX_FINDINGS_PER_VARIANT = 8


def _num(value: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def short_kernel(name: str, width: int = 60) -> str:
    """A kernel name cut to ``width`` characters (cuDNN names run past 150)."""
    return name if len(name) <= width else name[: width - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _correct(variant: VariantSummary) -> str:
    if variant.is_reference:
        return "reference"
    if variant.correct is True:
        return "✅ yes"
    if variant.correct is False:
        return "❌ no"
    return f"⚠️ {variant.status}"


def render_markdown(data: ReportData) -> str:
    """Render the report as GitHub-flavoured markdown.

    Sections: header (GPU, versions, options), the variant table, then per variant its findings with
    evidence and its proposed ``@triton.autotune`` block.
    """
    lines: list[str] = []
    gpu = gpu_name(data)
    lines.append(f"## ncu-advisor report: `{data.kernel_path or data.run_path.name}` on {gpu}")
    lines.append("")
    versions = ", ".join(f"{k} {v}" for k, v in data.versions.items() if v and k != "ncu_path")
    options = ", ".join(
        f"{k}={data.options[k]}" for k in ("clock_control", "cache_control", "reps") if k in data.options
    )
    lines.append(
        f"Run `{data.run_path.name}`" + (f" recorded {data.created}" if data.created else "") + ".  "
    )
    gpu_facts = ", ".join(
        f"{label} {data.gpu[key]}"
        for key, label in (("cc", "CC"), ("sm_count", "SMs"), ("driver", "driver"))
        if data.gpu.get(key)
    )
    lines.append(f"GPU: {gpu}" + (f" ({gpu_facts})" if gpu_facts else "") + ".  ")
    if versions:
        lines.append(f"Versions: {versions}.  ")
    if options:
        lines.append(f"Options: {options}.")
    lines.append("")
    lines.append(
        "| variant | correct | median ms | vs reference | registers | occupancy limiter | DRAM % | SM % "
        "| L2 hit % | longest kernel |"
    )
    lines.append("|---|---|---:|---:|---:|---|---:|---:|---:|---|")
    for v in data.variants:
        speed = "–" if v.speedup_vs_reference is None else f"{v.speedup_vs_reference:.2f}×"
        lines.append(
            f"| {v.name} | {_correct(v)} | {_num(v.median_ms, '.3f')} | {speed} | {_num(v.registers, '.0f')} "
            f"| {v.occupancy_limiter or '–'} | {_num(v.dram_pct)} | {_num(v.sm_pct)} | {_num(v.l2_hit_pct)} "
            f"| `{_cell(short_kernel(v.main_kernel or '–'))}` |"
        )
    lines.append("")
    lines.append(
        "Median ms: median of the per-repetition medians in timings.csv. Registers, limiter and "
        "throughputs: the variant's longest kernel launch."
    )
    lines.append("")
    problems = [v for v in data.variants if not v.is_reference and v.correct is not True]
    for v in problems:
        lines.append(f"> **{v.name}**: {v.status}" + (f": {_cell(v.reason)}" if v.reason else ""))
        lines.append("")
    total = len(data.findings)
    lines.append(f"### Findings ({total})")
    lines.append("")
    if not total:
        lines.append("No rule fired.")
        lines.append("")
    for v in data.variants:
        findings = v.findings
        if not findings and not v.autotune_blocks:
            continue
        lines.append(f"#### {v.name}")
        lines.append("")
        for f in findings[:MAX_FINDINGS_PER_VARIANT]:
            where = data.location_of(f)
            at = f" ({where.path}:{where.line})" if where else ""
            lines.append(
                f"- **{f.rule} {f.name}** · {f.severity.value} · `{short_kernel(f.kernel)}` "
                f"launch {f.launch}{at}: {_cell(f.message)}"
            )
            lines.append(f"  - Do: {_cell(f.recommendation)}")
            evidence = ", ".join(
                f"`{k}`={_fmt_evidence(val)}" for k, val in f.evidence.items() if k != "condition"
            )
            if evidence:
                lines.append(f"  - Evidence: {evidence}; fired on `{f.evidence.get('condition', '')}`")
            if f.estimated_effect:
                lines.append(
                    f"  - Estimated effect: up to {f.estimated_effect:.0%} of the {f.effect_kind} time"
                )
        if len(findings) > MAX_FINDINGS_PER_VARIANT:
            lines.append(
                f"- … and {len(findings) - MAX_FINDINGS_PER_VARIANT} more (see the JSON or SARIF report)"
            )
        for kernel, block in v.autotune_blocks.items():
            lines.append("")
            lines.append(f"Proposed configs for `{kernel}`:")
            lines.append("")
            lines.append("```python")
            lines.append(block.rstrip())
            lines.append("```")
        lines.append("")
    for note in data.notes:
        lines.append(f"_Note: {note}_  ")
    return "\n".join(lines).rstrip() + "\n"


def _fmt_evidence(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
