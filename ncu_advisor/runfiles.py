"""Helpers of run directories that need nothing else of ``rundir``: the folder's name and creation, atomic
JSON writes, and the per-kernel columns the tables get from each variant's ``result.json`` (Triton's
register and spill counts, the autotune config the run chose). ``rundir`` re-exports every name here.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import RunError

VARIANTS_DIR = "variants"


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
