"""`ncu-advisor report [RUN] --format md|html|json|junit|sarif|csv [-o FILE] [--fail-on LEVEL]`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from ncu_advisor.cli import app, handle_errors, out_console
from ncu_advisor.errors import RunError

#: Where the shipped example runs live (used when there is no ``runs/`` folder).
EXAMPLE_RUNS = Path(__file__).resolve().parent.parent.parent / "examples" / "runs"


class ReportFormat(str, Enum):
    md = "md"
    html = "html"
    json = "json"
    junit = "junit"
    sarif = "sarif"
    csv = "csv"


class FailOn(str, Enum):
    info = "info"
    warning = "warning"
    error = "error"
    never = "never"


def default_run(runs_root: Path = Path("runs")) -> Path:
    """The latest run under ``runs/``, else the newest shipped run under examples/runs/.

    Raises:
        RunError: there is neither.
    """
    from ncu_advisor.rundir import latest_run  # noqa: PLC0415

    found = latest_run(runs_root) or latest_run(EXAMPLE_RUNS)
    if found is None:
        raise RunError(
            "no run directory found under runs/ or examples/runs/",
            path=runs_root,
            hint="run `ncu-advisor profile FILE` first, or pass a run directory",
        )
    return found


def render(fmt: str, data: object, fail_on: str) -> str:
    """Render ``data`` (a ``ReportData``) in ``fmt``."""
    from ncu_advisor.analysis import report_data  # noqa: PLC0415 - keep CLI start-up light

    if fmt == "md":
        from ncu_advisor.render.report_md import render_markdown  # noqa: PLC0415

        return render_markdown(data)  # type: ignore[arg-type]
    if fmt == "html":
        from ncu_advisor.render.report_html import render_html  # noqa: PLC0415

        return render_html(data)  # type: ignore[arg-type]
    if fmt == "junit":
        from ncu_advisor.render.junit import render_junit  # noqa: PLC0415

        return render_junit(data, fail_on=fail_on)  # type: ignore[arg-type]
    if fmt == "sarif":
        from ncu_advisor.render.sarif import render_sarif  # noqa: PLC0415

        return render_sarif(data)  # type: ignore[arg-type]
    if fmt == "csv":
        return report_data.report_csv(data)  # type: ignore[arg-type]
    return report_data.report_json(data)  # type: ignore[arg-type]


@app.command()
@handle_errors
def report(
    run: Path | None = typer.Argument(
        None, help="Run directory (default: the latest under runs/, else the newest under examples/runs/)."
    ),
    fmt: ReportFormat = typer.Option(ReportFormat.md, "--format", "-f", help="Output format."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (atomically) instead of stdout."
    ),
    fail_on: FailOn = typer.Option(
        FailOn.never,
        "--fail-on",
        help="Exit 1 (and fail JUnit cases) on an incorrect variant or a finding at "
        "or above this severity; 'never' still fails JUnit cases of incorrect "
        "variants but exits 0.",
    ),
    source_root: Path | None = typer.Option(
        None,
        "--source-root",
        help="Repository root the kernel path in SARIF is relative to (default: the working directory).",
    ),
) -> None:
    """Render a run as markdown, HTML, JSON, JUnit XML, SARIF 2.1.0 or CSV.

    A `tune` run directory (or its tune.json) renders as md, html (with the time-per-trial plot), json or csv.
    """
    from ncu_advisor.analysis.report_data import build_report, variant_failures, write_output  # noqa: PLC0415
    from ncu_advisor.rundir import load_run  # noqa: PLC0415

    if output is not None and output.is_dir():
        from ncu_advisor.errors import OutputError  # noqa: PLC0415

        raise OutputError("output path is a directory", path=output, hint="give a file name with -o")
    run_path = run if run is not None else default_run()
    if _is_tune_run(run_path):
        _tune_report(run_path, fmt.value, output, fail_on.value)
        return
    loaded = load_run(run_path)
    data = build_report(loaded, source_root=source_root)
    text = render(fmt.value, data, fail_on.value)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_output(text, output)
        out_console.print(
            f"wrote {output} ({fmt.value}, {len(data.variants)} variants, {len(data.findings)} findings)",
            markup=False,
        )
    if fail_on is not FailOn.never:
        failing = [
            v.name for v in data.variants if variant_failures(v, None if v.is_reference else fail_on.value)
        ]
        if failing:
            typer.echo(f"failing variants (--fail-on {fail_on.value}): {', '.join(failing)}", err=True)
            raise typer.Exit(1)


def _is_tune_run(path: Path) -> bool:
    """A tune run directory (tune.json, no manifest.json) or a tune.json file."""
    if path.is_file():
        return path.name == "tune.json"
    return (path / "tune.json").is_file() and not (path / "manifest.json").is_file()


def _tune_report(path: Path, fmt: str, output: Path | None, fail_on: str) -> None:
    from ncu_advisor.errors import InputError  # noqa: PLC0415
    from ncu_advisor.analysis.report_data import write_output  # noqa: PLC0415
    from ncu_advisor.render.tune_report import TUNE_FORMATS, render_tune  # noqa: PLC0415
    from ncu_advisor.analysis.trajectory import read_trajectory  # noqa: PLC0415

    if fmt not in TUNE_FORMATS:
        raise InputError(
            f"--format {fmt} describes the findings of a profile run; a tune run has none",
            path=path,
            hint=f"use --format {', '.join(TUNE_FORMATS)} for a tune run",
        )
    if fail_on != "never":
        raise InputError(
            "--fail-on applies to profile runs (variants and findings)",
            path=path,
            hint="drop --fail-on, or report the profile run the tuned variant was measured in",
        )
    trajectory = read_trajectory(path)
    run_dir = path.parent if path.is_file() else path
    text = render_tune(fmt, trajectory, run_dir)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_output(text, output)
    out_console.print(f"wrote {output} ({fmt}, tune run, {len(trajectory.trials)} trials)", markup=False)
