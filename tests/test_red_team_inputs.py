"""Inputs the red team found accepted silently (2026-11-30): each must be refused (exit 2) or noted.

Real recorded data only: copies of the example runs in examples/runs, the seed reports in examples/, and
../shared/cases (skipped when absent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parent.parent
ELEMENTWISE = ROOT / "examples" / "runs" / "elementwise"

runner = CliRunner()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("folder", ["20261130T170000Z-fused", "junk"])
def test_default_input_refuses_a_runs_folder_without_manifest(
    folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = tmp_path / "runs" / folder
    shutil.copytree(ELEMENTWISE, crashed)
    (crashed / "manifest.json").unlink()  # a profile that crashed before writing its manifest
    monkeypatch.chdir(tmp_path)
    for args in (["report", "-f", "junit", "-o", "r.xml"], ["recommend"]):
        result = _invoke(*args)
        assert result.exit_code == 2, result.output
        assert f"runs/{folder}" in result.output and "no manifest.json" in result.output
        assert "ncu-advisor profile" in result.output
    assert not (tmp_path / "r.xml").exists()


def test_default_input_says_when_it_is_the_shipped_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./runs: the shipped example, said on stderr
    result = _invoke("report", "-f", "md", "-o", "r.md", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert "shipped example examples/runs/improved" in result.stderr


def _copy_without(tmp_path: Path, relative: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(ELEMENTWISE, run)
    target = run / relative
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return run


@pytest.mark.parametrize(
    "missing",
    [
        "variants/ModelNew",
        "variants/ModelNew/result.json",
        "variants/ModelNew/profile.ncu-rep.gz",
        "variants/Model/result.json",
    ],
)
def test_run_missing_an_ok_variants_files_exits_2(missing: str, tmp_path: Path) -> None:
    run = _copy_without(tmp_path, missing)
    for args in (
        ["recommend", str(run)],
        ["report", str(run), "-f", "md", "-o", str(tmp_path / "r.md")],
        ["compare", str(ELEMENTWISE), str(run)],
    ):
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert missing in result.output and "is missing" in result.output
