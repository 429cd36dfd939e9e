"""One entry for every input format: ``read(path) -> table``, the format sniffed from the content.

Each format is a module of this package with ``sniff(head: bytes) -> bool`` (the first bytes of the file,
un-gzipped) and ``read(path, variant) -> table``. Adding a format is a new module and one line in
``READERS``; the first reader whose ``sniff`` accepts the head reads the file, once.
"""

from __future__ import annotations

import codecs
import gzip
import stat
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import csv_details, csv_raw, seed_json, text
from ncu_advisor.ingest.binary import _read_binary
from ncu_advisor.ingest.cells import PREAMBLE_LIMIT, preamble_too_long
from ncu_advisor.ingest.common import GZIP_MAGIC, REPORT_MAGIC
from ncu_advisor.ingest.input_checks import check_no_bare_cr
from ncu_advisor.ingest.sanity import check_table
from ncu_advisor.table import ID_COLUMNS, core_fallbacks

SNIFF_BYTES = 1 << 20  # enough for the widest raw CSV header seen (about 60 KB) and most preambles; a
# longer preamble (program output) is searched line by line up to cells.PREAMBLE_LIMIT (``_later_head``)


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


def _later_head(path: Path) -> bytes | None:
    """The ``SNIFF_BYTES`` from the first line past the sniff window that starts an ncu CSV table or a
    text section, searched up to ``PREAMBLE_LIMIT`` bytes (a program that printed more than the window
    before ncu's output); None when there is none."""
    with open(path, "rb") as handle:
        offset = 0
        while offset <= PREAMBLE_LIMIT and (line := handle.readline(SNIFF_BYTES)):
            if (b"Kernel Name" in line and b"ID" in line) or line.lstrip().startswith(b"Section: "):
                if offset >= SNIFF_BYTES // 2:
                    handle.seek(offset)
                    return handle.read(SNIFF_BYTES)
            offset += len(line)
    return None


def _own_output(head: bytes) -> str | None:
    """What an ncu-advisor output passed back as an input is, or None when it is not one."""
    if head[:4] == b"PAR1":
        return "a Parquet file (ncu-advisor's `metrics -f parquet` output or a run's metrics.parquet)"
    first = head.split(b"\n", 1)[0].strip()
    if first.startswith(b"source,variant,range,action,kernel"):
        return "ncu-advisor's own metrics table (`metrics -f csv` output or a run's metrics.csv)"
    if b'"schema_version"' in head[:200] and b'"launches"' in head[:4096]:
        return "ncu-advisor's own metrics JSON (`metrics -f json` output)"
    return None


def reader_for(path: Path) -> Reader:
    """The reader of the first format in ``READERS`` that recognises the file's content.

    Raises:
        ReportError: the file is missing, not a regular file, or no format recognises it.
    """
    head = head_bytes(path)
    own = _own_output(head)
    if own is not None:
        raise ReportError(
            f"is {own}: a table ncu-advisor wrote, not ncu's output, and not read back as an input",
            path=path,
            hint="pass the reports it was made from (.ncu-rep, ncu's CSV), or the run directory "
            "(`ncu-advisor recommend runs/NAME`)",
        )
    if len(head) >= SNIFF_BYTES and not any(reader.sniff(head) for reader in READERS):
        head = _later_head(path) or head
    for reader in READERS:
        if reader.sniff(head):
            if reader is not READERS[0] and _is_gzip(path):
                raise ReportError(
                    f"is a gzip'd {reader.name} file; only binary reports are read gzip'd",
                    path=path,
                    hint=f"gunzip it first (gunzip -k {path.name})",
                )
            return reader
    if _is_gzip(path):  # a damaged gzip, or one past the inflation cap: the binary reader says which
        return READERS[0]
    accepted = "; ".join(r.description for r in READERS)
    if path.name.lower().removesuffix(".gz").endswith(".csv") and path.stat().st_size > PREAMBLE_LIMIT:
        raise preamble_too_long(path)
    if path.name.lower().removesuffix(".gz").endswith(".csv"):
        check_no_bare_cr(path)  # a \r inside the header cut it in two
        missing = csv_details.missing_columns(head)
        if missing:  # the header is there: say what it lacks, not that there is none
            raise ReportError(
                "is an ncu details-page CSV without the column(s) " + ", ".join(f'"{m}"' for m in missing),
                path=path,
                hint="export the whole page: `ncu --import REPORT.ncu-rep --csv --page details > FILE.csv`",
            )
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

    Text inputs in UTF-16 (what Windows PowerShell's ``>`` writes) or with a UTF-8 byte-order mark are
    converted to plain UTF-8 first (``text_encoding``), and a note says so.

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
    _check_regular_file(report_path)
    encoding = text_encoding(report_path)
    if encoding is None:
        return _read_as_is(report_path, variant)
    with tempfile.TemporaryDirectory(prefix="ncu-advisor-") as tmp:
        copy = Path(tmp) / report_path.name
        _transcode(report_path, copy, encoding)
        try:
            table = _read_as_is(copy, variant)
        except ReportError as exc:
            message = exc.message.replace(str(copy), str(report_path))
            raise ReportError(f"{message} (read as {encoding})", path=report_path, hint=exc.hint) from None
    table["source"] = str(report_path)
    notes = [str(note).replace(str(copy), str(report_path)) for note in table.attrs.get("notes", [])]
    notes.append(f"{report_path}: read as {encoding} text (converted to UTF-8)")
    table.attrs["notes"] = notes
    return table


def text_encoding(path: Path) -> str | None:
    """``utf-8-sig`` (a UTF-8 byte-order mark), ``utf-16`` (a UTF-16 one, as PowerShell writes) or
    ``utf-16-le``/``utf-16-be`` (no mark, but every other byte of the first line is NUL), else None."""
    with open(path, "rb") as handle:
        head = handle.read(256)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 8 and head[:4] != REPORT_MAGIC and head[:2] != GZIP_MAGIC:
        even, odd = head[0::2][: len(head) // 2], head[1::2][: len(head) // 2]
        if not odd.strip(b"\x00") and even.strip(b"\x00"):
            return "utf-16-le"
        if not even.strip(b"\x00") and odd.strip(b"\x00"):
            return "utf-16-be"
    return None


def _transcode(source: Path, target: Path, encoding: str) -> None:
    """Copy ``source`` to ``target`` as UTF-8 (streamed in 1 MiB pieces)."""
    try:
        with (
            open(source, encoding=encoding, errors="replace", newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            while piece := src.read(1 << 20):
                dst.write(piece)
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=source) from None


def _read_as_is(report_path: Path, variant: str | None) -> pd.DataFrame:
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
