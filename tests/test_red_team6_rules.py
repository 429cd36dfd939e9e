"""Red team 6 (issue 13): a user rule directory (``--rules DIR``) whose proposal keys ask for what Triton
cannot compile, or for nothing, is bad input (exit 2 naming the file and the key), and a derived chunk
target is proposed as a power of two. Before the fix ``num_warps: 3``, ``block_min: 100`` and
``block_floor: {BLOCK_K: 48}`` were proposed as ``triton.Config(..., num_warps=3)`` / ``BLOCK_K: 48``
(exit 0), a ``block_floor`` without a tile growth proposed nothing silently, and NA323 with a derived target
of 12,800 proposed ``BLOCK_SIZE: 12800``; all on the corpus runs recorded on the H200."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor import rundir
from ncu_advisor.cli import app
from ncu_advisor.errors import RuleError
from ncu_advisor.ingest.readers import read_report
from ncu_advisor.kernelsrc.facts import analyze_file
from ncu_advisor.rules import evaluate, load_rules
from ncu_advisor.rules.loader import load_rule_dir

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "reports" / "h200-corpus"
runner = CliRunner()
CORPUS_KERNELS = ROOT / "kernels" / "corpus"
FAIL_ON_WARNING = ("--fail-on", "warning")
GROWTH_ONLY = "block_floor applies only with a block_scale above 1"


def _user_rule(tmp_path: Path, shipped: str, pattern: str, replacement: str) -> Path:
    """A copy of a shipped rule with one line changed, alone in a rule directory."""
    text = next((ROOT / "rules").glob(f"{shipped}-*.yaml")).read_text(encoding="utf-8")
    changed, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, pattern
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / f"{shipped}.yaml").write_text(changed, encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("proposal", "problem"),
    [
        ("{num_warps: 3}", "num_warps is 3, not a power of two"),
        ("{block_min: 100}", "block_min is 100, not a power of two"),
        (
            "{block_scale: 2, block_params: [BLOCK_M, BLOCK_N], block_floor: {BLOCK_K: 48}}",
            "block_floor.BLOCK_K is 48, not a power of two",
        ),
        ("{block_floor: {BLOCK_K: 64}}", GROWTH_ONLY),
        ("{block_scale: 0.5, block_floor: {BLOCK_K: 64}}", GROWTH_ONLY),
        ("{tile_evidence: registers_per_thread}", "tile_evidence is read only by warps_fit_tile"),
    ],
)
def test_proposal_keys_triton_cannot_use_are_bad_input(tmp_path: Path, proposal: str, problem: str) -> None:
    rules = _user_rule(tmp_path, "NA312", r"^proposal: .*$", f"proposal: {proposal}")
    with pytest.raises(RuleError, match=re.escape(problem)):
        load_rule_dir(rules)
    result = runner.invoke(
        app, ["recommend", str(CORPUS / "linear_bias_gelu.ModelNew.ncu-rep.gz"), "--rules", str(rules)]
    )
    assert result.exit_code == 2, result.output
    assert "NA312.yaml" in result.output and problem in result.output and "Traceback" not in result.output


def test_shipped_proposals_still_load() -> None:
    hints = [r.spec.proposal for r in load_rules() if r.spec.proposal is not None]
    assert any(h.block_floor for h in hints) and any(h.tile_evidence for h in hints)


def _rmsnorm_proposals(rules_dir: Path | None) -> list[tuple[dict[str, int], str]]:
    table = read_report(CORPUS / "rmsnorm_rows.ModelNew.ncu-rep.gz", variant="ModelNew")
    source = analyze_file(ROOT / "kernels" / "corpus" / "rmsnorm_rows.py")
    results = [r for r in evaluate(table, load_rules(rules_dir), source=source) if r.user_kernel]
    assert results
    return [(p.params, p.reason) for r in results for p in r.proposals]


def test_a_derived_chunk_target_is_proposed_as_a_power_of_two(tmp_path: Path) -> None:
    shipped = [params for params, reason in _rmsnorm_proposals(None) if reason.startswith("NA323")]
    assert shipped == [{"BLOCK_SIZE": 4096}]  # the corpus start's 128-element chunks of a 4,096 row
    # a rule file's target of 100 chunks (12,800 elements): the power of two at or below it
    target = "  target_block: 100 * src_chunk_block"
    rules = _user_rule(tmp_path, "NA323", r"^  target_block: max\(.*$", target)
    moved = [params for params, reason in _rmsnorm_proposals(rules) if reason.startswith("NA323")]
    assert moved == [{"BLOCK_SIZE": 8192}]


@pytest.mark.parametrize("stem", ["scatter_add_rows", "attention_fwd", "int8_weight_gemm"])
def test_a_report_named_file_dot_variant_gets_its_own_class_launch(tmp_path: Path, stem: str) -> None:
    """The corpus reports are named FILE.VARIANT.ncu-rep.gz: with --kernel-file the variant
    ``scatter_add_rows.ModelNew_best`` matched no class and took the file's first launch (the start's
    BLOCK_D 128, BLOCK_M 1 as the "current config", and a NA324 warning on the sweep's best)."""
    named = CORPUS / f"{stem}.ModelNew_best.ncu-rep.gz"
    bare = tmp_path / "ModelNew_best.ncu-rep.gz"
    bare.write_bytes(named.read_bytes())
    outputs = []
    for report in (named, bare):
        args = ["recommend", str(report), "--kernel-file", str(ROOT / "kernels" / "corpus" / f"{stem}.py")]
        result = runner.invoke(app, [*args, "-q", "--fail-on", "warning"])
        assert result.exit_code == 0, result.output  # the sweep's best: no warning (issue 13's precision)
        outputs.append(re.findall(r"triton\.Config\(.*\),\s+# current config", result.output))
    assert outputs[0] == outputs[1] and outputs[0]


def test_a_kernel_file_without_triton_kernels_is_bad_input(tmp_path: Path) -> None:
    """An empty --kernel-file made every launch of the corpus report a "library kernel" (0 launches, exit 0
    with --fail-on warning, the NA323 warning the right file gives hidden)."""
    report = str(CORPUS / "rmsnorm_rows.ModelNew.ncu-rep.gz")
    right_file = str(CORPUS_KERNELS / "rmsnorm_rows.py")
    right = runner.invoke(app, ["recommend", report, "--kernel-file", right_file])
    assert "WARNING NA323" in right.output
    for text in ("", "import torch\n\n\ndef add(x, y):\n    return x + y\n"):
        empty = tmp_path / "kernel.py"
        empty.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["recommend", report, "--kernel-file", str(empty), *FAIL_ON_WARNING])
        assert result.exit_code == 2, result.output
        assert "kernel.py" in result.output and "defines no @triton.jit kernel" in result.output


def test_a_kernel_file_defining_none_of_the_profiled_kernels_is_bad_input() -> None:
    """The wrong --kernel-file (colsum's for rmsnorm's report) turned the user's kernel into a "library
    kernel": 0 launches, exit 0 with --fail-on warning."""
    report = str(CORPUS / "rmsnorm_rows.ModelNew.ncu-rep.gz")
    wrong = str(CORPUS_KERNELS / "colsum.py")
    result = runner.invoke(app, ["recommend", report, "--kernel-file", wrong, *FAIL_ON_WARNING])
    assert result.exit_code == 2, result.output
    assert "colsum.py" in result.output
    assert "defines none of the profiled kernels (rmsnorm_fwd_kernel" in result.output


@pytest.mark.parametrize("content", ["", "NA312.YAML", "README.md", "plain file"])
def test_a_rule_directory_that_gives_no_rule_is_bad_input(tmp_path: Path, content: str) -> None:
    """An empty --rules directory, or one holding only NA312.YAML (upper case), applied no rule and exited
    as if it had (1, the shipped findings); a plain file was called 'not found'."""
    rules = tmp_path / "rules"
    if content == "plain file":
        rules.write_text("id: NA999\n", encoding="utf-8")
    else:
        rules.mkdir()
        if content:
            (rules / content).write_text((ROOT / "rules" / "NA312-dot-tile-grow.yaml").read_text())
    result = runner.invoke(
        app, ["recommend", str(CORPUS / "linear_bias_gelu.ModelNew.ncu-rep.gz"), "--rules", str(rules)]
    )
    assert result.exit_code == 2, result.output
    problem = "is not a directory" if content == "plain file" else "holds no rule file"
    assert str(rules) in result.output and problem in result.output


def test_a_report_named_after_no_class_says_whose_launch_values_it_assumes(tmp_path: Path) -> None:
    """ncu's usual name, profile.ncu-rep, of scatter_add_rows' sweep-best: the advice took the file's
    default launch (the start's) without a word; now a note says so and how to name the report."""
    report = tmp_path / "profile.ncu-rep.gz"
    report.write_bytes((CORPUS / "scatter_add_rows.ModelNew_best.ncu-rep.gz").read_bytes())
    kernel_file = str(CORPUS_KERNELS / "scatter_add_rows.py")
    result = runner.invoke(app, ["recommend", str(report), "--kernel-file", kernel_file])
    assert "profile: no class of scatter_add_rows.py is named so (ModelNew, ModelNew_best" in result.output
    named = str(CORPUS / "scatter_add_rows.ModelNew_best.ncu-rep.gz")
    result = runner.invoke(app, ["recommend", named, "--kernel-file", kernel_file])
    assert "is named so" not in result.output  # the corpus report's own name finds its class
    assert "current config" in result.output  # (the source was read)


def test_a_user_growth_beside_a_halving_of_a_non_dot_kernel_says_so(tmp_path: Path) -> None:
    """Red team 6: a user rule growing the BLOCK of a kernel without tl.dot was proposed beside NA309's
    halving with no word about the conflict; both stay (the measurement decides), with a note naming both."""
    rules = _user_rule(tmp_path, "NA204", r"^proposal: .*$", "proposal: {block_scale: 2}")
    run = rundir.load_run(ROOT / "examples" / "runs" / "spill")
    results = evaluate(run.table, load_rules(rules), source=analyze_file(run.kernel_file))
    start = next(r for r in results if r.variant == "ModelNew_block8192_w1" and r.proposals)
    sizes = {p.params.get("BLOCK_SIZE") for p in start.proposals}
    assert min(sizes) < 8192 < max(sizes)  # both directions proposed
    assert any("NA309" in n and "NA204 grows the tile" in n and "both configs" in n for n in start.notes)
