"""Renderers of ``recommend`` results: a stable JSON document, plain text and markdown.

JSON schema (``version`` 1; keys are only ever added, never renamed or removed)::

    {"version": 1, "gpu": str|null, "stage": str,
     "kernels": [{"kernel", "variant", "launch", "source", "stage", "metrics": {metric: value},
                  "findings": [{"rule", "name", "stage", "severity", "message", "recommendation",
                                "evidence": {metric-or-name: value, "condition": when-expression},
                                "estimated_effect": {"fraction", "kind", "basis"}}],
                  "skipped": [{"rule", "reason"}],
                  "proposals": [{"params", "num_warps", "num_stages", "baseline", "reason", "config"}],
                  "autotune_block": str|null, "library": bool,
                  "ncu_rules": [{"rule", "name", "section", "severity", "message", "speedup",
                                 "speedup_type", "actionable_from_triton", "note"}]}]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ncu_advisor.analysis.result import Analysis
from ncu_advisor.model import NO_ESTIMATE, Finding, Proposal, Severity
from ncu_advisor.render.skipped import failures_of_analysis, no_findings, skipped_for_missing
from ncu_advisor.render.units import EvidenceUnits, quantity

if TYPE_CHECKING:  # the engine's result type; render never runs engine code
    from ncu_advisor.rules.engine import KernelResult

SCHEMA_VERSION = 1

#: ncu guided-analysis rules whose advice cannot be acted on from Triton source, and why.
NOT_ACTIONABLE_FROM_TRITON = {
    "MemoryL2Compression": (
        "L2 compression is chosen by the CUDA allocator (compressible memory), not by kernel code"
    ),
    "UncoalescedSharedAccess": "Triton's compiler chooses shared-memory layouts and swizzles",
    "SharedMemoryConflicts": "Triton's compiler chooses shared-memory layouts and swizzles",
    "FPInstructions": "FMA contraction is decided by the compiler, not written in Triton",
    "SOLFPRoofline": "informational roofline summary",
    "HighPipeUtilization": "informational pipe summary",
}

NcuRules = Mapping[tuple[str | None, int], list[dict[str, Any]]]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def ncu_rule_entries(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """ncu's guided-analysis results worth showing (optimisation hints), marked for Triton actionability."""
    entries = []
    for item in raw:
        if str(item.get("severity", "")).lower() not in ("optimization", "warning", "error"):
            continue
        if not item.get("message"):
            continue
        rule = str(item.get("rule") or "")  # plain-text reports carry no rule id: print nothing, not "None"
        note = NOT_ACTIONABLE_FROM_TRITON.get(rule)
        entries.append(
            {
                "rule": rule,
                "name": item.get("name"),
                "section": item.get("section"),
                "severity": item.get("severity"),
                "message": item.get("message"),
                "speedup": _clean(item.get("speedup")),
                "speedup_type": item.get("speedup_type"),
                "actionable_from_triton": note is None,
                "note": note,
            }
        )
    entries.sort(key=lambda e: -(e["speedup"] or 0.0))
    return entries


def finding_to_dict(finding: Finding, units: EvidenceUnits | None = None) -> dict[str, Any]:
    """A finding as JSON; ``evidence_units`` names the unit of each evidence entry that has one."""
    units = units or EvidenceUnits()
    return {
        "rule": finding.rule,
        "name": finding.name,
        "stage": finding.stage,
        "severity": finding.severity.value,
        "message": finding.message,
        "recommendation": finding.recommendation,
        "evidence": {k: _clean(v) for k, v in finding.evidence.items()},
        "evidence_units": {
            k: unit for k in finding.evidence if k != "condition" and (unit := units.unit(finding.rule, k))
        },
        "estimated_effect": {
            "fraction": round(finding.estimated_effect, 4),
            "kind": finding.effect_kind,
            "basis": finding.effect_basis,
        },
    }


def proposal_to_dict(proposal: Proposal) -> dict[str, Any]:
    return {
        "params": dict(proposal.params),
        "num_warps": proposal.num_warps,
        "num_stages": proposal.num_stages,
        "baseline": proposal.baseline,
        "reason": proposal.reason,
        "config": proposal.as_triton_config(),
    }


def results_to_dict(
    results: Sequence[KernelResult],
    *,
    stage: str = "all",
    ncu_rules: NcuRules | None = None,
    library: Sequence[KernelResult] = (),
    units: EvidenceUnits | None = None,
) -> dict[str, Any]:
    """The JSON document (see the module docstring); ``library`` results come last, flagged; ``units``
    gives each finding's ``evidence_units``."""
    gpus = sorted({r.gpu for r in [*results, *library] if r.gpu})
    kernels = []
    flagged = [(r, False) for r in results] + [(r, True) for r in library]
    for result, is_library in flagged:
        kernels.append(
            {
                "kernel": result.kernel,
                "variant": result.variant,
                "launch": result.launch,
                "source": result.source,
                "stage": result.stage,
                "metrics": {k: _clean(v) for k, v in result.metrics.items()},
                "findings": [finding_to_dict(f, units) for f in result.findings],
                "skipped": list(result.skipped),
                "skipped_for_missing_metrics": skipped_for_missing([result]).as_dict(),
                "proposals": [proposal_to_dict(p) for p in result.proposals],
                "autotune_block": result.autotune_block,
                "roofline": result.roofline.as_dict() if result.roofline is not None else None,
                "notes": list(result.notes),
                "suppressed": [finding_to_dict(f, units) for f in result.suppressed],
                "user_kernel": result.user_kernel,
                "time_share": result.time_share,
                "ncu_rules": ncu_rule_entries((ncu_rules or {}).get((result.source, result.launch), [])),
                "library": is_library,
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "gpu": ", ".join(gpus) if gpus else None,
        "stage": stage,
        "kernels": kernels,
        "skipped_for_missing_metrics": skipped_for_missing([*results, *library]).as_dict(),
    }


def render_json(analysis: Analysis) -> str:
    """``recommend --format json``: every analysed launch, library kernels' last with ``library: true``."""
    document = results_to_dict(
        analysis.results,
        stage=analysis.stage,
        ncu_rules=analysis.ncu_rules,
        library=analysis.library_results,
        units=EvidenceUnits.of(analysis),
    )
    return json.dumps(document, indent=2, allow_nan=False)


def _title(result: KernelResult) -> str:
    variant = f" [{result.variant}]" if result.variant else ""
    duration = result.metrics.get("gpu__time_duration.sum")
    time = f", {quantity(duration, 'ns')}" if isinstance(duration, (int, float)) else ""
    return f"{result.kernel}{variant} (launch {result.launch}{time}, stage {result.stage})"


def _ncu_text(result: KernelResult, ncu_rules: NcuRules) -> list[str]:
    entries = ncu_rule_entries(ncu_rules.get((result.source, result.launch), []))
    if not entries:
        return []
    lines = ["  ncu guided analysis:"]
    for entry in entries:
        kind = f" {entry['speedup_type']}" if entry["speedup_type"] else ""
        speedup = f" (ncu est. {entry['speedup']:.0f}%{kind})" if entry["speedup"] else ""
        mark = "" if entry["actionable_from_triton"] else f" [not actionable from Triton: {entry['note']}]"
        head = f"{entry['rule'] or ''}{speedup}{mark}".strip()
        lines.append(f"    {head + ': ' if head else ''}{entry['message'][:220]}")
    return lines


def _result_text(
    result: KernelResult, ncu_rules: NcuRules, show_skipped: bool, units: EvidenceUnits
) -> list[str]:
    library = " [library kernel: not in your source]" if result.user_kernel is False else ""
    lines = [_title(result) + library]
    if result.roofline is not None:
        lines.append(f"  {result.roofline.headline()}")
    if not result.findings:
        lines.append("  " + no_findings([result]))
    for finding in result.findings:
        effect = finding.effect_text if finding.effect_kind == NO_ESTIMATE else f"~{finding.effect_text}"
        lines.append(f"  {finding.severity.value.upper():7} {finding.rule} {finding.name} ({effect})")
        lines.append(f"          {finding.message}")
        evidence = units.text(finding)
        lines.append(f"          evidence: {evidence}; fired on: {finding.evidence.get('condition', '')}")
        lines.append(f"          -> {finding.recommendation}")
    lines.extend(f"  note: {note}" for note in result.notes)
    lines += _ncu_text(result, ncu_rules)
    if result.autotune_block:
        lines.append("  proposed configs:")
        lines.extend("    " + line for line in result.autotune_block.splitlines())
    if show_skipped and result.skipped:
        lines.append("  skipped: " + "; ".join(f"{s['rule']} ({s['reason']})" for s in result.skipped))
    return [*lines, ""]


LIBRARY_HEADING = "library kernels (not defined in the kernel file: cuDNN, PyTorch; not tunable from Triton)"


def _library_line(result: KernelResult) -> str:
    rules = ", ".join(f.message if f.evidence.get("not_profiled") else f.rule for f in result.findings)
    rules = rules or no_findings([result])
    return f"  {_title(result)}: {rules}"


def render_text(analysis: Analysis, *, show_skipped: bool = False) -> str:
    """Human-readable findings per launch, largest estimated effect first; library kernels apart (in
    full with ``--all-kernels``, else one line each)."""
    lines: list[str] = []
    units = EvidenceUnits.of(analysis)
    for result in analysis.results:
        lines += _result_text(result, analysis.ncu_rules, show_skipped, units)
    if analysis.library_results:
        lines.append(LIBRARY_HEADING + ":")
        for result in analysis.library_results:
            if analysis.all_kernels:
                lines += _result_text(result, analysis.ncu_rules, show_skipped, units)
            else:
                lines.append(_library_line(result))
        if not analysis.all_kernels:
            lines += ["  (--all-kernels shows them in full)", ""]
    counts = count_by_severity(analysis.results)
    library = count_by_severity(analysis.library_results)
    missing = len(analysis.not_profiled)
    lines.append(
        f"{len(analysis.results)} launches, "
        + ", ".join(f"{counts[s]} {s.value}" for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
        + (f"; {missing} launch(es) not profiled (not clean, counted apart: exit 1)" if missing else "")
        + (
            f"; {len(analysis.library_results)} library launches with {sum(library.values())} findings"
            if analysis.library_results
            else ""
        )
    )
    if skipped := skipped_for_missing([*analysis.results, *analysis.library_results]):
        lines.append(f"not checked on some launches: {skipped.text()} (ncu --set full collects them)")
    lines.extend(failure.text() for failure in failures_of_analysis(analysis))
    return "\n".join(lines)


def _ncu_markdown(result: KernelResult, ncu_rules: NcuRules) -> list[str]:
    entries = ncu_rule_entries(ncu_rules.get((result.source, result.launch), []))
    if not entries:
        return []
    lines = ["", "ncu guided analysis:", ""]
    for entry in entries:
        mark = "" if entry["actionable_from_triton"] else f" *(not actionable from Triton: {entry['note']})*"
        lines.append(f"- **{entry['rule']}**{mark}: {entry['message'][:300]}")
    return lines


def _result_markdown(
    result: KernelResult, ncu_rules: NcuRules, units: EvidenceUnits, level: str = "##"
) -> list[str]:
    lines = [f"{level} {_title(result)}", ""]
    if result.findings:
        lines += [
            "| severity | rule | finding | evidence | effect | recommendation |",
            "|---|---|---|---|---|---|",
        ]
        for f in result.findings:
            evidence = units.text(f, sep="<br>", code=True)
            lines.append(
                f"| {f.severity.value} | {f.rule} {f.name} | {_cell(f.message)} | {_cell(evidence)}<br>"
                f"when `{_cell(f.evidence.get('condition', ''))}` "
                f"| {f.effect_text} "
                f"| {_cell(f.recommendation)} |"
            )
    else:
        lines.append(no_findings([result], code=True, word="No findings") + ".")
    lines += _ncu_markdown(result, ncu_rules)
    if result.autotune_block:
        lines += ["", "```python", result.autotune_block, "```"]
    return [*lines, ""]


def render_markdown(analysis: Analysis) -> str:
    """Markdown: one section per launch with a findings table and the proposed autotune block; library
    kernels in their own section (in full with ``--all-kernels``, else one line each)."""
    lines = ["# ncu-advisor recommendations", ""]
    units = EvidenceUnits.of(analysis)
    for result in analysis.results:
        lines += _result_markdown(result, analysis.ncu_rules, units)
    if analysis.library_results:
        lines += [f"## {LIBRARY_HEADING[0].upper()}{LIBRARY_HEADING[1:]}", ""]
        for result in analysis.library_results:
            if analysis.all_kernels:
                lines += _result_markdown(result, analysis.ncu_rules, units, "###")
            else:
                lines.append(f"- {_cell(_library_line(result).strip())}")
        if not analysis.all_kernels:
            lines += ["", "(`--all-kernels` shows them in full.)", ""]
    if skipped := skipped_for_missing([*analysis.results, *analysis.library_results]):
        lines += [
            f"Not checked on some launches: {skipped.text(code=True)} (`ncu --set full` collects them).",
            "",
        ]
    for failure in failures_of_analysis(analysis):
        lines += [f"**Rule error:** {_cell(failure.text(code=True))}.", ""]
    return "\n".join(lines)


def _cell(text: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def count_by_severity(results: Sequence[KernelResult]) -> dict[Severity, int]:
    """Findings per severity; a not-profiled launch's entry is counted apart (``Analysis.not_profiled``)."""
    counts = {severity: 0 for severity in Severity}
    for result in results:
        for finding in result.findings:
            if not finding.evidence.get("not_profiled"):
                counts[finding.severity] += 1
    return counts
