"""Defects a new user met (session 7): a non-UTF-8 kernel file refused without a fix, a bad ``tune`` option
refused by a message that did not name it (``--compile-procs -1`` listed five other options), and a rule
proposal giving both ``warps_fit_tile`` and ``num_warps`` (``num_warps`` won, ``warps_fit_tile`` was ignored
without a word)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app
from ncu_advisor.cli.tune import _check_options
from ncu_advisor.collect.profile.variants import parse_kernel_file
from ncu_advisor.errors import InputError, KernelFileError

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "examples" / "reports" / "h200-corpus" / "colsum.ModelNew_best.ncu-rep.gz"
KERNEL = ROOT / "kernels" / "corpus" / "colsum.py"
RULE = ROOT / "rules" / "NA322-tiny-blocks.yaml"
runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _latin1_kernel(tmp_path: Path) -> Path:
    """The shipped corpus kernel with one comment in Latin-1 (an editor's default on some systems)."""
    path = tmp_path / "latin1_kernel.py"
    path.write_bytes(KERNEL.read_bytes() + "# déjà vu\n".encode("latin-1"))
    return path


def test_non_utf8_kernel_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    kernel = _latin1_kernel(tmp_path)
    result = runner.invoke(app, ["recommend", str(REPORT), "--kernel-file", str(kernel)])
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert str(kernel) in text and "not UTF-8" in text and "save the kernel file as UTF-8" in text
    assert "byte 0xe9" in text  # the 'é' of the Latin-1 comment
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_profile_reads_a_non_utf8_kernel_file_the_same_way(tmp_path: Path) -> None:
    kernel = _latin1_kernel(tmp_path)
    with pytest.raises(KernelFileError) as caught:
        parse_kernel_file(kernel)
    assert "not UTF-8" in str(caught.value) and "save the kernel file as UTF-8" in str(caught.value)
    assert parse_kernel_file(KERNEL).body  # the UTF-8 original still parses


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--compile-procs", "-1"], ["--compile-procs -1 must be >= 0"]),
        (["--reps", "0"], ["--reps 0 must be >= 2"]),
        (["--reps", "1", "--budget", "0"], ["--reps 1 must be >= 2", "--budget 0 must be >= 1"]),
        (["--min-gain", "1.5"], ["--min-gain 1.5 must be in [0, 1)"]),
    ],
)
def test_tune_names_each_bad_option(options: list[str], named: list[str]) -> None:
    result = runner.invoke(app, ["tune", str(KERNEL), "--variant", "ModelNew", *options])
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    for words in named:
        assert words in text
    # a valid option is not blamed
    assert ("--timeout" in text) == ("--timeout" in " ".join(options))


def test_tune_option_check_accepts_compile_procs_zero() -> None:
    # checked without running the loop (a GPU machine would start tuning)
    _check_options(None, 3, 300.0, 1, 0, 0.02, None)
    with pytest.raises(InputError, match="--time 0.0 must be > 0 seconds"):
        _check_options(None, 3, 300.0, 1, 0, 0.02, 0.0)


def _rule_with(tmp_path: Path, proposal: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    lines = RULE.read_text(encoding="utf-8").splitlines(keepends=True)
    assert sum(line.startswith("proposal:") for line in lines) == 1
    text = "".join(f"proposal: {proposal}\n" if line.startswith("proposal:") else line for line in lines)
    (rules / "NA922-copy.yaml").write_text(text.replace("id: NA322", "id: NA922", 1), encoding="utf-8")
    return rules


def test_rule_with_warps_fit_tile_and_num_warps_is_refused(tmp_path: Path) -> None:
    rules = _rule_with(tmp_path, "{warps_fit_tile: 8, num_warps: 2}")
    result = runner.invoke(app, ["recommend", str(REPORT), "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert "NA922-copy.yaml" in text and "warps_fit_tile" in text and "not both" in text


def test_rule_with_warps_fit_tile_alone_still_loads(tmp_path: Path) -> None:
    rules = _rule_with(tmp_path, "{warps_fit_tile: 8, tile_evidence: elements_per_program}")
    result = runner.invoke(app, ["recommend", str(REPORT), "--rules", str(rules)])
    assert result.exit_code in (0, 1), result.output


@pytest.mark.parametrize(
    "proposal",
    [
        "{block_scale: 2, block_floor: {num_warps: 64}}",
        "{block_scale: 2, block_params: [BLOCK_M, num_stages]}",
    ],
)
def test_rule_naming_a_non_block_as_a_block_is_refused(tmp_path: Path, proposal: str) -> None:
    rules = _rule_with(tmp_path, proposal)
    result = runner.invoke(app, ["recommend", str(REPORT), "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert "NA922-copy.yaml" in text and "not a BLOCK" in text
    assert "num_warps" in text or "num_stages" in text


def test_rule_naming_blocks_in_lower_case_still_loads(tmp_path: Path) -> None:
    # KernelFacts.block_params matches BLOCK* case-insensitively (a kernel may name it block_size)
    rules = _rule_with(tmp_path, "{block_scale: 2, block_params: [block_size], block_floor: {Block_K: 64}}")
    result = runner.invoke(app, ["recommend", str(REPORT), "--rules", str(rules)])
    assert result.exit_code in (0, 1), result.output
