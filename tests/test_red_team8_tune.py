"""`ncu-advisor tune` attacked with bad input (eighth red team, a clean clone at 5732132): every bad
``--space`` entry is exit 2 naming the file, the entry and the fix before any trial runs (it was a traceback,
a silent truncation, or a search that measured nothing and called the start a local optimum),
``pin_others: false`` is accepted, and the documented ``{min, max}`` form works for a tile the launch
computes at run time. The kernel files are the repository's own (kernels/fused.py, kernels/softmax.py);
the GPU and the measurement are the stand-ins of tests/test_tune_cli.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.collect.tune.run import start_values
from ncu_advisor.collect.tune.session import plan_tune
from tests.test_tune_cli import _seed_copy, gpu_stub  # noqa: F401 (a fixture used by name)

ROOT = Path(__file__).resolve().parents[1]
CLI = CliRunner()

#: (space file text, a piece of the one-line error) for kernels/fused.py's seed-001 kernel
BAD_SPACES = [
    ("BLOCK_N: {add: 128}\n", "must be a non-empty list"),  # was TypeError: 'int' object is not iterable
    ("BLOCK_N: {min: abc}\n", "must be a non-empty list"),  # was ValueError from int('abc')
    ("BLOCK_N: {max: .inf}\n", "must be a non-empty list"),  # was OverflowError
    ("BLOCK_N: {min:}\n", "must be a non-empty list"),  # was TypeError from int(None)
    ("BLOCK_N: {min: 16.5, max: 128.9}\n", "must be a non-empty list"),  # was truncated to 16-128
    ("BLOCK_N: []\n", "must be a non-empty list"),
    ("BLOCK_N: {}\n", "must be a non-empty list"),
    ("BLOCK_N: [48, 96]\npin_others: true\n", "not powers of two"),  # was: nothing measured, "local optimum"
    ("num_warps: [3, 6]\n", "not powers of two (Triton requires it)"),  # Triton asserts it at compile
    ("num_warps: [64]\npin_others: true\n", "num_warps 64 is above 32"),  # was: nothing measured
    ("num_warps: {min: 2}\nBLOCK_N: {min: 128, max: 32}\n", "min > max"),
    ("BLOCK_N: [64]\npin_others: yes please\n", "pin_others must be true or false"),
    ("BLOCK_Q: {min: 16, max: 64}\n", "'BLOCK_Q', which is not a tunable parameter"),  # was ValueError
]


def _tune(tmp_path: Path, space_text: str) -> object:
    space = tmp_path / "space.yaml"
    space.write_text(space_text)
    args = ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", "--no-ncu"]
    return CLI.invoke(app, [*args, "--space", str(space), "--runs-dir", str(tmp_path / "runs")])


@pytest.mark.parametrize(("text", "problem"), BAD_SPACES)
def test_a_bad_space_entry_is_exit_2_before_any_trial(tmp_path, gpu_stub, text, problem):  # noqa: F811
    result = _tune(tmp_path, text)
    assert result.exit_code == 2, (result.output, result.exception)
    assert problem in result.output and "space.yaml" in result.output
    assert "trial 0" not in result.output  # refused before the worker measured anything
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*-tune"))


def test_pin_others_false_is_accepted(tmp_path, gpu_stub):  # noqa: F811
    result = _tune(tmp_path, "BLOCK_N: [32, 64, 128]\npin_others: false\n")
    assert result.exit_code == 0, result.output  # was exit 2: "names 'pin_others', not a tunable parameter"
    assert "BLOCK_N {32, 64, 128}" in result.output and "BLOCK_M {16, 32, 64, 128, 256}" in result.output


def test_a_range_for_a_tile_computed_at_run_time_gives_the_first_round_guesses():
    # kernels/softmax.py passes BLOCK_SIZE=triton.next_power_of_2(n_cols): no static start value
    plan = plan_tune(ROOT / "kernels" / "softmax.py", "ModelNew_w1")
    assert "BLOCK_SIZE" not in plan.start.param_dict
    spec = {"BLOCK_SIZE": {"min": 64, "max": 256}, "num_warps": [1, 2], "pin_others": True}
    assert start_values(plan, spec) == [{}, {"BLOCK_SIZE": 64}, {"BLOCK_SIZE": 128}, {"BLOCK_SIZE": 256}]
    listed = {"BLOCK_SIZE": [512, 1024]}
    assert start_values(plan, listed) == [{}, {"BLOCK_SIZE": 512}, {"BLOCK_SIZE": 1024}]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--kernels", "spill", "--inline-sweep", "sofmax"], "--inline-sweep sofmax: no such kernel"),
        (["--kernels", "spill", "--inline-sweep", "softmax"], "--inline-sweep softmax: not among --kernels"),
        (["--kernels", "spil"], "--kernels spil: no such kernel"),  # was an error row and exit 0
        (["--shard", "1/0"], "--shard '1/0': want I/N"),  # was a ValueError traceback
        (["--shard", "half"], "--shard 'half': want I/N"),
    ],
)
def test_bench_tune_refuses_unknown_keys_before_running(tmp_path, capsys, args, problem):
    from tests.test_tune_bench import _bench

    # --total-s -1 skips every kernel: before the check these ran to exit 0 (the typo'd sweep silently absent)
    with pytest.raises(SystemExit) as exit_info:
        _bench().main([str(tmp_path / "out"), "--total-s", "-1", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert problem in err and "kernels: seed001, matmul" in err


def test_bench_tune_accepts_empty_key_lists(tmp_path):
    from tests.test_tune_bench import _bench

    assert (
        _bench().main([str(tmp_path / "out"), "--kernels", "spill", "--inline-sweep", ",", "--total-s", "-1"])
        == 0
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--timeout", "inf"], "--timeout inf must be > 0 and <= 86400"),  # was OverflowError at trial 0
        (["--timeout", "1e300"], "--timeout 1e+300 must be > 0 and <= 86400"),
        (["--time", "inf"], "--time inf must be > 0 seconds and finite"),  # was OverflowError after trial 0
        (["--compile-procs", "100000"], "--compile-procs 100000 must be <= the"),  # was 100000 processes
        (["--reps", "1000000000"], "every candidate would be killed"),  # each ran into --timeout
        (
            ["--reps", "10", "--warmup-ms", "1000", "--rep-ms", "1000", "--timeout", "20"],
            "= 20 s per candidate",
        ),
    ],
)
def test_tune_refuses_options_that_cannot_run(tmp_path, gpu_stub, options, problem):  # noqa: F811
    args = ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", "--no-ncu", *options]
    result = CLI.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, (result.output, result.exception)
    assert problem in " ".join(result.output.split())
    assert "trial 0" not in result.output


def test_an_infinite_time_or_timeout_from_the_api_means_no_limit(tmp_path):
    """TuneSettings/WorkerOptions callers (the bench) may pass inf: no limit, not an OverflowError."""
    from ncu_advisor.collect.tune.batch import batch_size_for_time
    from tests.test_tune_worker import _config, _worker

    assert batch_size_for_time(float("inf"), 0.5, 7) == 7 and batch_size_for_time(2.0, 1.0, 7) == 1
    with _worker(tmp_path, ms={"64": 2.0}, timeout_s=float("inf")) as worker:
        results = worker.measure_many([("a", None), ("b", _config(64))])
    assert [(r["id"], r["status"]) for r in results] == [("a", "ok"), ("b", "ok")]


def test_a_line_that_is_no_command_does_not_stop_the_worker():
    """worker_child's reader: only the end of stdin stops the worker. A JSON line that is not an object used
    to be queued as the stop (the real worker under the interpreter, fed ``[1]`` and 3 s later a candidate,
    exited 0 without answering it)."""
    import io
    import queue

    from ncu_advisor.collect.tune import worker_child

    commands: queue.Queue = queue.Queue()
    worker_child._reader(io.StringIO('[1]\n"stop"\n\nnot json\n{"id": "1"}\n'), commands)
    items = [commands.get_nowait() for _ in range(commands.qsize())]
    assert items == [{"id": "1"}, None]


def test_a_prefetch_list_with_malformed_entries_keeps_the_good_ones(monkeypatch):
    """AheadCompiler.prefetch (the worker's pool side): a config that is no mapping, or whose "when" is none,
    is skipped instead of raising AttributeError out of the worker's loop."""
    from ncu_advisor.collect.tune import ahead

    sent: list = []

    class Pool:
        def prefetch(self, jobs):
            sent.append([job["values"] for _, job in jobs])

    monkeypatch.setattr(ahead, "capture_job", lambda jit, path, kernel, args, kw: {"values": dict(kw)})
    compiler = ahead.AheadCompiler(Pool(), None, Path("k.py"), "k")
    compiler.set_captured(((), {"BLOCK": 64}))
    good = {"params": {"BLOCK": 128}, "num_warps": 4}
    compiler.prefetch(["abc", 5, {"params": {"BLOCK": 32}, "when": 7}, good])
    assert sent == [[{"BLOCK": 128, "num_warps": 4}]]


def test_a_space_with_nothing_inside_the_limits_says_so(tmp_path, gpu_stub):  # noqa: F811
    """seed 001's output-channel loop has the extent C_out = 128 (the stand-in launch's): BLOCK_N 256 is
    outside the limits, so nothing but the start is measured. The stop reason said "local optimum: no
    candidate ... beat the best", as if the start had been searched around."""
    result = _tune(tmp_path, "BLOCK_N: [256]\npin_others: true\n")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "stop: nothing to measure: no configuration other than the start" in text
    assert "BLOCK_N=256 exceeds the extent 128 of its dimension" in text and "local optimum" not in text


def test_tune_without_a_gpu_does_not_send_the_user_to_profile(tmp_path, monkeypatch):
    """`ncu-advisor tune` on a machine without nvidia-smi: exit 3 (docs/tune.md); the hint said "run
    `ncu-advisor profile` on a machine with an NVIDIA GPU", which needs one just the same."""
    from ncu_advisor.collect.profile import runner

    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    args = ["tune", str(_seed_copy(tmp_path)), "--variant", "ModelNew_seed001", "--no-ncu"]
    result = CLI.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "no NVIDIA GPU: nvidia-smi not found" in text and "ncu-advisor profile" not in text
    assert "run it on a machine with an NVIDIA GPU and driver" in text


def test_a_start_that_never_launches_the_tuned_kernel_is_bad_input(tmp_path):
    """--kernel naming a kernel the variant does not launch: the pin acts on nothing, every candidate times
    the same code, and tune used to keep noise (kernels/fused.py's ModelNew_seed000 with --kernel
    conv2d_scale_min_kernel under the interpreter: 53 trials, 'kept' configs). The start's result says no
    launch of the kernel was seen: exit 2 before any candidate. Only the start is judged so."""
    from ncu_advisor.collect.tune.backend import WorkerBackend
    from ncu_advisor.collect.tune.space import TuneConfig
    from ncu_advisor.errors import InputError
    from tests.test_tune_worker import _worker

    with _worker(tmp_path, plan={"start": "nolaunch"}) as worker:
        with pytest.raises(InputError, match="the variant ran without launching kernel k"):
            list(WorkerBackend(worker, "k").measure_many([None]))
    with _worker(tmp_path, plan={"128": "nolaunch"}) as worker:
        backend = WorkerBackend(worker, "k")
        assert [m.status for m in backend.measure_many([None])] == ["ok"]
        config = TuneConfig.make({"BLOCK": 128}, 4, 2)
        assert [m.status for m in backend.measure_many([config])] == ["ok"]  # a candidate is not judged so


SEED000_WRONG_KERNEL = """
import sys
from pathlib import Path
from ncu_advisor.collect.tune.run import TuneSession, TuneSettings
from ncu_advisor.errors import AdvisorError
shapes = {"batch_size": 2, "in_channels": 8, "out_channels": 64, "height": 7, "width": 9}
settings = TuneSettings(kernel_file=Path("kernels/fused.py"), variant="ModelNew_seed000",
    kernel="conv2d_scale_min_kernel", use_ncu=False, device="cpu", reps=2, warmup_ms=1, rep_ms=2,
    compile_procs=0, runs_dir=Path(sys.argv[1]), sets=shapes, python=sys.executable, time_limit=60)
try:
    TuneSession(settings).run()
except AdvisorError as exc:
    print("exit", exc.exit_code, exc.message)
"""


def test_the_wrong_kernel_under_the_interpreter_stops_at_the_start(tmp_path):
    from tests.test_tune_interpret import _interpreter

    python, env = _interpreter()
    proc = subprocess.run(
        [python, "-c", SEED000_WRONG_KERNEL, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "exit 2 the variant ran without launching kernel conv2d_scale_min_kernel" in proc.stdout
    data = json.loads((next((tmp_path / "runs").glob("*-tune")) / "tune.json").read_text())
    assert data["trials"] == [] and data["stop_reason"].startswith("stopped: the variant ran without")


READ_SPACE = """
import sys
from pathlib import Path
from ncu_advisor.collect.tune.searchspace import read_space_file
from ncu_advisor.errors import InputError
try:
    read_space_file(Path(sys.argv[1]))
except InputError as exc:
    print("exit", exc.exit_code, exc)
"""


def test_a_space_file_that_is_a_pipe_is_refused_unread(tmp_path):
    """`--space FIFO` waited forever for a writer (as a kernel or rule file it is exit 2, README). Run in a
    subprocess so that the old hang fails by its timeout. (/dev/zero, read without end before, is refused by
    the same check; not run here: unfixed, it would fill the memory.)"""
    import os
    import sys

    path = tmp_path / "space.yaml"
    os.mkfifo(path)
    proc = subprocess.run(
        [sys.executable, "-c", READ_SPACE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert f"exit 2 {path}: is not a regular file (a pipe, socket or device)" in proc.stdout, proc.stderr
