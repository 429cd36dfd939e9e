"""A launch ncu failed to profile, recorded for real (tests/fixtures/notprofiled/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.analysis.pipeline import not_profiled_rows
from ncu_advisor.cli import app
from ncu_advisor.ingest import read
from ncu_advisor.metrics import launch_metric_columns

FIXTURES = Path(__file__).parent / "fixtures" / "notprofiled"
FILES = [FIXTURES / "fault.ncu-rep", FIXTURES / "fault-raw.csv"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_failed_launch_is_not_profiled_and_the_others_keep_their_values(path: Path) -> None:
    table = read(path)
    assert list(table["kernel"])[1:] == ["scale_kernel", "stray_store_kernel"]
    # the failed launch still carries device attributes: those do not make it "profiled"
    assert table.iloc[2][[c for c in table.columns if c.startswith("device__")]].notna().any()
    assert not_profiled_rows(table) == {2: not_profiled_rows(table)[2]}
    duration = table["gpu__time_duration.sum"]
    assert duration.dtype == "float64"  # "-nan" in the CSV is NaN, not text that turns the column to str
    assert duration.iloc[1] == 4096.0 and duration.iloc[2] != duration.iloc[2]


def test_static_families_are_not_launch_metrics() -> None:
    columns = [
        "device__attribute_max_registers_per_block",
        "nvlink__count_logical",
        "profiler__replayer_passes",
        "smsp__maximum_warps_avg_per_active_cycle",
        "gpu__time_duration.sum",
        "launch__grid_size",
    ]
    assert launch_metric_columns(columns) == ["gpu__time_duration.sum", "launch__grid_size"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_recommend_says_not_profiled_never_no_findings(path: Path) -> None:
    result = CliRunner().invoke(app, ["recommend", str(path), "--all-kernels"])
    assert result.exit_code in (0, 1), result.output
    block = result.output.split("stray_store_kernel", 1)[1]
    assert "not profiled" in block.split("\n\n", 1)[0]
    assert "no findings" not in block.split("\n\n", 1)[0]
    assert "1 launch(es) not profiled" in result.output


def test_json_report_counts_the_launch_apart() -> None:
    result = CliRunner().invoke(app, ["report", str(FILES[0]), "--format", "json", "--all-kernels"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert "stray_store_kernel" in json.dumps(data.get("not_profiled") or data)


def test_an_input_no_rule_could_check_is_exit_2(tmp_path: Path) -> None:
    """The header of a real text output (../shared/cases) keeps one metric, DRAM frequency: every rule is
    skipped on its one launch (NA309's metrics stand only at their defaults), so "no findings" would claim a
    check that never happened."""
    source = Path(__file__).parents[2] / "shared" / "cases" / "text-output-sm75.txt"
    if not source.exists():
        pytest.skip("../shared/cases absent")
    head = tmp_path / "head.txt"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    # the table closed with its dashed line, as ncu prints it (a table left open is refused as cut)
    head.write_text("".join([*lines[:5], lines[3]]), encoding="utf-8")
    result = CliRunner().invoke(app, ["recommend", str(head)])
    assert result.exit_code == 2, result.output
    assert "no rule could check" in result.output and "head.txt" in result.output
    full = CliRunner().invoke(app, ["recommend", str(source)])
    assert full.exit_code in (0, 1), full.output  # the whole output has metrics: checked
