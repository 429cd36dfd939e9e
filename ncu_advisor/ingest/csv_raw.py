"""ncu's raw-page CSV export (``ncu --csv --page raw``, with or without ``--print-units base``).

One row per launch, one column per raw metric name (names with ``__``); without ``--print-units base`` a
units row follows the header and values are printed in scaled units (``Gbyte``, ``ms``, ``Mhz`` ...),
which are converted to the base unit ``ncu_report`` reports, so both readers give the same numbers for
the same report. Lines before the header (``==PROF==``, ``==WARNING==`` and their continuation lines,
the program's stdout) are skipped and counted in a note.

The file is parsed by a columnar reader (``csv_engines``: pyarrow's CSV reader when pyarrow is installed,
else pandas' C parser): a 200,000-launch export reads in seconds, not minutes (``bench/bench_csv.py``).
Each column is typed from a sample of the first rows and converted as a whole; text columns and columns
that mix numbers and text are converted over their distinct values, never cell by cell.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import csv_engines
from ncu_advisor.ingest.cells import (
    DECIMAL_COMMA,
    FOREIGN_DIGITS,
    NUMBER,
    PREAMBLE_LIMIT,
    csv_header_columns,
    find_csv_header,
    foreign_digits,
    is_cut,
    kernel_function_name,
    last_line_if_unterminated,
    nvtx_from_cell,
    parse_number,
    preamble_note,
    preamble_too_long,
    trailer_note,
    trailer_start,
    unit_problem,
    unit_scale,
)
from ncu_advisor.ingest.input_checks import check_no_bare_cr, id_gap_note
from ncu_advisor.metrics import catalogue
from ncu_advisor.table import ID_COLUMNS, finish_table

SAMPLE_ROWS = 200  # rows read to type the columns (a column that turns out otherwise is re-read as text)
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_GPU_NAME = "device__attribute_display_name"  # the table's ``gpu`` column


def sniff(head: bytes) -> bool:
    """True when ``head`` holds an ncu CSV header (``ID``, ``Kernel Name``) without the details columns."""
    lines = head.decode("utf-8", errors="replace").splitlines()
    index = find_csv_header(lines)
    if index is None:
        return False
    columns = csv_header_columns(lines[index]) or []
    return "Metric Value" not in columns


class _Layout:
    """Where the table starts in the file and what its columns hold, from the header and a sample."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0  # lines before the header
        self.header: list[str] = []
        self.repeated: dict[str, str] = {}  # a repeated column's ``name#2`` (``_unique``) -> ``name``
        self.header_line = b""
        self.units: list[str] = []
        self.has_units = False
        self.data_start = 0  # byte offset of the first launch row
        self.stop: int | None = None  # byte offset of ncu's trailing ==PROF== lines (None: none)
        self.trailer = 0  # such lines after the table
        self.sample: list[list[str]] = []
        self._distinct: list[set[str]] | None = None
        with open(path, "rb") as handle:
            offset = 0
            while True:
                raw = handle.readline(PREAMBLE_LIMIT)
                if not raw:
                    return
                if offset > PREAMBLE_LIMIT:
                    raise preamble_too_long(path)
                offset += len(raw)
                columns = csv_header_columns(raw.decode("utf-8", errors="replace"))
                if columns is not None:
                    self.header = _unique(columns)
                    self.repeated = {u: n for u, n in zip(self.header, columns, strict=True) if u != n}
                    self.header_line = raw.rstrip(b"\r\n")
                    break
                self.skipped += 1
            self.data_start = offset
            self.stop, self.trailer = trailer_start(handle)
            if self.stop is None:
                _check_not_cut(path, handle)
            handle.seek(offset)
            text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
            self._read_sample(csv.reader(text))
        self.units += [""] * (len(self.header) - len(self.units))

    def _read_sample(self, reader: Iterator[list[str]]) -> None:
        """The units row (refused when missing: ncu always writes it) and the first SAMPLE_ROWS rows."""
        id_index = self.header.index("ID")
        for row in reader:
            if not self.has_units and not self.sample and any(cell.strip() for cell in row):
                if len(row) > id_index and row[id_index].strip():
                    raise ReportError(
                        f"line {self.skipped + 2} is a launch (ID {row[id_index].strip()[:20]}) where ncu "
                        "writes the units row: ncu writes one after the header (also with --print-units "
                        "base), so without it the unit of every value is unknown",
                        path=self.path,
                        hint="re-export it with `ncu --import R.ncu-rep --csv --page raw > FILE.csv`, or put "
                        "the units row back as line 2",
                    )
                self.units, self.has_units = row, True
                continue
            if any(cell.strip() for cell in row):
                self.sample.append(row)
            if len(self.sample) >= SAMPLE_ROWS:
                break

    def unit_of(self, name: str) -> str:
        """The unit printed for column ``name`` in the units row ("" without one)."""
        return self.units[self.header.index(name)]

    def nvtx_column(self) -> str | None:
        """The column of NVTX push/pop ranges, if the export has one."""
        return next((name for name in self.header if "Push/Pop_Range" in name), None)

    def numeric_kind(self, index: int) -> str | None:
        """``plain`` when every sampled cell is empty or a number, ``separated`` when some number has
        thousands separators, None when a cell is text (the column is then converted per value)."""
        if self._distinct is None:  # each column's distinct sampled cells, stripped, computed once
            columns = itertools.zip_longest(*self.sample, fillvalue="")
            self._distinct = [{cell.strip() for cell in set(column)} for column in columns]
        cells = self._distinct[index] if index < len(self._distinct) else set()
        if all(not c or _PLAIN_NUMBER.match(c) for c in cells):
            return "plain"
        if all(not c or NUMBER.match(c) for c in cells):
            return "separated"
        return None


def _check_not_cut(path: Path, handle: BinaryIO) -> None:
    """Refuse a file whose last line ends inside a cell without a newline (``cells.is_cut``)."""
    last = last_line_if_unterminated(handle)
    if last is not None and is_cut(last):
        raise ReportError(
            "the last line is cut (it ends inside a cell, without a newline): the file is truncated, and "
            "the last launch would be read with a wrong or missing value",
            path=path,
            hint="copy it again or re-export it: `ncu --import R.ncu-rep --csv --page raw > FILE.csv`",
        )


def _unique(columns: list[str]) -> list[str]:
    """Column names made unique (a repeated name gets ``#2``, ``#3``...), as the parsers need; the
    repeats are compared with the first column and dropped (``_check_repeats``)."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _cell_value(text: object) -> float | str | None:
    if isinstance(text, (int, float)):
        return None if isinstance(text, float) and math.isnan(text) else float(text)
    if not isinstance(text, str):
        return None
    number = parse_number(text)
    if number is not None:
        return number
    stripped = text.strip()
    return stripped if stripped else None


def _decoded(values: pd.Categorical, convert: Callable[[str], Any] = lambda text: text) -> np.ndarray:
    """One object per launch: ``convert`` of its cell's text (None for an empty cell).

    ``convert`` runs once per distinct value, and launches with one value share one object, so a column
    of 200,000 launches costs its distinct values, not its cells.
    """
    lookup = np.empty(len(values.categories) + 1, dtype=object)
    lookup[:-1] = [convert(str(text)) for text in values.categories]
    lookup[-1] = None  # code -1: an empty cell
    result: np.ndarray = lookup[values.codes]
    return result


def _text_column(values: pd.Categorical) -> np.ndarray:
    """A column read as text: float64 when every value is a number (separators allowed), else per value
    (a number as float, text stripped), or the text as read when no value is a number (a string metric).
    """
    converted = [_cell_value(text) for text in values.categories]
    if all(isinstance(v, float) for v in converted):
        lookup = np.array([*converted, math.nan], dtype="float64")
        numbers: np.ndarray = lookup[values.codes]  # code -1 (missing) picks the trailing NaN
        return numbers
    if not any(isinstance(v, float) for v in converted):
        return _decoded(values)
    lookup_obj = np.empty(len(converted) + 1, dtype=object)
    lookup_obj[:-1] = converted
    lookup_obj[-1] = None
    mixed: np.ndarray = lookup_obj[values.codes]
    return mixed


def read(path: Path, variant: str | None) -> pd.DataFrame:
    """Read a raw-page CSV export into the table (see the module docstring).

    Args:
        path: the CSV file.
        variant: stored in the ``variant`` column.

    Returns:
        The table (``ncu_advisor.table``) with ``attrs["reader"] == "csv_raw"`` and a note when lines
        before the header were skipped.

    Raises:
        ReportError: the file cannot be read, has no ncu CSV header, or no launch rows.
    """
    try:
        layout = _Layout(path)
    except ReportError:
        check_no_bare_cr(path)  # a \r in the header or units row: say that rather than what it broke
        raise
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    except csv.Error as exc:  # a field over csv.field_size_limit() (128 KiB), a NUL byte: not ncu's output
        raise ReportError(f"is not a well-formed CSV file ({exc})", path=path, hint="re-export it") from None
    if not layout.header:
        raise ReportError(
            'is not an ncu CSV export: no line has the columns "ID", "Kernel Name"',
            path=path,
            hint="export with `ncu --import REPORT.ncu-rep --csv --page raw > FILE.csv`",
        )
    check_no_bare_cr(path, layout.header)
    if not layout.sample:
        raise ReportError(
            "the CSV holds no kernel launches", path=path, hint="re-export a report that has profiled kernels"
        )
    metric_names = sorted(name for name in layout.header if "__" in name and name not in layout.repeated)
    _check_units(path, layout, metric_names)
    kinds = {
        name: layout.numeric_kind(i)
        for i, name in enumerate(layout.header)
        if (name == "ID" or "__" in name) and name not in layout.repeated
    }
    body = csv_engines.Body(
        path=path,
        start=layout.data_start,
        skip_rows=1 if layout.has_units else 0,
        stop=layout.stop,
        header=layout.header,
        # sorted metrics first, ID last: the metric block is then a view of the parsed block
        numeric=sorted(name for name, kind in kinds.items() if kind is not None and name != "ID")
        + (["ID"] if kinds.get("ID") else []),
        separated={name for name, kind in kinds.items() if kind == "separated"},
        keep={*metric_names, "ID", "Kernel Name", "CC", layout.nvtx_column() or "ID"}
        | {*layout.repeated, *layout.repeated.values()},
    )
    parsed = csv_engines.parse(body)
    notes = _check_repeats(path, layout, parsed)
    table = _assemble(path, variant, layout, parsed, metric_names)
    gap = id_gap_note(pd.to_numeric(table["action"], errors="coerce").to_numpy("float64"))
    table.attrs["notes"] += [f"{path}: {note}" for note in [*notes, gap] if note]
    return table


def _column_values(layout: _Layout, parsed: csv_engines.Columns, name: str) -> np.ndarray:
    """Column ``name`` as read: floats in base units, or objects (text, None) where it holds text."""
    if name in parsed.numeric:
        values: np.ndarray = parsed.block[:, parsed.numeric.index(name)]
    else:
        values = _text_column(parsed.text[name])
    if values.dtype == "float64" and "__" in name:
        values = values * unit_scale(layout.unit_of(name))[0]
    return values


def _check_repeats(path: Path, layout: _Layout, parsed: csv_engines.Columns) -> list[str]:
    """Compare each repeated column (``name#2``) with the first one of its name: equal values in every
    launch (within 1e-9 relative, as one value printed in two units) are read once, with a note; different
    values are refused (ReportError), as either would be a guess. ncu writes each column once (every
    recorded and public export): a repeat comes from joining or editing exports."""
    notes: list[str] = []
    for repeat, name in layout.repeated.items():
        first, again = _column_values(layout, parsed, name), _column_values(layout, parsed, repeat)
        if first.dtype == again.dtype == np.dtype("float64"):
            same = np.isclose(first, again, rtol=1e-9, atol=0.0, equal_nan=True)
        else:
            same = np.array([_same_cell(a, b) for a, b in zip(first, again, strict=True)], dtype=bool)
        if not same.all():
            row = int(np.argmin(same))
            raise ReportError(
                f"the column {name} appears twice in the header (columns {layout.header.index(name) + 1} and "
                f"{layout.header.index(repeat) + 1}) with different values (line {_line_of(layout, row)}: "
                f"{first[row]!r:.40} and {again[row]!r:.40}): either one would be a guess",
                path=path,
                hint="delete one of the two columns, or re-export it with "
                "`ncu --import R.ncu-rep --csv --page raw > FILE.csv`",
            )
        notes.append(f"the column {name} appears twice in the header with equal values: read once")
    return notes


def _same_cell(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True))
    return a == b or (_missing(a) and _missing(b))


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_units(path: Path, layout: _Layout, metric_names: list[str]) -> None:
    """Refuse a units-row entry that is unknown, or empty where ncu always prints one (``unit_problem``):
    the values would be read in the wrong scale (an unknown unit read as the base unit)."""
    units = {name: info.unit for name, info in catalogue().items()}
    for name in metric_names:
        problem = unit_problem(name, layout.unit_of(name), units.get(name, ""))
        if problem is not None:
            raise ReportError(
                f"line {layout.skipped + 2} (the units row), {name}: {problem}, so its values cannot be "
                "converted to base units",
                path=path,
                hint="re-export it with `ncu --import R.ncu-rep --csv --page raw > FILE.csv`",
            )


def _check_cells(path: Path, layout: _Layout, name: str, values: pd.Categorical) -> None:
    """Refuse a metric cell that is not a number where ncu prints one: in a column with a unit, or with a
    decimal comma (``128,22``: ncu writes a decimal point in every locale, tests/fixtures/formats/*-de.*)."""
    unit = layout.unit_of(name).strip()
    for index, text in enumerate(values.categories):
        cell = str(text).strip()
        if not cell or parse_number(cell) is not None:
            continue
        if unit or DECIMAL_COMMA.match(cell) or foreign_digits(cell):
            row = int(np.argmax(values.codes == index))
            comma = " (a decimal comma: ncu writes a decimal point)" if DECIMAL_COMMA.match(cell) else ""
            comma = f" ({FOREIGN_DIGITS})" if foreign_digits(cell) else comma
            raise ReportError(
                f"line {_line_of(layout, row)}: {name} ({unit or 'no unit'}) is {cell!r:.60}, not a "
                f"number{comma}",
                path=path,
                hint="fix that cell or pass ncu's export unedited "
                "(`ncu --import R.ncu-rep --csv --page raw > FILE.csv`)",
            )


def _metrics_frame(layout: _Layout, parsed: csv_engines.Columns, metric_names: list[str]) -> pd.DataFrame:
    """The metric columns in base units, sorted, around the parsed float block (not copied)."""
    position = {name: index for index, name in enumerate(parsed.numeric)}
    block_names = [name for name in parsed.numeric if "__" in name]
    for name in block_names:
        factor = unit_scale(layout.unit_of(name))[0]
        if factor != 1.0:
            parsed.block[:, position[name]] *= factor
    # The metrics lead the block in sorted order (``read`` puts ID last): a column slice is a view.
    if parsed.numeric[: len(block_names)] == block_names == sorted(block_names):
        block = parsed.block[:, : len(block_names)]
    else:  # not expected; correct but copies the block
        order = sorted(block_names)
        block, block_names = parsed.block[:, [position[name] for name in order]], order
    frame = pd.DataFrame(block, columns=block_names, copy=False)
    with warnings.catch_warnings():  # inserting avoids copying the float block (see _assemble)
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        for index, name in enumerate(metric_names):
            if name in position:
                continue
            _check_cells(layout.path, layout, name, parsed.text[name])
            values = _text_column(parsed.text[name])
            if values.dtype == "float64":
                values = values * unit_scale(layout.unit_of(name))[0]
            frame.insert(index, name, values)  # text: pandas types it (``str`` in pandas 3)
    return frame


def _assemble(
    path: Path, variant: str | None, layout: _Layout, parsed: csv_engines.Columns, metric_names: list[str]
) -> pd.DataFrame:
    """The table from the parsed columns: id columns in front of the (already sorted) metrics.

    Columns are inserted into the frame (one block each) instead of building a new frame, which would
    copy every metric column once more (pandas consolidates blocks): that copy is what a 200,000-launch
    export cannot afford. pandas' warning about such a "fragmented" frame is silenced for that reason.
    """
    ids = parsed.text
    action = (
        parsed.block[:, parsed.numeric.index("ID")].copy()
        if "ID" in parsed.numeric
        else _text_column(ids["ID"])
    )
    _check_ids(path, layout, action)
    metrics = _metrics_frame(layout, parsed, metric_names)
    rows = len(metrics)
    nvtx_column = layout.nvtx_column()
    gpu = _text_column(ids[_GPU_NAME]) if _GPU_NAME in ids else None
    id_values: dict[str, Any] = {
        "source": np.full(rows, str(path), dtype=object),
        "variant": np.full(rows, variant, dtype=object),
        "range": np.zeros(rows, dtype="int64"),
        "action": action,
        "kernel": _decoded(ids["Kernel Name"], kernel_function_name),
        "demangled": _decoded(ids["Kernel Name"]),
        "nvtx": _decoded(ids[nvtx_column], nvtx_from_cell) if nvtx_column is not None else None,
        "gpu": gpu if gpu is not None and gpu.dtype == object else None,
        "cc": _decoded(ids["CC"]) if "CC" in ids else None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        for position, name in enumerate(ID_COLUMNS):
            value = id_values[name]
            if value is None:
                value = np.full(rows, None, dtype=object)
            if value.dtype == object:  # kept as objects: no round trip through pandas' str dtype
                value = pd.Series(value, index=metrics.index, dtype=object)
            metrics.insert(position, name, value)
    units = {name: unit_scale(layout.unit_of(name))[1] for name in metric_names}
    table = finish_table(metrics, units)
    table.attrs["reader"] = "csv_raw"
    notes = (preamble_note(layout.skipped), trailer_note(layout.trailer))
    table.attrs["notes"] = [f"{path}: {note}" for note in notes if note]
    return table


def _check_ids(path: Path, layout: _Layout, action: np.ndarray) -> None:
    """Refuse a launch row whose ID is not a whole number, or an ID seen before.

    ncu numbers the launches of a report 0, 1, 2... once each (every recorded and public export). A row
    without one is a second header or units row (two exports appended into one file, ``cat a.csv
    b.csv``); an ID seen twice is a row copied twice: both would be read as launches that do not exist.
    """
    ids = pd.to_numeric(pd.Series(action, dtype=object), errors="coerce").to_numpy(dtype="float64")
    valid = np.isfinite(ids)
    valid[valid] = ids[valid] == np.floor(ids[valid])
    if not valid.all():
        row = int(np.argmin(valid))
        text = str(action[row]).strip() if action[row] is not None else ""
        line = _line_of(layout, row)
        if text == "ID":
            raise ReportError(
                f"line {line} repeats the CSV header: two exports were appended into one file, and the "
                "second one's header and units row would be read as launches",
                path=path,
                hint="split the file at that line (or export each report to its own file) and pass both",
            )
        why = "a second units row or an edited line"
        why = f"its ID has {FOREIGN_DIGITS}" if foreign_digits(text) else why
        raise ReportError(
            f"line {line} has no launch ID ({text[:40]!r}; ncu numbers every launch): {why}",
            path=path,
            hint="re-export it with `ncu --import R.ncu-rep --csv --page raw > FILE.csv`",
        )
    order = np.argsort(ids, kind="stable")
    repeated = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(repeated):
        first, again = sorted((int(order[repeated[0]]), int(order[repeated[0] + 1])))
        raise ReportError(
            f"launch ID {int(ids[again])} appears twice (lines {_line_of(layout, first)} and "
            f"{_line_of(layout, again)}): ncu writes each launch once, so a row was duplicated",
            path=path,
            hint="delete the copied row, or re-export it with `ncu --import R.ncu-rep --csv --page raw`",
        )


def _line_of(layout: _Layout, row: int) -> int:
    """The 1-based line of launch row ``row`` (header, units row, then one line per launch)."""
    return layout.skipped + 1 + int(layout.has_units) + row + 1
