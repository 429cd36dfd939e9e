"""`ncu-advisor recommend [REPORT_OR_RUN...]`: apply the rule set and print advice.

With no argument: the latest run directory under ./runs, else examples/runs/improved
(``analysis.inputs.default_inputs``). The kernel file comes from --kernel-file (alias --source), else the
run's copy of its kernel file, else the ``kernel_file`` of a ``meta.json`` next to the reports.

Exit codes: 0 no finding at or above --fail-on (default error); 1 findings at or above it, or a launch ncu
did not profile (whatever --fail-on: never clean); 2 bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ncu_advisor.analysis.pipeline import analyze
from ncu_advisor.cli import app, err_console, handle_errors
from ncu_advisor.cli._common import (
    ALL_KERNELS_OPTION,
    FAIL_ON_OPTION,
    KERNEL_FILE_OPTION,
    REPORT_OR_RUN_PATH,
    RULES_OPTION,
    STAGE_OPTION,
    default_input_paths,
    fail_on_choice,
    format_choice,
)
from ncu_advisor.collect.triton_api import probe_triton_language
from ncu_advisor.render.formats import RECOMMEND_FORMATS, RenderOptions, render
from ncu_advisor.render.output import write_stdout


@app.command()
@handle_errors
def recommend(
    inputs: list[Path] = typer.Argument(
        None,
        help="Reports (.ncu-rep, .ncu-rep.gz, ncu CSV or text output, metrics JSON) or run directories.",
        parser=REPORT_OR_RUN_PATH,
        metavar="REPORT_OR_RUN",
        show_default=False,
    ),
    kernel_file: Path | None = KERNEL_FILE_OPTION,
    stage: str = STAGE_OPTION,
    rules_dir: Path | None = RULES_OPTION,
    output_format: str = typer.Option("text", "--format", "-f", help="text | json | markdown (md) | prompt"),
    fail_on_given: str | None = FAIL_ON_OPTION,
    kernel: str | None = typer.Option(None, "--kernel", help="Only kernels whose name contains this text."),
    show_skipped: bool = typer.Option(
        False, "--show-skipped", help="List the rules skipped per kernel and why (text)."
    ),
    all_kernels: bool = ALL_KERNELS_OPTION,
) -> None:
    """Apply the tuning rules to reports or runs and print findings with evidence and proposed configs."""
    fmt = format_choice(output_format, RECOMMEND_FORMATS)
    fail_on = fail_on_choice(fail_on_given)
    analysis = analyze(
        list(inputs) if inputs else default_input_paths(),
        kernel_file=kernel_file,
        rules_dir=rules_dir,
        stage=stage,
        kernel=kernel,
        all_kernels=all_kernels,
    )
    for note in analysis.notes:
        err_console.print(f"note: {note}", markup=False)
    if fmt == "prompt" and not analysis.kernel_facts:
        err_console.print(
            "note: no kernel file; the prompt's [CURRENT CODE] is empty (use --kernel-file)", markup=False
        )
    # the prompt names the installed Triton's tl.* functions (else the seeds' list)
    triton_api = probe_triton_language() if fmt == "prompt" else None
    text = render(fmt, analysis, RenderOptions(show_skipped=show_skipped, triton_api=triton_api))
    write_stdout(text + "\n")
    if analysis.fails(fail_on):
        raise typer.Exit(1)
