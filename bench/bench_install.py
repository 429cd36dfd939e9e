"""Install size and time of ncu-advisor into a fresh virtual environment: the core install and [parquet].

Usage: python bench/bench_install.py [--out bench/results/install-DATE.txt] [--keep DIR]

For each variant (core ``.``, then ``.[parquet]``) it creates a new venv, runs ``pip install`` of this
checkout into it (a wheel build, not editable; pip's cache is disabled so every wheel is fetched as a user's
first install would) and measures the wall time of the install and the size of the venv's site-packages
minus that of an empty venv. The core venv then runs the CLI on a shipped run without pyarrow
(``report --format json``, and ``metrics --format parquet`` must exit 2 with the install hint). Writes
a text file with the machine, the versions, the date and one line per variant; prints the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree_bytes(path: Path) -> int:
    """Total size in bytes of the regular files under ``path`` (symlinks not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            file = Path(dirpath) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"{venv}: no site-packages folder")
    return found[0]


def make_venv(venv: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


def top_packages(sp: Path, n: int = 6) -> list[tuple[str, int]]:
    sizes = [(p.name, tree_bytes(p)) for p in sp.iterdir() if p.is_dir() and not p.name.endswith("-info")]
    return sorted(sizes, key=lambda item: -item[1])[:n]


def install(spec: str, workdir: Path, empty_bytes: int) -> dict[str, object]:
    """Install ``spec`` (a path with extras) into a new venv under ``workdir``; return the figures."""
    venv = workdir / ("venv-" + (spec.split("[")[1].rstrip("]") if "[" in spec else "core"))
    python = make_venv(venv)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    start = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "-q", spec], check=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    sp = site_packages(venv)
    freeze = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout.split()
    return {
        "spec": spec,
        "seconds": seconds,
        "bytes": tree_bytes(sp) - empty_bytes,
        "packages": len(freeze),
        "top": top_packages(sp),
        "python": python,
        "pyarrow": any(line.lower().startswith("pyarrow==") for line in freeze),
    }


def smoke_core(python: Path) -> list[str]:
    """Run the CLI of the core venv on a shipped run; return one line per check (raises on a failure)."""
    cli = [str(python), "-m", "ncu_advisor"]
    run = str(ROOT / "examples" / "runs" / "improved")
    lines = []
    elsewhere = tempfile.gettempdir()  # not the checkout: the installed package must answer
    done = subprocess.run(
        [*cli, "report", run, "--format", "json"], capture_output=True, text=True, cwd=elsewhere
    )
    if done.returncode != 0 or '"schema_version"' not in done.stdout:
        raise SystemExit(f"core install: report --format json failed ({done.returncode}): {done.stderr}")
    lines.append("core install, no pyarrow: `report examples/runs/improved --format json` exit 0")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t.parquet"
        report = str(ROOT / "examples" / "runs" / "improved" / "variants" / "ModelNew" / "profile.ncu-rep.gz")
        done = subprocess.run(
            [*cli, "metrics", report, "--format", "parquet", "-o", str(out)],
            capture_output=True,
            text=True,
            cwd=elsewhere,
        )
    if done.returncode != 2 or "ncu-advisor[parquet]" not in done.stderr:
        raise SystemExit(f"core install: metrics --format parquet gave {done.returncode}: {done.stderr}")
    lines.append("core install, no pyarrow: `metrics ... --format parquet` exit 2 with the install hint")
    probe = (
        "from ncu_advisor.schemas import SCHEMA_FILES, load_schema; "
        "print(len([load_schema(name) for name in SCHEMA_FILES]))"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=elsewhere)
    if done.returncode != 0:
        raise SystemExit(f"core install: the JSON schemas are not in the wheel: {done.stderr}")
    lines.append(f"core install: the {done.stdout.strip()} JSON schemas load from the installed wheel")
    return lines


def main() -> None:
    today = dt.datetime.now(dt.timezone.utc)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / f"bench/results/install-{today:%Y-%m-%d}.txt")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ncu-advisor-install-"))
    try:
        make_venv(workdir / "empty")
        empty_bytes = tree_bytes(site_packages(workdir / "empty"))
        pip_version = subprocess.run(
            [str(workdir / "empty" / "bin" / "python"), "-m", "pip", "--version"],
            capture_output=True,
            text=True,
        ).stdout.split()[1]
        results = [install(spec, workdir, empty_bytes) for spec in (".", ".[parquet]")]
        checks = smoke_core(results[0]["python"])  # type: ignore[arg-type]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    lines = [
        f"ncu-advisor install size and time, measured {today:%Y-%m-%dT%H:%M:%SZ} by bench/bench_install.py",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
        f"Python {platform.python_version()}, pip {pip_version}; checkout {git.stdout.strip() or '?'}",
        "each: a fresh venv, `pip install SPEC` of the checkout, no pip cache (wheels come from the index);",
        "size: the venv's site-packages minus an empty venv's (pip itself excluded); the machine's load "
        f"average at the end {os.getloadavg()[0]:.1f} (time is wall time on a shared machine)",
        "",
        f"{'install':<26} {'time s':>7} {'size MB':>8} {'packages':>9}  largest",
    ]
    for res in results:
        top = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in res["top"][:4])  # type: ignore[index]
        lines.append(
            f"pip install {res['spec']:<14} {res['seconds']:>7.1f} {res['bytes'] / 1e6:>8.1f} "  # type: ignore[operator]
            f"{res['packages']:>9}  {top}"
        )
    lines += ["", *checks]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
