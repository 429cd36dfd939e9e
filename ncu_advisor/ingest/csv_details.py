"""ncu's details page as CSV: ``ncu --csv`` without ``--page raw`` (also ``--csv --metrics ...``).

One row per (launch, metric): the launch's id columns, then ``Section Name``, ``Metric Name`` (a display
name such as ``Duration``, or the raw name for ``--metrics`` rows), ``Metric Unit``, ``Metric Value``,
and in newer ncu versions the rule columns (``Rule Name``, ``Rule Type``, ``Rule Description``,
``Estimated Speedup Type``, ``Estimated Speedup``) on rows that carry a guided finding instead of a
metric. Rows are grouped by ``ID`` into one launch each; display names become raw metric names
(``display_names``) and values are converted to base units, so the table matches the ``.ncu-rep``'s
on every metric the page shows. Lines before the header and non-CSV lines inside it (the program's
stdout in a direct run) are skipped and counted in a note. A second export appended to the first
(``_check_appended``) and a last launch cut at a line boundary (``display_names.cut_last_launch``: seen
when another launch has the rows it lacks; not in a file of one launch) are refused.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import guided
from ncu_advisor.ingest.cells import (
    FOREIGN_DIGITS,
    csv_header_columns,
    find_csv_header,
    foreign_digits,
    is_cut,
    kernel_function_name,
    parse_number,
    preamble_note,
    trailer_note,
)
from ncu_advisor.ingest.display_names import CellProblem, LaunchValues, cut_last_launch, unmapped_note
from ncu_advisor.ingest.input_checks import check_no_bare_cr, missing_section, unquote_lines
from ncu_advisor.table import build_table

DETAILS_COLUMNS = ("Section Name", "Metric Name", "Metric Unit", "Metric Value")
_CUT = "\x00cut"  # appended by ``_lines`` to a last line without its newline (never in ncu's output)


def sniff(head: bytes) -> bool:
    """True when ``head`` holds an ncu CSV header with the details page's metric columns."""
    lines, _ = unquote_lines(head.decode("utf-8", errors="replace").splitlines())
    index = find_csv_header(lines)
    if index is None:
        return False
    columns = csv_header_columns(lines[index]) or []
    return all(name in columns for name in DETAILS_COLUMNS)


def missing_columns(head: bytes) -> list[str]:
    """The details page's columns (``DETAILS_COLUMNS``) that a header with ``Metric Value`` lacks (a page
    cut down by hand, ``"ID","Kernel Name","Metric Name","Metric Unit","Metric Value"``); [] otherwise."""
    lines, _ = unquote_lines(head.decode("utf-8", errors="replace").splitlines())
    index = find_csv_header(lines)
    columns = (csv_header_columns(lines[index]) or []) if index is not None else []
    if "Metric Value" not in columns:
        return []
    return [name for name in DETAILS_COLUMNS if name not in columns]


def _lines(path: Path) -> tuple[list[str], bool]:
    """The file's lines, without a markdown quote prefix (``> ``) when it has one (``unquote_lines``),
    and whether it had; ``_CUT`` is appended to a last line without its newline (ncu ends every line
    with one), so that ``_check_last_line`` can tell a cut file."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            text = handle.read()
            lines, quoted = unquote_lines(text.splitlines())
            if lines and not text.endswith(("\n", "\r")):
                lines[-1] += _CUT
            return lines, quoted
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None


def read(path: Path, variant: str | None) -> pd.DataFrame:
    """Read a details-page CSV into the table (see the module docstring).

    Returns:
        The table with ``attrs["reader"] == "csv_details"``, ``attrs["guided"]`` (ncu's findings from
        the rule columns) and ``attrs["notes"]`` (skipped lines, display names kept unmapped).

    Raises:
        ReportError: no details header, no launch rows, a row of another width, a cut last line or last
            launch, two exports in one file, or a cell ncu cannot have written (naming the line).
    """
    lines, quoted = _lines(path)
    start, header = _header(path, lines, quoted=quoted)
    numbered = [
        (number, line) for number, line in enumerate(lines[start + 1 :], start + 2) if line.startswith('"')
    ]
    stray = [
        number
        for number, line in enumerate(lines[start + 1 :], start + 2)
        if line.strip() and not line.startswith('"')
    ]
    col = {name: header.index(name) for name in header}
    if not all(name in col for name in DETAILS_COLUMNS):
        raise ReportError("has no details columns", path=path)
    # metric rows stop after the value (and one empty cell) when the header has the rule columns
    widths = {len(header), col["Metric Value"] + 2} if "Rule Name" in col else {len(header)}
    _check_last_line(path, numbered, widths)
    launches: dict[str, tuple[dict[str, str], LaunchValues]] = {}
    found: list[tuple[str, dict[str, Any]]] = []
    for (number, _), row in zip(numbered, csv.reader(line for _, line in numbered), strict=True):
        if len(row) not in widths:
            raise ReportError(
                f"line {number} has {len(row)} fields but the header has {len(header)}: a comma was added "
                "or lost, and the cells after it would be read into the wrong column",
                path=path,
                hint="re-export it with `ncu --import R.ncu-rep --csv > FILE.csv`",
            )
        launch_id = row[col["ID"]].strip()
        _check_appended(path, number, row, header, launch_id, launches)
        if foreign_digits(launch_id):
            raise ReportError(
                f"line {number}: the launch ID {launch_id!r:.40} has {FOREIGN_DIGITS}",
                path=path,
                hint="pass ncu's export unedited (`ncu --import R.ncu-rep --csv > FILE.csv`)",
            )
        if launch_id not in launches:
            ids: dict[str, str] = {n: row[col[n]].strip() for n in ("Kernel Name", "CC") if n in col}
            launches[launch_id] = (ids, LaunchValues())
        label = row[col["Metric Name"]]
        if label:
            try:
                launches[launch_id][1].add(
                    row[col["Section Name"]], label, row[col["Metric Unit"]], row[col["Metric Value"]]
                )
            except CellProblem as problem:
                raise ReportError(
                    f"line {number}: {problem}", path=path, hint="fix that line or pass ncu's export unedited"
                ) from None
        elif "Rule Name" in col and row[col["Rule Name"]]:
            found.append((launch_id, _rule_row(row, col)))
    if not launches:
        raise ReportError(
            "the CSV holds no kernel launches", path=path, hint="re-export a report that has profiled kernels"
        )
    labelled = [(f"ID {k}", ids.get("Kernel Name"), v) for k, (ids, v) in launches.items()]
    cut = cut_last_launch(labelled) or missing_section(labelled)
    if cut is not None:
        raise ReportError(
            cut,
            path=path,
            hint="copy the whole file again or re-export it: `ncu --import R.ncu-rep --csv > FILE.csv`",
        )
    after = sum(1 for number in stray if number > (numbered[-1][0] if numbered else 0))
    table = _table(path, variant, launches, found, skipped=start + len(stray) - after, trailer=after)
    if quoted:
        table.attrs["notes"].append(f"{path}: read without its quote prefix ('> ' on every line)")
    return table


def _header(path: Path, lines: list[str], *, quoted: bool) -> tuple[int, list[str]]:
    """The index of the header line and its columns; a CSV row with a carriage return inside a field
    is refused first (``check_no_bare_cr``; not checked in a quoted paste, whose lines were rewritten).

    Raises:
        ReportError: no header, or a ``\r`` inside a field.
    """
    start = find_csv_header(lines)
    if start is None:
        check_no_bare_cr(path)  # a \r cut the header line in two
        raise ReportError(
            'is not an ncu CSV export: no line has the columns "ID", "Kernel Name"',
            path=path,
            hint="export with `ncu --import REPORT.ncu-rep --csv > FILE.csv`",
        )
    header = csv_header_columns(lines[start]) or []
    if not quoted:
        check_no_bare_cr(path, header)
    return start, header


def _check_appended(
    path: Path, number: int, row: list[str], header: list[str], launch_id: str, launches: dict[str, Any]
) -> None:
    """Refuse a second export appended to the first (``cat a.csv b.csv > both.csv``): a row that repeats
    the header, or a launch whose rows resume after another launch's (ncu writes each launch's rows
    together, in every recorded export, direct runs with interleaved program output included)."""
    hint = "split the file at that line (or export each report to its own file) and pass both files"
    if row == header:
        raise ReportError(
            f"line {number} repeats the CSV header: two details exports were appended into one file, and "
            "the second one's rows would be mixed into the first one's launches",
            path=path,
            hint=hint,
        )
    if launch_id in launches and launch_id != next(reversed(launches)):
        raise ReportError(
            f"line {number}: the rows of launch ID {launch_id!r:.20} start again after those of launch ID "
            f"{next(reversed(launches))!r:.20} (ncu writes each launch's rows together): two details exports "
            "were appended into one file",
            path=path,
            hint=hint,
        )


def _check_last_line(path: Path, numbered: list[tuple[int, str]], widths: set[int]) -> None:
    """Refuse a file whose last line is a table row without its newline (ncu ends every line with one)
    that ends inside a cell (``cells.is_cut``) or lacks cells: the file was cut there, and the launch it
    belongs to would be read partly, without a word."""
    if not numbered or not numbered[-1][1].endswith(_CUT):
        return
    number, last = numbered[-1][0], numbered[-1][1].removesuffix(_CUT)
    row = next(csv.reader([last]), [])
    if is_cut(last) or len(row) not in widths:
        raise ReportError(
            f"the last line is cut (line {number} ends without a newline, with {len(row)} of "
            f"{max(widths)} fields): the file is truncated",
            path=path,
            hint="copy it again or re-export it with `ncu --import R.ncu-rep --csv > FILE.csv`",
        )


def _rule_row(row: list[str], col: dict[str, int]) -> dict[str, Any]:
    def cell(name: str) -> str:
        return row[col[name]] if name in col else ""

    return {
        "rule": cell("Rule Name"),
        "section": cell("Section Name"),
        "rule_type": cell("Rule Type"),
        "message": cell("Rule Description"),
        "speedup_type": cell("Estimated Speedup Type"),
        "speedup": parse_number(cell("Estimated Speedup")),
    }


def _table(
    path: Path,
    variant: str | None,
    launches: dict[str, tuple[dict[str, str], LaunchValues]],
    found: list[tuple[str, dict[str, Any]]],
    *,
    skipped: int,
    trailer: int = 0,
) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    unmapped: list[str] = []
    position: dict[str, int] = {}
    for index, (launch_id, (ids, values)) in enumerate(launches.items()):
        position[launch_id] = index
        demangled = ids.get("Kernel Name", "")
        action = parse_number(launch_id)
        record: dict[str, Any] = dict(values.values)
        record.update(
            source=str(path),
            variant=variant,
            range=0,
            action=int(action) if action is not None and not math.isnan(action) else None,
            kernel=kernel_function_name(demangled),
            demangled=demangled,
            nvtx=None,
            gpu=None,
            cc=ids.get("CC") or None,
        )
        records.append(record)
        for name, unit in values.units.items():
            units.setdefault(name, unit)
        unmapped.extend(values.unmapped)
    table = build_table(records, units)
    table.attrs["reader"] = "csv_details"
    notes = [f"{path}: {note}" for note in (preamble_note(skipped), trailer_note(trailer)) if note]
    note = unmapped_note(str(path), unmapped)
    if note:
        notes.append(note)
    table.attrs["notes"] = notes
    table.attrs["guided"] = [
        item
        for launch_id, rule in found
        if (
            item := guided.finding(
                launch=position.get(launch_id, 0),
                kernel=table["kernel"].iloc[position.get(launch_id, 0)],
                rule=rule["rule"],
                section=rule["section"],
                rule_type=rule["rule_type"],
                message=rule["message"],
                speedup_type=rule["speedup_type"],
                speedup=rule["speedup"],
            )
        )
        is not None
    ]
    return table
