"""``Analysis``: everything the commands show about their inputs, as one frozen value.

``analysis.analyze`` builds it; every renderer (``ncu_advisor.render``) is a pure function of it. The
same value backs ``recommend``, ``report`` and ``compare``, so the three show the same findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.analysis.inputs import NcuRules
from ncu_advisor.analysis.summary import VariantSummary
from ncu_advisor.kernelsrc.facts import SourceFacts
from ncu_advisor.model import Finding, Severity
from ncu_advisor.rules import KernelResult
from ncu_advisor.rules.engine import PRESSURE_METRICS, SEED_METRICS
from ncu_advisor.rules.environment import pressure_mask

__all__ = ["PRESSURE_METRICS", "SEED_METRICS"]  # for renderers, which never import the engine

#: ``--fail-on`` levels: a severity, or ``never`` (exit 1 only for what is not a finding).
FAIL_ON_CHOICES = ("info", "warning", "error", "never")
#: The one ``--fail-on`` default of every analysing command (README: exit codes).
DEFAULT_FAIL_ON = "error"
#: The one ``--stage`` default of every analysing command (docs/rules.md: "all (default)").
DEFAULT_STAGE = "all"


@dataclass(frozen=True)
class RuleInfo:
    """What SARIF's rule list and the HTML need of one rule."""

    id: str
    name: str
    severity: str
    summary: str
    help_text: str
    #: evidence name -> unit (``render.units``): the rule's declared ``units`` under the evidence's names.
    units: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceLocation:
    """Where a finding points in the kernel source (1-based line)."""

    path: str
    line: int
    what: str


@dataclass(frozen=True)
class Analysis:
    """The outcome of ``analyze``.

    Attributes:
        inputs: the report files and run directories read, in order.
        table: every launch of every input (the reference's included), one row per launch.
        results: the rule results of the launches of kernels the kernel file defines (all launches when
            no kernel file is known), in table order; the reference ``Model`` is never evaluated.
        library_results: those of library kernels (cuDNN, PyTorch) the kernel file does not define.
        variants: one summary per variant (reference first), launches with their findings.
        ncu_rules: ncu's own guided-analysis results per (report path, launch).
        kernel_facts: the kernel files' static facts (one per distinct file).
        stage, all_kernels: the options the findings were made with.
        run_path ... kernel_copy: the first run's metadata (the first input's path for bare reports).
        rules: the rules applied, those that fired first; locations: source line per (variant, kernel).
        gpu_peaks: peak TFLOP/s and GB/s of the GPU (roofline); notes: what the reader should know.
        not_profiled: the launches ncu recorded without metric values, one ``{"variant", "kernel",
            "launch", "reason"}`` each; each is also listed with one ``NP001`` "not profiled" finding
            (severity warning for ``--fail-on``), never as clean.
        report_files: variant name -> the report file (an input that is a file, not a run directory) it
            was read from, relative to the source root (``pipeline.repo_relative``).
    """

    inputs: tuple[Path, ...]
    table: pd.DataFrame
    results: tuple[KernelResult, ...]
    library_results: tuple[KernelResult, ...]
    variants: list[VariantSummary]
    ncu_rules: NcuRules
    kernel_facts: tuple[SourceFacts, ...]
    stage: str
    all_kernels: bool
    run_path: Path
    created: str | None
    gpu: dict[str, Any]
    versions: dict[str, Any]
    options: dict[str, Any]
    kernel_path: str | None
    kernel_copy: Path | None
    rules: list[RuleInfo]
    locations: Mapping[tuple[str, str], SourceLocation]
    gpu_peaks: dict[str, float]
    notes: list[str] = field(default_factory=list)
    not_profiled: list[dict[str, Any]] = field(default_factory=list)
    report_files: Mapping[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> VariantSummary | None:
        return next((v for v in self.variants if v.is_reference), None)

    @property
    def findings(self) -> list[Finding]:
        """Findings on the Triton kernels, variant by variant, largest estimated effect first."""
        return [f for v in self.variants for f in v.findings]

    @property
    def library_findings(self) -> list[Finding]:
        """Findings on library kernels (cuDNN, PyTorch), shown apart."""
        return [f for v in self.variants for f in v.library_findings]

    @property
    def gated_findings(self) -> list[Finding]:
        """The findings ``--fail-on`` counts: the Triton kernels', and the library ones with --all-kernels."""
        return self.findings + (self.library_findings if self.all_kernels else [])

    def location_of(self, finding: Finding) -> SourceLocation | None:
        """The source location of a finding: its kernel's autotune line or ``@triton.jit`` def, else its
        variant's class, else line 1 of the kernel file, else None (kernel file unknown)."""
        variant = finding.variant or ""
        found = self.locations.get((variant, finding.kernel)) or self.locations.get((variant, ""))
        if found is None and self.kernel_path:
            found = SourceLocation(self.kernel_path, 1, "kernel file")
        return found

    def fails(self, fail_on: str) -> bool:
        """True when a launch (a library one included) was not profiled, whatever ``fail_on`` (a launch
        without metric values is never clean), or a gated finding is at or above ``fail_on`` (never for
        ``never``)."""
        if self.not_profiled:
            return True
        if fail_on == "never":
            return False
        return any(severity_at_least(f, fail_on) for f in self.gated_findings)


def gpu_name(data: Analysis) -> str:
    """The GPU's display name: the manifest's, else the table's, else ``unknown GPU``."""
    return str(data.gpu.get("name") or "unknown GPU")


def severity_at_least(finding: Finding, level: str) -> bool:
    """True when ``finding`` is at or above ``level`` (info, warning, error)."""
    return finding.severity.rank >= Severity(level).rank


def variant_failures(variant: VariantSummary, fail_on: str | None) -> list[str]:
    """Why a variant fails a CI gate: incorrect / not run, findings at or above ``fail_on``, or a launch
    ncu did not profile (whatever ``fail_on``, library launches included: it is never clean). A variant
    read from a plain report (status ``unknown``: no timings, no correctness check) is not a failure.

    Args:
        variant: the variant.
        fail_on: ``info``, ``warning``, ``error``, or None/``never`` for correctness only.
    """
    reasons: list[str] = []
    if variant.correct is False:
        reasons.append(f"incorrect: {variant.reason or 'output differs from the reference'}")
    elif variant.status not in ("ok", "incorrect", "skipped", "unknown"):
        reasons.append(f"{variant.status}: {variant.reason or 'no result'}")
    reasons += [  # not clean, library launches included
        f"{f.kernel} launch {f.launch}: {f.message}"
        for x in variant.launches
        for f in x.findings
        if f.evidence.get("not_profiled")
    ]
    if fail_on and fail_on != "never":
        for finding in variant.findings:
            if finding.evidence.get("not_profiled"):
                continue
            if severity_at_least(finding, fail_on):
                reasons.append(
                    f"{finding.rule} {finding.name} ({finding.severity.value}) on "
                    f"{finding.kernel} launch {finding.launch}: {finding.message}"
                )
    return reasons


def register_pressure(results: Sequence[KernelResult]) -> bool:
    """True when any launch shown is under register pressure (the ``--stage auto`` criterion,
    ``rules.environment.pressure_mask``, on each result's ``PRESSURE_METRICS``)."""
    rows = [{name: r.metrics.get(name) for name in PRESSURE_METRICS} for r in results]
    return bool(rows) and bool(pressure_mask(pd.DataFrame(rows)).any())
