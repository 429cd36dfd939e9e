"""The core install: parquet is an extra (pyarrow ~170 MB); without it runs read and write metrics.csv.

pyarrow is installed here (the dev extra), so its absence is simulated where ncu-advisor asks for it
(``rundir.has_pyarrow``); ``bench/bench_install.py`` checks the same on a real core install.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor import rundir
from ncu_advisor.cli import app
from ncu_advisor.errors import RunError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
IMPROVED = ROOT / "examples" / "runs" / "improved"
REPORT = IMPROVED / "variants" / "ModelNew" / "profile.ncu-rep.gz"
runner = CliRunner()


@pytest.fixture
def no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rundir, "has_pyarrow", lambda: False)
    monkeypatch.setattr("ncu_advisor.render.table.has_pyarrow", lambda: False)


def test_core_dependencies_leave_out_pyarrow_and_declare_numpy() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = [dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]]
    assert "pyarrow" not in core and "numpy" in core
    assert any(dep.startswith("pyarrow") for dep in project["optional-dependencies"]["parquet"])
    license_text = (ROOT / "LICENSE").read_text()
    assert project["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


def test_run_reads_the_csv_table_without_pyarrow(no_pyarrow: None) -> None:
    with_csv = rundir.load_run(IMPROVED).table
    assert len(with_csv) and set(with_csv["variant"]) >= {"ModelNew", "ModelNew_seed001"}
    reference = pd.read_parquet(IMPROVED / rundir.METRICS_PARQUET)
    assert len(with_csv) == len(reference)
    # load_run adds the autotune choice of tables written before the column existed (from result.json)
    assert sorted(set(with_csv.columns) - {rundir.AUTOTUNE_CHOICE}) == sorted(reference.columns)


def test_run_with_only_parquet_asks_for_the_extra(tmp_path: Path, no_pyarrow: None) -> None:
    run = tmp_path / "run"
    shutil.copytree(IMPROVED, run)
    (run / rundir.METRICS_CSV).unlink()
    with pytest.raises(RunError) as info:
        rundir.load_run(run)
    assert "ncu-advisor[parquet]" in info.value.render() and "metrics.parquet" in info.value.render()


def test_build_tables_skips_parquet_with_a_note(tmp_path: Path, no_pyarrow: None) -> None:
    run = tmp_path / "run"
    shutil.copytree(IMPROVED, run)
    for name in (rundir.METRICS_CSV, rundir.METRICS_PARQUET):
        (run / name).unlink()
    note = rundir.build_tables(run)
    assert "metrics.parquet not written" in note and "ncu-advisor[parquet]" in note
    assert not (run / rundir.METRICS_PARQUET).exists()
    written = pd.read_csv(run / rundir.METRICS_CSV)
    assert len(written) == len(pd.read_csv(IMPROVED / rundir.METRICS_CSV))


def test_metrics_parquet_without_pyarrow_exits_2_with_the_hint(tmp_path: Path, no_pyarrow: None) -> None:
    out = tmp_path / "t.parquet"
    result = runner.invoke(app, ["metrics", str(REPORT), "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert "pip install 'ncu-advisor[parquet]'" in result.output  # rich must not eat "[parquet]"
    csv = runner.invoke(app, ["metrics", str(REPORT), "--format", "csv"])
    assert csv.exit_code == 0 and csv.stdout.split(",")[:2] == ["source", "variant"]
