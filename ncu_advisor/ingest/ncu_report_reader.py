"""Reading binary reports through NVIDIA's ``ncu_report`` module: the only place that imports it.

``ncu_report`` is imported inside functions, so the rest of the package imports without it. Every value is
what ``metric.value()`` gives (numbers as float, strings as str). Large reports are read in forked worker
processes (see ``PARALLEL_MIN_LAUNCHES``).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.common import _check_exists, _is_csv, _plain_report_file
from ncu_advisor.ingest.ncu_report_actions import read_actions
from ncu_advisor.table import build_table

_INSTALL_HINT = "pip install ncu-report, or install Nsight Compute so that <ncu install>/extras/python exists"


# --------------------------------------------------------------------------------------------------
# Finding the ncu_report module
# --------------------------------------------------------------------------------------------------


def _candidate_ncu_python_dirs() -> list[Path]:
    """Directories that may hold ncu's own copy of ``ncu_report.py``, most likely first."""
    ncu_paths: list[Path] = []
    which = shutil.which("ncu")
    if which:
        ncu_paths.append(Path(which))
    ncu_paths.append(Path("/usr/local/cuda/bin/ncu"))
    ncu_paths.extend(Path(p) for p in sorted(glob.glob("/opt/nvidia/nsight-compute/*/ncu"), reverse=True))
    candidates: list[Path] = []
    for ncu in ncu_paths:
        if not ncu.exists():
            continue
        resolved = ncu.resolve()
        # <install>/ncu (the real binary) or <install>/bin/ncu (a wrapper); /usr/local/cuda/bin/ncu is
        # usually a symlink into /opt/nvidia/nsight-compute/<ver>/ or a script next to nsight-compute-<ver>.
        candidates.append(resolved.parent / "extras" / "python")
        candidates.append(resolved.parent.parent / "extras" / "python")
        candidates.extend(
            Path(p)
            for p in sorted(
                glob.glob(str(resolved.parent.parent / "nsight-compute*" / "extras" / "python")), reverse=True
            )
        )
    candidates.extend(
        Path(p) for p in sorted(glob.glob("/opt/nvidia/nsight-compute/*/extras/python"), reverse=True)
    )
    seen: set[Path] = set()
    unique: list[Path] = []
    for cand in candidates:
        if cand not in seen:
            seen.add(cand)
            unique.append(cand)
    return unique


def load_ncu_report_module() -> ModuleType:
    """Import ``ncu_report``: the pip package, else the copy shipped with the installed ncu.

    Returns:
        The ``ncu_report`` module.

    Raises:
        ReportError: neither the pip package nor an ncu installation with ``extras/python`` was found.
    """
    try:
        import ncu_report

        return ncu_report  # type: ignore[no-any-return]
    except ImportError:
        pass
    for directory in _candidate_ncu_python_dirs():
        if (directory / "ncu_report.py").exists():
            sys.path.insert(0, str(directory))
            try:
                import ncu_report

                return ncu_report  # type: ignore[no-any-return]
            except ImportError:
                sys.path.remove(str(directory))
    raise ReportError(
        "cannot read .ncu-rep files: the ncu_report module is not installed", hint=_INSTALL_HINT
    )


def _load_context(module: ModuleType, plain: Path, shown: Path) -> Any:
    try:
        context = module.load_report(str(plain))
    except FileNotFoundError:
        raise ReportError("no such file", path=shown) from None
    except Exception as exc:  # noqa: BLE001 - ncu_report raises plain RuntimeErrors from C++
        raise ReportError(
            f"ncu_report cannot read it ({exc})", path=shown, hint="the report is corrupt; record it again"
        ) from None
    if context is None or not context or context.num_ranges() == 0:
        # Measured: ncu_report returns an empty (falsy) context for a truncated or damaged file.
        raise ReportError(
            "the report is truncated or corrupt: ncu_report finds no ranges in it",
            path=shown,
            hint="copy it again or re-record it with `ncu -o`",
        )
    return context


# Large reports are read in forked worker processes, for two measured reasons: ncu_report holds the GIL
# (threads do not help) and it never frees what action_by_idx parses (about 0.47 MB per launch, 4.7 GB
# for the 10k-launch report, still held after the context is deleted); a worker's memory goes back to
# the system when it exits. NCU_ADVISOR_READ_WORKERS=N sets the number of workers (0: read in-process).
PARALLEL_MIN_LAUNCHES = 2000
WORKERS_ENV = "NCU_ADVISOR_READ_WORKERS"


def _read_actions_in_worker(
    args: tuple[str, list[tuple[int, int]]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Worker-process entry: load the (un-gzipped) report and read a slice of its launches."""
    plain, work = args
    module = load_ncu_report_module()
    context = module.load_report(plain)
    return read_actions(module, context, work)


def _units_through_ncu_report(
    head: bytes, records: list[dict[str, Any]], carriers: list[int]
) -> dict[str, str]:
    """Each metric's unit, which the file does not store (ncu_report takes it from NVIDIA's metric
    library): read from ``ncu_report`` on the few launches that first carry each name. Empty without it.

    ``head`` is the start of the plain report up to the block of the last carrier, a valid report of
    its own: ncu_report needs a plain file, and a short one loads faster.
    """
    if os.environ.get("NCU_ADVISOR_UNITS") == "catalogue":  # set by rundir.finalize after a crash
        from ncu_advisor.metrics import catalogue  # noqa: PLC0415 - only on this fallback path

        known = catalogue()
        return {n: known[n].unit for n in {name for r in records for name in r} if n in known}
    try:
        module = load_ncu_report_module()
    except ReportError:
        return {}
    units: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ncu-advisor-") as tmp:
        plain = Path(tmp) / "head.ncu-rep"
        plain.write_bytes(head)
        try:
            context = module.load_report(str(plain))
            profiled_range = context.range_by_idx(0)
            for index in carriers:
                action = profiled_range.action_by_idx(records[index]["action"])
                for name in action.metric_names():
                    if name not in units:
                        metric = action.metric_by_name(name)
                        if metric is not None:
                            units[name] = metric.unit() or ""
        except Exception:  # noqa: BLE001 - units are a convenience; the values are already read
            pass
    return units


def _read_binary_ncu_report(path: Path, variant: str | None, *, workers: int | None = None) -> pd.DataFrame:
    module = load_ncu_report_module()
    with _plain_report_file(path) as plain:
        context = _load_context(module, plain, path)
        work = [
            (range_index, action_index)
            for range_index in range(context.num_ranges())
            for action_index in range(context.range_by_idx(range_index).num_actions())
        ]
        if not work:
            raise ReportError(
                "the report holds no kernel launches",
                path=path,
                hint="check ncu's filters (-k, --nvtx-include) and re-record",
            )
        if workers is None:
            workers = _default_workers(len(work))
        try:
            if workers >= 1 and len(work) > 1 and sys.platform.startswith("linux"):
                records, units = _read_in_processes(str(plain), work, workers)
            else:
                records, units = read_actions(module, context, work)
        except Exception as exc:  # noqa: BLE001 - SWIG raises TypeError/RuntimeError on a damaged launch
            raise ReportError(
                f"the report is truncated or corrupt: ncu_report fails on it ({type(exc).__name__}: {exc})",
                path=path,
                hint="copy it again or re-record it with `ncu -o`",
            ) from None
    for record in records:
        record["source"] = str(path)
        record["variant"] = variant
    table = build_table(records, units)
    table.attrs["reader"] = "ncu_report"
    return table


def _default_workers(launches: int) -> int:
    """Worker processes for a report of ``launches``: 0 (in-process) for small ones, else one per CPU."""
    requested = os.environ.get(WORKERS_ENV, "").strip()
    if requested.isdigit():
        return int(requested)
    if launches < PARALLEL_MIN_LAUNCHES:
        return 0
    return max(1, min(os.cpu_count() or 1, 8))


def _read_in_processes(
    plain: str, work: list[tuple[int, int]], workers: int
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read contiguous slices of the launches in ``workers`` forked processes, keeping launch order."""
    import multiprocessing

    size = -(-len(work) // workers)
    slices = [(plain, work[i : i + size]) for i in range(0, len(work), size)]
    with multiprocessing.get_context("fork").Pool(len(slices)) as pool:
        parts = pool.map(_read_actions_in_worker, slices)
    records: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    for part_records, part_units in parts:
        records.extend(part_records)
        for name, unit in part_units.items():
            units.setdefault(name, unit)
    return records, units


_MESSAGE_TYPES = {  # ncu_report.MsgType_NONE/OK/OPTIMIZATION/WARNING/ERR
    0: "none",
    1: "ok",
    2: "optimization",
    3: "warning",
    4: "error",
}
_RULE_ERROR = 4  # ncu_report.MsgType_ERROR: the rule failed to run
_SPEEDUP_TYPES = {0: None, 1: "local", 2: "global"}  # ncu_report.SpeedupType_UNKNOWN/LOCAL/GLOBAL


def rule_results(path: str | Path, *, include_rule_errors: bool = False) -> list[dict[str, Any]]:
    """ncu's own guided-analysis rule results, per launch (present in ``--set``/``--section`` reports).

    ncu's rule *errors* (message type 4) are not advice: in the public reports every one is a rule that
    failed to run ("Required metric ... could not be found", "Rule ... returned an error", a Python
    traceback from ncu's section scripts). They are left out unless ``include_rule_errors``.

    Args:
        path: a binary report (``.ncu-rep`` or ``.ncu-rep.gz``).
        include_rule_errors: keep the results of message type 4 (ncu's rule failures).

    Returns:
        One dict per rule result: ``launch`` (row index in ``read_report`` order), ``kernel``, ``rule``
        (identifier), ``name``, ``section``, ``type`` (ncu's message type number), ``severity``
        (``none``/``ok``/``optimization``/``warning``/``error``), ``title``, ``message``,
        ``speedup_type`` (``local``/``global``/None), ``speedup`` (percent, float or None) and
        ``focus_metrics`` (list of ``{name, value, severity, info}``). Empty for ``--metrics`` reports.

    Raises:
        ReportError: as ``read_report``; CSV exports carry no rule results.
    """
    report_path = Path(path)
    _check_exists(report_path)
    if _is_csv(report_path):
        raise ReportError(
            "CSV exports carry no rule results", path=report_path, hint="pass the .ncu-rep file"
        )
    module = load_ncu_report_module()
    results: list[dict[str, Any]] = []
    with _plain_report_file(report_path) as plain:
        context = _load_context(module, plain, report_path)
        launch = 0
        for range_index in range(context.num_ranges()):
            profiled_range = context.range_by_idx(range_index)
            for action_index in range(profiled_range.num_actions()):
                action = profiled_range.action_by_idx(action_index)
                kernel = action.name(action.NameBase_FUNCTION)
                for raw in action.rule_results_as_dicts() or []:
                    message = raw.get("rule_message") or {}
                    speedup = raw.get("speedup_estimation") or {}
                    message_type = message.get("type")
                    if message_type == _RULE_ERROR and not include_rule_errors:
                        continue
                    results.append(
                        {
                            "launch": launch,
                            "kernel": kernel,
                            "rule": raw.get("rule_identifier"),
                            "name": raw.get("name"),
                            "section": raw.get("section_identifier"),
                            "type": message_type,
                            "severity": _MESSAGE_TYPES.get(message_type, str(message_type))
                            if message_type is not None
                            else None,
                            "title": message.get("title"),
                            "message": message.get("message"),
                            "speedup_type": _SPEEDUP_TYPES.get(int(speedup.get("type") or 0))
                            if speedup
                            else None,
                            "speedup": float(speedup["speedup"])
                            if speedup.get("speedup") is not None
                            else None,
                            "focus_metrics": list(raw.get("focus_metrics") or []),
                        }
                    )
                launch += 1
    return results
