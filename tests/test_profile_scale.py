"""profile on several GPUs, on CPU: the local executor on 2 stand-in GPUs, the Dask executor on a cluster of
worker processes on this host, with the stand-in ncu/nvidia-smi/child of tests/fake_ncu (the child records the
CUDA_VISIBLE_DEVICES it got). Faults: a GPU that errors, a worker killed mid-run, Ctrl-C."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from ncu_advisor import rundir
from ncu_advisor.collect.executor import GpuSlot, LocalExecutor, parse_gpus, query_gpus
from ncu_advisor.collect.profile.runner import ProfileOptions, profile_file
from ncu_advisor.collect.profile.variants import list_variants
from ncu_advisor.errors import EnvironmentNotReady, InputError

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_ncu"
FAKE_PYTHON = str(FAKE / "fake_python")
FAULTS = ROOT / "tests" / "fixtures" / "kernels" / "faults.py"
REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
HAS_DASK = importlib.util.find_spec("distributed") is not None

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stand-in executables are POSIX scripts")


@pytest.fixture()
def two_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_NCU_REPORT", str(REPORT))
    monkeypatch.setenv("FAKE_GPUS", "2")
    monkeypatch.setenv("FAKE_KILL_DIR", str(tmp_path))
    for name in (
        "FAKE_NCU_MODES",
        "FAKE_CHILD_MODES",
        "FAKE_NO_GPU",
        "FAKE_NCU_MODE",
        "CUDA_VISIBLE_DEVICES",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _variants(*names: str):  # type: ignore[no-untyped-def]
    return [v for v in list_variants(FAULTS).variants if v.name in names]


def _options(tmp_path: Path, timeout_s: float = 20) -> ProfileOptions:
    return ProfileOptions(python=FAKE_PYTHON, runs_root=tmp_path / "runs", timeout_s=timeout_s, reps=2)


def _result(run_dir: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((run_dir / "variants" / name / "result.json").read_text())


def _files(run_dir: Path, name: str) -> set[str]:
    folder = run_dir / "variants" / name
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_query_gpus_follows_cuda_visible_devices(two_gpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [s.index for s in query_gpus()] == [0, 1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-00000001-0000-0000-0000-000000000000")
    (only,) = query_gpus()
    assert only.index == 1 and only.name == "NVIDIA H200" and only.visible == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    with pytest.raises(EnvironmentNotReady, match="names no GPU"):
        query_gpus()
    assert parse_gpus("all") is None and parse_gpus("2") == 2
    with pytest.raises(InputError):
        parse_gpus("0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(InputError, match="3 asked for, 2 visible"):
        LocalExecutor(gpus=3)


def test_local_two_gpus_run_side_by_side_and_say_where(
    two_gpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHILD_SLEEP_S", "0.6")
    names = ("ModelNew_good", "ModelNew_wrong", "ModelNew_raises")
    monkeypatch.setenv("FAKE_CHILD_MODES", "ModelNew_wrong=incorrect")
    run = profile_file(FAULTS, _variants(*names), _options(two_gpus), executor=LocalExecutor())
    m = rundir.load_run(run.run_dir).manifest
    assert [g["index"] for g in m["executor"]["gpus"]] == [0, 1]
    entries = {"Model": m["reference"], **m["variants"]}
    seen = set()
    for name, entry in entries.items():
        result = _result(run.run_dir, name)
        # the GPU the manifest names is the one the child saw (CUDA_VISIBLE_DEVICES)
        assert result["visible_devices"] == str(entry["gpu"]["index"]) == entry["gpu"]["visible"]
        assert entry["gpu"]["uuid"].startswith(f"GPU-0000000{entry['gpu']['index']}")
        assert entry["gpu"]["name"] == "NVIDIA H200" and entry["gpu"]["host"] and entry["attempts"] == 1
        seen.add(entry["gpu"]["index"])
    assert seen == {0, 1}
    spans = sorted((_result(run.run_dir, n)["t_start"], _result(run.run_dir, n)["t_end"]) for n in entries)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)), spans  # two timings overlapped
    assert m["complete"] is True and m["variants"]["ModelNew_wrong"]["status"] == "incorrect"
    assert "profile.ncu-rep" in _files(run.run_dir, "ModelNew_good")


def test_gpu_that_errors_costs_only_its_variant_which_is_retried(
    two_gpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NOGPU_VISIBLE", "1")  # every child on GPU 1 finds no CUDA device
    monkeypatch.setenv("FAKE_CHILD_SLEEP_S", "0.3")
    run = profile_file(FAULTS, _variants("ModelNew_good", "ModelNew_wrong"), _options(two_gpus))
    m = rundir.load_run(run.run_dir).manifest
    entries = [m["reference"], *m["variants"].values()]
    assert all(e["status"] == "ok" and e["gpu"]["index"] == 0 for e in entries)
    retried = [e for e in entries if e["attempts"] == 2]
    assert len(retried) == 1 and "GPU 1" in retried[0]["retried_because"][0]
    assert "torch.cuda.is_available" in retried[0]["retried_because"][0]


def test_one_gpu_without_cuda_is_still_exit_3(two_gpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NOGPU_VISIBLE", "0")
    with pytest.raises(EnvironmentNotReady, match="torch.cuda.is_available"):
        profile_file(FAULTS, _variants("ModelNew_good"), _options(two_gpus), executor=LocalExecutor(gpus=1))


def test_ctrl_c_stops_every_worker_and_leaves_complete_folders(
    two_gpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHILD_MODES", "ModelNew_hang=hang,ModelNew_after=hang")
    monkeypatch.setenv("FAKE_HANG_S", "60")
    slots = [GpuSlot("h", i, f"GPU-{i}", "NVIDIA H200", str(i)) for i in range(2)]
    # a runner started in the background by a shell without job control ignores SIGINT: Ctrl-C is the test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            profile_file(
                FAULTS,
                _variants("ModelNew_hang", "ModelNew_after", "ModelNew_good"),
                _options(two_gpus, timeout_s=120),
                executor=LocalExecutor(slots=slots),
            )
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 15  # the hanging children were killed, not waited for
    (run_dir,) = (two_gpus / "runs").iterdir()
    m = rundir.read_manifest(run_dir)
    assert m["variants"]["ModelNew_hang"]["status"] == "pending"
    assert m["variants"]["ModelNew_after"]["status"] == "pending"
    for name, entry in [("Model", m["reference"]), *m["variants"].items()]:
        if entry["status"] != "pending":  # what finished is complete on disk
            assert {"result.json", "child.log"} <= _files(run_dir, name)
    assert sorted(rundir.missing_variants(m)) == ["ModelNew_after", "ModelNew_hang"]


@pytest.mark.skipif(not HAS_DASK, reason="dask.distributed is not installed (pip install ncu-advisor[dask])")
def test_dask_cluster_ships_folders_back_and_survives_a_killed_worker(
    two_gpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ncu_advisor.collect.executors_dask import DaskExecutor

    # ModelNew_raises kills its worker once (retried: ok); ModelNew_crash kills it every time (failed).
    monkeypatch.setenv("FAKE_CHILD_MODES", "ModelNew_raises=killparent,ModelNew_crash=killparent_always")
    names = ("ModelNew_good", "ModelNew_raises", "ModelNew_crash")
    with DaskExecutor() as executor:
        assert sorted(s.index for s in executor.slots()) == [0, 1]
        run = profile_file(FAULTS, _variants(*names), _options(two_gpus), executor=executor)
    m = rundir.load_run(run.run_dir).manifest
    variants = m["variants"]
    assert m["executor"]["kind"] == "dask" and m["executor"]["scheduler"].startswith("tcp://")
    assert variants["ModelNew_good"]["status"] == "ok" and variants["ModelNew_good"]["attempts"] == 1
    assert variants["ModelNew_raises"]["status"] == "ok", variants["ModelNew_raises"]
    assert variants["ModelNew_raises"]["attempts"] == 2
    assert "lost" in variants["ModelNew_raises"]["retried_because"][0]
    crash = variants["ModelNew_crash"]
    assert crash["status"] == "failed" and crash["attempts"] == 2 and "lost 2 times" in crash["reason"]
    for name in ("ModelNew_good", "ModelNew_raises"):
        # the run folder on this machine is complete and has the same form as a local run's
        assert _files(run.run_dir, name) == {"child.log", "ncu.log", "profile.ncu-rep", "result.json"}
        result = _result(run.run_dir, name)
        assert result["visible_devices"] == variants[name]["gpu"]["visible"]
    assert m["complete"] is True and set(run.manifest["variants"]) == set(names)
    assert len(rundir.load_run(run.run_dir).table) > 0  # the shipped reports were read


def test_compare_refuses_timings_from_different_gpu_models_within_a_run(tmp_path: Path) -> None:
    from test_report_formats import build_seed_run
    from typer.testing import CliRunner

    from ncu_advisor.cli import app

    base = build_seed_run(tmp_path, name="a")
    mixed = build_seed_run(tmp_path, name="b")
    manifest = json.loads((mixed / "manifest.json").read_text())
    first = next(iter(manifest["variants"]))
    manifest["variants"][first]["gpu"] = {
        "name": "NVIDIA H100 80GB HBM3",
        "index": 1,
        "uuid": "GPU-1",
        "host": "b",
    }
    (mixed / "manifest.json").write_text(json.dumps(manifest))
    refused = CliRunner().invoke(app, ["compare", str(base), str(mixed)])
    assert refused.exit_code == 2 and "NVIDIA H100 80GB HBM3" in refused.output
    assert "--allow-different-gpus" in refused.output
    allowed = CliRunner().invoke(app, ["compare", str(base), str(mixed), "--allow-different-gpus"])
    assert allowed.exit_code in (0, 1) and "GPUs differ" in allowed.stdout
    same = CliRunner().invoke(app, ["compare", str(base), str(base)])
    assert same.exit_code == 0 and "GPUs differ" not in same.stdout


class _Helper:
    """Stands for tune's long-lived measurement worker: kept in ctx.state between jobs, stopped on close."""

    started: list[str] = []
    stopped: list[str] = []

    def __init__(self, visible: str) -> None:
        self.visible = visible
        _Helper.started.append(visible)

    def stop(self) -> None:
        _Helper.stopped.append(self.visible)


def _measure(batch: int, ctx) -> tuple[int, str, int]:  # type: ignore[no-untyped-def]
    helper = ctx.state.get("worker")
    if helper is None:
        helper = ctx.state["worker"] = _Helper(ctx.slot.visible)
    time.sleep(0.05)
    return batch, helper.visible, id(helper)


def test_long_lived_helpers_stay_per_gpu_and_stop_on_close() -> None:
    from functools import partial

    from ncu_advisor.collect.executor import Job

    _Helper.started.clear()
    _Helper.stopped.clear()
    slots = [GpuSlot("h", i, f"GPU-{i}", "NVIDIA H200", str(i)) for i in range(2)]
    with LocalExecutor(slots=slots) as executor:
        results = list(executor.run([Job(str(i), partial(_measure, i)) for i in range(8)]))
        again = list(executor.run([Job("late", partial(_measure, 99))]))
    assert sorted(r.value[0] for r in results) == list(range(8))
    assert sorted(_Helper.started) == ["0", "1"]  # one per GPU, reused by every batch on it
    ids = {r.value[1]: r.value[2] for r in results}
    assert again[0].value[2] == ids[again[0].value[1]]  # still there for the next run on the executor
    assert sorted(_Helper.stopped) == ["0", "1"]


def test_gpu_unusable_survives_pickling_with_its_cause() -> None:
    import pickle

    from ncu_advisor.collect.executor import GpuUnusable

    cause = EnvironmentNotReady("no CUDA device", path="variants/x/child.log", hint="check the driver")
    back = pickle.loads(pickle.dumps(GpuUnusable(cause)))
    assert isinstance(back.cause, EnvironmentNotReady) and back.cause.exit_code == 3
    assert (back.cause.message, back.cause.path, back.cause.hint) == (cause.message, cause.path, cause.hint)


def test_cli_gpus_option(two_gpus: Path) -> None:
    from typer.testing import CliRunner

    from ncu_advisor.cli import app

    args = ["profile", str(FAULTS), "--variant", "ModelNew_good", "--python", FAKE_PYTHON, "--reps", "2"]
    runs = two_gpus / "cli-runs"
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(runs), "--gpus", "1", "--timing-only"])
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    m = rundir.load_run(run_dir).manifest
    assert [g["index"] for g in m["executor"]["gpus"]] == [0] and m["options"]["timing_only"] is True
    assert (
        "ncu" not in m["commands"]["ModelNew_good"]
        and not (run_dir / "variants" / "ModelNew_good" / "ncu.log").exists()
    )
    too_many = CliRunner().invoke(app, [*args, "--runs-dir", str(runs), "--gpus", "3"])
    assert too_many.exit_code == 2 and "3 asked for, 2 visible" in too_many.output
    bad = CliRunner().invoke(app, [*args, "--runs-dir", str(runs), "--gpus", "two"])
    assert bad.exit_code == 2 and "--gpus must be a number" in bad.output
