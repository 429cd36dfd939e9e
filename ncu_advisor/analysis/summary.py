"""The per-variant summary of a run (pure pandas: works on any machine, from a ``LoadedRun`` or a fresh run).

One row per variant: status, correct, median ms (median of the ``reps`` do_bench medians), speed vs the
reference, and, for the variant's longest kernel launch (by ``gpu__time_duration.sum``): registers per thread,
occupancy limiter (the smallest of the four ``launch__occupancy_limit_*`` block limits), DRAM % and SM %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

DURATION = "gpu__time_duration.sum"
REGISTERS = "launch__registers_per_thread"
DRAM_PCT = "dram__throughput.avg.pct_of_peak_sustained_elapsed"
DRAM_PCT_FALLBACK = "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"
SM_PCT = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
OCCUPANCY_LIMITS = {
    "registers": "launch__occupancy_limit_registers",
    "shared_mem": "launch__occupancy_limit_shared_mem",
    "warps": "launch__occupancy_limit_warps",
    "blocks": "launch__occupancy_limit_blocks",
}


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary table."""

    variant: str
    status: str
    correct: bool | None
    median_ms: float | None
    speedup_vs_reference: float | None
    kernel: str | None
    registers: float | None
    n_spills: float | None
    occupancy_limiter: str | None
    dram_pct: float | None
    sm_pct: float | None
    reason: str | None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def median_ms(timings: pd.DataFrame, variant: str) -> float | None:
    """Median over the repetitions of one variant's do_bench medians."""
    if timings.empty or "variant" not in timings:
        return None
    values = pd.to_numeric(timings.loc[timings["variant"] == variant, "median_ms"], errors="coerce").dropna()
    return float(values.median()) if len(values) else None


def occupancy_limiter(row: pd.Series) -> str | None:
    """The name of the smallest ``launch__occupancy_limit_*`` (blocks per SM) of one launch."""
    limits = {name: _number(row.get(column)) for name, column in OCCUPANCY_LIMITS.items()}
    known = {name: value for name, value in limits.items() if value is not None}
    if not known:
        return None
    return min(known, key=lambda name: known[name])


def longest_launch(table: pd.DataFrame, variant: str) -> pd.Series | None:
    """The variant's launch with the largest ``gpu__time_duration.sum`` (its first launch without it)."""
    if table.empty or "variant" not in table:
        return None
    rows = table[table["variant"] == variant]
    if rows.empty:
        return None
    if DURATION in rows:
        durations = pd.to_numeric(rows[DURATION], errors="coerce")
        if durations.notna().any():
            return rows.loc[durations.idxmax()]
    return rows.iloc[0]


def summary_rows(manifest: dict[str, Any], table: pd.DataFrame, timings: pd.DataFrame) -> list[SummaryRow]:
    """One summary row per variant of a run, reference first when it was timed."""
    reference_name = (manifest.get("reference") or {}).get("name", "Model")
    reference_ms = median_ms(timings, reference_name)
    entries: list[tuple[str, dict[str, Any]]] = []
    reference = manifest.get("reference") or {}
    if reference.get("status") not in (None, "skipped", "pending"):
        entries.append((reference_name, reference))
    entries += list((manifest.get("variants") or {}).items())
    rows: list[SummaryRow] = []
    for name, info in entries:
        status = (info or {}).get("status", "pending")
        ms = median_ms(timings, name)
        launch = longest_launch(table, name)
        dram = sm = regs = spills = None
        limiter = kernel = None
        if launch is not None:
            kernel = str(launch.get("kernel")) if launch.get("kernel") is not None else None
            regs = _number(launch.get(REGISTERS))
            spills = _number(launch.get("n_spills"))
            dram = _number(launch.get(DRAM_PCT))
            if dram is None:
                dram = _number(launch.get(DRAM_PCT_FALLBACK))
            sm = _number(launch.get(SM_PCT))
            limiter = occupancy_limiter(launch)
        correct: bool | None = {"ok": True, "incorrect": False}.get(status)
        if name == reference_name and status == "ok":
            correct = True
        rows.append(
            SummaryRow(
                variant=name,
                status=status,
                correct=correct,
                median_ms=ms,
                speedup_vs_reference=(reference_ms / ms) if (reference_ms and ms) else None,
                kernel=kernel,
                registers=regs,
                n_spills=spills,
                occupancy_limiter=limiter,
                dram_pct=dram,
                sm_pct=sm,
                reason=(info or {}).get("reason"),
            )
        )
    return rows
