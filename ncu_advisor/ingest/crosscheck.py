"""The second opinion on small binary reports: ``ncu_report`` reads the whole file and must agree with the
direct reader value for value (see ``ingest.binary.CROSS_CHECK_MAX_LAUNCHES``).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import ncu_report_reader
from ncu_advisor.ingest.ncu_report_actions import read_actions

_ID_KEYS = frozenset({"range", "action", "kernel", "demangled", "nvtx", "gpu", "cc", "source", "variant"})


def _same_value(mine: Any, theirs: Any) -> bool:
    if isinstance(mine, float) and isinstance(theirs, float) and math.isnan(mine) and math.isnan(theirs):
        return True
    return bool(mine == theirs)


def disagreement_with_ncu_report(
    data: bytes, records: list[dict[str, Any]]
) -> tuple[str | None, dict[str, str]]:
    """Read the whole plain report ``data`` through ``ncu_report`` and compare it with ``records``.

    The second opinion the direct reader asks for on small reports: ncu_report must load the file, find
    the same launches and give every metric the same value (NaN equal to NaN).

    Returns:
        (problem, units): ``problem`` is None when both agree or ``ncu_report`` is not installed, else what
        differs; ``units`` maps each metric name to its unit (empty without ``ncu_report``).
    """
    try:
        module = ncu_report_reader.load_ncu_report_module()
    except ReportError:
        return None, {}
    with tempfile.TemporaryDirectory(prefix="ncu-advisor-") as tmp:
        plain = Path(tmp) / "check.ncu-rep"
        plain.write_bytes(data)
        try:
            context = module.load_report(str(plain))
            count = context.range_by_idx(0).num_actions() if context and context.num_ranges() else 0
            work = [(0, index) for index in range(count)]
            theirs, units = read_actions(module, context, work)
        except Exception as exc:  # noqa: BLE001 - SWIG raises TypeError/RuntimeError on damaged input
            return f"ncu_report fails on it ({type(exc).__name__}: {exc})", {}
    if len(theirs) != len(records):
        return f"ncu_report finds {len(theirs)} launches, the direct reader {len(records)}", units
    for index, (mine, other) in enumerate(zip(records, theirs, strict=True)):
        for name in ("kernel", "demangled", *sorted(set(mine) | set(other) - _ID_KEYS)):
            if not _same_value(mine.get(name), other.get(name)):
                return (
                    f"launch {index}: ncu_report reads {name} as {other.get(name)!r}, "
                    f"the direct reader as {mine.get(name)!r}",
                    units,
                )
    return None, units
