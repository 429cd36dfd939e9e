"""Damaged copies of the recorded ncu 2025.3 exports (tests/fixtures/formats, H200) and of ../shared files that
a fourth red-team pass (issue 11) found read silently wrong: each is now read right (with a note) or refused
with exit 2 naming the file, the problem and the fix. Every input is derived here from a recorded file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest import read

ROOT = Path(__file__).resolve().parent.parent
F = ROOT / "tests" / "fixtures" / "formats"
SHARED = ROOT.parent / "shared"
DURATION = "gpu__time_duration.sum"
GRID = "launch__grid_size"
runner = CliRunner()


def _lines(name: str) -> list[str]:
    return (F / name).read_text(encoding="utf-8").splitlines(keepends=True)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _refused(path: Path, *words: str) -> str:
    """Assert exit 2 through the CLI and that the message names the file and each of ``words``."""
    result = runner.invoke(app, ["recommend", str(path)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert path.name in text
    for word in words:
        assert word in text, (word, text)
    return text


def _replaced(tmp_path: Path, source: Path, old: str, new: str, *, name: str | None = None) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / (name or f"changed-{source.name}")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _raw_with(tmp_path: Path, column: str, cell: str, *, row: int = 2) -> Path:
    """raw.csv with one cell changed (row 1 is the units row, 2 the first launch)."""
    rows = list(csv.reader((F / "raw.csv").open(newline="", encoding="utf-8")))
    rows[row][rows[0].index(column)] = cell
    path = tmp_path / "changed-raw.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return path


SEED = SHARED / "seeds" / "000_edf35d9da7fdb540.txt"


def _seed() -> Path:
    if not SEED.is_file():
        pytest.skip(f"{SEED} is absent")
    return SEED


# --- case 4: digits other than ASCII 0-9 -----------------------------------------------------------------

ARABIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
FULL_WIDTH = str.maketrans("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")


def test_python_reads_foreign_digits_as_numbers() -> None:
    # why the readers must refuse them: float() would read the edited cell as the value ncu never wrote
    assert float("128.22".translate(ARABIC)) == 128.22
    assert float("16384".translate(FULL_WIDTH)) == 16384


@pytest.mark.parametrize("digits", [ARABIC, FULL_WIDTH])
def test_foreign_digits_are_refused_in_every_text_reader(digits: dict[int, int], tmp_path: Path) -> None:
    duration, grid = "128.224000".translate(digits), "16,384".translate(digits)
    # raw CSV: a column with a unit (us) and one without (launch__grid_size), and the launch ID
    _refused(_raw_with(tmp_path, DURATION, duration), "line 3", DURATION, "ASCII 0-9")
    _refused(_raw_with(tmp_path, GRID, grid), "line 3", GRID, "ASCII 0-9")
    _refused(_raw_with(tmp_path, "ID", "0".translate(digits)), "line 3", "launch ID", "ASCII 0-9")
    # details CSV: a value with a unit, one without, and the launch ID
    row = '"Duration","us","128.22"'
    details = _replaced(tmp_path, F / "details.csv", row, row.replace("128.22", "128.22".translate(digits)))
    _refused(details, "line 7", "Duration", "ASCII 0-9")
    row = '"Launch Statistics","Grid Size","","16,384"'
    _refused(
        _replaced(tmp_path, F / "details.csv", row, row.replace("16,384", grid)), "Grid Size", "ASCII 0-9"
    )
    first = _lines("details.csv")[1]
    assert first.startswith('"0",')
    edited = _replaced(
        tmp_path, F / "details.csv", first, first.replace('"0"', '"' + "0".translate(digits) + '"', 1)
    )
    _refused(edited, "line 2", "launch ID", "ASCII 0-9")
    # plain text: a value with a unit, one without, and the grid of the launch header
    old = "Duration                         us       128.22"
    _refused(
        _replaced(tmp_path, F / "text.txt", old, old.replace("128.22", "128.22".translate(digits))),
        "ASCII 0-9",
    )
    old = "Grid Size                                                 16,384"
    text = _replaced(tmp_path, F / "text.txt", old, old[: -len("16,384")] + grid)
    _refused(text, "Grid Size", "ASCII 0-9")
    header = "softmax_kernel (16384, 1, 1)"
    _refused(
        _replaced(tmp_path, F / "text.txt", header, header.replace("16384", "16384".translate(digits))),
        "line 2",
        "ASCII 0-9",
    )
    # seed JSON: JSON numbers are ASCII by grammar; a numeric string is read as a number unless foreign
    seed = _replaced(
        tmp_path,
        _seed(),
        '"launch__grid_size": 32258',
        '"launch__grid_size": "' + "32258".translate(digits) + '"',
        name="seed.txt",
    )
    _refused(seed, GRID, "ASCII 0-9")


# --- case 3: a raw CSV with a repeated column --------------------------------------------------------------


def _raw_with_repeat(
    tmp_path: Path, column: str, cells: list[str] | None = None, unit: str | None = None
) -> Path:
    """raw.csv with ``column`` appended again at the end (its cells, or ``cells`` for the launches)."""
    rows = list(csv.reader((F / "raw.csv").open(newline="", encoding="utf-8")))
    index = rows[0].index(column)
    for number, row in enumerate(rows):
        cell = row[index]
        if number == 1 and unit is not None:
            cell = unit
        elif number >= 2 and cells is not None:
            cell = cells[number - 2]
        row.append(cell)
    path = tmp_path / "repeat-raw.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return path


@pytest.fixture(params=["pyarrow", "c"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each raw-CSV test runs with both columnar engines (``csv_engines``)."""
    monkeypatch.setenv("NCU_ADVISOR_CSV_ENGINE", request.param)
    return str(request.param)


@pytest.mark.parametrize("column", [DURATION, GRID, "Kernel Name"])
def test_repeated_raw_column_with_equal_values_is_read_once(column: str, engine: str, tmp_path: Path) -> None:
    plain = read(F / "raw.csv")
    table = read(_raw_with_repeat(tmp_path, column))
    assert list(table.columns) == list(plain.columns)  # no "name#2" column
    pd.testing.assert_frame_equal(table.drop(columns="source"), plain.drop(columns="source"))
    assert any(
        f"the column {column} appears twice in the header with equal values" in n
        for n in table.attrs["notes"]
    )


def test_repeated_raw_column_in_another_unit_is_compared_in_base_units(tmp_path: Path) -> None:
    rows = list(csv.reader((F / "raw.csv").open(newline="", encoding="utf-8")))
    index = rows[0].index(DURATION)
    assert rows[1][index] == "us"
    in_ns = [f"{float(row[index]) * 1000:.0f}" for row in rows[2:]]  # 128.224000 us -> 128224 ns
    table = read(_raw_with_repeat(tmp_path, DURATION, in_ns, unit="ns"))
    assert table[DURATION].tolist() == read(F / "raw.csv")[DURATION].tolist()


@pytest.mark.parametrize("column", [DURATION, GRID, "Kernel Name"])
def test_repeated_raw_column_with_other_values_is_refused(column: str, engine: str, tmp_path: Path) -> None:
    rows = list(csv.reader((F / "raw.csv").open(newline="", encoding="utf-8")))
    cells = [row[rows[0].index(column)] for row in rows[2:]]
    cells[1] = "999" if column != "Kernel Name" else "other_kernel"
    _refused(
        _raw_with_repeat(tmp_path, column, cells),
        f"the column {column} appears twice",
        "line 4",
        "delete one",
    )
