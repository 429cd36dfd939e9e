"""Large raw-CSV benchmark: time and peak memory of reading a 200,000-launch ``ncu --csv --page raw`` export.

The CSV is made from a real recorded export (``tests/fixtures/csv/seed000_small_raw.csv``: ncu 2025.3 on
an H200, scaled units, ``==PROF==``-free): its header and units row once, then its launch rows repeated
with fresh IDs until there are ``--rows`` launches. Each measurement reads the file in a fresh child
process (``ncu_advisor.ingest.read``) and reports the child's wall time (start-up and imports included)
and peak RSS (the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the read), once per CSV
engine (pyarrow, pandas' C parser).

Usage: ``python bench/bench_csv.py [--rows 200000] [--repeat 3] [--out bench/results/csv-2026-11-30.txt]``
(``--repeat``: each engine is measured that many times, one line per run with the load average before
it, then the best and the median wall time.)
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_CSV = ROOT / "tests" / "fixtures" / "csv" / "seed000_small_raw.csv"
GOAL_SECONDS = 5.0  # issue 11: under 5 s on the 2-core CI machine
GOAL_RSS_MB = 1024.0  # issue 11: under 1 GB peak

CHILD = """
import resource, sys, time
t0 = time.perf_counter()
from ncu_advisor.ingest import read
table = read(sys.argv[1])
t1 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
print(len(table), len(table.columns), f"{t1 - t0:.3f}", table.attrs.get("reader"),
      usage.ru_maxrss, f"{cpu:.2f}")
"""


def make_csv(target: Path, rows: int) -> None:
    """Write ``rows`` launches: the source export's header and units row, its launch rows repeated."""
    with open(SOURCE_CSV, newline="", encoding="utf-8") as handle:
        source = list(csv.reader(handle))
    header, units, launches = source[0], source[1], source[2:]
    id_index = header.index("ID")
    sentinel = "\x00id\x00"
    templates = []
    for launch in launches:  # each launch row formatted once, its ID filled in per copy
        row = list(launch)
        row[id_index] = sentinel
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(row)
        templates.append(buffer.getvalue().split(sentinel))
    with open(target, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        writer.writerow(units)
        for start in range(0, rows, 10_000):
            out.write(
                "".join(
                    str(number).join(templates[number % len(templates)])
                    for number in range(start, min(rows, start + 10_000))
                )
            )


def measure(path: Path, engine: str) -> dict[str, str]:
    """Read ``path`` in a fresh child with ``engine``; its output, wall time and peak RSS."""
    env = dict(os.environ, NCU_ADVISOR_CSV_ENGINE=engine, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"child failed ({engine}):\n{done.stderr}")
    rows, columns, read_s, reader, peak_kb, cpu_s = done.stdout.split()
    return {
        "engine": engine,
        "rows": rows,
        "columns": columns,
        "reader": reader,
        "read_s": read_s,
        "cpu_s": cpu_s,
        "wall_s": f"{wall:.2f}",
        "peak_rss_mb": f"{int(peak_kb) / 1024:.0f}",  # the child's own ru_maxrss (KiB on Linux)
    }


def _result_line(result: dict[str, str], load: float) -> str:
    rss = float(result["peak_rss_mb"])
    ok = float(result["wall_s"]) < GOAL_SECONDS and rss < GOAL_RSS_MB
    return (
        f"{result['engine']:<8} {result['rows']:<7} {result['columns']:<7} {result['read_s']:<6} "
        f"{result['cpu_s']:<6} {result['wall_s']:<6} {result['peak_rss_mb']:<11} "
        f"{'met' if ok else 'NOT met':<33} {load:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--engines", default="c,pyarrow", help="comma-separated, measured in this order")
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine (best and median reported)")
    args = parser.parse_args()
    import pandas

    try:
        import pyarrow

        arrow_version = pyarrow.__version__
    except ImportError:
        arrow_version = "absent"
    lines = [
        f"date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        f"python {platform.python_version()}, pandas {pandas.__version__}, pyarrow {arrow_version}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"command: python bench/bench_csv.py --rows {args.rows} --engines {args.engines} "
        f"--repeat {args.repeat}",
        f"source rows: {SOURCE_CSV.relative_to(ROOT)}",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp:
        path = Path(tmp) / "big_raw.csv"
        start = time.perf_counter()
        make_csv(path, args.rows)
        lines.append(
            f"generated {args.rows} launches, {path.stat().st_size / 1e6:.0f} MB in "
            f"{time.perf_counter() - start:.1f} s"
        )
        lines.append(
            "engine   rows    columns read_s cpu_s  wall_s peak_rss_mb goal (wall < 5 s, peak < 1024 MB) load"
        )
        for engine in args.engines.split(","):
            walls = []
            for _ in range(args.repeat):
                load = os.getloadavg()[0]
                result = measure(path, engine)
                walls.append(float(result["wall_s"]))
                lines.append(_result_line(result, load))
                print(lines[-1], file=sys.stderr)
            if args.repeat > 1:
                lines.append(
                    f"{engine:<8} best wall {min(walls):.2f} s, median {statistics.median(walls):.2f} s "
                    f"over {args.repeat} runs"
                )
    lines.append(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    lines.append(
        "read_s: the read() call in the child; cpu_s: the child's user+system CPU seconds (imports and "
        "read); wall_s: the whole child, start-up included; peak_rss_mb: the child's ru_maxrss; load: the "
        "1-minute load average before the run"
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
