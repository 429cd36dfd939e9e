"""SARIF 2.1.0: each finding a result located in the kernel source, each rule in the driver's rule list.

Locations: the kernel file's path as recorded in the run's manifest, made relative to the repository root
(``Analysis.kernel_path``), at the kernel's ``@triton.autotune`` decorator when it has one, else at its
``@triton.jit`` def. A finding on a kernel that is not in the file (cuDNN, PyTorch), or read from a plain
report (no run directory, no kernel file), is pinned to the report file it was read from
(``Analysis.report_files``, no region: GitHub code scanning needs a location), never to the user's code.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ncu_advisor import __version__
from ncu_advisor.analysis.result import Analysis, RuleInfo, gpu_name
from ncu_advisor.model import Finding
from ncu_advisor.render.skipped import failures_of_analysis, of_analysis
from ncu_advisor.render.units import EvidenceUnits

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/ncu-advisor/ncu-advisor"
#: ``schema_version`` of our own entries in the log's property bags (``run.properties``, each result's
#: ``properties``): SARIF's own layout is versioned by ``version`` (2.1.0) and ``$schema``.
SARIF_PROPERTIES_VERSION = 1
#: Our severities -> SARIF result levels.
LEVELS = {"info": "note", "warning": "warning", "error": "error"}


def _driver_rule(rule: RuleInfo) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary[:1000] or rule.name},
        "fullDescription": {"text": rule.summary},
        "help": {"text": rule.help_text, "markdown": rule.help_text},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["performance", "triton", "nsight-compute"]},
    }


def _result(data: Analysis, finding: Finding, units: EvidenceUnits, index: dict[str, int]) -> dict[str, Any]:
    """One SARIF result; its message text carries the evidence with units (properties: base units)."""
    # Only the kernel's own location: kernels the user's source does not define (cuDNN, PyTorch) are
    # reported without a location rather than pinned to the variant's class (issue 13).
    where = data.locations.get((finding.variant or "", finding.kernel))
    end = "" if finding.message.endswith(".") else "."
    evidence = units.text(finding)
    text = (
        f"{finding.message}{end} Do: {finding.recommendation} "
        + (f"Evidence: {evidence}. " if evidence else "")
        + f"[{finding.variant}: {finding.kernel}, launch {finding.launch}]"
    )
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": LEVELS[finding.severity.value],
        "message": {"text": text},
        "properties": {
            "variant": finding.variant,
            "kernel": finding.kernel,
            "launch": finding.launch,
            "estimatedEffect": finding.estimated_effect,
            "effectKind": finding.effect_kind,
            "evidence": {
                k: v for k, v in finding.evidence.items() if not isinstance(v, float) or math.isfinite(v)
            },
            "evidenceUnits": {
                k: unit for k in finding.evidence if (unit := units.unit(finding.rule, k)) is not None
            },
        },
        "partialFingerprints": {
            "ncuAdvisor/v1": f"{finding.rule}:{finding.variant}:{finding.kernel}:{finding.launch}",
        },
    }
    if finding.rule in index:
        result["ruleIndex"] = index[finding.rule]
    report = data.report_files.get(finding.variant or "")
    if where is not None:
        result["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": where.path, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": where.line},
                },
                "message": {"text": where.what},
            }
        ]
    elif report is not None:
        result["locations"] = [
            {
                "physicalLocation": {"artifactLocation": {"uri": report, "uriBaseId": "%SRCROOT%"}},
                "message": {"text": "the Nsight Compute report the finding was read from"},
            }
        ]
    return result


def render_sarif(data: Analysis) -> str:
    """Render the report's findings as a SARIF 2.1.0 log (one run, results in finding order)."""
    skipped = of_analysis(data)
    index = {rule.id: i for i, rule in enumerate(data.rules)}
    units = EvidenceUnits.of(data)
    # A library launch ncu did not profile is still reported: it is not clean (no rule could judge it).
    missing = [f for f in data.library_findings if f.evidence.get("not_profiled")]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "ncu-advisor",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_driver_rule(rule) for rule in data.rules],
            }
        },
        "results": [_result(data, f, units, index) for f in data.findings + missing],
        "properties": {
            "schema_version": SARIF_PROPERTIES_VERSION,
            "gpu": gpu_name(data),
            "run": data.run_path.name,
            "skippedForMissingMetrics": skipped.as_dict(),
        },
    }
    # shown by SARIF viewers as tool notifications: launches not fully checked, and the analysis's notes
    # (e.g. a run without its kernel file: the rules that read the source were skipped)
    notifications = [{"level": "note", "message": {"text": note}} for note in data.notes]
    notifications += [  # a rule that failed on some launches checked nothing there
        {"level": "warning", "message": {"text": f.text()}, "associatedRule": {"id": f.rule}}
        for f in failures_of_analysis(data)
    ]
    if skipped:
        text = f"Not checked on some launches: {skipped.text()}."
        notifications.insert(0, {"level": "note", "message": {"text": text}})
    if notifications:
        run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": notifications}]
    artifacts = (
        [{"location": {"uri": data.kernel_path, "uriBaseId": "%SRCROOT%"}, "sourceLanguage": "python"}]
        if data.kernel_path
        else []
    )
    artifacts += [
        {"location": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
        for uri in dict.fromkeys(data.report_files.values())
    ]
    if artifacts:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"description": {"text": "the repository root"}}}
        run["artifacts"] = artifacts
    log = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(log, indent=2, default=str) + "\n"
