"""`ncu-advisor report` on a tune run: the real H200 tune of the matmul zoo kernel (examples/tune/matmul).

That run (ncu-backed recommendations, --budget 5, --write) went 16x16x16 w1 s1 -> 64x64x32 w4 s3,
3.98 ms -> 0.46 ms; its written class was profiled with --profile-reference into examples/runs/matmul_tuned.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ncu_advisor.analysis.trajectory import FORMAT_VERSION, KIND, read_trajectory
from ncu_advisor.render.tune_report import render_tune

ROOT = Path(__file__).resolve().parent.parent
TUNE_RUN = ROOT / "examples" / "tune" / "matmul"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ncu_advisor", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def trajectory():
    return read_trajectory(TUNE_RUN)


def test_markdown_tells_the_story(trajectory) -> None:
    text = render_tune("md", trajectory, TUNE_RUN)
    assert text.startswith("# ncu-advisor tune: ModelNew_tile16_w1_s1 / matmul_bias_gelu_kernel")
    assert "NVIDIA H200" in text
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == len(trajectory.trials) == 5
    assert [r.split("|")[3].strip() for r in rows] == ["start", "NA311", "NA313", "NA102", "NA312"]
    assert "**8.62x** vs start" in text
    assert "config = dict(BLOCK_K=32, BLOCK_M=64, BLOCK_N=64, num_warps=4, num_stages=3)" in text
    # each kept trial lists what it moved, from the ncu profiles of the trial
    assert "`gpu__time_duration.sum` 3.97 ms → 1.16 ms" in text  # ns in the profile, with its unit


def test_html_embeds_the_time_per_trial_plot(trajectory) -> None:
    page = render_tune("html", trajectory, TUNE_RUN)
    assert page.startswith("<!DOCTYPE html>")
    svg = re.search(r'<figure id="tune-trials">(<svg .*?</svg>)\s*</figure>', page, re.S)
    assert svg, "the trajectory plot is inline"
    bars = re.findall(r'<rect [^>]*height="([\d.]+)" fill="(#[0-9a-f]{6})"><title>#', svg.group(1))
    assert len(bars) == 5
    # the tallest bar is trial 3 (6.95 ms, reverted: grey); the start is blue and the kept ones green
    heights = [float(h) for h, _ in bars]
    assert heights.index(max(heights)) == 3
    assert [c for _, c in bars] == ["#4e79a7", "#59a14f", "#59a14f", "#bab0ac", "#59a14f"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<table>" in page and "NA311" in page


def test_json_and_csv(trajectory) -> None:
    data = json.loads(render_tune("json", trajectory))
    assert data["kind"] == KIND and data["format_version"] == FORMAT_VERSION
    assert data["speedup_vs_start"] == pytest.approx(3.9795 / 0.4616, rel=1e-3)
    assert len(data["summary"]) == 5 and data["paste"].startswith("config = dict(")
    rows = list(csv.DictReader(io.StringIO(render_tune("csv", trajectory))))
    assert [r["verdict"] for r in rows] == ["start", "kept", "kept", "reverted", "kept"]
    assert float(rows[4]["median_ms"]) == pytest.approx(0.4616, rel=1e-3)


def test_cli_report_on_a_tune_run(tmp_path: Path) -> None:
    out = tmp_path / "tune.html"
    done = cli("report", str(TUNE_RUN), "--format", "html", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "tune run, 5 trials" in done.stderr  # the status line; stdout holds only documents
    assert '<figure id="tune-trials">' in out.read_text()
    # the tune.json file itself is accepted too
    done = cli("report", str(TUNE_RUN / "tune.json"))
    assert done.returncode == 0 and "## Trials" in done.stdout


def test_cli_report_on_a_tune_run_refuses_finding_formats() -> None:
    done = cli("report", str(TUNE_RUN), "--format", "sarif")
    assert done.returncode == 2
    assert "a tune run has none" in done.stderr and str(TUNE_RUN) in done.stderr
    done = cli("report", str(TUNE_RUN), "--fail-on", "warning")
    assert done.returncode == 2 and "--fail-on applies to profile runs" in done.stderr


def test_the_written_variant_was_profiled_with_the_reference() -> None:
    # The GPU run that exercised --profile-reference and a tune --write class (examples/runs/matmul_tuned).
    done = cli("report", str(ROOT / "examples" / "runs" / "matmul_tuned"), "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    names = [v["name"] for v in data["variants"]]
    assert names == ["Model", "ModelNew_tile16_w1_s1_tuned"]


def test_paste_uses_the_recorded_autotune_key(trajectory) -> None:
    # tune records the pin method, autotune key and launch line: the report pastes what tune printed.
    import dataclasses

    autotuned = dataclasses.replace(
        trajectory, options={**trajectory.options, "method": "autotune-configs", "autotune_key": ["M", "N"]}
    )
    text = render_tune("md", autotuned)
    assert "@triton.autotune(  # matmul_bias_gelu_kernel" in text and "key=['M', 'N']," in text
    launched = dataclasses.replace(
        trajectory, options={**trajectory.options, "method": "launch-kwargs", "launch_line": 42}
    )
    assert "(launch at line 42)" in render_tune("md", launched)


def test_markdown_shows_what_moved_between_the_start_and_the_final_profile(trajectory) -> None:
    """ncu runs only for the start and the final config; the report says what moved, which findings went."""
    import copy

    t = copy.deepcopy(trajectory)
    t.options["space"] = {"BLOCK_M": [16, 32, 64], "num_warps": [1, 4]}
    t.options["space_size"] = 6
    t.options["profiled"] = {
        "start": {
            "config": t.start.as_dict(),
            "metrics": {"sm__throughput.avg.pct_of_peak_sustained_elapsed": 20.0},
            "findings": ["NA311 small-dot-tiles: 16x16x16 tiles", "NA303 latency-bound: 20% SM"],
        },
        "final": {
            "config": t.best.as_dict(),
            "metrics": {"sm__throughput.avg.pct_of_peak_sustained_elapsed": 70.0},
            "findings": ["NA303 latency-bound: 70% SM"],
        },
        "moved": {"sm__throughput.avg.pct_of_peak_sustained_elapsed": [20.0, 70.0]},
    }
    text = render_tune("md", t, TUNE_RUN)
    assert "## Start and final configuration under ncu" in text
    assert "| `sm__throughput.avg.pct_of_peak_sustained_elapsed` | 20.0% | 70.0% | +250% |" in text
    assert "- NA311 small-dot-tiles: 16x16x16 tiles" in text and "- NA303" not in text.split("no longer")[1]
    assert "- search space: 6 configs (BLOCK_M [16, 32, 64]; num_warps [1, 4])" in text
