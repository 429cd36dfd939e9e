"""Checks that a table read from a report holds values ncu can have written, so a damaged file is an
error (exit 2) and never a false finding.

A corrupted byte inside a metric value still decodes to a number: one seen in a damaged copy of a shipped
example read 2.78e-309 bytes of local stores and produced a false "spills" ERROR. Each check below holds on
every launch of every recorded report in this repository, the 16 public reports in
``shared/reports-public`` (16 GPUs, ncu 2019..2026) and the 10,000-launch benchmark report (measured with
the scan in ``tests/test_sanity.py``), so a value that breaks one is damage, not a GPU nobody has seen:

* no subnormal or absurd magnitudes: the smallest non-zero magnitude seen is 1.6e-8
  (``lts__t_sectors_data_ecc.avg.per_cycle_elapsed``), the largest finite one 1.9e16 (a peak tensor
  ops/s); a value below 1e-100 or above 1e30 in magnitude is a corrupted exponent. NaN and inf are
  allowed: ncu writes them for ratios with a zero denominator (seen in 9 public reports);
* bounded percentages: ``*.avg.pct_of_peak_sustained_*``/``*.sum.pct_of_peak_sustained_*`` lie in
  [0, 100] in every report seen (the ``.max``/``.min`` forms do not: per-unit maxima reach 11,800 %), the
  occupancy percentages too; allowed: [-1, 101] for rounding;
* integer metrics: ``launch__*`` (but ``launch__waves_per_multiprocessor`` and the ``*_pct`` ones),
  ``profiler__*`` (``profiler__replayer_passes``: a bit flip gave 10.000000001862645 passes) and numeric
  ``device__attribute_*`` values are whole numbers >= 0; in binary reports every ``*.sum`` counter too
  (all 395 ``.sum`` metrics and all ``profiler__`` ones are whole in every launch of the 73 recorded and
  public reports, scanned 2026-11-30 with ``registry.read`` over examples/, tests/fixtures/ and
  ../shared/reports-public);
* device attributes are finite, the same in every launch on one device (``device__attribute_device_index``),
  0 or 1 where the name says yes/no (``can_*``, ``*_supported``, ``*_enabled``), and equal to the limits
  CUDA fixes for every GPU so far (warp size 32, 1024 threads per block, 255 registers per thread, ...);
* every launch has a kernel name (ncu always writes one; a launch without is a truncated result).

Text inputs (raw and details CSV, plain text, metrics JSON) are checked with ``exact=False``: their values
are printed rounded in display units (``16 Kbyte`` of shared memory reads back as 16379.99 bytes in the
recorded details page and text fixtures) and a pasted text may lack the launch line, so counts in a byte
unit need only be >= 0 (the other integer metrics above must still be whole, within float rounding of the
unit's scale factor: 128.5 registers is refused), ``.sum`` counters need not be whole, a launch may lack a
kernel name or some device attributes; magnitudes, percentages, yes/no and CUDA constants are checked as
for binary reports.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncu_advisor.errors import ReportError

TINY = 1e-100
HUGE = 1e30
PCT_LOW, PCT_HIGH = -1.0, 101.0
_BOUNDED_PCT = re.compile(
    r"\.(avg|sum)\.pct_of_peak_sustained_\w+$|^(launch__occupancy\w*|sm__maximum_warps_per_active_cycle)_pct$"
)
# 0/1 device attributes: every one named so is 0 or 1 on all 16 GPUs of the recorded and public reports.
_BOOLEAN_DEVICE = re.compile(r"^device__attribute_(can_\w+|\w+_supported|\w+_enabled)$")
# Limits the CUDA programming guide fixes for every compute capability so far (table "Technical
# Specifications per Compute Capability"), and every report agrees.
_CUDA_CONSTANTS = {
    "device__attribute_warp_size": 32.0,
    "device__attribute_max_threads_per_block": 1024.0,
    "device__attribute_max_registers_per_thread": 255.0,
    "device__attribute_max_block_dim_x": 1024.0,
    "device__attribute_max_block_dim_y": 1024.0,
    "device__attribute_max_block_dim_z": 64.0,
    "device__attribute_max_grid_dim_x": 2147483647.0,
    "device__attribute_max_grid_dim_y": 65535.0,
    "device__attribute_max_grid_dim_z": 65535.0,
}
_INTEGER = re.compile(r"^(launch__|device__attribute_|profiler__)")
_SUM = re.compile(r"\.sum$")  # counters: whole in binary reports (module docstring)
# Quantities that cannot be negative or infinite (counters, times, byte counts, percentages of peak, launch
# counts): a "1e309" cell reads as inf, a "-1" duration as -1; ncu writes inf/NaN only for ratios.
_NON_NEGATIVE_FINITE = re.compile(r"\.sum$|^gpu__time_duration|__bytes")
_ROUNDING = (
    1e-9  # relative: a value scaled from a display unit (4.19 Mthread) may miss a whole number by this
)
_NOT_INTEGER = frozenset({"launch__waves_per_multiprocessor"})
_DEVICE_INDEX = "device__attribute_device_index"
_HINT = "the file is damaged: copy it again or re-record it with `ncu -o`"


def _value_problem(name: str, value: float) -> str | None:
    """Why ``value`` cannot be ``name``'s, or None when it can."""
    if math.isinf(value) and _must_be_finite(name):
        return f"an infinite value ({value!r}) where ncu writes a finite quantity"
    if math.isnan(value) or math.isinf(value):
        return "no finite value for a device attribute" if name.startswith("device__attribute_") else None
    if value < 0 and _NON_NEGATIVE_FINITE.search(name):
        return f"a negative value ({value!r}) for a count, time or byte quantity"
    magnitude = abs(value)
    if 0 < magnitude < TINY:
        return f"a subnormal or corrupted value ({value!r})"
    if magnitude > HUGE:
        return f"an impossible magnitude ({value!r})"
    if _BOUNDED_PCT.search(name) and not PCT_LOW <= value <= PCT_HIGH:
        return f"a percentage outside [0, 100] ({value!r})"
    if (_INTEGER.match(name) and name not in _NOT_INTEGER and not name.endswith("_pct")) or _SUM.search(name):
        if value < 0 or value != int(value):
            return f"a count that is not a whole number >= 0 ({value!r})"
    if _BOOLEAN_DEVICE.match(name) and value not in (0.0, 1.0):
        return f"a yes/no device attribute that is neither 0 nor 1 ({value!r})"
    if name in _CUDA_CONSTANTS and value != _CUDA_CONSTANTS[name]:
        return f"{value!r} where every CUDA GPU has {_CUDA_CONSTANTS[name]!r}"
    return None


def _must_be_finite(name: str) -> bool:
    """Counters, times, bytes, bounded percentages and launch counts are never inf in any recorded report."""
    integer = bool(_INTEGER.match(name)) and name not in _NOT_INTEGER
    return bool(_NON_NEGATIVE_FINITE.search(name) or _BOUNDED_PCT.search(name)) or integer


def _first_bad_row(
    name: str,
    values: np.ndarray[Any, np.dtype[np.float64]],
    has_device: np.ndarray[Any, np.dtype[np.bool_]],
    exact: bool = True,
    unit: str = "",
) -> int | None:
    """The first row whose value breaks a check (vectorised ``_value_problem``), or None."""
    finite = np.isfinite(values)
    magnitude = np.abs(np.where(finite, values, 0.0))
    bad = ((magnitude > 0) & (magnitude < TINY)) | (magnitude > HUGE)
    if _must_be_finite(name):
        bad |= np.isinf(values)
    if _NON_NEGATIVE_FINITE.search(name):
        bad |= finite & (values < 0)
    if _BOUNDED_PCT.search(name):
        bad |= finite & ((values < PCT_LOW) | (values > PCT_HIGH))
    if _INTEGER.match(name) and name not in _NOT_INTEGER and not name.endswith("_pct"):
        rounded = np.round(np.where(finite, values, 0.0))
        if exact:
            whole = values == rounded
        elif "byte" in unit:  # printed in Kbyte/Mbyte: rounded by the display
            whole = np.ones(len(values), dtype=bool)
        else:
            whole = np.abs(values - rounded) <= _ROUNDING * np.maximum(np.abs(values), 1.0)
        bad |= finite & ((values < 0) | ~whole)
    elif exact and _SUM.search(name):
        bad |= finite & (values != np.round(np.where(finite, values, 0.0)))
    if exact and name.startswith("device__attribute_"):
        bad |= ~finite & has_device  # a launch that has device attributes has all of them
    if _BOOLEAN_DEVICE.match(name):
        bad |= finite & (values != 0.0) & (values != 1.0)
    if name in _CUDA_CONSTANTS:
        bad |= finite & (values != _CUDA_CONSTANTS[name])
    return int(np.argmax(bad)) if bad.any() else None


def check_table(table: pd.DataFrame, path: Path, *, exact: bool = True) -> None:
    """Raise ``ReportError`` naming the first impossible value, kernel-less launch or device mismatch.

    Args:
        table: a table as the readers build it (``ID_COLUMNS``, then metric columns in base units).
        path: the report, for the message.
        exact: False for text inputs (values rounded in display units, a launch line may be missing):
            counts need not be whole, kernel names and device attributes may be absent.

    Raises:
        ReportError: a launch has no kernel name, a value breaks a check of the module docstring, or two
            launches on one device disagree on a device attribute.
    """
    # Without attrs: pandas deep-copies ``attrs`` (the units of every metric) on each column access, which
    # made this check cost 12 s on a 2,200-column export.
    units = dict(table.attrs.get("units", {}))
    table = table.copy(deep=False)
    table.attrs = {}
    if exact and "kernel" in table.columns:
        nameless = table.index[table["kernel"].isna()]
        if len(nameless):
            raise ReportError(
                f"launch {int(nameless[0])} has no kernel name: the report is truncated or corrupt",
                path=path,
                hint=_HINT,
            )
    device_columns = [c for c in table.columns if c.startswith("device__attribute_")]
    has_device = table[device_columns].notna().any(axis=1).to_numpy(dtype=bool)
    for name in (c for c in table.columns if "__" in c and table[c].dtype.kind == "f"):
        values = table[name].to_numpy(dtype=float)
        row = _first_bad_row(name, values, has_device, exact, str(units.get(name, "")))
        if row is not None:
            value = float(table[name].iloc[row])
            problem = _value_problem(name, value) or f"a value ncu cannot have written ({value!r})"
            kernel = table["kernel"].iloc[row] if "kernel" in table.columns else None
            raise ReportError(
                f"launch {row} ({kernel if isinstance(kernel, str) else 'kernel unnamed'}) has {problem}"
                f" for {name}",
                path=path,
                hint=_HINT,
            )
    _check_devices(table, path)


def _check_devices(table: pd.DataFrame, path: Path) -> None:
    device_columns = [c for c in table.columns if c.startswith("device__attribute_")]
    if len(table) < 2 or not device_columns:
        return
    groups: Any = table.groupby(_DEVICE_INDEX, dropna=False) if _DEVICE_INDEX in table else [(0, table)]
    for _, rows in groups:
        counts = rows[device_columns].nunique(dropna=True)
        if (counts > 1).any():
            name = str(counts.index[int(np.argmax(counts.to_numpy() > 1))])
            distinct = rows[name].dropna().unique()
            raise ReportError(
                f"launches on one device disagree on {name} ({distinct[0]!r} vs {distinct[1]!r}): "
                "the report is corrupt",
                path=path,
                hint=_HINT,
            )
