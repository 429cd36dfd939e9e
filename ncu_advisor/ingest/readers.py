"""Read Nsight Compute reports into the tidy table (see ``ncu_advisor.table``).

This is the only module that imports ``ncu_report`` (NVIDIA's report interface), and only inside
functions, so the rest of the package imports without it. Two inputs are understood:

* binary reports: ``.ncu-rep``, ``.nsight-cuprof-report`` and their gzip'd ``.gz`` forms, read through
  ``ncu_report``; every value is what ``metric.value()`` gives (numbers as float, strings as str);
* ncu's CSV export, ``ncu --import R --csv --page raw`` with or without ``--print-units base``: the units
  row is read, thousands separators removed and scaled units (``Gbyte``, ``ms``, ``Mhz`` ...) converted
  to the base unit ``ncu_report`` reports, so both readers give the same numbers for the same report.

Bad input (missing file, not a report, truncated report, CSV without ncu's columns, no kernels) raises
``ReportError`` naming the file and what to do.
"""

from __future__ import annotations

import csv
import glob
import gzip
import math
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.table import ID_COLUMNS

BINARY_SUFFIXES: tuple[str, ...] = (".ncu-rep", ".nsight-cuprof-report")
REPORT_MAGIC = b"NVR\x00"  # first bytes of every .ncu-rep / .nsight-cuprof-report seen (2019..2025)
GZIP_MAGIC = b"\x1f\x8b"

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


# --------------------------------------------------------------------------------------------------
# Binary reports
# --------------------------------------------------------------------------------------------------


def _is_gzip_name(path: Path) -> bool:
    return path.name.endswith(".gz")


def _base_name(path: Path) -> str:
    return path.name[: -len(".gz")] if _is_gzip_name(path) else path.name


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ReportError(
            "no such file", path=path, hint="check the path; reports end in .ncu-rep, .ncu-rep.gz or .csv"
        )
    if path.is_dir():
        raise ReportError("is a directory, not a report", path=path, hint="pass the report files inside it")


def _check_magic(head: bytes, path: Path, *, unzipped: bool) -> None:
    """Raise the not-a-report error unless ``head`` starts with the report header."""
    if head[:4] == REPORT_MAGIC:
        return
    if unzipped:
        raise ReportError(
            "is not an Nsight Compute report (the un-gzipped file does not start with NVR)",
            path=path,
            hint="pass a report written by `ncu -o`",
        )
    raise ReportError(
        "is not an Nsight Compute report (the file does not start with the report header NVR)",
        path=path,
        hint="pass a report written by `ncu -o NAME` (NAME.ncu-rep), or its CSV export with a .csv name",
    )


def _gzip_error(path: Path, exc: BaseException) -> ReportError:
    return ReportError(
        f"the gzip file is truncated or corrupt ({exc})", path=path, hint="copy or download the report again"
    )


@contextmanager
def _plain_report_file(path: Path) -> Iterator[Path]:
    """Yield a path to the un-gzipped report (a temp copy for ``.gz``), checking its magic bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == GZIP_MAGIC:
        with tempfile.TemporaryDirectory(prefix="ncu-advisor-") as tmp:
            target = Path(tmp) / (
                _base_name(path) if _base_name(path) != path.name else path.name + ".ncu-rep"
            )
            try:
                with gzip.open(path, "rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (OSError, EOFError, zlib.error) as exc:
                raise _gzip_error(path, exc) from None
            with open(target, "rb") as handle:
                _check_magic(handle.read(4), path, unzipped=True)
            yield target
        return
    _check_magic(head, path, unzipped=False)
    yield path


def _metric_value(metric: Any) -> float | str | None:
    """A metric's value as the table holds it: float for numbers, str for strings, None when absent."""
    if metric is None or not metric.has_value():
        # Instanced-only metrics (e.g. FBSP.TriageCompute.*) have no aggregate value: value() says 0.0
        # while the CSV export prints an empty cell. Missing, not zero.
        return None
    value = metric.value()
    if value is None:
        return None
    if isinstance(value, str):
        return value if value else None  # an empty string metric reads as missing, as in the CSV export
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def _nvtx_names(action: Any) -> str | None:
    """The NVTX push/pop ranges active at the launch, outermost first, joined with " > "."""
    try:
        state = action.nvtx_state()
    except Exception:  # noqa: BLE001 - older reports may lack NVTX data; the column is then empty
        return None
    if state is None:
        return None
    names: list[str] = []
    for domain_id in state.domains():
        domain = state.domain_by_id(domain_id)
        if domain is None:
            continue
        domain_name = domain.name()
        for range_name in domain.push_pop_ranges():
            # Ranges of a named domain are written as ncu's --nvtx-include writes them: domain@range.
            if domain_name and domain_name != "<default domain>":
                names.append(f"{domain_name}@{range_name}")
            else:
                names.append(str(range_name))
    return " > ".join(names) if names else None


def _format_cc(major: float | str | None, minor: float | str | None) -> str | None:
    if major is None or minor is None or isinstance(major, str) or isinstance(minor, str):
        return None
    if math.isnan(major) or math.isnan(minor):
        return None
    return f"{int(major)}.{int(minor)}"


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


# Metrics that describe the device or the machine, not the launch: ncu stores them with every action, but
# their values are the same for every launch on one device. They are read once per device index and copied,
# which is most of the speed on large reports (166 of 254 metrics per launch in the 10k-launch report).
_DEVICE_LEVEL_PREFIXES = ("device__attribute_", "nvlink__", "numa__", "c2clink__")
_DEVICE_INDEX = "device__attribute_device_index"
_NAMES_READ = "\x00names"  # key in a device cache: the metric-name tuple its values were read for
# Large reports are read in forked worker processes, for two measured reasons: ncu_report holds the GIL
# (threads do not help) and it never frees what action_by_idx parses (about 0.47 MB per launch, 4.7 GB
# for the 10k-launch report, still held after the context is deleted); a worker's memory goes back to
# the system when it exits. NCU_ADVISOR_READ_WORKERS=N sets the number of workers (0: read in-process).
PARALLEL_MIN_LAUNCHES = 2000
WORKERS_ENV = "NCU_ADVISOR_READ_WORKERS"


def _read_actions(
    module: ModuleType, context: Any, work: list[tuple[int, int]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read the metrics of the given (range, action) pairs: one dict per launch, plus the units seen.

    Uses the raw SWIG functions of ``ncu_report`` (``_ncu_report``) where available: the convenience
    wrappers cost several times more per call, and a report can hold millions of values.
    """
    raw = getattr(module, "_ncu_report", None)
    metric_class = module.IMetric
    if raw is not None:
        metric_names = raw.IAction_metric_names
        metric_by_name = raw.IAction_metric_by_name
        metric_kind = raw.IMetric_kind
        has_value = raw.IMetric_has_value
        unit_of = raw.IMetric_unit
        as_double, as_uint64, as_string = raw.IMetric_as_double, raw.IMetric_as_uint64, raw.IMetric_as_string
    else:  # ncu's own copy of the module may lack the flat functions: use the methods
        metric_names = lambda a: a.metric_names()  # noqa: E731
        metric_by_name = lambda a, n: a.metric_by_name(n)  # noqa: E731
        metric_kind = lambda m: m.kind()  # noqa: E731
        has_value = lambda m: m.has_value()  # noqa: E731
        unit_of = lambda m: m.unit()  # noqa: E731
        as_double, as_uint64, as_string = (
            metric_class.as_double,
            metric_class.as_uint64,
            metric_class.as_string,
        )
    to_float = {
        metric_class.ValueKind_DOUBLE: as_double,
        metric_class.ValueKind_FLOAT: as_double,
        metric_class.ValueKind_UINT32: as_uint64,
        metric_class.ValueKind_UINT64: as_uint64,
    }
    string_kind = metric_class.ValueKind_STRING
    units: dict[str, str] = {}
    numeric_getter: dict[str, Any] = {}
    device_values: dict[Any, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    ranges: dict[int, Any] = {}

    def read_value(metric: Any) -> float | str | None:
        kind = metric_kind(metric)
        getter = to_float.get(kind)
        if getter is not None:
            number = getter(metric)
            # has_value() is checked only for zeros: an instanced-only metric (no aggregate) reads 0.0.
            if number == 0 and not has_value(metric):
                return None
            return float(number)
        if kind == string_kind:
            text = as_string(metric)
            return text if text else None  # an empty string metric reads as missing, as in the CSV export
        return None

    # Launches of one report nearly always carry the same metric names: split them once into
    # launch-level and device-level names and reuse the split while the names stay the same.
    previous_names: tuple[str, ...] | None = None
    launch_level: list[str] = []
    device_level: list[str] = []
    for range_index, action_index in work:
        profiled_range = ranges.get(range_index)
        if profiled_range is None:
            profiled_range = ranges[range_index] = context.range_by_idx(range_index)
        action = profiled_range.action_by_idx(action_index)
        names = tuple(metric_names(action))
        if names == previous_names:
            names = previous_names  # the same object, so device caches can check it by identity
        else:
            previous_names = names
            launch_level = [n for n in names if not n.startswith(_DEVICE_LEVEL_PREFIXES)]
            device_level = [n for n in names if n.startswith(_DEVICE_LEVEL_PREFIXES)]
            for name in names:
                if name not in units:
                    metric = metric_by_name(action, name)
                    if metric is not None:
                        units[name] = unit_of(metric) or ""
        device_key: Any = None
        if _DEVICE_INDEX in device_level:
            device_key = read_value(metric_by_name(action, _DEVICE_INDEX))
        cached_device = device_values.get(device_key) if device_key is not None else None
        if cached_device is None or cached_device.get(_NAMES_READ) is not names:
            cached_device = device_values.setdefault(device_key, {}) if device_key is not None else {}
            for name in device_level:
                metric = metric_by_name(action, name)
                if metric is not None:
                    cached_device[name] = read_value(metric)
            cached_device[_NAMES_READ] = names
        record: dict[str, Any] = {name: cached_device[name] for name in device_level if name in cached_device}
        for name in launch_level:
            metric = metric_by_name(action, name)
            if metric is None:
                continue
            # A metric's value kind is fixed by its name: remember the numeric getter and skip kind().
            getter = numeric_getter.get(name)
            if getter is None:
                getter = to_float.get(metric_kind(metric))
                if getter is None:
                    record[name] = read_value(metric)
                    continue
                numeric_getter[name] = getter
            number = getter(metric)
            record[name] = None if number == 0 and not has_value(metric) else float(number)
        gpu = record.get("device__attribute_display_name")
        record.update(
            range=range_index,
            action=action_index,
            kernel=action.name(action.NameBase_FUNCTION),
            demangled=action.name(action.NameBase_DEMANGLED),
            nvtx=_nvtx_names(action),
            gpu=gpu if isinstance(gpu, str) else None,
            cc=_format_cc(
                record.get("device__attribute_compute_capability_major"),
                record.get("device__attribute_compute_capability_minor"),
            ),
        )
        records.append(record)
    return records, units


def _read_actions_in_worker(
    args: tuple[str, list[tuple[int, int]]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Worker-process entry: load the (un-gzipped) report and read a slice of its launches."""
    plain, work = args
    module = load_ncu_report_module()
    context = module.load_report(plain)
    return _read_actions(module, context, work)


READER_ENV = "NCU_ADVISOR_READER"  # "auto" (default), "direct" or "ncu_report"


def _read_binary(
    path: Path, variant: str | None, *, workers: int | None = None, reader: str | None = None
) -> pd.DataFrame:
    """Read a binary report: directly (``ncurep``) where the layout is known, else through ``ncu_report``.

    ``reader`` (or ``$NCU_ADVISOR_READER``): ``auto`` tries the direct reader and falls back to
    ``ncu_report``; ``direct`` and ``ncu_report`` use only that one.
    """
    reader = (reader or os.environ.get(READER_ENV, "") or "auto").strip().lower()
    if reader not in ("auto", "direct", "ncu_report"):
        raise ReportError(
            f"unknown reader {reader!r} in ${READER_ENV}", hint="use auto, direct or ncu_report"
        )
    if reader != "ncu_report":
        table = _read_binary_direct(path, variant, strict=reader == "direct")
        if table is not None:
            return table
    return _read_binary_ncu_report(path, variant, workers=workers)


def _report_bytes(path: Path) -> bytes:
    """The un-gzipped bytes of a binary report, with the same checks as ``_plain_report_file``."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise _gzip_error(path, exc) from None
        _check_magic(data, path, unzipped=True)
    else:
        _check_magic(data, path, unzipped=False)
    return data


def _read_binary_direct(path: Path, variant: str | None, *, strict: bool) -> pd.DataFrame | None:
    """The table through ``ncurep``; None when the file needs ``ncu_report`` (unless ``strict``)."""
    from ncu_advisor.ingest import ncurep

    data = _report_bytes(path)
    try:
        parsed = ncurep.read_launches(data)
        records, unit_carriers = ncurep.table_records(parsed)
    except ncurep.UnsupportedReport as exc:
        if strict:
            raise ReportError(
                f"the direct reader cannot read it ({exc})",
                path=path,
                hint=f"unset ${READER_ENV} to read it through ncu_report",
            ) from None
        return None
    if not records:  # read to the end, well formed, and not one profile result in it
        raise ReportError(
            "the report holds no kernel launches",
            path=path,
            hint="check ncu's filters (-k, --nvtx-include) and re-record",
        )
    # The file up to the block of the last launch that brings a new metric name (and to the last string
    # table): a valid, smaller report.
    head = data[: max(parsed.block_ends[unit_carriers[-1]], parsed.strings_end)]
    units = _units_through_ncu_report(head, records, unit_carriers)
    for record in records:
        gpu = record.get("device__attribute_display_name")
        record.update(
            source=str(path),
            variant=variant,
            gpu=gpu if isinstance(gpu, str) else None,
            cc=_format_cc(
                record.get("device__attribute_compute_capability_major"),
                record.get("device__attribute_compute_capability_minor"),
            ),
        )
    table = _build_table(records, units)
    table.attrs["reader"] = "direct"
    return table


def _units_through_ncu_report(
    head: bytes, records: list[dict[str, Any]], carriers: list[int]
) -> dict[str, str]:
    """Each metric's unit, which the file does not store (ncu_report takes it from NVIDIA's metric
    library): read from ``ncu_report`` on the few launches that first carry each name. Empty without it.

    ``head`` is the start of the plain report up to the block of the last carrier, a valid report of
    its own: ncu_report needs a plain file, and a short one loads faster.
    """
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
        if workers >= 1 and len(work) > 1 and sys.platform.startswith("linux"):
            records, units = _read_in_processes(str(plain), work, workers)
        else:
            records, units = _read_actions(module, context, work)
    for record in records:
        record["source"] = str(path)
        record["variant"] = variant
    table = _build_table(records, units)
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


def _core_fallbacks(table: pd.DataFrame) -> dict[str, str]:
    """Core metrics that some launch of ``table`` only has under a fallback name: name -> fallback(s)."""
    from ncu_advisor.metrics import CORE_METRICS, fallbacks_used

    return fallbacks_used(table, CORE_METRICS)


def _build_table(records: list[dict[str, Any]], units: dict[str, str]) -> pd.DataFrame:
    """Build the table once from per-launch dicts: id columns first, then metrics sorted by name.

    Numeric metric columns are float64 (None -> NaN), string metrics keep their strings, and a metric
    with no value in any launch is an all-NaN float column.
    """
    table = pd.DataFrame.from_records(records)
    metric_names = sorted(name for name in table.columns if name not in ID_COLUMNS)
    table = table.reindex(columns=[*ID_COLUMNS, *metric_names])
    for name in ("range", "action"):
        table[name] = table[name].astype("Int64")
    for name in ID_COLUMNS:
        if name not in ("range", "action"):
            table[name] = table[name].astype(object).where(table[name].notna(), None)
    for name in metric_names:
        column = table[name]
        if column.dtype == object and column.isna().all():
            table[name] = column.astype("float64")
    table.attrs["units"] = {name: units.get(name, "") for name in metric_names}
    table.attrs["fallbacks"] = _core_fallbacks(table)
    return table


# --------------------------------------------------------------------------------------------------
# CSV export
# --------------------------------------------------------------------------------------------------

# Factors from the units ncu prints by default to the base unit ncu_report gives for the same metric.
_SI_PREFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME_TO_NS = {
    "ns": 1.0,
    "nsecond": 1.0,
    "us": 1e3,
    "usecond": 1e3,
    "ms": 1e6,
    "msecond": 1e6,
    "s": 1e9,
    "second": 1e9,
}
_RATE_DENOMINATOR_TO_S = {
    "s": 1.0,
    "second": 1.0,
    "ms": 1e-3,
    "msecond": 1e-3,
    "us": 1e-6,
    "usecond": 1e-6,
    "ns": 1e-9,
    "nsecond": 1e-9,
}
_ID_COLUMN_OF_CSV = {"ID": "action", "Kernel Name": "demangled", "CC": "cc"}
_REQUIRED_CSV_COLUMNS = ("ID", "Kernel Name")


def _unit_scale(unit: str) -> tuple[float, str]:
    """Return (factor, base unit) turning a value printed in ``unit`` into ncu_report's base unit.

    Examples: ``Gbyte`` -> (1e9, ``byte``); ``ms`` -> (1e6, ``ns``); ``Ghz`` -> (1e9, ``hz``);
    ``Kbyte/block`` -> (1e3, ``byte/block``); ``Tbyte/s`` -> (1e12, ``byte/s``); ``sector/us`` ->
    (1e6, ``sector/s``); ``%`` -> (1, ``%``).
    """
    if unit in _TIME_TO_NS:
        return _TIME_TO_NS[unit], "ns"
    numerator, slash, denominator = unit.partition("/")
    factor = 1.0
    base_numerator = numerator
    match = re.fullmatch(r"([KMGTP])(byte|hz|bit|inst|sector|request|warp|thread|cycle)", numerator)
    if match:
        factor = _SI_PREFIX[match.group(1)]
        base_numerator = match.group(2)
    elif numerator in ("Mhz", "Ghz", "Khz"):
        factor = _SI_PREFIX[numerator[0]]
        base_numerator = "hz"
    if not slash:
        return factor, base_numerator
    if denominator in _RATE_DENOMINATOR_TO_S:
        return factor / _RATE_DENOMINATOR_TO_S[denominator], f"{base_numerator}/s"
    den_match = re.fullmatch(r"([KMGT])(byte|register)", denominator)
    if den_match:
        # ncu scales the printed number by the prefix wherever it sits: the report's 1164 %/byte prints
        # as 1.164 %/Kbyte (measured on seed001_full), so a prefix in the denominator multiplies too.
        return factor * _SI_PREFIX[den_match.group(1)], f"{base_numerator}/{den_match.group(2)}"
    return factor, f"{base_numerator}/{denominator}"


_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d*)?([eE][+-]?\d+)?$|^[+-]?\.\d+([eE][+-]?\d+)?$")


def _parse_csv_number(text: str) -> float | None:
    """A CSV cell as a float (thousands separators removed), or None when it is not a number."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.lower() in ("nan", "n/a", "no data"):
        return math.nan
    if _NUMBER.match(stripped):
        return float(stripped.replace(",", ""))
    return None


def _drop_last_group(name: str, opening: str, closing: str) -> str:
    """``name`` without its last top-level ``opening ... closing`` group and what follows it."""
    depth = 0
    for index in range(len(name) - 1, -1, -1):
        if name[index] == closing:
            depth += 1
        elif name[index] == opening:
            depth -= 1
            if depth == 0:
                return name[:index]
    return name


def _csv_kernel_function_name(demangled: str) -> str:
    """The function-name base of a demangled kernel name, as ncu_report's NameBase_FUNCTION gives it.

    ``void cudnn::ns::nchwToNhwcKernel<float, 0>(params, const float *)`` -> ``nchwToNhwcKernel``.
    """
    name = demangled.strip()
    name = _drop_last_group(name, "(", ")")  # the parameter list: the last top-level "(...)"
    if name.endswith(">"):  # template arguments: the top-level <...> at the end
        name = _drop_last_group(name, "<", ">")
    name = name.split(" ")[-1]  # return type
    return name.split("::")[-1]


def _csv_nvtx(cell: str) -> str | None:
    """NVTX push/pop names from the CSV column ``thread Domain:Push/Pop_Range:...``.

    A cell reads ``473  "<default domain>:ncu_advisor:none:none:none:none:none:none"``: the thread id,
    then one quoted ``domain:range:payload...`` group per active range.
    """
    names: list[str] = []
    for group in re.findall(r'"([^"]*)"', cell):
        parts = group.split(":")
        if len(parts) < 2:
            continue
        domain, range_name = parts[0], parts[1]
        if domain and domain != "<default domain>":
            names.append(f"{domain}@{range_name}")
        else:
            names.append(range_name)
    return " > ".join(names) if names else None


def _read_csv(path: Path, variant: str | None) -> pd.DataFrame:
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    # ncu prints ==PROF== / ==WARNING== lines before the table when stdout was captured whole.
    while rows and (not rows[0] or rows[0][0].startswith("==")):
        rows.pop(0)
    if not rows or any(required not in rows[0] for required in _REQUIRED_CSV_COLUMNS):
        raise ReportError(
            "is not an ncu CSV export: the header lacks the columns "
            + ", ".join(f'"{c}"' for c in _REQUIRED_CSV_COLUMNS),
            path=path,
            hint="export with `ncu --import REPORT.ncu-rep --csv --page raw > FILE.csv`",
        )
    header = rows[0]
    body = rows[1:]
    units_row: list[str] = [""] * len(header)
    if body and body[0] and body[0][header.index("ID")].strip() == "":
        units_row = body[0] + [""] * (len(header) - len(body[0]))
        body = body[1:]
    body = [row for row in body if any(cell.strip() for cell in row)]
    if not body:
        raise ReportError(
            "the CSV holds no kernel launches", path=path, hint="re-export a report that has profiled kernels"
        )

    metric_positions = [i for i, name in enumerate(header) if "__" in name and name not in _ID_COLUMN_OF_CSV]
    scales = {i: _unit_scale(units_row[i].strip()) for i in metric_positions}
    nvtx_position = next((i for i, name in enumerate(header) if "Push/Pop_Range" in name), None)
    records: list[dict[str, Any]] = []
    for row in body:
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        record: dict[str, Any] = {}
        for i in metric_positions:
            cell = row[i]
            number = _parse_csv_number(cell)
            if number is None:
                record[header[i]] = cell.strip() if cell.strip() else None
            else:
                record[header[i]] = number * scales[i][0]
        demangled = row[header.index("Kernel Name")]
        gpu = record.get("device__attribute_display_name")
        action_id = _parse_csv_number(row[header.index("ID")])
        record.update(
            source=str(path),
            variant=variant,
            range=0,
            action=int(action_id) if action_id is not None and not math.isnan(action_id) else None,
            kernel=_csv_kernel_function_name(demangled),
            demangled=demangled,
            nvtx=_csv_nvtx(row[nvtx_position]) if nvtx_position is not None else None,
            gpu=gpu if isinstance(gpu, str) else None,
            cc=row[header.index("CC")].strip() if "CC" in header else None,
        )
        records.append(record)
    units = {header[i]: scales[i][1] for i in metric_positions}
    return _build_table(records, units)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _is_csv(path: Path) -> bool:
    return _base_name(path).lower().endswith(".csv")


def read_report(path: str | Path, *, variant: str | None = None) -> pd.DataFrame:
    """Read one report into the tidy table: one row per kernel launch, one column per metric.

    Args:
        path: a ``.ncu-rep``/``.nsight-cuprof-report`` file (optionally ``.gz``) or an ncu CSV export
            (``ncu --import R --csv --page raw``, with or without ``--print-units base``).
        variant: the kernel-file variant the report belongs to, stored in the ``variant`` column.

    Returns:
        The table: ``ID_COLUMNS`` first, then every metric under its full ncu name in base units.
        ``attrs["units"]`` maps each metric to its base unit; ``attrs["fallbacks"]`` maps each core
        metric (``metrics.CORE_METRICS``) read through a fallback name to that name.

    Raises:
        ReportError: the file is missing, not a report, truncated/corrupt, or holds no kernels.
    """
    report_path = Path(path)
    _check_exists(report_path)
    if _is_csv(report_path):
        return _read_csv(report_path, variant)
    return _read_binary(report_path, variant)


def read_reports(paths: Iterable[str | Path], *, variant: str | None = None) -> pd.DataFrame:
    """Read several reports into one table (rows concatenated, the union of their metric columns).

    Args:
        paths: report files, as for ``read_report``.
        variant: stored in the ``variant`` column of every row.

    Returns:
        The concatenated table; ``attrs["units"]`` merges the reports' units, ``attrs["fallbacks"]``
        is recomputed on the whole table.

    Raises:
        ReportError: no paths were given, or any report cannot be read.
    """
    tables = [read_report(p, variant=variant) for p in paths]
    if not tables:
        raise ReportError("no reports given", hint="pass one or more .ncu-rep, .ncu-rep.gz or .csv files")
    if len(tables) == 1:
        return tables[0]
    units: dict[str, str] = {}
    for table in tables:
        for name, unit in table.attrs.get("units", {}).items():
            units.setdefault(name, unit)
    combined = pd.concat(tables, ignore_index=True, sort=False)
    metric_names = sorted(set(combined.columns) - set(ID_COLUMNS))
    combined = combined[[*ID_COLUMNS, *metric_names]]
    combined.attrs = {"units": units, "fallbacks": _core_fallbacks(combined)}
    return combined


_MESSAGE_TYPES = {  # ncu_report.MsgType_NONE/OK/OPTIMIZATION/WARNING/ERR
    0: "none",
    1: "ok",
    2: "optimization",
    3: "warning",
    4: "error",
}
_SPEEDUP_TYPES = {0: None, 1: "local", 2: "global"}  # ncu_report.SpeedupType_UNKNOWN/LOCAL/GLOBAL


def rule_results(path: str | Path) -> list[dict[str, Any]]:
    """ncu's own guided-analysis rule results, per launch (present in ``--set``/``--section`` reports).

    Args:
        path: a binary report (``.ncu-rep`` or ``.ncu-rep.gz``).

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


def _cli_paths_default(root: Path) -> list[Path]:
    """Every ``*.ncu-rep.gz`` under ``root`` (the shipped examples), sorted."""
    return sorted(Path(p) for p in glob.glob(os.path.join(str(root), "**", "*.ncu-rep.gz"), recursive=True))
