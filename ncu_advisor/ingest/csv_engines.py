"""Columnar parsing of a wide CSV body for ``csv_raw``: pyarrow's streaming reader or pandas' C parser.

Both fill one preallocated float64 block (launches x numeric columns, column-major, so that pandas takes
it as one block without a copy) batch by batch, and keep the other columns as Categoricals (each distinct
text once, a code per launch). With pyarrow, plain numbers are copied from each batch in one call, and
columns with thousands separators (``1,980,000``) are read dictionary-encoded and converted per distinct
value; a large body is parsed in two halves on two threads (pyarrow's streaming reader uses one core).
The peak memory is about the block plus a few batches: a 200,000-launch, 316-column export needs ~0.5 GB
for its numbers and the whole read peaks near 0.75 GB (``bench/bench_csv.py``). A column typed numeric
from the sample that holds text further down is re-read as text (the whole read restarts once per such
column; pandas does not say which column, so the C engine then reads every column as text).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.cells import parse_number

ENGINE_ENV = "NCU_ADVISOR_CSV_ENGINE"  # "pyarrow" or "c" (pandas' C parser); default: pyarrow if present
# pyarrow block size (~400 launches of a 320-column export). Arrow's pool keeps memory of past blocks:
# streaming the 500 MB benchmark CSV left 0.6 GB resident with 16 MB blocks, 0.25 GB with 4 MB, 0.1 GB
# with 1 MB, at about the same CPU time.
BATCH_BYTES = 1 << 20
SEPARATED_ROWS = 50_000  # rows of text buffered per column with thousands separators before converting
C_CHUNK_ROWS = 20_000
COUNT_BYTES = 1 << 20  # read size when counting lines
SPLIT_BYTES = 32 << 20  # a body this large is parsed in two halves on two threads (pyarrow)
_NEWLINE = ord("\n")


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
        stop: byte offset where the body ends (None: the end of the file; ncu's trailing ``==PROF==``
            lines are left out this way).
    """

    path: Path
    start: int
    skip_rows: int
    header: list[str]
    numeric: list[str]
    separated: set[str]
    keep: set[str]
    stop: int | None = None


@dataclass
class Columns:
    """A parsed body: the numeric columns as one (rows x len(numeric)) block, the others as text.

    A text column is a Categorical (its distinct strings as read, unstripped, and a code per launch;
    -1 for an empty cell), so that a reader converts each distinct value once.
    """

    numeric: list[str]
    block: np.ndarray
    text: dict[str, pd.Categorical]


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


def count_lines(path: Path, start: int, stop: int | None = None) -> int:
    """The lines of ``path`` from byte ``start`` to ``stop`` (the end): its newlines, plus one for a last
    line without its newline when the range runs to the end of the file."""
    # One reused buffer (a fresh bytes object per read costs a page fault per 4 KB: 0.5 s vs 0.25 s for
    # the 505 MB benchmark file).
    raw = bytearray(COUNT_BYTES)
    buffer = np.frombuffer(raw, dtype=np.uint8)
    newline = np.empty(COUNT_BYTES, dtype=bool)
    count = 0
    last = _NEWLINE
    left = math.inf if stop is None else stop - start
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        while left > 0 and (size := handle.readinto(memoryview(raw)[: int(min(left, COUNT_BYTES))])):
            np.equal(buffer[:size], _NEWLINE, out=newline[:size])
            count += int(np.count_nonzero(newline[:size]))
            last = int(buffer[size - 1])
            left -= size
    return count + 1 if last != _NEWLINE and stop is None else count


def count_rows(body: Body) -> int:
    """The body's rows: its lines, less the skipped ones (a quoted newline would only overcount).

    Exact in the common case, so that the block needs no slicing (a sliced block is copied by pandas).
    """
    return max(count_lines(body.path, body.start, body.stop) - body.skip_rows, 0)


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
    with io.TextIOWrapper(
        io.BufferedReader(_Slice(body.path, body.start, body.stop)),
        encoding="utf-8",
        errors="replace",
        newline="",
    ) as handle:
        reader = csv.reader(handle)
        for index, row in enumerate(reader):
            if index < body.skip_rows or not row:
                continue
            if len(row) != len(body.header):
                raise _field_count_error(body, first - body.skip_rows + reader.line_num - 1, len(row))


def _parse_pyarrow(body: Body, numeric: list[str], rows: int) -> Columns:
    """Parse with pyarrow: in two halves on two threads when the file is large and two CPUs are free
    (pyarrow's streaming reader parses on one core), else in one piece."""
    read = _ArrowRead(body, numeric, rows)
    split = _split(body, rows)
    if split is not None:
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                first = pool.submit(read.range, body.start, split.offset, body.skip_rows, 0)
                second = pool.submit(read.range, split.offset, body.stop, 0, split.rows)
                (done, parts), (more, rest) = first.result(), second.result()
            if done == split.rows:  # else a quoted newline in the first half: the halves do not meet
                return read.columns(done + more, parts + rest)
        except _Misread:
            pass  # the real problem, if any, is found reading in one piece
    try:
        done, parts = read.range(body.start, body.stop, body.skip_rows, 0)
    except _Misread as exc:
        if exc.bad is not None:  # pyarrow's streaming reader gives no row number: find the line
            check_field_counts(body)
            raise _field_count_error(body, None, exc.bad) from None
        raise _parse_error(body, exc.error) from None
    return read.columns(done, parts)


@dataclass
class _Split:
    offset: int  # byte offset of the first row of the second half
    rows: int  # rows before it


def _split(body: Body, rows: int) -> _Split | None:
    """Where to cut the body in two at a row boundary: the first line after its middle that starts as an
    ncu row does (``"<ID>","``, after a line that ended with a quote); None for a small file, one CPU,
    or no such line near the middle."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    size = (body.stop if body.stop is not None else body.path.stat().st_size) - body.start
    if cpus < 2 or size < SPLIT_BYTES or rows < 2:
        return None
    with open(body.path, "rb") as handle:
        handle.seek(body.start + size // 2)
        window = handle.read(1 << 20)
    match = re.search(rb'"\r?\n(?="\d+",")', window)
    if match is None:
        return None
    offset = body.start + size // 2 + match.end()
    before = count_lines(body.path, body.start, offset) - body.skip_rows
    return _Split(offset, before) if 0 < before < rows else None


class _Misread(Exception):
    """pyarrow refused a range of the body: a row with another field count (``bad``) or bad CSV."""

    def __init__(self, bad: int | None, error: BaseException) -> None:
        super().__init__(str(error))
        self.bad = bad
        self.error = error


class _Slice(io.RawIOBase):
    """Bytes ``start`` to ``stop`` (None: the end) of a file, as a readable stream for pyarrow."""

    def __init__(self, path: Path, start: int, stop: int | None) -> None:
        super().__init__()
        self._handle = open(path, "rb")  # noqa: SIM115 (closed by close(), which pyarrow calls)
        self._handle.seek(start)
        self._left = math.inf if stop is None else stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._left < len(view):
            view = view[: int(self._left)]
        size = self._handle.readinto(view) or 0
        self._left -= size
        return size

    def close(self) -> None:
        self._handle.close()
        super().close()


class _ArrowRead:
    """One pyarrow read of the body into a preallocated float block (column-major) and text codes.

    Plain numeric columns are copied from each batch with one call; columns with thousands separators
    and text columns are read dictionary-encoded (a launch costs a 4-byte code; each distinct value is
    converted once, see ``_Coded``).
    """

    def __init__(self, body: Body, numeric: list[str], rows: int) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.body = body
        self.numeric = numeric
        self.rows = rows
        self.block = np.empty((rows, len(numeric)), dtype="float64", order="F")
        self.position = {name: index for index, name in enumerate(numeric)}
        self.coded = [name for name in numeric if name in body.separated]
        self.plain = [name for name in numeric if name not in body.separated]
        self.plain_index = np.array([self.position[name] for name in self.plain], dtype=np.intp)
        self.text = [name for name in body.header if name not in self.position and name in body.keep]
        dictionary = pa.dictionary(pa.int32(), pa.string())
        floats = set(self.plain)
        self.convert = pacsv.ConvertOptions(
            include_columns=[name for name in body.header if name in body.keep],
            column_types={name: pa.float64() if name in floats else dictionary for name in body.header},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )

    def range(self, start: int, stop: int | None, skip_rows: int, row: int) -> tuple[int, list[Any]]:
        """Read bytes ``start:stop`` into the block from row ``row``: (rows read, text batches).

        Raises:
            _Misread: pyarrow refused the range. _RetryAsText: a numeric column holds text.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        bad: list[int] = []

        def invalid_row(invalid: Any) -> str:  # pyarrow's InvalidRow
            bad.append(invalid.actual_columns)
            return "error"

        pending = _Coded(self.coded, self.block, self.position)
        parts: list[Any] = []
        first = row
        try:
            with _Slice(self.body.path, start, stop) as source:
                reader = pacsv.open_csv(
                    source,
                    read_options=pacsv.ReadOptions(
                        column_names=self.body.header, skip_rows=skip_rows, block_size=BATCH_BYTES
                    ),
                    parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row),
                    convert_options=self.convert,
                )
                for batch in reader:
                    end = row + batch.num_rows
                    if end > self.rows:  # cannot happen: ``count_rows`` counts a line per row at least
                        raise _Misread(None, ValueError("more rows than lines"))
                    if self.plain:
                        self.block[row:end, self.plain_index] = _float_columns(batch.select(self.plain))
                    pending.add(batch, row, end)
                    if self.text:
                        parts.append(batch.select(self.text))
                    row = end
                pending.flush()
        except pa.ArrowInvalid as exc:
            failed = _failed_column(str(exc), self.body.header)
            if not bad and failed is not None and failed in self.position:
                raise _RetryAsText(failed) from None
            raise _Misread(bad[0] if bad else None, exc) from None
        return row - first, parts

    def columns(self, rows: int, parts: list[Any]) -> Columns:
        """The parsed body: the first ``rows`` rows of the block and the text columns of ``parts``."""
        import pyarrow as pa

        codes = pa.Table.from_batches(parts, schema=None if parts else pa.schema([]))
        del parts
        series = {
            name: _categorical(codes.column(name)) if name in codes.column_names else pd.Categorical([])
            for name in self.text
        }
        pa.default_memory_pool().release_unused()
        return Columns(numeric=self.numeric, block=self.block[:rows], text=series)


def _float_columns(batch: Any) -> np.ndarray:
    """A record batch of float64 columns as a (rows x columns) array, nulls as NaN."""
    if hasattr(batch, "to_tensor"):  # pyarrow >= 16: one call per batch
        return np.asarray(batch.to_tensor(null_to_nan=True, row_major=False))
    return np.column_stack([column.to_numpy(zero_copy_only=False) for column in batch.columns])


def _categorical(column: Any) -> pd.Categorical:
    """A dictionary-encoded Arrow column as a pandas Categorical (missing cells: code -1)."""
    values = column.to_pandas()
    return values.array if isinstance(values.dtype, pd.CategoricalDtype) else pd.Categorical(values)


class _Coded:
    """The separated numeric columns (``1,980,000``) of the batches read since the last flush.

    They are converted a few times per file, over their distinct values: an Arrow call costs ~0.1 ms
    however small the array, so a call per column and batch would cost seconds on a 200,000-launch file.
    """

    def __init__(self, names: list[str], block: np.ndarray, position: dict[str, int]) -> None:
        self.order = names
        self.block = block
        self.position = position
        self.parts: list[Any] = []
        self.start = self.stop = 0

    def add(self, batch: Any, start: int, stop: int) -> None:
        """Keep the separated columns of ``batch`` (rows ``start:stop``); flush every SEPARATED_ROWS."""
        if not self.order:
            return
        if not self.parts:
            self.start = start
        self.parts.append(batch.select(self.order))
        self.stop = stop
        if self.stop - self.start >= SEPARATED_ROWS:
            self.flush()

    def flush(self) -> None:
        """Convert the kept rows into the block; text in a column re-reads it as text (``_RetryAsText``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.parts:
            return
        # one dictionary per column (the batches each have their own), then one chunk per column
        table = pa.Table.from_batches(self.parts).unify_dictionaries().combine_chunks()
        self.parts = []
        if table.num_rows == 0:
            return
        for name in self.order:
            array = table.column(name).chunk(0)
            numbers = [parse_number(text) for text in array.dictionary.to_pylist()]
            if any(number is None for number in numbers):
                raise _RetryAsText(name)
            lookup = np.array([*numbers, math.nan], dtype="float64")
            codes = pc.fill_null(array.indices, len(numbers)).to_numpy()  # missing: the trailing NaN
            self.block[self.start : self.stop, self.position[name]] = lookup[codes]


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
    with io.BufferedReader(_Slice(body.path, body.start, body.stop)) as handle:
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
    text = {
        name: pd.Categorical(pd.concat(values, ignore_index=True) if values else [])
        for name, values in parts.items()
    }
    return Columns(numeric=numeric, block=block[:start], text=text)
