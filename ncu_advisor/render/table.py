"""Write the tidy table as a readable text table, CSV, JSON or Parquet.

Files are written to a temp file beside the target and renamed into place, so a failed write leaves
nothing partial behind. The JSON shape is stable (other tools rely on it): an array with one object
per kernel launch holding every id column and every metric under its full ncu name, numbers in base
units, strings as strings; a missing value (NaN/None) is omitted from its object, and an infinite
value (ncu writes inf for some ratios, e.g. on the H800 public report) is written as null, since JSON
has no infinity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from ncu_advisor.errors import InputError
from ncu_advisor.render.output import write_atomic, write_stdout, write_text_atomic
from ncu_advisor.rundir import has_pyarrow
from ncu_advisor.table import ID_COLUMNS, metric_columns

FORMATS: tuple[str, ...] = ("table", "csv", "json", "parquet")
#: ``schema_version`` of ``metrics --format json`` (ncu_advisor/schemas/metrics.schema.json).
METRICS_SCHEMA_VERSION = 1
LAUNCHES_PER_BLOCK = 6  # the text table shows metrics as rows and this many launches per block


def _plain(value: Any) -> Any:
    """A cell as a JSON value: None for missing, int for integral ids, float/str otherwise."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    return value


def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON-ready dicts: one per launch, missing values omitted, infinities as None."""
    columns = list(df.columns)
    records: list[dict[str, Any]] = []
    for row in df.itertuples(index=False, name=None):
        record: dict[str, Any] = {}
        for name, value in zip(columns, row, strict=True):
            plain = _plain(value)
            if isinstance(plain, float) and math.isinf(plain):
                record[name] = None
            elif plain is not None:
                record[name] = plain
        records.append(record)
    return records


def format_number(value: float) -> str:
    """A readable number: thousands separators for large values, 4 significant digits otherwise."""
    if math.isnan(value):
        return "-"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _cell(value: Any) -> str:
    plain = _plain(value)
    if plain is None:
        return "-"
    if isinstance(plain, float):
        return format_number(plain)
    if isinstance(plain, int):
        return f"{plain:,}"
    return str(plain)


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def text_table(df: pd.DataFrame) -> str:
    """Metrics as rows (with their units), launches as columns, in blocks of ``LAUNCHES_PER_BLOCK``."""
    units: dict[str, str] = df.attrs.get("units", {})
    metrics = metric_columns(df.columns)
    blocks: list[str] = []
    for start in range(0, len(df), LAUNCHES_PER_BLOCK):
        part = df.iloc[start : start + LAUNCHES_PER_BLOCK]
        headers = ["", "unit"] + [f"#{start + i}" for i in range(len(part))]
        rows: list[list[str]] = []
        for name in ("kernel", "source", "gpu", "nvtx", "variant"):
            if name in part.columns and part[name].notna().any():
                values = [
                    _short(Path(str(v)).name if name == "source" and v is not None else _cell(v))
                    for v in part[name]
                ]
                rows.append([name, ""] + values)
        for name in metrics:
            rows.append([name, units.get(name, "")] + [_cell(v) for v in part[name]])
        blocks.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    return "\n\n".join(blocks) + "\n"


def render_text(df: pd.DataFrame, fmt: str) -> str:
    """The table in a text format (``table``, ``csv`` or ``json``) as a string."""
    if fmt == "table":
        return text_table(df)
    if fmt == "csv":
        return str(df.to_csv(index=False))
    if fmt == "json":
        document = {"schema_version": METRICS_SCHEMA_VERSION, "launches": to_records(df)}
        return json.dumps(document, indent=1, allow_nan=False) + "\n"
    raise InputError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")


def render_table(df: pd.DataFrame, fmt: str, out: Path | None) -> None:
    """Write the table in ``fmt`` to ``out`` (atomically) or, for text formats, to stdout.

    Args:
        df: the tidy table (any subset of its columns).
        fmt: ``table``, ``csv``, ``json`` or ``parquet``.
        out: target file; None writes text formats to stdout (parquet needs a file).

    Raises:
        InputError: unknown format, or parquet without ``out``.
        OutputError: ``out`` cannot be written.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise InputError("parquet output needs a file", hint="add -o FILE.parquet")
        if not has_pyarrow():
            raise InputError(
                "parquet output needs pyarrow, which the core install leaves out",
                path=out,
                hint="pip install 'ncu-advisor[parquet]', or use --format csv",
            )
        table = df.copy()
        table.attrs = {}
        for name in table.columns:
            if table[name].dtype == object:  # id columns and string metrics: store as strings
                table[name] = table[name].map(lambda v: None if _plain(v) is None else str(v))
        write_atomic(out, lambda tmp: table.to_parquet(tmp, index=False))
        return
    text = render_text(df, fmt)
    if out is None:
        write_stdout(text)
        return
    write_text_atomic(out, text)


__all__ = [
    "FORMATS",
    "ID_COLUMNS",
    "format_number",
    "render_table",
    "render_text",
    "text_table",
    "to_records",
]
