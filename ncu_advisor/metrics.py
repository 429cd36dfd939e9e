"""The metric catalogue: meaning, unit and fallback names of the ncu metrics ncu-advisor uses.

The data lives in ``metrics.yaml`` beside this module. A fallback is another name for the same quantity
in the same unit (older ncu versions, section-based reports); ``resolve``/``column`` return the name
actually used, so callers can say when a fallback was taken (``fallback_note``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd
import yaml

from ncu_advisor.errors import InputError

_KINDS = frozenset(
    {"throughput", "occupancy", "launch", "memory", "time", "cache", "clock", "profiler", "device"}
)


@dataclass(frozen=True)
class MetricInfo:
    """One catalogue entry.

    Attributes:
        name: full ncu metric name (the table column).
        meaning: one-line description.
        unit: base unit as ``ncu_report`` states it ("" for counts and ratios).
        fallbacks: other names of the same quantity in the same unit, tried in order.
        kind: throughput, occupancy, launch, memory, time, cache, clock, profiler or device.
    """

    name: str
    meaning: str
    unit: str
    fallbacks: tuple[str, ...]
    kind: str


def _load_entries() -> list[dict[str, Any]]:
    text = resources.files("ncu_advisor").joinpath("metrics.yaml").read_text(encoding="utf-8")
    # libyaml's loader when built in (0.1 s of Python scanning otherwise, on every read of a table)
    entries = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(entries, list):
        raise InputError("the metric catalogue is not a list", path="ncu_advisor/metrics.yaml")
    allowed = {"name", "meaning", "unit", "kind", "fallbacks", "core"}
    for entry in entries:
        if not isinstance(entry, dict) or not {"name", "meaning", "unit", "kind"} <= set(entry):
            raise InputError(
                f"catalogue entry {entry!r} lacks name/meaning/unit/kind", path="ncu_advisor/metrics.yaml"
            )
        unknown = set(entry) - allowed
        if unknown:
            raise InputError(
                f"catalogue entry {entry['name']} has unknown keys {sorted(unknown)}",
                path="ncu_advisor/metrics.yaml",
            )
        if entry["kind"] not in _KINDS:
            raise InputError(
                f"catalogue entry {entry['name']} has unknown kind {entry['kind']!r}",
                path="ncu_advisor/metrics.yaml",
            )
    return entries


@functools.cache
def catalogue() -> dict[str, MetricInfo]:
    """All catalogue entries by metric name, in file order."""
    return {
        entry["name"]: MetricInfo(
            name=entry["name"],
            meaning=entry["meaning"],
            unit=str(entry["unit"]),
            fallbacks=tuple(entry.get("fallbacks") or ()),
            kind=entry["kind"],
        )
        for entry in _load_entries()
    }


CORE_METRICS: tuple[str, ...] = tuple(entry["name"] for entry in _load_entries() if entry.get("core"))


def resolve(columns: Iterable[str], name: str) -> str | None:
    """The column to read for ``name``: itself if present, else its first fallback present, else None.

    Args:
        columns: the table's columns (or any names available).
        name: a metric name; names not in the catalogue have no fallbacks.
    """
    available = set(columns)
    if name in available:
        return name
    info = catalogue().get(name)
    if info is None:
        return None
    for fallback in info.fallbacks:
        if fallback in available:
            return fallback
    return None


def column(df: pd.DataFrame, name: str) -> tuple[pd.Series, str | None]:
    """Values of metric ``name`` (through a fallback where needed) and the column actually used.

    A table concatenated from several reports can hold ``name`` for some rows and only a fallback for
    others: missing values are filled row by row from the fallbacks, in order.

    Returns:
        (values, used): ``used`` is ``name`` when it supplies any value, else the first fallback that
        does, else None (values are then all NaN, aligned with ``df``).
    """
    sources = contributing_columns(df, name)
    if not sources:
        if name in df.columns:
            return df[name], None
        return pd.Series(float("nan"), index=df.index, dtype="float64", name=name), None
    values = df[sources[0]]
    for source in sources[1:]:
        values = values.where(values.notna(), df[source])
    return values.rename(name), sources[0]


def contributing_columns(df: pd.DataFrame, name: str) -> list[str]:
    """The columns, among ``name`` and its fallbacks in order, that supply a value to some row of ``df``."""
    candidates = [name, *(catalogue()[name].fallbacks if name in catalogue() else ())]
    present = [c for c in candidates if c in df.columns]
    used: list[str] = []
    missing = pd.Series(True, index=df.index)
    for candidate in present:
        fills = missing & df[candidate].notna()
        if fills.any():
            used.append(candidate)
            missing &= ~fills
    return used


def fallback_note(name: str, used: str | None) -> str | None:
    """A note line when ``used`` is a fallback for ``name`` (None when the metric itself was used)."""
    if used is None or used == name:
        return None
    return f"note: {name} is absent; using its fallback {used}"


def fallbacks_used(df: pd.DataFrame, names: Iterable[str] = CORE_METRICS) -> dict[str, str]:
    """Each of ``names`` read through a fallback for some row of ``df``: name -> fallback column(s)."""
    used_by_name: dict[str, str] = {}
    for name in names:
        fallbacks = [c for c in contributing_columns(df, name) if c != name]
        if fallbacks:
            used_by_name[name] = ", ".join(fallbacks)
    return used_by_name


#: Metric families ncu records for every launch from the device and the profiler itself, also for a launch
#: it failed to profile: measured on a real one (tests/fixtures/notprofiled/: a Triton kernel that stored
#: out of bounds, ncu 2025.3.1 on an H200, "==ERROR== LaunchFailed"): its row held 201 values, all of
#: these families, and no ``launch__``, ``gpu__``, ``sm__`` or memory metric.
STATIC_PREFIXES = ("device__", "c2clink__", "numa__", "nvlink__", "profiler__", "pmsampling__")
#: Single metrics of other families that are architecture constants (present on that same launch).
STATIC_METRICS = frozenset({"smsp__maximum_warps_avg_per_active_cycle"})


def launch_metric_columns(columns: Iterable[object]) -> list[str]:
    """The columns that only a profiled launch has values in: every ``__`` metric but the static ones.

    A launch whose values in all of these are empty was not profiled by ncu (a fault, a replay error),
    whatever device attributes its row carries (see ``STATIC_PREFIXES``).
    """
    return [
        str(c)
        for c in columns
        if "__" in str(c) and not str(c).startswith(STATIC_PREFIXES) and str(c) not in STATIC_METRICS
    ]
