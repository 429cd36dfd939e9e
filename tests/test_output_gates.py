"""Exit codes and CI outputs a red-team found wrong: a launch not profiled, a plain report in JUnit."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ncu_advisor.cli import app

FAULT = Path(__file__).parent / "fixtures" / "notprofiled" / "fault.ncu-rep"
PUBLIC = Path(__file__).parent.parent / ".." / "shared" / "reports-public"
PLAIN = PUBLIC / "2388612861__GPU-DEMO__ncu_report_optimized.ncu-rep.gz"


@pytest.mark.parametrize("fail_on", ["error", "warning", "never"])
@pytest.mark.parametrize("command", [["recommend"], ["report", "-f", "json"], ["report", "-f", "junit"]])
def test_a_launch_not_profiled_exits_1_whatever_fail_on(command: list[str], fail_on: str) -> None:
    result = CliRunner().invoke(app, [*command, str(FAULT), "--fail-on", fail_on])
    assert result.exit_code == 1, result.output


def test_the_summary_line_says_the_exit() -> None:
    result = CliRunner().invoke(app, ["recommend", str(FAULT)])
    assert "1 launch(es) not profiled (not clean, counted apart: exit 1)" in result.output


@pytest.mark.skipif(not PLAIN.is_file(), reason="../shared/reports-public absent")
def test_junit_passes_a_plain_report_with_no_error_finding() -> None:
    junit = CliRunner().invoke(app, ["report", str(PLAIN), "-f", "junit"])
    recommend = CliRunner().invoke(app, ["recommend", str(PLAIN)])
    assert junit.exit_code == recommend.exit_code == 0, junit.output
    case = ET.fromstring(junit.stdout).find(".//testcase")
    assert case is not None and case.find("failure") is None
    out = case.findtext("system-out") or ""
    assert "no timings" in out and "NA303 latency-bound on" in out


def test_an_effect_of_inf_or_nan_is_no_estimate_ranked_last(tmp_path: Path) -> None:
    rules = Path(__file__).parent.parent / "rules"
    spec = yaml.safe_load((rules / "NA101-registers-over-128.yaml").read_text())
    for rule_id, expression in (("NA901", "1 / 0"), ("NA902", "0 * (1 / 0)")):  # inf, NaN
        spec.update(id=rule_id, name=f"effect-{rule_id.lower()}", when="registers > 0")
        spec["estimated_effect"]["expression"] = expression
        (tmp_path / f"{rule_id}.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(next(rules.glob("NA304-*.yaml")), tmp_path)
    run = Path(__file__).parent.parent / "examples" / "runs" / "elementwise"
    result = CliRunner().invoke(app, ["recommend", str(run), "--rules", str(tmp_path), "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    block = result.output.split("\n\n", 1)[0]
    heads = [line.split()[1] for line in block.splitlines() if re.match(r"  [A-Z]+ +NA\d", line)]
    assert len(heads) > 2 and heads[-2:] == ["NA901", "NA902"], block
    assert "NA901 effect-na901 (no estimate)" in block and "(~100%" not in block
    assert "global_effect" not in block.split("NA901", 1)[1]


def test_sarif_of_a_plain_report_pins_every_result_to_the_report_file() -> None:
    fault = FAULT.relative_to(Path(__file__).parent.parent)  # the tests run from the repository root
    result = CliRunner().invoke(app, ["report", str(FAULT), "-f", "sarif", "--fail-on", "never"])
    run = json.loads(result.stdout)["runs"][0]
    assert run["results"], result.output
    for found in run["results"]:
        (where,) = found["locations"]
        assert where["physicalLocation"]["artifactLocation"]["uri"] == fault.as_posix()
        assert "region" not in where["physicalLocation"]  # never a line of the user's source
    assert {"uri": fault.as_posix(), "uriBaseId": "%SRCROOT%"} in [a["location"] for a in run["artifacts"]]


def test_info_because_says_a_missing_metric_in_words() -> None:
    run = Path(__file__).parent.parent / "examples" / "runs" / "baseline"  # H200: no tensor-pipe metric
    result = CliRunner().invoke(app, ["recommend", str(run), "--fail-on", "never"])
    assert "info_because = (tensor-core pipe not measured and src_uses_dot == 1) or (" in result.output
    assert "tensor_busy < 0" not in result.output


def test_markdown_code_span_survives_a_backtick_and_wrote_says_1_variant(tmp_path: Path) -> None:
    from markdown_it import MarkdownIt  # noqa: PLC0415

    report = tmp_path / "odd`name.ncu-rep"
    shutil.copy(FAULT, report)
    out = tmp_path / "r.md"
    result = CliRunner().invoke(app, ["report", str(report), "-o", str(out), "--fail-on", "never"])
    assert "(md, 1 variant, " in result.stderr and "wrote" not in result.stdout, result.output
    heading = out.read_text().splitlines()[0]
    spans = [t for t in MarkdownIt().parseInline(heading)[0].children or [] if t.type == "code_inline"]
    assert [s.content for s in spans] == ["odd`name.ncu-rep"], heading


@pytest.mark.parametrize(
    ("message", "hint"),
    [("{nosuch}", "or define nosuch under requires"), ("{registers!r}", "drop the !r")],
)
def test_rule_message_errors_name_the_fix(tmp_path: Path, message: str, hint: str) -> None:
    rule = Path(__file__).parent.parent / "rules" / "NA101-registers-over-128.yaml"
    spec = yaml.safe_load(rule.read_text())
    spec["message"] = message
    (tmp_path / "NA101.yaml").write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["recommend", str(FAULT), "--rules", str(tmp_path)])
    assert result.exit_code == 2 and hint in result.output, result.output


def test_compare_exits_1_on_a_launch_not_profiled_whatever_fail_on() -> None:
    from ncu_advisor.analysis.compare import compare_reports  # noqa: PLC0415
    from ncu_advisor.analysis.pipeline import analyze  # noqa: PLC0415

    data = analyze([Path(__file__).parent.parent / "examples" / "runs" / "improved"])
    assert compare_reports(data, data, fail_on="never").exit_code == 0
    missing = dataclasses.replace(data, not_profiled=[{"variant": "v", "kernel": "k", "launch": 0}])
    assert compare_reports(data, missing, fail_on="never").exit_code == 1


def test_a_launch_not_profiled_has_no_estimate() -> None:
    result = CliRunner().invoke(app, ["recommend", str(FAULT), "--all-kernels"])
    assert "NP001 not-profiled (no estimate)" in result.output, result.output
