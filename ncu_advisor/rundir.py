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
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import AdvisorError, RunError, is_utf8, printable
from ncu_advisor.manifest import FORMAT_VERSION as FORMAT_VERSION
from ncu_advisor.manifest import Manifest, parse_manifest
from ncu_advisor.runcheck import (
    KERNEL_COPY_MISSING,
    check_statuses,
    check_table,
    check_variant_files,
    kernel_copy,
    no_table_error,
    read_timings,
    report_notes,
    timing_notes,
)
from ncu_advisor.table import ID_COLUMNS

MANIFEST_NAME = "manifest.json"
KERNEL_COPY_NAME = "kernel.py"
METRICS_PARQUET = "metrics.parquet"
METRICS_CSV = "metrics.csv"
TIMINGS_CSV = "timings.csv"
VARIANTS_DIR = "variants"
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


def utc_stamp(now: datetime | None = None) -> str:
    """Return the UTC time as ``yyyymmddTHHMMSSZ`` (the prefix of run directory names)."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def create_run_dir(root: Path, stem: str, now: datetime | None = None) -> Path:
    """Create a new, empty run directory under ``root``; never reuse an existing one.

    Args:
        root: the folder holding runs (created if missing).
        stem: the kernel file's stem, appended to the time stamp.
        now: the creation time (default: now).

    Returns:
        ``root/<stamp>-<stem>``, or ``root/<stamp>-<stem>-2`` (-3 ...) when that exists already.
    """
    root.mkdir(parents=True, exist_ok=True)
    base = f"{utc_stamp(now)}-{stem}"
    for attempt in range(1, 1000):
        candidate = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunError("cannot find a free run directory name", path=root / base, hint="remove old runs")


def variant_dir(run_dir: Path, variant: str) -> Path:
    """Return the folder of one variant inside a run (``variants/<name>``; ``@`` and ``/`` kept safe)."""
    safe = variant.replace("/", "_").replace(os.sep, "_")
    return run_dir / VARIANTS_DIR / safe


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


#: Table column: the index into the kernel's ``@triton.autotune`` list of the config the variant's run chose
#: (``result.json``'s ``autotune_choices``; NaN for a kernel without one): the launch the source facts use.
AUTOTUNE_CHOICE = "autotune_choice"


def merge_autotune_choices(table: pd.DataFrame, name: str, choices: dict[str, Any]) -> pd.DataFrame:
    """Add the ``AUTOTUNE_CHOICE`` column to a variant's rows, matched on the kernel name (unchanged when
    the variant chose nothing: a table without autotuned kernels has no such column)."""
    valid = {k: i for k, i in choices.items() if isinstance(i, int) and not isinstance(i, bool) and i >= 0}
    if not valid:
        return table
    table = table.copy()
    if AUTOTUNE_CHOICE not in table.columns:
        table[AUTOTUNE_CHOICE] = pd.Series([None] * len(table), index=table.index, dtype="Float64")
    for kernel, index in valid.items():
        rows = (table["variant"] == name) & (table["kernel"] == kernel)
        table.loc[rows, AUTOTUNE_CHOICE] = float(index)
    return table


def _with_autotune_choices(run_dir: Path, table: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """A table written before the column existed gets it from the variants' ``result.json``."""
    if AUTOTUNE_CHOICE in table.columns or "variant" not in table.columns or "kernel" not in table.columns:
        return table
    for name, entry in _entries(manifest):
        result_path = run_dir / str(entry.get("dir", f"{VARIANTS_DIR}/{name}")) / "result.json"
        try:
            result = json.loads(result_path.read_text()) if result_path.is_file() else {}
        except (OSError, ValueError):
            result = {}
        choices = result.get("autotune_choices") if isinstance(result, dict) else None
        table = merge_autotune_choices(table, name, choices if isinstance(choices, dict) else {})
    return table


def merge_triton_counts(table: pd.DataFrame, name: str, kernels: list[dict[str, Any]]) -> pd.DataFrame:
    """Add ``n_regs``/``n_spills`` columns to a variant's rows, matched on the kernel name."""
    table = table.copy()
    for column in ("n_regs", "n_spills"):
        if column not in table.columns:
            table[column] = pd.Series([None] * len(table), index=table.index, dtype="Float64")
    for kernel in kernels:
        rows = (table["variant"] == name) & (table["kernel"] == kernel.get("name"))
        for column in ("n_regs", "n_spills"):
            if kernel.get(column) is not None:
                table.loc[rows, column] = float(kernel[column])
    return table


def _entries(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    reference = manifest.get("reference") or {}
    entries = [(str(reference.get("name", "Model")), reference)] if reference.get("dir") else []
    return entries + list((manifest.get("variants") or {}).items())


def _reports(manifest: dict[str, Any]) -> list[str]:
    """The report paths the manifest's entries name (none in a timing-only run)."""
    return [str(r) for _, e in _entries(manifest) if (r := (e.get("logs") or {}).get("report"))]


def build_tables(run_dir: Path) -> str:
    """Write ``timings.csv`` and the tidy ``metrics.parquet``/``.csv`` from the variant folders.

    Everything comes from disk (each variant's ``result.json`` and ``profile.ncu-rep``), so a run whose
    tables were never written (a crash, an interrupted run) can be finished later on any machine.

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
        result_path = run_dir / str(entry.get("dir", f"{VARIANTS_DIR}/{name}")) / "result.json"
        try:
            result = json.loads(result_path.read_text()) if result_path.is_file() else {}
        except (OSError, ValueError):
            result = {}
        timing_rows += [(name, rep, float(ms)) for rep, ms in enumerate(result.get("timings_ms") or [])]
        report = (entry.get("logs") or {}).get("report")
        if not report or not (run_dir / report).is_file():
            continue
        try:
            table = read_report(run_dir / report, variant=name)
        except AdvisorError as exc:  # one unreadable report must not lose the other variants
            notes.append(f"{name}: report unreadable: {exc.render()}")
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
        ok, note = _finalize_child(run_dir, timeout_s, {})
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
    ok, detail = proc.returncode == 0, (proc.stderr or proc.stdout).strip().splitlines()[-1:]
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


def _main(argv: list[str]) -> int:
    """``python -m ncu_advisor.rundir finalize RUN``: (re)build a run's tables in this process."""
    if len(argv) != 2 or argv[0] != "finalize":
        print("usage: python -m ncu_advisor.rundir finalize RUN_DIR", file=sys.stderr)
        return 2
    print(build_tables(Path(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
