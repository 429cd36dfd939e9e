"""Benchmark: the whole rule set over a 10,000-launch table (target: under 2 s on the CPU machine).

The table is bench/data/launches10k.ncu-rep.gz (10,000 real launches recorded on an H200, 4 metrics each)
read through ``report.read_report``; the metrics the rules need and that report lacks are filled by
cycling through the real rows of the seed reports (examples/reports/h200-seed/*_small), so every rule
is evaluated on real values. Kernel source facts come from kernels/fused.py, and the kernel names of
the padded rows are the seed kernels', so source-based rules and proposals run too.

Usage: python bench/bench_rules.py [--repeat N]   (writes bench/results/rules-<date>.txt)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncu_advisor import __version__  # noqa: E402
from ncu_advisor.ingest.readers import read_report  # noqa: E402
from ncu_advisor.rules import evaluate, load_rules, required_metrics  # noqa: E402
from ncu_advisor.kernelsrc.facts import analyze_file  # noqa: E402


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def padded_table(launches: pd.DataFrame, seeds: pd.DataFrame, metrics: set[str]) -> pd.DataFrame:
    """``launches`` with every metric in ``metrics`` it lacks taken from ``seeds`` rows, cycled."""
    n = len(launches)
    picks = np.arange(n) % len(seeds)
    table = launches.reset_index(drop=True).copy()
    extra = {}
    for column in sorted(metrics):
        if column in seeds.columns and (column not in table.columns or table[column].isna().all()):
            extra[column] = seeds[column].to_numpy()[picks]
    # The seed kernels' names, so that kernel-source facts and proposals are exercised as well.
    extra["kernel"] = seeds["kernel"].to_numpy()[picks]
    for column, values in extra.items():
        table[column] = values
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    start = time.perf_counter()
    launches = read_report(ROOT / "bench" / "data" / "launches10k.ncu-rep.gz")
    read_s = time.perf_counter() - start
    seeds = pd.concat(
        [
            read_report(p)
            for p in sorted((ROOT / "examples" / "reports" / "h200-seed").glob("*_small.ncu-rep.gz"))
        ],
        ignore_index=True,
    )
    rules = load_rules()
    source = analyze_file(ROOT / "kernels" / "fused.py")
    table = padded_table(launches, seeds, required_metrics(rules))

    timings = []
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):
        start = time.perf_counter()
        results = evaluate(table, rules, source=source, stage="all")
        timings.append(time.perf_counter() - start)
    findings = sum(len(r.findings) for r in results)
    skipped = sum(len(r.skipped) for r in results)
    with_proposals = sum(1 for r in results if r.proposals)

    versions = (
        f"python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"ncu-advisor {__version__}"
    )
    lines = [
        f"# bench_rules: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        f"cpu: {_cpu_name()} ({os.cpu_count()} CPUs, {platform.machine()}, "
        f"{platform.system()} {platform.release()}); "
        f"load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}",
        f"versions: {versions}",
        f"table: {len(table)} launches x {len(table.columns)} columns "
        f"(bench/data/launches10k.ncu-rep.gz, padded from {len(seeds)} seed rows); "
        f"read_report {read_s:.2f} s",
        f"rules: {len(rules)}; stage all; source kernels/fused.py",
        f"evaluate: median {statistics.median(timings):.3f} s, min {min(timings):.3f} s, "
        f"max {max(timings):.3f} s "
        f"over {args.repeat} runs (target < 2 s)",
        f"output: {findings} findings, {skipped} skipped (rule, launch) pairs, "
        f"{with_proposals} launches with proposals",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if not args.no_write:
        out = ROOT / "bench" / "results" / f"rules-{dt.date.today().isoformat()}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
