"""Cut rule fixtures from recorded reports or runs (a maintainer's tool; the tests read the YAML it writes).

``python -m ncu_advisor.rules.fixtures PATH... [--source FILE.py] [--write]`` evaluates every rule on the
given reports/run directories and prints, per rule, the launches it fires on and stays quiet on. With
``--write``, each rule whose fixture file has a ``pending`` firing case gets the first firing launch as
a case (paths relative to the repository) and its ``pending`` entry removed. Nothing is written for
rules that already have a firing case.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from ncu_advisor.kernelsrc.facts import analyze_file
from ncu_advisor.rules import evaluate, load_rules

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures" / "rules"


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def collect(paths: list[Path], source: Path | None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per rule id: ``{"fire": [case...], "quiet": [case...]}`` over every launch of ``paths``."""
    from ncu_advisor import rundir  # noqa: PLC0415
    from ncu_advisor.ingest import readers as report  # noqa: PLC0415

    rules = load_rules()
    cases: dict[str, dict[str, list[dict[str, Any]]]] = {r.id: {"fire": [], "quiet": []} for r in rules}
    for path in paths:
        kernel_file = source
        if path.is_dir():
            run = rundir.load_run(path)
            table = run.table
            kernel_file = kernel_file or run.kernel_file
        else:
            table = report.read_report(path)
        facts = analyze_file(kernel_file) if kernel_file else None
        for result in evaluate(table, rules, source=facts):
            fired = {f.rule for f in result.findings}
            skipped = {s["rule"] for s in result.skipped}
            report_path = Path(result.source) if result.source else path
            for rule in rules:
                if rule.id in skipped:
                    continue
                case: dict[str, Any] = {
                    "report": _relative(report_path),
                    "kernel": result.kernel,
                    "launch": result.launch,
                }
                if result.variant is not None and path.is_dir():
                    case["variant"] = result.variant  # its class config sets the launch values
                if kernel_file is not None:
                    case["source"] = _relative(Path(kernel_file))
                expect = "fire" if rule.id in fired else "quiet"
                case["expect"] = expect
                cases[rule.id][expect].append(case)
    return cases


def write_pending(cases: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """Turn pending firing fixtures into real cases where a firing launch was found; returns rule ids."""
    written = []
    for rule_id, found in sorted(cases.items()):
        path = FIXTURE_DIR / f"{rule_id}.yaml"
        if not path.is_file() or not found["fire"]:
            continue
        fixture = yaml.safe_load(path.read_text(encoding="utf-8"))
        pending = [p for p in fixture.get("pending", []) if p.get("expect") == "fire"]
        if not pending or any(c["expect"] == "fire" for c in fixture.get("cases", [])):
            continue
        fixture.setdefault("cases", []).append(found["fire"][0])
        fixture["pending"] = [p for p in fixture.get("pending", []) if p.get("expect") != "fire"]
        if not fixture["pending"]:
            del fixture["pending"]
        header = (
            f"# Fixtures for {rule_id}: cut from real recorded reports (see ncu_advisor/rules/fixtures.py).\n"
        )
        path.write_text(header + yaml.safe_dump(fixture, sort_keys=False, width=110), encoding="utf-8")
        written.append(rule_id)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="+", type=Path, help="reports or run directories")
    parser.add_argument("--source", type=Path, default=None, help="the kernel file (default: the run's copy)")
    parser.add_argument("--write", action="store_true", help="fill pending firing fixtures")
    args = parser.parse_args(argv)
    cases = collect(args.paths, args.source)
    for rule_id, found in sorted(cases.items()):
        fires = ", ".join(f"{c['kernel'][:40]}#{c['launch']}" for c in found["fire"][:4]) or "-"
        print(f"{rule_id}: fires on {len(found['fire'])} ({fires}); quiet on {len(found['quiet'])}")
    if args.write:
        written = write_pending(cases)
        print("filled pending fixtures: " + (", ".join(written) if written else "none"))


if __name__ == "__main__":
    main()
