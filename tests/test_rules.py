"""The rule files: schema, loader errors, docs, and every rule's firing/quiet fixtures on real reports."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ncu_advisor.errors import RuleError
from ncu_advisor.kernelsrc.facts import SourceFacts, analyze_file
from ncu_advisor.rules import evaluate, load_rules, required_metrics, shipped_rules_dir
from ncu_advisor.rules.loader import parse_rule_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rules"
RULES = load_rules()
RULE_IDS = [rule.id for rule in RULES]

VALID = """\
id: XX001
name: test-rule
stage: bottleneck
requires:
  - {name: launch__registers_per_thread, alias: registers}
when: registers > 128
severity: warning
message: "{registers:.0f} registers"
recommendation: halve the blocks
estimated_effect: {kind: local, expression: "0.1", basis: "a stated heuristic for tests"}
docs:
  what_it_detects: "registers above 128 per thread in a launch"
  why_it_matters: "because spills and low occupancy follow from it"
  example: "seed001 conv2d_scale_min_kernel: 187 registers"
  use_instead: "smaller BLOCK_*"
  known_problems: "only a proxy for spilling"
"""


@cache
def _table(report: str, variant: str | None = None) -> pd.DataFrame:
    from ncu_advisor.ingest.readers import read_report

    return read_report(ROOT / report, variant=variant)


@cache
def _source(path: str) -> SourceFacts:
    return analyze_file(ROOT / path)


def test_shipped_rule_set_loads_with_unique_stable_ids() -> None:
    assert shipped_rules_dir().is_dir()
    files = sorted(shipped_rules_dir().glob("*.yaml"))
    assert len(RULES) == len(files) >= 20
    for path in files:
        rule_id = path.name.split("-")[0]
        assert rule_id in RULE_IDS, f"{path.name} should start with its rule id"
    assert {rule.stage for rule in RULES} == {"block-size", "fine-tune", "bottleneck"}


def test_required_metrics_cover_the_seed_metrics() -> None:
    needed = required_metrics(RULES)
    for metric in (
        "sm__throughput.avg.pct_of_peak_sustained_elapsed",
        "launch__grid_size",
        "sm__warps_active.avg.pct_of_peak_sustained_active",
        "dram__throughput.avg.pct_of_peak_sustained_elapsed",
        "lts__t_sector_hit_rate.pct",
        "launch__registers_per_thread",
        "launch__occupancy_limit_registers",
        "l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum",
    ):
        assert metric in needed
    assert "n_spills" not in needed  # recorded by Triton in a run, not collected by ncu


def _normalise(text: str) -> str:
    """Collapse whitespace and drop list bullets, so a quote may join a seed's lines."""
    return " ".join(re.sub(r"(^|\s)- ", " ", text).split())


def test_seed_rules_quote_the_seeds() -> None:
    seed_dir = ROOT.parent / "shared" / "seeds"
    quoted = [rule for rule in RULES if rule.docs.seed_text]
    assert len(quoted) >= 12
    if seed_dir.is_dir():
        seeds = " ".join(p.read_text(encoding="utf-8") for p in seed_dir.glob("*.txt"))
        normalised = _normalise(seeds)
        for rule in quoted:
            for fragment in rule.docs.seed_text.split(";"):
                words = _normalise(fragment)
                assert words in normalised, f"{rule.id}: {words!r} is not in the seed prompts"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_has_docs_and_fixtures(rule_id: str) -> None:
    rule = next(r for r in RULES if r.id == rule_id)
    for field in ("what_it_detects", "why_it_matters", "example", "use_instead", "known_problems"):
        assert len(getattr(rule.docs, field).strip()) >= 10
    path = FIXTURES / f"{rule_id}.yaml"
    assert path.is_file(), f"{rule_id} has no fixture file {path}"
    fixture = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert fixture["rule"] == rule_id
    expectations = {case["expect"] for case in fixture.get("cases", [])}
    pending = {p["expect"]: p["reason"] for p in fixture.get("pending", [])}
    for needed in ("fire", "quiet"):
        assert needed in expectations or (needed in pending and len(pending[needed]) > 20), (
            f"{rule_id} has no {needed} fixture and no pending reason"
        )
    assert "quiet" in expectations, "every rule needs a real quiet fixture now"


def _cases() -> list[Any]:
    params = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        fixture = yaml.safe_load(path.read_text(encoding="utf-8"))
        for number, case in enumerate(fixture.get("cases", [])):
            params.append(
                pytest.param(fixture["rule"], case, id=f"{fixture['rule']}-{case['expect']}-{number}")
            )
    return params


@pytest.mark.parametrize(("rule_id", "case"), _cases())
def test_rule_fixture_on_real_report(rule_id: str, case: dict[str, Any]) -> None:
    table = _table(case["report"], case.get("variant"))
    source = _source(case["source"]) if case.get("source") else None
    rules = [r for r in RULES if r.id == rule_id]
    results = [r for r in evaluate(table, rules, source=source, stage="all") if r.kernel == case["kernel"]]
    if "launch" in case:
        results = [r for r in results if r.launch == case["launch"]]
    assert results, f"kernel {case['kernel']} not in {case['report']}"
    for result in results:
        # A finding withheld at the roof (analysis.advice) still fired: fixtures test the rule's condition.
        fired = [f for f in result.findings + result.suppressed if f.rule == rule_id]
        skipped = [s for s in result.skipped if s["rule"] == rule_id]
        assert not skipped, f"{rule_id} was skipped on {case['kernel']}: {skipped}"
        if case["expect"] == "fire":
            assert len(fired) == 1
            finding = fired[0]
            assert finding.evidence["condition"] == rule.when.text if (rule := rules[0]) else False
            assert 0.0 <= finding.estimated_effect <= 1.0
            assert "{" not in finding.message
            if "severity" in case:  # info_when (or the rule's own severity) as measured on this launch
                assert finding.severity.value == case["severity"], finding.evidence.get("info_because")
        else:
            assert fired == []


def _public_cases() -> list[Any]:
    params = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        fixture = yaml.safe_load(path.read_text(encoding="utf-8"))
        for number, case in enumerate(fixture.get("public_cases", [])):
            params.append(
                pytest.param(fixture["rule"], case, id=f"{fixture['rule']}-public-{case['expect']}-{number}")
            )
    return params


@pytest.mark.parametrize(("rule_id", "case"), _public_cases())
def test_rule_fixture_on_public_report(
    rule_id: str, case: dict[str, Any], public_reports: dict[str, Path]
) -> None:
    from ncu_advisor.ingest.readers import read_report

    name = case["report"][: -len(".gz")]
    table = read_report(public_reports[name])
    rules = [r for r in RULES if r.id == rule_id]
    results = [r for r in evaluate(table, rules) if r.kernel == case["kernel"]]
    assert results
    for result in results:
        assert not [s for s in result.skipped if s["rule"] == rule_id]
        fired = [f.rule for f in result.findings]
        assert fired == ([rule_id] if case["expect"] == "fire" else [])


def test_every_public_report_evaluates_without_error(public_reports: dict[str, Path]) -> None:
    from ncu_advisor.errors import AdvisorError
    from ncu_advisor.ingest.readers import read_report

    evaluated = 0
    for path in public_reports.values():
        try:
            table = read_report(path)
        except AdvisorError:
            continue  # unreadable reports are report.py's business
        results = evaluate(table, RULES)
        assert len(results) == len(table)
        for result in results:
            fired = {f.rule for f in result.findings}
            skipped = {s["rule"] for s in result.skipped}
            assert not fired & skipped
            for finding in result.findings:
                assert "{" not in finding.message and 0 <= finding.estimated_effect <= 1
        evaluated += 1
    assert evaluated >= 10


def test_docs_list_every_rule() -> None:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"| {rule.id} | {rule.name} |" in text, f"docs/rules.md does not list {rule.id}"


def test_seed001_conv_gets_register_pressure_findings_and_w4_s2_advice() -> None:
    table = _table("examples/reports/h200-seed/ModelNew_seed001_small.ncu-rep.gz")
    (result,) = evaluate(table, RULES, source=_source("kernels/fused.py"))
    assert result.kernel == "conv2d_scale_min_kernel"
    fired = {f.rule: f for f in result.findings}
    assert {"NA102", "NA105", "NA203"} <= set(fired)
    # 187 registers, zero measured local traffic: the seeds' "likely spilling" (NA101) is refuted, not said.
    assert "NA101" not in fired
    assert "187 registers/thread > 128" in fired["NA105"].message
    assert fired["NA102"].evidence["launch__occupancy_limit_registers"] == 2
    assert "num_warps=4" in fired["NA203"].recommendation and "num_stages=2" in fired["NA203"].recommendation
    # The kernel already runs the seeds' baseline (128/32/32, w4, s2): no proposal may equal it; the autotune
    # block lists it first as the reference.
    current = {"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}
    assert not any(p.params == current and (p.num_warps, p.num_stages) == (4, 2) for p in result.proposals)
    assert any(p.params == {"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 16} for p in result.proposals)
    assert 1 <= len(result.proposals) <= 3
    assert result.autotune_block is not None
    assert "num_warps=4, num_stages=2),  # current config (the reference)" in result.autotune_block
    effects = [f.estimated_effect for f in result.findings]
    assert effects == sorted(effects, reverse=True)


def test_seed000_scale_min_kernel_is_memory_bound() -> None:
    table = _table("examples/reports/h200-seed/ModelNew_seed000_small.ncu-rep.gz")
    results = [r for r in evaluate(table, RULES) if r.kernel == "scale_channel_min_kernel"]
    assert len(results) == 1
    fired = {f.rule: f for f in results[0].findings}
    assert "NA301" in fired
    dram = table.loc[
        table["kernel"] == "scale_channel_min_kernel", "dram__throughput.avg.pct_of_peak_sustained_elapsed"
    ]
    assert fired["NA301"].evidence["dram__throughput.avg.pct_of_peak_sustained_elapsed"] == pytest.approx(
        float(dram.iloc[0])
    )
    assert "NA302" not in fired


def test_stage_auto_picks_block_size_under_pressure_and_fine_tune_otherwise() -> None:
    table = _table("examples/reports/h200-seed/ModelNew_seed001_small.ncu-rep.gz")
    (pressured,) = evaluate(table, RULES, stage="auto")
    assert pressured.stage == "block-size"
    assert {f.stage for f in pressured.findings} <= {"block-size", "bottleneck"}
    table0 = _table("examples/reports/h200-seed/ModelNew_small.ncu-rep.gz")
    relaxed = [r for r in evaluate(table0, RULES, stage="auto") if r.kernel == "elementwise_kernel"][0]
    assert relaxed.stage == "fine-tune"
    assert all(f.stage in ("fine-tune", "bottleneck") for f in relaxed.findings)


def test_missing_metric_skips_rule_with_reason() -> None:
    table = _table("examples/reports/h200-seed/ModelNew_seed001_small.ncu-rep.gz").drop(
        columns=["launch__registers_per_thread"]
    )
    (result,) = evaluate(table, [r for r in RULES if r.id == "NA101"])
    assert result.findings == []
    assert result.skipped == [
        {
            "rule": "NA101",
            "reason": "metric launch__registers_per_thread not in the report",
            "missing": "launch__registers_per_thread",
        }
    ]


def test_source_rules_are_skipped_without_source() -> None:
    table = _table("examples/reports/h200-seed/ModelNew_seed001_small.ncu-rep.gz")
    (result,) = evaluate(table, [r for r in RULES if r.id == "NA204"])
    assert result.findings == []
    assert result.skipped[0]["rule"] == "NA204" and "--source" in result.skipped[0]["reason"]


# ------------------------------------------------------------------------------------ bad rule files
def test_valid_rule_text_parses() -> None:
    rule = parse_rule_text(VALID)
    assert rule.id == "XX001" and rule.when.names == {"registers"}


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    with pytest.raises(RuleError) as info:
        parse_rule_text(VALID.replace("when: registers > 128", "when: [registers"), path)
    text = info.value.render()
    assert str(path) in text and "line" in text and "malformed YAML" in text


def test_unknown_field_is_rejected_with_line() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule_text(VALID + "colour: red\n")
    assert "colour" in info.value.render() and "line 17" in info.value.render()


def test_unknown_metric_names_close_matches() -> None:
    catalogue = {"launch__registers_per_thread", "launch__grid_size"}
    text = VALID.replace("launch__registers_per_thread", "launch__register_per_thread")
    with pytest.raises(RuleError) as info:
        parse_rule_text(text, catalogue=catalogue)
    assert "unknown metric 'launch__register_per_thread'" in info.value.render()
    assert "launch__registers_per_thread" in info.value.render()


@pytest.mark.parametrize(
    "when",
    ["__import__('os').system('id')", "registers.real > 1", "registers[0]", "(lambda: 1)()", "open('x')"],
)
def test_unsafe_expression_rejected_at_load(when: str) -> None:
    with pytest.raises(RuleError):
        parse_rule_text(VALID.replace("when: registers > 128", f'when: "{when}"'))


@pytest.mark.parametrize(
    "template", ["{registers.real}", "{registers[0]}", "{registers!r}", "{}", "{unknown}"]
)
def test_message_templates_allow_plain_names_only(template: str) -> None:
    with pytest.raises(RuleError):
        parse_rule_text(VALID.replace('"{registers:.0f} registers"', f'"{template}"'))


def test_unknown_name_in_expression_is_rejected() -> None:
    with pytest.raises(RuleError, match="unknown name 'regs'"):
        parse_rule_text(VALID.replace("when: registers > 128", "when: regs > 128"))


def test_extra_dir_adds_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "override.yaml").write_text(
        VALID.replace("XX001", "NA101").replace("test-rule", "my-registers"), encoding="utf-8"
    )
    rules = load_rules(tmp_path)
    by_id = {r.id: r for r in rules}
    assert "XX001" in by_id and by_id["NA101"].name == "my-registers"
    assert len(rules) == len(RULES) + 1


def test_fixture_cutter_fills_only_pending_firing_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ncu_advisor.rules import fixtures as cutter

    (tmp_path / "NA101.yaml").write_text((FIXTURES / "NA101.yaml").read_text(), encoding="utf-8")
    # NA309 as it was before the zoo runs filled it: quiet cases only, the firing case pending.
    na309 = yaml.safe_load((FIXTURES / "NA309.yaml").read_text())
    na309["cases"] = [c for c in na309["cases"] if c["expect"] == "quiet"]
    na309["pending"] = [{"expect": "fire", "reason": "no recorded report fires it yet"}]
    (tmp_path / "NA309.yaml").write_text(yaml.safe_dump(na309, sort_keys=False), encoding="utf-8")
    monkeypatch.setattr(cutter, "FIXTURE_DIR", tmp_path)
    report = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
    cases = cutter.collect([report], ROOT / "kernels" / "fused.py")
    assert [c["kernel"] for c in cases["NA102"]["fire"]] == ["conv2d_scale_min_kernel"]
    assert cases["NA101"]["fire"] == []  # 187 registers, zero measured local traffic
    assert cases["NA309"]["fire"] == [] and len(cases["NA309"]["quiet"]) == 1
    # Pretend NA309 fired there: the pending entry becomes a real case; NA101 (already has one) is untouched.
    cases["NA309"]["fire"] = [dict(cases["NA309"]["quiet"][0], expect="fire")]
    before = (tmp_path / "NA101.yaml").read_text()
    assert cutter.write_pending(cases) == ["NA309"]
    written = yaml.safe_load((tmp_path / "NA309.yaml").read_text())
    assert "pending" not in written
    assert written["cases"][-1]["expect"] == "fire"
    assert written["cases"][-1]["report"] == "examples/reports/h200-seed/ModelNew_seed001_small.ncu-rep.gz"
    assert (tmp_path / "NA101.yaml").read_text() == before
