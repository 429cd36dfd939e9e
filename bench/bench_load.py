"""Benchmark: load the 10,000-launch report (bench/data/launches10k.ncu-rep.gz) into the tidy table.

Times the gunzip separately from building the table, 5 repetitions each, and prints the medians with
the machine and library versions. Usage:

    python bench/bench_load.py [--reps 5] [--workers 1] [--out bench/results/load-YYYY-MM-DD.txt]

The issue's target: building the table under 5 s on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncu_advisor import report  # noqa: E402

DATA = ROOT / "bench" / "data" / "launches10k.ncu-rep.gz"


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
    parser.add_argument(
        "--workers", type=int, default=None, help="reader processes (0: in-process; default: as read_report)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the output to this file")
    args = parser.parse_args()

    lines: list[str] = []
    workers = report._default_workers(10_000) if args.workers is None else args.workers

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    say(f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    say(
        f"cpu: {cpu_name()} x{os.cpu_count()} (load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    say(
        f"python {platform.python_version()}, pandas {metadata.version('pandas')}, ncu_report {metadata.version('ncu_report')}"
    )
    say(
        f"report: {DATA.relative_to(ROOT)} ({DATA.stat().st_size / 1e6:.1f} MB gzip'd), reps {args.reps}, "
        f"workers {workers} (0: in-process)"
    )

    gunzip_times: list[float] = []
    build_times: list[float] = []
    build_cpu_times: list[float] = []
    rows = columns = plain_size = 0
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "launches10k.ncu-rep"
        for rep in range(args.reps):
            start = time.perf_counter()
            with gzip.open(DATA, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            gunzip_times.append(time.perf_counter() - start)
            plain_size = plain.stat().st_size
            start, start_cpu = time.perf_counter(), time.process_time()
            table = report._read_binary(plain, None, workers=workers)
            build_times.append(time.perf_counter() - start)
            # CPU time of this process: on a shared machine the wall time also counts other people's work
            # (with workers >= 1 the children's CPU time is not included).
            build_cpu_times.append(time.process_time() - start_cpu)
            rows, columns = table.shape
            del table
            say(
                f"rep {rep + 1}: gunzip {gunzip_times[-1]:.2f} s, table {build_times[-1]:.2f} s wall, "
                f"{build_cpu_times[-1]:.2f} s CPU ({rows} rows x {columns} columns)"
            )
    say(
        f"median gunzip: {statistics.median(gunzip_times):.2f} s ({DATA.stat().st_size / 1e6:.0f} MB -> {plain_size / 1e6:.0f} MB)"
    )
    median_build = statistics.median(build_times)
    say(
        f"median table build: {median_build:.2f} s ({median_build / rows * 1e6:.0f} us per launch); target < 5 s: "
        f"{'met' if median_build < 5 else 'NOT met'}"
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    say(f"median table build CPU time of this process: {statistics.median(build_cpu_times):.2f} s")
    if workers:
        try:
            import resource

            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            say(f"CPU time of the worker processes, all reps: {children.ru_utime + children.ru_stime:.2f} s")
        except ImportError:
            pass
    try:
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        say(f"peak memory of this process: {peak_mb:.0f} MB (ncu_report keeps what it parsed in its context)")
    except ImportError:
        pass
    say(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
