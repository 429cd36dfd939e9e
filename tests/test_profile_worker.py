"""Timing-only profile runs through the long-lived timing worker per GPU (collect.profile.worker), on CPU:
the stand-in child of tests/fake_ncu runs inside the real worker loop (worker_child.serve). Compared with the
one-process-per-variant path on the same faults; a job that kills its worker; two stand-in GPUs draining one
queue of several files; Ctrl-C; a GPU whose worker finds no CUDA device."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ncu_advisor import rundir
from ncu_advisor.collect.executor import GpuSlot, LocalExecutor
from ncu_advisor.collect.profile.runner import ProfileOptions, ProfileTarget, profile_file, profile_files
from ncu_advisor.collect.profile.variants import list_variants

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_ncu"
FAKE_PYTHON = str(FAKE / "fake_python")
FAULTS = ROOT / "tests" / "fixtures" / "kernels" / "faults.py"
REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
SLOTS = [GpuSlot("h", i, f"GPU-{i}", "NVIDIA H200", str(i)) for i in range(2)]
FAULT_MODES = (
    "ModelNew_wrong=incorrect,ModelNew_raises=raise,ModelNew_crash=crash,"
    "ModelNew_hang=hang,ModelNew_after=segv"
)
NAMES = (
    "ModelNew_good",
    "ModelNew_wrong",
    "ModelNew_raises",
    "ModelNew_crash",
    "ModelNew_hang",
    "ModelNew_after",
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stand-in executables are POSIX scripts")


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_NCU_REPORT", str(REPORT))
    monkeypatch.setenv("FAKE_GPUS", "2")
    for name in ("FAKE_CHILD_MODES", "FAKE_NO_GPU", "FAKE_NOGPU_VISIBLE", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _variants(*names: str):  # type: ignore[no-untyped-def]
    return [v for v in list_variants(FAULTS).variants if v.name in names]


def _options(root: Path, timeout_s: float = 20, worker: bool = True) -> ProfileOptions:
    return ProfileOptions(
        python=FAKE_PYTHON,
        runs_root=root,
        timeout_s=timeout_s,
        reps=2,
        timing_only=True,
        timing_worker=worker,
    )


def _result(run_dir: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((run_dir / "variants" / name / "result.json").read_text()))


def _files(run_dir: Path, name: str) -> set[str]:
    folder = run_dir / "variants" / name
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _entries(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"Model": manifest["reference"], **manifest["variants"]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_results_match_the_process_per_variant_path(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHILD_MODES", FAULT_MODES)
    runs = {}
    for worker in (False, True):
        steps: list[tuple[str, str]] = []
        run = profile_file(
            FAULTS,
            _variants(*NAMES),
            _options(fake / f"runs-{worker}", timeout_s=3, worker=worker),
            executor=LocalExecutor(slots=SLOTS[:1]),
            progress=lambda name, step, steps=steps: steps.append((name, step)),  # type: ignore[misc]
        )
        runs[worker] = (rundir.load_run(run.run_dir), steps)
    (per_process, steps_a), (in_worker, steps_b) = runs[False], runs[True]
    a, b = per_process.manifest, in_worker.manifest
    assert a["executor"]["bare_children"] == "process per variant"
    assert b["executor"]["bare_children"] == "timing worker per GPU"
    # the manifest names the same commands (the worker runs exactly these argv in-process)
    assert json.dumps(a["commands"]).replace(str(per_process.path), "RUN") == json.dumps(
        b["commands"]
    ).replace(str(in_worker.path), "RUN")
    for name, entry in _entries(a).items():
        other = _entries(b)[name]
        assert other["status"] == entry["status"], (name, entry, other)
        assert set(other) == set(entry), name  # same manifest fields
        # same reason text, up to the run directory in log paths
        assert other["reason"] == entry["reason"] or (
            entry["reason"].split("; log")[0].split(" (step")[0]
            == other["reason"].split("; log")[0].split(" (step")[0]
        ), (entry["reason"], other["reason"])
        assert _files(per_process.path, name) == _files(in_worker.path, name), name
        if "result.json" in _files(per_process.path, name):
            assert set(_result(per_process.path, name)) == set(_result(in_worker.path, name)), name
    assert (
        _entries(b)["ModelNew_hang"]["status"] == "timeout"
        and "step: check" in _entries(b)["ModelNew_hang"]["reason"]
    )
    assert f"signal {signal.SIGSEGV}" in _entries(b)["ModelNew_after"]["reason"]
    assert "deliberate failure" in (in_worker.path / "variants" / "ModelNew_raises" / "child.log").read_text()
    assert set(steps_a) == set(steps_b)  # the same progress steps, read from the log
    assert per_process.timings.equals(in_worker.timings)
    # one process per variant there; here the good variants shared the worker
    pids = {n: _result(in_worker.path, n)["pid"] for n in ("Model", "ModelNew_good", "ModelNew_wrong")}
    assert len(set(pids.values())) == 1, pids
    # after an incorrect variant (it may have written out of bounds) the next one gets a fresh worker
    assert _result(in_worker.path, "ModelNew_raises")["pid"] != pids["ModelNew_wrong"]
    assert len({_result(per_process.path, n)["pid"] for n in ("Model", "ModelNew_good")}) == 2


def test_a_job_that_kills_its_worker_costs_only_itself(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CHILD_MODES", "ModelNew_crash=segv")
    names = ("ModelNew_good", "ModelNew_crash", "ModelNew_wrong", "ModelNew_after")
    with LocalExecutor(slots=SLOTS[:1]) as executor:
        run = profile_file(FAULTS, _variants(*names), _options(fake / "runs"), executor=executor)
    m = rundir.load_run(run.run_dir).manifest
    statuses = {n: e["status"] for n, e in _entries(m).items()}
    assert statuses == {
        "Model": "ok",
        "ModelNew_good": "ok",
        "ModelNew_crash": "crashed",
        "ModelNew_wrong": "ok",
        "ModelNew_after": "ok",
    }
    crash = m["variants"]["ModelNew_crash"]
    assert f"killed by signal {signal.SIGSEGV}" in crash["reason"] and crash["attempts"] == 1
    # jobs run in file order: Model, good, wrong, crash, after
    before = {_result(run.run_dir, n)["pid"] for n in ("Model", "ModelNew_good", "ModelNew_wrong")}
    after = _result(run.run_dir, "ModelNew_after")["pid"]
    assert len(before) == 1 and after not in before  # a fresh worker took the job after the crash
    assert not any(_alive(p) for p in (*before, after))  # close() stopped the worker
    assert m["complete"] is True


def test_two_gpus_drain_one_queue_of_several_files(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CHILD_SLEEP_S", "0.2")
    copy = fake / "faults_copy.py"
    copy.write_text(FAULTS.read_text())
    names = ("ModelNew_good", "ModelNew_wrong", "ModelNew_after", "ModelNew_tuned")
    targets = [
        ProfileTarget(FAULTS, _variants(*names)),
        ProfileTarget(copy, [v for v in list_variants(copy).variants if v.name in names]),
    ]
    with LocalExecutor(slots=SLOTS) as executor:
        runs = profile_files(targets, _options(fake / "runs"), executor=executor)
    by_gpu: dict[int, set[int]] = {}
    count = 0
    for run in runs:
        m = rundir.load_run(run.run_dir).manifest
        assert m["complete"] is True and m["executor"]["bare_children"] == "timing worker per GPU"
        for name, entry in _entries(m).items():
            result = _result(run.run_dir, name)
            assert entry["status"] == "ok" and result["visible_devices"] == entry["gpu"]["visible"]
            by_gpu.setdefault(entry["gpu"]["index"], set()).add(result["pid"])
            count += 1
    assert count == 10 and set(by_gpu) == {0, 1}
    assert all(len(pids) == 1 for pids in by_gpu.values()), by_gpu  # one worker per GPU served both files
    assert by_gpu[0] != by_gpu[1]


def test_a_gpu_whose_worker_finds_no_cuda_is_retried_elsewhere(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NOGPU_VISIBLE", "1")
    monkeypatch.setenv("FAKE_CHILD_SLEEP_S", "0.3")
    with LocalExecutor(slots=SLOTS) as executor:
        run = profile_file(
            FAULTS, _variants("ModelNew_good", "ModelNew_wrong"), _options(fake / "runs"), executor=executor
        )
    entries = list(_entries(rundir.load_run(run.run_dir).manifest).values())
    assert all(e["status"] == "ok" and e["gpu"]["index"] == 0 for e in entries)
    retried = [e for e in entries if e["attempts"] == 2]
    assert len(retried) == 1 and "GPU 1" in retried[0]["retried_because"][0]


def test_ctrl_c_kills_the_workers_and_leaves_complete_folders(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHILD_MODES", "ModelNew_hang=hang,ModelNew_after=hang")
    monkeypatch.setenv("FAKE_HANG_S", "60")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    executor = LocalExecutor(slots=SLOTS)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            profile_file(
                FAULTS,
                _variants("ModelNew_hang", "ModelNew_after", "ModelNew_good"),
                replace(_options(fake / "runs"), timeout_s=120),
                executor=executor,
            )
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 15
    workers = [w for state in executor._states.values() for w in state.values()]
    assert workers and not any(w.alive() for w in workers)  # hanging workers killed, not waited for
    executor.close()
    (run_dir,) = (fake / "runs").iterdir()
    m = rundir.read_manifest(run_dir)
    assert sorted(rundir.missing_variants(m)) == ["ModelNew_after", "ModelNew_hang"]
    for name, entry in _entries(m).items():
        if entry["status"] != "pending":
            assert {"result.json", "child.log"} <= _files(run_dir, name)


def test_the_real_worker_runs_the_real_child_with_its_log_and_result(tmp_path: Path) -> None:
    """No stand-in: worker_child.serve runs child.main; without torch (this interpreter) or without a GPU the
    child reports no GPU (exit 3) exactly as its separate process does, and the worker then exits."""
    from ncu_advisor.collect.profile.steps import child_command
    from ncu_advisor.collect.profile.worker import TimingWorker

    python = os.environ.get("NCU_ADVISOR_TORCH_PYTHON") or sys.executable
    out = tmp_path / "variants" / "ModelNew_good" / "result.json"
    out.parent.mkdir(parents=True)
    options = ProfileOptions(python=python, timing_only=True)
    argv = child_command(python, FAULTS, ["ModelNew_good"], "bench", out, options)
    worker = TimingWorker(python, {"CUDA_VISIBLE_DEVICES": ""}, log_path=tmp_path / "worker.log")
    steps: list[str] = []
    try:
        done = worker.run(argv, out.parent / "child.log", 120, steps.append)
        first_pid = worker._process.pid if worker._process else None
        assert done.returncode == 3 and not done.timed_out and not worker.alive()
        assert _result(tmp_path, "ModelNew_good")["status"] == "no-gpu"
        log = (out.parent / "child.log").read_text()
        assert "torch" in log and "@@ncu-advisor" not in (tmp_path / "worker.log").read_text()
        again = worker.run(argv, out.parent / "child.log", 120)  # restarted for the next job
        assert again.returncode == 3 and worker.starts == 2 and first_pid is not None
    finally:
        worker.stop()
