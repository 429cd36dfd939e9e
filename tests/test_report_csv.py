"""The CSV reader: ncu's `--csv --page raw` exports of the seed reports give the binary reader's numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.cells import kernel_function_name as _csv_kernel_function_name
from ncu_advisor.ingest.cells import unit_scale as _unit_scale
from ncu_advisor.ingest.readers import read_report

ROOT = Path(__file__).resolve().parent.parent
CSV_DIR = ROOT / "tests" / "fixtures" / "csv"
SEEDS = ROOT / "examples" / "reports" / "h200-seed"

# The scaled units ncu prints by default and their factor to the base unit, written out by hand from
# ncu's unit names (independent of the reader's own parser).
PRINTED_UNIT_FACTORS = {
    "ms": 1e6,
    "us": 1e3,
    "Ghz": 1e9,
    "Mhz": 1e6,
    "Gbyte": 1e9,
    "Mbyte": 1e6,
    "Kbyte": 1e3,
    "Kbyte/block": 1e3,
    "Tbyte/s": 1e12,
    "Gbyte/s": 1e9,
    "Mbyte/s": 1e6,
    "sector/ns": 1e9,
    "sector/us": 1e6,
    "sector/ms": 1e3,
    "%/Kbyte": 1e3,
}

PAIRS = [
    ("seed000_small_raw.csv", "ModelNew_seed000_small.ncu-rep.gz"),
    ("seed000_small_raw_base.csv", "ModelNew_seed000_small.ncu-rep.gz"),
    ("seed001_full_raw.csv", "ModelNew_seed001_full.ncu-rep.gz"),
]


def raw_cells(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    rows = list(csv.reader(path.open(newline="")))
    return rows[0], rows[1], rows[2:]


@pytest.mark.parametrize(("csv_name", "report_name"), PAIRS)
def test_csv_gives_the_binary_numbers(csv_name: str, report_name: str) -> None:
    """Every metric within the CSV's printed precision of the .ncu-rep value (ncu_report base units)."""
    from_csv = read_report(CSV_DIR / csv_name)
    from_rep = read_report(SEEDS / report_name)
    header, units, body = raw_cells(CSV_DIR / csv_name)
    assert len(from_csv) == len(from_rep) == len(body)
    shared = [c for c in from_rep.columns[9:] if c in from_csv.columns]
    # Every CSV column is in the binary table; the CSV lacks only ncu_report's helper columns
    # (breakdown:..., derived_tempMetric...).
    assert set(from_csv.columns) <= set(from_rep.columns)
    compared = 0
    for row_index in range(len(body)):
        for name in shared:
            expected = from_rep[name].iloc[row_index]
            got = from_csv[name].iloc[row_index]
            if isinstance(expected, str) or isinstance(got, str):
                assert got == expected, name
                continue
            if math.isnan(expected):
                assert math.isnan(got), name
                continue
            text = body[row_index][header.index(name)].replace(",", "")
            decimals = len(text.split(".")[1]) if "." in text else 0
            factor = PRINTED_UNIT_FACTORS.get(units[header.index(name)], 1.0)
            tolerance = 0.5 * 10**-decimals * factor * 1.000001
            assert abs(got - expected) <= tolerance + 1e-9 * abs(expected), (name, got, expected, text)
            compared += 1
    assert compared > 100


def test_scaled_and_base_exports_have_the_same_units() -> None:
    scaled = read_report(CSV_DIR / "seed000_small_raw.csv")
    base = read_report(CSV_DIR / "seed000_small_raw_base.csv")
    binary = read_report(SEEDS / "ModelNew_seed000_small.ncu-rep.gz")
    for name in ("gpu__time_duration.sum", "dram__bytes_read.sum", "sm__cycles_elapsed.avg.per_second"):
        assert scaled.attrs["units"][name] == base.attrs["units"][name] == binary.attrs["units"][name]
    # The default export prints durations in ms/us; the reader turns them into ns like ncu_report.
    _, units, _ = raw_cells(CSV_DIR / "seed000_small_raw.csv")
    assert "ms" in units or "us" in units


def test_thousands_separators() -> None:
    header, _, body = raw_cells(CSV_DIR / "seed000_small_raw_base.csv")
    cell = body[0][header.index("device__attribute_clock_rate")]
    assert "," in cell  # "1,980,000"
    table = read_report(CSV_DIR / "seed000_small_raw_base.csv")
    assert table["device__attribute_clock_rate"].iloc[0] == float(cell.replace(",", ""))


def test_id_columns_from_csv() -> None:
    from_csv = read_report(CSV_DIR / "seed000_small_raw.csv", variant="ModelNew_seed000")
    from_rep = read_report(SEEDS / "ModelNew_seed000_small.ncu-rep.gz")
    assert from_csv["kernel"].tolist() == from_rep["kernel"].tolist()
    assert from_csv["action"].tolist() == [0, 1, 2, 3, 4]
    assert from_csv["gpu"].tolist() == from_rep["gpu"].tolist()
    assert from_csv["cc"].tolist() == from_rep["cc"].tolist()
    assert from_csv["nvtx"].tolist() == from_rep["nvtx"].tolist()
    assert set(from_csv["variant"]) == {"ModelNew_seed000"}


@pytest.mark.parametrize(
    ("demangled", "function"),
    [
        (
            "void cudnn::nchwToNhwcKernel<float, float, float, 0, 1, 2>(cudnn::nchw2nhwc_params_t<T3>, const T1 *, T2 *)",
            "nchwToNhwcKernel",
        ),
        ("scale_channel_min_kernel", "scale_channel_min_kernel"),
        (
            "void at::elementwise_kernel<128, 2, void at::f<at::A<float>>(at::B &, const T1 &)::[lambda(int) (instance 1)]>(int, T3)",
            "elementwise_kernel",
        ),
        ("void ns::k(int)", "k"),
    ],
)
def test_kernel_function_name(demangled: str, function: str) -> None:
    assert _csv_kernel_function_name(demangled) == function


@pytest.mark.parametrize(
    ("unit", "factor", "base"),
    [
        ("ms", 1e6, "ns"),
        ("usecond", 1e3, "ns"),
        ("nsecond", 1.0, "ns"),
        ("msecond", 1e6, "ns"),
        ("Gbyte", 1e9, "byte"),
        ("Kbyte/block", 1e3, "byte/block"),
        ("Ghz", 1e9, "hz"),
        ("Tbyte/s", 1e12, "byte/s"),
        ("Gbyte/second", 1e9, "byte/s"),
        ("sector/us", 1e6, "sector/s"),
        ("%", 1.0, "%"),
        ("", 1.0, ""),
        ("register/thread", 1.0, "register/thread"),
    ],
)
def test_unit_scale(unit: str, factor: float, base: str) -> None:
    got_factor, got_base = _unit_scale(unit)
    assert got_factor == pytest.approx(factor)
    assert got_base == base


def test_prof_lines_before_the_table_are_skipped(tmp_path: Path) -> None:
    source = (CSV_DIR / "seed000_small_raw_base.csv").read_text()
    noisy = tmp_path / "captured.csv"
    noisy.write_text("==PROF== Connected to process 473\n==WARNING== something\n" + source)
    assert (
        read_report(noisy)["gpu__time_duration.sum"].tolist()
        == read_report(CSV_DIR / "seed000_small_raw_base.csv")["gpu__time_duration.sum"].tolist()
    )


def test_csv_without_ncu_columns(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("name,value\nfoo,1\n")
    with pytest.raises(ReportError) as info:
        read_report(other)
    text = info.value.render()
    assert str(other) in text and "Kernel Name" in text and "--csv --page raw" in text


def test_csv_without_kernels(tmp_path: Path) -> None:
    lines = (CSV_DIR / "seed000_small_raw.csv").read_text().splitlines(keepends=True)
    header_only = tmp_path / "no_kernels.csv"
    header_only.write_text("".join(lines[:2]))  # header and units rows of a real export
    with pytest.raises(ReportError) as info:
        read_report(header_only)
    assert str(header_only) in info.value.render() and "no kernel launches" in info.value.render()


def test_empty_csv(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ReportError, match="not an ncu CSV export"):
        read_report(empty)
