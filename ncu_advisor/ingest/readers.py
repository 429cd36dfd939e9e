"""The names callers used before ``ingest`` had one entry: ``read_report``/``read_reports`` (now
``ncu_advisor.ingest.read``/``read_reports``, every format sniffed from the content) and the binary
reader's names, re-exported from ``ingest.binary`` and ``ingest.ncu_report_reader``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ncu_advisor.ingest import registry
from ncu_advisor.ingest.binary import READER_ENV, _read_binary
from ncu_advisor.ingest.ncu_report_reader import (
    WORKERS_ENV,
    _candidate_ncu_python_dirs,
    _default_workers,
    load_ncu_report_module,
    rule_results,
)

__all__ = [
    "READER_ENV",
    "WORKERS_ENV",
    "_candidate_ncu_python_dirs",
    "_default_workers",
    "_read_binary",
    "load_ncu_report_module",
    "read_report",
    "read_reports",
    "rule_results",
]


def read_report(path: str | Path, *, variant: str | None = None) -> pd.DataFrame:
    """Read one input of any accepted format: ``ncu_advisor.ingest.registry.read``."""
    return registry.read(path, variant)


def read_reports(paths: Iterable[str | Path], *, variant: str | None = None) -> pd.DataFrame:
    """Read several inputs into one table: ``ncu_advisor.ingest.registry.read_reports``."""
    return registry.read_reports(paths, variant=variant)
