"""GPU tests of `ncu-advisor profile` (run on the GPU machine: needs an NVIDIA GPU, ncu, torch and triton).

Every expected value comes from an independent source: Triton's own n_regs/num_warps (result.json)
against what ncu measured, the kernel file's constants against ncu's grid size, ncu's log against its report.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ncu_advisor import rundir
from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ROOT / "tests" / "fixtures" / "kernels" / "faults.py"
FUSED = ROOT / "kernels" / "fused.py"
runner = CliRunner()

pytestmark = pytest.mark.gpu


def _constants(path: Path) -> dict[str, int]:
    """Module-level integer constants of a kernel file (ROWS, COLS, BLOCK), read without importing it."""
    values: dict[str, int] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, int):
                values[node.targets[0].id] = value
    return values


def _profile(args: list[str], runs: Path) -> tuple[int, str, rundir.LoadedRun]:
    result = runner.invoke(app, ["profile", *args, "--runs-dir", str(runs)])
    run_dirs = sorted(runs.iterdir()) if runs.is_dir() else []
    assert len(run_dirs) == 1, result.output
    return result.exit_code, result.output, rundir.load_run(run_dirs[0])


def _result(run: rundir.LoadedRun, name: str) -> dict:
    return json.loads((run.path / "variants" / name / "result.json").read_text())


def _rows(run: rundir.LoadedRun, name: str) -> pd.DataFrame:
    return run.table[run.table["variant"] == name]


def _check_triton_counts_match_ncu(run: rundir.LoadedRun, name: str, kernel: str) -> pd.Series:
    """Triton's n_regs (CompiledKernel) equals ncu's registers per thread; num_warps*32 its block size."""
    rows = _rows(run, name)
    launches = rows[rows["kernel"] == kernel]
    assert len(launches) == 1, rows["kernel"].tolist()
    launch = launches.iloc[0]
    triton_kernel = next(k for k in _result(run, name)["triton_kernels"] if k["name"] == kernel)
    assert triton_kernel["n_regs"] is not None and triton_kernel["n_spills"] is not None
    assert launch["n_regs"] == triton_kernel["n_regs"] == launch["launch__registers_per_thread"]
    assert launch["launch__block_size"] == triton_kernel["num_warps"] * 32
    return launch


def _check_passes(run: rundir.LoadedRun, name: str) -> None:
    """The replay passes parsed from ncu's log equal the report's profiler__replayer_passes."""
    passes = run.manifest["variants"][name]["ncu_passes"]
    assert isinstance(passes, int) and passes >= 1
    column = "profiler__replayer_passes"
    if column in run.table.columns:
        assert _rows(run, name)[column].max() == passes


def test_faults_are_recorded_and_the_other_variants_still_run(tmp_path: Path) -> None:
    """One run of the fault file with --expand-autotune: every fault recorded, the rest measured."""
    source = pytest.importorskip("ncu_advisor.kernelsrc.facts")
    (tuned_kernel,) = [k for k in source.analyze_file(FAULTS).kernels if k.autotune_configs]
    tuned = [f"ModelNew_tuned@cfg{i}" for i in range(len(tuned_kernel.autotune_configs))]
    args = [str(FAULTS), "--expand-autotune", "--timeout", "60", "--reps", "3"]
    code, output, run = _profile(args, tmp_path / "runs")
    assert code == 1, output
    status = {name: info["status"] for name, info in run.manifest["variants"].items()}
    expected = {
        "ModelNew_good": "ok",
        "ModelNew_wrong": "incorrect",
        "ModelNew_raises": "failed",
        "ModelNew_crash": "crashed",
        "ModelNew_hang": "timeout",
        "ModelNew_after": "ok",
        **{name: "ok" for name in tuned},
    }
    assert status == expected, "\n".join(f"{n}: {i.get('status')}: {i.get('reason')}" for n, i in run.manifest["variants"].items())
    assert run.manifest["complete"] is True and run.manifest["reference"]["status"] == "ok"
    variants = run.manifest["variants"]
    assert "deliberate failure in forward" in variants["ModelNew_raises"]["reason"]
    assert (
        "timeout" in variants["ModelNew_hang"]["reason"]
        and "step: check" in variants["ModelNew_hang"]["reason"]
    )
    assert variants["ModelNew_crash"]["reason"]
    assert (run.path / variants["ModelNew_crash"]["logs"]["child"]).is_file()
    for name in ("ModelNew_raises", "ModelNew_crash", "ModelNew_hang"):
        assert not (run.path / "variants" / name / "profile.ncu-rep").exists()
        assert _rows(run, name).empty

    const = _constants(FAULTS)
    good = _result(run, "ModelNew_good")
    assert good["parameters"] == "by-shape"  # Model.scale -> ModelNew_good.weight
    assert good["correctness"]["passed"] and good["correctness"]["rel_l2_error"] < 1e-5
    assert len(good["timings_ms"]) == 3 and all(t > 0 for t in good["timings_ms"])
    launch = _check_triton_counts_match_ncu(run, "ModelNew_good", "scale_rows_kernel")
    assert len(_rows(run, "ModelNew_good")) == 1  # only the call inside the NVTX range was profiled
    assert launch["launch__grid_size"] == math.ceil(const["ROWS"] * const["COLS"] / const["BLOCK"])
    _check_passes(run, "ModelNew_good")

    wrong = _result(run, "ModelNew_wrong")  # 3x instead of 2x: relative error |3-2|/2
    assert abs(wrong["correctness"]["rel_l2_error"] - 0.5) < 1e-4
    _check_triton_counts_match_ncu(run, "ModelNew_wrong", "scale_rows_kernel")  # incorrect, still profiled
    _check_triton_counts_match_ncu(run, "ModelNew_after", "scale_rows_kernel")  # ran after crash and hang

    # --expand-autotune: each config pinned, as ncu's block and grid sizes show
    for name, config in zip(tuned, tuned_kernel.autotune_configs, strict=True):
        assert f"BLOCK: {config.params['BLOCK']}" in variants[name]["pinned_config"]
        launch = _check_triton_counts_match_ncu(run, name, "scale_rows_tuned_kernel")
        assert launch["launch__block_size"] == config.num_warps * 32
        assert launch["launch__grid_size"] == math.ceil(
            const["ROWS"] * const["COLS"] / config.params["BLOCK"]
        )

    timings = run.timings
    assert set(timings["variant"]) == {"Model", "ModelNew_good", "ModelNew_wrong", "ModelNew_after", *tuned}
    assert (timings.groupby("variant").size() == 3).all()
    for name in status:
        assert name in output
    assert f"run: {run.path}" in output


def test_profile_fused_end_to_end(tmp_path: Path) -> None:
    seeds = ["ModelNew_seed000", "ModelNew_seed001"]
    args = [str(FUSED), "--reps", "3", "--timeout", "240"]
    for name in [*seeds, "ModelNew"]:
        args += ["--variant", name]
    code, output, run = _profile(args, tmp_path / "runs")
    m = run.manifest
    assert m["complete"] is True and m["reference"]["status"] == "ok"
    assert m["options"]["clock_control"] == "none" and m["options"]["cache_control"] == "all"
    assert m["versions"]["torch"] and m["versions"]["triton"] and m["versions"]["ncu"]
    assert m["gpu"]["name"] and m["gpu"]["sm_count"] and m["gpu"]["driver"]
    for name in seeds:
        entry = m["variants"][name]
        assert entry["status"] == "ok", entry
        assert _result(run, name)["correctness"]["rel_l2_error"] < 2e-3
        for file in ("result.json", "child.log", "ncu.log", "profile.ncu-rep"):
            assert (run.path / "variants" / name / file).is_file()
        _check_passes(run, name)
    assert m["variants"]["ModelNew"]["status"] in ("ok", "incorrect"), m["variants"]["ModelNew"]
    assert code == (0 if m["variants"]["ModelNew"]["status"] == "ok" else 1), output
    assert _result(run, "ModelNew_seed000")["parameters"] == "by-name"
    assert _result(run, "ModelNew_seed001")["parameters"] in ("by-name", "by-shape")

    _check_triton_counts_match_ncu(run, "ModelNew_seed001", "conv2d_scale_min_kernel")
    assert len(_rows(run, "ModelNew_seed001")) == 1
    _check_triton_counts_match_ncu(run, "ModelNew_seed000", "scale_channel_min_kernel")
    assert len(_rows(run, "ModelNew_seed000")) > 1  # cuDNN's conv kernels are profiled too
    for column in (
        "gpu__time_duration.sum",
        "launch__registers_per_thread",
        "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    ):
        assert column in run.table.columns

    timings = run.timings
    assert (timings.groupby("variant").size() == 3).all()
    assert set(timings["variant"]) == {"Model", *seeds, "ModelNew"}
    for name in ["Model", *seeds, "ModelNew"]:
        assert name in output
    assert f"run: {run.path}" in output
