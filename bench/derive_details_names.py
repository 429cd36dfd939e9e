"""Derive ``ncu_advisor/ingest/details_names.yaml``: ncu's display names (section, label) -> raw metric names.

Two sources, both real data:

1. **Labels in binary reports.** ``ncu_report``'s ``ISection.header_metrics()`` gives, per section of a
   report, the metrics ncu's details page shows with their display label (``IMetric.label()``) and raw
   name. Read from every ``.ncu-rep[.gz]`` given (the recorded ``tests/fixtures/formats/full.ncu-rep.gz``,
   the examples' ``--set full`` reports, ``../shared/reports-public``), each with its ncu version.
2. **The recorded details/raw pair.** Display names on the details page that are not header metrics of
   any section (``Achieved Occupancy``, ``Local Memory Spilling Requests`` ...) are matched by value: the
   raw metric whose ``--print-units base`` value equals the details value (``--print-units base``) for
   every launch of ``tests/fixtures/formats/details-units-base.csv`` / ``raw-units-base.csv``, when
   exactly one raw metric does.

When reports of several ncu versions give one label different raw names, the newest version's name comes
first (the reader stores the value under it; ``metrics.yaml`` fallbacks relate the names).

Usage: ``python bench/derive_details_names.py REPORT... > ncu_advisor/ingest/details_names.yaml``
"""

from __future__ import annotations

import csv
import gzip
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ROOT / "tests" / "fixtures" / "formats"


def _version_key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.replace("-", ".").split(".") if p.isdigit()]
    return tuple(parts) or (0,)


def report_versions() -> dict[str, str]:
    """ncu version per report file name: the fixtures' meta files and the public reports' README table.

    ``ncu_report``'s ``get_version()`` gives the library's own version, not the one that wrote the report.
    """
    versions = {"full.ncu-rep.gz": "2025.3.1.0"}  # tests/fixtures/formats/meta.txt
    for name in ("ModelNew_seed000_full.ncu-rep.gz", "ModelNew_seed001_full.ncu-rep.gz"):
        versions[name] = "2025.3.1.0"  # examples/reports/h200-seed/meta.json
    readme = ROOT.parent / "shared" / "reports-public" / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            cells = [c.strip().strip("`") for c in line.split("|")]
            if len(cells) > 6 and cells[1].endswith(".gz"):
                versions[cells[1]] = cells[5] if cells[5][:1].isdigit() else "0"
    return versions


def labels_from_reports(paths: list[Path]) -> dict[tuple[str, str], dict[str, set[str]]]:
    """(section name, label) -> raw name -> the ncu versions of the reports that show it."""
    import ncu_report

    versions = report_versions()

    found: dict[tuple[str, str], dict[str, set[str]]] = {}
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "r.ncu-rep"
            data = path.read_bytes()
            plain.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
            try:
                context = ncu_report.load_report(str(plain))
                version = versions.get(path.name, "0")
            except Exception as exc:  # noqa: BLE001 - a report ncu_report cannot load gives no labels
                print(f"# skipped {path.name}: {exc}", file=sys.stderr)
                continue
            for range_index in range(context.num_ranges()):
                profiled_range = context.range_by_idx(range_index)
                for action_index in range(profiled_range.num_actions()):
                    action = profiled_range.action_by_idx(action_index)
                    for section in action.sections():
                        for metric in section.header_metrics():
                            if not metric.label():
                                continue  # "Command line profiler metrics": no display name
                            key = (section.name(), metric.label())
                            seen = found.setdefault(key, {}).setdefault(metric.name(), set())
                            seen.add(f"ncu {version}")
    return found


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def labels_from_pair(details: Path, raw: Path) -> dict[tuple[str, str], str]:
    """(section, label) -> the one raw metric with the same base-unit value in every launch."""
    header, body = _rows(raw)
    raw_values = {
        row[header.index("ID")]: {name: _number(row[i]) for i, name in enumerate(header) if "__" in name}
        for row in body
    }
    d_header, d_body = _rows(details)
    col = {name: d_header.index(name) for name in ("ID", "Section Name", "Metric Name", "Metric Value")}
    values: dict[tuple[str, str], dict[str, float]] = {}
    for row in d_body:
        if not row[col["Metric Name"]]:
            continue
        number = _number(row[col["Metric Value"]])
        if number is not None:
            key = (row[col["Section Name"]], row[col["Metric Name"]])
            values.setdefault(key, {})[row[col["ID"]]] = number
    matches: dict[tuple[str, str], str] = {}
    for key, by_launch in values.items():
        candidates = None
        for launch, value in by_launch.items():
            here = {
                name
                for name, raw_value in raw_values.get(launch, {}).items()
                if raw_value is not None and math.isclose(raw_value, value, rel_tol=5e-3, abs_tol=5e-3)
            }
            candidates = here if candidates is None else candidates & here
        if candidates and len(candidates) == 1 and len(set(by_launch.values())) > 1:
            matches[key] = next(iter(candidates))  # distinct values per launch: a match is no accident
    return matches


def main() -> None:
    reports = [Path(p) for p in sys.argv[1:]]
    from_reports = labels_from_reports(reports)
    from_pair = labels_from_pair(FORMATS / "details-units-base.csv", FORMATS / "raw-units-base.csv")
    sections: dict[str, dict[str, list[str]]] = {}
    for (section, label), names in sorted(from_reports.items()):
        ordered = sorted(names, key=lambda n: (max(_version_key(v[4:]) for v in names[n]), n), reverse=True)
        sections.setdefault(section, {})[label] = ordered
    pair_only = 0
    for (section, label), name in sorted(from_pair.items()):
        entry = sections.setdefault(section, {}).setdefault(label, [])
        if name not in entry:
            entry.append(name)
            pair_only += 1
    print("# Generated by bench/derive_details_names.py; do not edit by hand, re-run it.")
    print("# ncu details page (ncu --csv without --page raw, and ncu's plain text): section name -> display")
    print("# name -> raw metric names, newest ncu version's first. Sources: ISection.header_metrics() labels")
    print(f"# of {len(reports)} binary reports (" + ", ".join(p.name for p in reports) + "),")
    print(f"# and {pair_only} names matched by value in the recorded details/raw pair")
    print("# (tests/fixtures/formats/details-units-base.csv, raw-units-base.csv; ncu 2025.3.1, H200).")
    versions = sorted({v for names in from_reports.values() for vs in names.values() for v in vs})
    print("# ncu versions seen: " + ", ".join(versions))
    for section in sorted(sections):
        print(f"{_quote(section)}:")
        for label in sorted(sections[section]):
            names = sections[section][label]
            print(f"  {_quote(label)}: [{', '.join(names)}]")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    main()
