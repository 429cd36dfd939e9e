"""The rule engine: a pure function from the tidy table (plus GPU spec and source facts) to findings.

Each rule is evaluated once over the whole table: every name an expression reads is a numpy array with
one element per launch, so the cost is per rule, not per row. Python only loops over the launches a
rule fires on (to fill in messages) and over the launches a rule has to skip (to give the reason).

Stages (``stage=``):
    ``all``         every rule.
    ``block-size``  block-size and bottleneck rules.
    ``fine-tune``   fine-tune and bottleneck rules.
    ``auto``        per launch: ``block-size`` when register pressure is present (registers per thread
                    > 128, or the register limit on blocks/SM is below every other limit, or local-memory
                    spill traffic > 0, or Triton's ``n_spills`` > 0), otherwise ``fine-tune``; bottleneck
                    rules always run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ncu_advisor.errors import InputError
from ncu_advisor.model import Finding, Proposal, Severity
from ncu_advisor.rules.schema import Rule
from ncu_advisor.kernelsrc.facts import SourceFacts, facts_for

STAGE_CHOICES = ("auto", "all", "block-size", "fine-tune")

#: The seeds' five metrics, then the register and occupancy metrics: what ``KernelResult.metrics`` holds.
SEED_METRICS = (
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "launch__grid_size",
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "lts__t_sector_hit_rate.pct",
)
PRESSURE_METRICS = (
    "launch__registers_per_thread",
    "launch__occupancy_limit_registers",
    "launch__occupancy_limit_shared_mem",
    "launch__occupancy_limit_warps",
    "launch__occupancy_limit_blocks",
    "sm__maximum_warps_per_active_cycle_pct",
    "gpu__time_duration.sum",
)
SUMMARY_METRICS = SEED_METRICS + PRESSURE_METRICS

#: GPU facts taken per launch from the report's own device attributes when present.
_DEVICE_ATTRIBUTES = {
    "gpu_sm_count": "device__attribute_multiprocessor_count",
    "gpu_max_warps_per_sm": "device__attribute_max_warps_per_multiprocessor",
    "gpu_max_registers_per_sm": "device__attribute_max_registers_per_multiprocessor",
    "gpu_l2_cache_bytes": "device__attribute_l2_cache_size",
}

_LOCAL_BYTES = ("l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum", "l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum")


@dataclass
class KernelResult:
    """The outcome for one kernel launch (one table row)."""

    kernel: str
    variant: str | None
    launch: int
    source: str | None = None
    gpu: str | None = None
    stage: str = "all"
    metrics: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    autotune_block: str | None = None


def resolve_column(columns: Any, name: str) -> str | None:
    """The table column holding metric ``name`` (through the catalogue's fallbacks when available)."""
    try:
        from ncu_advisor import metrics  # noqa: PLC0415 - the catalogue is optional
    except ImportError:
        return name if name in columns else None
    resolved = metrics.resolve(columns, name)
    if resolved is None and name in columns:
        return name
    return resolved


def _metric_values(table: pd.DataFrame, name: str) -> tuple[np.ndarray, str | None]:
    """Values of metric ``name`` per row, filled row by row from the catalogue's fallbacks, and the
    column that supplied them (None when no column did)."""
    try:
        from ncu_advisor import metrics  # noqa: PLC0415 - the catalogue is optional
    except ImportError:
        column = name if name in table.columns else None
        return _numeric(table, column), column
    series, used = metrics.column(table, name)
    if used is None and name not in table.columns:
        return np.full(len(table), np.nan), None
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values, used or name


def _numeric(table: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(table), np.nan)
    values: np.ndarray = pd.to_numeric(table[column], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return values


def gpu_environment(table: pd.DataFrame, gpu: Any = None) -> dict[str, Any]:
    """The ``gpu_*`` names: the report's device attributes per launch, completed by the GPU catalogue."""
    fields: dict[str, Any] = {}
    spec_values: Mapping[str, Any] = {}
    try:
        from ncu_advisor import gpus  # noqa: PLC0415 - the GPU catalogue is optional
    except ImportError:
        gpus = None  # type: ignore[assignment]
    if isinstance(gpu, Mapping):
        spec_values = gpu
    elif gpu is not None and gpus is not None:
        spec_values = gpus.spec_fields(gpu)
    elif gpus is not None and len(table):
        try:
            spec, _warnings = gpus.spec_for(table)
            spec_values = gpus.spec_fields(spec) if spec is not None else {}
        except InputError:
            spec_values = {}
    for name, value in spec_values.items():
        if name.startswith("gpu_") and isinstance(value, (int, float)) and not isinstance(value, bool):
            fields[name] = float(value)
    for name, column in _DEVICE_ATTRIBUTES.items():
        if column in table.columns:
            values = _numeric(table, column)
            if name in fields:
                values = np.where(np.isnan(values), fields[name], values)
            fields[name] = values
    return fields


def _source_environment(
    table: pd.DataFrame, source: SourceFacts | None
) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Per-row ``src_*`` arrays (NaN where unknown) and the KernelFacts of each row (or None).

    Facts are per (kernel, variant): a variant class's ``config`` can change the launch values.
    """
    n = len(table)
    kernels_of_rows: list[Any] = [None] * n
    if source is None or n == 0:
        return {}, kernels_of_rows
    names = table["kernel"].astype(str).tolist() if "kernel" in table.columns else [""] * n
    variants = (
        [
            None if v is None or (isinstance(v, float) and v != v) else str(v)
            for v in table["variant"].tolist()
        ]
        if "variant" in table.columns
        else [None] * n
    )
    keys = list(zip(names, variants, strict=True))
    per_key: dict[tuple[str, str | None], Any] = {}
    for key in dict.fromkeys(keys):
        kernel = source.kernel(key[0])
        per_key[key] = kernel.for_variant(key[1]) if kernel is not None else None
    facts_by_key = {key: facts_for(k) for key, k in per_key.items() if k is not None}
    all_fact_names = sorted({fact for facts in facts_by_key.values() for fact in facts})
    env = {fact: np.full(n, np.nan) for fact in all_fact_names}
    if facts_by_key:
        key_index = {key: number for number, key in enumerate(per_key)}
        row_keys = np.array([key_index[key] for key in keys])
        for key, facts in facts_by_key.items():
            rows = row_keys == key_index[key]
            for fact, value in facts.items():
                env[fact][rows] = value
    kernels_of_rows = [per_key[key] for key in keys]
    return env, kernels_of_rows


def pressure_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows with register pressure (the ``--stage auto`` criterion, see the module docstring)."""
    columns = table.columns
    registers = _numeric(table, resolve_column(columns, "launch__registers_per_thread"))
    limit_regs = _numeric(table, resolve_column(columns, "launch__occupancy_limit_registers"))
    others = [
        _numeric(table, resolve_column(columns, f"launch__occupancy_limit_{name}"))
        for name in ("shared_mem", "warps", "blocks")
    ]
    with np.errstate(invalid="ignore"):
        other_min = np.fmin(np.fmin(others[0], others[1]), others[2])
        pressure = registers > 128
        pressure |= limit_regs < other_min
        for column in _LOCAL_BYTES:
            pressure |= _numeric(table, resolve_column(columns, column)) > 0
        if "n_spills" in columns:
            pressure |= _numeric(table, "n_spills") > 0
    return np.asarray(pressure, dtype=bool)


def row_stages(table: pd.DataFrame, stage: str) -> np.ndarray:
    """The stage of each row: ``stage`` itself, or per-row block-size/fine-tune for ``auto``."""
    if stage not in STAGE_CHOICES:
        raise InputError(f"unknown stage {stage!r}", hint=f"use one of {', '.join(STAGE_CHOICES)}")
    if stage == "auto":
        return np.where(pressure_mask(table), "block-size", "fine-tune")
    return np.full(len(table), stage, dtype=object)


def _number(value: float) -> float | int:
    if value == value and float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return float(value)


def _python_values(values: np.ndarray) -> list[Any]:
    """Array -> list of Python numbers, whole numbers as ``int`` (vectorised ``_number``)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
    out = values.astype(object)
    if whole.any():
        out[whole] = values[whole].astype(np.int64).astype(object)
    listed: list[Any] = out.tolist()
    return listed


def evaluate(
    table: pd.DataFrame,
    rules: list[Rule],
    *,
    gpu: Any = None,
    source: SourceFacts | None = None,
    stage: str = "all",
) -> list[KernelResult]:
    """Apply ``rules`` to every launch of ``table``.

    Args:
        table: the tidy table (``ncu_advisor.table``), one row per launch.
        rules: from ``load_rules``.
        gpu: a GPU spec (``gpus.GpuSpec``) or a mapping of ``gpu_*`` fields; None: from the table.
        source: facts of the kernel file; rules reading ``src_*`` are skipped without it.
        stage: ``all``, ``block-size``, ``fine-tune`` or ``auto`` (see the module docstring).

    Returns:
        One ``KernelResult`` per row, in table order; findings sorted by estimated effect, largest first.
    """
    from ncu_advisor.analysis.proposals import propose  # noqa: PLC0415 - proposals import the engine's types

    # Reports keep metadata in ``table.attrs``, which pandas deep-copies on every column access: drop it
    # from a shallow view so that reading ~20 columns stays cheap on large tables.
    attrs = table.attrs
    table.attrs = {}
    try:
        view = table.copy(deep=False)
    finally:
        table.attrs = attrs
    table = view
    n = len(table)
    stages = row_stages(table, stage)
    columns = table.columns
    gpu_env = gpu_environment(table, gpu)
    src_env, kernels_of_rows = _source_environment(table, source)

    def id_values(column: str) -> list[Any]:
        if column not in columns:
            return [None] * n
        return [
            None if (v is None or (isinstance(v, float) and v != v)) else v for v in table[column].tolist()
        ]

    kernel_names = [str(k) if k is not None else "?" for k in id_values("kernel")]
    variants = id_values("variant")
    sources = id_values("source")
    gpu_names = id_values("gpu")
    launch_index = (
        table.groupby("source", sort=False, dropna=False).cumcount().to_numpy()
        if "source" in columns
        else np.arange(n)
    )
    summary_columns = {name: resolve_column(columns, name) for name in SUMMARY_METRICS}
    summary_values = {name: _numeric(table, col) for name, col in summary_columns.items() if col is not None}
    summary_lists = [
        (name, _python_values(values), np.isnan(values).tolist()) for name, values in summary_values.items()
    ]
    launch_list = launch_index.tolist()
    stage_list = [str(s) for s in stages.tolist()]

    results = [
        KernelResult(
            kernel=kernel_names[i],
            variant=str(variants[i]) if variants[i] is not None else None,
            launch=launch_list[i],
            source=str(sources[i]) if sources[i] is not None else None,
            gpu=str(gpu_names[i]) if gpu_names[i] is not None else None,
            stage=stage_list[i],
            metrics={name: values[i] for name, values, absent in summary_lists if not absent[i]},
        )
        for i in range(n)
    ]
    fired_rules: list[list[Rule]] = [[] for _ in range(n)]
    column_cache: dict[str, tuple[np.ndarray, str | None]] = {}

    for rule in rules:
        if rule.stage == "bottleneck" or stage == "all":
            active = np.ones(n, dtype=bool)
        else:
            active = stages == rule.stage
        if not active.any():
            continue
        env: dict[str, Any] = {}
        evidence_names: dict[str, str] = {}
        missing = np.zeros(n, dtype=bool)
        reasons: list[tuple[np.ndarray, str]] = []
        for requirement in rule.spec.requires:
            if requirement.name not in column_cache:
                column_cache[requirement.name] = _metric_values(table, requirement.name)
            values, column = column_cache[requirement.name]
            if requirement.default is not None:
                values = np.where(np.isnan(values), requirement.default, values)
            absent = np.isnan(values)
            if absent.any():
                why = "not in the report" if column is None else "has no value for this launch"
                reasons.append((absent, f"metric {requirement.name} {why}"))
                missing |= absent
            env[requirement.alias] = values
            evidence_names[requirement.alias] = column or requirement.name
        for name in sorted(rule.inputs):
            if name in env:
                continue
            if name.startswith("gpu_"):
                value = gpu_env.get(name)
                if value is None:
                    reasons.append((np.ones(n, dtype=bool), f"GPU spec field {name} unknown for this GPU"))
                    missing[:] = True
                    env[name] = np.full(n, np.nan)
                    continue
                values = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
                absent = np.isnan(values)
                if absent.any():
                    reasons.append((absent, f"GPU spec field {name} unknown for this GPU"))
                    missing |= absent
                env[name] = values
            elif name.startswith("src_"):
                values = src_env.get(name, np.full(n, np.nan))
                absent = np.isnan(values)
                if absent.any():
                    if source is None:
                        why = "needs the kernel source (--source FILE.py)"
                    else:
                        why = f"source fact {name} unknown (kernel not in the source file, or not a literal)"
                    reasons.append((absent, why))
                    missing |= absent
                env[name] = values
            evidence_names.setdefault(name, name)
        candidates = active & ~missing
        if reasons:
            first_reason = np.full(n, -1)
            for number, (absent, _why) in enumerate(reasons):
                first_reason[(first_reason < 0) & absent & active] = number
            # One shared (read-only) entry per reason: large tables skip the same rule on many rows.
            entries = [{"rule": rule.id, "reason": why} for _absent, why in reasons]
            for i, number in zip(
                np.flatnonzero(first_reason >= 0).tolist(),
                first_reason[first_reason >= 0].tolist(),
                strict=True,
            ):
                results[i].skipped.append(entries[number])
        if not candidates.any():
            continue
        for name, expression in rule.derived.items():
            env[name] = np.broadcast_to(np.asarray(expression.evaluate(env), dtype=np.float64), (n,))
        fire = np.asarray(rule.when.evaluate(env), dtype=bool)
        fire = np.broadcast_to(fire, (n,)) & candidates
        if not fire.any():
            continue
        effect = np.broadcast_to(np.asarray(rule.effect.evaluate(env), dtype=np.float64), (n,))
        effect = np.clip(np.nan_to_num(effect, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        rows = np.flatnonzero(fire)
        evidence_keys = [evidence_names.get(name, name) for name in sorted(rule.inputs)] + list(rule.derived)
        evidence_columns = [
            _python_values(np.broadcast_to(env[name], (n,))[rows])
            for name in [*sorted(rule.inputs), *rule.derived]
        ]
        message_columns = [
            (name, np.broadcast_to(np.asarray(env[name], dtype=np.float64), (n,))[rows].tolist())
            for name in rule.message_fields
        ]
        effect_list = effect[rows].tolist()
        spec = rule.spec
        for position, i in enumerate(rows.tolist()):
            message_values = {name: column[position] for name, column in message_columns}
            evidence: dict[str, Any] = {
                key: column[position] for key, column in zip(evidence_keys, evidence_columns, strict=True)
            }
            evidence["condition"] = rule.when.text
            results[i].findings.append(
                Finding(
                    rule=spec.id,
                    name=spec.name,
                    stage=spec.stage,
                    severity=spec.severity,
                    kernel=kernel_names[i],
                    launch=launch_list[i],
                    message=_format_message(spec.message, message_values),
                    recommendation=spec.recommendation,
                    evidence=evidence,
                    estimated_effect=effect_list[position],
                    effect_kind=spec.estimated_effect.kind,
                    effect_basis=spec.estimated_effect.basis,
                    variant=results[i].variant,
                )
            )
            fired_rules[i].append(rule)

    proposal_cache: dict[tuple[Any, ...], tuple[list[Proposal], str | None]] = {}
    rank = {severity: severity.rank for severity in Severity}
    for i, result in enumerate(results):
        if len(result.findings) > 1:
            result.findings.sort(key=lambda f: (-f.estimated_effect, -rank[f.severity], f.rule))
        kernel = kernels_of_rows[i]
        if kernel is None:
            continue
        key = (kernel.name, kernel.launch_params_key(), tuple(sorted(r.id for r in fired_rules[i])))
        if key not in proposal_cache:
            proposal_cache[key] = propose(kernel, fired_rules[i])
        result.proposals, result.autotune_block = proposal_cache[key]
    return results


def _format_message(template: str, values: dict[str, float]) -> str:
    try:
        return template.format_map(values)
    except (ValueError, KeyError):  # a format spec that does not suit the value: show plain numbers
        return template.format_map({k: _number(v) for k, v in values.items()}) if values else template
