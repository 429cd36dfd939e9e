"""Conventions shared by every command: --version, --quiet, shell completion."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor import __version__
from ncu_advisor.cli import app, err_console

ROOT = Path(__file__).resolve().parent.parent
IMPROVED = ROOT / "examples" / "runs" / "improved"
runner = CliRunner()


def test_version_long_and_short() -> None:
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.stdout.strip() == f"ncu-advisor {__version__}"


def test_quiet_drops_notes_but_keeps_results_and_errors() -> None:
    args = ["recommend", str(IMPROVED), "--format", "json"]
    try:
        loud = runner.invoke(app, args)
        quiet = runner.invoke(app, ["--quiet", *args])
        assert loud.exit_code == quiet.exit_code == 0
        assert "--all-kernels shows them" in loud.stderr  # the library-kernel note
        assert quiet.stderr == "" and quiet.stdout == loud.stdout
        error = runner.invoke(app, ["-q", "report", str(ROOT / "no-such-run")])
        assert error.exit_code == 2 and "error:" in error.stderr and "no-such-run" in error.stderr
    finally:
        err_console.quiet = False  # the console outlives the invocation


def test_shell_completion_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer.completion

    # typer finds the shell from the process tree (shellingham): under a runner without a shell ancestor it
    # finds none and prints "Shell  not supported"; the test is about our app having completion on
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    result = runner.invoke(app, ["--show-completion"])
    assert result.exit_code == 0, result.output
    assert "_NCU_ADVISOR_COMPLETE=complete_bash" in result.stdout
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout


def test_compare_metric_deltas_carry_units() -> None:
    """Percentages move in percentage points, registers by a count: no bare `dram_pct +9.4`."""
    base = ROOT / "examples" / "runs" / "baseline"
    result = runner.invoke(app, ["compare", str(base), str(IMPROVED), "--format", "md"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("| ModelNew |"))
    assert "+60 registers/thread" in row and "SM +55.7 pp" in row
    assert "_pct" not in result.stdout


def test_quiet_is_accepted_after_the_command_too() -> None:
    args = ["recommend", str(IMPROVED), "--format", "json"]
    try:
        for flag in ("-q", "--quiet"):
            quiet = runner.invoke(app, [*args, flag])
            assert quiet.exit_code == 0, quiet.output
            assert quiet.stderr == "" and quiet.stdout.startswith("{")
    finally:
        err_console.quiet = False
