"""`ncu-advisor report [RUN] --format md|html|json|junit|sarif|csv [-o FILE] [--fail-on LEVEL]`."""

from __future__ import annotations

from pathlib import Path

import typer

from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.analysis.result import variant_failures
from ncu_advisor.analysis.trajectory import read_trajectory
from ncu_advisor.cli import app, err_console, handle_errors
from ncu_advisor.cli._common import (
    ALL_KERNELS_OPTION,
    FAIL_ON_OPTION,
    KERNEL_FILE_OPTION,
    RULES_OPTION,
    RUN_PATH,
    STAGE_OPTION,
    default_input_paths,
    fail_on_choice,
    format_choice,
)
from ncu_advisor.errors import InputError, OutputError, printable
from ncu_advisor.render.formats import REPORT_FORMATS, render_report
from ncu_advisor.render.output import write_stdout, write_text_atomic
from ncu_advisor.render.skipped import notes_of
from ncu_advisor.render.tune_report import TUNE_FORMATS, render_tune


@app.command()
@handle_errors
def report(
    run: Path | None = typer.Argument(
        None,
        help="Run directory (default: the latest under runs/, else examples/runs/improved).",
        parser=RUN_PATH,
        metavar="RUN",
        show_default=False,
    ),
    fmt: str = typer.Option("md", "--format", "-f", help="md (markdown) | html | json | junit | sarif | csv"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (atomically) instead of stdout."
    ),
    fail_on_given: str | None = FAIL_ON_OPTION,
    source_root: Path | None = typer.Option(
        None,
        "--source-root",
        help="Repository root the kernel path in SARIF is relative to (default: the working directory).",
    ),
    rules_dir: Path | None = RULES_OPTION,
    stage: str = STAGE_OPTION,
    all_kernels: bool = ALL_KERNELS_OPTION,
    kernel_file: Path | None = KERNEL_FILE_OPTION,
) -> None:
    """Render a run as markdown, HTML, JSON, JUnit XML, SARIF 2.1.0 or CSV.

    Exit 1 when a launch was not profiled (whatever --fail-on), a variant is incorrect or did not run, or a
    finding is at or above --fail-on ('never': only a launch not profiled; JUnit still fails the cases of
    incorrect variants). A `tune` run directory (or its tune.json)
    renders as md, html (with the time-per-trial plot), json or csv.
    """
    fail_on = fail_on_choice(fail_on_given)
    if output is not None and output.is_dir():
        raise OutputError("output path is a directory", path=output, hint="give a file name with -o")
    run_path = run if run is not None else default_input_paths()[0]
    if _is_tune_run(run_path):
        _tune_report(run_path, fmt, output, fail_on_given)
        return
    fmt = format_choice(fmt, REPORT_FORMATS)
    data = analyze(
        [run_path],
        kernel_file=kernel_file,
        rules_dir=rules_dir,
        stage=stage,
        all_kernels=all_kernels,
        source_root=source_root,
    )
    for note in notes_of(data):  # also in the document (CSV has no place for them: stderr is where they show)
        err_console.print(f"note: {note}", markup=False)
    text = render_report(fmt, data, fail_on=fail_on)
    if output is None:
        write_stdout(text)
    else:
        write_text_atomic(output, text)
        err_console.print(
            f"wrote {printable(str(output))} ({fmt}, {plural(len(data.variants), 'variant')}, "
            f"{plural(len(data.findings), 'finding')})",
            markup=False,
        )
    if fail_on == "never":  # correctness and findings do not count; a launch not profiled still does
        failing = list(dict.fromkeys(str(x.get("variant")) for x in data.not_profiled))
    else:
        failing = [v.name for v in data.variants if variant_failures(v, None if v.is_reference else fail_on)]
    if failing or data.fails(fail_on):
        typer.echo(
            f"failing variants (--fail-on {fail_on}): {', '.join(failing) or 'library kernels'}", err=True
        )
        raise typer.Exit(1)


def plural(count: int, noun: str) -> str:
    """``1 variant``, ``2 variants``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _is_tune_run(path: Path) -> bool:
    """A tune run directory (tune.json, no manifest.json) or a tune.json file."""
    if path.is_file():
        return path.name == "tune.json"
    return (path / "tune.json").is_file() and not (path / "manifest.json").is_file()


def _tune_report(path: Path, fmt: str, output: Path | None, fail_on: str | None) -> None:
    if fmt not in TUNE_FORMATS and fmt != "markdown":
        raise InputError(
            f"--format {fmt} describes the findings of a profile run; a tune run has none",
            path=path,
            hint=f"use --format {', '.join(TUNE_FORMATS)} for a tune run",
        )
    if fail_on not in (None, "never"):
        raise InputError(
            "--fail-on applies to profile runs (variants and findings)",
            path=path,
            hint="drop --fail-on, or report the profile run the tuned variant was measured in",
        )
    fmt = format_choice(fmt, TUNE_FORMATS)
    trajectory = read_trajectory(path)
    run_dir = path.parent if path.is_file() else path
    text = render_tune(fmt, trajectory, run_dir)
    if output is None:
        write_stdout(text)
        return
    write_text_atomic(output, text)
    err_console.print(
        f"wrote {printable(str(output))} ({fmt}, tune run, {plural(len(trajectory.trials), 'trial')})",
        markup=False,
    )
