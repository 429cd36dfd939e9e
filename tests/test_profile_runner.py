"""profile end to end on CPU: stand-in ncu/nvidia-smi (tests/fake_ncu, text from real ncu logs) and a
stand-in child interpreter; every failure path, the manifest, the run directory and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor import rundir
from ncu_advisor.cli import app
from ncu_advisor.collect.profile.runner import ProfileOptions, profile_file
from ncu_advisor.collect.profile.variants import list_variants
from ncu_advisor.errors import EnvironmentNotReady, RunError

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_ncu"
FAKE_PYTHON = str(FAKE / "fake_python")
FAULTS = ROOT / "tests" / "fixtures" / "kernels" / "faults.py"
REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stand-in executables are POSIX scripts")


@pytest.fixture()
def fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH with the stand-in ncu and nvidia-smi first; returns the argv log of the stand-in ncu."""
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_NCU_REPORT", str(REPORT))
    argv_log = tmp_path / "ncu_argv.jsonl"
    monkeypatch.setenv("FAKE_NCU_ARGV_LOG", str(argv_log))
    monkeypatch.setenv("FAKE_HANG_S", "20")
    for name in ("FAKE_NCU_MODES", "FAKE_CHILD_MODES", "FAKE_NO_GPU", "FAKE_NCU_VERSION", "FAKE_NCU_MODE"):
        monkeypatch.delenv(name, raising=False)
    return argv_log


def _options(tmp_path: Path, **kw: object) -> ProfileOptions:
    return ProfileOptions(
        python=FAKE_PYTHON, runs_root=tmp_path / "runs", timeout_s=kw.pop("timeout_s", 10), reps=3, **kw
    )  # type: ignore[arg-type]


def _variants(*names: str):  # type: ignore[no-untyped-def]
    info = list_variants(FAULTS)
    return [v for v in info.variants if v.name in names]


def test_all_faults_recorded_others_still_run(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "FAKE_CHILD_MODES",
        "ModelNew_wrong=incorrect,ModelNew_raises=raise,ModelNew_crash=crash,"
        "ModelNew_hang=hang,ModelNew_after=segv",
    )
    names = [
        "ModelNew_good",
        "ModelNew_wrong",
        "ModelNew_raises",
        "ModelNew_crash",
        "ModelNew_hang",
        "ModelNew_after",
    ]
    steps: list[tuple[str, str]] = []
    start = time.monotonic()
    run = profile_file(
        FAULTS,
        _variants(*names),
        _options(tmp_path, timeout_s=3),
        progress=lambda name, step: steps.append((name, step)),
    )
    assert time.monotonic() - start < 20  # the hang was cut at the 3 s timeout
    status = {o.name: o.status for o in run.outcomes}
    assert status == {
        "ModelNew_good": "ok",
        "ModelNew_wrong": "incorrect",
        "ModelNew_raises": "failed",
        "ModelNew_crash": "crashed",
        "ModelNew_hang": "timeout",
        "ModelNew_after": "crashed",
    }
    manifest = rundir.load_run(run.run_dir).manifest
    variants = manifest["variants"]
    assert "deliberate failure" in variants["ModelNew_raises"]["reason"]
    assert "illegal memory access" in variants["ModelNew_crash"]["reason"]
    assert (
        "3 s timeout" in variants["ModelNew_hang"]["reason"]
        and "step: check" in variants["ModelNew_hang"]["reason"]
    )
    assert f"signal {signal.SIGSEGV}" in variants["ModelNew_after"]["reason"]
    assert "relative L2 error" in variants["ModelNew_wrong"]["reason"]
    # incorrect variants are profiled; failed ones are not
    profiled = {
        json.loads(line)[json.loads(line).index("-f") + 5]
        for line in fake_env.read_text().splitlines()
        if "-f" in json.loads(line)
    }
    assert profiled == {"ModelNew_good", "ModelNew_wrong"}
    for name in ("ModelNew_good", "ModelNew_wrong"):
        assert (run.run_dir / "variants" / name / "profile.ncu-rep").is_file()
        assert "==PROF== Report" in (run.run_dir / "variants" / name / "ncu.log").read_text()
    assert not (run.run_dir / "variants" / "ModelNew_raises" / "profile.ncu-rep").exists()
    assert ("ModelNew_good", "profile") in steps and ("ModelNew_good", "time") in steps
    assert ("ModelNew_hang", "check") in steps and ("ModelNew_hang", "time") not in steps


def test_manifest_contents_and_tables(fake_env: Path, tmp_path: Path) -> None:
    run = profile_file(FAULTS, _variants("ModelNew_good"), _options(tmp_path))
    loaded = rundir.load_run(run.run_dir)
    m = loaded.manifest
    assert m["format_version"] == 1 and m["complete"] is True
    assert (
        m["gpu"]["name"] == "NVIDIA H200"
        and m["gpu"]["driver"] == "580.159.04"
        and m["gpu"]["sm_count"] == 132
    )
    assert m["versions"]["ncu"].startswith("2025.3.1.0") and m["versions"]["torch"] == "2.11.0+cu130"
    import hashlib

    assert m["kernel_file"]["sha256"] == hashlib.sha256(FAULTS.read_bytes()).hexdigest()
    assert loaded.kernel_file is not None and loaded.kernel_file.read_bytes() == FAULTS.read_bytes()
    assert m["options"]["clock_control"] == "none" and m["options"]["cache_control"] == "all"
    assert m["options"]["reps"] == 3 and "launch__registers_per_thread" in m["options"]["metrics"]
    ncu_argv = m["commands"]["ModelNew_good"]["ncu"]
    assert ncu_argv[ncu_argv.index("--metrics") + 1] == ",".join(m["options"]["metrics"])
    assert m["reference"]["status"] == "ok" and "ncu" not in m["commands"]["Model"]
    assert m["variants"]["ModelNew_good"]["ncu_passes"] == 10
    timings = loaded.timings
    assert sorted(timings["variant"].unique()) == ["Model", "ModelNew_good"]
    assert len(timings[timings["variant"] == "ModelNew_good"]) == 3
    # the tidy table: the fake ncu copied the seed-001 report; rows read through ncu_advisor.ingest.readers
    report = pytest.importorskip("ncu_advisor.ingest.readers")
    expected = report.read_report(REPORT, variant="ModelNew_good")
    table = loaded.table
    assert len(table) == len(expected) and set(table["variant"]) == {"ModelNew_good"}
    assert table["launch__registers_per_thread"].tolist() == expected["launch__registers_per_thread"].tolist()
    conv = table[table["kernel"] == "conv2d_scale_min_kernel"]
    assert len(conv) == 1 and conv["n_regs"].iloc[0] == 187  # from the child's result.json
    assert (run.run_dir / rundir.METRICS_CSV).is_file()


def test_ncu_failures(fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NCU_MODES", "ModelNew_good=no_kernels,ModelNew_wrong=crash,ModelNew_after=hang")
    run = profile_file(
        FAULTS,
        _variants("ModelNew_good", "ModelNew_wrong", "ModelNew_after"),
        _options(tmp_path, timeout_s=3),
    )
    by_name = {o.name: o for o in run.outcomes}
    assert by_name["ModelNew_good"].status == "failed"
    assert "profiled no kernels" in (by_name["ModelNew_good"].reason or "")
    assert by_name["ModelNew_wrong"].status == "crashed"
    assert "LaunchFailed" in (by_name["ModelNew_wrong"].reason or "")
    assert by_name["ModelNew_after"].status == "timeout" and "ncu ran past" in (
        by_name["ModelNew_after"].reason or ""
    )
    assert not run.all_ok


def test_permission_denied_is_exit_3_and_run_stays_incomplete(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NCU_MODE", "perm")
    with pytest.raises(EnvironmentNotReady) as err:
        profile_file(FAULTS, _variants("ModelNew_good", "ModelNew_wrong"), _options(tmp_path))
    assert "ERR_NVGPUCTRPERM" in err.value.message and err.value.exit_code == 3
    assert "NVreg_RestrictProfilingToAdminUsers" in (err.value.hint or "")
    (run_dir,) = (tmp_path / "runs").iterdir()
    with pytest.raises(RunError, match="ModelNew_good, ModelNew_wrong"):
        rundir.load_run(run_dir)


def test_no_gpu_in_child_is_exit_3(fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CHILD_MODES", "Model=nogpu")
    with pytest.raises(EnvironmentNotReady, match="torch.cuda.is_available"):
        profile_file(FAULTS, _variants("ModelNew_good"), _options(tmp_path))


def test_interrupted_run_says_what_is_missing(fake_env: Path, tmp_path: Path) -> None:
    env = dict(os.environ, FAKE_CHILD_MODES="ModelNew_wrong=hang", FAKE_HANG_S="60")
    runs = tmp_path / "runs"
    code = "from ncu_advisor.cli import main; main()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "profile",
            str(FAULTS),
            "--python",
            FAKE_PYTHON,
            "--runs-dir",
            str(runs),
            "--variant",
            "ModelNew_good",
            "--variant",
            "ModelNew_wrong",
            "--variant",
            "ModelNew_after",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        # a runner started in the background by a shell without job control ignores SIGINT, and the child
        # would inherit that: Ctrl-C is what this test sends
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    manifest: dict = {}
    while time.monotonic() < deadline:
        found = list(runs.glob("*/manifest.json")) if runs.is_dir() else []
        if found:
            manifest = json.loads(found[0].read_text())
            if manifest["variants"]["ModelNew_good"]["status"] != "pending":
                break
        time.sleep(0.2)
    time.sleep(1.0)  # variant 2 is now hanging in its child
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (run_dir,) = runs.iterdir()
    with pytest.raises(RunError) as caught:
        rundir.load_run(run_dir)
    assert "variants not profiled: ModelNew_wrong, ModelNew_after" in caught.value.message
    partial = rundir.load_run(run_dir, allow_incomplete=True)
    assert partial.manifest["variants"]["ModelNew_good"]["status"] == "ok"
    assert (run_dir / "variants" / "ModelNew_good" / "profile.ncu-rep").is_file()
    assert (run_dir / "variants" / "ModelNew_good" / "result.json").is_file()


# ---------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def test_cli_profile_summary_and_exit_1(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHILD_MODES", "ModelNew_raises=raise")
    monkeypatch.setenv("COLUMNS", "250")
    result = runner.invoke(
        app,
        [
            "profile",
            str(FAULTS),
            "--python",
            FAKE_PYTHON,
            "--runs-dir",
            str(tmp_path / "r"),
            "--variant",
            "ModelNew_good",
            "--variant",
            "ModelNew_raises",
            "--reps",
            "2",
        ],
    )
    assert result.exit_code == 1, result.output
    (run_dir,) = (tmp_path / "r").iterdir()
    assert f"run: {run_dir}" in result.stdout
    good = next(line for line in result.stdout.splitlines() if "ModelNew_good" in line)
    assert "ok" in good and "yes" in good and "2.00x" in good  # fake: Model 2.0 ms, variant 1.0 ms
    assert "ModelNew_raises: failed: RuntimeError: deliberate failure" in result.stdout


def test_cli_all_ok_exit_0(fake_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "profile",
            str(FAULTS),
            "--python",
            FAKE_PYTHON,
            "--runs-dir",
            str(tmp_path / "r"),
            "--variant",
            "ModelNew_good",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "run: " in result.stdout


def test_cli_no_gpu_no_ncu_old_ncu(fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["profile", str(FAULTS), "--python", FAKE_PYTHON, "--runs-dir", str(tmp_path / "r")]
    monkeypatch.setenv("FAKE_NO_GPU", "1")
    result = runner.invoke(app, args)
    assert result.exit_code == 3 and "no NVIDIA GPU visible" in result.output
    monkeypatch.delenv("FAKE_NO_GPU")
    monkeypatch.setenv("FAKE_NCU_VERSION", "2022.4.1.0")
    result = runner.invoke(app, args)
    assert result.exit_code == 3 and "2022.4.1.0 is too old" in result.output
    monkeypatch.setenv("PATH", str(tmp_path))  # neither ncu nor nvidia-smi
    monkeypatch.setattr("ncu_advisor.collect.profile.ncu.ncu_fallback_locations", lambda: [])
    result = runner.invoke(app, args)
    assert result.exit_code == 3 and "ncu (Nsight Compute) not found" in result.output
    assert not (tmp_path / "r").exists()


def test_cli_list_and_bad_input() -> None:
    result = runner.invoke(app, ["profile", str(FAULTS), "--list"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed == [v.name for v in list_variants(FAULTS).variants]
    kernels = ROOT / "tests" / "fixtures" / "kernels"
    for path, text in [
        (kernels / "syntax_error.py", "syntax_error.py:4"),
        (kernels / "no_variants.py", "no variants"),
        (kernels / "missing.py", "no such kernel file"),
    ]:
        result = runner.invoke(app, ["profile", str(path), "--list"])
        assert result.exit_code == 2 and text in result.output
    result = runner.invoke(app, ["profile", str(FAULTS), "--variant", "Nope", "--dry-run"])
    assert result.exit_code == 2 and "unknown variant 'Nope'" in result.output
    result = runner.invoke(app, ["profile", str(FAULTS), "--clock-control", "max", "--dry-run"])
    assert result.exit_code == 2 and "--clock-control must be one of none, base" in result.output


def test_cli_dry_run_prints_commands_runs_nothing(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "profile",
            str(FAULTS),
            "--dry-run",
            "--variant",
            "ModelNew_good",
            "--runs-dir",
            str(tmp_path / "r"),
            "--clock-control",
            "base",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    ncu_line = lines[lines.index("# ModelNew_good: ncu") + 1]
    assert "--clock-control base --cache-control all --nvtx --nvtx-include ncu_advisor/" in ncu_line
    assert "ncu_advisor.collect.profile.child" in ncu_line and "--mode ncu" in ncu_line
    assert "# Model: bench" in lines and "# Model: ncu" not in lines
    assert not (tmp_path / "r").exists()


def test_cli_dry_run_expand_autotune_pins_configs(tmp_path: Path) -> None:
    source = pytest.importorskip("ncu_advisor.kernelsrc.facts")
    (kernel,) = [k for k in source.analyze_file(FAULTS).kernels if k.autotune_configs]
    result = runner.invoke(
        app,
        [
            "profile",
            str(FAULTS),
            "--dry-run",
            "--expand-autotune",
            "--runs-dir",
            str(tmp_path / "r"),
            "--variant",
            "ModelNew_tuned@cfg1",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    bench = lines[lines.index("# ModelNew_tuned@cfg1: bench") + 1]
    ncu = lines[lines.index("# ModelNew_tuned@cfg1: ncu") + 1]
    pin = f"ModelNew_tuned --autotune-kernel {kernel.name} --autotune-config 1"
    assert pin in bench and pin in ncu
    assert "--autotune-from" in ncu and "ModelNew_tuned@cfg1/result.json" in ncu
    assert not (tmp_path / "r").exists()


# --- timeouts: a partial result.json must not turn a hang into a failure -----------------------------------
from ncu_advisor.collect.profile.process import ProcessResult as _ProcessResult  # noqa: E402
from ncu_advisor.collect.profile.runner import VariantOutcome as _VariantOutcome  # noqa: E402
from ncu_advisor.collect.profile.runner import judge_bench as _judge_bench  # noqa: E402


@pytest.mark.parametrize(
    ("partial", "status", "needle"),
    [
        ({"status": "running", "parameters": "by-name"}, "timeout", "timeout"),  # hung mid-run (H200)
        ({"status": "failed", "reason": "RuntimeError: boom"}, "failed", "then hung on exit"),
        ({"status": "crashed", "reason": "AcceleratorError: illegal"}, "crashed", "then hung on exit"),
        (None, "timeout", "timeout"),
    ],
)
def test_a_timed_out_child_is_judged_by_what_it_recorded(tmp_path, partial, status, needle) -> None:
    outcome = _VariantOutcome(name="ModelNew_hang")
    process = _ProcessResult(returncode=None, timed_out=True, elapsed_s=61.0, last_step="time")
    _judge_bench(process, partial, tmp_path / "child.log", 60.0, outcome)
    assert outcome.status == status
    assert needle in (outcome.reason or "")


def test_cli_a_report_unreadable_when_the_tables_are_built_is_exit_1(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ncu wrote a report the reader cannot read (cut): the variant ran, but finalize marks it failed in
    # the manifest; profile said exit 0 from its in-memory results (red team 4 re-check)
    import gzip

    cut = tmp_path / "cut.ncu-rep"
    data = gzip.decompress(REPORT.read_bytes())
    cut.write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("FAKE_NCU_REPORT", str(cut))
    result = runner.invoke(
        app,
        ["profile", str(FAULTS), "--python", FAKE_PYTHON, "--runs-dir", str(tmp_path / "r"),
         "--variant", "ModelNew_good"],
    )
    assert result.exit_code == 1, result.output
    assert "ModelNew_good: failed: its report is unreadable" in result.output
    run = next((tmp_path / "r").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["variants"]["ModelNew_good"]["status"] == "failed"
