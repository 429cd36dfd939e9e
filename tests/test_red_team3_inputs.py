"""Damaged or re-encoded copies of the recorded ncu 2025.3 exports (tests/fixtures/formats, H200): each is
read right (with a note) or refused with exit 2 naming the file, the problem and the fix (issue 11, third
red team of a clean clone at e102b8b). Every input is derived here from a recorded fixture.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest import read
from tests.input_helpers import _lines, _refused, _replaced, _write

ROOT = Path(__file__).resolve().parent.parent
F = ROOT / "tests" / "fixtures" / "formats"
DURATION = "gpu__time_duration.sum"
runner = CliRunner()








@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return read(F / "raw.csv")


def test_raw_csv_without_units_row_is_refused(tmp_path: Path) -> None:
    lines = _lines("raw.csv")
    assert lines[1].startswith('"",')  # the recorded units row, also written with --print-units base
    assert _lines("raw-units-base.csv")[1].startswith('"",')
    _refused(_write(tmp_path / "nu.csv", [lines[0], *lines[2:]]), "line 2", "units row", "--page raw")


def test_two_appended_raw_exports_are_refused(tmp_path: Path) -> None:
    lines = _lines("raw.csv")
    _refused(
        _write(tmp_path / "twice.csv", lines + lines), f"line {len(lines) + 1}", "repeats the CSV header"
    )


def test_duplicated_launch_row_is_refused(tmp_path: Path) -> None:
    lines = _lines("raw.csv")
    _refused(_write(tmp_path / "dup.csv", [*lines, lines[2]]), "launch ID 0 appears twice", "lines 3 and 6")


def test_trailing_prof_lines_after_a_raw_csv_are_skipped_with_a_note(
    tmp_path: Path, raw: pd.DataFrame
) -> None:
    lines = _lines("raw.csv")
    path = _write(tmp_path / "t.csv", [*lines, "==PROF== Disconnected from process 533\n"])
    table = read(path)
    assert table[DURATION].tolist() == raw[DURATION].tolist()
    assert any("1 line(s) of ncu's own output after the table" in note for note in table.attrs["notes"])


def test_long_program_output_before_the_header(tmp_path: Path, raw: pd.DataFrame) -> None:
    lines = _lines("raw.csv")
    preamble = [f"training step {i}: loss 0.{i:06d}\n" for i in range(60_000)]  # ~2 MB, past the window
    path = _write(tmp_path / "long.csv", [*preamble, *lines])
    assert path.stat().st_size > 1 << 20
    table = read(path)
    assert table[DURATION].tolist() == raw[DURATION].tolist()
    assert any("skipped 60000 line(s) before the CSV header" in note for note in table.attrs["notes"])


@pytest.mark.parametrize("name", ["raw.csv", "details.csv", "text.txt"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le"])
def test_bom_and_utf16_inputs_are_read(name: str, encoding: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text((F / name).read_text(encoding="utf-8"), encoding=encoding)
    table, plain = read(path), read(F / name)
    assert table[DURATION].tolist() == plain[DURATION].tolist()
    assert table["source"].eq(str(path)).all()
    assert any(f"read as {encoding}" in note for note in table.attrs["notes"])


def test_own_outputs_are_refused_with_what_they_are(tmp_path: Path) -> None:
    report = str(F / "full.ncu-rep.gz")
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"own.{fmt}"
        assert runner.invoke(app, ["metrics", report, "-f", fmt, "-o", str(out)]).exit_code == 0
        _refused(out, "ncu-advisor", "not read back", "run directory")
    run_table = ROOT / "examples" / "runs" / "elementwise" / "metrics.csv"
    _refused(run_table, "a run's metrics.csv")


def _raw_with(tmp_path: Path, name: str, cell: str, *, row: int = 2, source: str = "raw.csv") -> Path:
    """The recorded raw export with one cell changed (row 1 is the units row, 2 the first launch)."""
    rows = list(csv.reader((F / source).open(newline="", encoding="utf-8")))
    rows[row][rows[0].index(name)] = cell
    path = tmp_path / f"changed-{source}"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return path




def test_cut_details_csv_is_refused(tmp_path: Path) -> None:
    data = (F / "details.csv").read_bytes()
    for fraction in (0.8, 0.5):
        cut = tmp_path / "cut.csv"
        cut.write_bytes(data[: int(len(data) * fraction)])
        _refused(cut, "the last line is cut", "truncated")


def test_trailing_prof_lines_after_a_details_csv_are_noted_as_after(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        (F / "details.csv").read_text(encoding="utf-8") + "==PROF== Disconnected from process 533\n"
    )
    notes = read(path).attrs["notes"]
    assert any("1 line(s) of ncu's own output after the table" in note for note in notes)
    assert not any("before the CSV header" in note for note in notes)


@pytest.mark.parametrize("unit", ["fortnight", ""])
def test_unknown_or_missing_duration_unit_is_refused(unit: str, tmp_path: Path) -> None:
    _refused(_raw_with(tmp_path, DURATION, unit, row=1), "units row", DURATION)
    details = _replaced(tmp_path, "details.csv", '"Duration","us","128.22"', f'"Duration","{unit}","128.22"')
    _refused(details, "line 7", DURATION)


def test_text_without_the_duration_unit_is_refused(tmp_path: Path) -> None:
    lines = _lines("text.txt")
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("Duration"))
    assert " us " in lines[index]
    lines[index] = lines[index].replace(" us ", "    ", 1)
    _refused(_write(tmp_path / "t.txt", lines), f"line {index + 1}", "no unit", "(ns)")


def test_decimal_comma_cells_are_refused(tmp_path: Path) -> None:
    _refused(_raw_with(tmp_path, DURATION, "128,22"), "line 3", "decimal comma")
    details = _replaced(tmp_path, "details.csv", '"Duration","us","128.22"', '"Duration","us","128,22"')
    _refused(details, "line 7", "decimal comma")
    # what ncu writes under a German locale: decimal points, no thousands separators (read as is)
    assert read(F / "details-de.csv")[DURATION].tolist() == read(F / "details.csv")[DURATION].tolist()


SM = "sm__throughput.avg.pct_of_peak_sustained_elapsed"


@pytest.mark.parametrize("value", ["476", "-4.76"])
def test_impossible_sm_throughput_in_every_text_reader(value: str, tmp_path: Path) -> None:
    _refused(_raw_with(tmp_path, SM, value), "percentage outside", SM)
    row = '"GPU Speed Of Light Throughput","Compute (SM) Throughput","%","28.54"'
    _refused(_replaced(tmp_path, "details.csv", row, row.replace("28.54", value)), "percentage outside", SM)
    old = "Compute (SM) Throughput           %        28.54"
    text = _replaced(tmp_path, "text.txt", old, old.replace("   28.54", f"{value:>8}"))
    _refused(text, "percentage outside", SM)
    seed = _seed_with(
        tmp_path,
        '"sm__throughput.avg.pct_of_peak_sustained_elapsed": 4.76',
        f'"sm__throughput.avg.pct_of_peak_sustained_elapsed": {value}',
    )
    _refused(seed, "percentage outside", SM)


def test_fractional_register_count_is_refused_in_text_inputs(tmp_path: Path) -> None:
    name = "launch__registers_per_thread"
    _refused(_raw_with(tmp_path, name, "38.5"), "not a whole number", name)
    row = '"Launch Statistics","Registers Per Thread","register/thread","38"'
    _refused(
        _replaced(tmp_path, "details.csv", row, row.replace('"38"', '"38.5"')), "not a whole number", name
    )
    # a display-rounded byte count stays accepted: 16 Kbyte of shared memory read back as 16379.99 bytes
    assert read(F / "details.csv")["launch__shared_mem_config_size"].iloc[0] != 16384


SEED = ROOT.parent / "shared" / "seeds" / "000_edf35d9da7fdb540.txt"


def _seed_with(tmp_path: Path, old: str, new: str) -> Path:
    if not SEED.is_file():
        pytest.skip(f"{SEED} is absent")
    text = SEED.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "seed.txt"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_seed_json_duplicate_key_is_refused(tmp_path: Path) -> None:
    seed = _seed_with(
        tmp_path, '"launch__grid_size": 32258,', '"launch__grid_size": 32258, "launch__grid_size": 1,'
    )
    _refused(seed, "'launch__grid_size' twice")


@pytest.mark.parametrize("token", ["null", "NaN"])
def test_seed_json_null_and_nan_are_not_measured_with_a_note(token: str, tmp_path: Path) -> None:
    seed = _seed_with(
        tmp_path, '"lts__t_sector_hit_rate.pct": 6.39', f'"lts__t_sector_hit_rate.pct": {token}'
    )
    table = read(seed)
    assert pd.isna(table["lts__t_sector_hit_rate.pct"].iloc[0])
    assert any(
        "1 value(s) are null or NaN" in note and "lts__t_sector_hit_rate.pct" in note
        for note in table.attrs["notes"]
    )


def test_seed_json_fractional_grid_size_is_refused(tmp_path: Path) -> None:
    seed = _seed_with(tmp_path, '"launch__grid_size": 32258', '"launch__grid_size": 32258.5')
    _refused(seed, "not a whole number", "launch__grid_size")


@pytest.mark.parametrize("prefix", ["> ", ">"])
def test_markdown_quoted_text_is_read(prefix: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "quoted.txt", [prefix + line for line in _lines("text.txt")])
    table = read(path)
    assert table[DURATION].tolist() == read(F / "text.txt")[DURATION].tolist()
    assert any("quote prefix" in note for note in table.attrs["notes"])


def test_text_with_non_breaking_spaces_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "nbsp.txt", [line.replace(" ", "\u00a0") for line in _lines("text.txt")])
    assert read(path)[DURATION].tolist() == read(F / "text.txt")[DURATION].tolist()


def test_whitespace_collapsed_text_says_the_columns_were_lost(tmp_path: Path) -> None:
    path = _write(tmp_path / "collapsed.txt", [" ".join(line.split()) + "\n" for line in _lines("text.txt")])
    _refused(path, "columns were lost", "code block")


def test_derived_value_from_stand_ins_only_is_not_measured(tmp_path: Path) -> None:
    # NA101's local_bytes is -1 when the report has no local-memory metric (a details page without its
    # "Local Memory Spilling Requests" row, which otherwise measures 0): a value derived only from `default`
    # stand-ins prints "not measured" (docs/rules.md), never "-1 B".
    cases = [F / "details.csv", ROOT.parent / "shared" / "cases" / "details-page-sm100-with-preamble.csv"]
    for source in (p for p in cases if p.is_file()):
        path = tmp_path / source.name
        lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(ln for ln in lines if "Local Memory Spilling" not in ln), encoding="utf-8")
        result = runner.invoke(app, ["recommend", str(path), "--fail-on", "never"])
        assert result.exit_code == 0, result.output
        assert "NA101" in result.output and "local_bytes = not measured" in result.output
        assert "local_bytes = -1" not in result.output


@pytest.mark.parametrize("name", ["raw.csv", "details.csv"])
def test_last_line_cut_inside_a_cell_is_refused(name: str, tmp_path: Path) -> None:
    data = (F / name).read_bytes()
    assert data.endswith(b"\n")
    for drop in (3, 2, 40):  # '"32768' of '"327680"\n': a wrong value; an open quote; mid-row
        cut = tmp_path / f"cut{drop}-{name}"
        cut.write_bytes(data[:-drop])
        _refused(cut, "cut", "truncated")
    whole = tmp_path / f"no-newline-{name}"
    whole.write_bytes(data[:-1])  # only the final newline lost: every cell is complete
    assert read(whole)[DURATION].tolist() == read(F / name)[DURATION].tolist()


def test_preamble_longer_than_the_search_limit_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ncu_advisor.ingest import cells, csv_raw, registry  # noqa: PLC0415

    for module in (cells, csv_raw, registry):  # 2 MiB instead of 256 MiB, so that the test stays small
        monkeypatch.setattr(module, "PREAMBLE_LIMIT", 2 << 20)
    preamble = [f"training step {i}: loss 0.{i:06d}\n" for i in range(100_000)]  # ~3.3 MB
    path = _write(tmp_path / "longer.csv", [*preamble, *_lines("raw.csv")])
    _refused(path, "in its first 2 MiB", "sed -n")


def test_details_metric_repeated_with_another_value_is_refused(tmp_path: Path) -> None:
    # Re-check of red team 3: the Duration row repeated as 999.99 kept the first value silently (exit 0).
    lines = _lines("details.csv")
    row = next(i for i, line in enumerate(lines) if '"Duration","us","128.22"' in line)
    edited = lines[: row + 1] + [lines[row].replace('"128.22"', '"999.99"')] + lines[row + 1 :]
    _refused(_write(tmp_path / "dup.csv", edited), "appears twice", DURATION)
    # the same row repeated with the same value (one metric printed in two places) is read
    same = lines[: row + 1] + [lines[row]] + lines[row + 1 :]
    assert read(_write(tmp_path / "same.csv", same))[DURATION].iloc[0] == pytest.approx(128220.0)


def test_a_measured_zero_spilling_request_count_refutes_likely_spilling() -> None:
    # ncu's details page and text output have no l1tex local counters, but "Local Memory Spilling
    # Requests" = 0 for matmul_kernel (168 registers): NA101 ("likely spilling") fired there while the raw
    # CSV of the same launches, with local bytes 0, stayed quiet (new-user trial, 2026-12-01)
    for name in ("details.csv", "text.txt", "raw.csv"):
        result = runner.invoke(app, ["recommend", str(F / name), "--fail-on", "never"])
        assert result.exit_code == 0, result.output
        assert "NA101" not in result.output, name
