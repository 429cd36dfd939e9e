"""Run directories: what ``ncu-advisor profile`` writes and what every analysis command reads.

Layout of ``runs/<UTC yyyymmddTHHMMSSZ>-<kernel file stem>/``::

    manifest.json          format_version, tool version, GPU, versions, options, commands, variants, complete
    kernel.py              a copy of the profiled kernel file
    metrics.parquet/.csv   the tidy table of all variants (see ``ncu_advisor.table``) + n_regs/n_spills
    timings.csv            variant, rep, median_ms (every timing repetition, the reference included)
    variants/<name>/       profile.ncu-rep, ncu.log, child.log, result.json

The manifest is written first, with every variant ``pending``, and rewritten atomically (temporary file,
then rename) after each variant, so an interrupted run leaves complete variant folders and a manifest that
says which variants are missing. Reading needs neither a GPU nor torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import AdvisorError, RunError, is_utf8, printable
from ncu_advisor.manifest import FORMAT_VERSION as FORMAT_VERSION
from ncu_advisor.manifest import Manifest, parse_manifest
from ncu_advisor.runcheck import (
    KERNEL_COPY_MISSING,
    UNREADABLE_REASON,
    check_statuses,
    check_table,
    check_variant_files,
    kernel_copy,
    no_table_error,
    read_timings,
    report_notes,
    timing_notes,
)
from ncu_advisor.runfiles import AUTOTUNE_CHOICE as AUTOTUNE_CHOICE
from ncu_advisor.runfiles import VARIANTS_DIR as VARIANTS_DIR
from ncu_advisor.runfiles import create_run_dir as create_run_dir
from ncu_advisor.runfiles import merge_autotune_choices as merge_autotune_choices
from ncu_advisor.runfiles import merge_triton_counts as merge_triton_counts
from ncu_advisor.runfiles import utc_stamp as utc_stamp
from ncu_advisor.runfiles import variant_dir as variant_dir
from ncu_advisor.runfiles import write_json_atomic as write_json_atomic
from ncu_advisor.table import ID_COLUMNS

MANIFEST_NAME = "manifest.json"
KERNEL_COPY_NAME = "kernel.py"
METRICS_PARQUET = "metrics.parquet"
METRICS_CSV = "metrics.csv"
TIMINGS_CSV = "timings.csv"
TIMING_COLUMNS = ("variant", "rep", "median_ms")

#: Every status a variant can have in ``manifest["variants"][name]["status"]``.
VARIANT_STATUSES = ("ok", "incorrect", "failed", "timeout", "crashed", "skipped", "pending")


@dataclass(frozen=True)
class LoadedRun:
    """A run directory read back.

    Attributes:
        path: the run directory.
        manifest: the parsed ``manifest.json``.
        table: the tidy metrics table of all variants (empty, with the id columns, when none was written).
        kernel_file: the copy of the profiled kernel file inside the run, or None when absent.
        timings: one row per timing repetition: variant, rep, median_ms (checked: positive, finite).
        model: the manifest as a typed model (``manifest.Manifest``); prefer it to ``manifest``.
        notes: what the reader noticed but did not refuse (e.g. a variant's report is damaged).
    """

    path: Path
    manifest: dict[str, Any]
    table: pd.DataFrame
    kernel_file: Path | None
    timings: pd.DataFrame
    model: Manifest
    notes: tuple[str, ...] = ()


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    write_json_atomic(run_dir / MANIFEST_NAME, manifest)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """Read and validate ``manifest.json`` of a run directory; the JSON as a dict (see ``load_manifest``).

    Raises:
        RunError: the directory or its manifest is missing, unreadable, malformed (``manifest.Manifest``),
            or of a newer ``format_version`` than this ncu-advisor reads.
    """
    path = _manifest_path(run_dir)
    parse_manifest(path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_manifest(run_dir: Path) -> Manifest:
    """The validated ``manifest.json`` of a run directory as a typed model.

    Raises:
        RunError: as ``read_manifest``.
    """
    return parse_manifest(_manifest_path(run_dir))


def _manifest_path(run_dir: Path) -> Path:
    path = Path(run_dir) / MANIFEST_NAME
    try:
        is_dir = Path(run_dir).is_dir()
    except OSError as exc:  # ENAMETOOLONG and friends
        raise RunError(f"cannot read it ({exc.strerror})", path=run_dir, hint="check the path") from None
    if not is_dir:
        raise RunError("no such run directory", path=run_dir, hint="run `ncu-advisor profile FILE` first")
    if not path.is_file():
        raise RunError(
            "not a run directory: manifest.json is missing",
            path=run_dir,
            hint="pass a folder written by `ncu-advisor profile`",
        )
    return path


def is_run_dir(p: Path) -> bool:
    """True when ``p`` is a directory holding a ``manifest.json`` (readable or not)."""
    p = Path(p)
    return p.is_dir() and (p / MANIFEST_NAME).is_file()


def latest_run(root: Path = Path("runs")) -> Path | None:
    """Return the most recent run directory under ``root`` (by the UTC stamp in its name), or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    runs = [p for p in root.iterdir() if is_run_dir(p)]
    return max(runs, key=run_order) if runs else None


def run_order(p: Path) -> tuple[str, int, str]:
    """Sort key of run folders, oldest first: the UTC stamp, then the "-2", "-3" suffix of one second."""
    stamp = p.name.split("-", 1)[0]
    suffix = p.name.rsplit("-", 1)[-1]
    return (stamp, int(suffix) if suffix.isdigit() else 1, p.name)


def missing_variants(manifest: dict[str, Any]) -> list[str]:
    """Names of the variants a run has not finished (status ``pending``)."""
    variants = manifest.get("variants") or {}
    return [name for name, info in variants.items() if (info or {}).get("status", "pending") == "pending"]


def has_pyarrow() -> bool:
    """Whether pyarrow (the ``parquet`` extra) is importable; without it runs keep only metrics.csv."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _table_path(run_dir: Path) -> Path:
    """The table file ``load_run`` reads: metrics.parquet, or metrics.csv without pyarrow or parquet."""
    parquet = run_dir / METRICS_PARQUET
    csv = run_dir / METRICS_CSV
    # Both files hold the same table; the core install (no pyarrow) reads the CSV.
    return parquet if parquet.is_file() and (has_pyarrow() or not csv.is_file()) else csv


def _read_table(run_dir: Path) -> pd.DataFrame:
    parquet = run_dir / METRICS_PARQUET
    path = _table_path(run_dir)
    use_parquet = path == parquet
    if not path.is_file():
        return pd.DataFrame(columns=list(ID_COLUMNS))
    if use_parquet and not has_pyarrow():
        raise RunError(
            "the run has only metrics.parquet and pyarrow is not installed",
            path=parquet,
            hint="pip install 'ncu-advisor[parquet]'",
        )
    try:  # through a handle: pyarrow cannot encode a path whose name is not UTF-8
        with open(path, "rb") as handle:
            return pd.read_parquet(handle) if use_parquet else pd.read_csv(handle)
    except Exception as exc:  # pyarrow and pandas raise many types for a damaged file
        raise RunError(
            f"metrics table is unreadable: {exc}", path=path, hint="the run was damaged; profile again"
        ) from None


def _with_autotune_choices(run_dir: Path, table: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """A table written before the column existed gets it from the variants' ``result.json``."""
    if AUTOTUNE_CHOICE in table.columns or "variant" not in table.columns or "kernel" not in table.columns:
        return table
    for name, entry in _entries(manifest):
        result = _variant_result(run_dir, name, entry)
        choices = result.get("autotune_choices")
        table = merge_autotune_choices(table, name, choices if isinstance(choices, dict) else {})
    return table


def _variant_result(run_dir: Path, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The variant's ``result.json`` ({} when it is missing, unreadable or not an object)."""
    path = run_dir / str(entry.get("dir", f"{VARIANTS_DIR}/{name}")) / "result.json"
    try:
        result = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return result if isinstance(result, dict) else {}


def _entries(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    reference = manifest.get("reference") or {}
    entries = [(str(reference.get("name", "Model")), reference)] if reference.get("dir") else []
    return entries + list((manifest.get("variants") or {}).items())


def _reports(manifest: dict[str, Any]) -> list[str]:
    """The report paths the manifest's entries name (none in a timing-only run)."""
    return [str(r) for _, e in _entries(manifest) if (r := (e.get("logs") or {}).get("report"))]


#: A variant whose report could not be read when the tables were built: (variant, report, error text).
Unreadable = tuple[str, Path, str]


def build_tables(run_dir: Path, unreadable: list[Unreadable] | None = None) -> str:
    """Write ``timings.csv`` and the tidy ``metrics.parquet``/``.csv`` from the variant folders.

    Everything comes from disk (each variant's ``result.json`` and ``profile.ncu-rep``), so a run whose
    tables were never written (a crash, an interrupted run) can be finished later on any machine. A report
    that cannot be read costs its variant's rows, not the others': it is named in the note and appended to
    ``unreadable`` (``record_tables`` then marks the variant failed).

    Returns:
        A one-line note for the manifest's ``tables`` entry.
    """
    from ncu_advisor.ingest.readers import read_report

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    timing_rows: list[tuple[str, int, float]] = []
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    for name, entry in _entries(manifest):
        result = _variant_result(run_dir, name, entry)
        timing_rows += [(name, rep, float(ms)) for rep, ms in enumerate(result.get("timings_ms") or [])]
        report = (entry.get("logs") or {}).get("report")
        if not report or not (run_dir / report).is_file():
            continue
        try:
            table = read_report(run_dir / report, variant=name)
        except AdvisorError as exc:  # one unreadable report must not lose the other variants
            notes.append(f"{name}: report unreadable: {exc.render()}")
            if unreadable is not None:
                unreadable.append((name, run_dir / report, exc.render()))
            continue
        table = merge_triton_counts(table, name, result.get("triton_kernels") or [])
        frames.append(merge_autotune_choices(table, name, result.get("autotune_choices") or {}))
    pd.DataFrame(timing_rows, columns=list(TIMING_COLUMNS)).to_csv(run_dir / TIMINGS_CSV, index=False)
    if not frames:
        return "; ".join(["metrics table not written: no variant was profiled", *notes])
    table = pd.concat(frames, ignore_index=True)
    table.attrs = {}
    table.to_csv(run_dir / METRICS_CSV, index=False)
    if not has_pyarrow():
        notes.append(
            "metrics.parquet not written (no pyarrow: pip install 'ncu-advisor[parquet]'); "
            "metrics.csv has the table"
        )
        return "; ".join([f"{len(table)} launches of {len(frames)} variants", *notes])
    try:
        table.to_parquet(run_dir / METRICS_PARQUET, index=False)
    except Exception as exc:  # pyarrow rejects some mixed-type columns; the CSV still holds the table
        (run_dir / METRICS_PARQUET).unlink(missing_ok=True)
        notes.append(f"metrics.parquet not written ({type(exc).__name__}: {exc}); metrics.csv has the table")
    return "; ".join([f"{len(table)} launches of {len(frames)} variants", *notes])


UNITS_ENV = "NCU_ADVISOR_UNITS"  # "catalogue": take units from metrics.yaml, not ncu_report
#: ``python -m ncu_advisor.rundir finalize RUN``'s exit when a report is unreadable (bad input; ``_main``).
REPORT_UNREADABLE_EXIT = 2


def finalize(run_dir: Path, *, timeout_s: float = 900.0) -> str:
    """Build a run's tables in a child process and record the outcome in its manifest.

    The child is ``python -m ncu_advisor.rundir finalize RUN``. A crash of the report reader (a native
    extension) then costs the tables, never the run: the manifest says what happened, and ``load_run``
    tries again later, e.g. on another machine.

    Returns:
        The note written to the manifest's ``tables`` entry.
    """
    run_dir = Path(run_dir)
    if not _reports(read_manifest(run_dir)):
        # timing only: no report to read, so no native reader to isolate; in this process it saves the
        # child's start and imports (1.6-2.9 s of a 24-variant run's closing on the two-H200 bench,
        # bench/results/2026-11-30-scale-h200x2-s4)
        try:
            ok, note = True, build_tables(run_dir)
        except (OSError, ValueError, KeyError, AdvisorError) as exc:
            ok, note = False, f"metrics table not written: {type(exc).__name__}: {exc}"
    else:
        ok, note = _finalize_child(run_dir, timeout_s, {})  # marks unreadable reports' variants failed
    if not ok and "exited with -" in note:
        # A native crash. Nsight Compute 2025.3.1's own ncu_report crashed with SIGSEGV inside
        # metric.unit() on an H200 run (2026-11-30): read again with units from the metric catalogue.
        ok, retry = _finalize_child(run_dir, timeout_s, {UNITS_ENV: "catalogue"})
        note = f"{retry}; units from the metric catalogue (ncu_report crashed: {note})" if ok else note
    manifest = read_manifest(run_dir)
    manifest["tables"] = note
    manifest["complete"] = ok and bool(manifest.get("variants")) and not missing_variants(manifest)
    write_manifest(run_dir, manifest)
    return note


def _finalize_child(run_dir: Path, timeout_s: float, env: dict[str, str]) -> tuple[bool, str]:
    """Run ``python -m ncu_advisor.rundir finalize RUN`` with ``env`` added; (success, note)."""
    argv = [sys.executable, "-m", "ncu_advisor.rundir", "finalize", str(run_dir)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, env={**os.environ, **env}
        )
    except subprocess.TimeoutExpired:
        return False, f"metrics table not written: reading the reports took over {timeout_s:.0f} s"
    detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    # 2 with a note on stdout: the tables are written, variants whose report was unreadable marked failed
    ok = proc.returncode == 0 or (proc.returncode == REPORT_UNREADABLE_EXIT and bool(proc.stdout.strip()))
    if ok:
        return True, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return False, f"metrics table not written: the report reader exited with {proc.returncode}" + (
        f" ({detail[0][:200]})" if detail else ""
    )


def _anchor_sources(table: pd.DataFrame, run_dir: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    """Point each row's ``source`` at its report inside ``run_dir`` (runs move between machines)."""
    if "source" not in table.columns or "variant" not in table.columns:
        return table
    # the absolute path, unless a folder above the run has a name that is not UTF-8 (the table holds text)
    base = run_dir.resolve() if is_utf8(str(run_dir.resolve())) else run_dir
    for name, entry in _entries(manifest):
        report = (entry.get("logs") or {}).get("report")
        if report:
            table.loc[table["variant"] == name, "source"] = printable(str(base / report))
    return table


def load_run(p: Path, *, allow_incomplete: bool = False) -> LoadedRun:
    """Read a run directory written by ``ncu-advisor profile``.

    Args:
        p: the run directory.
        allow_incomplete: return an interrupted run instead of raising (its missing variants have
            status ``pending`` in the manifest).

    Returns:
        The run: manifest, tidy metrics table, timings and the path of the kernel file copy.

    Raises:
        RunError: missing, unreadable, incomplete (unless ``allow_incomplete``) or of a newer format.
    """
    run_dir = Path(p)
    model = load_manifest(run_dir)
    if _needs_tables(run_dir, model):
        # Every variant finished but the tables were not written (the reader crashed where the run was
        # recorded): build them now, here.
        finalize(run_dir)
        model = load_manifest(run_dir)
    if not model.variants:
        raise RunError(
            "the run lists no variants: nothing was profiled",
            path=run_dir / MANIFEST_NAME,
            hint="profile again, or pass another run",
        )
    if not model.complete and not allow_incomplete:
        missing = model.missing_variants()
        what = f"variants not profiled: {', '.join(missing)}" if missing else "it is marked incomplete"
        if not missing and not _has_table(run_dir):
            what = "its tables were not written"
        raise RunError(
            f"incomplete run (interrupted?): {what}", path=run_dir, hint="profile again, or pass another run"
        )
    profiled = [name for name, entry in model.entries() if entry.logs.get("report")]
    if model.complete and profiled and not _has_table(run_dir):
        raise no_table_error(run_dir, model, profiled)
    check_variant_files(run_dir, model)
    check_statuses(run_dir, model)
    manifest = read_manifest(run_dir)
    kernel_file = kernel_copy(run_dir / KERNEL_COPY_NAME)
    table = _read_table(run_dir)
    check_table(run_dir, model, table, _table_path(run_dir))
    timings = read_timings(run_dir / TIMINGS_CSV, model, TIMING_COLUMNS)
    notes = report_notes(run_dir, model) + timing_notes(run_dir / TIMINGS_CSV, model, timings)
    return LoadedRun(
        path=run_dir,
        manifest=manifest,
        table=_anchor_sources(_with_autotune_choices(run_dir, table, manifest), run_dir, manifest),
        kernel_file=kernel_file,
        timings=timings,
        model=model,
        notes=tuple(notes + ([] if kernel_file else [KERNEL_COPY_MISSING])),
    )


def _has_table(run_dir: Path) -> bool:
    return (run_dir / METRICS_PARQUET).is_file() or (run_dir / METRICS_CSV).is_file()


def _needs_tables(run_dir: Path, model: Manifest) -> bool:
    """True when every variant finished but the tables were never written (worth building now).

    A run marked incomplete whose tables exist (or that lists no variants) is not rebuilt: it stays
    incomplete, as the README promises (exit 2).
    """
    if model.complete or not model.variants or model.missing_variants():
        return False
    return not _has_table(run_dir)


def record_tables(run_dir: Path, note: str, unreadable: list[Unreadable]) -> None:
    """Write the tables ``note`` into the run's manifest and mark each variant of ``unreadable`` ``failed``
    with the reason: its report could not be read, so the run has no metrics of it (every output then
    shows it as failed, never as a variant with no findings)."""
    manifest = read_manifest(run_dir)
    manifest["tables"] = note
    variants = manifest.get("variants") or {}
    for name, _report, error in unreadable:
        entry = variants.get(name)
        if isinstance(entry, dict):
            entry["status"] = "failed"
            entry["reason"] = f"{UNREADABLE_REASON}: {error}"
    write_manifest(run_dir, manifest)


def _main(argv: list[str]) -> int:
    """``python -m ncu_advisor.rundir finalize RUN``: (re)build a run's tables in this process.

    Prints the tables note on stdout. Exit 0; 2 when a variant's report is unreadable (one ``error:`` line
    per report on stderr: the variant, the report, the problem and the fix; the variant is marked failed
    in manifest.json with the reason) or when the run cannot be read.
    """
    from ncu_advisor.errors import AdvisorError

    usage = "usage: python -m ncu_advisor.rundir finalize RUN_DIR  (rebuild a run's tables from its reports)"
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        return 0
    if len(argv) != 2 or argv[0] != "finalize":
        print(usage, file=sys.stderr)
        return 2
    run_dir = Path(argv[1])
    unreadable: list[Unreadable] = []
    try:
        note = build_tables(run_dir, unreadable)
        record_tables(run_dir, note, unreadable)
    except AdvisorError as exc:
        print(f"error: {printable(exc.render())}", file=sys.stderr)
        return exc.exit_code
    print(note)
    for name, _report, error in unreadable:
        print(
            f"error: variant {name} marked failed in manifest.json, its report is unreadable: "
            + printable(error),
            file=sys.stderr,
        )
    return REPORT_UNREADABLE_EXIT if unreadable else 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
