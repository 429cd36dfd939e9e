"""Public reports from other GPUs and ncu versions (../shared/reports-public; skipped when absent)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from ncu_advisor.metrics import CORE_METRICS, catalogue, column, fallbacks_used
from ncu_advisor.ingest.readers import read_report
from tests.conftest import PUBLIC_REPORTS


def readme_rows() -> dict[str, dict[str, str]]:
    """The README's table: file (without .gz) -> {gpu, cc, launches}."""
    readme = PUBLIC_REPORTS / "README.md"
    if not readme.exists():
        return {}
    rows: dict[str, dict[str, str]] = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`") and cells[0].endswith(".gz`"):
            name = cells[0].strip("`")[: -len(".gz")]
            rows[name] = {"gpu": cells[2], "cc": cells[3], "launches": cells[5]}
    return rows


README = readme_rows()


@pytest.fixture(scope="module")
def tables(public_reports: dict[str, Path]) -> dict[str, object]:
    return {name: read_report(path) for name, path in public_reports.items()}


def test_readme_lists_every_report(public_reports: dict[str, Path]) -> None:
    assert set(public_reports) == set(README)
    assert len(README) >= 16


def test_launch_counts_gpus_and_cc(tables: dict[str, object]) -> None:
    for name, table in tables.items():
        expected = README[name]
        assert len(table) == int(expected["launches"]), name
        assert set(table["gpu"]) == {expected["gpu"]}, name
        assert set(table["cc"]) == {expected["cc"]}, name
        assert table["kernel"].notna().all() and table["demangled"].notna().all(), name


def test_dram_throughput_falls_back_on_section_reports(tables: dict[str, object]) -> None:
    name = "victor-lvsy__seq_align__profile.ncu-rep"
    table = tables[name]
    assert "dram__throughput.avg.pct_of_peak_sustained_elapsed" not in table.columns
    values, used = column(table, "dram__throughput.avg.pct_of_peak_sustained_elapsed")
    assert used == "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"
    assert values.tolist() == table[used].tolist()
    assert fallbacks_used(table)["dram__throughput.avg.pct_of_peak_sustained_elapsed"] == used
    assert table.attrs["fallbacks"] == {"dram__throughput.avg.pct_of_peak_sustained_elapsed": used}


def test_2019_reports_use_their_old_names(tables: dict[str, object]) -> None:
    table = tables["BrennenTaylor__Twisty__profile.nsight-cuprof-report"]
    values, used = column(table, "gpu__time_duration.sum")
    assert used == "gpu__time_duration"
    assert (values > 0).all()
    used_by_name = fallbacks_used(table)
    assert used_by_name["sm__throughput.avg.pct_of_peak_sustained_elapsed"] == "sm__sol_pct"


def test_every_fallback_was_seen_in_a_public_report(tables: dict[str, object]) -> None:
    seen = set().union(*(set(t.columns) for t in tables.values()))
    for info in catalogue().values():
        for fallback in info.fallbacks:
            assert fallback in seen, (info.name, fallback)


def test_h800_kernel_without_launch_metrics(tables: dict[str, object]) -> None:
    table = tables["flyinglandlord__sglang__profile.ncu-rep"]
    flash = table[table["kernel"] == "flash_fwd_kernel"]
    assert len(flash) == 1
    row = flash.iloc[0]
    # Its launch__ metrics are missing or NaN: missing values, never a crash.
    assert math.isnan(row["launch__grid_size"])
    assert math.isnan(row["gpu__time_duration.sum"])
    others = table[table["kernel"] != "flash_fwd_kernel"]
    assert (others["launch__grid_size"] > 0).all()


def test_cutlass_names_keep_the_demangled_name(tables: dict[str, object]) -> None:
    for name, table in tables.items():
        short = table[table["kernel"] == "Kernel"]
        for demangled in short["demangled"]:
            assert demangled != "Kernel" and re.search(r"Kernel|cutlass", demangled), name


def test_core_metrics_are_readable_everywhere(tables: dict[str, object]) -> None:
    """Every public report yields the duration and grid size, directly or through a fallback.

    Except one: the 2019 matrixMul report recorded only gpu__cycles_elapsed.avg (cycles, not time).
    """
    no_duration = "evozone96__matrixMul__profile.nsight-cuprof-report"
    assert column(tables[no_duration], "gpu__time_duration.sum")[1] is None
    assert "gpu__cycles_elapsed.avg" in tables[no_duration].columns
    for name, table in tables.items():
        for metric in ("gpu__time_duration.sum", "launch__grid_size", "launch__registers_per_thread"):
            assert metric in CORE_METRICS
            if name == no_duration and metric == "gpu__time_duration.sum":
                continue
            values, used = column(table, metric)
            assert used is not None, (name, metric)
            assert values.notna().any(), (name, metric)
