"""The rule engine: a pure function from the tidy table (plus GPU spec and source facts) to findings.

A rule's ``info_when`` (optional) states its finding as info on the launches where it also holds, with the
expression as ``evidence["info_because"]``; message fields whose metric was a ``default`` stand-in read
"not measured".

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

import math
import string
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ncu_advisor.kernelsrc.facts import SourceFacts
from ncu_advisor.model import NO_ESTIMATE, Finding, Proposal, Severity
from ncu_advisor.rules.because import because_text
from ncu_advisor.rules.environment import (
    STAGE_CHOICES,
    gpu_environment,
    metric_values,
    number,
    numeric,
    pressure_mask,
    python_values,
    resolve_column,
    row_stages,
    source_environment,
)
from ncu_advisor.rules.schema import Rule

__all__ = [
    "PRESSURE_METRICS",
    "SEED_METRICS",
    "STAGE_CHOICES",
    "SUMMARY_METRICS",
    "KernelResult",
    "evaluate",
    "gpu_environment",
    "pressure_mask",
    "resolve_column",
    "row_stages",
]

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


#: Rows a rule skips, why, and the metric or fact that was absent (None for other reasons).
_Reason = tuple[np.ndarray, str, str | None]


@dataclass
class KernelResult:
    """The outcome for one kernel launch (one table row).

    ``roofline`` is the launch's roofline headline (``analysis.roofline.Roofline``) when the report has the
    metrics; ``notes`` are statements the output shows beside the findings (roofline suppressions, where a
    measurement contradicts a seed rule); ``suppressed`` holds findings withheld with the reason in ``notes``;
    ``user_kernel`` is True/False when a kernel source was given (False: a library kernel such as cuDNN's,
    which the user's file does not define), None otherwise; ``time_share`` is the launch's share of its
    variant's GPU time (0..1) when durations are known.
    """

    kernel: str
    variant: str | None
    launch: int
    source: str | None = None
    gpu: str | None = None
    stage: str = "all"
    metrics: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[dict[str, str | None]] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    autotune_block: str | None = None
    roofline: Any = None
    notes: list[str] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    #: rules that had every input on this launch and were evaluated (fired or not); 0 with rules active
    #: means nothing was checked: ``analysis.pipeline`` refuses such an input (exit 2)
    checked: int = 0
    user_kernel: bool | None = None
    time_share: float | None = None


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
        One ``KernelResult`` per row, in table order; findings sorted by estimated effect, largest first,
        then finished by ``analysis.advice.finish`` (roofline, consistent proposals, ranking by time share).
    """
    from ncu_advisor.analysis.advice import finish  # noqa: PLC0415 - advice imports the engine's types

    table = _light_view(table)
    stages = row_stages(table, stage)
    context = _Context(
        table=table,
        stages=stages,
        stage=stage,
        gpu_env=gpu_environment(table, gpu),
        source=source,
    )
    context.src_env, context.kernels_of_rows = source_environment(table, source)
    results = _new_results(table, stages)
    fired_rules: list[list[Rule]] = [[] for _ in range(len(table))]
    for rule in rules:
        _apply_rule(rule, context, results, fired_rules)
    rank = {severity: severity.rank for severity in Severity}
    for result in results:
        if len(result.findings) > 1:
            result.findings.sort(
                key=lambda f: (f.effect_kind == NO_ESTIMATE, -f.estimated_effect, -rank[f.severity], f.rule)
            )
    finish(results, table, fired_rules, context.kernels_of_rows, gpu=gpu, source=source)
    return results


def _light_view(table: pd.DataFrame) -> pd.DataFrame:
    """A shallow view without ``attrs``: pandas deep-copies attrs on every column access, which makes
    reading ~20 columns of a large report slow."""
    attrs = table.attrs
    table.attrs = {}
    try:
        view = table.copy(deep=False)
    finally:
        table.attrs = attrs
    return view


@dataclass
class _Context:
    """What every rule's evaluation reads: the table, per-row stages, gpu_* and src_* arrays."""

    table: pd.DataFrame
    stages: np.ndarray
    stage: str
    gpu_env: dict[str, Any]
    source: SourceFacts | None
    src_env: dict[str, np.ndarray] = field(default_factory=dict)
    kernels_of_rows: list[Any] = field(default_factory=list)
    column_cache: dict[str, tuple[np.ndarray, str | None]] = field(default_factory=dict)
    defaulted: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (rule, alias) -> rows


def _id_values(table: pd.DataFrame, column: str) -> list[Any]:
    if column not in table.columns:
        return [None] * len(table)
    return [None if (v is None or (isinstance(v, float) and v != v)) else v for v in table[column].tolist()]


def _new_results(table: pd.DataFrame, stages: np.ndarray) -> list[KernelResult]:
    """One empty ``KernelResult`` per row with its identity and summary metrics."""
    n = len(table)
    columns = table.columns
    kernel_names = [str(k) if k is not None else "?" for k in _id_values(table, "kernel")]
    variants = _id_values(table, "variant")
    sources = _id_values(table, "source")
    gpu_names = _id_values(table, "gpu")
    launch_index = (
        table.groupby("source", sort=False, dropna=False).cumcount().to_numpy()
        if "source" in columns
        else np.arange(n)
    )
    summary_values = {
        name: numeric(table, column)
        for name in SUMMARY_METRICS
        if (column := resolve_column(columns, name)) is not None
    }
    summary_lists = [
        (name, python_values(values), np.isnan(values).tolist()) for name, values in summary_values.items()
    ]
    launch_list = launch_index.tolist()
    return [
        KernelResult(
            kernel=kernel_names[i],
            variant=str(variants[i]) if variants[i] is not None else None,
            launch=launch_list[i],
            source=str(sources[i]) if sources[i] is not None else None,
            gpu=str(gpu_names[i]) if gpu_names[i] is not None else None,
            stage=str(stages[i]),
            metrics={name: values[i] for name, values, absent in summary_lists if not absent[i]},
        )
        for i in range(n)
    ]


def _rule_inputs(
    rule: Rule, context: _Context
) -> tuple[dict[str, Any], dict[str, str], np.ndarray, list[_Reason]]:
    """The arrays a rule reads, the column each came from, the rows missing one, and why."""
    n = len(context.table)
    env: dict[str, Any] = {}
    evidence_names: dict[str, str] = {}
    missing = np.zeros(n, dtype=bool)
    reasons: list[_Reason] = []
    for requirement in rule.spec.requires:
        if requirement.name not in context.column_cache:
            context.column_cache[requirement.name] = metric_values(context.table, requirement.name)
        values, column = context.column_cache[requirement.name]
        if requirement.default is not None:
            context.defaulted[(rule.id, requirement.alias)] = np.isnan(values)
            values = np.where(np.isnan(values), requirement.default, values)
        absent = np.isnan(values)
        if absent.any():
            why = "not in the report" if column is None else "has no value for this launch"
            reasons.append((absent, f"metric {requirement.name} {why}", requirement.name))
            missing |= absent
        env[requirement.alias] = values
        evidence_names[requirement.alias] = column or requirement.name
    for name in sorted(rule.inputs):
        if name in env:
            continue
        values, why = _fact_values(name, context)
        absent = np.isnan(values)
        if absent.any():
            reasons.append((absent, why, name))
            missing |= absent
        env[name] = values
        evidence_names.setdefault(name, name)
    return env, evidence_names, missing, reasons


def _fact_values(name: str, context: _Context) -> tuple[np.ndarray, str]:
    """A ``gpu_*`` or ``src_*`` name's values per row and the reason given where they are unknown."""
    n = len(context.table)
    if name.startswith("gpu_"):
        value = context.gpu_env.get(name)
        values = np.full(n, np.nan) if value is None else np.asarray(value, dtype=np.float64)
        return np.broadcast_to(values, (n,)), f"GPU spec field {name} unknown for this GPU"
    values = context.src_env.get(name, np.full(n, np.nan))
    if context.source is None:
        return values, "needs the kernel source (--source FILE.py)"
    return values, f"source fact {name} unknown (kernel not in the source file, or not a literal)"


def _record_skips(
    rule: Rule, reasons: list[_Reason], active: np.ndarray, results: list[KernelResult]
) -> None:
    """Tell each active row a rule skips the first reason it was skipped for."""
    if not reasons:
        return
    first_reason = np.full(len(results), -1)
    for number_, (absent, _why, _name) in enumerate(reasons):
        first_reason[(first_reason < 0) & absent & active] = number_
    # One shared (read-only) entry per reason: large tables skip the same rule on many rows.
    # ``missing``: the metric or gpu_/src_ fact that was absent (None for other reasons), so every output
    # can say which metrics a "no findings" launch lacked.
    entries = [{"rule": rule.id, "reason": why, "missing": name} for _absent, why, name in reasons]
    rows = np.flatnonzero(first_reason >= 0)
    for i, number_ in zip(rows.tolist(), first_reason[rows].tolist(), strict=True):
        results[i].skipped.append(entries[number_])


def _apply_rule(
    rule: Rule, context: _Context, results: list[KernelResult], fired_rules: list[list[Rule]]
) -> None:
    """Evaluate one rule over every row and append its findings to the rows it fires on."""
    n = len(context.table)
    if rule.stage == "bottleneck" or context.stage == "all":
        active = np.ones(n, dtype=bool)
    else:
        active = context.stages == rule.stage
    if not active.any():
        return
    env, evidence_names, missing, reasons = _rule_inputs(rule, context)
    _record_skips(rule, reasons, active, results)
    candidates = active & ~missing
    if not candidates.any():
        return
    divided_by_zero = np.zeros(n, dtype=bool)
    for name, expression in rule.derived.items():
        divided_by_zero |= np.broadcast_to(np.asarray(expression.zero_divisions(env), dtype=bool), (n,))
        env[name] = np.broadcast_to(np.asarray(expression.evaluate(env), dtype=np.float64), (n,))
    divided_by_zero |= np.broadcast_to(np.asarray(rule.when.zero_divisions(env), dtype=bool), (n,))
    if (divided_by_zero & candidates).any():
        why = "division by zero in its expressions"
        _record_skips(rule, [(divided_by_zero, why, None)], candidates, results)
        candidates = candidates & ~divided_by_zero
    _count_checked(rule, context, candidates, results)
    fire = np.broadcast_to(np.asarray(rule.when.evaluate(env), dtype=bool), (n,)) & candidates
    if not fire.any():
        return
    effect = np.broadcast_to(np.asarray(rule.effect.evaluate(env), dtype=np.float64), (n,))
    effect = np.where(np.isfinite(effect), np.clip(effect, 0.0, 1.0), np.nan)  # inf/NaN: no estimate
    rows = np.flatnonzero(fire)
    findings = _findings(rule, env, evidence_names, rows, effect, results, context.defaulted)
    if rule.info_when is not None:
        for name in rule.info_when.names - env.keys():
            env[name] = _fact_values(name, context)[0]  # unknown: NaN, which no comparison holds for
        as_info = np.broadcast_to(np.asarray(rule.info_when.evaluate(env), dtype=bool), (n,))[rows]
        because = because_text(rule)
        for position, demote in enumerate(as_info.tolist()):
            if demote and findings[position].severity.rank > Severity.INFO.rank:
                findings[position].evidence["info_because"] = because
                findings[position] = replace(findings[position], severity=Severity.INFO)
    for result_index, finding in zip(rows.tolist(), findings, strict=True):
        results[result_index].findings.append(finding)
        fired_rules[result_index].append(rule)


def _count_checked(
    rule: Rule, context: _Context, candidates: np.ndarray, results: list[KernelResult]
) -> None:
    """Count the rule as checked on the candidate rows where at least one metric it requires was measured
    (a rule whose every metric stood at its ``default`` judged nothing there)."""
    n = len(context.table)
    real = np.zeros(n, dtype=bool) if rule.spec.requires else np.ones(n, dtype=bool)
    for requirement in rule.spec.requires:
        real |= ~np.isnan(context.column_cache[requirement.name][0])
    for index in np.flatnonzero(candidates & real).tolist():
        results[index].checked += 1


def _findings(
    rule: Rule,
    env: dict[str, Any],
    evidence_names: dict[str, str],
    rows: np.ndarray,
    effect: np.ndarray,
    results: list[KernelResult],
    defaulted: dict[tuple[str, str], np.ndarray],
) -> list[Finding]:
    """The findings of one rule on the rows it fires on, with evidence and filled-in messages."""
    n = len(results)
    names = [*sorted(rule.inputs), *rule.derived]
    evidence_keys = [evidence_names.get(name, name) for name in sorted(rule.inputs)] + list(rule.derived)
    evidence_columns = [python_values(np.broadcast_to(env[name], (n,))[rows]) for name in names]
    message_columns = [
        (name, np.broadcast_to(np.asarray(env[name], dtype=np.float64), (n,))[rows].tolist())
        for name in rule.message_fields
    ]
    unmeasured = _unmeasured(rule, defaulted, n)
    booleans = frozenset(name for name, unit in rule.spec.units.items() if unit == "boolean")
    effect_list = effect[rows].tolist()
    spec = rule.spec
    findings: list[Finding] = []
    for position, i in enumerate(rows.tolist()):
        evidence: dict[str, Any] = {
            key: column[position] for key, column in zip(evidence_keys, evidence_columns, strict=True)
        }
        for name, key in zip(names, evidence_keys, strict=False):  # a default stood in: not a measurement
            stood_in = defaulted.get((rule.id, name))
            if stood_in is not None and stood_in[i]:
                evidence[key] = None
        for name in rule.derived:  # derived only from stand-ins (local_bytes = -1): not a measurement
            if name in unmeasured and unmeasured[name][i]:
                evidence[name] = None
        evidence["condition"] = rule.when.text
        findings.append(
            Finding(
                rule=spec.id,
                name=spec.name,
                stage=spec.stage,
                severity=spec.severity,
                kernel=results[i].kernel,
                launch=results[i].launch,
                message=_format_message(
                    spec.message,
                    {name: col[position] for name, col in message_columns},
                    {name for name, rows_ in unmeasured.items() if rows_[i]},
                    booleans,
                ),
                recommendation=spec.recommendation,
                evidence=evidence,
                estimated_effect=0.0 if math.isnan(effect_list[position]) else effect_list[position],
                effect_kind=NO_ESTIMATE if math.isnan(effect_list[position]) else spec.estimated_effect.kind,
                effect_basis=spec.estimated_effect.basis,
                variant=results[i].variant,
            )
        )
    return findings


def _unmeasured(rule: Rule, defaulted: dict[tuple[str, str], np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Per message field and derived value, the rows where its value is not a measurement: an alias whose
    default stood in, or a derived value every input of which (transitively) is such an alias on that row."""
    stood_in = {alias: rows for (rule_id, alias), rows in defaulted.items() if rule_id == rule.id}
    never = np.zeros(n, dtype=bool)

    def leaves(name: str, seen: frozenset[str]) -> set[str]:
        expression = rule.derived.get(name)
        if expression is None or name in seen:
            return {name}
        found: set[str] = set()
        for read in expression.names:
            found |= leaves(read, seen | {name})
        return found

    out: dict[str, np.ndarray] = {}
    for name in {*rule.message_fields, *rule.derived}:
        inputs = leaves(name, frozenset())
        if inputs & set(stood_in):
            rows = [np.broadcast_to(stood_in.get(a, never), (n,)) for a in inputs]
            out[name] = np.logical_and.reduce(rows)
    return out


def _format_message(
    template: str,
    values: dict[str, float],
    unmeasured: set[str] | frozenset[str] = frozenset(),
    booleans: frozenset[str] = frozenset(),
) -> str:
    """Fill ``template``; a field in ``unmeasured`` (a default stood in for its metric): "not measured";
    one the rule's ``units`` call ``boolean`` (a comparison): "yes"/"no", never 1/0."""
    parts: list[str] = []
    drop_percent = False  # "{x:.1f}%" of an unmeasured x reads "not measured", not "not measured%"
    for literal, name, spec, _conversion in string.Formatter().parse(template):
        parts.append(literal[1:] if drop_percent and literal.startswith("%") else literal)
        drop_percent = False
        if name is None:
            continue
        if name in unmeasured:
            parts.append("not measured")
            drop_percent = True
            continue
        value = values.get(name)
        if name in booleans and isinstance(value, (int, float)):
            parts.append("yes" if value else "no")
            continue
        try:
            parts.append(format(value, spec or ""))
        except (ValueError, TypeError):  # a format spec that does not suit the value: a plain number
            parts.append(str(number(value)) if isinstance(value, (int, float)) else str(value))
    return "".join(parts)
