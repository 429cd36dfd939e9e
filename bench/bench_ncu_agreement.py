"""Benchmark: do the rules agree with Nsight Compute's own guided analysis? (CPU; reads recorded reports)

Every recorded binary report that carries ncu's rule results (``--set``/``--section`` runs; the reports of
examples/, tests/fixtures/ and ../shared/reports-public) is read with ``readers.read_report`` and
``readers.rule_results``; the rule set is evaluated on the table. Per launch where ncu gives a verdict:

- **bottleneck**: ncu's SOLBottleneck verdict (small grid, at the roof, latency, balanced, compute, memory)
  against ours, the first of our bottleneck findings in ncu's own order of checks (small grid, roof,
  latency, balanced, compute/memory). ncu's "at the roof" (above 80%) agrees with our compute- or
  memory-bound finding, which names the unit at the roof.
- **limiter**: the occupancy limiters ncu's TheoreticalOccupancy/Occupancy messages name (registers,
  shared memory, warps, blocks) against the ones our occupancy findings name (sets must be equal).
- **top issue**: ncu's rule result with the largest estimated speedup; "mentioned" when one of our findings
  on that launch is of the same topic (``TOPICS``).

Usage: python bench/bench_ncu_agreement.py [--out FILE.jsonl] [REPORT...]
Prints one line per report and a summary table last.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncu_advisor.ingest import readers  # noqa: E402
from ncu_advisor.rules import evaluate, load_rules  # noqa: E402
from ncu_advisor.rules.engine import KernelResult  # noqa: E402

#: ncu's SOLBottleneck verdicts, by a phrase of the title or message (ncu 2020.2 .. 2025.3 wordings).
_VERDICTS = (
    ("small-grid", re.compile(r"small grid|grid is too small", re.I)),
    ("roof", re.compile(r"high throughput|greater than 80", re.I)),
    ("latency", re.compile(r"latency issue|low compute throughput and memory", re.I)),
    ("balanced", re.compile(r"balanced", re.I)),
    ("compute", re.compile(r"compute is more heavily|high compute", re.I)),
    ("memory", re.compile(r"memory is more heavily|high memory", re.I)),
)
#: The order ncu's SOLBottleneck checks its verdicts in: our first firing category is our verdict.
_ORDER = ("small-grid", "roof", "latency", "balanced", "compute", "memory")
#: Our rule -> bottleneck category.
BOTTLENECK_RULES = {
    "NA307": "small-grid",
    "NA303": "latency",
    "NA316": "balanced",
    "NA302": "compute",
    "NA301": "memory",
    "NA314": "memory",
    "NA315": "memory",
}
_LIMITERS = (
    ("registers", re.compile(r"number of required registers", re.I)),
    ("shared", re.compile(r"amount of shared memory", re.I)),
    ("warps", re.compile(r"number of warps within each block", re.I)),
    ("blocks", re.compile(r"number of blocks that can fit", re.I)),
)
#: ncu rule -> our rules that speak to the same issue.
TOPICS: dict[str, frozenset[str]] = {
    "AchievedOccupancy": frozenset({"NA304"}),
    "TheoreticalOccupancy": frozenset({"NA305", "NA317", "NA102"}),
    "Occupancy": frozenset({"NA305", "NA317", "NA102", "NA304"}),
    "IssueSlotUtilization": frozenset({"NA303", "NA318", "NA319", "NA307"}),
    "CPIStall": frozenset({"NA318", "NA319"}),
    "CPIStallLongScoreboard": frozenset({"NA319"}),
    "CPIStallWait": frozenset({"NA318"}),
    "HighPipeUtilization": frozenset({"NA303", "NA307", "NA302"}),
    "UncoalescedGlobalAccess": frozenset({"NA320"}),
    "MemoryCacheAccessPattern": frozenset({"NA320"}),
    "UncoalescedSharedAccess": frozenset({"NA321"}),
    "SharedMemoryConflicts": frozenset({"NA321"}),
    "WorkloadImbalance": frozenset({"NA304", "NA306"}),
    "LaunchConfiguration": frozenset({"NA306", "NA307", "NA322"}),
    "FPInstructions": frozenset({"NA302"}),
    "SOLBottleneck": frozenset(BOTTLENECK_RULES),
}


@dataclass
class LaunchAgreement:
    """One launch: ncu's verdicts, ours, and whether they agree (None: ncu gives no verdict)."""

    report: str
    launch: int
    kernel: str
    ncu_bottleneck: str | None = None
    our_bottleneck: str | None = None
    ncu_limiters: list[str] = field(default_factory=list)
    our_limiters: list[str] = field(default_factory=list)
    ncu_top: str | None = None
    ncu_top_speedup: float | None = None
    our_rules: list[str] = field(default_factory=list)
    bottleneck_agrees: bool | None = None
    limiter_agrees: bool | None = None
    top_mentioned: bool | None = None


def ncu_bottleneck(results: Iterable[dict[str, Any]]) -> str | None:
    """ncu's SOLBottleneck verdict category for one launch's rule results (None when it gave none)."""
    for result in results:
        if result.get("rule") != "SOLBottleneck":
            continue
        text = f"{result.get('title') or ''} {result.get('message') or ''}"
        for category, pattern in _VERDICTS:
            if pattern.search(text):
                return category
    return None


def ncu_limiters(results: Iterable[dict[str, Any]]) -> list[str] | None:
    """The occupancy limiters ncu names for one launch; [] when it says none binds, None when silent."""
    named: set[str] = set()
    spoke = False
    for result in results:
        if result.get("rule") not in ("TheoreticalOccupancy", "Occupancy"):
            continue
        message = result.get("message") or ""
        for limiter, pattern in _LIMITERS:
            if pattern.search(message):
                named.add(limiter)
                spoke = True
    return sorted(named) if spoke else None


def ncu_top_issue(results: Iterable[dict[str, Any]]) -> tuple[str, float] | None:
    """The rule with ncu's largest estimated speedup for one launch, and that speedup (percent)."""
    best: tuple[str, float] | None = None
    for result in results:
        speedup = result.get("speedup")
        if speedup is None or result.get("severity") in ("ok", "none", "error"):
            continue
        if best is None or speedup > best[1]:
            best = (str(result.get("rule")), float(speedup))
    return best


def our_bottleneck(result: KernelResult) -> str | None:
    """Our bottleneck category: the first of ours in ncu's order; "roof" when a unit is above 80%."""
    fired = {BOTTLENECK_RULES[f.rule] for f in result.findings if f.rule in BOTTLENECK_RULES}
    at_roof = any(f.rule in BOTTLENECK_RULES and f.evidence.get("at_roof") for f in result.findings)
    if at_roof and "small-grid" not in fired:
        return "roof"
    for category in _ORDER:
        if category in fired:
            return category
    return None


def our_limiters(result: KernelResult) -> list[str]:
    """The limiters our occupancy findings name (their ``*_bind`` evidence)."""
    names = {"registers_bind": "registers", "shared_memory_binds": "shared", "warps_bind": "warps"}
    names["blocks_bind"] = "blocks"
    limiters: set[str] = set()
    for finding in result.findings:
        if finding.rule not in ("NA305", "NA317"):
            continue
        limiters |= {label for key, label in names.items() if finding.evidence.get(key)}
    return sorted(limiters)


def agreement(
    report: str, table: Any, rule_results: list[dict[str, Any]], rules: Any
) -> list[LaunchAgreement]:
    """Per launch of one report, ncu's verdicts against ours (``rules`` from ``load_rules``)."""
    by_launch: dict[int, list[dict[str, Any]]] = {}
    for result in rule_results:
        by_launch.setdefault(int(result["launch"]), []).append(result)
    rows: list[LaunchAgreement] = []
    for index, ours in enumerate(evaluate(table, rules)):
        theirs = by_launch.get(index, [])
        row = LaunchAgreement(report=report, launch=index, kernel=ours.kernel)
        row.our_rules = sorted({f.rule for f in ours.findings})
        row.ncu_bottleneck = ncu_bottleneck(theirs)
        row.our_bottleneck = our_bottleneck(ours)
        if row.ncu_bottleneck is not None:
            agree = row.ncu_bottleneck == row.our_bottleneck
            if row.ncu_bottleneck == "roof":
                agree = row.our_bottleneck in ("roof", "compute", "memory")
            row.bottleneck_agrees = agree
        limiters = ncu_limiters(theirs)
        row.our_limiters = our_limiters(ours)
        if limiters is not None:
            row.ncu_limiters = limiters
            row.limiter_agrees = limiters == row.our_limiters
        top = ncu_top_issue(theirs)
        if top is not None:
            row.ncu_top, row.ncu_top_speedup = top
            row.top_mentioned = bool(TOPICS.get(top[0], frozenset()) & set(row.our_rules))
        rows.append(row)
    return rows


def summarize(rows: list[LaunchAgreement]) -> dict[str, tuple[int, int]]:
    """(agreeing, judged) per measure over ``rows``."""
    out: dict[str, tuple[int, int]] = {}
    for measure in ("bottleneck_agrees", "limiter_agrees", "top_mentioned"):
        judged = [getattr(r, measure) for r in rows if getattr(r, measure) is not None]
        out[measure] = (sum(judged), len(judged))
    return out


def default_reports() -> list[Path]:
    """Every recorded binary report in the repository and ../shared/reports-public."""
    paths = sorted((ROOT / "examples").rglob("*.ncu-rep*"))
    paths += sorted((ROOT / "tests" / "fixtures").rglob("*.ncu-rep*"))
    public = ROOT.parent / "shared" / "reports-public"
    if not public.is_dir():
        public = Path("/work/shared/reports-public")
    if public.is_dir():
        paths += sorted(p for p in public.iterdir() if p.name.endswith(".gz"))
    return paths


def _meta(rules: Any) -> dict[str, Any]:
    import platform  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    from ncu_advisor import __version__  # noqa: PLC0415

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "meta": True,
        "machine": f"{platform.node()} ({platform.machine()}, CPU only)",
        "python": platform.python_version(),
        "ncu_advisor": __version__,
        "commit": commit,
        "rules": len(rules),
        "command": "python bench/bench_ncu_agreement.py --out FILE",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, help="write one JSON line per launch here")
    args = parser.parse_args(argv)
    rules = load_rules()
    rows: list[LaunchAgreement] = []
    for path in args.reports or default_reports():
        try:
            rule_results = readers.rule_results(path)
        except Exception as exc:  # noqa: BLE001 - a report this reader cannot open is listed, not fatal
            print(f"{path.name}: skipped ({type(exc).__name__}: {exc})")
            continue
        if not rule_results:
            continue
        table = readers.read_report(path)
        label = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else f"shared/{path.name}"
        report_rows = agreement(label, table, rule_results, rules)
        counts = summarize(report_rows)
        print(f"{label}: " + ", ".join(f"{k} {a}/{n}" for k, (a, n) in counts.items()))
        rows += report_rows
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w") as stream:
            stream.write(json.dumps(_meta(rules)) + "\n")
            for row in rows:
                stream.write(json.dumps(asdict(row)) + "\n")
    print(f"\n{'measure':<20} {'agree':>6} {'judged':>6} {'share':>7}")
    for measure, (agree, judged) in summarize(rows).items():
        share = f"{100 * agree / judged:.1f}%" if judged else "-"
        print(f"{measure:<20} {agree:>6} {judged:>6} {share:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
