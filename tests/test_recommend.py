"""`ncu-advisor recommend` and `ncu-advisor rules` through typer's CliRunner, on the recorded reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.ingest.readers import read_report

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "reports" / "h200-seed"
SEED000 = SEED / "ModelNew_seed000_small.ncu-rep.gz"
SEED001 = SEED / "ModelNew_seed001_small.ncu-rep.gz"
SEED001_FULL = SEED / "ModelNew_seed001_full.ncu-rep.gz"
FUSED = ROOT / "kernels" / "fused.py"

runner = CliRunner()

FINDING_SCHEMA = {
    "type": "object",
    "required": [
        "rule",
        "name",
        "stage",
        "severity",
        "message",
        "recommendation",
        "evidence",
        "estimated_effect",
    ],
    "properties": {
        "severity": {"enum": ["info", "warning", "error"]},
        "stage": {"enum": ["block-size", "fine-tune", "bottleneck"]},
        "evidence": {"type": "object", "required": ["condition"]},
        "estimated_effect": {
            "type": "object",
            "required": ["fraction", "kind", "basis"],
            "properties": {
                "fraction": {"type": "number", "minimum": 0, "maximum": 1},
                "kind": {"enum": ["local", "global"]},
            },
        },
    },
}
SCHEMA = {
    "type": "object",
    "required": ["schema_version", "gpu", "kernels"],
    "properties": {
        "schema_version": {"const": 1},
        "kernels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "kernel",
                    "variant",
                    "launch",
                    "metrics",
                    "findings",
                    "skipped",
                    "proposals",
                    "autotune_block",
                ],
                "properties": {
                    "findings": {"type": "array", "items": FINDING_SCHEMA},
                    "skipped": {"type": "array", "items": {"type": "object", "required": ["rule", "reason"]}},
                },
            },
        },
    },
}


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def test_json_output_follows_the_schema_and_the_report() -> None:
    result = _invoke("recommend", str(SEED001), "--source", str(FUSED), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["gpu"] == "NVIDIA H200"
    (kernel,) = document["kernels"]
    assert kernel["kernel"] == "conv2d_scale_min_kernel"
    table = read_report(SEED001)
    assert kernel["metrics"]["launch__registers_per_thread"] == int(
        table["launch__registers_per_thread"].iloc[0]
    )
    rules = [f["rule"] for f in kernel["findings"]]
    assert {"NA102", "NA105", "NA203"} <= set(rules) and "NA101" not in rules  # zero local traffic
    effects = [f["estimated_effect"]["fraction"] for f in kernel["findings"]]
    assert effects == sorted(effects, reverse=True)
    # The kernel already runs the seeds' baseline (w4, s2): no proposal equals it; it is the reference line.
    assert not [p for p in kernel["proposals"] if p["baseline"]]
    assert "num_warps=4, num_stages=2),  # current config (the reference)" in kernel["autotune_block"]
    assert kernel["roofline"]["headline"].startswith("roofline: DRAM")


def test_text_output_shows_evidence_and_thresholds() -> None:
    result = _invoke("recommend", str(SEED000), "--source", str(FUSED), "--kernel", "scale_channel_min")
    assert result.exit_code == 0, result.output
    assert "scale_channel_min_kernel" in result.stdout
    assert "NA301 memory-bound" in result.stdout
    assert "fired on: waves >= 1 and memory_throughput >= 60" in result.stdout
    assert "dram__throughput.avg.pct_of_peak_sustained_elapsed = 86.8%" in result.stdout
    assert "nchwToNhwcKernel" not in result.stdout


def test_markdown_output() -> None:
    result = _invoke("recommend", str(SEED001), "--source", str(FUSED), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# ncu-advisor recommendations")
    assert "| warning | NA102 register-limited-occupancy |" in result.stdout
    assert "```python\n@triton.autotune(" in result.stdout


def test_ncu_guided_analysis_is_shown_and_marked() -> None:
    result = _invoke("recommend", str(SEED001_FULL), "--source", str(FUSED), "--format", "json")
    assert result.exit_code == 0, result.output
    (kernel,) = json.loads(result.stdout)["kernels"]
    by_rule = {entry["rule"]: entry for entry in kernel["ncu_rules"]}
    assert by_rule["MemoryL2Compression"]["actionable_from_triton"] is False
    assert by_rule["TheoreticalOccupancy"]["actionable_from_triton"] is True
    assert "limited by the number of required registers" in by_rule["TheoreticalOccupancy"]["message"]


@pytest.mark.parametrize(("fail_on", "code"), [("error", 0), ("warning", 1), ("info", 1)])
def test_fail_on_sets_the_exit_code(fail_on: str, code: int) -> None:
    result = _invoke(
        "recommend", str(SEED001), "--source", str(FUSED), "--fail-on", fail_on, "--format", "json"
    )
    assert result.exit_code == code
    severities = {f["severity"] for f in json.loads(result.stdout)["kernels"][0]["findings"]}
    assert "warning" in severities and "error" not in severities


def test_stage_auto_and_fine_tune() -> None:
    result = _invoke(
        "recommend", str(SEED001), "--source", str(FUSED), "--stage", "fine-tune", "--format", "json"
    )
    (kernel,) = json.loads(result.stdout)["kernels"]
    assert {f["stage"] for f in kernel["findings"]} <= {"fine-tune", "bottleneck"}
    assert "NA203" in {f["rule"] for f in kernel["findings"]}
    result = _invoke("recommend", str(SEED001), "--stage", "auto", "--format", "json")
    (kernel,) = json.loads(result.stdout)["kernels"]
    assert kernel["stage"] == "block-size"


def test_default_input_is_the_recorded_example_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./runs here: falls back to the shipped example run
    result = _invoke("recommend", "--format", "json")
    assert result.exit_code == 0, result.output
    kernels = [k for k in json.loads(result.stdout)["kernels"] if not k["library"]]
    assert {k["variant"] for k in kernels} == {"ModelNew_seed000", "ModelNew_seed001", "ModelNew"}
    assert {k["kernel"] for k in kernels} == {
        "scale_channel_min_kernel", "conv2d_scale_min_kernel", "nchw_to_nhwc_fp16_kernel", "conv_min_tma_kernel"
    }
    seed001 = [k for k in kernels if k["variant"] == "ModelNew_seed001"][0]
    assert seed001["autotune_block"]  # the source came from the run's kernel.py


def test_no_run_and_no_example_run_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ncu_advisor.analysis import inputs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(inputs, "DEFAULT_EXAMPLE_RUN", Path("no-such-run"))
    for command in ("recommend", "report"):
        result = _invoke(command, "--format", "json")
        assert result.exit_code == 2, result.output
        assert "nothing to analyse" in result.output and "no-such-run" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["recommend", "missing.ncu-rep"], "missing.ncu-rep"),
        (["recommend", str(SEED001), "--format", "yaml"], "--format"),
        (["recommend", str(SEED001), "--stage", "tiny"], "--stage"),
        (["recommend", str(SEED001), "--fail-on", "fatal"], "--fail-on"),
        (["recommend", str(SEED001), "--kernel", "no_such_kernel"], "no_such_kernel"),
        (["rules", "explain", "NA999"], "NA999"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(args: list[str], needle: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2
    assert needle in result.output and "error:" in result.output


def test_bad_rule_dir_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("id: XX001\nname: [oops\n", encoding="utf-8")
    result = _invoke("recommend", str(SEED001), "--rules", str(tmp_path))
    assert result.exit_code == 2
    assert "broken.yaml" in result.output and "line" in result.output


def test_bad_source_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "kernel.py"
    bad.write_text("def (:\n", encoding="utf-8")
    result = _invoke("recommend", str(SEED001), "--source", str(bad))
    assert result.exit_code == 2 and "kernel.py" in result.output


def test_rules_list_and_explain() -> None:
    listing = _invoke("rules")
    assert listing.exit_code == 0, listing.output
    lines = [line for line in listing.stdout.splitlines() if line.startswith("NA")]
    assert len(lines) == len(list((ROOT / "rules").glob("*.yaml")))
    assert any(line.startswith("NA101  registers-over-128") for line in lines)
    explained = _invoke("rules", "explain", "NA101")
    assert explained.exit_code == 0, explained.output
    for heading in (
        "What it detects",
        "Why it matters",
        "Example",
        "Use instead",
        "Known problems",
        "From the seed prompt",
    ):
        assert f"## {heading}" in explained.stdout
    assert "registers > 128" in explained.stdout
    by_name = _invoke("rules", "explain", "memory-bound")
    assert by_name.exit_code == 0 and "NA301" in by_name.stdout


def _seed_run(root: Path) -> Path:
    from test_report_formats import build_seed_run  # the run builder of the report tests (real seed reports)

    return build_seed_run(root)


def test_run_directory_input_uses_the_runs_kernel_copy(tmp_path: Path) -> None:
    run = _seed_run(tmp_path)
    result = _invoke("recommend", str(run), "--format", "json", "--all-kernels")
    assert result.exit_code == 0, result.output
    kernels = json.loads(result.stdout)["kernels"]
    assert {k["variant"] for k in kernels} == {"ModelNew_seed000", "ModelNew_seed001", "ModelNew"}
    # Without --all-kernels only the kernels the run's kernel.py defines are shown (no cuDNN/PyTorch ones).
    shown = json.loads(_invoke("recommend", str(run), "--format", "json").stdout)["kernels"]
    own = [k for k in shown if not k["library"]]
    assert {k["kernel"] for k in own} == {"scale_channel_min_kernel", "conv2d_scale_min_kernel"}
    # the library kernels are still there, flagged, the same with and without --all-kernels
    assert [k["kernel"] for k in shown if k["library"]] == [k["kernel"] for k in kernels if k["library"]]
    assert all(k["variant"] != "Model" for k in kernels)  # the reference is never evaluated
    conv = [k for k in kernels if k["kernel"] == "conv2d_scale_min_kernel"][0]
    assert conv["variant"] == "ModelNew_seed001"
    assert "NA204" in {
        f["rule"] for f in conv["findings"]
    }  # needs the source: taken from the run's kernel.py
    assert conv["autotune_block"] and "'BLOCK_M': 64" in conv["autotune_block"]


def test_no_argument_uses_the_latest_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed_run(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    result = _invoke("recommend", "--format", "json", "--kernel", "conv2d")
    assert result.exit_code == 0, result.output
    (kernel,) = json.loads(result.stdout)["kernels"]
    assert kernel["variant"] == "ModelNew_seed001" and kernel["source"].startswith(str(tmp_path / "runs"))


def test_directory_that_is_not_a_run_exits_2(tmp_path: Path) -> None:
    result = _invoke("recommend", str(tmp_path))
    assert result.exit_code == 2 and "not a run directory" in result.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_anywhere_on_the_line_adds_the_traceback(where: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.ncu-rep")
    args = ["-v", "recommend", missing] if where == "before" else ["recommend", missing, "-v"]
    verbose = _invoke(*args)
    assert verbose.exit_code == 2 and "Traceback" in verbose.output
    quiet = _invoke("recommend", missing)
    assert quiet.exit_code == 2 and "Traceback" not in quiet.output


@pytest.mark.parametrize("command", [["recommend"], ["report"], ["compare", "RUN"]])
def test_md_and_markdown_are_one_format_everywhere(command: list[str]) -> None:
    run = str(ROOT / "examples" / "runs" / "improved")
    args = [run if a == "RUN" else a for a in command]
    outputs = [
        _invoke(*args[:1], run, *args[1:], "--format", name, "--fail-on", "never") for name in ("md", "markdown")
    ]
    assert all(o.exit_code == 0 for o in outputs), [o.output for o in outputs]
    assert outputs[0].stdout == outputs[1].stdout and outputs[0].stdout.lstrip().startswith("#")


def test_division_by_zero_in_a_rule_skips_it_with_a_reason(tmp_path: Path) -> None:
    """A rule dividing by zero (``registers / 0``) gives inf: it must be skipped per launch, never fire."""
    rules = tmp_path / "rules"
    rules.mkdir()
    text = (ROOT / "rules" / "NA101-registers-over-128.yaml").read_text(encoding="utf-8")
    text = text.replace("id: NA101", "id: NA901").replace("name: registers-over-128", "name: divide-by-zero")
    when = next(line for line in text.splitlines() if line.startswith("when:"))
    text = text.replace(when, 'when: "registers / 0 > 1 or (registers > 0 and registers / registers > 2)"')
    (rules / "NA901.yaml").write_text(text, encoding="utf-8")
    result = _invoke("recommend", str(SEED001), "--rules", str(rules), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    kernels = document["kernels"]
    fired = [f["rule"] for kernel in kernels for f in kernel["findings"] if f["rule"] == "NA901"]
    assert kernels and not fired
    reasons = [s["reason"] for kernel in kernels for s in kernel.get("skipped", []) if s["rule"] == "NA901"]
    assert reasons and all(reason == "division by zero in its expressions" for reason in reasons)


@pytest.mark.parametrize("run", ["softmax", "matmul_tuned"])
def test_modest_registers_are_not_high_pressure(run: str) -> None:
    """softmax (38 registers/thread; its w1 variant 177) and matmul_tuned (64): "high register pressure"
    (NA203) only above 128 registers, NA102 "Cut registers" only below 50% theoretical occupancy."""
    result = _invoke("recommend", str(ROOT / "examples" / "runs" / run), "--format", "json")
    document = json.loads(result.stdout)
    entries = [e for k in document["kernels"] for e in k["findings"] + k.get("suppressed", [])]
    pressure = [float(m) for e in entries for m in re.findall(r"high register pressure: (\d+)", e["message"])]
    assert all(registers > 128 for registers in pressure), pressure
    occupancy = [
        float(re.search(r"theoretical occupancy ([\d.]+)%", e["message"]).group(1))  # type: ignore[union-attr]
        for e in entries
        if e["rule"] == "NA102"
    ]
    assert all(value < 50 for value in occupancy), occupancy
    shown = [e["rule"] for k in document["kernels"] for e in k["findings"]]
    assert len(shown) > 0


def test_no_num_stages_3_under_real_register_pressure() -> None:
    """examples/runs/improved, conv2d_scale_min_kernel at 187 registers: NA203 says keep num_stages=2, so
    nothing (NA313, the autotune block) may propose num_stages=3 on that kernel."""
    result = _invoke("recommend", str(ROOT / "examples" / "runs" / "improved"), "--format", "json")
    document = json.loads(result.stdout)
    kernels = [k for k in document["kernels"] if k["kernel"] == "conv2d_scale_min_kernel"]
    assert kernels
    for kernel in kernels:
        rules = {finding["rule"] for finding in kernel["findings"]}
        assert "NA203" in rules and "NA313" not in rules
        assert "num_stages=3" not in (kernel.get("autotune_block") or "")


def test_missing_metrics_in_evidence_print_as_not_measured() -> None:
    """softmax has no l1tex__throughput: NA301's evidence says "not measured" (JSON null), never a fake -1."""
    text = _invoke("recommend", str(ROOT / "examples" / "runs" / "softmax")).stdout
    assert "l1tex__throughput.avg.pct_of_peak_sustained_elapsed = not measured" in text and "= -1" not in text
    document = json.loads(_invoke("recommend", str(ROOT / "examples" / "runs" / "softmax"), "--format", "json").stdout)
    na301 = [f for k in document["kernels"] for f in k["findings"] if f["rule"] == "NA301"]
    assert na301 and all(f["evidence"]["l1tex__throughput.avg.pct_of_peak_sustained_elapsed"] is None for f in na301)
