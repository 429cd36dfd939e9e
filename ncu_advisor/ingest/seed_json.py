"""The metrics block LLM optimisation loops keep: ``{"kernel_name": {"metric": value, ...}, ...}``.

As in the prompts of ``../shared/seeds/`` (``[NCU PROFILING METRICS]`` followed by the JSON block): raw
ncu metric names with plain numbers, in the units ncu_report gives (the seeds' ``dram__throughput...``
percentages, ``launch__grid_size`` counts). Read from a ``.json`` file or from the first such block inside
any text (a prompt pasted into a ``.txt``). Each kernel becomes one launch; a metric name without ``__``
or a value that is not a number (strings only for ``*_name`` metrics; numeric strings are read as
numbers) is refused (it is not ncu's), as is JSON nested too deep to be a block and an object with one key
twice (JSON would keep the last value silently). ``null`` and ``NaN`` are read as "not measured", as an
empty cell and ncu's ``nan`` are in its CSV exports, and a note names each such value.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.cells import FOREIGN_DIGITS, foreign_digits, parse_number
from ncu_advisor.metrics import catalogue
from ncu_advisor.table import build_table

# ncu's metric-name grammar (Nsight Compute's "Metrics Structure": ``unit__counter[.rollup][.submetric]``):
# every one of the 2,551 metric names of the 16 public reports (../shared/reports-public) and the recorded
# raw export (tests/fixtures/formats/raw.csv) matches it (scanned 2026-11-30 with ``ingest.read``), including
# the PM-sampling prefixes (``SM_A.TriageCompute.sm__...``) and the ``group:``/``pmsampling:`` forms.
_UNITS = (
    "c2clink|dram|dramc|derived|device|fbpa|fbp|gcc|gpc|gpu|gr|idc|l1tex|launch|lrc|ltc|lts|memory|numa|"
    "nvlink|nvlrx|nvltx|pcie|profiler|sass|sm|smsp|syslts|tex|tpc"
)
_SUBMETRICS = (
    "peak_sustained(?:_active|_elapsed|_region|_frame)?|per_second|per_cycle_(?:active|elapsed|region|frame)"
    "|pct_of_peak_sustained_(?:active|elapsed|region|frame)|max_rate|pct|ratio"
)
NCU_NAME = re.compile(
    rf"^(?:[A-Z][A-Za-z0-9_]*\.)*(?:(?:breakdown|group|pmsampling):)?(?:{_UNITS})__[A-Za-z0-9_]+"
    rf"(?:\.(?:sum|avg|min|max))?(?:\.(?:{_SUBMETRICS}))?(?:\.per_second)?$"
)


# ``launch__*`` metrics are a closed set: attributes of the launch (its configuration and the occupancy
# calculator's results), not hardware counters, so no chip or --metrics option adds any. These are every
# launch__ name of the 16 public reports (ncu 2019.x-2025.x, ../shared/reports-public), the recorded
# 2025.3 raw export (tests/fixtures/formats/raw.csv) and the catalogue (collected with ``ingest.read``,
# 2026-11-30). A ``launch__`` name outside it is a misspelling (``launch__grid_sise``), or a name of a
# newer ncu: the note says which known name is closest either way, and reads the value as given.
LAUNCH_NAMES = frozenset(
    """barrier_count block_dim_x block_dim_y block_dim_z block_size cluster_dim_x cluster_dim_y
    cluster_dim_z cluster_max_active cluster_max_potential_size cluster_scheduling_policy cluster_size
    context_id device_id func_cache_config function_pcs grid_dim_x grid_dim_y grid_dim_z grid_size
    kernel_name occupancy_cluster_gpu_pct occupancy_cluster_pct occupancy_limit_barriers
    occupancy_limit_blocks occupancy_limit_registers occupancy_limit_shared_mem occupancy_limit_warps
    occupancy_per_barrier_count occupancy_per_block_size occupancy_per_cluster_size
    occupancy_per_register_count occupancy_per_shared_mem_size persisting_l2_cache_size
    preferred_cluster_dim_x preferred_cluster_dim_y preferred_cluster_dim_z preferred_cluster_size
    registers_per_thread registers_per_thread_allocated shared_mem_config_size shared_mem_per_block
    shared_mem_per_block_allocated shared_mem_per_block_driver shared_mem_per_block_dynamic
    shared_mem_per_block_static sm_count stack_size stream_id thread_count tpc_count tpc_enabled
    uses_cdp uses_green_context uses_mps uses_nvlink_centric_scheduling uses_vgpu
    waves_per_multiprocessor""".split()
)


def _known_launch_name(name: str) -> bool:
    """False for a ``launch__`` name outside ``LAUNCH_NAMES`` (the closed set); True for any other."""
    return not name.startswith("launch__") or name.removeprefix("launch__") in LAUNCH_NAMES


def unknown_names_note(source: str, names: list[str]) -> str | None:
    """The note naming metric names that are neither in the catalogue (``metrics.yaml``) nor of ncu's
    name grammar (``NCU_NAME``), or ``launch__`` names outside the closed set ``LAUNCH_NAMES``, each with
    the closest known name (``difflib``), or None.

    Such a name is a misspelling (``dram__throughput.avg.pct_of_peak_sustaned_elapsed``,
    ``lanch__grid_size``, ``launch__grid_sise``): no rule reads it, so the value it carries is not used.
    A misspelled hardware counter that still fits the grammar (``dram__bytes_reed.sum``) cannot be told
    from a real metric outside the catalogue (counters are an open set: per chip and per --metrics).
    """
    known = sorted(set(catalogue()) | {f"launch__{name}" for name in LAUNCH_NAMES})
    unknown = sorted(
        {
            name
            for name in names
            if name not in catalogue() and (not NCU_NAME.match(name) or not _known_launch_name(name))
        }
    )
    if not unknown:
        return None
    shown = []
    for name in unknown[:8]:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        shown.append(
            f"{name!r:.100} (closest known: {close[0]})" if close else f"{name!r:.100} (no close name)"
        )
    more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
    return (
        f"{source}: {len(unknown)} metric name(s) are not ncu metric names (not in the catalogue, not of "
        "ncu's unit__counter.rollup.submetric form, or not one of ncu's launch__ names), so no rule reads "
        f"their values: {', '.join(shown)}{more}"
    )


class _DuplicateKey(ValueError):
    """A JSON object with one key twice (json keeps the last value silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs)
MAX_BYTES = 64 << 20  # a metrics block is a few KB; a text this large is not one
_BLOCK_HINT = "pass the JSON the optimisation loop kept, or an ncu report"


def _blocks(text: str) -> list[tuple[int, Any]]:
    """Every top-level JSON object in ``text`` with its line number (1-based)."""
    found: list[tuple[int, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = _DECODER.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        found.append((text.count("\n", 0, index) + 1, value))
        index = text.find("{", end)
    return found


def _is_metrics_block(value: Any) -> bool:
    """``{kernel: {raw_metric_name: number-or-string}}`` with at least one ncu metric name."""
    if not isinstance(value, dict) or not value:
        return False
    metrics_seen = False
    for kernel, metrics in value.items():
        if not isinstance(kernel, str) or not isinstance(metrics, dict) or not metrics:
            return False
        metrics_seen = metrics_seen or any(isinstance(name, str) and "__" in name for name in metrics)
    return metrics_seen


def sniff(head: bytes) -> bool:
    """True when ``head`` holds a metrics block (a whole JSON document or one pasted into text)."""
    text = head.decode("utf-8", errors="replace")
    try:
        return any(_is_metrics_block(value) for _, value in _blocks(text))
    except (RecursionError, ValueError):  # nested too deep, a 5000-digit number: JSON; ``read`` says why
        return True


def read(path: Path, variant: str | None) -> pd.DataFrame:
    """Read the first metrics block of the file into the table (one launch per kernel).

    Returns:
        The table with ``attrs["reader"] == "seed_json"`` and a note naming the block's line.

    Raises:
        ReportError: no metrics block, a value that is not a number/string, or a name that is not ncu's.
    """
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ReportError(f"is larger than {MAX_BYTES >> 20} MB: not a metrics block", path=path)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    try:
        blocks = [(line, value) for line, value in _blocks(text) if _is_metrics_block(value)]
    except RecursionError:
        raise ReportError(
            "its JSON is nested too deep to be a metrics block", path=path, hint=_BLOCK_HINT
        ) from None
    except _DuplicateKey as exc:
        raise ReportError(
            f"its JSON has the key {exc.key!r:.120} twice in one object: one of the two values would be "
            "dropped silently",
            path=path,
            hint="remove the duplicate (keep the value the profiler gave)",
        ) from None
    except ValueError:  # an integer over Python's 4300-digit limit (the only ValueError left here)
        raise ReportError(
            "its JSON has a number too long to be a metric value (over 4,300 digits)",
            path=path,
            hint="fix that number, or " + _BLOCK_HINT,
        ) from None
    if not blocks:
        raise ReportError(
            'holds no metrics block {"kernel": {"ncu_metric_name": value}}',
            path=path,
            hint=_BLOCK_HINT,
        )
    line, block = blocks[0]
    records: list[dict[str, Any]] = []
    unmeasured: list[str] = []
    for index, (kernel, metrics) in enumerate(block.items()):
        record: dict[str, Any] = {}
        for name, value in metrics.items():
            record[name] = _value(path, kernel, name, value)
            if record[name] is None or (isinstance(record[name], float) and math.isnan(record[name])):
                unmeasured.append(f"{kernel}/{name}")
        record.update(
            source=str(path), variant=variant, range=0, action=index, kernel=kernel, demangled=kernel
        )
        records.append(record)
    units = {name: info.unit for name, info in catalogue().items()}  # the block states none
    table = build_table(records, units)
    table.attrs["reader"] = "seed_json"
    notes = [
        f"{path}: read the metrics block at line {line} ({len(records)} kernel(s)); "
        "values taken as ncu_report's base units"
    ]
    if len(blocks) > 1:
        notes.append(f"{path}: {len(blocks) - 1} further metrics block(s) ignored")
    note = unknown_names_note(str(path), [name for metrics in block.values() for name in metrics])
    if note is not None:
        notes.append(note)
    if unmeasured:
        shown = ", ".join(unmeasured[:6]) + (
            f" and {len(unmeasured) - 6} more" if len(unmeasured) > 6 else ""
        )
        notes.append(f"{path}: {len(unmeasured)} value(s) are null or NaN, read as not measured: {shown}")
    table.attrs["notes"] = notes
    return table


def _is_string_metric(name: str) -> bool:
    """ncu's string-valued metrics are names (``device__attribute_display_name``); all others count."""
    return name.endswith("_name")


def _value(path: Path, kernel: str, name: str, value: Any) -> float | str | None:
    if "__" not in name:
        raise ReportError(
            f"kernel {kernel!r}: {name!r} is not an ncu metric name (they contain '__')",
            path=path,
            hint="use the raw names ncu prints with --page raw",
        )
    if value is None:
        return value
    if isinstance(value, str):
        if _is_string_metric(name):
            return value
        number = parse_number(value)
        if number is None:
            why = f" (it has {FOREIGN_DIGITS})" if foreign_digits(value) else ""
            raise ReportError(
                f"kernel {kernel!r}: {name} is {value!r:.80}, not a number{why}",
                path=path,
                hint="metric values are numbers (strings only for name metrics such as "
                "device__attribute_display_name)",
            )
        value = number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportError(
            f"kernel {kernel!r}: {name} is {type(value).__name__}, not a number",
            path=path,
            hint="metric values are numbers (or strings for string metrics)",
        )
    number = float(value)
    if math.isinf(number):
        raise ReportError(f"kernel {kernel!r}: {name} is out of range ({value})", path=path)
    return number
