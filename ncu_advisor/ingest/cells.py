"""Cells as ncu prints them: numbers with thousands separators, scaled units, kernel and NVTX names.

Shared by every text-based reader (raw CSV, details CSV, plain text, seed JSON). Pure functions of
strings, but for ``trailer_start`` (reads the end of an open file).
"""

from __future__ import annotations

import csv
import math
import re
from typing import BinaryIO

from ncu_advisor.errors import ReportError

# Factors from the units ncu prints by default to the base unit ncu_report gives for the same metric.
_SI_PREFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME_TO_NS = {
    "ns": 1.0,
    "nsecond": 1.0,
    "us": 1e3,
    "usecond": 1e3,
    "ms": 1e6,
    "msecond": 1e6,
    "s": 1e9,
    "second": 1e9,
}
_RATE_DENOMINATOR_TO_S = {
    "s": 1.0,
    "second": 1.0,
    "ms": 1e-3,
    "msecond": 1e-3,
    "us": 1e-6,
    "usecond": 1e-6,
    "ns": 1e-9,
    "nsecond": 1e-9,
}
_SCALABLE = "byte|hz|bit|inst|sector|request|warp|thread|cycle|block|sample|register"


def unit_scale(unit: str) -> tuple[float, str]:
    """Return (factor, base unit) turning a value printed in ``unit`` into ncu_report's base unit.

    Examples: ``Gbyte`` -> (1e9, ``byte``); ``ms`` -> (1e6, ``ns``); ``Ghz`` -> (1e9, ``hz``);
    ``Kbyte/block`` -> (1e3, ``byte/block``); ``Tbyte/s`` -> (1e12, ``byte/s``); ``sector/us`` ->
    (1e6, ``sector/s``); ``%`` -> (1, ``%``). Units ncu never scales come back unchanged with factor 1.
    """
    unit = unit.strip()
    if unit in _TIME_TO_NS:
        return _TIME_TO_NS[unit], "ns"
    numerator, slash, denominator = unit.partition("/")
    factor = 1.0
    base_numerator = numerator
    match = re.fullmatch(rf"([KMGTP])({_SCALABLE})", numerator)
    if match:
        factor = _SI_PREFIX[match.group(1)]
        base_numerator = match.group(2)
    elif numerator in ("Mhz", "Ghz", "Khz"):
        factor = _SI_PREFIX[numerator[0]]
        base_numerator = "hz"
    if not slash:
        return factor, base_numerator
    if denominator in _RATE_DENOMINATOR_TO_S:
        return factor / _RATE_DENOMINATOR_TO_S[denominator], f"{base_numerator}/s"
    den_match = re.fullmatch(r"([KMGT])(byte|register)", denominator)
    if den_match:
        # ncu scales the printed number by the prefix wherever it sits: the report's 1164 %/byte prints
        # as 1.164 %/Kbyte (measured on seed001_full), so a prefix in the denominator multiplies too.
        return factor * _SI_PREFIX[den_match.group(1)], f"{base_numerator}/{den_match.group(2)}"
    return factor, f"{base_numerator}/{denominator}"


# ASCII digits only (``re.ASCII``): ``\d`` and ``float()`` also take Arabic-Indic, Devanagari, full-width...
# digits, which ncu never writes (see ``foreign_digits``).
NUMBER = re.compile(
    r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d*)?([eE][+-]?\d+)?$|^[+-]?\.\d+([eE][+-]?\d+)?$", re.ASCII
)
FOREIGN_DIGITS = "digits other than ASCII 0-9 (ncu writes only 0-9, in every locale)"


def foreign_digits(text: str) -> bool:
    """Whether ``text`` holds a decimal digit other than ASCII 0-9 (Arabic-Indic U+0661, Devanagari
    U+0967, full-width U+FF11...).

    Python's ``float()`` reads them as numbers, but ncu writes only ASCII digits (every recorded export, also
    under ``LC_ALL=de_DE.UTF-8``: tests/fixtures/formats/*-de.*), so a cell with one was edited or
    re-encoded: the readers refuse it where a number belongs instead of reading a value ncu did not write.
    """
    return any(char.isdecimal() and not char.isascii() for char in text)


def parse_number(text: str) -> float | None:
    """A printed cell as a float (thousands separators removed), or None when it is not a number.

    ``nan`` (also signed: ncu 2025.3.1 prints ``-nan`` for the duration of a launch it failed to profile,
    tests/fixtures/notprofiled/), ``n/a`` and ``no data`` read as NaN (ncu prints them for values it could
    not compute).
    """
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.lower() in ("nan", "-nan", "+nan", "n/a", "no data"):
        return math.nan
    if NUMBER.match(stripped):
        return float(stripped.replace(",", ""))
    return None


def _drop_last_group(name: str, opening: str, closing: str) -> str:
    """``name`` without its last top-level ``opening ... closing`` group and what follows it."""
    depth = 0
    for index in range(len(name) - 1, -1, -1):
        if name[index] == closing:
            depth += 1
        elif name[index] == opening:
            depth -= 1
            if depth == 0:
                return name[:index]
    return name


def kernel_function_name(demangled: str) -> str:
    """The function-name base of a demangled kernel name, as ncu_report's NameBase_FUNCTION gives it.

    ``void cudnn::ns::nchwToNhwcKernel<float, 0>(params, const float *)`` -> ``nchwToNhwcKernel``.
    """
    name = demangled.strip()
    name = _drop_last_group(name, "(", ")")  # the parameter list: the last top-level "(...)"
    if name.endswith(">"):  # template arguments: the top-level <...> at the end
        name = _drop_last_group(name, "<", ">")
    name = name.split(" ")[-1]  # return type
    return name.split("::")[-1]


def nvtx_from_cell(cell: str) -> str | None:
    """NVTX push/pop names from the CSV column ``thread Domain:Push/Pop_Range:...``.

    A cell reads ``473  "<default domain>:ncu_advisor:none:none:none:none:none:none"``: the thread id,
    then one quoted ``domain:range:payload...`` group per active range.
    """
    names: list[str] = []
    for group in re.findall(r'"([^"]*)"', cell):
        parts = group.split(":")
        if len(parts) < 2:
            continue
        domain, range_name = parts[0], parts[1]
        if domain and domain != "<default domain>":
            names.append(f"{domain}@{range_name}")
        else:
            names.append(range_name)
    return " > ".join(names) if names else None


def triple(text: str) -> tuple[float, float, float] | None:
    """``(384, 1, 1)`` -> (384.0, 1.0, 1.0); None when the cell is not such a triple."""
    match = re.fullmatch(r"\(\s*([\d,]+)\s*,\s*([\d,]+)\s*,\s*([\d,]+)\s*\)", text.strip(), re.ASCII)
    if not match:
        return None
    x, y, z = (float(group.replace(",", "")) for group in match.groups())
    return x, y, z


def csv_header_columns(line: str) -> list[str] | None:
    """The column names when ``line`` is an ncu CSV header (has ``ID`` and ``Kernel Name``), else None."""
    if "Kernel Name" not in line or "ID" not in line:
        return None
    try:
        columns = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None
    if "ID" in columns and "Kernel Name" in columns:
        return columns
    return None


def find_csv_header(lines: list[str]) -> int | None:
    """Index of the first ncu CSV header line in ``lines`` (the lines before it are a preamble), or None.

    ncu writes ``==PROF==`` / ``==WARNING==`` lines, their unprefixed continuation lines and the
    program's own stdout before the table when both were captured together.
    """
    for index, line in enumerate(lines):
        if csv_header_columns(line) is not None:
            return index
    return None


def preamble_note(skipped: int) -> str | None:
    """The note saying how many lines before the CSV header were skipped (None for none)."""
    if skipped <= 0:
        return None
    return (
        f"skipped {skipped} line(s) before the CSV header (ncu's ==PROF==/==WARNING== output, program stdout)"
    )


# A preamble (program output before the CSV header) longer than this is not searched further: 256 MiB of
# stdout is not an ncu export with a preamble but something else (the header is then reported missing).
PREAMBLE_LIMIT = 256 << 20
TRAILER_PREFIXES = (b"==PROF==", b"==WARNING==", b"==ERROR==")
_TRAILER_WINDOW = 1 << 16  # bytes at the end of a file searched for ncu's own trailing lines


def preamble_too_long(path: object) -> ReportError:
    """The error for a file whose CSV header lies beyond ``PREAMBLE_LIMIT`` bytes."""
    return ReportError(
        f'no ncu CSV header (the columns "ID", "Kernel Name") in its first {PREAMBLE_LIMIT >> 20} MiB, the '
        "most ncu-advisor searches: if program output precedes the header, it is longer than that",
        path=str(path),
        hint="""strip the lines before the header: `sed -n '/^"ID",/,$p' FILE > clean.csv`, or export the """
        "report with `ncu --import R.ncu-rep --csv --page raw > FILE.csv`",
    )


def trailer_start(handle: BinaryIO) -> tuple[int | None, int]:
    """Where ncu's own lines after the table (``==PROF== Disconnected ...``, ``==WARNING==``,
    ``==ERROR==``, as a direct run prints them at exit) begin, and how many there are.

    Returns (None, 0) when the file ends with a table row. ``handle`` is an open binary file; its position
    is left at the end.
    """
    size = handle.seek(0, 2)
    start = max(0, size - _TRAILER_WINDOW)
    handle.seek(start)
    tail = handle.read()
    lines = tail.splitlines(keepends=True)
    if start > 0 and lines:
        start += len(lines[0])  # a partial first line: never a trailer line
        lines = lines[1:]
    offset, count, kept = start + sum(len(line) for line in lines), 0, None
    for line in reversed(lines):
        offset -= len(line)
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith(TRAILER_PREFIXES):
            break
        count += 1
        kept = offset
    return (kept, count) if count else (None, 0)


def trailer_note(count: int) -> str | None:
    """The note saying how many of ncu's own lines after the table were skipped (None for none)."""
    if count <= 0:
        return None
    return f"skipped {count} line(s) of ncu's own output after the table (==PROF==/==WARNING==/==ERROR==)"


# Every unit ncu printed in the recorded and public exports and reports (tests/fixtures, examples,
# ../shared: scanned 2026-11-30), split at "/": the base units, and those ncu scales with K/M/G/T/P.
_UNIT_ATOMS = frozenset(
    {"%", "1", "SM", "branches", "cluster", "pass", "sectors", "hz", "Khz", "Mhz", "Ghz"}
    | {"bit", "block", "byte", "cycle", "inst", "register", "request", "sample", "sector", "thread", "warp"}
)
_SCALED_ATOM = re.compile(rf"[KMGTP]({_SCALABLE})")
# "128,22": never ncu's (a thousands group has 3 digits)
DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$", re.ASCII)
_PERCENT_NAME = re.compile(r"(\.pct|_pct|\.pct_of_peak_sustained_\w+)$")


def known_unit(unit: str) -> bool:
    """True when every part of ``unit`` (split at ``/``) is a unit ncu prints (``_UNIT_ATOMS``), a time
    unit, or one of those ncu scales with an SI prefix (``Kbyte``, ``Minst``)."""
    return all(
        part in _UNIT_ATOMS or part in _TIME_TO_NS or _SCALED_ATOM.fullmatch(part) is not None
        for part in unit.strip().split("/")
    )


def expected_unit(name: str, catalogue_unit: str = "") -> str | None:
    """The kind of unit ncu always prints for metric ``name``: ``%``, ``ns`` (a time) or ``byte`` (a byte
    unit: ``byte``, ``Kbyte/block``...), or None when it may print none (counts, ratios). Percentages and
    durations are known by name; ``catalogue_unit`` (``metrics.yaml``) adds the byte metrics."""
    if _PERCENT_NAME.search(name) and not name.startswith("derived__"):
        return "%"
    if "__time_duration" in name or catalogue_unit == "ns":
        return "ns"
    if catalogue_unit == "%":
        return "%"
    return "byte" if "byte" in catalogue_unit else None


def unit_problem(name: str, unit: str, catalogue_unit: str = "") -> str | None:
    """Why ``unit`` cannot be the unit ncu printed for metric ``name`` (unknown, missing where ncu always
    prints one, or of another kind), or None. Values in such a unit would be read in the wrong scale."""
    unit = unit.strip()
    expected = expected_unit(name, catalogue_unit)
    if not unit:
        return f"no unit, where ncu always prints one ({expected})" if expected else None
    if not known_unit(unit):
        return f"the unit {unit!r:.40} is not one ncu prints"
    base = unit_scale(unit)[1]
    if expected is not None and (base != expected if expected != "byte" else "byte" not in base):
        return f"the unit {unit!r} where ncu prints {expected} (or a scaled {expected})"
    return None


def is_cut(last_line: str) -> bool:
    """Whether a CSV file's last line, which has no newline (ncu ends every line with one), was cut
    inside a cell: it does not end with a closing quote (and, as details rows do, a comma), or it leaves a
    quote open (ncu quotes every cell). A line cut only before its newline is complete and not reported; one
    cut between cells is caught by the readers' field counts."""
    stripped = last_line.rstrip()
    return not stripped.endswith(('"', '",')) or stripped.count('"') % 2 == 1


def last_line_if_unterminated(handle: BinaryIO) -> str | None:
    """The file's last line when the file does not end with a newline, else None (position: the end)."""
    size = handle.seek(0, 2)
    if size == 0:
        return None
    handle.seek(max(0, size - _TRAILER_WINDOW))
    tail = handle.read()
    if tail.endswith((b"\n", b"\r")):
        return None
    return tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
