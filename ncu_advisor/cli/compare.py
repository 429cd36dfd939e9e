"""`ncu-advisor compare BASE NEW [--threshold PCT] [--format text|md|json] [--force]
[--require-same-kernel] [-o FILE]`."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ncu_advisor import rundir
from ncu_advisor.analysis.compare import compare_reports
from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.cli import app, err_console, handle_errors
from ncu_advisor.cli._common import (
    ALL_KERNELS_OPTION,
    FAIL_ON_OPTION,
    RULES_OPTION,
    RUN_PATH,
    STAGE_OPTION,
    fail_on_choice,
    format_choice,
)
from ncu_advisor.errors import InputError, RunError, printable
from ncu_advisor.render import compare as rendering
from ncu_advisor.render.output import write_stdout, write_text_atomic
from ncu_advisor.rules import load_rules

#: ``compare --format``: one registry line per format.
COMPARE_FORMATS = {
    "text": rendering.render_text,
    "md": rendering.render_markdown,
    "json": rendering.render_json,
}


@app.command()
@handle_errors
def compare(
    base: Path = typer.Argument(..., help="The baseline run directory.", parser=RUN_PATH),
    new: Path = typer.Argument(..., help="The run to judge against it.", parser=RUN_PATH),
    threshold: float = typer.Option(
        2.0,
        "--threshold",
        "-t",
        help="Smallest relative change (percent) that counts, on top of the noise bar.",
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text | md (markdown) | json"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (atomically) instead of stdout."
    ),
    allow_different_gpus: bool = typer.Option(
        False,
        "--allow-different-gpus",
        help="Compare timings measured on different GPU models (between or within the runs).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Compare runs from different GPUs or clock-control settings."
    ),
    require_same_kernel: bool = typer.Option(
        False,
        "--require-same-kernel",
        help="Exit 2 when the runs profile different kernel sources (another reference problem or kernel "
        "file); without it they are compared by variant name, the difference said first.",
    ),
    fail_on_given: str | None = FAIL_ON_OPTION,
    rules_dir: Path | None = RULES_OPTION,
    stage: str = STAGE_OPTION,
    all_kernels: bool = ALL_KERNELS_OPTION,
) -> None:
    """Compare two runs: faster / slower / same within noise per variant, and the findings that are new
    or resolved; exit 1 on a regression, on a new finding at or above --fail-on, or on a launch not
    profiled."""
    fmt = format_choice(fmt, tuple(COMPARE_FORMATS))
    fail_on = fail_on_choice(fail_on_given)
    check_threshold(threshold)
    for label, path in (("BASE", base), ("NEW", new)):
        check_run_argument(label, path)
    rules = load_rules(rules_dir)
    base_data = analyze([base], rules, stage=stage, all_kernels=all_kernels)
    new_data = analyze([new], rules, stage=stage, all_kernels=all_kernels)
    result = compare_reports(
        base_data,
        new_data,
        threshold_pct=threshold,
        force=force,
        allow_different_gpus=allow_different_gpus,
        fail_on=fail_on,
        require_same_kernel=require_same_kernel,
    )
    text = COMPARE_FORMATS[fmt](result)
    if output is None:
        write_stdout(text)
    else:
        write_text_atomic(output, text)
        err_console.print(f"wrote {printable(str(output))}", markup=False)
    if result.exit_code:
        problems = [v.name for v in result.regressions] + [
            f"new {f.rule} on {f.variant}" for f in result.failing_findings
        ]
        if result.not_profiled:
            problems.append(f"{result.not_profiled} launch(es) not profiled")
        typer.echo("regression: " + ", ".join(problems), err=True)
        raise typer.Exit(result.exit_code)


def check_threshold(threshold: float) -> None:
    """Refuse a ``--threshold`` that is negative, NaN or infinite (``inf`` would disable the gate).

    Raises:
        InputError: exit 2.
    """
    if not (math.isfinite(threshold) and threshold >= 0):
        raise InputError(
            f"--threshold {threshold!r} is not a finite percentage >= 0",
            hint="give the smallest change that counts in percent, e.g. --threshold 2 (the default)",
        )


def check_run_argument(label: str, path: Path) -> None:
    """Refuse a BASE or NEW that is not a run directory (a report has no timings to compare).

    Raises:
        RunError: naming the argument and the path (exit 2).
    """
    if rundir.is_run_dir(path):
        return
    missing = not path.exists() and not path.is_symlink()
    what = "no such run directory" if missing else "not a run directory"
    raise RunError(
        f"{label}: {what} (compare needs two directories written by `ncu-advisor profile`, "
        "each with manifest.json and timings)",
        path=path,
        hint="pass two run directories; for a single report use `ncu-advisor recommend REPORT`",
    )
