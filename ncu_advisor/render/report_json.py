"""The report as JSON and CSV (``report --format json|csv``): schemas in docs/report.md.

Pure functions of an ``Analysis``. Every finding carries ``library`` (true for kernels the kernel file does
not define: cuDNN, PyTorch), so JSON consumers see the same findings ``recommend`` shows.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pandas as pd

from ncu_advisor.analysis.result import Analysis
from ncu_advisor.analysis.summary import KEY_METRICS
from ncu_advisor.model import Finding
from ncu_advisor.render.skipped import notes_of, of_analysis, skipped_for_missing
from ncu_advisor.render.units import EvidenceUnits

#: Bump when a field of the JSON report or a CSV column changes meaning or is removed.
REPORT_SCHEMA_VERSION = 1

#: Columns of ``report_csv`` (one row per launch), in order; metric columns are the KEY_METRICS.
CSV_COLUMNS = (
    "variant",
    "status",
    "correct",
    "variant_median_ms",
    "range",
    "action",
    "kernel",
    "launch",
    *KEY_METRICS,
    "occupancy_limiter",
    "finding_count",
    "finding_rules",
    "worst_severity",
    "not_profiled",
    "missing_metrics",
)


def _finding_json(
    finding: Finding, data: Analysis, units: EvidenceUnits, library: bool = False
) -> dict[str, Any]:
    where = data.location_of(finding)
    return {
        "rule": finding.rule,
        "name": finding.name,
        "stage": finding.stage,
        "severity": finding.severity.value,
        "variant": finding.variant,
        "kernel": finding.kernel,
        "launch": finding.launch,
        "message": finding.message,
        "recommendation": finding.recommendation,
        "estimated_effect": finding.estimated_effect,
        "effect_kind": finding.effect_kind,
        "evidence": {k: _json_value(v) for k, v in finding.evidence.items()},
        "evidence_units": {
            k: unit for k in finding.evidence if k != "condition" and (unit := units.unit(finding.rule, k))
        },
        "location": {"path": where.path, "line": where.line, "what": where.what} if where else None,
        "library": library,
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _json_value(value.item())
    return value


def report_dict(data: Analysis) -> dict[str, Any]:
    """The JSON report as a plain dict (schema: docs/report.md, ``REPORT_SCHEMA_VERSION``)."""
    variants = []
    units = EvidenceUnits.of(data)
    for v in data.variants:
        variants.append(
            {
                "name": v.name,
                "reference": v.is_reference,
                "status": v.status,
                "reason": v.reason,
                "correct": v.correct,
                "rel_l2_error": v.rel_l2_error,
                "max_abs_error": v.max_abs_error,
                "median_ms": v.median_ms,
                "reps": v.reps,
                "timings_ms": v.timings_ms,
                "speedup_vs_reference": v.speedup_vs_reference,
                "kernel_time_ms": v.kernel_time_ms,
                "main_kernel": v.main_kernel,
                "registers": v.registers,
                "occupancy_limiter": v.occupancy_limiter,
                "dram_pct": v.dram_pct,
                "sm_pct": v.sm_pct,
                "l2_hit_pct": v.l2_hit_pct,
                "launches": [
                    {
                        "kernel": x.kernel,
                        "launch": x.launch,
                        "range": x.range,
                        "action": x.action,
                        "duration_ms": x.duration_ms,
                        "occupancy_limiter": x.occupancy_limiter,
                        "metrics": {k: _json_value(m) for k, m in x.metrics.items()},
                        "findings": [f.rule for f in x.findings],
                        "library": x.library,
                    }
                    for x in v.launches
                ],
                "autotune_blocks": v.autotune_blocks,
                "skipped_for_missing_metrics": of_analysis(data, variant=v.name).as_dict(),
            }
        )
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run": {"path": str(data.run_path), "created": data.created, "kernel_file": data.kernel_path},
        "gpu": data.gpu,
        "versions": data.versions,
        "options": {k: v for k, v in data.options.items() if k != "metrics"},
        "variants": variants,
        "findings": [_finding_json(f, data, units) for f in data.findings]
        + [_finding_json(f, data, units, library=True) for f in data.library_findings],
        "rules": [
            {"id": r.id, "name": r.name, "severity": r.severity, "summary": r.summary} for r in data.rules
        ],
        "notes": notes_of(data),
        "skipped_for_missing_metrics": of_analysis(data).as_dict(),
    }


def report_json(data: Analysis) -> str:
    """Render the JSON report (indented, keys in schema order)."""
    return json.dumps(report_dict(data), indent=2, default=str, allow_nan=False) + "\n"


def report_csv(data: Analysis) -> str:
    """Render the CSV report: one row per launch, columns ``CSV_COLUMNS`` (see docs/report.md)."""
    rows = []
    results = {(r.variant or "", r.kernel, r.launch): r for r in [*data.results, *data.library_results]}
    for v in data.variants:
        for x in v.launches:
            result = results.get((x.variant, x.kernel, x.launch))
            worst = max((f.severity for f in x.findings), key=lambda s: s.rank, default=None)
            row: dict[str, Any] = {
                "variant": v.name,
                "status": v.status,
                "correct": v.correct,
                "variant_median_ms": v.median_ms,
                "range": x.range,
                "action": x.action,
                "kernel": x.kernel,
                "launch": x.launch,
            }
            row.update({m: x.metrics.get(m) for m in KEY_METRICS})
            row.update(
                {
                    "occupancy_limiter": x.occupancy_limiter,
                    "finding_count": len(x.findings),
                    "finding_rules": " ".join(f.rule for f in x.findings),
                    "worst_severity": worst.value if worst else "",
                    "not_profiled": "; ".join(
                        f.message for f in x.findings if f.evidence.get("not_profiled")
                    ),
                    "missing_metrics": " ".join(skipped_for_missing([result] if result else []).metrics),
                }
            )
            rows.append(row)
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()
