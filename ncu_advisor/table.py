"""The tidy table: one row per profiled kernel launch, one column per metric, base units.

Every reader produces it, the profiler stores it, the rules read it and the renderers print it.
Identifying columns come first and are listed in ``ID_COLUMNS``; every other column is an ncu metric
under its full ncu name (``sm__throughput.avg.pct_of_peak_sustained_elapsed``) holding a float in the
base unit ``ncu_report``'s ``metric.value()`` gives (ns, byte, %, count ...), or a string for string
metrics such as ``device__attribute_display_name``. A metric absent from a launch is NaN/None.

``table.attrs`` (pandas' per-frame dict) carries what is not a cell:

* ``units``: metric name -> base unit (``""`` for counts and ratios);
* ``fallbacks``: core metric -> the fallback column(s) some launch was read through (``metrics``);
* ``reader``: which reader made it (``direct``, ``ncu_report``, ``csv_raw``, ``csv_details``, ``text``,
  ``seed_json``);
* ``notes``: list of one-line notes the reader wants the user to see (lines skipped before a CSV header,
  display names it could not map to a raw metric name, ...);
* ``guided``: ncu's own guided-analysis findings (``OPT``/``WRN``/``INF`` rule text) when the input
  carries them as text, in the shape of ``ingest.readers.rule_results``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

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

# Prefix of the column that keeps a value whose ncu display name no reader could map to a raw metric
# name (details page, plain text): "display:<Section Name>/<Metric Name>". Never a rule's input.
DISPLAY_PREFIX = "display:"


def metric_columns(columns: Iterable[object]) -> list[str]:
    """Return the metric columns of a table's columns, in order (everything not an id column)."""
    return [str(c) for c in columns if c not in ID_COLUMNS]


def core_fallbacks(table: pd.DataFrame) -> dict[str, str]:
    """Core metrics that some launch of ``table`` only has under a fallback name: name -> fallback(s)."""
    from ncu_advisor.metrics import CORE_METRICS, fallbacks_used

    return fallbacks_used(table, CORE_METRICS)


def build_table(records: list[dict[str, Any]], units: dict[str, str]) -> pd.DataFrame:
    """Build the table once from per-launch dicts: id columns first, then metrics sorted by name.

    Args:
        records: one dict per launch, id columns and metric name -> float / str / None.
        units: metric name -> base unit.

    Returns:
        The table. Numeric metric columns are float64 (None -> NaN), string metrics keep their strings,
        and a metric with no value in any launch is an all-NaN float column. ``attrs`` holds ``units``
        and ``fallbacks``.
    """
    table = pd.DataFrame.from_records(records)
    return finish_table(table, units)


def finish_table(table: pd.DataFrame, units: dict[str, str]) -> pd.DataFrame:
    """Order and type the columns of a frame that has the id columns and metric columns (any order).

    Args:
        table: launches x (id columns + metrics); missing id columns are added empty.
        units: metric name -> base unit.

    Returns:
        The table as ``build_table`` describes it.
    """
    metric_names = sorted(name for name in table.columns if name not in ID_COLUMNS)
    ordered = [*ID_COLUMNS, *metric_names]
    if list(table.columns) != ordered:  # a reindex copies every column: skip it when already in order
        table = table.reindex(columns=ordered)
    for name in ("range", "action"):
        table[name] = pd.to_numeric(table[name], errors="coerce").astype("Int64")
    for name in ID_COLUMNS:
        if name not in ("range", "action"):
            table[name] = table[name].astype(object).where(table[name].notna(), None)
    for name in metric_names:
        column = table[name]
        if column.dtype == object and column.isna().all():
            table[name] = column.astype("float64")
    # Before ``attrs`` holds the units: pandas deep-copies ``attrs`` into every frame and series an
    # operation returns, and the fallback scan makes hundreds of them.
    fallbacks = core_fallbacks(table)
    table.attrs["units"] = {name: units.get(name, "") for name in metric_names}
    table.attrs["fallbacks"] = fallbacks
    return table
