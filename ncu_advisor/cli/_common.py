"""The options every analysing command shares (``recommend``, ``report``, ``compare``): one name, one
default, one check each."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import typer

from ncu_advisor import rundir
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


#: What the analysing commands and ``metrics`` read, for the messages that say what to pass.
ACCEPTED_INPUTS = (
    "report files (.ncu-rep, .ncu-rep.gz, ncu --csv exports, ncu's text output, a metrics JSON block) or run "
    "directories written by `ncu-advisor profile`"
)
#: What ``report`` and ``compare`` read.
RUN_INPUTS = "run directories written by `ncu-advisor profile`"


def path_parser(accepted: str) -> Callable[[str], Path]:
    """typer's parser of a report or run argument: the path, refusing ``""`` and ``-`` with what to pass
    (``accepted``) instead.

    ``Path("")`` is ``.``, so ``metrics ""`` (an unset shell variable: ``metrics "$REPORT"``) read the
    current directory and said "is a directory"; ``-`` (standard input by convention) said "no such
    file". Both are refused on the raw text, before it becomes a path (``Path("./-")`` is ``Path("-")``:
    a file named ``-`` is passed as ``./-``). The parser raises ``typer.BadParameter`` (a usage error,
    exit 2).
    """
    piped = (
        "a run directory named - is passed as ./-"
        if accepted == RUN_INPUTS
        else "save piped data to a file first, e.g. `ncu --csv --page raw ... > raw.csv`, and pass that "
        "file; a file named - is passed as ./-"
    )

    def parse(value: str) -> Path:
        if not value:
            raise typer.BadParameter(f"an empty path (an unset or empty shell variable?); pass {accepted}")
        if value == "-":
            raise typer.BadParameter(f"- is standard input, which is not read; pass {accepted} ({piped})")
        return Path(value)

    return parse


#: The parsers of the commands' path arguments (``typer.Argument(parser=...)``).
REPORT_OR_RUN_PATH = path_parser(ACCEPTED_INPUTS)
RUN_PATH = path_parser(RUN_INPUTS)


#: Where ``profile`` writes runs and where the analysing commands look first when given no input.
RUNS_ROOT = Path("runs")


def check_runs_root(root: Path = RUNS_ROOT) -> None:
    """Refuse a ``./runs`` that exists but holds no run (exit 2), instead of analysing the shipped example.

    A CI job whose profile step failed leaves ``runs`` empty, as a plain file or as a dangling link: the
    example's results in its place would read as the job's own. Only where no ``runs`` exists at all is
    the example used.

    Raises:
        InputError: ``root`` is a dangling link, not a directory, unreadable, or holds no run directory.
    """
    if not os.path.lexists(root):
        return
    hint = "run `ncu-advisor profile FILE.py` first, pass a report or run, or remove it"
    if root.is_symlink() and not root.exists():
        target = os.readlink(root)
        raise InputError(f"a dangling link (to {target}): holds no run", path=root, hint=hint)
    if not root.is_dir():
        raise InputError("not a directory: holds no run", path=root, hint=hint)
    try:
        found = rundir.latest_run(root)
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror})", path=root, hint=hint) from None
    if found is not None:
        return
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror})", path=root, hint=hint) from None
    if not any(p.is_dir() and not p.name.startswith(".") for p in entries):
        holds = "is empty" if not entries else "holds no run directory"
        raise InputError(f"{holds}: nothing of yours to analyse", path=root, hint=hint)
    # a folder without manifest.json: ``default_inputs`` names it (a profile that crashed)


def default_input_paths() -> list[Path]:
    """``analysis.inputs.default_inputs`` after ``check_runs_root``; says when it is the shipped example.

    That note is printed even under ``-q``: it says what was analysed (another run than the user's own).
    """
    from ncu_advisor.cli import error_console

    check_runs_root()
    paths = default_inputs(RUNS_ROOT)
    for path in paths:
        note = default_input_note(path)
        if note:
            error_console.print(f"note: {note}", markup=False)
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
