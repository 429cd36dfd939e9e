"""Binary reports (``.ncu-rep``, ``.nsight-cuprof-report``, optionally gzip'd): the direct reader
(``ncurep``) where the layout is known, ``ncu_report`` (``ncu_report_reader``) for the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.common import _build_table, _format_cc, _report_bytes
from ncu_advisor.ingest.ncu_report_reader import _read_binary_ncu_report, _units_through_ncu_report

READER_ENV = "NCU_ADVISOR_READER"  # "auto" (default), "direct" or "ncu_report"


def _read_binary(
    path: Path, variant: str | None, *, workers: int | None = None, reader: str | None = None
) -> pd.DataFrame:
    """Read a binary report: directly (``ncurep``) where the layout is known, else through ``ncu_report``.

    ``reader`` (or ``$NCU_ADVISOR_READER``): ``auto`` tries the direct reader and falls back to
    ``ncu_report``; ``direct`` and ``ncu_report`` use only that one.
    """
    reader = (reader or os.environ.get(READER_ENV, "") or "auto").strip().lower()
    if reader not in ("auto", "direct", "ncu_report"):
        raise ReportError(
            f"unknown reader {reader!r} in ${READER_ENV}", hint="use auto, direct or ncu_report"
        )
    if reader != "ncu_report":
        table = _read_binary_direct(path, variant, strict=reader == "direct")
        if table is not None:
            return table
    return _read_binary_ncu_report(path, variant, workers=workers)



def _read_binary_direct(path: Path, variant: str | None, *, strict: bool) -> pd.DataFrame | None:
    """The table through ``ncurep``; None when the file needs ``ncu_report`` (unless ``strict``)."""
    from ncu_advisor.ingest import ncurep

    data = _report_bytes(path)
    try:
        parsed = ncurep.read_launches(data)
        records, unit_carriers = ncurep.table_records(parsed)
    except ncurep.UnsupportedReport as exc:
        if strict:
            raise ReportError(
                f"the direct reader cannot read it ({exc})",
                path=path,
                hint=f"unset ${READER_ENV} to read it through ncu_report",
            ) from None
        return None
    if not records:  # read to the end, well formed, and not one profile result in it
        raise ReportError(
            "the report holds no kernel launches",
            path=path,
            hint="check ncu's filters (-k, --nvtx-include) and re-record",
        )
    # The file up to the block of the last launch that brings a new metric name (and to the last string
    # table): a valid, smaller report.
    head = data[: max(parsed.block_ends[unit_carriers[-1]], parsed.strings_end)]
    units = _units_through_ncu_report(head, records, unit_carriers)
    for record in records:
        gpu = record.get("device__attribute_display_name")
        record.update(
            source=str(path),
            variant=variant,
            gpu=gpu if isinstance(gpu, str) else None,
            cc=_format_cc(
                record.get("device__attribute_compute_capability_major"),
                record.get("device__attribute_compute_capability_minor"),
            ),
        )
    table = _build_table(records, units)
    table.attrs["reader"] = "direct"
    return table
