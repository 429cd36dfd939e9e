"""Every input format behind one entry: ``read(path) -> table`` (see ``registry`` for the formats)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def read(path: str | Path, variant: str | None = None) -> pd.DataFrame:
    """Read one input (format sniffed from its content) into the table: ``registry.read``."""
    from ncu_advisor.ingest.registry import read as read_one

    return read_one(path, variant)


def read_reports(paths: Iterable[str | Path], *, variant: str | None = None) -> pd.DataFrame:
    """Read several inputs into one table: ``registry.read_reports``."""
    from ncu_advisor.ingest.registry import read_reports as read_all

    return read_all(paths, variant=variant)
