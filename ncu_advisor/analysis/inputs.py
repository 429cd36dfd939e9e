"""What the analysing commands read: reports and run directories, each read once, and the default input.

An ``Input`` is one report file (``.ncu-rep[.gz]``, ncu CSV) or one run directory (``profile``'s), with
its table, the kernel file that goes with it (the run's copy, or the ``kernel_file`` of a ``meta.json``
beside a report) and ncu's own guided-analysis results per launch. ``default_inputs`` is the one finder
behind every command run without an input: the latest run under ``./runs``, else the example run
``examples/runs/improved``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor import ingest, rundir
from ncu_advisor.errors import AdvisorError, InputError
from ncu_advisor.ingest.ncu_report_reader import rule_results

#: ncu's guided-analysis results keyed by (report path, launch index in that report).
NcuRules = dict[tuple[str | None, int], list[dict[str, Any]]]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The run every command analyses when given nothing and there is no ``./runs``.
DEFAULT_EXAMPLE_RUN = Path("examples") / "runs" / "improved"


@dataclass(frozen=True)
class Input:
    """One report or run with the table it gave and the kernel file that goes with it."""

    path: Path
    table: pd.DataFrame
    kernel_file: Path | None
    ncu_rules: NcuRules = field(default_factory=dict)
    run: rundir.LoadedRun | None = None
    notes: list[str] = field(default_factory=list)


def _meta_kernel_file(report_path: Path) -> Path | None:
    meta = report_path.parent / "meta.json"
    if not meta.is_file():
        return None
    try:
        kernel_file = json.loads(meta.read_text(encoding="utf-8")).get("kernel_file")
    except (OSError, ValueError, AttributeError):
        return None
    if not kernel_file:
        return None
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / str(kernel_file)
        if candidate.is_file():
            return candidate
    return None


def _variant_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".ncu-rep", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _ncu_rules(report_path: Path, key: str) -> NcuRules:
    """ncu's guided-analysis results of one binary report (none for CSV exports or unreadable rules)."""
    found: NcuRules = {}
    if ".csv" in report_path.name or not report_path.is_file():
        return found
    try:
        raw = rule_results(report_path)
    except AdvisorError:
        return found
    for item in raw:
        found.setdefault((key, int(item.get("launch", 0))), []).append(item)
    return found


def _read_run(path: Path) -> Input:
    run = rundir.load_run(path)
    ncu_rules: NcuRules = {}
    if "source" in run.table.columns:
        for source in run.table["source"].dropna().unique():
            ncu_rules.update(_ncu_rules(Path(str(source)), str(source)))
    notes = [f"{path}: {note}" for note in run.notes]
    return Input(path, run.table, run.kernel_file, ncu_rules, run=run, notes=notes)


def _read_report(path: Path) -> Input:
    table = ingest.read(path, _variant_name(path))
    key = str(table["source"].iloc[0]) if len(table) and "source" in table.columns else str(path)
    if "guided" in table.attrs:  # text inputs carry ncu's own findings in the table
        ncu_rules: NcuRules = {}
        for item in table.attrs["guided"]:
            ncu_rules.setdefault((key, int(item.get("launch", 0))), []).append(item)
    else:
        ncu_rules = _ncu_rules(path, key)
    # what the reader skipped; some readers' notes already start with the path: name it once
    notes = [n if str(n).startswith(str(path)) else f"{path}: {n}" for n in table.attrs.get("notes", [])]
    return Input(path, table, _meta_kernel_file(path), ncu_rules, notes=notes)


def read_input(path: Path) -> Input:
    """Read one report file or run directory.

    Raises:
        InputError: the path is missing, or a directory that is not a run.
        ReportError, RunError: the report or run is unreadable (from the readers).
    """
    if path.is_dir():
        if not rundir.is_run_dir(path):
            raise InputError(
                "not a run directory (no manifest.json)",
                path=path,
                hint="pass a report file or a directory written by `ncu-advisor profile`",
            )
        return _read_run(path)
    if path.exists():
        return _read_report(path)
    raise InputError("no such run directory or report file", path=path, hint="check the path")


def _newest_folder(runs_root: Path) -> Path | None:
    """The newest-named sub-folder of ``runs_root`` (names start with a UTC stamp), hidden ones aside."""
    try:
        folders = [p for p in runs_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return None
    return max(folders, key=rundir.run_order) if folders else None


def default_inputs(runs_root: Path = Path("runs")) -> list[Path]:
    """The latest run under ``runs_root`` (./runs), else the example run ``examples/runs/improved``.

    The example run is used only where ``runs_root`` holds no folder at all: a newest folder under it
    without ``manifest.json`` (a profile that crashed, a stray folder) is an error, never a silent
    fall-back to the example (``is_shipped_example`` tells the caller to say which run it read).

    Raises:
        InputError: the newest folder under ``runs_root`` is not a run, or there is nothing to analyse.
    """
    newest = _newest_folder(runs_root) if runs_root.is_dir() else None
    if newest is not None and not rundir.is_run_dir(newest):
        raise InputError(
            "no manifest.json: not a run (a profile that crashed or was interrupted?)",
            path=newest,
            hint="run `ncu-advisor profile FILE.py` again, remove the folder, or pass an input",
        )
    latest = rundir.latest_run(runs_root)
    if latest is not None:
        return [latest]
    for run in (Path.cwd() / DEFAULT_EXAMPLE_RUN, REPO_ROOT / DEFAULT_EXAMPLE_RUN):
        if rundir.is_run_dir(run):
            return [run]
    raise InputError(
        f"nothing to analyse: no run under {runs_root}/ and no {DEFAULT_EXAMPLE_RUN}",
        path=runs_root,
        hint="pass a report (.ncu-rep[.gz], ncu CSV) or a run, or run `ncu-advisor profile FILE.py` first",
    )


def is_shipped_example(path: Path) -> bool:
    """True when ``path`` is the shipped example run ``default_inputs`` falls back to."""
    return path.resolve() in {
        (Path.cwd() / DEFAULT_EXAMPLE_RUN).resolve(),
        (REPO_ROOT / DEFAULT_EXAMPLE_RUN).resolve(),
    }


def default_input_note(path: Path) -> str | None:
    """The note to print when the default input is the shipped example, not a run of the user's."""
    if not is_shipped_example(path):
        return None
    return (
        f"no run under ./runs: analysing the shipped example {DEFAULT_EXAMPLE_RUN} "
        "(pass a report or run, or run `ncu-advisor profile FILE.py` first)"
    )
