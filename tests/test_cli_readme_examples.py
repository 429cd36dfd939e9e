"""The README's example outputs are real: every fenced block that starts with ``$ ncu-advisor ...`` is run on
the shipped example runs, and each line it shows must appear in the real output, in the same order (a
block may leave lines out; ``...`` marks where). A stale example (issue 11: the `recommend --kernel
conv2d_scale_min --stage fine-tune` output no longer matched) fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncu_advisor.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
runner = CliRunner()


def examples() -> list[tuple[str, list[str]]]:
    """(command line, shown lines) of each README block starting with ``$ ncu-advisor``."""
    found = []
    for block in re.findall(r"```\n(\$ ncu-advisor [^\n]*)\n(.*?)```", README.read_text(), flags=re.S):
        command, body = block
        found.append((command[2:], [line.rstrip() for line in body.splitlines()]))
    return found


def test_the_readme_has_examples() -> None:
    commands = [command for command, _ in examples()]
    assert any(c.startswith("ncu-advisor recommend ") for c in commands), commands
    assert any(c.startswith("ncu-advisor compare ") for c in commands), commands


def shown_in_order(shown: list[str], real: list[str]) -> str | None:
    """The first shown line missing from ``real`` (searched in order after the previous match), or None."""
    at = 0
    for line in shown:
        if line.strip() in ("", "..."):
            continue
        try:
            at = real.index(line, at) + 1
        except ValueError:
            return line
    return None


@pytest.mark.parametrize("command,shown", examples(), ids=[c for c, _ in examples()])
def test_readme_example_output_is_current(
    command: str, shown: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, shlex.split(command)[1:])
    real = [line.rstrip() for line in result.stdout.splitlines()]
    missing = shown_in_order(shown, real)
    assert missing is None, f"README example `{command}` shows a line it no longer prints:\n{missing}"


def test_a_drifted_line_is_caught() -> None:
    real = ["a", "b", "c"]
    assert shown_in_order(["a", "...", "c"], real) is None
    assert shown_in_order(["c", "a"], real) == "a"  # order matters
    assert shown_in_order(["a", "b2"], real) == "b2"
