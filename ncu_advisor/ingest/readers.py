"""Read Nsight Compute reports into the tidy table (see ``ncu_advisor.table``).

``read_report`` picks the reader by the file name; two inputs are understood:

* binary reports: ``.ncu-rep``, ``.nsight-cuprof-report`` and their gzip'd ``.gz`` forms, read by
  ``ingest.binary`` (the direct reader ``ncurep``, else ``ncu_report`` through ``ncu_report_reader``);
* ncu's CSV export, ``ncu --import R --csv --page raw`` with or without ``--print-units base``: the units
  row is read, thousands separators removed and scaled units (``Gbyte``, ``ms``, ``Mhz`` ...) converted
  to the base unit ``ncu_report`` reports, so both readers give the same numbers for the same report.

Bad input (missing file, not a report, truncated report, CSV without ncu's columns, no kernels) raises
``ReportError`` naming the file and what to do.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.binary import READER_ENV, _read_binary
from ncu_advisor.ingest.common import _build_table, _check_exists, _core_fallbacks, _is_csv
from ncu_advisor.ingest.ncu_report_reader import (
    WORKERS_ENV,
    _candidate_ncu_python_dirs,
    _default_workers,
    load_ncu_report_module,
    rule_results,
)
from ncu_advisor.table import ID_COLUMNS

__all__ = [
    "READER_ENV",
    "WORKERS_ENV",
    "_candidate_ncu_python_dirs",
    "_default_workers",
    "_read_binary",
    "load_ncu_report_module",
    "read_report",
    "read_reports",
    "rule_results",
]


# --------------------------------------------------------------------------------------------------
# CSV export
# --------------------------------------------------------------------------------------------------

# Factors from the units ncu prints by default to the base unit ncu_report gives for the same metric.
_SI_PREFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME_TO_NS = {
    "ns": 1.0,
    "nsecond": 1.0,
    "us": 1e3,
    "usecond": 1e3,
    "ms": 1e6,
    "msecond": 1e6,
    "s": 1e9,
    "second": 1e9,
}
_RATE_DENOMINATOR_TO_S = {
    "s": 1.0,
    "second": 1.0,
    "ms": 1e-3,
    "msecond": 1e-3,
    "us": 1e-6,
    "usecond": 1e-6,
    "ns": 1e-9,
    "nsecond": 1e-9,
}
_ID_COLUMN_OF_CSV = {"ID": "action", "Kernel Name": "demangled", "CC": "cc"}
_REQUIRED_CSV_COLUMNS = ("ID", "Kernel Name")


def _unit_scale(unit: str) -> tuple[float, str]:
    """Return (factor, base unit) turning a value printed in ``unit`` into ncu_report's base unit.

    Examples: ``Gbyte`` -> (1e9, ``byte``); ``ms`` -> (1e6, ``ns``); ``Ghz`` -> (1e9, ``hz``);
    ``Kbyte/block`` -> (1e3, ``byte/block``); ``Tbyte/s`` -> (1e12, ``byte/s``); ``sector/us`` ->
    (1e6, ``sector/s``); ``%`` -> (1, ``%``).
    """
    if unit in _TIME_TO_NS:
        return _TIME_TO_NS[unit], "ns"
    numerator, slash, denominator = unit.partition("/")
    factor = 1.0
    base_numerator = numerator
    match = re.fullmatch(r"([KMGTP])(byte|hz|bit|inst|sector|request|warp|thread|cycle)", numerator)
    if match:
        factor = _SI_PREFIX[match.group(1)]
        base_numerator = match.group(2)
    elif numerator in ("Mhz", "Ghz", "Khz"):
        factor = _SI_PREFIX[numerator[0]]
        base_numerator = "hz"
    if not slash:
        return factor, base_numerator
    if denominator in _RATE_DENOMINATOR_TO_S:
        return factor / _RATE_DENOMINATOR_TO_S[denominator], f"{base_numerator}/s"
    den_match = re.fullmatch(r"([KMGT])(byte|register)", denominator)
    if den_match:
        # ncu scales the printed number by the prefix wherever it sits: the report's 1164 %/byte prints
        # as 1.164 %/Kbyte (measured on seed001_full), so a prefix in the denominator multiplies too.
        return factor * _SI_PREFIX[den_match.group(1)], f"{base_numerator}/{den_match.group(2)}"
    return factor, f"{base_numerator}/{denominator}"


_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d*)?([eE][+-]?\d+)?$|^[+-]?\.\d+([eE][+-]?\d+)?$")


def _parse_csv_number(text: str) -> float | None:
    """A CSV cell as a float (thousands separators removed), or None when it is not a number."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.lower() in ("nan", "n/a", "no data"):
        return math.nan
    if _NUMBER.match(stripped):
        return float(stripped.replace(",", ""))
    return None


def _drop_last_group(name: str, opening: str, closing: str) -> str:
    """``name`` without its last top-level ``opening ... closing`` group and what follows it."""
    depth = 0
    for index in range(len(name) - 1, -1, -1):
        if name[index] == closing:
            depth += 1
        elif name[index] == opening:
            depth -= 1
            if depth == 0:
                return name[:index]
    return name


def _csv_kernel_function_name(demangled: str) -> str:
    """The function-name base of a demangled kernel name, as ncu_report's NameBase_FUNCTION gives it.

    ``void cudnn::ns::nchwToNhwcKernel<float, 0>(params, const float *)`` -> ``nchwToNhwcKernel``.
    """
    name = demangled.strip()
    name = _drop_last_group(name, "(", ")")  # the parameter list: the last top-level "(...)"
    if name.endswith(">"):  # template arguments: the top-level <...> at the end
        name = _drop_last_group(name, "<", ">")
    name = name.split(" ")[-1]  # return type
    return name.split("::")[-1]


def _csv_nvtx(cell: str) -> str | None:
    """NVTX push/pop names from the CSV column ``thread Domain:Push/Pop_Range:...``.

    A cell reads ``473  "<default domain>:ncu_advisor:none:none:none:none:none:none"``: the thread id,
    then one quoted ``domain:range:payload...`` group per active range.
    """
    names: list[str] = []
    for group in re.findall(r'"([^"]*)"', cell):
        parts = group.split(":")
        if len(parts) < 2:
            continue
        domain, range_name = parts[0], parts[1]
        if domain and domain != "<default domain>":
            names.append(f"{domain}@{range_name}")
        else:
            names.append(range_name)
    return " > ".join(names) if names else None


def _read_csv(path: Path, variant: str | None) -> pd.DataFrame:
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    # ncu prints ==PROF== / ==WARNING== lines before the table when stdout was captured whole.
    while rows and (not rows[0] or rows[0][0].startswith("==")):
        rows.pop(0)
    if not rows or any(required not in rows[0] for required in _REQUIRED_CSV_COLUMNS):
        raise ReportError(
            "is not an ncu CSV export: the header lacks the columns "
            + ", ".join(f'"{c}"' for c in _REQUIRED_CSV_COLUMNS),
            path=path,
            hint="export with `ncu --import REPORT.ncu-rep --csv --page raw > FILE.csv`",
        )
    header = rows[0]
    body = rows[1:]
    units_row: list[str] = [""] * len(header)
    if body and body[0] and body[0][header.index("ID")].strip() == "":
        units_row = body[0] + [""] * (len(header) - len(body[0]))
        body = body[1:]
    body = [row for row in body if any(cell.strip() for cell in row)]
    if not body:
        raise ReportError(
            "the CSV holds no kernel launches", path=path, hint="re-export a report that has profiled kernels"
        )

    metric_positions = [i for i, name in enumerate(header) if "__" in name and name not in _ID_COLUMN_OF_CSV]
    scales = {i: _unit_scale(units_row[i].strip()) for i in metric_positions}
    nvtx_position = next((i for i, name in enumerate(header) if "Push/Pop_Range" in name), None)
    records: list[dict[str, Any]] = []
    for row in body:
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        record: dict[str, Any] = {}
        for i in metric_positions:
            cell = row[i]
            number = _parse_csv_number(cell)
            if number is None:
                record[header[i]] = cell.strip() if cell.strip() else None
            else:
                record[header[i]] = number * scales[i][0]
        demangled = row[header.index("Kernel Name")]
        gpu = record.get("device__attribute_display_name")
        action_id = _parse_csv_number(row[header.index("ID")])
        record.update(
            source=str(path),
            variant=variant,
            range=0,
            action=int(action_id) if action_id is not None and not math.isnan(action_id) else None,
            kernel=_csv_kernel_function_name(demangled),
            demangled=demangled,
            nvtx=_csv_nvtx(row[nvtx_position]) if nvtx_position is not None else None,
            gpu=gpu if isinstance(gpu, str) else None,
            cc=row[header.index("CC")].strip() if "CC" in header else None,
        )
        records.append(record)
    units = {header[i]: scales[i][1] for i in metric_positions}
    return _build_table(records, units)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def read_report(path: str | Path, *, variant: str | None = None) -> pd.DataFrame:
    """Read one report into the tidy table: one row per kernel launch, one column per metric.

    Args:
        path: a ``.ncu-rep``/``.nsight-cuprof-report`` file (optionally ``.gz``) or an ncu CSV export
            (``ncu --import R --csv --page raw``, with or without ``--print-units base``).
        variant: the kernel-file variant the report belongs to, stored in the ``variant`` column.

    Returns:
        The table: ``ID_COLUMNS`` first, then every metric under its full ncu name in base units.
        ``attrs["units"]`` maps each metric to its base unit; ``attrs["fallbacks"]`` maps each core
        metric (``metrics.CORE_METRICS``) read through a fallback name to that name.

    Raises:
        ReportError: the file is missing, not a report, truncated/corrupt, or holds no kernels.
    """
    report_path = Path(path)
    _check_exists(report_path)
    if _is_csv(report_path):
        return _read_csv(report_path, variant)
    return _read_binary(report_path, variant)


def read_reports(paths: Iterable[str | Path], *, variant: str | None = None) -> pd.DataFrame:
    """Read several reports into one table (rows concatenated, the union of their metric columns).

    Args:
        paths: report files, as for ``read_report``.
        variant: stored in the ``variant`` column of every row.

    Returns:
        The concatenated table; ``attrs["units"]`` merges the reports' units, ``attrs["fallbacks"]``
        is recomputed on the whole table.

    Raises:
        ReportError: no paths were given, or any report cannot be read.
    """
    tables = [read_report(p, variant=variant) for p in paths]
    if not tables:
        raise ReportError("no reports given", hint="pass one or more .ncu-rep, .ncu-rep.gz or .csv files")
    if len(tables) == 1:
        return tables[0]
    units: dict[str, str] = {}
    for table in tables:
        for name, unit in table.attrs.get("units", {}).items():
            units.setdefault(name, unit)
    combined = pd.concat(tables, ignore_index=True, sort=False)
    metric_names = sorted(set(combined.columns) - set(ID_COLUMNS))
    combined = combined[[*ID_COLUMNS, *metric_names]]
    combined.attrs = {"units": units, "fallbacks": _core_fallbacks(combined)}
    return combined


def _cli_paths_default(root: Path) -> list[Path]:
    """Every ``*.ncu-rep.gz`` under ``root`` (the shipped examples), sorted."""
    return sorted(Path(p) for p in glob.glob(os.path.join(str(root), "**", "*.ncu-rep.gz"), recursive=True))
