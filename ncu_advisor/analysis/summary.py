"""The one per-variant summary of a run: the variant tables of ``profile``, ``report`` and ``compare``.

Per variant (the reference ``Model`` first when it ran): status, correctness, median time (median of the
per-repetition do_bench medians in ``timings.csv``, else the manifest's ``median_ms``), speed against the
reference, and for its longest launch (largest ``gpu__time_duration.sum``; its first launch without one):
registers per thread, Triton's ``n_spills``, occupancy limiter (the smallest of ncu's four
``launch__occupancy_limit_*`` blocks-per-SM limits), DRAM %, SM % and L2 hit rate.

The reference is the yardstick the others are checked against, never checked itself: its ``correct`` is
None ("not applicable"), whatever its status.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import InputError
from ncu_advisor.model import NO_ESTIMATE, Finding

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
SPILLS = "n_spills"
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
#: The metrics a launch summary keeps (the CSV report's metric columns, in order).
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


@dataclass(frozen=True)
class LaunchSummary:
    """One profiled kernel launch of a variant, with the few metrics the reports show.

    ``library`` is True for a kernel the kernel file does not define (cuDNN, PyTorch's own): its findings
    are shown apart, since they cannot be acted on from the Triton source.
    """

    variant: str
    kernel: str
    launch: int
    range: int | None
    action: int | None
    duration_ms: float | None
    metrics: dict[str, float]
    occupancy_limiter: str | None
    findings: list[Finding] = field(default_factory=list)
    library: bool = False


def _sorted_findings(found: list[Finding]) -> list[Finding]:
    """Largest global effect first (the launch's share of the variant's time x local effect, set by
    ``analysis.advice``; the local effect without it), then severity, rule, launch."""
    return sorted(
        found,
        key=lambda f: (
            f.effect_kind == NO_ESTIMATE,
            -float(f.evidence.get("global_effect", f.estimated_effect)),
            -f.severity.rank,
            f.rule,
            f.launch,
        ),
    )


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
    n_spills: float | None
    occupancy_limiter: str | None
    dram_pct: float | None
    sm_pct: float | None
    l2_hit_pct: float | None
    launches: list[LaunchSummary]
    autotune_blocks: dict[str, str]
    #: Timing repetitions that were NaN, infinite, zero or negative (left out of ``median_ms``).
    bad_timings: int = 0

    @property
    def findings(self) -> list[Finding]:
        """Findings on the variant's own (Triton) kernels, largest estimated effect first."""
        return _sorted_findings([f for x in self.launches if not x.library for f in x.findings])

    @property
    def library_findings(self) -> list[Finding]:
        """Findings on library kernels (cuDNN, PyTorch) of the variant, shown apart."""
        return _sorted_findings([f for x in self.launches if x.library for f in x.findings])

    @property
    def is_reference(self) -> bool:
        return self.name == REFERENCE_NAME

    @property
    def variant(self) -> str:
        """The variant's name (the summary table's first column)."""
        return self.name

    @property
    def kernel(self) -> str | None:
        """The variant's longest kernel."""
        return self.main_kernel


#: The profile command's name for a summary row.
SummaryRow = VariantSummary


def number(value: Any) -> float | None:
    """``value`` as a finite float, else None."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def occupancy_limiter(row: Mapping[str, Any] | pd.Series) -> str | None:
    """Name of the smallest of ncu's four blocks-per-SM limits (``registers``, ``shared_mem``, ``warps``,
    ``blocks``); ties go to the first in that order. None when no limit is in the row."""
    limits = {name: number(row.get(column)) for name, column in OCCUPANCY_LIMITS.items()}
    known = {name: value for name, value in limits.items() if value is not None}
    if not known:
        return None
    return min(known, key=lambda name: (known[name], list(OCCUPANCY_LIMITS).index(name)))


def launch_metrics(row: pd.Series) -> dict[str, float]:
    """The ``KEY_METRICS`` of one launch (DRAM % through its fallback name), plus the DRAM byte, FLOP and
    roofline counters the HTML report plots; only finite values."""
    metrics = {m: v for m in KEY_METRICS if m in row.index and (v := number(row[m])) is not None}
    for alias in DRAM_PCT[1:]:
        if DRAM_PCT[0] not in metrics and (v := number(row.get(alias))) is not None:
            metrics[DRAM_PCT[0]] = v
    for name in (*DRAM_BYTES, *FLOP_COUNTERS.values(), *ROOFLINE_RATES.values(), SPILLS):
        if (v := number(row.get(name))) is not None:
            metrics[name] = v
    return metrics


def _variant_result(run_path: Path | None, entry: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The variant's ``result.json`` (empty when absent). Raises InputError when it is unreadable."""
    if run_path is None:
        return {}
    path = run_path / str(entry.get("dir") or f"variants/{name}") / "result.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"variant result is unreadable ({exc})", path=path, hint="the run was damaged; profile again"
        ) from None
    return data if isinstance(data, dict) else {}


def _launches(
    table: pd.DataFrame, findings_by_row: Mapping[int, list[Finding]], library_rows: frozenset[int]
) -> list[LaunchSummary]:
    launches: list[LaunchSummary] = []
    counter: dict[str, int] = {}
    for i, row in table.iterrows():
        variant = str(row.get("variant")) if row.get("variant") is not None else ""
        index = counter.get(variant, 0)
        counter[variant] = index + 1
        duration = number(row.get(DURATION))
        launches.append(
            LaunchSummary(
                variant=variant,
                kernel=str(row.get("kernel")),
                launch=index,
                range=int(row["range"]) if number(row.get("range")) is not None else None,
                action=int(row["action"]) if number(row.get("action")) is not None else None,
                duration_ms=duration / 1e6 if duration is not None else None,
                metrics=launch_metrics(row),
                occupancy_limiter=occupancy_limiter(row),
                findings=list(findings_by_row.get(int(str(i)), [])),
                library=int(str(i)) in library_rows,
            )
        )
    return launches


def variant_names(manifest: Mapping[str, Any], table: pd.DataFrame) -> list[str]:
    """The variants of a run in manifest order, the reference first when it ran or has launches."""
    names: list[str] = []
    reference = manifest.get("reference") or {}
    in_table = set(table["variant"].dropna().astype(str)) if "variant" in table.columns else set()
    if reference.get("status") not in (None, "skipped", "pending") or REFERENCE_NAME in in_table:
        names.append(REFERENCE_NAME)
    names += [str(n) for n in (manifest.get("variants") or {}) if n != REFERENCE_NAME]
    if "variant" in table.columns:
        names += [v for v in dict.fromkeys(table["variant"].dropna().astype(str)) if v not in names]
    return names


def _timings_of(timings: pd.DataFrame, name: str) -> tuple[list[float], int]:
    """The variant's usable repetition medians (finite, > 0) and how many others there were."""
    if timings.empty or "variant" not in timings.columns or "median_ms" not in timings.columns:
        return [], 0
    values = pd.to_numeric(timings.loc[timings["variant"] == name, "median_ms"], errors="coerce").tolist()
    good = [float(v) for v in values if math.isfinite(v) and v > 0]
    return good, len(values) - len(good)


def _one_variant(
    name: str,
    entry: Mapping[str, Any],
    result: Mapping[str, Any],
    reps: tuple[list[float], int],
    launches: list[LaunchSummary],
    autotune_blocks: dict[str, str],
) -> VariantSummary:
    correctness = result.get("correctness") or {}
    status = str(entry.get("status") or result.get("status") or "unknown")
    correct: bool | None
    if name == REFERENCE_NAME:
        correct = None
    elif "passed" in correctness:
        correct = bool(correctness["passed"])
    else:
        correct = {"ok": True, "incorrect": False}.get(status)
    timed = [x for x in launches if x.duration_ms is not None]
    main = max(timed, key=lambda x: x.duration_ms or 0.0) if timed else (launches[0] if launches else None)
    metrics = main.metrics if main else {}
    timings_ms, bad_timings = reps
    recorded = number(entry.get("median_ms"))
    if recorded is not None and recorded <= 0:
        recorded, bad_timings = None, bad_timings + 1
    return VariantSummary(
        name=name,
        status=status,
        reason=entry.get("reason") or result.get("reason"),
        correct=correct,
        rel_l2_error=number(correctness.get("rel_l2_error")),
        max_abs_error=number(correctness.get("max_abs_error")),
        median_ms=statistics.median(timings_ms) if timings_ms else recorded,
        reps=len(timings_ms),
        timings_ms=timings_ms,
        speedup_vs_reference=None,
        kernel_time_ms=sum(x.duration_ms or 0.0 for x in timed) if timed else None,
        main_kernel=main.kernel if main else None,
        registers=metrics.get(REGISTERS[0]),
        n_spills=metrics.get(SPILLS),
        occupancy_limiter=main.occupancy_limiter if main else None,
        dram_pct=metrics.get(DRAM_PCT[0]),
        sm_pct=metrics.get(SM_PCT[0]),
        l2_hit_pct=metrics.get(L2_HIT[0]),
        launches=launches,
        autotune_blocks=autotune_blocks,
        bad_timings=bad_timings,
    )


def summarize(
    manifest: Mapping[str, Any],
    table: pd.DataFrame,
    timings: pd.DataFrame,
    *,
    run_path: Path | None = None,
    findings_by_row: Mapping[int, list[Finding]] | None = None,
    autotune_by_row: Mapping[int, str] | None = None,
    library_rows: frozenset[int] = frozenset(),
) -> list[VariantSummary]:
    """One summary per variant (see the module docstring), reference first.

    Args:
        manifest: the run's manifest (``{}`` for bare reports).
        table: the tidy table; its index labels are the row numbers the ``*_by_row`` maps use.
        timings: ``variant, rep, median_ms`` rows (may be empty).
        run_path: the run directory, to read each variant's ``result.json`` (correctness details).
        findings_by_row: findings per table row; autotune_by_row: ready-to-paste autotune block per row.
        library_rows: table rows whose kernel the kernel file does not define.

    Raises:
        InputError: a variant's ``result.json`` is unreadable.
    """
    launches = _launches(table, findings_by_row or {}, library_rows)
    autotune: dict[str, dict[str, str]] = {}
    for label, block in (autotune_by_row or {}).items():
        position = table.index.get_loc(label)
        launch = launches[position if isinstance(position, int) else 0]
        autotune.setdefault(launch.variant, {})[launch.kernel] = block
    variants = manifest.get("variants") or {}
    summaries = []
    for name in variant_names(manifest, table):
        is_ref = name == REFERENCE_NAME
        entry = variants.get(name) or ((manifest.get("reference") or {}) if is_ref else {}) or {}
        summaries.append(
            _one_variant(
                name,
                entry,
                _variant_result(run_path, entry, name),
                _timings_of(timings, name),
                [x for x in launches if x.variant == name],
                autotune.get(name, {}),
            )
        )
    reference_ms = next((s.median_ms for s in summaries if s.is_reference), None)
    if not reference_ms:
        return summaries
    return [
        replace(s, speedup_vs_reference=1.0)
        if s.is_reference
        else (replace(s, speedup_vs_reference=reference_ms / s.median_ms) if s.median_ms else s)
        for s in summaries
    ]


def summary_rows(
    manifest: Mapping[str, Any], table: pd.DataFrame, timings: pd.DataFrame, run_path: Path | None = None
) -> list[VariantSummary]:
    """The summary table ``profile`` prints: ``summarize`` without rules."""
    return summarize(manifest, table.reset_index(drop=True), timings, run_path=run_path)
