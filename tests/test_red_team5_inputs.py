"""Damaged copies of the recorded ncu 2025.3 exports (tests/fixtures/formats, H200) and of ../shared files
that a fifth red-team pass (issue 11) found read silently wrong or refused with a misleading message: each
is now refused with exit 2 naming the file, the problem and the fix, or read with a note. Every input is
derived from a recorded file.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest import read
from ncu_advisor.ingest.common import MAX_INFLATE_RATIO
from tests.input_helpers import _lines, _refused, _replaced, _write

ROOT = Path(__file__).resolve().parent.parent
F = ROOT / "tests" / "fixtures" / "formats"
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_edf35d9da7fdb540.txt"
HEADER = re.compile(r", Context \d+, Stream \d+")
runner = CliRunner()










def _seed() -> Path:
    if not SEED.is_file():
        pytest.skip(f"{SEED} is absent")
    return SEED


def _launch_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if HEADER.search(line)]


# --- D3: a text output cut right after its last launch line --------------------------------------------


@pytest.mark.parametrize("name", ["text.txt", "direct-text.txt", "text-rule-details.txt"])
@pytest.mark.parametrize("ending", ["", "\n", "\n   \n"])
def test_text_cut_right_after_the_last_launch_line_is_refused(name: str, ending: str, tmp_path: Path) -> None:
    lines = _lines(name)
    last = _launch_lines(lines)[-1]
    assert "add_kernel" in lines[last]
    cut = [*lines[:last], lines[last].rstrip("\n") + ending]
    _refused(
        _write(tmp_path / name, cut), "right after the launch line of 'add_kernel'", f"line {last + 1}", "cut"
    )


# --- D4: a whole section missing inside one launch ------------------------------------------------------


def _without_details_section(tmp_path: Path, launch: str, section: str) -> Path:
    lines = _lines("details.csv")
    kept = [line for line in lines if not (line.startswith(f'"{launch}",') and f'"{section}"' in line)]
    assert len(lines) - len(kept) >= 2, (launch, section)
    return _write(tmp_path / "details.csv", kept)


@pytest.mark.parametrize(
    ("launch", "section", "kernel"),
    [
        ("2", "Launch Statistics", "add_kernel"),
        ("1", "Occupancy", "matmul_kernel"),
        ("0", "Occupancy", "softmax"),
    ],
)
def test_details_csv_without_one_launchs_section_is_refused(
    launch: str, section: str, kernel: str, tmp_path: Path
) -> None:
    path = _without_details_section(tmp_path, launch, section)
    _refused(path, f"launch ID {launch} ({kernel}", f"'{section}'", "every other launch")


def _without_text_section(lines: list[str], launch: int, section: str) -> list[str]:
    heads = [*_launch_lines(lines), len(lines)]
    start = next(i for i in range(heads[launch], heads[launch + 1]) if f"Section: {section}" in lines[i])
    end = next((i for i in range(start + 1, heads[launch + 1]) if "Section:" in lines[i]), heads[launch + 1])
    return lines[:start] + lines[end:]


@pytest.mark.parametrize(
    ("launch", "section"), [(1, "Occupancy"), (2, "Launch Statistics"), (0, "Occupancy")]
)
def test_text_without_one_launchs_section_is_refused(launch: int, section: str, tmp_path: Path) -> None:
    lines = _lines("text.txt")
    path = _write(tmp_path / "text.txt", _without_text_section(lines, launch, section))
    _refused(path, f"launch at line {_launch_lines(lines)[launch] + 1}", f"'{section}'", "every other launch")


def test_every_launch_of_each_recorded_export_has_the_same_sections() -> None:
    """The premise of the check, on every recorded details/text export with two launches or more."""
    from ncu_advisor.ingest import csv_details, text  # noqa: PLC0415

    names = ["details.csv", "details-de.csv", "details-units-base.csv", "direct-metrics-details.csv"]
    names += ["text.txt", "text-de.txt", "text-rule-details.txt", "direct-text.txt"]
    for name in names:
        table = (csv_details if name.endswith(".csv") else text).read(F / name, None)
        assert len(table) == 3, name
    for path in sorted((SHARED / "cases").glob("*")) if (SHARED / "cases").is_dir() else []:
        if path.suffix in (".csv", ".txt"):
            assert len(read(path)) == 1, path


# --- D6: a bare carriage return inside a CSV field ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "where"),
    [
        ("raw.csv", '"launch__grid_size"', '"launch__grid\rsize"', "line 1, column"),
        ("raw.csv", '"Kernel Name"', '"Kernel\rName"', "line 1, column 5"),
        ("raw.csv", "add_kernel", "add\r_kernel", "('Kernel Name')"),
        ("details.csv", "add_kernel", "add\r_kernel", "('Kernel Name')"),
        ("details.csv", '"Metric Value"', '"Metric\rValue"', "line 1, column"),
    ],
)
def test_a_carriage_return_inside_a_csv_field_is_refused(
    name: str, old: str, new: str, where: str, tmp_path: Path
) -> None:
    _refused(_replaced(tmp_path, F / name, old, new), where, "carriage return")


@pytest.mark.parametrize("name", ["raw.csv", "details.csv", "direct-raw.csv", "direct-metrics-details.csv"])
def test_crlf_line_ends_still_read(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes((F / name).read_bytes().replace(b"\n", b"\r\n"))
    got, whole = read(path), read(F / name)
    assert got.drop(columns="source").equals(whole.drop(columns="source"))


# --- D7: a misspelled launch__ name in a seed's metrics block ---------------------------------------------


@pytest.mark.parametrize("wrong", ["launch__grid_sise", "launch__gridsize"])
def test_misspelled_launch_metric_in_seed_is_named_in_a_note(wrong: str, tmp_path: Path) -> None:
    seed = _replaced(tmp_path, _seed(), '"launch__grid_size":', f'"{wrong}":', name="seed.txt")
    notes = " ".join(read(seed).attrs["notes"])
    assert f"'{wrong}' (closest known: launch__grid_size)" in notes


def test_real_launch_metrics_give_no_note() -> None:
    from ncu_advisor.ingest.seed_json import LAUNCH_NAMES, unknown_names_note  # noqa: PLC0415

    names = [name for name in read(F / "raw.csv").columns if name.startswith("launch__")]
    assert len(names) > 30
    assert {name.removeprefix("launch__") for name in names} <= LAUNCH_NAMES
    assert unknown_names_note("x", names) is None
    assert not any("not ncu metric names" in note for note in read(_seed()).attrs["notes"])


# --- D9: messages ------------------------------------------------------------------------------------


def test_text_without_its_launch_lines_says_they_are_missing(tmp_path: Path) -> None:
    lines = _lines("text.txt")
    kept = [line for line in lines if not HEADER.search(line)]
    text = _refused(_write(tmp_path / "text.txt", kept), "launch lines", "missing", "whole output")
    assert "appears twice" not in text


def test_quoted_details_csv_is_read_without_its_quotes(tmp_path: Path) -> None:
    path = _write(tmp_path / "quoted.csv", ["> " + line for line in _lines("details.csv")])
    table, whole = read(path), read(F / "details.csv")
    assert table.drop(columns="source").equals(whole.drop(columns="source"))
    assert any("quote prefix" in note for note in table.attrs["notes"])


def test_a_5000_digit_number_in_the_json_block_says_too_long(tmp_path: Path) -> None:
    text = _seed().read_text(encoding="utf-8")
    match = re.search(r'"launch__grid_size": (\d+)', text)
    assert match is not None
    path = tmp_path / "seed.txt"
    path.write_text(text[: match.start(1)] + "9" * 5000 + text[match.end(1) :], encoding="utf-8")
    message = _refused(path, "too long")
    assert "set_int_max_str_digits" not in message


def test_a_gzip_of_zeros_says_the_inflation_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "zeros.gz"
    bomb.write_bytes(gzip.compress(bytes(100 << 20)))  # ~1000x: past the ratio cap
    _refused(bomb, f"inflates past {MAX_INFLATE_RATIO}x")
    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(bytes(1 << 20)))  # within the cap: not a report
    _refused(small, "un-gzipped file does not start with NVR")


# --- D10: gaps in the raw CSV's launch IDs --------------------------------------------------------------


def test_a_gap_in_the_raw_launch_ids_is_noted(tmp_path: Path) -> None:
    rows = list(csv.reader((F / "raw.csv").open(newline="", encoding="utf-8")))
    rows[-1][rows[0].index("ID")] = "7"
    path = tmp_path / "raw.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    table = read(path)
    assert table["action"].tolist() == [0, 1, 7]
    assert any("skip 5 number(s) (first missing: 2-6)" in note for note in table.attrs["notes"])
    assert not any("skip" in note for note in read(F / "raw.csv").attrs["notes"])


def test_a_launch_line_without_a_metric_table_is_listed_as_not_profiled(tmp_path: Path) -> None:
    """A launch line followed by another launch line (ncu listed the launch but printed no table, or the
    table was deleted): it was dropped silently; it is a launch not profiled (never clean, exit 1)."""
    from typer.testing import CliRunner


    source = Path(__file__).resolve().parent / "fixtures" / "formats" / "text.txt"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if "Context 1, Stream" in line)
    extra = "  empty_kernel (1, 1, 1)x(32, 1, 1), Context 1, Stream 7, Device 0, CC 9.0\n"
    path = tmp_path / "with-empty-launch.txt"
    path.write_text("".join(lines[:first] + [extra] + lines[first:]), encoding="utf-8")
    result = CliRunner().invoke(app, ["recommend", str(path)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "empty_kernel" in text and "NP001" in text and "no metric table after its launch line" in text
    assert "4 launches" in text
