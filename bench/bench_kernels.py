"""Time every variant of every kernel file against eager PyTorch and ``torch.compile``, in one run on the GPU.

Usage (on the GPU machine, from the repository root)::

    python3 bench/bench_kernels.py OUT_DIR [--files kernels/softmax.py ...] [--reps 5] [--skip-compile]

For each kernels/*.py (``Model`` reference, ``ModelNew*`` variants, ``get_inputs``, ``get_init_inputs``):
the reference is built once with a fixed seed, every variant gets its parameters (``copy_parameters``),
and ``torch.compile`` of the reference is compiled once per file. Correctness: each candidate's output on
one input set is compared with ``Model`` evaluated in float64 (relative L2 error). Timing: ``--reps``
repetitions, each with freshly drawn inputs shared by all candidates of that repetition, each a
``triton.testing.do_bench(..., return_mode="median")``; every measurement is kept. The device-to-device
copy bandwidth (bytes read + written) is measured in the same run as the memory ceiling.

Writes to OUT_DIR (created):
- ``header.json``: GPU, SM count, driver, torch/triton/python/CUDA versions, date, copy bandwidth, options.
- ``raw.jsonl``: the header, then every measurement as it is taken (copy, rel_err checks, timings, errors).
- ``results.json``: one record per (kernel file, variant): ``file``, ``variant``, ``median_ms``, ``eager_ms``,
  ``compile_ms``, ``rel_err``, ``speedup_vs_eager``, ``speedup_vs_compile``, ``reps`` (all medians), and
  ``error`` when the variant failed (the run goes on).
- ``summary.md``: the markdown table for the README, with the header facts above it.
A short table is printed last. A variant that raises is recorded and skipped; a time budget
(``--budget-s``) cuts the remaining repetitions to one so the run ends in bounded time.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import triton
import triton.testing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ncu_advisor.collect.profile.child import copy_parameters, load_module  # noqa: E402

EAGER = "eager"
COMPILE = "torch.compile"
COPY_FLOATS = 512 * 1024 * 1024  # 2 GiB source + 2 GiB destination: far beyond L2


class RawLog:
    """Appends one JSON record per line to raw.jsonl, flushing each, so a crash keeps what was measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def driver_version() -> str:
    """The NVIDIA driver version from nvidia-smi, or "unknown"."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def environment_header(args: argparse.Namespace) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    return {
        "kind": "header",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gpu": torch.cuda.get_device_name(0),
        "sm_count": props.multi_processor_count,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "driver": driver_version(),
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "reps": args.reps,
        "skip_compile": args.skip_compile,
        "files": [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in args.files],
        "command": " ".join(sys.argv),
    }


def bench_ms(fn: Callable[[], Any]) -> float:
    """Median milliseconds of ``fn`` by do_bench (it synchronises and flushes L2 between calls)."""
    return float(triton.testing.do_bench(fn, return_mode="median"))


def measure_copy_bandwidth(reps: int, raw: RawLog) -> dict[str, Any]:
    """Device-to-device copy of 2 GiB, ``reps`` times; TB/s counts bytes read plus bytes written."""
    src = torch.empty(COPY_FLOATS, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    moved_bytes = 2 * src.numel() * src.element_size()
    values = []
    for rep in range(reps):
        ms = bench_ms(lambda: dst.copy_(src))
        tb_per_s = moved_bytes / (ms * 1e-3) / 1e12
        values.append(tb_per_s)
        raw.write({"kind": "copy", "rep": rep, "ms": ms, "bytes": moved_bytes, "tb_per_s": tb_per_s})
    return {
        "copy_tb_per_s": statistics.median(values), "copy_tb_per_s_reps": values, "copy_bytes": moved_bytes,
    }


def fresh_inputs(module: Any, seed: int) -> list[Any]:
    torch.manual_seed(seed)
    return [t.cuda() if isinstance(t, torch.Tensor) else t for t in module.get_inputs()]


def to_float64(values: list[Any]) -> list[Any]:
    return [v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in values]


def relative_l2_error(out: Any, expected: torch.Tensor) -> float:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"output is {type(out).__name__}, not a tensor")
    if tuple(out.shape) != tuple(expected.shape):
        raise ValueError(f"output shape {tuple(out.shape)} != reference shape {tuple(expected.shape)}")
    return float((out.double() - expected).norm() / expected.norm())


def error_text(exc: BaseException) -> str:
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
    return f"{type(exc).__name__}: {str(exc)[:400]} | {''.join(tail)[-600:]}"


def variant_names(module: Any) -> list[str]:
    """``ModelNew`` and ``ModelNew_*`` classes in definition order."""
    return [
        name for name, value in vars(module).items()
        if (name == "ModelNew" or name.startswith("ModelNew_")) and isinstance(value, type)
        and issubclass(value, torch.nn.Module)
    ]


def bench_file(
    path: Path, reps: int, skip_compile: bool, raw: RawLog, deadline: float,
) -> list[dict[str, Any]]:
    """All candidates of one kernel file: correctness once, then ``reps`` timed repetitions."""
    rel_path = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    module = load_module(path)
    init = module.get_init_inputs()
    torch.manual_seed(0)
    reference = module.Model(*init).cuda().eval()

    candidates: dict[str, Callable[..., Any]] = {EAGER: reference}
    info: dict[str, dict[str, Any]] = {EAGER: {}}
    if not skip_compile:
        candidates[COMPILE] = torch.compile(reference)
        info[COMPILE] = {}
    for name in variant_names(module):
        info[name] = {}
        try:
            torch.manual_seed(1)
            model = getattr(module, name)(*init).cuda().eval()
            info[name]["parameters"] = copy_parameters(reference, model)
            candidates[name] = model
        except Exception as exc:  # a variant that cannot be built is recorded; the others still run
            info[name]["error"] = error_text(exc)
            raw.write({"kind": "error", "file": rel_path, "variant": name, "stage": "build",
                       "error": info[name]["error"]})

    with torch.no_grad():
        inputs = fresh_inputs(module, seed=1000)
        t0 = time.perf_counter()
        reference64 = copy.deepcopy(reference).double()
        expected = reference64(*to_float64(inputs)).double()
        torch.cuda.synchronize()
        raw.write({"kind": "reference_fp64", "file": rel_path, "seconds": round(time.perf_counter() - t0, 2)})
        del reference64
        for name, fn in list(candidates.items()):
            t0 = time.perf_counter()
            try:
                out = fn(*inputs)
                torch.cuda.synchronize()
                info[name]["first_call_s"] = round(time.perf_counter() - t0, 2)  # includes JIT / compile
                info[name]["rel_err"] = relative_l2_error(out, expected)
                del out
                raw.write({"kind": "check", "file": rel_path, "variant": name, **info[name]})
            except Exception as exc:  # compile or runtime failure: record, drop from timing, go on
                info[name]["error"] = error_text(exc)
                raw.write({"kind": "error", "file": rel_path, "variant": name, "stage": "check",
                           "error": info[name]["error"]})
                del candidates[name]
        del expected, inputs
        torch.cuda.empty_cache()

        timings: dict[str, list[float]] = {name: [] for name in candidates}
        for rep in range(reps):
            if rep > 0 and time.monotonic() > deadline:
                raw.write({"kind": "budget", "file": rel_path, "reps_done": rep, "reps_asked": reps})
                break
            inputs = fresh_inputs(module, seed=rep)
            for name, fn in candidates.items():
                try:
                    ms = bench_ms(lambda fn=fn, inputs=inputs: fn(*inputs))
                    timings[name].append(ms)
                    raw.write({"kind": "time", "file": rel_path, "variant": name, "rep": rep, "ms": ms})
                except Exception as exc:  # keep the other candidates' timings
                    info[name].setdefault("error", error_text(exc))
                    raw.write({"kind": "error", "file": rel_path, "variant": name, "stage": "time",
                               "rep": rep, "error": error_text(exc)})
            inputs = []
    del candidates, reference
    torch.cuda.empty_cache()

    def median_or_none(name: str) -> float | None:
        values = timings.get(name, [])
        return statistics.median(values) if values else None

    eager_ms, compile_ms = median_or_none(EAGER), median_or_none(COMPILE)
    records = []
    for name in [n for n in info if n not in (EAGER, COMPILE)]:
        median_ms = median_or_none(name)
        record = {
            "file": rel_path,
            "variant": name,
            "median_ms": median_ms,
            "eager_ms": eager_ms,
            "compile_ms": compile_ms,
            "rel_err": info[name].get("rel_err"),
            "speedup_vs_eager": eager_ms / median_ms if median_ms and eager_ms else None,
            "speedup_vs_compile": compile_ms / median_ms if median_ms and compile_ms else None,
            "reps": timings.get(name, []),
            "eager_rel_err": info[EAGER].get("rel_err"),
            "compile_rel_err": info.get(COMPILE, {}).get("rel_err"),
            "first_call_s": info[name].get("first_call_s"),
            "parameters": info[name].get("parameters"),
        }
        if "error" in info[name]:
            record["error"] = info[name]["error"]
        records.append(record)
    return records


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_markdown(header: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = [
        f"Measured {header['date']} on {header['gpu']} ({header['sm_count']} SMs, "
        f"driver {header['driver']}), torch {header['torch']}, triton {header['triton']}, "
        f"Python {header['python']}, CUDA {header['cuda']}. "
        f"Median of {header['reps']} repetitions of `triton.testing.do_bench` medians, fresh inputs each. "
        f"Device-to-device copy: {header['copy_tb_per_s']:.2f} TB/s (read + write).",
        "",
        "| kernel file | variant | ms | eager ms | torch.compile ms | vs eager | vs compile "
        "| rel. L2 error |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r.get("error") and r["median_ms"] is None:
            lines.append(f"| {r['file']} | {r['variant']} | failed | {fmt(r['eager_ms'], '.3f')} | "
                         f"{fmt(r['compile_ms'], '.3f')} | - | - | - |")
            continue
        lines.append(
            f"| {r['file']} | {r['variant']} | {fmt(r['median_ms'], '.3f')} | {fmt(r['eager_ms'], '.3f')} | "
            f"{fmt(r['compile_ms'], '.3f')} | {fmt(r['speedup_vs_eager'], '.2f')}x | "
            f"{fmt(r['speedup_vs_compile'], '.2f')}x | {fmt(r['rel_err'], '.1e')} |"
        )
    return "\n".join(lines) + "\n"


def print_table(header: dict[str, Any], records: list[dict[str, Any]]) -> None:
    print(f"\n{header['gpu']}  copy {header['copy_tb_per_s']:.2f} TB/s")
    print(f"{'file':28s} {'variant':26s} {'ms':>9s} {'eager':>9s} {'compile':>9s} {'xcomp':>6s} "
          f"{'rel_err':>9s}")
    for r in records:
        ms = "ERR" if r["median_ms"] is None else f"{r['median_ms']:.3f}"
        print(f"{r['file']:28s} {r['variant']:26s} {ms:>9s} {fmt(r['eager_ms'], '.3f'):>9s} "
              f"{fmt(r['compile_ms'], '.3f'):>9s} {fmt(r['speedup_vs_compile'], '.2f'):>6s} "
              f"{fmt(r['rel_err'], '.1e'):>9s}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path,
                        help="folder for header.json, raw.jsonl, results.json, summary.md")
    parser.add_argument("--files", type=Path, nargs="+", default=sorted((ROOT / "kernels").glob("*.py")),
                        help="kernel files (default: every kernels/*.py)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per candidate (default 5)")
    parser.add_argument("--skip-compile", action="store_true",
                        help="do not time torch.compile of the reference")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="after this many seconds, remaining files get one repetition (default 420)")
    args = parser.parse_args(argv)
    args.files = [p.resolve() for p in args.files]
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        parser.error(f"no such kernel file: {', '.join(missing)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_kernels.py needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 3
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + args.budget_s
    raw = RawLog(args.out_dir / "raw.jsonl")
    header = environment_header(args)
    header.update(measure_copy_bandwidth(args.reps, raw))
    torch.cuda.empty_cache()  # the copy buffers (4 GiB) went out of scope with the function
    raw.write(header)
    (args.out_dir / "header.json").write_text(json.dumps(header, indent=2) + "\n")
    print(f"{header['gpu']}: copy {header['copy_tb_per_s']:.2f} TB/s", flush=True)

    records: list[dict[str, Any]] = []
    for path in args.files:
        t0 = time.monotonic()
        reps = args.reps if time.monotonic() < deadline else 1
        try:
            file_records = bench_file(path, reps, args.skip_compile, raw, deadline)
        except Exception as exc:  # e.g. the file does not import: record it, go on with the next file
            message = error_text(exc)
            raw.write({"kind": "error", "file": str(path), "stage": "file", "error": message})
            file_records = [{"file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                             "variant": "*", "median_ms": None, "eager_ms": None, "compile_ms": None,
                             "rel_err": None, "speedup_vs_eager": None, "speedup_vs_compile": None,
                             "reps": [], "error": message}]
            torch.cuda.empty_cache()
        records += file_records
        (args.out_dir / "results.json").write_text(json.dumps(records, indent=2) + "\n")
        print(f"{path.name}: {len(file_records)} variants in {time.monotonic() - t0:.0f} s", flush=True)

    header["total_s"] = round(time.monotonic() - started, 1)
    (args.out_dir / "header.json").write_text(json.dumps(header, indent=2) + "\n")
    (args.out_dir / "summary.md").write_text(summary_markdown(header, records))
    print_table(header, records)
    outputs = "{header.json,raw.jsonl,results.json,summary.md}"
    print(f"\nwrote {args.out_dir}/{outputs} in {header['total_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
