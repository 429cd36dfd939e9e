"""Rules skipped for missing metrics are said in every output: never a bare "no findings" (issue 11).

Seed 001's JSON metrics block (``../shared/seeds/001_*.txt``, what an LLM loop already has) carries five
metrics: most rules need others (registers, occupancy limits, durations) and are skipped. Before this, every
format said "no findings" and nothing else. The expected rules and metrics are computed here from the rule
files and the seed's own table, not copied from an output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor import metrics
from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.cli import app
from ncu_advisor.ingest import registry
from ncu_advisor.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"
SEED_001 = next(iter(sorted(SEEDS.glob("001_*.txt"))), None) if SEEDS.is_dir() else None
needs_seed = pytest.mark.skipif(SEED_001 is None, reason="../shared/seeds/001_*.txt not present")
runner = CliRunner()
RECOMMEND = ("text", "json", "markdown", "prompt")
REPORT = ("md", "html", "junit", "sarif", "json", "csv")


def _run(*args: str) -> str:
    result = runner.invoke(app, [*args, "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    return result.stdout


def _expected() -> tuple[set[str], set[str]]:
    """Rules with a required metric (no default) absent from the seed's table, and those metrics."""
    assert SEED_001 is not None
    columns = set(registry.read(SEED_001).columns)
    rules: set[str] = set()
    names: set[str] = set()
    for rule in load_rules():
        absent = [
            r.name
            for r in rule.spec.requires
            if r.default is None and metrics.resolve(columns, r.name) is None and r.name not in columns
        ]
        if absent:
            rules.add(rule.id)
            names.update(absent)
    return rules, names


@needs_seed
def test_seed_001_json_names_the_skipped_rules_and_the_missing_metrics() -> None:
    assert SEED_001 is not None
    document = json.loads(_run("recommend", str(SEED_001), "--format", "json"))
    summary = document["skipped_for_missing_metrics"]
    expected_rules, expected_metrics = _expected()
    assert expected_rules and expected_rules <= set(summary["rules"])
    # beyond those, only rules reading a GPU fact the seed's unnamed GPU does not give are skipped
    gpu_readers = {r.id for r in load_rules() if any(n.startswith("gpu_") for n in r.inputs)}
    assert set(summary["rules"]) - expected_rules <= gpu_readers
    # every metric named is absent from the seed (the engine names the first missing one per rule)
    named = {m for m in summary["metrics"] if not m.startswith("gpu_")}
    assert named <= expected_metrics
    assert summary["text"].startswith(f"{len(summary['rules'])} rules skipped, metrics missing: ")
    kernel = document["kernels"][0]
    assert kernel["findings"] == [] and kernel["skipped_for_missing_metrics"] == summary
    assert all(entry["missing"] for entry in kernel["skipped"] if entry["reason"].startswith("metric "))


@needs_seed
@pytest.mark.parametrize(
    "args", [("recommend", f) for f in RECOMMEND] + [("report", f) for f in REPORT], ids="-".join
)
def test_every_format_says_how_many_rules_and_which_metrics(args: tuple[str, str]) -> None:
    assert SEED_001 is not None
    document = json.loads(_run("recommend", str(SEED_001), "--format", "json"))
    summary = document["skipped_for_missing_metrics"]
    text = _run(args[0], str(SEED_001), "--format", args[1])
    if args[1] == "csv":  # one row per launch: the missing metrics in their column
        assert " ".join(summary["metrics"]) in text
        return
    plain = re.sub(r"</?code>|`", "", text)
    assert f"{len(summary['rules'])} rules skipped, metrics missing: " in plain, args
    for name in summary["metrics"]:
        assert name in plain, (args, name)
    # never a bare "no findings" / "no rule fired": each says what was skipped right after
    for match in re.finditer(r"(?i)\b(no findings|no rule fired(?: on this kernel)?)\b", plain):
        assert plain[match.end() :].startswith("; "), (args, plain[match.start() : match.end() + 40])


def test_a_run_names_only_metrics_its_table_lacks() -> None:
    """The H200 matmul_tuned run lacks only counters of ``--set full``: the metrics named are absent from
    its table, and its text output ends with the same summary line."""
    run = ROOT / "examples" / "runs" / "matmul_tuned"
    document = json.loads(_run("recommend", str(run), "--format", "json"))
    summary = document["skipped_for_missing_metrics"]
    assert summary["rules"] and summary["metrics"]
    assert not set(summary["metrics"]) & set(analyze([run]).table.columns)
    assert f"not checked on some launches: {summary['text']}" in _run("recommend", str(run))


@needs_seed
def test_prompt_of_an_unnamed_gpu_says_unknown_not_zero() -> None:
    """Seed 001's metrics block names no GPU: the spec built from the (absent) attributes holds zeros,
    which the prompt printed as "Number of SMs: 0", "0 KB", "n/a GB/s"."""
    assert SEED_001 is not None
    gpu = _run("recommend", str(SEED_001), "--format", "prompt").split("[OPTIMIZATION STAGE]")[0]
    assert "• Number of SMs: unknown" in gpu and "• Memory Bandwidth: unknown" in gpu
    assert not re.search(r": 0(\.0)?( [A-Z]B(/s)?)?$|n/a", gpu, flags=re.M), gpu
