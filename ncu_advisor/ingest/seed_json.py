"""The metrics block LLM optimisation loops keep: ``{"kernel_name": {"metric": value, ...}, ...}``.

As in the prompts of ``../shared/seeds/`` (``[NCU PROFILING METRICS]`` followed by the JSON block): raw
ncu metric names with plain numbers, in the units ncu_report gives (the seeds' ``dram__throughput...``
percentages, ``launch__grid_size`` counts). Read from a ``.json`` file or from the first such block inside
any text (a prompt pasted into a ``.txt``). Each kernel becomes one launch; a metric name without ``__``
or a value that is not a number or string is refused (it is not ncu's).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.metrics import catalogue
from ncu_advisor.table import build_table

_DECODER = json.JSONDecoder()
MAX_BYTES = 64 << 20  # a metrics block is a few KB; a text this large is not one


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
    return any(_is_metrics_block(value) for _, value in _blocks(text))


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
    blocks = [(line, value) for line, value in _blocks(text) if _is_metrics_block(value)]
    if not blocks:
        raise ReportError(
            'holds no metrics block {"kernel": {"ncu_metric_name": value}}',
            path=path,
            hint="pass the JSON the optimisation loop kept, or an ncu report",
        )
    line, block = blocks[0]
    records: list[dict[str, Any]] = []
    for index, (kernel, metrics) in enumerate(block.items()):
        record: dict[str, Any] = {}
        for name, value in metrics.items():
            record[name] = _value(path, kernel, name, value)
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
    table.attrs["notes"] = notes
    return table


def _value(path: Path, kernel: str, name: str, value: Any) -> float | str | None:
    if "__" not in name:
        raise ReportError(
            f"kernel {kernel!r}: {name!r} is not an ncu metric name (they contain '__')",
            path=path,
            hint="use the raw names ncu prints with --page raw",
        )
    if value is None or isinstance(value, str):
        return value
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
