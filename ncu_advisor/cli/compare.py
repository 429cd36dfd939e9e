"""`ncu-advisor compare BASE NEW [--threshold PCT] [--format text|md|json] [--force] [-o FILE]`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from ncu_advisor.cli import app, handle_errors, out_console


class CompareFormat(str, Enum):
    text = "text"
    md = "md"
    json = "json"


@app.command()
@handle_errors
def compare(
    base: Path = typer.Argument(..., help="The baseline run directory."),
    new: Path = typer.Argument(..., help="The run to judge against it."),
    threshold: float = typer.Option(
        2.0,
        "--threshold",
        "-t",
        min=0.0,
        help="Smallest relative change (percent) that counts, on top of the noise bar.",
    ),
    fmt: CompareFormat = typer.Option(CompareFormat.text, "--format", "-f", help="Output format."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (atomically) instead of stdout."
    ),
    allow_different_gpus: bool = typer.Option(
        False,
        "--allow-different-gpus",
        help="Compare timings measured on different GPU models (between or within the runs).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Compare runs from different GPUs / clock-control settings, or with "
        "different variants (only the common ones are compared).",
    ),
) -> None:
    """Compare two runs: faster / slower / same within noise per variant; exit 1 on a regression."""
    from ncu_advisor.analysis import compare as comparing  # noqa: PLC0415
    from ncu_advisor.analysis.report_data import build_report, write_output  # noqa: PLC0415
    from ncu_advisor.rundir import load_run  # noqa: PLC0415

    base_data = build_report(load_run(base), rules=[])
    new_data = build_report(load_run(new), rules=[])
    result = comparing.compare_reports(
        base_data, new_data, threshold_pct=threshold, force=force, allow_different_gpus=allow_different_gpus
    )
    renderers = {
        "text": comparing.render_text,
        "md": comparing.render_markdown,
        "json": comparing.render_json,
    }
    text = renderers[fmt.value](result)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_output(text, output)
        out_console.print(f"wrote {output}", markup=False)
    if result.exit_code:
        typer.echo("regression: " + ", ".join(v.name for v in result.regressions), err=True)
        raise typer.Exit(result.exit_code)
