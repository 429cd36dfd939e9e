"""Every input format behind ingest.read, on real data: the recorded fixtures (tests/fixtures/formats, ncu
2025.3.1 on an H200, one program exported every way), the public cases of ../shared/cases (right values from
their README) and the LLM seeds' metrics blocks (../shared/seeds)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd
import pytest

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import read, registry
from ncu_advisor.ingest.display_names import display_names
from ncu_advisor.table import DISPLAY_PREFIX, ID_COLUMNS
from tests.test_report_csv import PRINTED_UNIT_FACTORS

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ROOT / "tests" / "fixtures" / "formats"
CASES = ROOT.parent / "shared" / "cases"
SEEDS = ROOT.parent / "shared" / "seeds"

needs_formats = pytest.mark.skipif(not FORMATS.is_dir(), reason="tests/fixtures/formats not recorded yet")


def case(name: str) -> Path:
    path = CASES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def binary() -> pd.DataFrame:
    if not (FORMATS / "full.ncu-rep.gz").is_file():
        pytest.skip("the recorded full report is absent")
    return read(FORMATS / "full.ncu-rep.gz")


def details_rows(path: Path) -> list[dict[str, str]]:
    """The details page's metric rows with the printed text (independent of the reader)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    return [row for row in csv.DictReader(lines[start:]) if row["Metric Name"]]


def close_to_printed(got: float, expected: float, printed: str, unit: str = "") -> bool:
    """``got`` and ``expected`` within half a unit of the printed value's last digit, in base units."""
    digits = printed.replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    factor = PRINTED_UNIT_FACTORS.get(unit, 1.0)
    tolerance = 0.5 * 10**-decimals * factor * 1.0001 + 1e-9 * abs(expected)
    return abs(got - expected) <= tolerance


# --------------------------------------------------------------------------------------------------
# The details page against the binary report it was exported from
# --------------------------------------------------------------------------------------------------


@needs_formats
@pytest.mark.parametrize("name", ["details.csv", "details-units-base.csv", "details-de.csv"])
def test_details_page_gives_the_binary_values(name: str, binary: pd.DataFrame) -> None:
    table = read(FORMATS / name)
    assert table.attrs["reader"] == "csv_details"
    assert (
        list(table["kernel"]) == list(binary["kernel"]) == ["softmax_kernel", "matmul_kernel", "add_kernel"]
    )
    assert list(table.columns[: len(ID_COLUMNS)]) == list(ID_COLUMNS)
    compared = 0
    for row in details_rows(FORMATS / name):
        launch = int(row["ID"])
        mapped = [c for c in table.columns if c not in ID_COLUMNS and not c.startswith(DISPLAY_PREFIX)]
        names = display_names().get(row["Section Name"], {}).get(row["Metric Name"], ())
        column = next((n for n in names if n in mapped), None)
        if column is None or column not in binary.columns:
            continue
        expected, got = binary[column].iloc[launch], table[column].iloc[launch]
        if isinstance(expected, str):
            assert got == expected, (column, got, expected)
        elif not math.isnan(expected):
            printed, unit = row["Metric Value"], row["Metric Unit"]
            assert close_to_printed(float(got), float(expected), printed, unit), (column, got, expected)
        compared += 1
    assert compared >= 3 * 80  # about 90 display names per launch are mapped


@needs_formats
def test_details_page_keeps_an_unmapped_name_and_says_so() -> None:
    table = read(FORMATS / "details.csv")
    column = f"{DISPLAY_PREFIX}Memory Workload Analysis/L2 Compression Input Sectors"
    assert column in table.columns
    assert table[column].iloc[0] == 8_389_664  # printed "8,389,664" (sector)
    assert any("L2 Compression Input Sectors" in note for note in table.attrs["notes"])


@needs_formats
def test_details_page_rule_columns_are_guided_findings_not_metrics() -> None:
    table = read(FORMATS / "details.csv")
    guided = table.attrs["guided"]
    rules = {(item["launch"], item["rule"]) for item in guided}
    assert (0, "HighPipeUtilization") in rules and (0, "SOLBottleneck") in rules
    high_pipe = next(i for i in guided if i["launch"] == 0 and i["rule"] == "HighPipeUtilization")
    assert high_pipe["severity"] == "optimization" and high_pipe["speedup"] == pytest.approx(84.98)
    assert high_pipe["speedup_type"] == "local"
    assert not any("SOLBottleneck" in str(c) for c in table.columns)


@needs_formats
@pytest.mark.parametrize("name", ["direct-metrics.csv", "direct-metrics-details.csv"])
def test_metrics_details_page_with_program_output(name: str) -> None:
    table = read(FORMATS / name)
    assert table.attrs["reader"] == "csv_details"
    assert any("skipped 7 line(s)" in note for note in table.attrs["notes"])
    assert list(table["launch__grid_size"]) == [16384.0, 1024.0, 64.0]
    assert list(table["launch__registers_per_thread"]) == [38.0, 168.0, 26.0]
    assert table["gpu__time_duration.sum"].iloc[1] == 235_168 if name == "direct-metrics.csv" else True


def test_details_case_sm100_with_preamble() -> None:
    table = read(case("details-page-sm100-with-preamble.csv"))
    assert len(table) == 1 and table["action"].iloc[0] == 0
    row = table.iloc[0]
    assert row["gpu__time_duration.sum"] == 406_240
    assert row["launch__registers_per_thread"] == 168
    assert row["launch__grid_size"] == 288 and row["launch__block_size"] == 384
    assert row["sm__throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(23.59)
    assert row["gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(0.74)
    assert row["gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(21.68)
    assert row["sm__maximum_warps_per_active_cycle_pct"] == pytest.approx(18.75)
    assert row["sm__warps_active.avg.pct_of_peak_sustained_active"] == pytest.approx(15.53)
    assert row["launch__waves_per_multiprocessor"] == pytest.approx(1.89)
    assert any("skipped 3 line(s)" in note for note in table.attrs["notes"])


# --------------------------------------------------------------------------------------------------
# Plain text
# --------------------------------------------------------------------------------------------------


@needs_formats
@pytest.mark.parametrize("name", ["text.txt", "text-de.txt", "text-rule-details.txt"])
def test_text_gives_the_details_page_values(name: str) -> None:
    """The plain text of the same report reads to the same table as its details page."""
    text = read(FORMATS / name)
    details = read(FORMATS / "details.csv")
    assert text.attrs["reader"] == "text"
    assert list(text["kernel"]) == list(details["kernel"])
    assert list(text["cc"]) == ["9.0"] * 3
    shared = [c for c in details.columns if c not in ID_COLUMNS and c in text.columns]
    assert len(shared) >= 85
    for column in shared:
        for launch in range(3):
            want, got = details[column].iloc[launch], text[column].iloc[launch]
            if isinstance(want, str) or isinstance(got, str):
                assert got == want, column
            else:
                assert got == pytest.approx(want, rel=2e-3, abs=0.011), (column, launch)


@needs_formats
def test_text_rule_paragraphs_are_guided_findings() -> None:
    table = read(FORMATS / "text.txt")
    guided = table.attrs["guided"]
    first = [item for item in guided if item["launch"] == 0]
    assert any(i["severity"] == "optimization" and i["speedup"] == pytest.approx(84.98) for i in first)
    assert all(i["message"] and "Est." not in i["message"][:4] for i in guided)
    assert not any(str(c).startswith(DISPLAY_PREFIX + "Compute Workload Analysis/OPT") for c in table.columns)


@needs_formats
def test_direct_run_text_with_program_output() -> None:
    table = read(FORMATS / "direct-text.txt")
    assert list(table["kernel"]) == ["softmax_kernel", "matmul_kernel", "add_kernel"]
    assert list(table["launch__grid_size"]) == [16384.0, 1024.0, 64.0]
    assert any("skipped" in note for note in table.attrs["notes"])


def test_text_case_sm75_without_launch_header() -> None:
    table = read(case("text-output-sm75.txt"))
    assert len(table) == 1
    row = table.iloc[0]
    assert row["gpu__time_duration.sum"] == pytest.approx(20.85e6)  # "20.85 ms"
    assert row["gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(61.71)
    assert row["sm__throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(1.31)
    assert row["launch__grid_size"] == 1024  # "1,024"
    assert row["launch__block_size"] == 256
    assert row["launch__registers_per_thread"] == 32
    assert row["gpc__cycles_elapsed.max"] == 12_196_559  # thousands separators
    assert row["gpc__cycles_elapsed.avg.per_second"] == pytest.approx(585e6)  # "585.00 Mhz"
    assert any("no launch header" in note for note in table.attrs["notes"])


# --------------------------------------------------------------------------------------------------
# Raw page: preambles, units row, both CSV engines
# --------------------------------------------------------------------------------------------------


def test_raw_case_b200_with_warning_preamble() -> None:
    table = read(case("raw-page-b200-warning-preamble.csv"))
    assert len(table) == 1
    row = table.iloc[0]
    assert (
        row["kernel"] == "pseudo_quantization_kernel" and row["gpu"] == "NVIDIA B200" and row["cc"] == "10.0"
    )
    assert row["launch__registers_per_thread"] == 40
    assert row["launch__grid_size"] == 128 and row["launch__block_size"] == 128
    assert row["gpu__time_duration.sum"] == pytest.approx(31_296)  # printed in us
    assert row["sm__throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(11.18, abs=0.005)
    assert row["gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(0.88, abs=0.005)
    assert any("skipped 4 line(s)" in note for note in table.attrs["notes"])


@needs_formats
@pytest.mark.parametrize("engine", ["pyarrow", "c"])
@pytest.mark.parametrize("name", ["raw.csv", "raw-units-base.csv", "direct-raw.csv"])
def test_raw_engines_agree(name: str, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setenv("NCU_ADVISOR_CSV_ENGINE", "c")
    reference = read(FORMATS / name)
    monkeypatch.setenv("NCU_ADVISOR_CSV_ENGINE", engine)
    table = read(FORMATS / name)
    table.attrs = reference.attrs = {}  # pandas deep-copies attrs on every column access (slow)
    assert list(table.columns) == list(reference.columns)
    for column in table.columns:
        left, right = table[column].astype(object), reference[column].astype(object)
        for a, b in zip(left, right, strict=True):
            if isinstance(a, float) and isinstance(b, float) and not (pd.isna(a) or pd.isna(b)):
                assert a == pytest.approx(b, rel=1e-14), column  # the parsers round the last bit apart
            else:
                assert (pd.isna(a) and pd.isna(b)) or a == b, (column, a, b)


@needs_formats
def test_raw_export_gives_the_binary_values(binary: pd.DataFrame) -> None:
    table = read(FORMATS / "raw-units-base.csv")
    binary = binary.copy(deep=False)
    table.attrs = binary.attrs = {}  # pandas deep-copies attrs on every column access (slow)
    rows = list(csv.reader((FORMATS / "raw-units-base.csv").open(newline="", encoding="utf-8")))
    header, cells = rows[0], [row for row in rows[1:] if row[0]]  # without the units row
    shared = [c for c in binary.columns if c not in ID_COLUMNS and c in table.columns]
    assert len(shared) > 1000
    for column in shared:
        for launch in range(3):
            want, got = binary[column].iloc[launch], table[column].iloc[launch]
            printed = cells[launch][header.index(column)]
            if isinstance(want, str) or isinstance(got, str):
                assert str(got) == str(want), column
            elif not (pd.isna(want) and pd.isna(got)):
                assert close_to_printed(float(got), float(want), printed), (column, got, want)


def test_raw_column_with_text_further_down(tmp_path: Path) -> None:
    """A column numeric in the typing sample but holding text later is read per value, not refused."""
    source = ROOT / "tests" / "fixtures" / "csv" / "seed000_small_raw.csv"
    rows = list(csv.reader(source.open(newline="", encoding="utf-8")))
    header, units, launches = rows[0], rows[1], rows[2:]
    column = header.index("launch__grid_size")
    body = []
    for number in range(400):
        row = list(launches[number % len(launches)])
        row[header.index("ID")] = str(number)
        if number == 350:
            row[column] = "n/a-text"
        body.append(row)
    path = tmp_path / "late_text.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([header, units, *body])
    table = read(path)
    assert len(table) == 400
    assert table["launch__grid_size"].iloc[350] == "n/a-text"
    assert float(table["launch__grid_size"].iloc[0]) == float(launches[0][column].replace(",", ""))


# --------------------------------------------------------------------------------------------------
# The seeds' metrics block
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kernel", "values"),
    [
        (
            "000_edf35d9da7fdb540.txt",
            "scale_channel_min_kernel",
            {"dram__throughput.avg.pct_of_peak_sustained_elapsed": 87.96, "launch__grid_size": 32258},
        ),
        ("001_a6c4c945f59aed83.txt", "conv2d_scale_min_kernel", {"lts__t_sector_hit_rate.pct": 95.37}),
    ],
)
def test_seed_metrics_block_in_a_prompt(name: str, kernel: str, values: dict[str, float]) -> None:
    path = SEEDS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    table = read(path)
    assert table.attrs["reader"] == "seed_json"
    assert list(table["kernel"]) == [kernel]
    for metric, value in values.items():
        assert table[metric].iloc[0] == pytest.approx(value)


def test_seed_json_file_and_refusals(tmp_path: Path) -> None:
    good = tmp_path / "m.json"
    good.write_text(
        '{"k1": {"launch__grid_size": 64, "sm__throughput.avg.pct_of_peak_sustained_elapsed": 3.5},'
        ' "k2": {"launch__grid_size": 128}}'
    )
    table = read(good)
    assert list(table["kernel"]) == ["k1", "k2"] and list(table["launch__grid_size"]) == [64.0, 128.0]
    bad = tmp_path / "bad.json"
    bad.write_text('{"k1": {"launch__grid_size": [1, 2]}}')
    with pytest.raises(ReportError, match="not a number"):
        read(bad)


# --------------------------------------------------------------------------------------------------
# The registry: by content, not by name
# --------------------------------------------------------------------------------------------------


@needs_formats
@pytest.mark.parametrize(
    ("name", "reader"),
    [("details.csv", "csv_details"), ("raw.csv", "csv_raw"), ("text.txt", "text"), ("full.ncu-rep.gz", None)],
)
def test_format_sniffed_from_content_not_name(name: str, reader: str | None, tmp_path: Path) -> None:
    renamed = tmp_path / "input.dat"
    renamed.write_bytes((FORMATS / name).read_bytes())
    table = read(renamed)
    assert table.attrs["reader"] == (reader or table.attrs["reader"])
    assert len(table) == 3


def test_unknown_input_is_refused_with_the_formats(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n")
    with pytest.raises(ReportError) as info:
        read(other)
    assert info.value.exit_code == 2
    text = info.value.render()
    assert str(other) in text and "accepted:" in text
    for reader in registry.READERS:
        assert reader.description in text


def test_fifo_is_refused_before_reading(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(ReportError, match="not a regular file"):
        read(fifo)


@needs_formats
def test_gzipd_text_input_is_refused_with_the_fix(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "details.csv.gz"
    packed.write_bytes(gzip.compress((FORMATS / "details.csv").read_bytes()))
    with pytest.raises(ReportError, match="gunzip it first"):
        read(packed)
