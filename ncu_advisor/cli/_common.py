"""The options every analysing command shares (``recommend``, ``report``, ``compare``): one name, one
default, one check each."""

from __future__ import annotations

from pathlib import Path

import typer

from ncu_advisor.analysis.inputs import default_input_note, default_inputs
from ncu_advisor.analysis.result import DEFAULT_FAIL_ON, DEFAULT_STAGE, FAIL_ON_CHOICES
from ncu_advisor.errors import InputError

#: Accepted spellings of one format.
FORMAT_ALIASES = {"md": "markdown", "markdown": "markdown"}


def format_choice(value: str, choices: tuple[str, ...]) -> str:
    """``value`` as the name ``choices`` uses (``md`` and ``markdown`` are one format).

    Raises:
        InputError: an unknown format.
    """
    wanted = FORMAT_ALIASES.get(value, value)
    for choice in choices:
        if FORMAT_ALIASES.get(choice, choice) == wanted:
            return choice
    shown = ", ".join(choices)
    raise InputError(f"unknown --format {value!r}", hint=f"use one of {shown} (md and markdown are one)")


def fail_on_choice(value: str | None) -> str:
    """Check ``--fail-on`` (None: not given, the default). Raises InputError for an unknown level."""
    if value is None:
        return DEFAULT_FAIL_ON
    if value not in FAIL_ON_CHOICES:
        raise InputError(f"unknown --fail-on {value!r}", hint=f"use one of {', '.join(FAIL_ON_CHOICES)}")
    return value


def default_input_paths() -> list[Path]:
    """``analysis.inputs.default_inputs``, saying on stderr when it is the shipped example run."""
    from ncu_advisor.cli import err_console

    paths = default_inputs()
    for path in paths:
        note = default_input_note(path)
        if note:
            err_console.print(f"note: {note}", markup=False)
    return paths


FAIL_ON_HELP = (
    "Exit 1 on findings of this severity or worse (info | warning | error | never); "
    f"default {DEFAULT_FAIL_ON}."
)


FAIL_ON_OPTION = typer.Option(None, "--fail-on", help=FAIL_ON_HELP, show_default=False)


STAGE_OPTION = typer.Option(
    DEFAULT_STAGE, "--stage", help="auto | all | block-size | fine-tune (bottleneck rules always run)."
)


RULES_OPTION = typer.Option(None, "--rules", help="A directory of extra rule files (same id replaces).")


ALL_KERNELS_OPTION = typer.Option(
    False,
    "--all-kernels",
    help="Show library kernels (cuDNN, PyTorch: not defined in the kernel file) in full and count "
    "their findings for --fail-on; without it they are listed apart.",
)


KERNEL_FILE_OPTION = typer.Option(
    None,
    "--kernel-file",
    "--source",
    help="The Triton kernel file the inputs profiled (default: the run's copy).",
)
