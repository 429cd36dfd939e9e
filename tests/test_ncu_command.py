"""The ncu runner's pieces: the exact argv, version checks, log reading (on recorded ncu outputs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ncu_advisor.collect.profile import ncu as ncu_module
from ncu_advisor.collect.profile.runner import ProfileOptions, plan_commands
from ncu_advisor.collect.profile.variants import list_variants
from ncu_advisor.errors import EnvironmentNotReady

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "tests" / "fixtures" / "ncu-logs"
FUSED = ROOT / "kernels" / "fused.py"


def test_build_ncu_command_exact_argv() -> None:
    argv = ncu_module.build_ncu_command(
        "/usr/local/cuda/bin/ncu",
        report_base=Path("/r/variants/V/profile"),
        target=["python3", "-m", "ncu_advisor.collect.profile.child", "k.py", "V", "--mode", "ncu"],
        metrics=["a__x.sum", "b__y.pct"],
        clock_control="base",
        cache_control="none",
    )
    assert argv == [
        "/usr/local/cuda/bin/ncu",
        "--clock-control",
        "base",
        "--cache-control",
        "none",
        "--nvtx",
        "--nvtx-include",
        "ncu_advisor/",
        "--metrics",
        "a__x.sum,b__y.pct",
        "--target-processes",
        "all",
        "-o",
        "/r/variants/V/profile",
        "-f",
        "python3",
        "-m",
        "ncu_advisor.collect.profile.child",
        "k.py",
        "V",
        "--mode",
        "ncu",
    ]


def test_build_ncu_command_rejects_unknown_controls() -> None:
    with pytest.raises(ValueError):
        ncu_module.build_ncu_command("ncu", report_base=Path("p"), target=[], metrics=[], clock_control="max")
    with pytest.raises(ValueError):
        ncu_module.build_ncu_command(
            "ncu", report_base=Path("p"), target=[], metrics=[], cache_control="some"
        )


def test_plan_defaults_and_reference_not_profiled(tmp_path: Path) -> None:
    info = list_variants(FUSED)
    options = ProfileOptions(python="py", reps=3, rtol=1e-3)
    plan = plan_commands(FUSED, list(info.variants[:1]), options, tmp_path, "ncu", ["m__a.sum"])
    name = info.variants[0].name
    assert list(plan) == ["Model", name]
    assert list(plan["Model"]) == ["bench"]
    assert "--reference-only" in plan["Model"]["bench"]
    bench, ncu = plan[name]["bench"], plan[name]["ncu"]
    assert bench[:5] == ["py", "-m", "ncu_advisor.collect.profile.child", str(FUSED.resolve()), name]
    assert bench[bench.index("--mode") + 1] == "bench"
    assert bench[bench.index("--reps") + 1] == "3" and bench[bench.index("--rtol") + 1] == "0.001"
    assert ncu[:9] == [
        "ncu",
        "--clock-control",
        "none",
        "--cache-control",
        "all",
        "--nvtx",
        "--nvtx-include",
        "ncu_advisor/",
        "--metrics",
    ]
    assert ncu[ncu.index("-o") + 1] == str(tmp_path / "variants" / name / "profile")
    target = ncu[ncu.index("-f") + 1 :]
    assert target[target.index("--mode") + 1] == "ncu"
    with_ref = plan_commands(
        FUSED, [], ProfileOptions(python="py", profile_reference=True), tmp_path, "ncu", []
    )
    assert "ncu" in with_ref["Model"]


def test_metric_set_has_core_metrics_and_no_non_ncu_columns() -> None:
    metrics = ncu_module.metric_set()
    assert "profiler__replayer_passes" in metrics
    assert "launch__registers_per_thread" in metrics
    assert all("__" in m for m in metrics)
    assert len(metrics) == len(set(metrics))
    assert not ncu_module.is_ncu_metric("n_spills")


def test_parse_version_of_recorded_output() -> None:
    text = (LOGS / "ncu_version.txt").read_text()
    assert ncu_module.parse_ncu_version(text) == (2025, 3, 1, 0)
    assert ncu_module.parse_ncu_version("no version here") is None


def _fake_run(stdout: str, rc: int = 0):  # type: ignore[no-untyped-def]
    def run(argv, **kwargs):  # type: ignore[no-untyped-def]
        assert argv[1:] == ["--version"]
        return subprocess.CompletedProcess(argv, rc, stdout=stdout, stderr="")

    return run


def test_ncu_version_accepts_recorded_and_rejects_old(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (LOGS / "ncu_version.txt").read_text()
    monkeypatch.setattr(subprocess, "run", _fake_run(text))
    version, line = ncu_module.ncu_version(Path("/x/ncu"))
    assert version[:2] == (2025, 3) and line.startswith("2025.3.1.0")
    monkeypatch.setattr(subprocess, "run", _fake_run(text.replace("2025.3.1.0", "2022.4.1.0")))
    with pytest.raises(EnvironmentNotReady) as err:
        ncu_module.ncu_version(Path("/x/ncu"))
    assert "2022.4.1.0 is too old" in err.value.message and err.value.exit_code == 3
    monkeypatch.setattr(subprocess, "run", _fake_run("garbage", rc=1))
    with pytest.raises(EnvironmentNotReady, match="printed no version"):
        ncu_module.ncu_version(Path("/x/ncu"))


def test_find_ncu_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ncu_module, "ncu_fallback_locations", lambda: [])
    with pytest.raises(EnvironmentNotReady) as err:
        ncu_module.find_ncu(path_env=str(tmp_path))
    assert "not found" in err.value.message and err.value.exit_code == 3


def test_parse_recorded_logs() -> None:
    crash = ncu_module.parse_ncu_log((LOGS / "fail_crash.log").read_text())
    assert "LaunchFailed" in crash.errors and crash.app_exit_code == 9
    assert crash.error_message().startswith("LaunchFailed")
    none = ncu_module.parse_ncu_log((LOGS / "fail_no_kernels.log").read_text())
    assert none.no_kernels and not none.errors
    full_text = (LOGS / "ok_seed000_full.log").read_text()
    full = ncu_module.parse_ncu_log(full_text)
    assert not full.errors and not full.no_kernels
    assert len(full.passes) == full_text.count('==PROF== Profiling "')
    assert {p for _, p in full.passes} == {38}
    small = ncu_module.parse_ncu_log((LOGS / "ok_seed001_small.log").read_text())
    assert small.passes == [("conv2d_scale_min_kernel", 10)]
    perm = ncu_module.parse_ncu_log("==ERROR== ERR_NVGPUCTRPERM - The user does not have permission")
    assert perm.permission_denied and "ERR_NVGPUCTRPERM" in perm.error_message()


def test_set_section_metrics_pass_through_in_addition_to_the_rules(tmp_path: Path) -> None:
    info = list_variants(FUSED)
    rules_metrics = ncu_module.metric_set()
    options = ProfileOptions(
        python="py",
        ncu_set="full",
        sections=("MemoryWorkloadAnalysis_Chart", "SourceCounters"),
        extra_metrics=("smsp__inst_executed.sum", rules_metrics[0]),
    )
    metrics = options.resolved_metrics()
    assert metrics[: len(rules_metrics)] == rules_metrics  # the rules' metrics are all still collected
    assert metrics[len(rules_metrics) :] == ["smsp__inst_executed.sum"]  # added once, after them
    plan = plan_commands(FUSED, list(info.variants[:1]), options, tmp_path, "ncu", metrics)
    ncu = plan[info.variants[0].name]["ncu"]
    assert ncu[: ncu.index("--target-processes")] == [
        "ncu",
        "--clock-control",
        "none",
        "--cache-control",
        "all",
        "--nvtx",
        "--nvtx-include",
        "ncu_advisor/",
        "--set",
        "full",
        "--section",
        "MemoryWorkloadAnalysis_Chart",
        "--section",
        "SourceCounters",
        "--metrics",
        ",".join(metrics),
    ]
    default = plan_commands(
        FUSED, list(info.variants[:1]), ProfileOptions(python="py"), tmp_path, "ncu", ["m__a"]
    )
    argv = default[info.variants[0].name]["ncu"]
    assert "--set" not in argv and "--section" not in argv
    bench = default[info.variants[0].name]["bench"]
    assert "--rtol" not in bench  # no --rtol: the child applies a tolerance per output dtype


def test_set_and_metric_names_are_checked() -> None:
    with pytest.raises(ValueError, match="not an ncu set"):
        ncu_module.build_ncu_command("ncu", report_base=Path("p"), target=[], metrics=[], ncu_set="full; rm")
    assert ncu_module.split_metric_list("a__x.sum, ,b__y,a__x.sum") == ["a__x.sum", "b__y"]
    with pytest.raises(ValueError, match="spaces"):
        ncu_module.split_metric_list("a__x sum")


def test_cli_dry_run_prints_the_pass_through_argv(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ncu_advisor.cli import app

    result = CliRunner().invoke(
        app,
        [
            "profile",
            str(FUSED),
            "--dry-run",
            "--set",
            "detailed",
            "--section",
            "Occupancy",
            "--metrics",
            "smsp__inst_executed.sum",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "--set detailed --section Occupancy --metrics" in result.output
    assert "smsp__inst_executed.sum" in result.output
    bad = CliRunner().invoke(app, ["profile", str(FUSED), "--dry-run", "--section", "a b"])
    assert bad.exit_code == 2 and "not an ncu section" in bad.output
