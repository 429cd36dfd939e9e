"""One entry for every input format: ``read(path) -> table``, the format sniffed from the content.

Each format is a module of this package with ``sniff(head: bytes) -> bool`` (the first bytes of the file,
un-gzipped) and ``read(path, variant) -> table``. Adding a format is a new module and one line in
``READERS``; the first reader whose ``sniff`` accepts the head reads the file, once.
"""

from __future__ import annotations

import gzip
import stat
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import csv_details, csv_raw, seed_json, text
from ncu_advisor.ingest.binary import _read_binary
from ncu_advisor.ingest.common import GZIP_MAGIC, REPORT_MAGIC
from ncu_advisor.ingest.sanity import check_table
from ncu_advisor.table import ID_COLUMNS, core_fallbacks

SNIFF_BYTES = 1 << 20  # enough for the widest raw CSV header seen (about 60 KB) and any preamble


@dataclass(frozen=True)
class Reader:
    """One input format: its name (the table's ``attrs["reader"]`` family), detector and reader."""

    name: str
    description: str
    sniff: Callable[[bytes], bool]
    read: Callable[[Path, str | None], pd.DataFrame]


def _sniff_binary(head: bytes) -> bool:
    return head[:4] == REPORT_MAGIC


def _read_binary_report(path: Path, variant: str | None) -> pd.DataFrame:
    return _read_binary(path, variant)


READERS: tuple[Reader, ...] = (
    Reader("ncu-rep", "binary report (ncu -o), plain or .gz", _sniff_binary, _read_binary_report),
    Reader("csv-raw", "ncu --csv --page raw [--print-units base]", csv_raw.sniff, csv_raw.read),
    Reader("csv-details", "ncu --csv (details page, also --metrics)", csv_details.sniff, csv_details.read),
    Reader("text", "ncu's plain-text output (ncu ./app, ncu --import R)", text.sniff, text.read),
    Reader("seed-json", 'metrics JSON {"kernel": {"metric": value}}', seed_json.sniff, seed_json.read),
)


def _check_regular_file(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ReportError(
            "no such file", path=path, hint="check the path; reports end in .ncu-rep, .ncu-rep.gz or .csv"
        ) from None
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    if stat.S_ISDIR(mode):
        raise ReportError("is a directory, not a report", path=path, hint="pass the report files inside it")
    if not stat.S_ISREG(mode):
        raise ReportError(
            "is not a regular file (a pipe, socket or device)",
            path=path,
            hint="save the ncu output to a file first and pass that file",
        )


def head_bytes(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the file, un-gzipped when it is gzip'd.

    A corrupt gzip gives its raw head: the binary reader reports the damage with its own message.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(size)
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    if head[:2] == GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as handle:
                return handle.read(size)
        except (OSError, EOFError, zlib.error):
            return head
    return head


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def reader_for(path: Path) -> Reader:
    """The reader of the first format in ``READERS`` that recognises the file's content.

    Raises:
        ReportError: the file is missing, not a regular file, or no format recognises it.
    """
    _check_regular_file(path)
    head = head_bytes(path)
    for reader in READERS:
        if reader.sniff(head):
            if reader is not READERS[0] and _is_gzip(path):
                raise ReportError(
                    f"is a gzip'd {reader.name} file; only binary reports are read gzip'd",
                    path=path,
                    hint=f"gunzip it first (gunzip -k {path.name})",
                )
            return reader
    if head[:2] == GZIP_MAGIC:
        return READERS[0]  # a damaged gzip: the binary reader says what is wrong with it
    accepted = "; ".join(r.description for r in READERS)
    if path.name.lower().removesuffix(".gz").endswith(".csv"):
        raise ReportError(
            'is not an ncu CSV export: no line has the columns "ID", "Kernel Name"',
            path=path,
            hint="export with `ncu --import REPORT.ncu-rep --csv --page raw > FILE.csv`",
        )
    raise ReportError(
        "is not an input ncu-advisor can read (not an Nsight Compute report, CSV export, text output or "
        "metrics JSON)",
        path=path,
        hint=f"accepted: {accepted}",
    )


def read(path: str | Path, variant: str | None = None) -> pd.DataFrame:
    """Read one input of any accepted format into the table (``ncu_advisor.table``).

    Args:
        path: a binary report, or any text format in ``READERS`` (sniffed from the content).
        variant: the kernel-file variant the input belongs to, stored in the ``variant`` column.

    Returns:
        The table: ``ID_COLUMNS`` first, then every metric under its full ncu name in base units, with
        ``attrs`` as ``ncu_advisor.table`` lists them.

    Raises:
        ReportError: the file is missing, unreadable, of no known format, damaged, or holds no kernels.
    """
    report_path = Path(path)
    reader = reader_for(report_path)
    table = reader.read(report_path, variant)
    if reader.name != "ncu-rep":  # the binary reader checks its own table, exactly
        check_table(table, report_path, exact=False)
    table.attrs.setdefault("notes", [])
    return table


def read_reports(paths: Iterable[str | Path], *, variant: str | None = None) -> pd.DataFrame:
    """Read several inputs into one table (rows concatenated, the union of their metric columns).

    Args:
        paths: input files, as for ``read``.
        variant: stored in the ``variant`` column of every row.

    Returns:
        The concatenated table; ``attrs["units"]`` merges the inputs' units, ``attrs["notes"]`` their
        notes, ``attrs["fallbacks"]`` is recomputed on the whole table.

    Raises:
        ReportError: no paths were given, or any input cannot be read.
    """
    tables = [read(p, variant=variant) for p in paths]
    if not tables:
        raise ReportError("no reports given", hint="pass one or more .ncu-rep, .ncu-rep.gz or .csv files")
    if len(tables) == 1:
        return tables[0]
    units: dict[str, str] = {}
    notes: list[str] = []
    guided: list[dict[str, object]] = []
    for table in tables:
        for name, unit in table.attrs.get("units", {}).items():
            units.setdefault(name, unit)
        notes.extend(table.attrs.get("notes", []))
        guided.extend(table.attrs.get("guided", []))
    combined = pd.concat(tables, ignore_index=True, sort=False)
    metric_names = sorted(set(combined.columns) - set(ID_COLUMNS))
    combined = combined[[*ID_COLUMNS, *metric_names]]
    combined.attrs = {"units": units, "notes": notes, "fallbacks": core_fallbacks(combined)}
    if guided:
        combined.attrs["guided"] = guided
    return combined
