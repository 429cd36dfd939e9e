"""Benchmark: load the 10,000-launch report (bench/data/launches10k.ncu-rep.gz) into the tidy table.

Times ``report.read_report`` on the gzip'd file, as a user runs it (gunzip included), with both binary
readers in the same run: the direct reader (``ncu_advisor.ingest.ncurep``, the default) and NVIDIA's
``ncu_report`` (the fallback). Checks that both give the same table, then prints the medians with the
machine and library versions. Usage:

    python bench/bench_load.py [--reps 5] [--readers direct,ncu_report] [--out bench/results/load-DATE.txt]

The issue's target: under 5 s on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from ncu_advisor.ingest import readers as report  # noqa: E402

DATA = ROOT / "bench" / "data" / "launches10k.ncu-rep.gz"
TARGET_S = 5.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--readers", default="direct,ncu_report", help="comma-separated: direct, ncu_report")
    parser.add_argument("--out", type=Path, default=None, help="also write the output to this file")
    args = parser.parse_args()
    readers = [r.strip() for r in args.readers.split(",") if r.strip()]

    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    load = os.getloadavg()
    say(f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    before = " ".join(f"{x:.2f}" for x in load)
    say(f"cpu: {cpu_name()} x{os.cpu_count()} (load average before: {before})")
    say(
        f"python {platform.python_version()}, pandas {metadata.version('pandas')}, "
        f"ncu_report {metadata.version('ncu_report')}, ncu-advisor {metadata.version('ncu-advisor')}"
    )
    say(f"report: {DATA.relative_to(ROOT)} ({DATA.stat().st_size / 1e6:.1f} MB gzip'd), reps {args.reps}")
    say("timed: report.read_report(<the .gz>) with $NCU_ADVISOR_READER set to the reader (gunzip included)")

    medians: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}
    for reader in readers:
        os.environ[report.READER_ENV] = reader
        times: list[float] = []
        cpu: list[float] = []
        for rep in range(args.reps):
            start, start_cpu = time.perf_counter(), time.process_time()
            table = report.read_report(DATA)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            say(
                f"{reader} rep {rep + 1}: {times[-1]:.2f} s wall, {cpu[-1]:.2f} s CPU of this process "
                f"({table.shape[0]} rows x {table.shape[1]} columns, read by {table.attrs.get('reader')})"
            )
            tables[reader] = table
        medians[reader] = statistics.median(times)
        met = "met" if medians[reader] < TARGET_S else "NOT met"
        say(
            f"{reader}: median {medians[reader]:.2f} s ({medians[reader] / 10_000 * 1e6:.0f} us per launch); "
            f"target < {TARGET_S:.0f} s: {met}"
        )
    os.environ.pop(report.READER_ENV, None)
    if len(tables) == 2:
        first, second = (tables[r] for r in readers)
        pd.testing.assert_frame_equal(first, second, check_exact=True)  # values, dtypes, columns, ids
        assert first.attrs["units"] == second.attrs["units"]
        say("tables equal (values, dtypes, columns, units): True")
        a, b = readers
        say(f"ratio {b} / {a}: {medians[b] / medians[a]:.1f}x")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"peak memory of this process: {peak_mb:.0f} MB")
    load = os.getloadavg()
    say(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
