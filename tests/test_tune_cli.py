"""`ncu-advisor tune` through typer's CliRunner, with the child backend's measure function mocked."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.collect.profile import runner
from ncu_advisor.collect.tune import backend
from ncu_advisor.collect.tune.loop import Measurement
from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.errors import EnvironmentNotReady

ROOT = Path(__file__).resolve().parents[1]
CLI = CliRunner()


def _seed_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "fused.py"
    copy.write_text((ROOT / "kernels" / "fused.py").read_text())
    return copy


def _fake_many(self, configs, screen_ms=None):  # every rep timed: screening is the worker's option
    for config in configs:
        yield _fake_measure(self, config)


def _fake_measure(self, config):
    p = (config or TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)).param_dict
    ms = 10.0 * math.ceil(128 / p["BLOCK_N"]) * (1 + 0.1 * abs(math.log2(p["BLOCK_M"] / 128)))
    return Measurement(
        "ok",
        [ms * 0.999, ms, ms * 1.001],
        True,
        n_regs=187,
        int_args={"C_out": 128, "C_in": 64, "KH": 3, "KW": 3},
        launched_with={"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "num_warps": 4, "num_stages": 2},
    )


@pytest.fixture
def gpu_stub(monkeypatch):
    monkeypatch.setattr(
        runner, "query_gpu", lambda timeout_s=60: {"name": "stub", "driver": "0", "cc": "9.0"}
    )
    monkeypatch.setattr(backend.WorkerBackend, "measure_many", _fake_many)
    monkeypatch.setattr(backend.WorkerBackend, "launch", lambda self: None)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tune_runs_prints_the_best_config_and_leaves_the_file(tmp_path, gpu_stub):
    kernel = _seed_copy(tmp_path)
    before = _digest(kernel)
    result = CLI.invoke(
        app,
        [
            "tune",
            str(kernel),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--budget",
            "5",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "BLOCK_N=128" in result.output and "best:" in result.output
    assert "conv2d_scale_min_kernel[grid](..., BLOCK_K=32, BLOCK_M=128, BLOCK_N=128" in result.output
    assert "budget of 5 trials reached" in result.output
    assert _digest(kernel) == before  # no --write: untouched
    runs = list((tmp_path / "runs").glob("*-fused-tune"))
    assert len(runs) == 1
    data = json.loads((runs[0] / "tune.json").read_text())
    assert data["complete"] is True and len(data["trials"]) == 5
    assert data["trials"][1]["rule"] == "SRC-INVARIANT-LOAD" and data["trials"][1]["verdict"] == "kept"
    assert data["best"]["params"]["BLOCK_N"] == 128
    svg = (runs[0] / "tune.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<rect") >= 5 + 4  # one bar per trial, plus the legend


def test_tune_write_adds_the_tuned_class(tmp_path, gpu_stub):
    kernel = _seed_copy(tmp_path)
    result = CLI.invoke(
        app,
        [
            "tune",
            str(kernel),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--budget",
            "3",
            "--write",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "added class ModelNew_seed001_tuned" in result.output
    text = kernel.read_text()
    assert "class ModelNew_seed001_tuned(ModelNew_seed001):" in text and "'BLOCK_N': 128" in text
    compile(text, str(kernel), "exec")  # parses (never run here)


def test_tune_unknown_variant_is_bad_input(tmp_path):
    kernel = _seed_copy(tmp_path)
    result = CLI.invoke(app, ["tune", str(kernel), "--variant", "ModelNew_nope", "--no-ncu"])
    assert result.exit_code == 2
    assert "ModelNew_nope" in result.output and "ModelNew_seed001" in result.output


def test_tune_variant_with_several_kernels_needs_kernel(tmp_path, gpu_stub):
    kernel = _seed_copy(tmp_path)
    result = CLI.invoke(
        app, ["tune", str(kernel), "--variant", "ModelNew_seed001", "--kernel", "nope", "--no-ncu"]
    )
    assert result.exit_code == 2 and "no @triton.jit kernel 'nope'" in result.output


def test_tune_without_gpu_exits_3(tmp_path, monkeypatch):
    def no_gpu(timeout_s=60):
        raise EnvironmentNotReady("no NVIDIA GPU: nvidia-smi not found")

    monkeypatch.setattr(runner, "query_gpu", no_gpu)
    result = CLI.invoke(app, ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", "--no-ncu"])
    assert result.exit_code == 3 and "no NVIDIA GPU" in result.output


def test_tune_bad_options(tmp_path):
    result = CLI.invoke(
        app, ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", "--reps", "1"]
    )
    assert result.exit_code == 2 and "--reps 1 must be >= 2" in result.output


def test_tune_interrupted_keeps_the_trajectory_and_prints_the_best(tmp_path, monkeypatch):
    calls = {"n": 0}

    def measure_many(self, configs, screen_ms=None):
        for config in configs:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            yield _fake_measure(self, config)

    monkeypatch.setattr(runner, "query_gpu", lambda timeout_s=60: {"name": "stub"})
    monkeypatch.setattr(backend.WorkerBackend, "measure_many", measure_many)
    monkeypatch.setattr(backend.WorkerBackend, "launch", lambda self: None)
    result = CLI.invoke(
        app,
        [
            "tune",
            str(_seed_copy(tmp_path)),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 130
    assert (
        "interrupted (Ctrl-C)" in result.output
        and "best: BLOCK_K=32 BLOCK_M=128 BLOCK_N=128" in result.output
    )
    data = json.loads(next((tmp_path / "runs").glob("*-tune/tune.json")).read_text())
    assert data["complete"] is False and len(data["trials"]) == 2


STAND_IN_CHILD = '''#!/usr/bin/env python3
"""Stand-in for the measurement worker (JSON lines) and for `python -m ncu_advisor.collect.tune.child` under
ncu: the seed-001 cost shape."""
import json, math, sys
args = sys.argv[1:]
LAUNCHED = {"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "num_warps": 4, "num_stages": 2}
INT_ARGS = {"C_out": 128, "C_in": 64, "KH": 3, "KW": 3}


def cost(params):
    return 10.0 * math.ceil(128 / params["BLOCK_N"]) * (1 + 0.1 * abs(math.log2(params["BLOCK_M"] / 128)))


if args[:2] == ["-m", "ncu_advisor.collect.tune.worker_child"]:
    gpu = {"name": "NVIDIA H200", "cc": "9.0"}
    print(json.dumps({"event": "ready", "environment": {"gpu": gpu}}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") == "stop":
            break
        config = command["config"] or {"params": {}}
        ms = cost({**LAUNCHED, **config["params"]})
        print(json.dumps({"event": "start", "id": command["id"]}), flush=True)
        print(json.dumps({"event": "result", "id": command["id"], "status": "ok", "correct": True,
                          "reps_ms": [ms * 0.999, ms, ms * 1.001], "n_regs": 187, "n_spills": 0,
                          "launched_with": LAUNCHED, "int_args": INT_ARGS}), flush=True)
    sys.exit(0)
assert args[:2] == ["-m", "ncu_advisor.collect.tune.child"], args
override = json.loads(args[args.index("--override") + 1])
out = args[args.index("--out") + 1]
params = {"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, **(override.get("params") or {})}
if "--mode" in args and args[args.index("--mode") + 1] == "ncu":
    json.dump({"status": "ok"}, open(out, "w"))
    sys.exit(0)
ms = 10.0 * math.ceil(128 / params["BLOCK_N"]) * (1 + 0.1 * abs(math.log2(params["BLOCK_M"] / 128)))
kernels = [{"name": "conv2d_scale_min_kernel", "n_regs": 187, "n_spills": 0}]
json.dump({"status": "ok", "timings_ms": [ms * 0.999, ms, ms * 1.001], "correctness": {"passed": True},
           "triton_kernels": kernels}, open(out, "w"))
record = {"launched_with": {"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32, "num_warps": 4, "num_stages": 2},
          "int_args": {"C_out": 128, "C_in": 64, "KH": 3, "KW": 3}}
json.dump(record, open(args[args.index("--override-record") + 1], "w"))
'''


def test_tune_end_to_end_with_stand_in_child_ncu_and_nvidia_smi(tmp_path, monkeypatch):
    """The real CLI, child backend, ncu command and report reading; only the processes are stand-ins
    (tests/fake_ncu: ncu copies the recorded seed-001 H200 report; nvidia-smi prints an H200)."""
    fake = ROOT / "tests" / "fake_ncu"
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv(
        "FAKE_NCU_REPORT",
        str(ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"),
    )
    python = tmp_path / "python"
    python.write_text(STAND_IN_CHILD)
    python.chmod(0o755)
    kernel = _seed_copy(tmp_path)
    result = CLI.invoke(
        app,
        [
            "tune",
            str(kernel),
            "--variant",
            "ModelNew_seed001",
            "--budget",
            "4",
            "--reps",
            "3",
            "--python",
            str(python),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--write",
        ],
    )
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").glob("*-fused-tune"))
    data = json.loads((run / "tune.json").read_text())
    assert data["options"]["ncu"] is True
    first_advice = data["options"]["recommendations"][0]
    assert "NA105" in first_advice["findings"]  # from the recorded report's 187 registers
    assert any("BLOCK_N -> 128" in note for note in first_advice["notes"])
    assert data["trials"][1]["rule"] == "SRC-INVARIANT-LOAD" and data["trials"][1]["verdict"] == "kept"
    # ncu ran for the start and the final config only, not for every trial
    assert len(list(run.glob("trials/profile-*/profile.ncu-rep"))) == 2
    assert sum(1 for r in data["options"]["recommendations"] if r["profiled"]) == 2
    assert set(data["options"]["profiled"]) == {"start", "final", "moved"}
    assert data["options"]["profiled"]["final"]["config"]["params"]["BLOCK_N"] == 128
    assert len((run / "trials.jsonl").read_text().splitlines()) == data["options"]["budget"] == 4
    assert "ModelNew_seed001_tuned" in kernel.read_text()


def test_tune_without_ncu_suggests_no_ncu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("ncu_advisor.collect.profile.ncu.ncu_fallback_locations", lambda: [])
    result = CLI.invoke(app, ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001"])
    assert result.exit_code == 3
    assert "ncu (Nsight Compute) not found" in result.output and "--no-ncu" in result.output


def test_tune_space_file_small_enough_is_measured_whole(tmp_path, gpu_stub):
    kernel = _seed_copy(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("BLOCK_N: [32, 64, 128]\nnum_warps: [4]\nnum_stages: [2]\npin_others: true\n")
    result = CLI.invoke(
        app,
        [
            "tune",
            str(kernel),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--space",
            str(space),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "space: 3 configs: BLOCK_K {32} x BLOCK_M {128} x BLOCK_N {32, 64, 128}" in result.output
    assert "measured the whole space (3 configs" in result.output
    data = json.loads(next((tmp_path / "runs").glob("*-tune/tune.json")).read_text())
    assert data["best"]["params"]["BLOCK_N"] == 128 and data["options"]["space_size"] == 3
    assert [t["rule"] for t in data["trials"]] == ["start", "TUNE-EXHAUSTIVE", "TUNE-EXHAUSTIVE"]


def test_tune_space_file_with_an_unknown_name_is_bad_input(tmp_path, gpu_stub):
    space = tmp_path / "space.json"
    space.write_text('{"BLOCK_Q": [1, 2]}')
    result = CLI.invoke(
        app,
        [
            "tune",
            str(_seed_copy(tmp_path)),
            "--variant",
            "ModelNew_seed001",
            "--no-ncu",
            "--space",
            str(space),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 2
    assert "BLOCK_Q" in result.output and "not a tunable parameter" in result.output


@pytest.mark.parametrize("option", [["--rep-ms", "inf"], ["--warmup-ms", "0"], ["--rep-ms", "nan"]])
def test_do_bench_times_out_of_range_are_bad_input(tmp_path, option):
    result = CLI.invoke(app, ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", *option])
    assert result.exit_code == 2, result.output
    assert "--rep-ms" in result.output and "10000" in result.output


def test_default_compile_processes_follow_the_cpus(monkeypatch):
    from ncu_advisor.collect.tune import run

    for cpus, procs in ((2, 0), (4, 0), (8, 4), (16, 12), (32, 12), (None, 0)):
        monkeypatch.setattr(run.os, "cpu_count", lambda c=cpus: c)
        assert run.default_compile_procs() == procs
        assert run.TuneSettings(kernel_file=Path("k.py"), variant="V").compile_procs == procs


def test_tune_with_a_python_that_does_not_exist_is_bad_input_naming_it(tmp_path):
    """``--python /nonexistent/python`` said "ncu not found" (exit 3), or "no NVIDIA GPU" with --no-ncu
    (new user 9): the interpreter is checked first, exit 2 naming it."""
    missing = str(tmp_path / "no" / "python")
    result = CLI.invoke(
        app, ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", "--no-ncu", "--python", missing]
    )
    assert result.exit_code == 2 and f"--python {missing}: no such executable" in result.output
