"""Columnar parsing of a wide CSV body for ``csv_raw``: pyarrow's streaming reader or pandas' C parser.

Both fill one preallocated float64 block (launches x numeric columns, column-major, so that pandas takes
it as one block without a copy) batch by batch, and keep the other columns as text. The peak memory is
about the block itself plus one batch: a 200,000-launch, 316-column export needs ~0.5 GB for its numbers
and the parse adds ~0.1 GB (``bench/bench_csv.py``). A column typed numeric from the sample that holds text
further down is re-read as text (pyarrow names the column; the whole read restarts once per such column).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncu_advisor.errors import ReportError

ENGINE_ENV = "NCU_ADVISOR_CSV_ENGINE"  # "pyarrow" or "c" (pandas' C parser); default: pyarrow if present
# pyarrow block size (~400 launches of a 320-column export). Arrow's pool keeps memory of past blocks:
# streaming the 500 MB benchmark CSV left 0.6 GB resident with 16 MB blocks, 0.25 GB with 4 MB, 0.1 GB
# with 1 MB, at about the same CPU time.
BATCH_BYTES = 1 << 20
SEPARATED_ROWS = 50_000  # rows of text buffered per column with thousands separators before converting
C_CHUNK_ROWS = 20_000


@dataclass
class Body:
    """Where the CSV body is and what its columns hold.

    Attributes:
        path: the file.
        start: byte offset of the first row after the header.
        skip_rows: rows to skip there (1 for the units row).
        header: column names (unique).
        numeric: columns to parse as float64 (the rest are kept as text).
        separated: those of ``numeric`` whose numbers have thousands separators (``1,980,000``).
        keep: the columns to return (the others are parsed and dropped at once).
    """

    path: Path
    start: int
    skip_rows: int
    header: list[str]
    numeric: list[str]
    separated: set[str]
    keep: set[str]


@dataclass
class Columns:
    """A parsed body: the numeric columns as one (rows x len(numeric)) block, the others as text."""

    numeric: list[str]
    block: np.ndarray
    text: dict[str, pd.Series]


def engine() -> str:
    """``pyarrow`` when installed (unless ``$NCU_ADVISOR_CSV_ENGINE`` says ``c``), else ``c``."""
    requested = os.environ.get(ENGINE_ENV, "").strip().lower()
    if requested in ("c", "pandas"):
        return "c"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "c"
    return "pyarrow"


def count_rows(body: Body) -> int:
    """The body's rows: its lines, less the skipped ones (a quoted newline would only overcount).

    Exact in the common case, so that the block needs no slicing (a sliced block is copied by pandas).
    """
    count = 0
    last = b"\n"
    with open(body.path, "rb") as handle:
        handle.seek(body.start)
        for piece in iter(lambda: handle.read(1 << 24), b""):
            count += piece.count(b"\n")
            last = piece[-1:]
    if last != b"\n":
        count += 1  # a last line without its newline
    return max(count - body.skip_rows, 0)


def parse(body: Body) -> Columns:
    """Parse the body with the chosen engine.

    Raises:
        ReportError: the body is not parseable as CSV (a row with another number of fields, bad quoting).
    """
    numeric = list(body.numeric)
    rows = count_rows(body)
    while True:
        try:
            if engine() == "pyarrow":
                return _parse_pyarrow(body, numeric, rows)
            return _parse_c(body, numeric, rows)
        except _RetryAsText as retry:
            if retry.column is None:
                numeric.clear()
            else:
                numeric.remove(retry.column)


class _RetryAsText(Exception):
    """A numeric-typed column holds text: re-read it (None: every column) as text."""

    def __init__(self, column: str | None) -> None:
        super().__init__(column)
        self.column = column


def _parse_error(body: Body, exc: BaseException) -> ReportError:
    return ReportError(
        f"the CSV cannot be parsed ({exc})",
        path=body.path,
        hint="re-export it with `ncu --import R.ncu-rep --csv --page raw > FILE.csv`",
    )


def _first_line(body: Body) -> int:
    """The 1-based line number of the body's first row (after the header and, if any, the units row)."""
    with open(body.path, "rb") as handle:
        return handle.read(body.start).count(b"\n") + 1 + body.skip_rows


def _field_count_error(body: Body, line: int | None, count: int) -> ReportError:
    """A data row with another number of fields than the header: the cells after the damage would move."""
    where = f"line {line}" if line is not None else "a row"
    return ReportError(
        f"{where} has {count} fields but the header has {len(body.header)}: a comma was added or lost, "
        "and every later cell of the row would be read into the wrong column",
        path=body.path,
        hint="re-export it with `ncu --import R.ncu-rep --csv --page raw > FILE.csv` "
        "(or repair that line so it has one field per header column)",
    )


def check_field_counts(body: Body) -> None:
    """Refuse (ReportError) the first row whose number of fields differs from the header's.

    The pandas C parser pads a short row with empty cells and cannot say so; this pass (the csv module,
    ~1 s per 100 MB) runs before it. pyarrow checks the count itself (``_parse_pyarrow``).
    """
    first = _first_line(body)
    with open(body.path, encoding="utf-8", errors="replace", newline="") as handle:
        handle.seek(body.start)
        reader = csv.reader(handle)
        for index, row in enumerate(reader):
            if index < body.skip_rows or not row:
                continue
            if len(row) != len(body.header):
                raise _field_count_error(body, first - body.skip_rows + reader.line_num - 1, len(row))


def _parse_pyarrow(body: Body, numeric: list[str], rows: int) -> Columns:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list[int] = []

    def invalid_row(row: Any) -> str:  # pyarrow's InvalidRow
        bad.append(row.actual_columns)
        return "error"

    block = np.empty((rows, len(numeric)), dtype="float64", order="F")
    position = {name: index for index, name in enumerate(numeric)}
    separated = body.separated & set(numeric)
    text: dict[str, list[Any]] = {n: [] for n in body.header if n not in position and n in body.keep}
    start = 0
    with open(body.path, "rb") as handle:
        handle.seek(body.start)
        try:
            reader = pacsv.open_csv(
                handle,
                read_options=pacsv.ReadOptions(
                    column_names=body.header, skip_rows=body.skip_rows, block_size=BATCH_BYTES
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[name for name in body.header if name in body.keep],
                    column_types={
                        n: pa.float64() if n in position and n not in separated else pa.string()
                        for n in body.header
                    },
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            # Columns with separators are converted a few times per file, not per batch: an Arrow call
            # costs ~0.1 ms however small the array (measured: 37,000 calls took 7 of the 10 CPU s).
            pending: dict[str, list[Any]] = {name: [] for name in separated}
            pending_from = 0
            for batch in reader:
                stop = start + batch.num_rows
                for name, array in zip(batch.schema.names, batch.columns, strict=True):
                    if name in separated:
                        pending[name].append(array)
                    elif name in position:
                        block[start:stop, position[name]] = array.to_numpy(zero_copy_only=False)
                    else:
                        text[name].append(array)
                start = stop
                if start - pending_from >= SEPARATED_ROWS:
                    _flush_separated(pending, block, position, pending_from, start)
                    pending_from = start
            _flush_separated(pending, block, position, pending_from, start)
        except pa.ArrowInvalid as exc:
            if bad:  # pyarrow's streaming reader gives no row number: find the line with the csv module
                check_field_counts(body)
                raise _field_count_error(body, None, bad[0]) from None
            failed = _failed_column(str(exc), body.header)
            if failed is not None and failed in position:
                raise _RetryAsText(failed) from None
            raise _parse_error(body, exc) from None
    series = {
        name: pa.chunked_array(parts, type=pa.string()).to_pandas() if parts else pd.Series([], dtype=object)
        for name, parts in text.items()
    }
    return Columns(numeric=numeric, block=block[:start], text=series)


def _flush_separated(
    pending: dict[str, list[Any]], block: np.ndarray, position: dict[str, int], start: int, stop: int
) -> None:
    """Convert the buffered text of the separated columns (rows ``start:stop``) into the block."""
    import pyarrow as pa

    for name, parts in pending.items():
        if parts:
            numbers = _without_separators(name, pa.chunked_array(parts, type=pa.string()))
            block[start:stop, position[name]] = numbers.to_numpy()
            parts.clear()


def _without_separators(name: str, array: Any) -> Any:
    """A text column of numbers like ``1,980,000`` as float64; text in it re-reads the column as text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.replace_substring(pc.utf8_trim_whitespace(array), ",", "")
    try:
        return pc.cast(digits, pa.float64())
    except pa.ArrowInvalid:
        raise _RetryAsText(name) from None


def _failed_column(message: str, header: Sequence[str]) -> str | None:
    match = re.search(r"column #(\d+)", message)
    if not match:
        return None
    index = int(match.group(1))
    return header[index] if index < len(header) else None


def _parse_c(body: Body, numeric: list[str], rows: int) -> Columns:
    block = np.empty((rows, len(numeric)), dtype="float64", order="F")
    numeric_set = set(numeric)
    parts: dict[str, list[pd.Series]] = {
        name: [] for name in body.header if name not in numeric_set and name in body.keep
    }
    start = 0
    check_field_counts(body)
    with open(body.path, "rb") as handle:
        handle.seek(body.start)
        try:
            chunks = pd.read_csv(
                handle,
                header=None,
                names=body.header,
                usecols=[name for name in body.header if name in body.keep],
                skiprows=body.skip_rows,
                dtype={name: "float64" if name in numeric_set else object for name in body.header},
                na_values=[""],
                keep_default_na=False,
                thousands=",",
                engine="c",
                chunksize=C_CHUNK_ROWS,
                encoding="utf-8",
                encoding_errors="replace",
            )
            for chunk in chunks:
                stop = start + len(chunk)
                block[start:stop] = chunk[numeric].to_numpy(dtype="float64")
                for name, values in parts.items():
                    values.append(chunk[name])
                start = stop
        except ValueError as exc:  # a numeric-typed column with text further down, or a bad row
            if numeric:  # pandas does not say which column: read them all as text once
                raise _RetryAsText(None) from None
            raise _parse_error(body, exc) from None
    text = {name: pd.concat(values, ignore_index=True) for name, values in parts.items() if values}
    return Columns(numeric=numeric, block=block[:start], text=text)
