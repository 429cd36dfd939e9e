"""The columnar raw-CSV parsers (ingest/csv_engines) on a real export grown to many batches.

The launch rows of a recorded ncu 2025.3 export (``tests/fixtures/csv/seed000_small_raw.csv``, scaled units
and thousands separators) are repeated with per-row edits, and the parsers are run with tiny batches so
that every path crosses many batch and conversion boundaries. The expected table is computed here cell by
cell with the csv module, independently of the readers.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd
import pytest

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import csv_engines, read
from ncu_advisor.ingest.cells import unit_scale

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fixtures" / "csv" / "seed000_small_raw.csv"
SEPARATED = "launch__grid_size"  # printed with thousands separators ("262,144")
PLAIN = "launch__registers_per_thread"
ROWS = 1500


def _source() -> tuple[list[str], list[str], list[list[str]]]:
    rows = list(csv.reader(SOURCE.open(newline="", encoding="utf-8")))
    return rows[0], rows[1], rows[2:]


def _grown(path: Path, rows: int = ROWS, final_newline: bool = True) -> list[list[str]]:
    """Write ``rows`` launches with varied cells; return the data rows written."""
    header, units, launches = _source()
    body = []
    for number in range(rows):
        row = list(launches[number % len(launches)])
        row[header.index("ID")] = str(number)
        row[header.index(SEPARATED)] = "" if number % 97 == 5 else f"{number * 1001 + 7:,}"
        row[header.index(PLAIN)] = "" if number % 89 == 3 else str(number % 250 + 1)
        body.append(row)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([header, units, *body])
    if not final_newline:
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
    return body


def _expected(column: str, cells: list[list[str]]) -> list[float]:
    header, units, _ = _source()
    index = header.index(column)
    factor = unit_scale(units[index])[0]
    return [float(row[index].replace(",", "")) * factor if row[index].strip() else math.nan for row in cells]


def _same(got: pd.Series, want: list[float], rel: float) -> bool:
    return all(
        (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=0)
        for a, b in zip(got.tolist(), want, strict=True)
    )


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_engines, "BATCH_BYTES", 1 << 14)  # ~6 launches a batch
    monkeypatch.setattr(csv_engines, "SEPARATED_ROWS", 200)
    monkeypatch.setattr(csv_engines, "C_CHUNK_ROWS", 170)


@pytest.mark.parametrize("engine", ["pyarrow", "c"])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.usefixtures("small_batches")
def test_many_batches_give_every_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, final_newline: bool
) -> None:
    if engine == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setenv(csv_engines.ENGINE_ENV, engine)
    path = tmp_path / "grown.csv"
    cells = _grown(path, final_newline=final_newline)
    table = read(path)
    assert len(table) == ROWS
    assert table["action"].tolist() == list(range(ROWS))
    rel = 0.0 if engine == "pyarrow" else 1e-15  # pandas' C parser may round the last bit differently
    header = _source()[0]
    for column in [SEPARATED, PLAIN, "gpu__time_duration.sum", "device__attribute_l2_cache_size"]:
        assert column in header
        assert _same(table[column], _expected(column, cells), rel), column
    kernels = [row[header.index("Kernel Name")] for row in cells]
    assert table["demangled"].tolist() == kernels
    assert table["gpu"].tolist() == ["NVIDIA H200"] * ROWS
    assert table["device__attribute_display_name"].tolist() == ["NVIDIA H200"] * ROWS


@pytest.mark.usefixtures("small_batches")
def test_text_in_a_separated_column_late_reads_it_per_value(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "late.csv"
    cells = _grown(path)
    header, units, _ = _source()
    index = header.index(SEPARATED)
    cells[1234][index] = "n/a-text"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([header, units, *cells])
    table = read(path)
    assert table[SEPARATED].iloc[1234] == "n/a-text"
    assert table[SEPARATED].iloc[1233] == float(cells[1233][index].replace(",", ""))
    assert len(table) == ROWS


@pytest.mark.parametrize("engine", ["pyarrow", "c"])
@pytest.mark.usefixtures("small_batches")
def test_short_row_deep_in_the_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    if engine == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setenv(csv_engines.ENGINE_ENV, engine)
    path = tmp_path / "short.csv"
    _grown(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[1200] = lines[1200].replace('","', '"', 1)  # data row 1199: one field fewer
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        read(path)
    assert "line 1201 has 319 fields but the header has 320" in caught.value.render()


def test_count_rows_with_and_without_a_final_newline(tmp_path: Path) -> None:
    for final_newline in (True, False):
        path = tmp_path / f"count-{final_newline}.csv"
        _grown(path, rows=37, final_newline=final_newline)
        start = path.read_bytes().index(b"\n") + 1
        body = csv_engines.Body(path, start, 1, [], [], set(), set())
        assert csv_engines.count_rows(body) == 37


@pytest.mark.parametrize("quoted_newline", [False, True])
@pytest.mark.usefixtures("small_batches")
def test_two_halves_on_two_threads_give_the_one_piece_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quoted_newline: bool
) -> None:
    # A newline inside a quoted cell in the first half: the halves do not meet and the file is read in
    # one piece; the table is the same either way.
    pytest.importorskip("pyarrow")
    path = tmp_path / "halves.csv"
    cells = _grown(path)
    if quoted_newline:
        header, units, _ = _source()
        cells[10][header.index("Process Name")] = "python\n3"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerows([header, units, *cells])
    whole = read(path)
    calls: list[tuple[int, int | None]] = []
    original = csv_engines._ArrowRead.range

    def spy(
        self: csv_engines._ArrowRead, start: int, stop: int | None, skip: int, row: int
    ) -> tuple[int, list[object]]:
        calls.append((start, stop))
        return original(self, start, stop, skip, row)

    monkeypatch.setattr(csv_engines, "SPLIT_BYTES", 1 << 16)
    monkeypatch.setattr(csv_engines.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(csv_engines._ArrowRead, "range", spy)
    halves = read(path)
    assert len(calls) == (3 if quoted_newline else 2) and calls[1][1] is None and calls[0][1] == calls[1][0]
    pd.testing.assert_frame_equal(halves, whole)
    assert halves["action"].tolist() == list(range(ROWS))


def test_a_details_page_cut_by_hand_names_the_columns_it_lacks(tmp_path: Path) -> None:
    """A header with "ID" and "Kernel Name" but no "Section Name" was refused as having no line with the
    columns "ID", "Kernel Name" (new user 9): the error names what is missing, and the generic one stays
    for a CSV without an ncu header."""
    cut = tmp_path / "cut.csv"
    cut.write_text(
        '"ID","Kernel Name","Metric Name","Metric Unit","Metric Value"\n'
        '"0","k","gpu__time_duration.sum","ns","100"\n'
    )
    with pytest.raises(ReportError, match='details-page CSV without the column\\(s\\) "Section Name"'):
        read(cut)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ReportError, match='no line has the columns "ID", "Kernel Name"'):
        read(other)
