"""`ncu-advisor metrics REPORT...` prints or writes the tidy table of one or more reports."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from ncu_advisor import rundir
from ncu_advisor.cli import app, err_console, handle_errors
from ncu_advisor.cli._common import REPORT_OR_RUN_PATH
from ncu_advisor.errors import InputError, ReportError
from ncu_advisor.ingest.readers import read_reports
from ncu_advisor.metrics import CORE_METRICS, catalogue, column, contributing_columns, fallback_note, resolve
from ncu_advisor.render.table import FORMATS, render_table
from ncu_advisor.table import ID_COLUMNS

# The shipped real reports, analysed when no REPORT is given (a source checkout or an installed tree).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "reports"


def default_reports(root: Path = EXAMPLES_DIR) -> list[Path]:
    """Every ``*.ncu-rep.gz`` under ``root``, sorted.

    Raises:
        ReportError: there is none.
    """
    reports = sorted(root.rglob("*.ncu-rep.gz")) if root.is_dir() else []
    if not reports:
        raise ReportError(
            "no reports given and no examples found", path=root, hint="pass one or more REPORT files"
        )
    return reports


def select_columns(df: pd.DataFrame, fmt: str, wanted: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The columns to show, and one note line per fallback used.

    ``--metric`` names (resolved through the catalogue's fallbacks) or, for the text table, the core
    metrics present; csv/json/parquet without ``--metric`` keep every collected metric under its own name.
    A metric read through a fallback is shown under its catalogue name, filled from the fallback column.
    """
    notes: list[str] = []
    if not wanted and fmt != "table":
        return df, notes
    names = wanted or [m for m in CORE_METRICS if resolve(df.columns, m) is not None]
    selected = df[list(ID_COLUMNS)].copy()
    units = dict(df.attrs.get("units", {}))
    for name in names:
        values, used = column(df, name)
        if used is None and name not in df.columns:
            raise InputError(
                f"metric {name!r} is in none of the reports, nor any fallback of it",
                hint="`ncu-advisor metrics --format csv REPORT` lists every collected metric",
            )
        selected[name] = values.to_numpy()
        contributors = contributing_columns(df, name)
        for fallback in contributors:
            if fallback == name:
                continue
            if name in contributors:
                # A table of several reports: some launches carry the name, others only a fallback.
                notes.append(
                    f"note: {name} is absent from some launches; using its fallback {fallback} there"
                )
            else:
                notes.append(str(fallback_note(name, fallback)))
        if not units.get(name):
            # The report's own unit, else the fallback's, else the catalogue's (2019 reports store none).
            info = catalogue().get(name)
            units[name] = (units.get(used, "") if used else "") or (info.unit if info else "")
    selected.attrs["units"] = units
    return selected, notes


def _read_inputs(paths: list[Path]) -> pd.DataFrame:
    """The table of reports and run directories (a run gives its metrics table, see ``rundir.load_run``)."""
    runs = [path for path in paths if rundir.is_run_dir(path)]
    if not runs:
        return read_reports(paths)
    notes: list[str] = []
    frames = []
    for path in paths:
        if path in runs:
            run = rundir.load_run(path)
            frames.append(run.table)
            notes += [f"{path}: {note}" for note in run.notes]
        else:
            frames.append(read_reports([path]))
            notes += list(frames[-1].attrs.get("notes", []))
    table = pd.concat(frames, ignore_index=True)
    table.attrs = {"notes": notes}
    return table


@app.command("metrics")
@handle_errors
def metrics_command(
    reports: list[Path] | None = typer.Argument(
        None,
        help="Reports (.ncu-rep(.gz), .nsight-cuprof-report, ncu --csv exports, ncu's text output, a "
        "metrics JSON block) or run directories. Default: examples/reports.",
        parser=REPORT_OR_RUN_PATH,
        metavar="REPORT_OR_RUN",
        show_default=False,
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write to this file (needed for parquet)."
    ),
    metric: list[str] | None = typer.Option(
        None, "--metric", "-m", help="Only this metric (repeatable); fallbacks apply."
    ),
) -> None:
    """Print the table of kernel launches x metrics (base units) of one or more reports.

    json: an array with one object per launch: the id columns (kernel, gpu, ...) and every collected
    metric under its full ncu name, numbers in base units; missing values are omitted.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    paths = list(reports) if reports else default_reports()
    table = _read_inputs(paths)
    selected, notes = select_columns(table, fmt, list(metric or []))
    for note in [f"note: {n}" for n in table.attrs.get("notes", [])] + notes:
        err_console.print(note, markup=False)
    render_table(selected, fmt, output)
    if output is not None:
        err_console.print(f"wrote {len(selected)} launches to {output}", markup=False)
