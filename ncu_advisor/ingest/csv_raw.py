"""ncu's raw-page CSV export (``ncu --csv --page raw``, with or without ``--print-units base``).

One row per launch, one column per raw metric name; without ``--print-units base`` a units row follows
the header and values are printed in scaled units (``Gbyte``, ``ms``, ``Mhz`` ...), which are converted
to the base unit ``ncu_report`` reports, so both readers give the same numbers for the same report.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.cells import (
    csv_header_columns,
    find_csv_header,
    kernel_function_name,
    nvtx_from_cell,
    parse_number,
    preamble_note,
    unit_scale,
)
from ncu_advisor.table import build_table

_ID_COLUMN_OF_CSV = {"ID": "action", "Kernel Name": "demangled", "CC": "cc"}
_REQUIRED_CSV_COLUMNS = ("ID", "Kernel Name")


def sniff(head: bytes) -> bool:
    """True when ``head`` holds an ncu CSV header (``ID``, ``Kernel Name``) without the details columns."""
    lines = head.decode("utf-8", errors="replace").splitlines()
    index = find_csv_header(lines)
    if index is None:
        return False
    columns = csv_header_columns(lines[index]) or []
    return "Metric Value" not in columns


def read(path: Path, variant: str | None) -> pd.DataFrame:
    """Read a raw-page CSV export into the table (see the module docstring).

    Raises:
        ReportError: the file cannot be read, has no ncu CSV header, or no launch rows.
    """
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    header_index = next((i for i, row in enumerate(rows) if "ID" in row and "Kernel Name" in row), None)
    if header_index is None:
        raise ReportError(
            "is not an ncu CSV export: the header lacks the columns "
            + ", ".join(f'"{c}"' for c in _REQUIRED_CSV_COLUMNS),
            path=path,
            hint="export with `ncu --import REPORT.ncu-rep --csv --page raw > FILE.csv`",
        )
    note = preamble_note(header_index)
    rows = rows[header_index:]
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
    scales = {i: unit_scale(units_row[i].strip()) for i in metric_positions}
    nvtx_position = next((i for i, name in enumerate(header) if "Push/Pop_Range" in name), None)
    records: list[dict[str, Any]] = []
    for row in body:
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        record: dict[str, Any] = {}
        for i in metric_positions:
            cell = row[i]
            number = parse_number(cell)
            if number is None:
                record[header[i]] = cell.strip() if cell.strip() else None
            else:
                record[header[i]] = number * scales[i][0]
        demangled = row[header.index("Kernel Name")]
        gpu = record.get("device__attribute_display_name")
        action_id = parse_number(row[header.index("ID")])
        record.update(
            source=str(path),
            variant=variant,
            range=0,
            action=int(action_id) if action_id is not None and not math.isnan(action_id) else None,
            kernel=kernel_function_name(demangled),
            demangled=demangled,
            nvtx=nvtx_from_cell(row[nvtx_position]) if nvtx_position is not None else None,
            gpu=gpu if isinstance(gpu, str) else None,
            cc=row[header.index("CC")].strip() if "CC" in header else None,
        )
        records.append(record)
    units = {header[i]: scales[i][1] for i in metric_positions}
    table = build_table(records, units)
    table.attrs["reader"] = "csv_raw"
    table.attrs["notes"] = [note] if note else []
    return table
