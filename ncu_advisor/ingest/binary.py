"""Binary reports (``.ncu-rep``, ``.nsight-cuprof-report``, optionally gzip'd): the direct reader
(``ncurep``) where the layout is known, ``ncu_report`` (``ncu_report_reader``) for the rest.

Damage is never handed from one reader to the other: a framing defect the direct reader finds
(``ncurep.DamagedReport``) is a ``ReportError`` at once, and whatever reader produced the table, it must
pass ``sanity.check_table`` (values ncu can have written, a kernel name per launch). Small reports are
read by both readers, which must agree (``CROSS_CHECK_MAX_LAUNCHES``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import ncurep
from ncu_advisor.ingest.common import _format_cc, _report_bytes
from ncu_advisor.ingest.crosscheck import disagreement_with_ncu_report
from ncu_advisor.ingest.ncu_report_reader import _read_binary_ncu_report, _units_through_ncu_report
from ncu_advisor.ingest.sanity import check_table
from ncu_advisor.metrics import launch_metric_columns
from ncu_advisor.table import build_table

READER_ENV = "NCU_ADVISOR_READER"  # "auto" (default), "direct" or "ncu_report"
# Reports of up to this many launches are also read through ncu_report (when installed) and must agree
# value for value. The unit lookup loads the report through ncu_report anyway; reading every value too
# cost 21.4 s instead of 16.6 s on the 5-launch --set full example (ModelNew_seed000_full) and 0.77 s
# instead of 0.49 s on a 143-launch public report. Larger reports, where the direct reader's speed matters
# (2.4 s vs 7.4 s for 10k launches), get the structural and sanity checks only.
CROSS_CHECK_MAX_LAUNCHES = 256
_DAMAGE_HINT = "copy it again or re-record it with `ncu -o`"


def _read_binary(
    path: Path, variant: str | None, *, workers: int | None = None, reader: str | None = None
) -> pd.DataFrame:
    """Read a binary report: directly (``ncurep``) where the layout is known, else through ``ncu_report``.

    ``reader`` (or ``$NCU_ADVISOR_READER``): ``auto`` tries the direct reader and falls back to
    ``ncu_report`` for layouts it was not built for; ``direct`` and ``ncu_report`` use only that one.

    Raises:
        ReportError: not a report, over the inflate cap, truncated or corrupt, an impossible value, the
            two readers disagree, or no launch in it.
    """
    reader = (reader or os.environ.get(READER_ENV, "") or "auto").strip().lower()
    if reader not in ("auto", "direct", "ncu_report"):
        raise ReportError(
            f"unknown reader {reader!r} in ${READER_ENV}", hint="use auto, direct or ncu_report"
        )
    table = _read_binary_direct(path, variant, strict=reader == "direct") if reader != "ncu_report" else None
    if table is None:
        table = _read_binary_ncu_report(path, variant, workers=workers)
    # Either reader: a launch without a kernel name or an impossible value is damage (exit 2). ncu_report
    # returns an empty launch for a report cut by one byte instead of failing.
    check_table(table, path)
    _mark_not_profiled(table)
    return table


def _mark_not_profiled(table: pd.DataFrame) -> None:
    """List the launches ncu recorded without a single launch metric value (it failed to profile them).

    ``attrs["not_profiled"]``: one ``{"launch", "kernel", "reason"}`` per such launch, and a note in
    ``attrs["notes"]``; such a launch must be reported as "not profiled", never as clean.
    """
    metric_columns = launch_metric_columns(table.columns)
    if not metric_columns:
        return
    empty = table[metric_columns].isna().all(axis=1)
    launches = [
        {
            "launch": int(index),
            "kernel": table.at[index, "kernel"],
            "reason": "ncu recorded the launch without metric values (see ncu's log for why)",
        }
        for index in table.index[empty]
    ]
    table.attrs["not_profiled"] = launches
    if launches:
        names = ", ".join(f"{item['kernel']} (launch {item['launch']})" for item in launches[:5])
        notes = list(table.attrs.get("notes", []))
        notes.append(f"{len(launches)} launch(es) not profiled by ncu, no metric values: {names}")
        table.attrs["notes"] = notes


def _read_binary_direct(path: Path, variant: str | None, *, strict: bool) -> pd.DataFrame | None:
    """The table through ``ncurep``; None when the file needs ``ncu_report`` (unless ``strict``)."""
    from ncu_advisor.ingest import ncurep

    data = _report_bytes(path)
    try:
        parsed = ncurep.read_launches(data)
        check_kinds(parsed)
        records, unit_carriers = ncurep.table_records(parsed)
    except ncurep.DamagedReport as exc:
        raise ReportError(
            f"the report is truncated or corrupt: {exc}",
            path=path,
            hint=_DAMAGE_HINT,
        ) from None
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
    # $NCU_ADVISOR_UNITS=catalogue (rundir.finalize's retry after ncu_report crashed natively, as ncu
    # 2025.3.1's copy did on an H200 run) keeps ncu_report out: no second opinion, catalogue units.
    catalogue_only = os.environ.get("NCU_ADVISOR_UNITS") == "catalogue"
    if len(records) <= CROSS_CHECK_MAX_LAUNCHES and not catalogue_only:
        problem, units = disagreement_with_ncu_report(data, records)
        if problem is not None:
            raise ReportError(
                f"the report is corrupt: {problem}",
                path=path,
                hint="copy it again or re-record it with `ncu -o`",
            )
    else:
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
    table = build_table(records, units)
    table.attrs["reader"] = "direct"
    return table


def check_kinds(report: ncurep.Report) -> None:
    """Raise ``DamagedReport`` when one metric has values of two kinds (say double and uint64) in one report.

    ncu fixes a metric's value kind by its name: no recorded or public report (16 GPUs, ncu 2019..2026)
    has a name with two kinds, so a second kind is a corrupted value tag.
    """
    kinds: dict[int, int] = {}
    for launch in report.launches:
        for nid, raw in launch.values.items():
            if not raw:
                continue
            kind = raw[0] >> 3
            seen = kinds.setdefault(nid, kind)
            if seen != kind:
                name = report.strings[nid] if nid < len(report.strings) else f"#{nid}"
                raise ncurep.DamagedReport(f"metric {name} has values of two kinds (a corrupted value tag)")
