"""The pin and the --write class on real Triton kernels, run by Triton's CPU interpreter (TRITON_INTERPRET=1).

Triton 3.6's interpreter launches through the same ``KernelInterface.__getitem__`` -> ``self.run(grid=...,
**kwargs)`` path as the GPU JITFunction, so the override mechanics are exercised for real; the output is
checked against ``Model`` in float64 (an independent path). Needs a Python with torch and triton: this one,
or the one named by ``NCU_ADVISOR_TORCH_PYTHON`` (see tests/test_kernels_interpret.py); else it skips.
Run as a script it prints the JSON the test reads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"batch_size": 2, "in_channels": 8, "out_channels": 64, "height": 7, "width": 9}


AUTOTUNED = """
import torch
import torch.nn as nn
import triton
import triton.language as tl

SEEN = []


def _hook(nargs):
    SEEN.append(nargs["BLOCK"])


@triton.autotune(
    configs=[
        triton.Config({"BLOCK": 32}, num_warps=4, pre_hook=_hook),
        triton.Config({"BLOCK": 64}, num_warps=4),
    ],
    key=["n"],
)
@triton.jit
def add_one_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + 1.0, mask=mask)


class Model(nn.Module):
    def forward(self, x):
        return x + 1.0


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        n = x.numel()
        add_one_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, out, n)
        return out


def get_inputs():
    return [torch.randn(1000)]


def get_init_inputs():
    return []
"""


def _torch_python() -> str | None:
    named = os.environ.get("NCU_ADVISOR_TORCH_PYTHON")
    if named:
        return named
    if importlib.util.find_spec("torch") and importlib.util.find_spec("triton"):
        return sys.executable
    return None


def _interpreter() -> tuple[str, dict[str, str]]:
    """A Python with torch, triton and ncu-advisor's dependencies, and the environment that runs it under
    Triton's CPU interpreter; skips when there is none."""
    python = _torch_python()
    if python is None:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    probe = subprocess.run([python, "-c", "import pandas, pydantic, yaml"], capture_output=True, env=env)
    if probe.returncode != 0:
        pytest.skip(f"{python} has torch and triton but not ncu-advisor's own dependencies")
    return python, env


def run_interpreted(script: Path, *args: str, timeout: int = 900) -> dict:
    """Run ``script`` (a test module run as a script) with ``args`` under Triton's CPU interpreter in a Python
    that has torch and triton; its last stdout line, as JSON. Skips when no such Python has them or
    ncu-advisor's own dependencies."""
    python, env = _interpreter()
    proc = subprocess.run(
        [python, str(script), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _shrink(module) -> None:
    for name, value in SHAPES.items():
        setattr(module, name, value)


def _error(module, variant_class) -> float:
    import torch

    from ncu_advisor.collect.profile.child import build

    torch.manual_seed(0)
    reference, model, inputs, _ = build(module, variant_class, seed=0, device="cpu")
    with torch.no_grad():
        expected = reference.double()(*[t.double() for t in inputs])
        got = model(*inputs)
    return float((got.double() - expected).norm() / expected.norm())


def main(work: Path) -> dict:
    """Pin seed 001's kernel and a zoo kernel, and run a --write class; return what happened."""
    from ncu_advisor.collect.profile.child import load_module
    from ncu_advisor.collect.tune.emit import (
        METHOD_AUTOTUNE,
        METHOD_CLASS_CONFIG,
        METHOD_LAUNCH,
        write_tuned_variant,
    )
    from ncu_advisor.collect.tune.pin import Override, apply_override
    from ncu_advisor.collect.tune.space import TuneConfig

    out: dict = {}
    fused = load_module(ROOT / "kernels" / "fused.py")
    _shrink(fused)
    out["seed001_error"] = _error(fused, "ModelNew_seed001")
    record = apply_override(
        fused,
        "ModelNew_seed001",
        Override("conv2d_scale_min_kernel", {"BLOCK_M": 16, "BLOCK_N": 64}, num_warps=8),
    )
    out["pinned_error"] = _error(fused, "ModelNew_seed001")
    out["pinned_record"] = {k: record.get(k) for k in ("method", "launched_with", "used", "int_args")}

    elementwise = load_module(ROOT / "kernels" / "elementwise.py")
    elementwise.N_ELEMENTS = 3001
    record = apply_override(
        elementwise, "ModelNew_block64_w8", Override("fma_gelu_scale_kernel", {"BLOCK_SIZE": 256})
    )
    out["zoo_error"] = _error(elementwise, "ModelNew_block64_w8")
    out["zoo_record"] = {k: record.get(k) for k in ("method", "launched_with")}

    softmax = load_module(ROOT / "kernels" / "softmax.py")
    softmax.N_ROWS, softmax.N_COLS, softmax.TAIL_GRID = 37, 100, 5
    # One program per row under a fixed grid (N_ROWS,): a wider BLOCK_SIZE is still correct, a narrower one
    # than the row is wrong; the correctness check tells them apart, the pin refuses neither.
    record = apply_override(softmax, "ModelNew", Override("softmax_rows_kernel", {"BLOCK_SIZE": 256}))
    out["fixed_grid_wide_error"] = _error(softmax, "ModelNew")
    out["fixed_grid_record"] = record.get("fixed_grid_changed")
    narrow = load_module(ROOT / "kernels" / "softmax.py")
    narrow.N_ROWS, narrow.N_COLS, narrow.TAIL_GRID = 37, 100, 5
    apply_override(narrow, "ModelNew", Override("softmax_rows_kernel", {"BLOCK_SIZE": 32}))
    out["fixed_grid_narrow_error"] = _error(narrow, "ModelNew")

    autotuned_path = work / "autotuned.py"
    autotuned_path.write_text(AUTOTUNED)
    autotuned = load_module(autotuned_path)
    record = apply_override(autotuned, "ModelNew", Override("add_one_kernel", {"BLOCK": 128}, num_warps=2))
    out["autotune_error"] = _error(autotuned, "ModelNew")
    out["autotune_record"] = {"method": record.get("method"), "used": record.get("used")}
    out["autotune_hook_seen"] = list(autotuned.SEEN)
    out["autotune_configs"] = [str(c) for c in autotuned.add_one_kernel.configs]
    written_path = work / "autotuned_written.py"
    written_path.write_text(AUTOTUNED)
    tuned_name = write_tuned_variant(
        written_path, "ModelNew", "add_one_kernel", TuneConfig.make({"BLOCK": 256}, 4, 2), METHOD_AUTOTUNE
    )
    written_autotuned = load_module(written_path)
    out["autotune_written_error"] = _error(written_autotuned, tuned_name)
    out["autotune_written_hook_seen"] = list(written_autotuned.SEEN)
    out["autotune_configs_restored"] = len(written_autotuned.add_one_kernel.configs)

    copy = work / "fused_copy.py"
    shutil.copyfile(ROOT / "kernels" / "fused.py", copy)
    start = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)
    tuned = TuneConfig.make({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32}, 4, 2)
    name = write_tuned_variant(
        copy, "ModelNew_seed001", "conv2d_scale_min_kernel", tuned, METHOD_LAUNCH, start=start
    )
    written = load_module(copy)
    _shrink(written)
    seen: list = []
    kernel = written.conv2d_scale_min_kernel
    cls_run = type(kernel).run

    def spy(self, *args, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K")})
        return cls_run(self, *args, **kwargs)

    type(kernel).run = spy
    try:
        out["written_error"] = _error(written, name)
        out["written_seen"] = seen[-1] if seen else None
        out["kernel_restored"] = "run" not in kernel.__dict__
        seen.clear()
        _error(written, "ModelNew_seed001")
        out["parent_seen"] = seen[-1] if seen else None
    finally:
        type(kernel).run = cls_run
    zoo_copy = work / "elementwise_copy.py"
    shutil.copyfile(ROOT / "kernels" / "elementwise.py", zoo_copy)
    zoo_name = write_tuned_variant(
        zoo_copy,
        "ModelNew_block64_w8",
        "fma_gelu_scale_kernel",
        TuneConfig.make({"BLOCK_SIZE": 1024}, 4, 3),
        METHOD_CLASS_CONFIG,
        start=TuneConfig.make({"BLOCK_SIZE": 64}, 8, 3),
    )
    zoo_written = load_module(zoo_copy)
    zoo_written.N_ELEMENTS = 3001
    out["zoo_written_config"] = getattr(zoo_written, zoo_name).config
    out["zoo_written_error"] = _error(zoo_written, zoo_name)
    return out


def search_main(work: Path) -> dict:
    """The real measurement worker (worker_child, device cpu) under the search, on small shapes."""
    from ncu_advisor.analysis.trajectory import Trajectory
    from ncu_advisor.collect.tune.backend import WorkerBackend
    from ncu_advisor.collect.tune.loop import run_tune
    from ncu_advisor.collect.tune.recommend import RuleRecommender
    from ncu_advisor.collect.tune.session import make_limits, make_space, plan_tune
    from ncu_advisor.collect.tune.worker import MeasureWorker, WorkerOptions, worker_command
    from ncu_advisor.rules import load_rules

    out: dict = {}
    cases = {
        "elementwise": (
            "kernels/elementwise.py",
            "ModelNew_block64_w8",
            {"N_ELEMENTS": 3001},
            {"BLOCK_SIZE": [64, 128, 256], "num_warps": [4, 8], "pin_others": True},
        ),
        # one program per row under a fixed grid: BLOCK_SIZE 64 < 100 columns is wrong, 256 is right
        "softmax": (
            "kernels/softmax.py",
            "ModelNew_w1",
            {"N_ROWS": 37, "N_COLS": 100, "TAIL_GRID": 5},
            {"BLOCK_SIZE": [64, 128, 256], "num_warps": [1, 2], "num_stages": [1], "pin_others": True},
        ),
    }
    for key, (file, variant, sets, spec) in cases.items():
        plan = plan_tune(ROOT / file, variant)
        options = WorkerOptions(reps=2, device="cpu", sets=sets, timeout_s=300)
        argv = worker_command(ROOT / file, plan.variant, plan.kernel, options)
        worker = MeasureWorker(argv, options, log_path=work / f"{key}.log")
        backend = WorkerBackend(worker, plan.kernel, work)
        trajectory = Trajectory(kernel_file=file, variant=plan.variant, kernel=plan.kernel, start=plan.start)
        spaces: list = []

        def space_for(m, plan=plan, trajectory=trajectory, spec=spec, spaces=spaces):
            spaces.append(make_space(plan, trajectory.start, m, dict(spec)))
            return spaces[-1]

        try:
            run_tune(
                trajectory,
                None,
                RuleRecommender(plan.kernel, plan.source, load_rules(), plan.invariant),
                lambda m, plan=plan, trajectory=trajectory: make_limits(plan, trajectory.start, m),
                measure_many=backend.measure_many,
                space=space_for,
                exhaustive=False,
                screen=True,
            )
            # straight to the worker (the search never proposes it: not a power of two): tl.arange refuses
            # BLOCK_SIZE 48, that candidate alone fails, and the same worker measures the next one
            odd = trajectory.start.replace({"BLOCK_SIZE": 48})
            after = trajectory.start.replace({"BLOCK_SIZE": 128})
            extra = [(m.status, m.reason) for m in backend.measure_many([odd, after])]
            # screening in the worker: one rep when it is not below screen_ms, every rep when it is
            tiny = [(len(m.reps_ms), m.screened) for m in backend.measure_many([after], screen_ms=0.0)]
            huge = [(len(m.reps_ms), m.screened) for m in backend.measure_many([after], screen_ms=1e9)]
        finally:
            backend.stop()
        out[key] = {
            "space": spaces[0].as_dict(),
            "trials": [
                (t["config"], t["status"], t["verdict"], t["why"]) for t in trajectory.to_json()["trials"]
            ],
            "stop": trajectory.stop_reason,
            "restarts": worker.restarts,
            "extra": extra,
            "screen": [tiny, huge],
            "screened": trajectory.options.get("screened", 0),
        }
    return out


def test_search_with_the_real_worker_under_the_triton_interpreter(tmp_path):
    result = run_interpreted(Path(__file__).resolve(), "--search", str(tmp_path))
    zoo = result["elementwise"]
    assert zoo["space"] == {"BLOCK_SIZE": [64, 128, 256], "num_warps": [4, 8], "num_stages": [3]}
    start = zoo["trials"][0]
    assert start[0] == {"params": {"BLOCK_SIZE": 64}, "num_warps": 8, "num_stages": 3} and start[2] == "start"
    kept = [t[0]["params"]["BLOCK_SIZE"] for t in zoo["trials"] if t[2] == "kept"]
    # the interpreter's time falls with fewer, larger programs: the first round's line search measures 128
    # and 256 together and keeps the faster
    # (a later round may keep 256 with other warps: the interpreter's wall clock is noisy)
    assert kept and set(kept) == {256}
    first = next(i for i, t in enumerate(zoo["trials"]) if t[2] == "kept")
    same_batch = [t for t in zoo["trials"] if t[2] == "kept" or f"trial {first} of the same batch" in t[3]]
    assert {128, 256} <= {t[0]["params"]["BLOCK_SIZE"] for t in same_batch}
    assert zoo["extra"][0][0] == "failed" and "power of 2" in zoo["extra"][0][1]  # costs only that one
    assert zoo["extra"][1] == ["ok", None] and zoo["restarts"] == 0  # ... and the same worker goes on
    assert zoo["stop"].startswith("local optimum")
    assert zoo["screen"] == [[[1, True]], [[2, False]]]  # reps=2: the second rep only below the screen
    screened = [t for t in zoo["trials"] if t[3].startswith("screened out")]
    assert len(screened) == zoo["screened"] and all(t[2] == "reverted" for t in screened)
    soft = result["softmax"]
    rows = {(t[0]["params"]["BLOCK_SIZE"], t[0]["num_warps"]): t for t in soft["trials"]}
    wrong = [t for (block, _), t in rows.items() if block == 64]
    assert wrong and all(t[1] == "incorrect" and "fixed launch grid" in t[3] for t in wrong)
    assert any(block == 256 and t[1] == "ok" for (block, _), t in rows.items())  # not refused


def test_pin_and_written_class_under_the_triton_interpreter(tmp_path):
    result = run_interpreted(Path(__file__).resolve(), str(tmp_path))
    assert result["seed001_error"] < 1e-5 and result["pinned_error"] < 1e-5
    record = result["pinned_record"]
    assert record["method"] == "launch-kwargs"
    assert record["launched_with"] == {
        "BLOCK_M": 128,
        "BLOCK_N": 32,
        "BLOCK_K": 32,
        "num_warps": 4,
        "num_stages": 2,
    }
    assert (record["used"]["BLOCK_M"], record["used"]["BLOCK_N"], record["used"]["num_warps"]) == (16, 64, 8)
    assert (
        record["int_args"]["C_out"] == SHAPES["out_channels"]
        and record["int_args"]["C_in"] == SHAPES["in_channels"]
    )
    assert result["zoo_error"] < 1e-5 and result["zoo_record"]["method"] == "class-config"
    assert result["zoo_record"]["launched_with"]["BLOCK_SIZE"] == 256
    assert result["fixed_grid_wide_error"] < 1e-5 and result["fixed_grid_record"] == ["BLOCK_SIZE"]
    assert not result["fixed_grid_narrow_error"] < 1e-3  # wrong (or NaN): the check rejects that trial
    assert result["written_error"] < 1e-5 and result["written_seen"] == {
        "BLOCK_M": 32,
        "BLOCK_N": 64,
        "BLOCK_K": 32,
    }
    assert result["kernel_restored"] is True
    assert result["parent_seen"] == {"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}
    assert result["zoo_written_config"] == {"BLOCK_SIZE": 1024, "num_warps": 4}
    assert result["zoo_written_error"] < 1e-5
    # @triton.autotune: the configs become the one candidate, keeping the first config's pre_hook
    assert result["autotune_error"] < 1e-6 and result["autotune_record"]["method"] == "autotune-configs"
    assert (
        result["autotune_record"]["used"]["BLOCK"] == 128
        and result["autotune_record"]["used"]["num_warps"] == 2
    )
    assert set(result["autotune_hook_seen"]) == {128}
    assert len(result["autotune_configs"]) == 1 and "BLOCK: 128" in result["autotune_configs"][0]
    assert result["autotune_written_error"] < 1e-6 and set(result["autotune_written_hook_seen"]) == {256}
    assert result["autotune_configs_restored"] == 2


if __name__ == "__main__":
    if sys.argv[1] == "--search":
        print(json.dumps(search_main(Path(sys.argv[2]))))
    else:
        print(json.dumps(main(Path(sys.argv[1]))))


def test_bench_tune_rehearsal_on_the_cpu(tmp_path):
    """bench/bench_tune.py end to end with --device cpu under TRITON_INTERPRET=1 (small shapes): tune in its
    worker, the sweep in a fresh worker, random search, the table. Timings are the interpreter's (no
    meaning); what is checked is the pipeline the GPU run relies on."""
    python, env = _interpreter()
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            python,
            str(ROOT / "bench" / "bench_tune.py"),
            str(out),
            "--device",
            "cpu",
            "--kernels",
            "spill",
            "--reps",
            "2",
            "--draws",
            "100",
            "--inline-sweep",
            "spill",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "bench_tune.json").read_text())["results"][0]
    assert "error" not in result, result
    assert result["sweep"]["configs"] == 6 * 5 and result["sweep"]["source"].startswith("fresh worker")
    assert result["sweep"]["start_s"] > 0 and result["tune"]["start_s"] > 0  # both walls pay a worker start
    assert result["sweep"]["space"]["BLOCK_SIZE"] == [256, 512, 1024, 2048, 4096, 8192]
    trajectory = result["tune"]["trajectory"]
    assert (
        trajectory["trials"][0]["config"]["params"] == {"BLOCK_SIZE": 8192} and result["tune"]["trials"] >= 2
    )
    assert 0 < result["random"]["p10"] <= result["random"]["mean"] <= 1
    assert set(result["goals"]) == {"quality", "wall", "vs_random"}
    inline = result["sweep_inline"]  # --inline-sweep: the sweep as the issue measured it, same space
    assert inline["configs"] == 30 and inline["wall_s"] > inline["start_s"] > 0
    assert inline["source"].startswith("fresh worker, no compile ahead")
    lines = proc.stdout.strip().splitlines()
    assert any(line.startswith("tune >= 98% of the sweep's best on") for line in lines)
    assert any(line.startswith("Walls: tune = TuneSession start") for line in lines)
    row = f"| spill | 30 | {inline['wall_s']:.1f} | {result['sweep']['wall_s']:.1f} |"
    assert lines[-1].startswith(row)
    # the merge step of bench/device/tune.sh on this part
    merged = subprocess.run(
        [
            python,
            str(ROOT / "bench" / "bench_tune.py"),
            str(tmp_path / "all"),
            "--merge",
            str(out / "bench_tune.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert merged.returncode == 0, merged.stderr[-2000:]
    rows = json.loads((tmp_path / "all" / "bench_tune.json").read_text())["results"]
    assert [r["kernel"] for r in rows] == ["spill"] and rows[0]["part"] == "bench"
    assert "| spill | 30 |" in (tmp_path / "all" / "bench_tune.md").read_text()
