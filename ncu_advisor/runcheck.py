"""Checks of a run directory's metrics table against its manifest (used by ``rundir.load_run``).

A table that lost rows (a cut metrics.csv, a copy of a run that lost a variant) must never give a
clean-looking result: every variant the manifest lists with a report on disk must have rows, and the
row and variant counts must equal the ``tables`` note ``rundir.build_tables`` wrote ("N launches of M
variants"). A variant report that looks damaged is a note, not an error: the table already holds it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from ncu_advisor.errors import MAX_KERNEL_FILE_BYTES, RunError, check_regular_file
from ncu_advisor.manifest import MAX_MANIFEST_BYTES, Manifest, parse_timings

_DAMAGED = "the run was damaged; profile again"


def no_table_error(run_dir: Path, model: Manifest, profiled: list[str]) -> RunError:
    """The error for a complete run without metrics table, saying which of its reports are there."""
    present = [
        n for n, e in model.entries() if e.logs.get("report") and (run_dir / e.logs["report"]).is_file()
    ]
    there = f"{len(present)} of them are" if present else "none of them is"
    return RunError(
        f"no metrics table (metrics.parquet/metrics.csv); the manifest lists reports of {len(profiled)} "
        f"variant(s) and {there} in the run directory",
        path=run_dir,
        hint="profile again"
        + (f", or run `python -m ncu_advisor.rundir finalize {run_dir}` to rebuild it" if present else ""),
    )


#: The count the manifest's ``tables`` note records (``build_tables``): "N launches of M variants".
_TABLES_COUNT = re.compile(r"^(\d+) launches of (\d+) variants")

#: The smallest plausible report: smaller files (a cut copy) cannot hold a report's header and one launch.
#: The smallest recorded .ncu-rep.gz in examples/ is over 10 kB (``ls -lS examples/runs/*/variants/*/``).
MIN_REPORT_BYTES = 1024


def check_table(run_dir: Path, model: Manifest, table: pd.DataFrame, path: Path) -> None:
    """Refuse a metrics table that lost rows: a cut CSV, or fewer launches/variants than the manifest.

    Raises:
        RunError: the table file, what is missing and the fix (exit 2).
    """
    hint = "profile again, or delete metrics.csv/metrics.parquet to rebuild them from the variant reports"
    problem = f"{path.name} is truncated or does not match the manifest"
    if path.suffix == ".csv" and path.is_file() and path.stat().st_size:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                raise RunError(f"{problem}: its last line is cut (no line end)", path=path, hint=hint)
    if not model.complete:  # an interrupted run: its table need not hold every variant yet
        return
    note = model.tables or ""
    unreadable = unreadable_in_note(note)
    expected = [
        name
        for name, entry in model.entries()
        if entry.logs.get("report")
        and (run_dir / entry.logs["report"]).is_file()
        and name not in unreadable
        and entry.status != "failed"  # a report found unreadable when the tables were built (rundir)
    ]
    have = set(table["variant"].dropna().astype(str)) if "variant" in table.columns else set()
    lost = [name for name in expected if name not in have]
    if lost:
        raise RunError(
            f"{problem}: the manifest lists variants {', '.join(expected)} with reports, the table has none "
            f"for {', '.join(lost)}",
            path=path,
            hint=hint,
        )
    counted = _TABLES_COUNT.match(note)
    if counted and (int(counted[1]), int(counted[2])) != (len(table), len(have)):
        raise RunError(
            f"{problem}: the manifest records {counted[1]} launches of {counted[2]} variants, the table has "
            f"{len(table)} launches of {len(have)} variants",
            path=path,
            hint=hint,
        )


def check_variant_files(run_dir: Path, model: Manifest) -> None:
    """Refuse a run that lost the folder, ``result.json`` or report of a variant the manifest calls ok.

    The tables were built from those files; without them the table's rows for that variant are
    unverifiable leftovers (a copy of a run that lost ``variants/X``), never a clean-looking result.

    Raises:
        RunError: naming the first missing path (exit 2).
    """
    for name, entry in model.entries():
        if entry.status != "ok" or not entry.dir:
            continue
        needed = [run_dir / entry.dir, run_dir / entry.dir / "result.json"]
        if entry.logs.get("report"):
            needed.append(run_dir / entry.logs["report"])
        for path in needed:
            if not path.exists():
                raise RunError(
                    f"the manifest lists variant {name} as ok, but {path.relative_to(run_dir)} is missing",
                    path=path,
                    hint="the run is incomplete (a partial copy?): copy it whole, or profile again",
                )


def unreadable_in_note(note: str) -> set[str]:
    """The variants a ``tables`` note (``rundir.build_tables``) names as having an unreadable report."""
    return set(re.findall(r"(?:^|; )([^;:]+): report unreadable", note))


#: How ``rundir.record_tables`` starts the reason of a variant whose report could not be read.
UNREADABLE_REASON = "its report is unreadable, so it has no metrics"


def report_notes(run_dir: Path, model: Manifest) -> list[str]:
    """Notes on variant reports that look damaged (too small or without the gzip/report header), and on
    variants marked failed because their report was unreadable when the tables were built (no metrics).

    A cheap check (size and magic bytes, not a full inflate): the table was built from the reports
    when they were whole, but ncu's own rule results are read from them later.
    """
    from ncu_advisor.ingest.common import GZIP_MAGIC, REPORT_MAGIC

    notes = [
        f"variant {name} failed: {entry.reason}"
        for name, entry in model.entries()
        if entry.status == "failed" and (entry.reason or "").startswith(UNREADABLE_REASON)
    ]
    unreadable = unreadable_in_note(model.tables or "")  # a run finalized before variants were marked
    notes += [
        f"variant {name} has no metrics: its report was unreadable when the tables were built "
        "(manifest.json's tables entry says why); restore the report and run "
        f"`python -m ncu_advisor.rundir finalize {run_dir}`"
        for name, entry in model.entries()
        if name in unreadable and entry.status != "failed"
    ]
    for name, entry in model.entries():
        report = entry.logs.get("report")
        if not report or not (run_dir / report).is_file():
            continue
        path = run_dir / report
        with open(path, "rb") as handle:
            head = handle.read(4)
        size = path.stat().st_size
        if size < MIN_REPORT_BYTES or not (head[:2] == GZIP_MAGIC or head == REPORT_MAGIC):
            notes.append(
                f"variant {name}: its report {report} looks damaged ({size:,} bytes"
                + ("" if size < MIN_REPORT_BYTES else ", no report header")
                + "); the metrics table is used, ncu's own rule results for it are not"
            )
    return notes


#: The statuses both ``manifest.json`` and a variant's ``result.json`` record (the child's verdict).
_VERDICTS = ("ok", "incorrect")


def _result_verdict(path: Path) -> str | None:
    """``ok``/``incorrect`` as a variant's ``result.json`` records it (status and correctness), or None."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    status = data.get("status")
    correctness = data.get("correctness")
    if status == "ok" and isinstance(correctness, dict) and correctness.get("passed") is False:
        return "incorrect"
    return status if status in _VERDICTS else None


def check_statuses(run_dir: Path, model: Manifest) -> None:
    """Refuse a run whose manifest and a variant's ``result.json`` disagree on correctness.

    ``compare`` reads the manifest's status and ``report`` the result's correctness: a run where one says
    ``ok`` and the other ``incorrect`` (hand-edited, or mixed from two runs) gave opposite verdicts.

    Raises:
        RunError: naming both files and both statuses (exit 2).
    """
    for name, entry in model.entries():
        if not entry.dir or entry.status not in _VERDICTS or entry is model.reference:
            continue
        result = run_dir / entry.dir / "result.json"
        verdict = _result_verdict(result)
        if verdict is not None and verdict != entry.status:
            raise RunError(
                f"manifest.json says variant {name} is {entry.status!r} but {result.relative_to(run_dir)} "
                f"says {verdict!r}",
                path=run_dir / "manifest.json",
                hint=f"the run was edited or mixed from two runs; profile again (or restore {result})",
            )


def read_timings(path: Path, model: Manifest, columns: tuple[str, ...]) -> pd.DataFrame:
    """A run's ``timings.csv`` (``columns``), every row checked by ``manifest.TimingRow`` (positive, finite,
    measurable times) and naming a variant (or the reference) the manifest lists; empty when absent.

    Raises:
        RunError: unreadable, other columns, a bad row (its line), or rows of an unknown variant.
    """
    if not path.is_file():
        return pd.DataFrame(columns=list(columns))
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(columns))
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a damaged file
        raise RunError(f"timings.csv is unreadable: {exc}", path=path, hint=_DAMAGED) from None
    if tuple(frame.columns) != columns:
        raise RunError(
            f"timings.csv has the columns {list(frame.columns)}, not {list(columns)}",
            path=path,
            hint=_DAMAGED,
        )
    rows = parse_timings(path, frame.to_dict("records"))
    known = {name for name, _entry in model.entries()} | (
        {model.reference.name or "Model"} if model.reference is not None else set()
    )
    unknown = [row.variant for row in rows if row.variant not in known]
    if unknown:
        raise RunError(
            f"timings.csv has rows for {', '.join(dict.fromkeys(unknown))}, which manifest.json does not "
            f"list (it lists {', '.join(sorted(known)) or 'none'})",
            path=path,
            hint="the run was edited or mixed from two runs; profile again",
        )
    return frame


def timing_notes(path: Path, model: Manifest, timings: pd.DataFrame) -> list[str]:
    """Notes on timed variants without rows in ``timings.csv`` (``path``; or without the file): their time
    is the manifest's ``median_ms`` alone, with no spread (``compare`` then assumes one and says so)."""
    timed = [name for name, entry in model.entries() if entry.median_ms is not None]
    have = set(timings["variant"].astype(str)) if "variant" in timings.columns else set()
    lacking = [name for name in timed if name not in have]
    if not lacking:
        return []
    where = "timings.csv is missing" if not path.is_file() else "timings.csv has no rows"
    return [
        f"{where} for {', '.join(lacking)}: their time is manifest.json's median_ms alone, without the "
        "per-repetition spread (compare assumes a spread and says so)"
    ]


#: The note of a run whose ``kernel.py`` is gone (``analysis.pipeline`` adds the rules it skipped).
KERNEL_COPY_MISSING = (
    "kernel.py (the run's copy of its kernel file) is missing: the rules that read the kernel "
    "source are skipped and library kernels (cuDNN, PyTorch) cannot be told from the run's own, so every "
    "launch counts as the run's own (pass the kernel file with --kernel-file FILE.py)"
)


def kernel_copy(kernel: Path) -> Path | None:
    """The run's copy of its kernel file (``kernel``), None when absent (``KERNEL_COPY_MISSING`` says so).

    Raises:
        RunError: it exists but is not a regular file of a sane size (a FIFO, a link to /dev/zero):
            refused before it is read.
    """
    if not os.path.lexists(kernel):
        return None
    check_regular_file(
        kernel,
        what="kernel file copy",
        error=RunError,
        hint="the run was damaged: put a copy of the profiled kernel file there, or delete it",
        max_bytes=MAX_KERNEL_FILE_BYTES,
    )
    return kernel
