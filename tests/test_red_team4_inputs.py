"""Damaged copies of the recorded ncu 2025.3 exports (tests/fixtures/formats, H200) and of ../shared files
that a fourth red-team pass (issue 11) found read silently wrong: each is now read right (with a note) or
refused with exit 2 naming the file, the problem and the fix. Every input is derived from a recorded file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest import binary, read
from ncu_advisor.ingest.readers import read_report
from tests.input_helpers import _lines, _refused, _replaced, _write
from tests.test_damage import entry_of
from tests.test_fuzz import _same_tables

ROOT = Path(__file__).resolve().parent.parent
F = ROOT / "tests" / "fixtures" / "formats"
SHARED = ROOT.parent / "shared"
DURATION = "gpu__time_duration.sum"
GRID = "launch__grid_size"
runner = CliRunner()










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


# --- case 6: two details exports in one file --------------------------------------------------------------


def test_two_appended_details_exports_are_refused(tmp_path: Path) -> None:
    lines = _lines("details.csv")
    _refused(
        _write(tmp_path / "twice.csv", lines + lines),
        f"line {len(lines) + 1} repeats the CSV header",
        "two details exports were appended",
        "split the file at that line",
    )
    # appended without the second header (`tail -n +2 b.csv >> a.csv`): launch 0's rows start again
    _refused(
        _write(tmp_path / "tail.csv", lines + lines[1:]),
        f"line {len(lines) + 1}: the rows of launch ID '0' start again after those of launch ID '2'",
        "two details exports were appended",
    )
    # a direct run's export (program output interleaved between the rows) reads as before
    assert read(F / "direct-metrics-details.csv")[DURATION].notna().all()


# --- case 1: a text output cut on its last line ------------------------------------------------------------


def _cut_after(name: str, marker: str) -> list[str]:
    """The lines of fixture ``name`` up to and including the first line that contains ``marker``."""
    lines = _lines(name)
    index = next(i for i, line in enumerate(lines) if marker in line)
    return lines[: index + 1]


@pytest.mark.parametrize(("row", "cut"), [("128.22", "12"), ("249,209", "249,2"), ("249,209", "2")])
def test_text_cut_inside_its_last_number_is_refused(row: str, cut: str, tmp_path: Path) -> None:
    lines = _cut_after("text.txt", row)
    assert lines[-1].rstrip("\n").endswith(row)
    lines[-1] = lines[-1].rstrip("\n")[: -len(row)] + cut  # "Duration  us  12" where ncu printed 128.22
    _refused(_write(tmp_path / "cut.txt", lines), f"line {len(lines)}", "without its newline", "cut")


def test_text_cut_after_a_whole_metric_row_is_refused(tmp_path: Path) -> None:
    lines = _cut_after("text.txt", "128.22")  # ends with its newline, inside the table
    _refused(
        _write(tmp_path / "cut.txt", lines), "ends in section 'GPU Speed Of Light Throughput'", "dashed line"
    )


def test_text_without_its_final_newline_outside_a_table_is_read(tmp_path: Path) -> None:
    whole = (F / "text.txt").read_text(encoding="utf-8")
    assert whole.rstrip("\n").endswith("-")  # the recorded file ends with a table's closing dashed line
    path = tmp_path / "no-newline.txt"
    path.write_text(whole.rstrip("\n"), encoding="utf-8")
    pd.testing.assert_frame_equal(
        read(path).drop(columns="source"), read(F / "text.txt").drop(columns="source")
    )
    case = SHARED / "cases" / "text-output-sm75.txt"  # ends with a rule paragraph
    if case.is_file():
        path.write_text(case.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
        assert read(path)[DURATION].tolist() == read(case)[DURATION].tolist()


# --- case 2: the last launch cut at a line boundary ------------------------------------------------------


def test_details_csv_with_its_last_launch_cut_is_refused(tmp_path: Path) -> None:
    lines = _lines("details.csv")
    last = [i for i, line in enumerate(lines) if line.startswith('"2",')]
    cut = lines[: last[0] + 40]  # launch 2 (add_kernel) keeps its first rows, every one whole
    _refused(
        _write(tmp_path / "cut.csv", cut),
        "the last launch (ID 2, add_kernel)",
        "of launch ID 0",
        "'Source Counters'",
        "re-export",
    )


def test_text_with_its_last_launch_cut_between_sections_is_refused(tmp_path: Path) -> None:
    lines = _lines("text.txt")
    header = max(i for i, line in enumerate(lines) if "add_kernel (64, 1, 1)" in line)
    section = next(i for i in range(header, len(lines)) if "Section: Memory Workload Analysis" in lines[i])
    _refused(
        _write(tmp_path / "cut.txt", lines[:section]),  # every table before the cut is closed
        f"the last launch (at line {header + 1}, add_kernel)",
        "'Memory Workload Analysis'",
    )


@pytest.mark.parametrize("name", ["details.csv", "text.txt", "direct-text.txt", "direct-metrics-details.csv"])
def test_every_line_boundary_cut_is_whole_or_refused(name: str, tmp_path: Path) -> None:
    """A recorded export cut after each of its lines (every 3rd for text): a read with two launches or
    more gives each launch all the metrics the whole file gives it, or the cut is refused; with one launch
    left a cut between sections or rows cannot be seen (see ``display_names.cut_last_launch``)."""
    from ncu_advisor.errors import ReportError  # noqa: PLC0415

    lines, whole = _lines(name), read(F / name)
    refused = read_whole = 0
    for end in range(2, len(lines), 1 if name.endswith(".csv") else 3):
        path = _write(tmp_path / name, lines[:end])
        try:
            table = read(path)
        except ReportError:
            refused += 1
            continue
        if len(table) >= 2:
            read_whole += 1
            for row in range(len(table)):
                expected = whole.iloc[row].drop("source").dropna()
                got = table.iloc[row].reindex(expected.index)
                assert got.tolist() == expected.tolist(), (end, row)
    assert refused and read_whole


# --- case 5: a misspelled metric name in a seed's metrics block ---------------------------------------------


def test_ncu_name_grammar_fits_every_real_metric_name() -> None:
    from ncu_advisor.ingest.seed_json import NCU_NAME  # noqa: PLC0415

    names = {name for name in read(F / "raw.csv").columns if "__" in name}
    reports = sorted((SHARED / "reports-public").glob("*.gz"))
    for path in reports[:4]:  # the whole set (2,551 names) was scanned when the grammar was written
        names |= {name for name in read(path).columns if "__" in name}
    assert len(names) > 300
    assert [name for name in names if not NCU_NAME.match(name)] == []


@pytest.mark.parametrize(
    ("old", "new", "closest"),
    [
        ("lts__t_sector_hit_rate.pct", "lts__t_sector_hit_rate.pcts", "lts__t_sector_hit_rate.pct"),
        ("launch__grid_size", "lanch__grid_size", "launch__grid_size"),
        (
            "dram__throughput.avg.pct_of_peak_sustained_elapsed",
            "dram__throughput.avg.pct_of_peak_sustaned_elapsed",
            "dram__throughput.avg.pct_of_peak_sustained_elapsed",
        ),
    ],
)
def test_misspelled_seed_metric_is_named_in_a_note(old: str, new: str, closest: str, tmp_path: Path) -> None:
    seed = _replaced(tmp_path, _seed(), f'"{old}":', f'"{new}":', name="seed.txt")
    table = read(seed)
    assert new in table.columns and old not in table.columns
    note = f"'{new}' (closest known: {closest})"
    assert any(note in n for n in table.attrs["notes"]), table.attrs["notes"]
    assert not any("not ncu metric names" in n for n in read(_seed()).attrs["notes"])  # the seed as written
    # shown wherever notes are: recommend's stderr and every `report` format
    result = runner.invoke(app, ["recommend", str(seed), "--fail-on", "never"])
    if old.startswith("dram__"):  # no rule can run without it: exit 2, naming the metric it lacks
        assert result.exit_code == 2 and closest in result.output, result.output
        return
    assert result.exit_code == 0 and note in " ".join(result.output.split()), result.output
    for fmt in ("md", "html", "json", "junit", "sarif"):
        result = runner.invoke(app, ["report", str(seed), "-f", fmt])
        assert result.exit_code in (0, 1), result.output
        assert "closest known: " + closest in result.output, fmt


# --- case 7: a flipped bit that blanks a value of a metric no rule reads (.ncu-rep) ------------------------

FULL = F / "full.ncu-rep.gz"
SASS = "sass__inst_executed_global_loads"  # 524288 in launch 0 of the recorded --set full report


@pytest.fixture(scope="module")
def full_plain() -> bytes:
    import gzip  # noqa: PLC0415

    return gzip.decompress(FULL.read_bytes())


@pytest.mark.parametrize(("offset", "bit"), [(-2, 1), (1, 0), (3, 5)])
def test_blanked_sass_value_equals_ncu_reports_reading(
    full_plain: bytes, offset: int, bit: int, tmp_path: Path
) -> None:
    """A bit flip in the tag bytes of a ``sass__*`` MetricResult (offsets from its value message) that leaves
    the result without a value: ncu_report reads the metric as missing too, so the table (every metric,
    not only those the rules read) equals ncu_report's and differs from the undamaged one in that one cell.
    Measured over every bit of this entry's 18 bytes (from offset -2) and of
    ``sass__inst_executed_register_spilling``'s 11 (232 flips, each read with ``read_report`` and with
    ``binary._read_binary(reader="ncu_report")``): 125 exit 2, 107 tables equal to ncu_report's, 0
    different; the three offsets here are the kinds that read (the rest are exit 2)."""
    pytest.importorskip("ncu_report")
    start, _, _ = entry_of(full_plain, 0, SASS)
    data = bytearray(full_plain)
    data[start + offset] ^= 1 << bit
    path = _write_bytes(tmp_path / "flipped.ncu-rep", bytes(data))
    table, whole = read_report(path), read_report(FULL)
    theirs = binary._read_binary(path, None, reader="ncu_report", workers=0)
    assert _same_tables(table, theirs)
    assert whole[SASS].iloc[0] == 524288 and pd.isna(table[SASS].iloc[0]) and pd.isna(theirs[SASS].iloc[0])
    changed = [
        (row, column)
        for column in whole.columns
        if column != "source"
        for row in range(len(whole))
        if repr(whole[column].iloc[row]) != repr(table[column].iloc[row])
    ]
    assert changed == [(0, SASS)]


def test_a_flipped_bit_that_breaks_the_sass_entry_is_exit_2(full_plain: bytes, tmp_path: Path) -> None:
    start, _, _ = entry_of(full_plain, 0, SASS)
    data = bytearray(full_plain)
    data[start] ^= 1  # the value message's first tag: "a metric result is malformed"
    path = _write_bytes(tmp_path / "flipped.ncu-rep", bytes(data))
    _refused(path, "truncated or corrupt", "re-record")


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_no_rule_could_check_names_the_misspelled_metrics(tmp_path) -> None:
    # every metric name of a pasted block misspelled: the refusal says which names and their closest ones
    import json as _json

    from typer.testing import CliRunner

    from ncu_advisor.cli import app

    path = tmp_path / "block.json"
    path.write_text(_json.dumps({"k": {"lanch__grid_size": 128, "launch__registers_per_thred": 40}}))
    result = CliRunner().invoke(app, ["recommend", str(path)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "no rule could check" in text and "'lanch__grid_size' (closest known: launch__grid_size)" in text
