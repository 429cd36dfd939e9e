"""`ncu-advisor compare`: verdicts, the noise test, exit codes and refusals.

Runs come from ``test_report_formats.example_run_pair`` (the real examples/runs/ baseline and improved runs
once committed, else runs built from the recorded H200 seed reports with DERIVED timings; see that module).
"""

# ruff: noqa: F811 - pytest fixtures imported from test_report_formats are redefined as parameters
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
from test_report_formats import build_seed_run, example_run_pair  # noqa: F401 - the shared run fixture
from typer.testing import CliRunner

from ncu_advisor import rundir
from ncu_advisor.analysis import compare
from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.cli import app

runner = CliRunner()


def medians(run: Path) -> pd.Series:
    return pd.read_csv(run / rundir.TIMINGS_CSV).groupby("variant")["median_ms"].median()


def test_judge_follows_the_documented_test() -> None:
    base = [10.0, 10.1, 9.9, 10.0, 10.2]
    spread = 1.4826 * statistics.median(abs(v - 10.0) for v in base)
    assert compare.robust_spread(base) == pytest.approx(spread)
    noisy_new = [v * 1.03 for v in base]
    change, noise, bar, verdict = compare.judge(base, noisy_new, threshold_pct=2.0)
    assert change == pytest.approx(0.03)
    assert noise == pytest.approx((spread**2 + (1.03 * spread) ** 2) ** 0.5 / 10.0)
    assert bar == pytest.approx(max(0.02, 3 * noise))
    assert verdict == ("slower" if 0.03 > bar else "same")
    # A wide spread hides the same 3%: the noise bar, not the threshold, decides.
    wide = [8.0, 12.0, 10.0, 9.0, 11.0]
    assert compare.judge(wide, [v * 1.03 for v in wide], 2.0)[3] == "same"
    assert compare.judge([10.0], [9.0], 2.0)[3] == "faster"
    assert compare.judge([10.0], [10.1], 2.0)[3] == "same"


def common_variants(base: Path, new: Path) -> tuple[list[str], list[str]]:
    """(variants in both runs' manifests, extra args: --force when the variant sets differ)."""
    names_base = list(rundir.read_manifest(base)["variants"])
    names_new = set(rundir.read_manifest(new)["variants"])
    common = [n for n in names_base if n in names_new]
    return common, ([] if set(names_base) == names_new else ["--force"])


def expected_verdicts(base: Path, new: Path, threshold_pct: float = 2.0) -> dict[str, tuple[float, str]]:
    """The documented noise test, recomputed with pandas from the two timings.csv files."""
    tb, tn = pd.read_csv(base / rundir.TIMINGS_CSV), pd.read_csv(new / rundir.TIMINGS_CSV)
    out = {}
    for name in set(tb["variant"]) & set(tn["variant"]):
        b = tb.loc[tb["variant"] == name, "median_ms"]
        n = tn.loc[tn["variant"] == name, "median_ms"]
        spread_b = 1.4826 * (b - b.median()).abs().median() if len(b) > 1 else 0.0
        spread_n = 1.4826 * (n - n.median()).abs().median() if len(n) > 1 else 0.0
        change = (n.median() - b.median()) / b.median()
        bar = max(threshold_pct / 100, 3 * (spread_b**2 + spread_n**2) ** 0.5 / b.median())
        out[name] = (change, "same" if abs(change) <= bar else ("slower" if change > 0 else "faster"))
    return out


def test_baseline_to_improved_shows_the_gain(example_run_pair: tuple[Path, Path, bool]) -> None:
    base, new, _ = example_run_pair
    common, force = common_variants(base, new)
    result = runner.invoke(app, ["compare", str(base), str(new), "--format", "json", *force])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    base_m, new_m = medians(base), medians(new)
    expected = expected_verdicts(base, new)
    assert [row["name"] for row in document["variants"] if row["name"] != "Model"] == common
    for row in document["variants"]:
        assert row["base_ms"] == pytest.approx(base_m[row["name"]])
        assert row["new_ms"] == pytest.approx(new_m[row["name"]])
        assert row["change"] == pytest.approx(expected[row["name"]][0])
        assert row["verdict"] == expected[row["name"]][1]
    assert any(row["verdict"] == "faster" for row in document["variants"])
    assert document["regressions"] == [] and document["exit_code"] == 0


def test_improved_to_baseline_exits_1(example_run_pair: tuple[Path, Path, bool]) -> None:
    base, new, _ = example_run_pair
    _, force = common_variants(new, base)
    result = runner.invoke(app, ["compare", str(new), str(base), *force])
    assert result.exit_code == 1
    slower = [
        n for n, (_, verdict) in expected_verdicts(new, base).items() if verdict == "slower" and n != "Model"
    ]
    assert slower
    for name in slower:
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert "slower" in line and "REGRESSION" in line
    assert "regression:" in result.stderr


def test_same_run_is_same_within_noise(example_run_pair: tuple[Path, Path, bool]) -> None:
    base = example_run_pair[0]
    result = runner.invoke(app, ["compare", str(base), str(base), "--format", "md"])
    assert result.exit_code == 0
    assert "| variant | base ms" in result.stdout and "**0 regression(s)**" in result.stdout
    assert "slower" not in result.stdout.replace("🔴 slower", "")


def test_correct_to_incorrect_is_a_regression(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    broken = build_seed_run(tmp_path, name="b", incorrect=("ModelNew",))
    result = runner.invoke(app, ["compare", str(base), str(broken)])
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("ModelNew "))
    assert "now incorrect" in line


def test_kernel_rows_pair_launches(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    data = analyze([base], rules=[])
    result = compare.compare_reports(data, data)
    table = rundir.load_run(base).table
    assert len(result.kernels) == len(table)
    assert all(k.verdict == "same" and k.change == 0 for k in result.kernels)


def test_different_gpu_or_clock_refused_unless_forced(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    other_gpu = build_seed_run(
        tmp_path, name="b", manifest_changes={"gpu": {"name": "NVIDIA H100 80GB HBM3"}}
    )
    result = runner.invoke(app, ["compare", str(base), str(other_gpu)])
    assert result.exit_code == 2 and "GPUs differ" in result.output and "--force" in result.output
    forced = runner.invoke(app, ["compare", str(base), str(other_gpu), "--force"])
    assert forced.exit_code == 0 and "GPUs differ" in forced.stdout
    other_clock = build_seed_run(
        tmp_path,
        name="c",
        manifest_changes={"options": {"clock_control": "base", "cache_control": "all", "reps": 5}},
    )
    result = runner.invoke(app, ["compare", str(base), str(other_clock)])
    assert result.exit_code == 2 and "clock control differs" in result.output


def test_missing_variant_named(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    fewer = build_seed_run(tmp_path, name="b")
    manifest = rundir.read_manifest(fewer)
    del manifest["variants"]["ModelNew_seed001"]
    rundir.write_manifest(fewer, manifest)
    table = pd.read_parquet(fewer / rundir.METRICS_PARQUET)
    table[table["variant"] != "ModelNew_seed001"].to_parquet(fewer / rundir.METRICS_PARQUET, index=False)
    timings = pd.read_csv(fewer / rundir.TIMINGS_CSV)
    timings[timings["variant"] != "ModelNew_seed001"].to_csv(fewer / rundir.TIMINGS_CSV, index=False)
    # what matches is compared, the rest listed (issue 11); the same the other way round
    result = runner.invoke(app, ["compare", str(base), str(fewer)])
    assert result.exit_code == 0, result.output
    assert "only in BASE (not compared): ModelNew_seed001" in result.stdout
    assert any(line.startswith("ModelNew_seed000 ") for line in result.stdout.splitlines())
    back = runner.invoke(app, ["compare", str(fewer), str(base), "--format", "json"])
    document = json.loads(back.stdout)
    assert back.exit_code == 0 and document["only_in_new"] == ["ModelNew_seed001"]
    assert "ModelNew_seed001" not in {v["name"] for v in document["variants"]}


def test_bad_run_dirs_exit_2_without_output(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    incomplete = _interrupted(build_seed_run(tmp_path, name="b"))
    out = tmp_path / "cmp.md"
    result = runner.invoke(app, ["compare", str(base), str(incomplete), "--format", "md", "-o", str(out)])
    assert result.exit_code == 2 and "incomplete run" in result.output and not out.exists()
    result = runner.invoke(app, ["compare", str(base), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such run directory" in result.output
    newer = build_seed_run(tmp_path, name="c", manifest_changes={"format_version": rundir.FORMAT_VERSION + 1})
    result = runner.invoke(app, ["compare", str(base), str(newer)])
    assert result.exit_code == 2 and "newer" in result.output


def test_slower_reference_is_not_a_regression(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a", reference_ms=5.0)
    slow_reference = build_seed_run(tmp_path, name="b", reference_ms=10.0)
    result = runner.invoke(app, ["compare", str(base), str(slow_reference), "--format", "json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    model = next(v for v in document["variants"] if v["name"] == "Model")
    assert model["verdict"] == "slower" and model["regression"] is False
    assert document["regressions"] == []


def _interrupted(run: Path) -> Path:
    """The run as an interrupted profile leaves it: a variant still pending, tables not written."""
    manifest = rundir.read_manifest(run)
    first = next(iter(manifest["variants"]))
    manifest["variants"][first]["status"] = "pending"
    manifest["complete"] = False
    rundir.write_manifest(run, manifest)
    return run


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1.5, float("inf")])
def test_unusable_timings_exit_2_naming_the_file(tmp_path: Path, bad: float) -> None:
    base = build_seed_run(tmp_path, name="a")
    damaged = build_seed_run(tmp_path, name="b")
    timings = pd.read_csv(damaged / rundir.TIMINGS_CSV)
    timings.loc[timings["variant"] == "ModelNew_seed000", "median_ms"] = bad
    timings.to_csv(damaged / rundir.TIMINGS_CSV, index=False)
    for pair in ([base, damaged], [damaged, base]):
        result = runner.invoke(app, ["compare", *map(str, pair)])
        assert result.exit_code == 2, result.output
        assert "faster" not in result.output
        assert str(damaged / rundir.TIMINGS_CSV) in " ".join(result.output.split()).replace("\n", "")


def test_runs_with_no_variant_in_common_exit_2(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    other = build_seed_run(tmp_path, name="b")
    manifest = rundir.read_manifest(other)
    manifest["variants"] = {f"{k}_renamed": v for k, v in manifest["variants"].items()}
    manifest["reference"]["status"] = "skipped"
    rundir.write_manifest(other, manifest)
    table = pd.read_parquet(other / rundir.METRICS_PARQUET)
    table = table[table["variant"] != "Model"]
    table["variant"] = table["variant"] + "_renamed"
    table.to_parquet(other / rundir.METRICS_PARQUET, index=False)
    timings = pd.read_csv(other / rundir.TIMINGS_CSV)  # a run of other variants times those variants
    timings = timings[timings["variant"] != "Model"]
    timings["variant"] = timings["variant"] + "_renamed"
    timings.to_csv(other / rundir.TIMINGS_CSV, index=False)
    result = runner.invoke(app, ["compare", str(base), str(other)])
    assert result.exit_code == 2 and "no variant in common" in result.output


def test_findings_are_the_same_as_recommend_and_new_ones_gate(tmp_path: Path) -> None:
    base = build_seed_run(tmp_path, name="a")
    same = json.loads(runner.invoke(app, ["compare", str(base), str(base), "--format", "json"]).stdout)
    assert same["findings_added"] == [] and same["findings_resolved"] == [] and same["findings"]
    # with no rule in BASE every finding of NEW is new: --fail-on info gates them, never does not
    data = analyze([base])
    bare = analyze([base], rules=[])
    gated = compare.compare_reports(bare, data, fail_on="info")
    assert len(gated.findings_added) == len(data.findings)  # library ones count only with --all-kernels
    assert gated.exit_code == 1 and gated.failing_findings
    assert compare.compare_reports(bare, data, fail_on="never").exit_code == 0


def test_compare_warns_when_the_kernel_files_differ() -> None:
    """examples/runs/baseline and improved copy different kernel.py files of one problem: say so (text,
    JSON); softmax and spill are different kernel sources: said first and compared by name, refused with
    --require-same-kernel (tests/test_red_team4_cli.py)."""
    runs = Path(__file__).resolve().parents[1] / "examples" / "runs"
    text = runner.invoke(app, ["compare", str(runs / "baseline"), str(runs / "improved")])
    assert "warning: the kernel files differ" in text.output
    same = runner.invoke(app, ["compare", str(runs / "softmax"), str(runs / "softmax"), "--format", "json"])
    edited = runner.invoke(
        app, ["compare", str(runs / "baseline"), str(runs / "improved"), "--format", "json"]
    )
    assert json.loads(same.stdout)["kernel_files_differ"] is False
    assert json.loads(edited.stdout)["kernel_files_differ"] is True
    refused = runner.invoke(
        app, ["compare", str(runs / "softmax"), str(runs / "spill"), "--require-same-kernel"]
    )
    assert refused.exit_code == 2 and "different kernel sources" in refused.output
    other = runner.invoke(
        app,
        [
            "compare",
            str(runs / "softmax"),
            str(runs / "spill"),
            "--format",
            "json",
        ],
    )
    assert json.loads(other.stdout)["kernel_files_differ"] is True
