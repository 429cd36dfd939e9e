"""bench/bench_scale.py on the CPU machine: parts a and b1 in one call with the stand-in nvidia-smi, ncu and
child of tests/fake_ncu (two stand-in GPUs; timing-only through the timing worker per GPU), and part d's
``--rehearse`` (tune's measurement workers under TRITON_INTERPRET=1, one queue across files) where a Python
with torch and triton is at hand."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_ncu"
REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stand-in executables are POSIX scripts")


def test_parts_a_and_b1_in_one_call_with_stand_ins(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{FAKE}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_GPUS": "2",
        "FAKE_NCU_REPORT": str(REPORT),
        "FAKE_CHILD_SLEEP_S": "0.05",
        "PYTHONPATH": str(ROOT),
    }
    for name in ("CUDA_VISIBLE_DEVICES", "FAKE_CHILD_MODES", "FAKE_NO_GPU", "FAKE_NOGPU_VISIBLE"):
        env.pop(name, None)
    argv = [sys.executable, str(ROOT / "bench" / "bench_scale.py"), str(tmp_path), "--part", "a,b1"]
    argv += ["--no-probe", "--no-dask", "--profile-variants", "3", "--python", str(FAKE / "fake_python")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "scale-ab1.json").read_text())
    one, two = results["timing_1gpu"], results["timing_2gpu"]
    for sweep in (one, two):
        assert sweep["bare_children"] == "timing worker per GPU" and sweep["fresh_triton_cache"] is True
        assert sweep["variants"] == 24 and sweep["statuses"] == {"ok": 28}
    assert two["per_gpu_jobs"]["0"] > 0 and two["per_gpu_jobs"]["1"] > 0
    assert results["timing_agreement"]["pairs"] == 28
    ncu = results["profile_1gpu"]
    assert ncu["bare_children"] == "process per variant" and ncu["variants"] == 3
    assert proc.stdout.strip().splitlines()[-1].startswith("timing agreement")  # the table comes last
    assert "timing_speedup" in proc.stdout


def _torch_python() -> str | None:
    named = os.environ.get("NCU_ADVISOR_TORCH_PYTHON")
    if named:
        return named
    has = importlib.util.find_spec("torch") and importlib.util.find_spec("triton")
    return sys.executable if has else None


def test_rehearse_part_d_runs_on_cpu(tmp_path: Path) -> None:
    python = _torch_python()
    if python is None:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    argv = [python, str(ROOT / "bench" / "bench_scale.py"), str(tmp_path), "--rehearse"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| tune_sweep_")]
    assert [r.split("|")[1].strip() for r in rows] == ["tune_sweep_1gpu", "tune_sweep_2gpu"]
    assert all(r.split("|")[3].strip() == "12" for r in rows)  # 4 configs of each of the 3 files
    logs = {p.name for p in (tmp_path / "d-2gpu").glob("worker-gpu*.log")}
    assert logs and all("-file" in name for name in logs)  # one queue: workers per GPU and file


def test_device_script_part_s_every_figure_in_one_run_with_stand_ins(tmp_path: Path) -> None:
    """bench/device/scale.sh PART=s as the coordinator runs it, with the stand-ins of tests/fake_ncu."""
    import tarfile

    env = {
        **os.environ,
        "PATH": f"{FAKE}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_GPUS": "2",
        "FAKE_NCU_REPORT": str(REPORT),
        "OUT": str(tmp_path),
        "PART": "s",
        "PROFILE_VARIANTS": "3",
        "SCALE_ARGS": f"--python {FAKE / 'fake_python'}",
        "WHEELS": str(tmp_path / "no-wheels"),  # the device's carried wheels (cp312) are not for this Python
    }
    for name in (
        "CUDA_VISIBLE_DEVICES",
        "FAKE_CHILD_MODES",
        "FAKE_NO_GPU",
        "FAKE_NOGPU_VISIBLE",
        "PYTHONPATH",
    ):
        env.pop(name, None)
    script = ROOT / "bench" / "device" / "scale.sh"
    proc = subprocess.run(
        ["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "bench rc=0" in proc.stdout, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "scale-s.json").read_text())
    steps = ["timing_1gpu", "timing_2gpu", "timing_1gpu_warm", "timing_2gpu_warm"]
    steps += ["profile3_2gpu", "profile3_1gpu", "timing_2gpu_fifo"]
    assert [k for k in results if isinstance(results[k], dict) and "wall_s" in results[k]] == steps
    assert results["skipped"] == []
    for step in steps:
        sweep, line = results[step], results[step]["timeline"]
        assert sweep["statuses"] == {"ok": sweep["jobs"]} and len(line["jobs"]) == sweep["jobs"]
        assert set(line["per_gpu"]) == {str(g) for g in range(sweep["gpus"])}
        assert line["setup_s"] >= 0 and line["closing_s"] >= 0
        timing = step.startswith("timing")
        assert sweep["bare_children"] == ("timing worker per GPU" if timing else "process per variant")
        assert all(bool(p["worker_start"]) == timing for p in line["per_gpu"].values())
    assert (
        results["timing_2gpu"]["schedule"] == "affinity" and results["timing_2gpu_fifo"]["schedule"] == "fifo"
    )
    assert results["timing_1gpu_warm"]["triton_cache"].startswith("warm")

    def first_files(step: str) -> list[str]:
        jobs = sorted(results[step]["timeline"]["jobs"], key=lambda j: j[2])
        return [next(j[1].split(":")[0] for j in jobs if j[0] == gpu) for gpu in ("0", "1")]

    assert len(set(first_files("timing_2gpu"))) == 2  # affinity: each GPU starts on a file of its own
    assert set(first_files("timing_2gpu_fifo")) == {"gemm_decode"}  # queue order: both on the first file
    for key in ("timing_speedup", "timing_warm_speedup", "profile_speedup_same_run", "timing_speedup_fifo"):
        assert f"{key}: " in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("timing agreement")  # the table comes last
    draft = (tmp_path / "README-draft.md").read_text()  # every figure from the JSON, ready to check in
    assert f"| **{results['timing_speedup']}** |" in draft
    assert f"| **{results['profile_speedup_same_run']}** |" in draft
    # five timeline lines, then three 2-GPU steps against their 1-GPU step (jobs phase and wall)
    assert draft.count("\n- timing_") == 5 + 3 and "- profile3_2gpu: setup" in draft
    assert draft.count(" vs timing_1gpu") == 3 and "- profile3_2gpu vs profile3_1gpu: jobs" in draft
    with tarfile.open(tmp_path / "s-runs.tgz") as tar:
        names = tar.getnames()
    assert any(n.endswith("manifest.json") for n in names) and not any(n.endswith(".ncu-rep") for n in names)
    assert any(n.startswith("ncu-advisor-timing-gpu") for n in names)  # the timing workers' logs
