"""Regenerate the README's performance table from a committed bench_kernels run.

Usage: python bench/update_readme.py bench/results/<run dir holding summary.md>
Replaces the text between <!-- perf-table:start --> and <!-- perf-table:end --> in README.md with that run's
summary.md, followed by the path it came from.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    run = Path(sys.argv[1])
    summary = (run / "summary.md").read_text(encoding="utf-8").strip()
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = f"<!-- perf-table:start -->\n{summary}\n\nSource: `{run.as_posix()}/` (raw.jsonl, results.json).\n<!-- perf-table:end -->"
    new, count = re.subn(r"<!-- perf-table:start -->.*?<!-- perf-table:end -->", lambda _: block, text, flags=re.S)
    if count != 1:
        print("README.md has no perf-table markers", file=sys.stderr)
        return 2
    readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
