"""GPU tests of `ncu-advisor tune` (run on the GPU machine: NVIDIA GPU, torch, triton; ncu for the last one).

Expected values come from independent sources: the kernel file's own constants (C_out = out_channels)
for the BLOCK_N the invariant-load rule must propose, the child's correctness check for every kept
config, and the seed's own config for the start.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parents[1]
FUSED = ROOT / "kernels" / "fused.py"
runner = CliRunner()

pytestmark = pytest.mark.gpu


def _out_channels() -> int:
    for node in ast.parse(FUSED.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "out_channels":
            return int(ast.literal_eval(node.value))
    raise AssertionError("out_channels not found in kernels/fused.py")


def _trajectory(runs: Path) -> dict:
    return json.loads(next(runs.glob("*-tune/tune.json")).read_text())


def test_tune_seed001_finds_the_invariant_fix_without_ncu(tmp_path):
    result = runner.invoke(
        app,
        [
            "tune",
            str(FUSED),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--budget",
            "3",
            "--reps",
            "3",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = _trajectory(tmp_path)
    start, first = data["trials"][0], data["trials"][1]
    assert start["verdict"] == "start" and start["config"]["params"] == {
        "BLOCK_M": 128,
        "BLOCK_N": 32,
        "BLOCK_K": 32,
    }
    assert start["n_regs"] and start["n_regs"] > 128  # Triton's count, from the child
    assert first["rule"] == "SRC-INVARIANT-LOAD" and first["config"]["params"]["BLOCK_N"] == _out_channels()
    assert first["correct"] is True and first["verdict"] == "kept"
    assert first["median_ms"] < start["median_ms"] * 0.98 and max(first["reps_ms"]) < min(start["reps_ms"])


def test_tune_write_produces_a_runnable_variant(tmp_path):
    copy = tmp_path / "fused.py"
    shutil.copyfile(FUSED, copy)
    result = runner.invoke(
        app,
        [
            "tune",
            str(copy),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--budget",
            "2",
            "--reps",
            "2",
            "--write",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "added class ModelNew_seed001_tuned" in result.output
    profiled = runner.invoke(
        app,
        [
            "profile",
            str(copy),
            "--variant",
            "ModelNew_seed001_tuned",
            "--reps",
            "2",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert profiled.exit_code == 0, profiled.output
    assert "ModelNew_seed001_tuned" in profiled.output


def test_tune_with_ncu_records_profiles(tmp_path):
    if shutil.which("ncu") is None and not Path("/usr/local/cuda/bin/ncu").exists():
        pytest.skip("ncu not found")
    result = runner.invoke(
        app,
        [
            "tune",
            str(FUSED),
            "--variant",
            "ModelNew_seed001",
            "--budget",
            "2",
            "--reps",
            "2",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = _trajectory(tmp_path)
    assert list(tmp_path.glob("*-tune/trials/profile-*/profile.ncu-rep"))
    first = data["options"]["recommendations"][0]
    assert "NA105" in first["findings"] or "NA101" in first["findings"]
