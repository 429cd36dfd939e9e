"""Per-launch inputs of rule expressions: metric columns (through the catalogue's fallbacks), ``gpu_*`` facts,
``src_*`` source facts, and the ``--stage auto`` pressure criterion. Every value is a numpy array with one
element per table row (NaN where unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ncu_advisor.errors import InputError
from ncu_advisor.kernelsrc.facts import SourceFacts, facts_for

STAGE_CHOICES = ("auto", "all", "block-size", "fine-tune")

#: GPU facts taken per launch from the report's own device attributes when present, in order: ncu's
#: details page and text output carry no ``device__attribute_*`` but print "# SMs" of Launch Statistics
#: (``launch__sm_count``, the SMs the launch could use); without it, a details CSV or text of an unnamed
#: GPU left gpu_sm_count unknown and NA307 failed on every launch (red team 5, D1).
_DEVICE_ATTRIBUTES = {
    "gpu_sm_count": ("device__attribute_multiprocessor_count", "launch__sm_count"),
    "gpu_max_warps_per_sm": ("device__attribute_max_warps_per_multiprocessor",),
    "gpu_max_registers_per_sm": ("device__attribute_max_registers_per_multiprocessor",),
    "gpu_l2_cache_bytes": ("device__attribute_l2_cache_size",),
}

_LOCAL_BYTES = (
    "l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum",
    "l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum",
)


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


def metric_values(table: pd.DataFrame, name: str) -> tuple[np.ndarray, str | None]:
    """Values of metric ``name`` per row, filled row by row from the catalogue's fallbacks, and the
    column that supplied them (None when no column did)."""
    try:
        from ncu_advisor import metrics  # noqa: PLC0415 - the catalogue is optional
    except ImportError:
        column = name if name in table.columns else None
        return numeric(table, column), column
    series, used = metrics.column(table, name)
    if used is None and name not in table.columns:
        return np.full(len(table), np.nan), None
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values, used or name


def numeric(table: pd.DataFrame, column: str | None) -> np.ndarray:
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
    for name, columns in _DEVICE_ATTRIBUTES.items():
        present = [c for c in columns if c in table.columns]
        if not present:
            continue
        values = numeric(table, present[0])
        for column in present[1:]:
            values = np.where(np.isnan(values), numeric(table, column), values)
        if name in fields:
            values = np.where(np.isnan(values), fields[name], values)
        fields[name] = values
    return fields


def source_environment(
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
    choices = (
        [None if c != c else int(c) for c in table["autotune_choice"].astype(float).tolist()]
        if "autotune_choice" in table.columns
        else [None] * n
    )
    keys = list(zip(names, variants, choices, strict=True))
    per_key: dict[tuple[str, str | None, int | None], Any] = {}
    for key in dict.fromkeys(keys):
        kernel = source.kernel(key[0])
        own = kernel.for_variant(key[1]) if kernel is not None else None
        per_key[key] = replace(own, autotune_choice=key[2]) if own is not None else None
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
    registers = numeric(table, resolve_column(columns, "launch__registers_per_thread"))
    limit_regs = numeric(table, resolve_column(columns, "launch__occupancy_limit_registers"))
    others = [
        numeric(table, resolve_column(columns, f"launch__occupancy_limit_{name}"))
        for name in ("shared_mem", "warps", "blocks")
    ]
    with np.errstate(invalid="ignore"):
        other_min = np.fmin(np.fmin(others[0], others[1]), others[2])
        pressure = registers > 128
        pressure |= limit_regs < other_min
        for column in _LOCAL_BYTES:
            pressure |= numeric(table, resolve_column(columns, column)) > 0
        if "n_spills" in columns:
            pressure |= numeric(table, "n_spills") > 0
    return np.asarray(pressure, dtype=bool)


def row_stages(table: pd.DataFrame, stage: str) -> np.ndarray:
    """The stage of each row: ``stage`` itself, or per-row block-size/fine-tune for ``auto``."""
    if stage not in STAGE_CHOICES:
        raise InputError(f"unknown stage {stage!r}", hint=f"use one of {', '.join(STAGE_CHOICES)}")
    if stage == "auto":
        return np.where(pressure_mask(table), "block-size", "fine-tune")
    return np.full(len(table), stage, dtype=object)


def number(value: float) -> float | int:
    if value == value and float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return float(value)


def python_values(values: np.ndarray) -> list[Any]:
    """Array -> list of Python numbers, whole numbers as ``int`` (vectorised ``number``)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
    out = values.astype(object)
    if whole.any():
        out[whole] = values[whole].astype(np.int64).astype(object)
    listed: list[Any] = out.tolist()
    return listed
