"""Fuzzing the readers with real data: every outcome is a table equal to NVIDIA's reading or a ReportError.

Hypothesis changes bytes of a real recorded report inside its profile results (the metric region: names,
values, kinds, lengths) and characters of a real CSV export. For each damaged copy, ``read_report`` must
either raise ``ReportError`` (exit 2 in the CLI) or return a table whose every value equals what
``ncu_report`` reads from the same bytes (binary) or differs from the undamaged table in at most the one
cell that was changed (CSV). Any other exception (a traceback, exit 1) fails the test.

A changed byte that keeps a value plausible (a low mantissa bit of a double, 2.0 -> 6.75 in an average)
cannot be told from a real value: the format has no checksum. The readers' job is to agree with NVIDIA's
reader on those and to refuse everything structural or impossible (see ``ncu_advisor.ingest.sanity``).

Reproducible in CI: ``derandomize=True`` (examples are a function of the test), no example database.
Measured on the 2-core CI machine: about 20 s for the binary fuzz (100 examples), 5 s for each CSV fuzz (40).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import binary, ncurep
from ncu_advisor.ingest.readers import read_report
from tests.conftest import EXAMPLES, FIXTURES

REPORT = EXAMPLES / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
CSV = FIXTURES / "csv" / "seed000_small_raw.csv"
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=40,
    phases=[
        Phase.explicit,
        Phase.generate,
    ],  # no shrinking: a failure shows its first example, in bounded time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_DATA = gzip.decompress(REPORT.read_bytes())
_SPANS = ncurep.read_launches(_DATA).result_spans
_REGION = [(start, end) for start, end in _SPANS]


def _same_tables(mine: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    columns = [c for c in mine.columns if c not in ("source",)]
    if sorted(columns) != sorted(c for c in theirs.columns if c != "source") or len(mine) != len(theirs):
        return False
    for column in columns:
        for a, b in zip(mine[column].tolist(), theirs[column].tolist(), strict=True):
            both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
            if not (both_nan or a == b or (a is None and b is None)):
                return False
    return True


@settings(FUZZ, max_examples=100)
@given(
    span=st.sampled_from(_REGION),
    where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    byte=st.integers(min_value=0, max_value=255),
    cut=st.booleans(),
)
def test_damaged_report_bytes(
    tmp_path: Path, span: tuple[int, int], where: float, byte: int, cut: bool
) -> None:
    start, end = span
    pos = start + int(where * (end - start))
    data = bytearray(_DATA)
    if cut:
        data = data[:pos]
    else:
        data[pos] = byte
    path = tmp_path / f"fuzz-{pos}-{byte}-{int(cut)}.ncu-rep"
    path.write_bytes(bytes(data))
    try:
        table = read_report(path)
    except ReportError as exc:
        assert str(path) in exc.render()
        return
    reference = binary._read_binary(path, None, reader="ncu_report", workers=0)
    assert _same_tables(table, reference), f"byte {pos} -> {byte}: the table differs from ncu_report's"
    assert table["kernel"].notna().all()


def _csv_cells(table: pd.DataFrame) -> dict[tuple[int, str], object]:
    return {
        (row, column): value
        for column in table.columns
        if column != "source"
        for row, value in enumerate(table[column].tolist())
    }


_CSV_TEXT = CSV.read_text(encoding="utf-8")
_CSV_TABLE = read_report(CSV)


def _damaged_csv(tmp_path: Path, where: float, char: str, delete: bool) -> tuple[Path, str]:
    pos = int(where * len(_CSV_TEXT))
    text = _CSV_TEXT[:pos] + ("" if delete else char) + _CSV_TEXT[pos + 1 :]
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    return path, text


_CSV_EDITS = {
    "where": st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    "char": st.sampled_from(list('0123456789.,-e"\n xX%')),
    "delete": st.booleans(),
}


@FUZZ
@given(**_CSV_EDITS)
def test_damaged_csv_text(tmp_path: Path, where: float, char: str, delete: bool) -> None:
    path, _ = _damaged_csv(tmp_path, where, char, delete)
    try:
        table = read_report(path)
    except ReportError as exc:
        assert str(path) in exc.render()
        return
    assert table["kernel"].notna().all()


@FUZZ
@given(**_CSV_EDITS)
def test_damaged_csv_changes_at_most_one_cell(tmp_path: Path, where: float, char: str, delete: bool) -> None:
    path, text = _damaged_csv(tmp_path, where, char, delete)
    try:
        table = read_report(path)
    except ReportError:
        return
    if text.count("\n") != _CSV_TEXT.count("\n") or text.count('"') != _CSV_TEXT.count('"'):
        return  # a row or a quote was added or removed: the structure changed; only "no traceback" holds
    before, after = _csv_cells(_CSV_TABLE), _csv_cells(table)
    if int(where * len(_CSV_TEXT)) < _CSV_TEXT.index("\n"):  # a header name changed: one column renamed
        renamed = set(_CSV_TABLE.columns) ^ set(table.columns)
        assert len(renamed) <= 2, sorted(renamed)
        before = {key: value for key, value in before.items() if key[1] not in renamed}
        after = {key: value for key, value in after.items() if key[1] not in renamed}
    changed = {key for key in before.keys() | after.keys() if not _equal(before.get(key), after.get(key))}
    columns = {column for _, column in changed}
    assert len(columns) <= 1 or columns <= {"kernel", "demangled"}, f"{sorted(changed)[:5]}"


@pytest.mark.parametrize("engine", ["pyarrow", "c"])
@pytest.mark.parametrize(
    ("edit", "count"), [(lambda row: row.replace('","', '"2"', 1), 319), (lambda row: row + ',"5"', 321)]
)
def test_row_with_another_field_count_is_refused_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, edit: Any, count: int
) -> None:
    # One comma lost (or one added) in the third data row of a real export: the row is refused, with
    # the file, the line number and both counts, never read with its later cells shifted.
    if engine == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setenv("NCU_ADVISOR_CSV_ENGINE", engine)
    lines = _CSV_TEXT.split("\n")
    lines[3] = edit(lines[3])
    path = tmp_path / "shifted.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        read_report(path)
    message = caught.value.render()
    assert str(path) in message and "line 4 " in message
    assert f"has {count} fields but the header has 320" in message and "re-export" in message


def _equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize("path", [REPORT, CSV])
def test_fuzz_inputs_read_cleanly(path: Path) -> None:
    # The undamaged inputs read without error: the fuzz tests start from a valid file.
    assert len(read_report(path)) >= 1
