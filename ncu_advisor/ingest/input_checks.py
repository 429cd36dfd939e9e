"""Checks shared by the CSV and text readers for damage no single cell shows (red team 5, issue 11).

* ``check_no_bare_cr``: a carriage return alone inside a CSV field (ncu ends lines with ``\\n`` or
  ``\\r\\n`` and never writes one inside a name): a table written from it splits that record in two.
* ``missing_section``: a launch without a section every other launch of the file has (ncu prints the
  same sections for every launch of one export: one ``--set``/``--section`` per command line).
* ``id_gap_note``: launch IDs that skip numbers (0, 1, 7).
* ``unquote_lines``: a paste with a markdown quote prefix (``> ``) on every line.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest.display_names import LaunchValues

_QUOTE = re.compile(r"^> ?")


def unquote_lines(lines: list[str]) -> tuple[list[str], bool]:
    """The lines without a markdown quote prefix (``> ``) when at least 90% of the non-empty lines have
    one (a paste from an issue or chat, as ``text.unquoted`` reads text), and whether they had."""
    filled = [line for line in lines if line.strip()]
    quoted = sum(1 for line in filled if line.startswith(">"))
    if not filled or quoted < 0.9 * len(filled):
        return lines, False
    return [_QUOTE.sub("", line, count=1) for line in lines], True


def check_no_bare_cr(path: Path, header: list[str] | None = None) -> None:
    """Refuse a CSV row (a line starting with ``"``, as every ncu CSV row does) holding a carriage
    return that does not end its line: ncu never writes one inside a field (every recorded and public
    export), and the tables written from it would split that record. Lines that are not CSV rows (the
    program's own output before or between them, a progress bar's ``\\r``) are left alone.

    Raises:
        ReportError: naming the line and the column (by ``header`` name when known).
    """
    try:
        if not _has_bare_cr(path):
            return
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                body = raw.removesuffix(b"\n").removesuffix(b"\r")
                if b"\r" not in body or not body.startswith(b'"'):
                    continue
                text = body.decode("utf-8", errors="replace")
                prefix = text[: text.index("\r")]
                field = len(next(csv.reader([prefix + '"']), [""]))
                name = header[field - 1] if header and field <= len(header) else None
                column = f"column {field}" + (f" ({name.strip()!r:.60})" if name else "")
                raise ReportError(
                    f"line {number}, {column}: a carriage return (\\r) inside a field; ncu writes none, "
                    "and the tables written from it would split this record in two",
                    path=path,
                    hint="remove the \\r (or re-export it: `ncu --import R.ncu-rep --csv > FILE.csv`)",
                )
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None


def _has_bare_cr(path: Path) -> bool:
    """Whether the file may hold a ``\r`` not followed by ``\n``, counted in 16 MiB chunks (an export
    without any ``\r`` is passed at memchr speed); a chunk ending in the ``\r`` of a ``\r\n``
    counts as one, which only sends the file to the exact line-by-line check."""
    with open(path, "rb") as handle:
        while chunk := handle.read(16 << 20):
            if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
                return True
    return False


def missing_section(launches: list[tuple[str, str | None, LaunchValues]]) -> str | None:
    """Why a launch lacks a section, or None: the first launch (in file order) that has metric rows but
    none of a section in which every other launch with rows has some.

    ``launches`` holds (label, kernel, values). ncu prints the same sections for every launch of one
    export, whatever the kernel (one ``--set``/``--section`` for the command line): in every recorded
    details and text export (tests/fixtures/formats: 13 sections for each of softmax, matmul and add
    kernels) and ../shared/cases. Sections are compared, not rows: guided-finding rows differ per
    launch. A launch without any metric row is left to the "not profiled" handling.
    """
    filled = [
        (label, kernel, {s for s, _ in values.rows}) for label, kernel, values in launches if values.rows
    ]
    if len(filled) < 2:
        return None
    for index, (label, kernel, sections) in enumerate(filled):
        others = [other for position, (_, _, other) in enumerate(filled) if position != index]
        lacking = sorted(set.intersection(*others) - sections)
        if lacking:
            shown = ", ".join(repr(s) for s in lacking[:6]) + (" ..." if len(lacking) > 6 else "")
            return (
                f"launch {label} ({kernel or 'kernel unknown'}) has no rows of the section(s) {shown}, which "
                f"every other launch of the file has (ncu prints the same sections for every launch of one "
                "export): its rows were deleted or the file was edited"
            )
    return None


def id_gap_note(ids: np.ndarray) -> str | None:
    """A note when the launch IDs (whole numbers, each once) skip numbers, or None.

    ncu numbers the results of a report 0, 1, 2... (every recorded and public export). An export filtered
    when it is written (``ncu --import R --csv -k NAME``, or ``--launch-skip``/``--launch-count`` with
    ``--import``) may show the report's IDs with gaps (not yet recorded on the GPU machine), so a gap is
    a note, not an error; otherwise launch rows were deleted.
    """
    values = np.sort(ids[np.isfinite(ids)].astype("float64"))
    if len(values) < 2:
        return None
    steps = np.diff(values)
    gaps = np.flatnonzero(steps > 1)
    if not len(gaps):
        return None
    missing = int((steps[gaps] - 1).sum())
    first = int(values[gaps[0]])
    shown = f"{first + 1}" if steps[gaps[0]] == 2 else f"{first + 1}-{int(values[gaps[0] + 1]) - 1}"
    return (
        f"the launch IDs skip {missing} number(s) (first missing: {shown}): fine for an export filtered "
        "with -k/--launch-skip/--launch-count on --import; otherwise launch rows were deleted"
    )
