"""The tidy table: one row per profiled kernel launch, one column per metric, base units.

Every reader produces it, the profiler stores it, the rules read it and the renderers print it.
Identifying columns come first and are listed in ``ID_COLUMNS``; every other column is an ncu metric
under its full ncu name (``sm__throughput.avg.pct_of_peak_sustained_elapsed``) holding a float in the
base unit ``ncu_report``'s ``metric.value()`` gives (ns, byte, %, count ...), or a string for string
metrics such as ``device__attribute_display_name``. A metric absent from a launch is NaN/None.
"""

from __future__ import annotations

ID_COLUMNS: tuple[str, ...] = (
    "source",  # path of the report the row came from
    "variant",  # kernel-file variant name when the row came from a profile run, else None
    "range",  # ncu range index
    "action",  # action (launch) index inside the range
    "kernel",  # kernel function name (ncu's FUNCTION name base)
    "demangled",  # demangled name
    "nvtx",  # NVTX push/pop ranges active at the launch, joined with " > "
    "gpu",  # device display name
    "cc",  # compute capability "9.0"
)


def metric_columns(columns: object) -> list[str]:
    """Return the metric columns of a table's columns, in order (everything not an id column)."""
    return [c for c in columns if c not in ID_COLUMNS]  # type: ignore[attr-defined]
