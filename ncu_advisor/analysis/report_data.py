"""The one structure every ``report`` format renders, built from a run directory.

``build_report(run)`` reads a ``rundir.LoadedRun`` (manifest, tidy table, timings, kernel copy), applies the
rules to the variants' launches and summarises each variant (correctness, median time, speed against the
reference, registers, occupancy limiter, DRAM/SM throughput, L2 hit rate of its longest launch). Renderers
(markdown, HTML, JUnit, SARIF, JSON, CSV) only format a ``ReportData``; none of them reads files or rules.

JSON and CSV live here because they *are* this structure: ``report_json`` and ``report_csv`` (schemas
in docs/report.md, ``REPORT_SCHEMA_VERSION``).
"""

from __future__ import annotations

import ast
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import InputError, KernelFileError
from ncu_advisor.model import Finding, Severity
from ncu_advisor.render.output import write_text_atomic
from ncu_advisor.table import ID_COLUMNS

#: Bump when a field of the JSON report or a CSV column changes meaning or is removed.
REPORT_SCHEMA_VERSION = 1

#: The reference class of a kernel file (KernelBench's ``Model``); never evaluated by the rules.
REFERENCE_NAME = "Model"

DURATION = "gpu__time_duration.sum"
DRAM_PCT = (
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
)
SM_PCT = ("sm__throughput.avg.pct_of_peak_sustained_elapsed",)
L2_HIT = ("lts__t_sector_hit_rate.pct",)
WARPS_ACTIVE = ("sm__warps_active.avg.pct_of_peak_sustained_active",)
REGISTERS = ("launch__registers_per_thread",)
DRAM_BYTES = ("dram__bytes_read.sum", "dram__bytes_write.sum")
#: The four per-SM block limits ncu reports; the smallest one limits occupancy.
OCCUPANCY_LIMITS = {
    "registers": "launch__occupancy_limit_registers",
    "shared_mem": "launch__occupancy_limit_shared_mem",
    "warps": "launch__occupancy_limit_warps",
    "blocks": "launch__occupancy_limit_blocks",
}
#: FP32 instruction counters: FLOPs = add + mul + 2 * fma (ncu's own roofline formula).
FLOP_COUNTERS = {
    "add": "sm__sass_thread_inst_executed_op_fadd_pred_on.sum",
    "mul": "sm__sass_thread_inst_executed_op_fmul_pred_on.sum",
    "fma": "sm__sass_thread_inst_executed_op_ffma_pred_on.sum",
}
#: What ncu's own roofline (``--set full``, SpeedOfLight_RooflineChart) is computed from: per-cycle FP32
#: instruction rates times the SM clock, DRAM bytes per second, and the peaks per cycle times the clocks.
ROOFLINE_RATES = {
    "fadd_per_cycle": "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum.per_cycle_elapsed",
    "fmul_per_cycle": "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum.per_cycle_elapsed",
    "ffma_per_cycle": "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum.per_cycle_elapsed",
    "smsp_cycles_per_second": "smsp__cycles_elapsed.avg.per_second",
    "dram_bytes_per_second": "dram__bytes.sum.per_second",
    "ffma_peak_per_cycle": "sm__sass_thread_inst_executed_op_ffma_pred_on.sum.peak_sustained",
    "sm_cycles_per_second": "sm__cycles_elapsed.avg.per_second",
    "dram_bytes_peak_per_cycle": "dram__bytes.sum.peak_sustained",
    "dram_cycles_per_second": "dram__cycles_elapsed.avg.per_second",
}
#: Columns of ``report_csv`` (one row per launch), in order; metric columns are the KEY_METRICS.
KEY_METRICS = (
    DURATION,
    SM_PCT[0],
    DRAM_PCT[0],
    L2_HIT[0],
    WARPS_ACTIVE[0],
    REGISTERS[0],
    *OCCUPANCY_LIMITS.values(),
    "launch__grid_size",
    "launch__block_size",
)
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
)


@dataclass(frozen=True)
class Launch:
    """One profiled kernel launch of a variant, with the few metrics the reports show."""

    variant: str
    kernel: str
    launch: int
    range: int | None
    action: int | None
    duration_ms: float | None
    metrics: dict[str, float]
    occupancy_limiter: str | None
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class VariantSummary:
    """One variant of the run (the reference included), as the variant tables show it."""

    name: str
    status: str
    reason: str | None
    correct: bool | None
    rel_l2_error: float | None
    max_abs_error: float | None
    median_ms: float | None
    reps: int
    timings_ms: list[float]
    speedup_vs_reference: float | None
    kernel_time_ms: float | None
    main_kernel: str | None
    registers: float | None
    occupancy_limiter: str | None
    dram_pct: float | None
    sm_pct: float | None
    l2_hit_pct: float | None
    launches: list[Launch]
    autotune_blocks: dict[str, str]

    @property
    def findings(self) -> list[Finding]:
        """Every finding of the variant's launches, largest estimated effect first."""
        found = [f for launch in self.launches for f in launch.findings]
        # Rank by global effect (the launch's share of the variant's time x local effect, analysis.advice).
        return sorted(
            found,
            key=lambda f: (
                -f.evidence.get("global_effect", f.estimated_effect),
                -f.severity.rank,
                f.rule,
                f.launch,
            ),
        )

    @property
    def is_reference(self) -> bool:
        return self.name == REFERENCE_NAME


@dataclass(frozen=True)
class RuleInfo:
    """What SARIF's rule list and the HTML need of one rule."""

    id: str
    name: str
    severity: str
    summary: str
    help_text: str


@dataclass(frozen=True)
class SourceLocation:
    """Where a finding points in the kernel source (1-based line)."""

    path: str
    line: int
    what: str


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows about one run."""

    run_path: Path
    created: str | None
    gpu: dict[str, Any]
    versions: dict[str, Any]
    options: dict[str, Any]
    kernel_path: str | None
    kernel_copy: Path | None
    variants: list[VariantSummary]
    rules: list[RuleInfo]
    locations: dict[tuple[str, str], SourceLocation]
    gpu_peaks: dict[str, float]
    notes: list[str]

    @property
    def reference(self) -> VariantSummary | None:
        return next((v for v in self.variants if v.is_reference), None)

    @property
    def findings(self) -> list[Finding]:
        return [f for v in self.variants for f in v.findings]

    def location_of(self, finding: Finding) -> SourceLocation | None:
        """The source location of a finding: its kernel's autotune line or ``@triton.jit`` def, else its
        variant's class, else line 1 of the kernel file, else None (kernel file unknown)."""
        variant = finding.variant or ""
        found = self.locations.get((variant, finding.kernel)) or self.locations.get((variant, ""))
        if found is None and self.kernel_path:
            found = SourceLocation(self.kernel_path, 1, "kernel file")
        return found


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _first(row: pd.Series, names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in row.index:
            value = _float(row[name])
            if value is not None:
                return value
    return None


def occupancy_limiter(row: pd.Series) -> str | None:
    """Name of the smallest of ncu's four blocks-per-SM limits (``registers``, ``shared_mem``, ``warps``,
    ``blocks``); ties go to the first in that order. None when no limit is in the row."""
    limits = {name: _float(row.get(column)) for name, column in OCCUPANCY_LIMITS.items()}
    known = {name: value for name, value in limits.items() if value is not None}
    if not known:
        return None
    return min(known, key=lambda name: (known[name], list(OCCUPANCY_LIMITS).index(name)))


def _variant_result(run_path: Path, manifest: dict[str, Any], name: str) -> dict[str, Any]:
    entry = (
        (manifest.get("variants") or {}).get(name)
        or (manifest.get("reference") if name == REFERENCE_NAME else None)
        or {}
    )
    folder = entry.get("dir") or f"variants/{name}"
    path = run_path / folder / "result.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"variant result is unreadable ({exc})", path=path, hint="the run was damaged; profile again"
        ) from None
    return data if isinstance(data, dict) else {}


def repo_relative(path: str | None, source_root: Path | None) -> str | None:
    """The kernel file's path as recorded in the manifest, relative to ``source_root`` (default: cwd).

    A recorded absolute path inside the root is made relative. One from another machine (the GPU runner's
    checkout) is matched by its longest tail that names a file under the root (``/x/y/kernels/fused.py``
    -> ``kernels/fused.py`` when that file exists here); failing that only its file name is kept, so SARIF
    never carries a path of the profiling machine.
    """
    if not path:
        return None
    recorded = Path(path)
    if not recorded.is_absolute():
        return recorded.as_posix()
    root = (source_root or Path.cwd()).resolve()
    try:
        return recorded.relative_to(root).as_posix()
    except ValueError:
        pass
    parts = recorded.parts[1:]
    for start in range(len(parts)):
        tail = Path(*parts[start:])
        if (root / tail).is_file():
            return tail.as_posix()
    return recorded.name


def _class_lines(text: str) -> dict[str, int]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    return {node.name: node.lineno for node in tree.body if isinstance(node, ast.ClassDef)}


def _locations(
    variants: list[str], launches: list[Launch], kernel_copy: Path | None, kernel_path: str | None
) -> dict[tuple[str, str], SourceLocation]:
    if kernel_copy is None or kernel_path is None:
        return {}
    from ncu_advisor.kernelsrc.facts import analyze_file  # noqa: PLC0415 - only needed with a kernel copy

    try:
        facts = analyze_file(kernel_copy)
    except KernelFileError:
        return {}
    classes = _class_lines(facts.text)
    found: dict[tuple[str, str], SourceLocation] = {}
    for name in variants:
        if name in classes:
            found[(name, "")] = SourceLocation(kernel_path, classes[name], f"class {name}")
    for launch in launches:
        kernel = facts.kernel(launch.kernel)
        if kernel is None:
            continue
        if kernel.autotune_lineno is not None:
            where = SourceLocation(kernel_path, kernel.autotune_lineno, f"@triton.autotune of {kernel.name}")
        else:
            where = SourceLocation(kernel_path, kernel.lineno, f"@triton.jit def {kernel.name}")
        found[(launch.variant, launch.kernel)] = where
    return found


def _rule_infos(rules: list[Any]) -> list[RuleInfo]:
    infos = []
    for rule in rules:
        docs = rule.docs
        help_text = (
            f"What it detects: {docs.what_it_detects}\n\nWhy it matters: {docs.why_it_matters}\n\n"
            f"Example: {docs.example}\n\nUse instead: {docs.use_instead}\n\n"
            f"Known problems: {docs.known_problems}"
        )
        infos.append(
            RuleInfo(
                id=rule.id,
                name=rule.name,
                severity=rule.severity.value,
                summary=" ".join(docs.what_it_detects.split()),
                help_text=help_text,
            )
        )
    return infos


def _gpu_peaks(table: pd.DataFrame) -> tuple[dict[str, float], list[str]]:
    """Peak FP32 TFLOP/s and DRAM GB/s from the GPU catalogue, when ``ncu_advisor.gpus`` is there."""
    try:
        from ncu_advisor.gpus import spec_for  # noqa: PLC0415 - optional until the catalogue lands
    except ImportError:
        return {}, ["GPU catalogue (ncu_advisor.gpus) not available: no roofline peaks"]
    try:
        spec, warnings = spec_for(table)
    except InputError as exc:
        return {}, [f"GPU catalogue: {exc.render()}"]
    peaks: dict[str, float] = {}
    for key in ("fp32_tflops", "tf32_tflops", "fp16_tflops", "mem_bw_gbs"):
        value = _float(getattr(spec, key, None))
        if value is not None:
            peaks[key] = value
    return peaks, [str(w) for w in warnings or []]


def build_report(
    run: Any, *, rules: list[Any] | None = None, stage: str = "auto", source_root: Path | None = None
) -> ReportData:
    """Summarise a run directory for the report renderers.

    Args:
        run: a ``rundir.LoadedRun``.
        rules: the rules to apply (default: ``load_rules()``); the reference ``Model`` is never evaluated.
        stage: the rule stage, as for ``rules.evaluate``.
        source_root: the repository root the kernel file's recorded path is made relative to (default:
            the working directory).

    Returns:
        The report data, variants in manifest order (reference first).
    """
    from ncu_advisor.rules import evaluate, load_rules  # noqa: PLC0415 - keeps renderers import-light
    from ncu_advisor.kernelsrc.facts import analyze_file  # noqa: PLC0415

    manifest = run.manifest
    table: pd.DataFrame = run.table.reset_index(drop=True)
    rules = load_rules() if rules is None else rules
    kernel_path = repo_relative((manifest.get("kernel_file") or {}).get("path"), source_root)

    source = None
    if run.kernel_file is not None:
        try:
            source = analyze_file(run.kernel_file)
        except KernelFileError:
            source = None
    evaluated = table[table["variant"] != REFERENCE_NAME] if "variant" in table.columns else table
    results = evaluate(evaluated, rules, source=source, stage=stage) if len(evaluated) else []
    findings_by_row: dict[int, list[Finding]] = {}
    autotune_by_row: dict[int, str] = {}
    for row_index, result in zip(evaluated.index, results, strict=True):
        findings_by_row[int(row_index)] = list(result.findings)
        if result.autotune_block:
            autotune_by_row[int(row_index)] = result.autotune_block

    names: list[str] = []
    reference = manifest.get("reference") or {}
    if reference.get("status") not in (None, "skipped") or (
        "variant" in table.columns and (table["variant"] == REFERENCE_NAME).any()
    ):
        names.append(REFERENCE_NAME)
    names += [n for n in (manifest.get("variants") or {}) if n != REFERENCE_NAME]

    timings = run.timings
    per_launch: list[Launch] = []
    launch_counter: dict[str, int] = {}
    launches_of: dict[str, list[Launch]] = {n: [] for n in names}
    autotune_of: dict[str, dict[str, str]] = {n: {} for n in names}
    for i, row in table.iterrows():
        variant = str(row.get("variant")) if row.get("variant") is not None else ""
        index = launch_counter.get(variant, 0)
        launch_counter[variant] = index + 1
        duration = _float(row.get(DURATION))
        metrics = {m: v for m in KEY_METRICS if m in row.index and (v := _float(row[m])) is not None}
        for alias in DRAM_PCT[1:]:
            if DRAM_PCT[0] not in metrics and (v := _float(row.get(alias))) is not None:
                metrics[DRAM_PCT[0]] = v
        for name in (*DRAM_BYTES, *FLOP_COUNTERS.values(), *ROOFLINE_RATES.values()):
            if (v := _float(row.get(name))) is not None:
                metrics[name] = v
        launch = Launch(
            variant=variant,
            kernel=str(row.get("kernel")),
            launch=index,
            range=int(row["range"]) if _float(row.get("range")) is not None else None,
            action=int(row["action"]) if _float(row.get("action")) is not None else None,
            duration_ms=duration / 1e6 if duration is not None else None,
            metrics=metrics,
            occupancy_limiter=occupancy_limiter(row),
            findings=findings_by_row.get(int(i), []),
        )
        per_launch.append(launch)
        launches_of.setdefault(variant, []).append(launch)
        if int(i) in autotune_by_row:
            autotune_of.setdefault(variant, {})[launch.kernel] = autotune_by_row[int(i)]
        if variant and variant not in names:
            names.append(variant)

    reference_ms: float | None = None
    summaries: list[VariantSummary] = []
    for name in names:
        entry = (
            (manifest.get("variants") or {}).get(name) or (reference if name == REFERENCE_NAME else {}) or {}
        )
        variant_result = _variant_result(run.path, manifest, name)
        correctness = variant_result.get("correctness") or {}
        status = str(entry.get("status") or variant_result.get("status") or "unknown")
        if name == REFERENCE_NAME:
            correct: bool | None = None
        elif "passed" in correctness:
            correct = bool(correctness["passed"])
        else:
            correct = {"ok": True, "incorrect": False}.get(status)
        reps = (
            [float(t) for t in timings.loc[timings["variant"] == name, "median_ms"].tolist()]
            if len(timings) and "variant" in timings.columns
            else []
        )
        median_ms = statistics.median(reps) if reps else _float(entry.get("median_ms"))
        if name == REFERENCE_NAME:
            reference_ms = median_ms
        launches = launches_of.get(name, [])
        timed = [x for x in launches if x.duration_ms is not None]
        main = (
            max(timed, key=lambda x: x.duration_ms or 0.0) if timed else (launches[0] if launches else None)
        )
        summaries.append(
            VariantSummary(
                name=name,
                status=status,
                reason=entry.get("reason") or variant_result.get("reason"),
                correct=correct,
                rel_l2_error=_float(correctness.get("rel_l2_error")),
                max_abs_error=_float(correctness.get("max_abs_error")),
                median_ms=median_ms,
                reps=len(reps),
                timings_ms=reps,
                speedup_vs_reference=None,
                kernel_time_ms=sum(x.duration_ms or 0.0 for x in timed) if timed else None,
                main_kernel=main.kernel if main else None,
                registers=main.metrics.get(REGISTERS[0]) if main else None,
                occupancy_limiter=main.occupancy_limiter if main else None,
                dram_pct=main.metrics.get(DRAM_PCT[0]) if main else None,
                sm_pct=main.metrics.get(SM_PCT[0]) if main else None,
                l2_hit_pct=main.metrics.get(L2_HIT[0]) if main else None,
                launches=launches,
                autotune_blocks=autotune_of.get(name, {}),
            )
        )
    if reference_ms:
        summaries = [
            VariantSummary(
                **{
                    **s.__dict__,
                    "speedup_vs_reference": (reference_ms / s.median_ms)
                    if s.median_ms and not s.is_reference
                    else (1.0 if s.is_reference else None),
                }
            )
            for s in summaries
        ]
    peaks, notes = _gpu_peaks(table) if len(table) else ({}, [])
    gpu = dict(manifest.get("gpu") or {})
    if not gpu.get("name") and "gpu" in table.columns and table["gpu"].notna().any():
        gpu["name"] = str(table["gpu"].dropna().iloc[0])
    locations = _locations(names, per_launch, run.kernel_file, kernel_path)
    fired = {f.rule for s in summaries for f in s.findings}
    return ReportData(
        run_path=Path(run.path),
        created=manifest.get("created"),
        gpu=gpu,
        versions=dict(manifest.get("versions") or {}),
        options=dict(manifest.get("options") or {}),
        kernel_path=kernel_path,
        kernel_copy=run.kernel_file,
        variants=summaries,
        rules=[r for r in _rule_infos(rules) if r.id in fired]
        + [r for r in _rule_infos(rules) if r.id not in fired],
        locations=locations,
        gpu_peaks=peaks,
        notes=notes,
    )


def gpu_name(data: ReportData) -> str:
    """The GPU's display name: the manifest's, else the table's, else ``unknown GPU``."""
    return str(data.gpu.get("name") or "unknown GPU")


def severity_at_least(finding: Finding, level: str) -> bool:
    """True when ``finding`` is at or above ``level`` (info, warning, error)."""
    return finding.severity.rank >= Severity(level).rank


def variant_failures(variant: VariantSummary, fail_on: str | None) -> list[str]:
    """Why a variant fails a CI gate: incorrect / not run, or findings at or above ``fail_on``.

    Args:
        variant: the variant.
        fail_on: ``info``, ``warning``, ``error``, or None/``never`` for correctness only.
    """
    reasons: list[str] = []
    if variant.correct is False:
        reasons.append(f"incorrect: {variant.reason or 'output differs from the reference'}")
    elif variant.status not in ("ok", "incorrect", "skipped"):
        reasons.append(f"{variant.status}: {variant.reason or 'no result'}")
    if fail_on and fail_on != "never":
        for finding in variant.findings:
            if severity_at_least(finding, fail_on):
                reasons.append(
                    f"{finding.rule} {finding.name} ({finding.severity.value}) on "
                    f"{finding.kernel} launch {finding.launch}: {finding.message}"
                )
    return reasons


def _finding_json(finding: Finding, data: ReportData) -> dict[str, Any]:
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
        "location": {"path": where.path, "line": where.line, "what": where.what} if where else None,
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _json_value(value.item())
    return value


def report_dict(data: ReportData) -> dict[str, Any]:
    """The JSON report as a plain dict (schema: docs/report.md, ``REPORT_SCHEMA_VERSION``)."""
    variants = []
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
                    }
                    for x in v.launches
                ],
                "autotune_blocks": v.autotune_blocks,
            }
        )
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run": {"path": str(data.run_path), "created": data.created, "kernel_file": data.kernel_path},
        "gpu": data.gpu,
        "versions": data.versions,
        "options": {k: v for k, v in data.options.items() if k != "metrics"},
        "variants": variants,
        "findings": [_finding_json(f, data) for f in data.findings],
        "rules": [
            {"id": r.id, "name": r.name, "severity": r.severity, "summary": r.summary} for r in data.rules
        ],
        "notes": data.notes,
    }


def report_json(data: ReportData) -> str:
    """Render the JSON report (indented, keys in schema order)."""
    return json.dumps(report_dict(data), indent=2, default=str, allow_nan=False) + "\n"


def report_csv(data: ReportData) -> str:
    """Render the CSV report: one row per launch, columns ``CSV_COLUMNS`` (see docs/report.md)."""
    rows = []
    for v in data.variants:
        for x in v.launches:
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
                }
            )
            rows.append(row)
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def write_output(text: str, path: Path | None) -> None:
    """Write ``text`` to ``path`` atomically (nothing is left behind on failure); nothing when ``path`` is None."""
    if path is not None:
        write_text_atomic(Path(path), text)


__all__ = [
    "CSV_COLUMNS",
    "ID_COLUMNS",
    "KEY_METRICS",
    "REFERENCE_NAME",
    "REPORT_SCHEMA_VERSION",
    "Launch",
    "ReportData",
    "RuleInfo",
    "SourceLocation",
    "VariantSummary",
    "build_report",
    "gpu_name",
    "occupancy_limiter",
    "repo_relative",
    "report_csv",
    "report_dict",
    "report_json",
    "severity_at_least",
    "variant_failures",
    "write_output",
]
