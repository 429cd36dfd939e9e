"""Markdown report for a GitHub job summary or a pull-request comment."""

from __future__ import annotations

import re

from ncu_advisor.analysis.result import Analysis, gpu_name
from ncu_advisor.analysis.summary import VariantSummary
from ncu_advisor.model import Finding
from ncu_advisor.render import skipped as skips
from ncu_advisor.render.units import EvidenceUnits

#: How many findings per variant the markdown lists in full (the rest are counted).
MAX_FINDINGS_PER_VARIANT = 8


def _num(value: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    """A table cell under a header that names the unit (``median ms``, ``DRAM %``); ``–`` when unknown."""
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def short_kernel(name: str, width: int = 60) -> str:
    """A kernel name cut to ``width`` characters (cuDNN names run past 150)."""
    return name if len(name) <= width else name[: width - 1] + "…"


def _code(text: str) -> str:
    """``text`` as a markdown inline code span whose fence is longer than any run of backticks in it (a
    kernel name with a backtick no longer ends the span early); padded when it starts or ends with one."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


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


def _header(data: Analysis) -> list[str]:
    gpu = gpu_name(data)
    lines = [f"## ncu-advisor report: {_code(data.kernel_path or data.run_path.name)} on {gpu}", ""]
    versions = ", ".join(f"{k} {v}" for k, v in data.versions.items() if v and k != "ncu_path")
    options = ", ".join(
        f"{k}={data.options[k]}" for k in ("clock_control", "cache_control", "reps") if k in data.options
    )
    lines.append(
        f"Run {_code(data.run_path.name)}" + (f" recorded {data.created}" if data.created else "") + ".  "
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
    return [*lines, ""]


def _variant_table(data: Analysis) -> list[str]:
    lines = [
        "| variant | correct | median ms | vs reference | registers | occupancy limiter | DRAM % | SM % "
        "| L2 hit % | longest kernel |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for v in data.variants:
        speed = "–" if v.speedup_vs_reference is None else f"{v.speedup_vs_reference:.2f}×"
        lines.append(
            f"| {v.name} | {_correct(v)} | {_num(v.median_ms, '.3f')} | {speed} | {_num(v.registers, '.0f')} "
            f"| {v.occupancy_limiter or '–'} | {_num(v.dram_pct)} | {_num(v.sm_pct)} | {_num(v.l2_hit_pct)} "
            f"| {_code(_cell(short_kernel(v.main_kernel or '–')))} |"
        )
    lines += [
        "",
        "Median ms: median of the per-repetition medians in timings.csv. Registers, limiter and "
        "throughputs: the variant's longest kernel launch.",
        "",
    ]
    for v in data.variants:
        if not v.is_reference and v.correct is not True:
            lines += [f"> **{v.name}**: {v.status}" + (f": {_cell(v.reason)}" if v.reason else ""), ""]
    return lines


def _finding_lines(data: Analysis, f: Finding, units: EvidenceUnits) -> list[str]:
    where = data.location_of(f)
    at = f" ({where.path}:{where.line})" if where else ""
    lines = [
        f"- **{f.rule} {f.name}** · {f.severity.value} · {_code(short_kernel(f.kernel))} "
        f"launch {f.launch}{at}: {_cell(f.message)}",
        f"  - Do: {_cell(f.recommendation)}",
    ]
    evidence = units.text(f, code=True)
    if evidence:
        lines.append(f"  - Evidence: {evidence}; fired on `{f.evidence.get('condition', '')}`")
    if f.estimated_effect:
        lines.append(f"  - Estimated effect: up to {f.estimated_effect:.0%} of the {f.effect_kind} time")
    return lines


def _variant_findings(data: Analysis, v: VariantSummary) -> list[str]:
    findings = v.findings
    skipped = skips.of_analysis(data, variant=v.name) if not v.is_reference else skips.Skipped()
    if not findings and not v.autotune_blocks and not skipped:
        return []
    lines = [f"#### {v.name}", ""]
    if not findings:
        lines.append(f"- No findings; {skipped.text(code=True)}.")
    units = EvidenceUnits.of(data)
    for f in findings[:MAX_FINDINGS_PER_VARIANT]:
        lines += _finding_lines(data, f, units)
    if len(findings) > MAX_FINDINGS_PER_VARIANT:
        more = len(findings) - MAX_FINDINGS_PER_VARIANT
        lines.append(f"- … and {more} more (see the JSON or SARIF report)")
    for kernel, block in v.autotune_blocks.items():
        lines += ["", f"Proposed configs for {_code(kernel)}:", "", "```python", block.rstrip(), "```"]
    return [*lines, ""]


def _library_findings(data: Analysis) -> list[str]:
    """Findings on kernels the kernel file does not define: in full with --all-kernels, else one line
    per kernel."""
    found = data.library_findings
    if not found:
        return []
    lines = [
        f"### Library kernels ({len(found)} findings)",
        "",
        "Kernels the kernel file does not define (cuDNN, PyTorch): not tunable from the Triton source.",
        "",
    ]
    if data.all_kernels:
        units = EvidenceUnits.of(data)
        for f in found:
            lines += _finding_lines(data, f, units)
        return [*lines, ""]
    by_kernel: dict[tuple[str | None, str], list[str]] = {}
    for f in found:
        by_kernel.setdefault((f.variant, f.kernel), []).append(f.rule)
    for (variant, kernel), rules in by_kernel.items():
        lines.append(f"- {variant} {_code(_cell(short_kernel(kernel)))}: {', '.join(sorted(set(rules)))}")
    return [*lines, "", "(`--all-kernels` lists them in full.)", ""]


def render_markdown(data: Analysis) -> str:
    """Render the report as GitHub-flavoured markdown.

    Sections: header (GPU, versions, options), the variant table, then per variant its findings with
    evidence and its proposed ``@triton.autotune`` block, then the library kernels' findings apart.
    """
    lines = _header(data) + _variant_table(data)
    total = len(data.findings)
    lines += [f"### Findings ({total})", ""]
    if not total:
        lines += [skips.no_findings(data.results, code=True, word="No rule fired") + ".", ""]
    elif skipped := skips.of_analysis(data):
        lines += [f"Not checked on some launches: {skipped.text(code=True)}.", ""]
    for v in data.variants:
        lines += _variant_findings(data, v)
    lines += _library_findings(data)
    lines += [f"_Note: {note}_  " for note in skips.notes_of(data)]
    return "\n".join(lines).rstrip() + "\n"
