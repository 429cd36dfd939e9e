"""ncu's plain-text output: what ``ncu ./app`` and ``ncu --import R`` print, and what people paste.

Shape (ncu 2019.x to 2025.3; measured on ``tests/fixtures/formats/text.txt`` and ``direct-text.txt``)::

    [533] python3.12@127.0.0.1                                       <- process line (optional)
      softmax_kernel (16384, 1, 1)x(256, 1, 1), Context 1, Stream 7, Device 0, CC 9.0   <- launch header
        Section: GPU Speed Of Light Throughput
        ----------------------- ----------- ------------
        Metric Name             Metric Unit Metric Value
        ----------------------- ----------- ------------
        DRAM Frequency                  Ghz         3.20
        ...
        OPT   Est. Local Speedup: 84.98%                             <- guided finding, continued below
              All compute pipelines are under-utilized. ...

Metric rows are split at the column boundaries of the dashed line (display names hold spaces, units
may be empty), numbers lose their thousands separators, scaled units become base units and display
names become raw metric names (``display_names``). ``OPT``/``WRN``/``INF``/``ERR`` paragraphs are ncu's
guided findings (``attrs["guided"]``), not metrics. Without any launch header (a pasted section), the
sections make one launch of an unknown kernel. Any other line (``==PROF==``, the program's stdout) is
skipped and counted in a note. An output that ends inside a metric table (its last line a metric row,
with or without its newline), or whose last launch has only the first rows of another launch's, was cut
and is refused (``_check_not_cut``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.errors import ReportError
from ncu_advisor.ingest import guided
from ncu_advisor.ingest.cells import (
    FOREIGN_DIGITS,
    foreign_digits,
    kernel_function_name,
    parse_number,
    triple,
)
from ncu_advisor.ingest.display_names import (
    CellProblem,
    LaunchValues,
    cut_last_launch,
    raw_name,
    unmapped_note,
)
from ncu_advisor.ingest.input_checks import missing_section
from ncu_advisor.metrics import catalogue
from ncu_advisor.table import build_table

LAUNCH_HEADER = re.compile(
    r"^\s*(?P<name>.+?) (?P<grid>\([\d, ]+\))x(?P<block>\([\d, ]+\)), Context \d+, Stream \d+"
    r"(?:, Device (?P<device>\d+))?(?:, CC (?P<cc>\d+\.\d+))?"
)
SECTION = re.compile(r"^\s*Section: (?P<name>.+?)\s*$")
DASHES = re.compile(r"^\s*-{3,}( +-{3,})+\s*$")
TABLE_HEADER = re.compile(r"^\s*Metric Name\s+Metric Unit\s+Metric Value\s*$")
RULE = re.compile(r"^(?P<indent>\s*)(?P<type>OPT|WRN|INF|ERR)(?P<gap>\s+)(?P<text>\S.*)$")
SPEEDUP = re.compile(r"^Est\. (?:(?P<kind>Local|Global) )?Speedup: (?P<value>[\d.,]+)%\s*(?P<rest>.*)$")
PROCESS = re.compile(r"^\[\d+\] \S+")


def sniff(head: bytes) -> bool:
    """True when ``head`` has a ``Section:`` line followed by ncu's metric-table header."""
    text = head.decode("utf-8", errors="replace").replace("\u00a0", " ")
    return bool(re.search(r"^(?:> ?)?\s*Section: .+$", text, re.M)) and bool(
        re.search(r"^(?:> ?)?\s*Metric Name\s+Metric Unit\s+Metric Value\s*$", text, re.M)
    )


_QUOTE = re.compile(r"^> ?")


def unquoted(lines: list[str]) -> tuple[list[str], bool]:
    """The lines without a markdown quote prefix (``> ``) when most non-empty lines have one (a paste
    from an issue or chat), and whether they had; every line loses the same width, so columns stay
    aligned. Non-breaking spaces (``\u00a0``, what some editors and web pages paste) become spaces."""
    lines = [line.replace("\u00a0", " ") for line in lines]
    filled = [line for line in lines if line.strip()]
    quoted = sum(1 for line in filled if line.startswith(">"))
    if not filled or quoted < 0.9 * len(filled):
        return lines, False
    return [_QUOTE.sub("", line, count=1) for line in lines], True


@dataclass
class _Launch:
    header: re.Match[str] | None
    line: int = 0  # of the launch header (0: none)
    skipped: int = 0  # the parser's count of skipped lines when the header was read
    values: LaunchValues = field(default_factory=LaunchValues)
    findings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Parser:
    """Line-by-line state: the current launch and section, the open table and rule paragraph."""

    launches: list[_Launch] = field(default_factory=list)
    section: str = ""
    spans: list[tuple[int, int]] | None = None  # column boundaries of the open metric table
    table_phase: int = 0  # 0 outside a table, 1 between its first and second dashed line, 2 in its rows
    rule: dict[str, Any] | None = None
    rule_indent: int = 0
    skipped: int = 0
    path: Path | None = None  # named in errors
    lineno: int = 0  # of the line being fed (1-based)

    def launch(self) -> _Launch:
        if not self.launches:
            self.launches.append(_Launch(header=None))
        return self.launches[-1]

    def close_rule(self) -> None:
        if self.rule is not None:
            self.launch().findings.append(self.rule)
            self.rule = None

    def feed(self, line: str) -> None:
        stripped = line.strip()
        if self.rule is not None:
            if stripped and _indent(line) >= self.rule_indent:
                self.rule["message"] += " " + stripped
                return
            self.close_rule()
        if not stripped:
            return
        if self.table_phase:
            self._table_line(line)
            return
        self._other_line(line)

    def _table_line(self, line: str) -> None:
        if DASHES.match(line):
            self.table_phase = 2 if self.table_phase == 1 else 0  # below the header / the closing line
            return
        if self.table_phase == 1:
            if not TABLE_HEADER.match(line):
                self.table_phase = 0  # another kind of table (a rule's key performance indicators)
                self.skipped += 1
            elif self.spans is not None and not _aligned(line, self.spans):
                raise ReportError(
                    f"line {self.lineno}: the metric table's columns were lost (the spaces that align "
                    "ncu's columns were collapsed, as chat and markdown renderers do), so names, units "
                    f"and values cannot be told apart: {line.strip()[:80]!r}",
                    path=self.path,
                    hint="paste ncu's output unchanged (in a code block) or save it to a file: "
                    "`ncu ./app > out.txt`",
                )
            return
        if self.spans is None:
            return
        name, unit, value = _cells(line, self.spans)
        if name:
            self._check_value(line, name, unit, value)
            try:
                self.launch().values.add(self.section, name, unit, value)
            except CellProblem as problem:
                raise ReportError(
                    f"line {self.lineno}: {problem}: {line.strip()[:120]!r}",
                    path=self.path,
                    hint="fix or delete that line, or pass ncu's output unedited",
                ) from None

    def _check_value(self, line: str, label: str, unit: str, value: str) -> None:
        """Refuse a metric row whose value is not a number where ncu prints one.

        ncu prints words only in unit-less rows of settings (``Function Cache Configuration
        CachePreferNone``, ``Enabled TPC IDs  all``: every such row of tests/fixtures/formats/*.txt and
        ../shared/cases); a row with a unit, or one of the catalogue's numeric metrics, holds a number.
        """
        if parse_number(value) is not None:
            return
        raw = raw_name(self.section, label)
        numeric = bool(unit) or (raw is not None and raw in catalogue() and not raw.endswith("_name"))
        if numeric or foreign_digits(value):
            why = f" ({FOREIGN_DIGITS})" if foreign_digits(value) else ""
            raise ReportError(
                f"line {self.lineno}: metric {label!r} ({unit or 'no unit'}) has the value {value!r:.60}, "
                f"not a number{why}: {line.strip()[:120]!r}",
                path=self.path,
                hint="fix or delete that line, or pass ncu's output unedited",
            )

    def _check_section_once(self) -> None:
        """Refuse a section that starts again inside one launch: ncu prints each section once per launch
        (every text fixture and ../shared case), so it is the next launch with its launch line missing
        (all of them missing: the sections of every launch would be merged into one)."""
        if any(section == self.section for section, _ in self.launch().values.rows):
            raise ReportError(
                f"line {self.lineno}: section {self.section!r} starts a second time in one launch: the "
                "launch lines ('kernel (grid)x(block), Context 1, Stream 7, ...') that separate ncu's "
                "launches are missing, so two launches would be read as one",
                path=self.path,
                hint="paste or save the whole output, launch lines included (`ncu ./app > out.txt`)",
            )

    def _other_line(self, line: str) -> None:
        if (header := LAUNCH_HEADER.match(line)) is not None:
            if foreign_digits(header.group("grid") + header.group("block")):
                raise ReportError(
                    f"line {self.lineno}: the launch's grid or block size has {FOREIGN_DIGITS}: "
                    f"{line.strip()[:120]!r}",
                    path=self.path,
                    hint="pass ncu's output unedited (`ncu --import R.ncu-rep > out.txt`)",
                )
            self.launches.append(_Launch(header=header, line=self.lineno, skipped=self.skipped))
            self.section = ""
        elif (section := SECTION.match(line)) is not None:
            self.section = section.group("name")
            self._check_section_once()
        elif DASHES.match(line):
            self.spans = [(m.start(), m.end()) for m in re.finditer(r"-+", line)]
            self.table_phase = 1 if len(self.spans) == 3 else 0
        elif (rule := RULE.match(line)) is not None:
            self.rule = {"type": rule.group("type"), "section": self.section, "message": rule.group("text")}
            self.rule_indent = len(rule.group("indent")) + len(rule.group("type")) + len(rule.group("gap"))
        elif not PROCESS.match(line) and not line.lstrip().startswith("Warning:"):
            self.skipped += 1


def _aligned(header: str, spans: list[tuple[int, int]]) -> bool:
    """Whether ``Metric Unit`` and ``Metric Value`` of a table header lie in the dashed line's 2nd and 3rd
    columns, as ncu prints them (every text fixture and ../shared case)."""
    unit, value = header.find("Metric Unit"), header.find("Metric Value")
    return spans[1][0] <= unit < spans[1][1] and spans[2][0] <= value < spans[2][1]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _cells(line: str, spans: list[tuple[int, int]]) -> tuple[str, str, str]:
    """Name, unit and value of a metric row, split where the unit and value columns start."""
    unit_start, value_start = spans[1][0], spans[2][0]
    return line[:unit_start].strip(), line[unit_start:value_start].strip(), line[value_start:].strip()


def read(path: Path, variant: str | None) -> pd.DataFrame:
    """Read ncu's plain-text output into the table (see the module docstring).

    Returns:
        The table with ``attrs["reader"] == "text"``, ``attrs["guided"]`` and ``attrs["notes"]``.

    Raises:
        ReportError: the file cannot be read, holds no metric table, a metric row with a unit (or of a
            numeric catalogue metric) has a value that is not a number, a value has digits other than
            ASCII 0-9 (naming the line), or the output was cut (``_check_not_cut``).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read it ({exc.strerror})", path=path) from None
    parser = _Parser(path=path)
    lines, quoted = unquoted(text.splitlines())
    unterminated = bool(text) and not text.endswith(("\n", "\r"))
    try:
        for parser.lineno, line in enumerate(lines, 1):
            parser.feed(line)
    except ReportError:
        if unterminated and parser.lineno == len(lines):  # a cut value ("249,2") is not a number: say why
            _check_not_cut(path, parser, unterminated=True)
        raise
    parser.close_rule()
    _check_not_cut(path, parser, unterminated=unterminated)
    launches = [launch for launch in parser.launches if launch.values.values or launch.header is not None]
    if not any(launch.values.values for launch in launches):
        raise ReportError(
            "holds no ncu metric table (no 'Metric Name  Metric Unit  Metric Value' rows)",
            path=path,
            hint="pass ncu's full output (`ncu ./app > out.txt` or `ncu --import R.ncu-rep > out.txt`)",
        )
    table = _table(path, variant, launches, parser.skipped)
    if quoted:
        table.attrs["notes"].append(f"{path}: read without its quote prefix ('> ' on every line)")
    return table


#: Why a launch line without a metric table is not profiled (a launch ncu listed but could not measure, or
#: an output whose table was deleted): never dropped silently, never clean (red team 5).
_NO_TABLE = "the text output lists this launch with no metric table after its launch line"

_CUT_HINT = "paste or save the whole output again (`ncu --import R.ncu-rep > out.txt`)"


def _check_not_cut(path: Path, parser: _Parser, *, unterminated: bool) -> None:
    """Refuse an output that ends where ncu's never does: inside a metric table (ncu closes every table
    with a dashed line: every text fixture and ../shared case), its last line a metric row without a
    newline (a value cut short, ``12`` of ``12.34``, reads as a clean number), or with a last launch that
    has only the first rows of another launch's (``display_names.cut_last_launch``)."""
    if parser.table_phase:
        where = f"in section {parser.section!r}" if parser.section else "in a metric table"
        if unterminated:
            problem = (
                f"the last line (line {parser.lineno}) is a metric row {where} without its newline: the file "
                "was cut, and its value may be cut short (12 of 12.34)"
            )
        else:
            problem = (
                f"the file ends {where} at line {parser.lineno} without the dashed line ncu closes every "
                "table with: the output was cut and the launch's later rows are missing"
            )
        raise ReportError(problem, path=path, hint=_CUT_HINT)
    last = parser.launches[-1] if parser.launches else None
    if last and last.header and not last.values.rows and not last.findings and last.skipped == parser.skipped:
        raise ReportError(
            f"the file ends right after the launch line of {_name(last)!r:.80} (line {last.line}), with no "
            "metric table after it: the output was cut?",
            path=path,
            hint=_CUT_HINT,
        )
    launches = [launch for launch in parser.launches if launch.values.values]
    labelled = [
        (f"at line {launch.line}" if launch.line else f"#{index}", _name(launch), launch.values)
        for index, launch in enumerate(launches)
    ]
    cut = cut_last_launch(labelled) or missing_section(labelled)
    if cut is not None:
        raise ReportError(cut, path=path, hint=_CUT_HINT)


def _name(launch: _Launch) -> str | None:
    return launch.header.group("name").strip() if launch.header else None


def _table(path: Path, variant: str | None, launches: list[_Launch], skipped: int) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    unmapped: list[str] = []
    found: list[dict[str, Any]] = []
    not_profiled: list[dict[str, Any]] = []
    for index, launch in enumerate(launches):
        record: dict[str, Any] = dict(launch.values.values)
        header = launch.header
        demangled = header.group("name").strip() if header else None
        if header and not record:  # a launch line with no metric table: listed as not profiled
            not_profiled.append({"launch": index, "kernel": None, "reason": _NO_TABLE})
        elif header:
            grid, block = triple(header.group("grid")), triple(header.group("block"))
            if grid and "launch__grid_size" not in record:
                record["launch__grid_size"] = grid[0] * grid[1] * grid[2]
            if block and "launch__block_size" not in record:
                record["launch__block_size"] = block[0] * block[1] * block[2]
        kernel = kernel_function_name(demangled) if demangled else None
        record.update(
            source=str(path),
            variant=variant,
            range=0,
            action=index,
            kernel=kernel,
            demangled=demangled,
            nvtx=None,
            gpu=None,
            cc=header.group("cc") if header else None,
        )
        records.append(record)
        if not_profiled and not_profiled[-1]["launch"] == index:
            not_profiled[-1]["kernel"] = kernel
        units.update({k: v for k, v in launch.values.units.items() if k not in units})
        unmapped.extend(launch.values.unmapped)
        for rule in launch.findings:
            item = _finding(index, kernel, rule)
            if item is not None:
                found.append(item)
    table = build_table(records, units)
    table.attrs["reader"] = "text"
    notes = []
    if skipped:
        notes.append(
            f"{path}: skipped {skipped} line(s) outside ncu's metric tables and rule text "
            "(==PROF== lines, program output, rule detail tables)"
        )
    note = unmapped_note(str(path), unmapped)
    if note:
        notes.append(note)
    if not any(launch.header for launch in launches):
        notes.append(
            f"{path}: no launch header line: the metrics are read as one launch of an unknown kernel"
        )
    table.attrs["notes"] = notes
    table.attrs["guided"] = found
    if not_profiled:
        table.attrs["not_profiled"] = not_profiled
    return table


def _finding(index: int, kernel: str | None, rule: dict[str, Any]) -> dict[str, Any] | None:
    message = str(rule["message"])
    speedup_type = None
    speedup = None
    match = SPEEDUP.match(message)
    if match:
        speedup = parse_number(match.group("value"))
        speedup_type = (match.group("kind") or "").lower() or None
        message = match.group("rest")
    return guided.finding(
        launch=index,
        kernel=kernel,
        rule=None,
        section=rule["section"] or None,
        rule_type=rule["type"],
        message=message,
        speedup_type=speedup_type,
        speedup=speedup,
    )
