"""The measurement worker's parent side (ncu_advisor.collect.tune.worker) with a stand-in child speaking the
same JSON-lines protocol (tests/fake_worker/worker.py): results in order, and a crashing, hanging, wrong or
dying candidate costs only itself (the worker is restarted, the rest still measured)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ncu_advisor.collect.tune.worker import MeasureWorker, WorkerOptions, worker_command
from ncu_advisor.errors import EnvironmentNotReady, KernelFileError

ROOT = Path(__file__).resolve().parents[1]
FAKE = [sys.executable, str(ROOT / "tests" / "fake_worker" / "worker.py")]


def _config(block: int) -> dict:
    return {"params": {"BLOCK": block}, "num_warps": 4, "num_stages": 2}


def _worker(tmp_path, plan=None, ms=None, timeout_s=5.0, **env) -> MeasureWorker:
    env = {
        "FAKE_WORKER_PLAN": json.dumps(plan or {}),
        "FAKE_WORKER_MS": json.dumps(ms or {}),
        "FAKE_WORKER_COUNT": str(tmp_path / "starts.txt"),
        **env,
    }
    return MeasureWorker(FAKE, WorkerOptions(timeout_s=timeout_s), log_path=tmp_path / "worker.log", env=env)


def _starts(tmp_path) -> int:
    return len((tmp_path / "starts.txt").read_text().splitlines())


def test_results_come_in_order_from_one_process(tmp_path):
    with _worker(tmp_path, ms={"64": 2.0, "128": 1.0}) as worker:
        assert worker.environment["gpu"]["name"] == "NVIDIA H200"
        results = worker.measure_many([("a", None), ("b", _config(64)), ("c", _config(128))])
    assert [r["id"] for r in results] == ["a", "b", "c"]
    assert [r["reps_ms"][0] for r in results] == [1.0, 2.0, 1.0]
    assert all(r["status"] == "ok" and r["correct"] for r in results)
    assert _starts(tmp_path) == 1  # one process for all three
    assert "must not reach the protocol stream" in (tmp_path / "worker.log").read_text()


def test_crash_segv_hang_and_wrong_cost_only_themselves(tmp_path):
    plan = {"32": "crash", "64": "segv", "128": "hang", "256": "wrong", "512": "fail"}
    with _worker(tmp_path, plan=plan, ms={"1024": 0.5}, timeout_s=3.0) as worker:
        blocks = [32, 64, 128, 256, 512, 1024]
        results = worker.measure_many([(str(b), _config(b)) for b in blocks])
    by_id = {r["id"]: r for r in results}
    assert [r["id"] for r in results] == [str(b) for b in blocks]
    assert by_id["32"]["status"] == "crashed" and "illegal memory access" in by_id["32"]["reason"]
    assert by_id["64"]["status"] == "crashed" and "signal 11" in by_id["64"]["reason"]
    assert by_id["128"]["status"] == "timeout" and "3 s timeout" in by_id["128"]["reason"]
    assert by_id["256"]["status"] == "ok" and by_id["256"]["correct"] is False
    assert by_id["512"]["status"] == "failed" and "OutOfResources" in by_id["512"]["reason"]
    assert by_id["1024"]["status"] == "ok" and by_id["1024"]["reps_ms"][0] == 0.5
    assert worker.restarts == 3 and _starts(tmp_path) == 4  # crash, segv and hang each restart it once


def test_screen_ms_reaches_the_worker_and_survives_a_restart(tmp_path):
    """A screened candidate is answered with one rep; after a crash the candidates submitted behind the
    culprit are sent again to the new process with their screen."""
    with _worker(tmp_path, plan={"32": "crash"}, ms={"64": 2.0, "128": 0.5}) as worker:
        worker.submit("crash", _config(32), screen_ms=1.0)
        worker.submit("slow", _config(64), screen_ms=1.0)
        worker.submit("fast", _config(128), screen_ms=1.0)
        worker.submit("full", _config(64))
        results = {r["id"]: r for r in worker.results()}
    assert results["crash"]["status"] == "crashed" and worker.restarts == 1
    assert results["slow"]["reps_ms"] == [2.0] and results["slow"]["screened"] is True
    assert len(results["fast"]["reps_ms"]) == 3 and "screened" not in results["fast"]
    assert len(results["full"]["reps_ms"]) == 3


def test_a_launched_worker_is_waited_for_by_start_and_killed_by_stop(tmp_path):
    worker = _worker(tmp_path)
    worker.launch()
    assert worker.start()["gpu"]["name"] == "NVIDIA H200" and _starts(tmp_path) == 1
    worker.stop()
    never_waited = _worker(tmp_path, FAKE_WORKER_COUNT=str(tmp_path / "other.txt"))
    never_waited.launch()
    process = never_waited._process
    never_waited.stop()
    assert process is not None and process.poll() is not None and never_waited._process is None


def test_a_worker_that_cannot_start_raises_with_the_reason(tmp_path):
    with pytest.raises(EnvironmentNotReady, match="cannot use the GPU"):
        _worker(tmp_path, FAKE_WORKER_START="nogpu").start()
    with pytest.raises(KernelFileError, match="NameError"):
        _worker(tmp_path, FAKE_WORKER_START="error").start()


def test_a_lost_gpu_during_the_run_raises_at_the_restart(tmp_path):
    worker = _worker(tmp_path, plan={"64": "exit"})
    worker.start()
    worker.submit("x", _config(64))
    results = worker.results()
    first = next(results)
    assert first["status"] == "crashed" and "exit code 1" in first["reason"]
    worker.env["FAKE_WORKER_START"] = "nogpu"  # the restart finds the GPU gone
    worker.submit("y", _config(128))
    with pytest.raises(EnvironmentNotReady):
        list(worker.results())
    worker.stop()


def test_worker_command_line():
    argv = worker_command(
        Path("k.py"), "ModelNew", "kern", WorkerOptions(python="py", reps=3, rtol=1e-3, sets={"N": 64})
    )
    assert argv[:7] == [
        "py",
        "-m",
        "ncu_advisor.collect.tune.worker_child",
        "k.py",
        "ModelNew",
        "--kernel",
        "kern",
    ]
    assert argv[argv.index("--reps") + 1] == "3" and argv[argv.index("--rtol") + 1] == "0.001"
    assert argv[argv.index("--set") + 1] == "N=64"


def test_a_variant_that_does_not_build_is_named_with_its_file_and_the_command_to_see_it(tmp_path):
    """The worker's command line is ``python -m MODULE FILE VARIANT ...`` (``worker_command``): the error
    names that file (exit 2 path) and variant, and the hint gives the command that runs the same build."""
    env = {"FAKE_WORKER_PLAN": "{}", "FAKE_WORKER_MS": "{}", "FAKE_WORKER_START": "error",
           "FAKE_WORKER_COUNT": str(tmp_path / "starts.txt")}
    # FAKE is python and a script; "-" stands where worker_command has "-m" and the module, one place less
    argv = [*FAKE, "-", "kernels/corpus/softmax.py", "ModelNew_mistuned"]
    worker = MeasureWorker(argv, WorkerOptions(timeout_s=5.0), log_path=tmp_path / "worker.log", env=env)
    with pytest.raises(KernelFileError) as caught:
        worker.start()
    error = caught.value
    assert "variant ModelNew_mistuned does not build" in str(error) and "NameError" in str(error)
    assert str(error.path) == "kernels/corpus/softmax.py"
    assert "ncu-advisor profile kernels/corpus/softmax.py --variant ModelNew_mistuned" in error.hint
