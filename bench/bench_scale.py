"""Scale-out benchmark (GPU machine with two GPUs, e.g. two H200s): 1 GPU against 2 GPUs, in the same run.

Parts (``--part``, one or several in order, e.g. ``a,b1,d``, sharing ``--max-seconds``):

- ``a``: (1) environment: GPUs, ncu version, the lock options ``ncu --help`` lists; (2) the ncu lock probe:
  one bare ``ncu`` profiling 30 matmul launches on GPU 0 alone, then one on GPU 0 and one on GPU 1 started
  together (ratio together/alone: about 1.0 when they run in parallel, about 2.0 when they serialise on
  ncu's lock; ``--no-probe`` skips it); (3) a timing-only sweep (``ProfileOptions(timing_only=True)``:
  check + do_bench, no ncu; the bare children in the long-lived timing worker per GPU, ``profile.worker``,
  or one process per variant with ``--process-per-variant``) of the 24-variant corpus set with
  ``LocalExecutor(gpus=1)`` then ``gpus=2``, each with an empty Triton cache of its own. Goal: >= 1.8x
  throughput. (4) A Dask smoke run (``--no-dask`` skips it).
- ``b``: ``profile`` with ncu on the first ``--profile-variants`` variants of the set (default 12): 1 GPU,
  2 GPUs with ``ncu_lock="host"`` (one ncu per host at a time), 2 GPUs with ``ncu_lock="none"``.
- ``b1``: the 1-GPU profile of ``b`` alone (when ``b`` ran out of time for it).
- ``d``: a tune sweep (tune's long-lived measurement worker, one per GPU), every file's batches in one queue,
  1 GPU then 2 GPUs (``--d-two-first``: 2 first, then 1 if it fits): see ``bench/scale_tune.py``.
  Goal: >= 1.8x.
- ``c``: the whole 24-variant set profiled with ncu on 2 GPUs (``--ncu-lock``, default ``none``).
- ``s``: every ``profile`` figure in one run, each with its timeline: timing only 1 and 2 GPUs with an empty
  Triton cache and again warm, ncu ``profile`` of ``--profile-variants`` variants on 2 and 1 GPUs, and the
  2-GPU timing-only sweep with the ``fifo`` scheduler: see ``bench/scale_same_run.py``.

The 24-variant set: kernels/corpus/gemm_decode.py expanded per autotune config (12), layernorm_rows.py
expanded (8), int8_weight_gemm.py (2), rotary_embedding.py (2); each file's reference ``Model`` runs too.
All files go to the executor in one queue (``profile_files``). A step that would not fit in what is left of
``--max-seconds`` (estimated from the rates measured before it) is skipped and says so.

Usage (repository root of the GPU machine): python bench/bench_scale.py OUT_DIR [--part a,b1,d] [--reps 3]
Writes OUT_DIR/scale-<parts>.json (after each part) and prints a table last. ``--rehearse``: part d on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncu_advisor.collect.executor import LocalExecutor, query_gpus  # noqa: E402
from ncu_advisor.collect.profile.runner import (  # noqa: E402
    ProfileOptions,
    ProfileTarget,
    check_environment,
    profile_files,
)
from ncu_advisor.collect.profile.variants import expand_autotune, list_variants  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from scale_same_run import draft_readme, part_s, timeline_lines  # noqa: E402
from scale_tune import part_d, triton_cache  # noqa: E402

CORPUS = ROOT / "kernels" / "corpus"
SET = [
    ("gemm_decode.py", True),
    ("layernorm_rows.py", True),
    ("int8_weight_gemm.py", False),
    ("rotary_embedding.py", False),
]
PROBE = r"""
import torch
x = torch.randn(4096, 4096, device="cuda")
for _ in range(3):
    y = x @ x
torch.cuda.synchronize()
torch.cuda.nvtx.range_push("ncu_advisor")
for _ in range(30):
    y = x @ x
torch.cuda.synchronize()
torch.cuda.nvtx.range_pop()
"""


def corpus_targets(limit: int | None = None) -> list[ProfileTarget]:
    """The 24-variant set (or its first ``limit`` variants), one target per file."""
    targets: list[ProfileTarget] = []
    left = limit if limit is not None else 10**9
    for name, expand in SET:
        info = list_variants(CORPUS / name)
        variants = expand_autotune(info, list(info.variants)) if expand else list(info.variants)
        variants = variants[:left]
        if variants:
            targets.append(ProfileTarget(CORPUS / name, variants, info.reference is not None))
        left -= len(variants)
    return targets


def sweep(
    targets: list[ProfileTarget], options: ProfileOptions, gpus: int, fresh_cache: bool = False
) -> dict[str, Any]:
    """One ``profile_files`` call on ``gpus`` GPUs: wall time, statuses, medians, GPUs used.

    ``fresh_cache``: an empty Triton cache of its own (``TRITON_CACHE_DIR``), so that a sweep compiles every
    kernel and never profits from the compiles of the sweep before it."""
    with triton_cache(fresh_cache):
        start = time.monotonic()
        with LocalExecutor(gpus=gpus) as executor:  # close() stops the timing workers
            runs = profile_files(targets, options, executor=executor)
        wall = time.monotonic() - start
    return {**summarize(runs, gpus, wall), "fresh_triton_cache": fresh_cache}


def summarize(runs: list[Any], gpus: int, wall: float) -> dict[str, Any]:
    """Wall time, statuses, medians and GPUs of the ``ProfileRun`` list of one ``profile_files`` call."""
    bare = runs[0].manifest["executor"].get("bare_children") if runs else None
    variants: dict[str, Any] = {}
    for run in runs:
        entries = {**run.manifest["variants"], "Model": run.manifest["reference"]}
        for name, entry in entries.items():
            if entry.get("status") == "skipped":
                continue
            variants[f"{run.run_dir.name.split('-', 1)[1]}:{name}"] = {
                "status": entry.get("status"),
                "median_ms": entry.get("median_ms"),
                "gpu": (entry.get("gpu") or {}).get("index"),
                "ncu_lock_wait_s": entry.get("ncu_lock_wait_s"),
                "reason": entry.get("reason"),
            }
    count = sum(1 for k in variants if not k.endswith(":Model"))
    return {
        "gpus": gpus,
        "wall_s": round(wall, 2),
        "bare_children": bare,
        "variants": count,
        "jobs": len(variants),
        "variants_per_min": round(60 * count / wall, 2),
        "statuses": {
            s: sum(1 for v in variants.values() if v["status"] == s)
            for s in {v["status"] for v in variants.values()}
        },
        "per_gpu_jobs": {str(g): sum(1 for v in variants.values() if v["gpu"] == g) for g in range(gpus)},
        "ncu_lock_wait_s": round(sum(v["ncu_lock_wait_s"] or 0 for v in variants.values()), 2),
        "detail": variants,
        "run_dirs": [str(r.run_dir) for r in runs],
    }


def timing_agreement(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """How much the medians of the same variants differ between the 1-GPU and the 2-GPU sweep."""
    ratios = [
        two["detail"][k]["median_ms"] / one["detail"][k]["median_ms"]
        for k in one["detail"]
        if k in two["detail"] and one["detail"][k]["median_ms"] and two["detail"][k]["median_ms"]
    ]
    if not ratios:
        return {}
    return {
        "pairs": len(ratios),
        "median_ratio": round(statistics.median(ratios), 4),
        "max_abs_dev": round(max(abs(r - 1) for r in ratios), 4),
    }


def _ncu_run(ncu: str, gpu: str, out: Path, metrics: list[str]) -> subprocess.Popen[bytes]:
    argv = [
        ncu,
        "--clock-control",
        "none",
        "--nvtx",
        "--nvtx-include",
        "ncu_advisor/",
        "--metrics",
        ",".join(metrics),
        "-o",
        str(out),
        "-f",
        sys.executable,
        "-c",
        PROBE,
    ]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu)
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def lock_probe(ncu: str, metrics: list[str]) -> dict[str, Any]:
    """One ncu alone on GPU 0, then one on GPU 0 and one on GPU 1 started together."""
    work = Path(tempfile.mkdtemp(prefix="ncu-lock-probe-"))
    try:
        start = time.monotonic()
        rc_alone = _ncu_run(ncu, "0", work / "alone", metrics).wait()
        alone = time.monotonic() - start
        start = time.monotonic()
        procs = [_ncu_run(ncu, g, work / f"together{g}", metrics) for g in ("0", "1")]
        ends: list[float] = []
        for proc in procs:
            proc.wait()
            ends.append(time.monotonic() - start)
        together = max(ends)
        return {
            "alone_s": round(alone, 2),
            "together_s": round(together, 2),
            "each_s": [round(e, 2) for e in ends],
            "ratio": round(together / alone, 2),
            "throughput_2gpu": round(2 * alone / together, 2) if together else None,
            "verdict": _lock_verdict(together / alone),
            "returncodes": [rc_alone, *[p.returncode for p in procs]],
            "reports": sorted(p.name for p in work.glob("*.ncu-rep")),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _lock_verdict(ratio: float) -> str:
    """Two ncu jobs on two GPUs against one alone: 1.0 is fully parallel, 2.0 fully serialised."""
    if ratio < 1.15:
        return "parallel"
    if ratio > 1.85:
        return "serialised"
    return "partly serialised"


def ncu_lock_options(ncu: str) -> list[str]:
    """The lines of ``ncu --help`` that mention a lock."""
    proc = subprocess.run([ncu, "--help"], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return [
        ln.strip()
        for i, ln in enumerate(lines)
        if "lock" in ln.lower() or (i and "lock" in lines[i - 1].lower())
    ]


def _fits(results: dict[str, Any], deadline: float, estimate_s: float, step: str) -> bool:
    left = deadline - time.monotonic()
    if estimate_s > left:
        results["skipped"].append(f"{step}: estimated {estimate_s:.0f} s, {left:.0f} s left")
        return False
    return True


def dask_smoke(options: ProfileOptions) -> dict[str, Any]:
    """The Dask executor on this host's GPUs: rotary_embedding.py timing-only (folders shipped back)."""
    try:
        from ncu_advisor.collect.executors_dask import DaskExecutor

        start = time.monotonic()
        with DaskExecutor() as executor:
            started = time.monotonic() - start
            info = list_variants(CORPUS / "rotary_embedding.py")
            target = ProfileTarget(CORPUS / "rotary_embedding.py", list(info.variants), True)
            (run,) = profile_files([target], options, executor=executor)
        entries = {**run.manifest["variants"], "Model": run.manifest["reference"]}
        return {
            "cluster_start_s": round(started, 2),
            "wall_s": round(time.monotonic() - start, 2),
            "status": {k: v.get("status") for k, v in entries.items()},
            "gpu": {k: (v.get("gpu") or {}).get("uuid") for k, v in entries.items()},
            "complete": run.manifest.get("complete"),
        }
    except Exception as exc:  # a smoke test: report, do not lose the part's other figures
        return {"error": f"{type(exc).__name__}: {exc}"}


def part_a(
    results: dict[str, Any], options: ProfileOptions, ncu: str | None, deadline: float, dask: bool = True
) -> None:
    """Timing only, 1 GPU then 2 GPUs, each with a fresh Triton cache; bare children in the timing worker per
    GPU (``options.timing_worker``); ``ncu`` set: the lock probe first; ``dask``: the Dask smoke last."""
    if ncu is not None:
        results["ncu_help_lock_lines"] = ncu_lock_options(ncu)
        results["lock_probe"] = lock_probe(ncu, options.resolved_metrics())
    timing = replace(options, timing_only=True)
    targets = corpus_targets()
    one = sweep(targets, timing, 1, fresh_cache=True)
    results["timing_1gpu"] = one
    if _fits(results, deadline, one["wall_s"] * 0.6, "timing_2gpu"):
        two = sweep(targets, timing, 2, fresh_cache=True)
        results["timing_2gpu"] = two
        results["timing_speedup"] = round(one["wall_s"] / two["wall_s"], 3)
        results["timing_agreement"] = timing_agreement(one, two)
    if dask and _fits(results, deadline, 60, "dask_smoke"):
        results["dask_smoke"] = dask_smoke(timing)


def part_b(results: dict[str, Any], options: ProfileOptions, limit: int, deadline: float) -> None:
    targets = corpus_targets(limit)
    two_none = sweep(targets, replace(options, ncu_lock="none"), 2)
    results["profile_2gpu_lock_none"] = two_none
    if _fits(results, deadline, two_none["wall_s"] * 1.3, "profile_2gpu_lock_host"):
        host = sweep(targets, replace(options, ncu_lock="host"), 2)
        results["profile_2gpu_lock_host"] = host
    if _fits(results, deadline, two_none["wall_s"] * 2.1, "profile_1gpu"):
        part_b1(results, options, limit)


def part_b1(results: dict[str, Any], options: ProfileOptions, limit: int) -> None:
    """The 1-GPU ncu profile of part b alone (speedups against part b's 2-GPU walls when they are present)."""
    one = sweep(corpus_targets(limit), options, 1)
    results["profile_1gpu"] = one
    for lock in ("none", "host"):
        two = results.get(f"profile_2gpu_lock_{lock}")
        if two:
            results[f"profile_speedup_lock_{lock}"] = round(one["wall_s"] / two["wall_s"], 3)


def table(results: dict[str, Any]) -> str:
    """The summary printed last: one line per sweep."""
    lines = [
        "| step | GPUs | variants | wall s | variants/min | statuses | lock wait s |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, value in results.items():
        if isinstance(value, dict) and "wall_s" in value and "gpus" in value:
            lines.append(
                f"| {key} | {value['gpus']} | {value['variants']} | {value['wall_s']} | "
                f"{value['variants_per_min']} | {value['statuses']} | {value['ncu_lock_wait_s']} |"
            )
    speedups = ("timing_speedup", "tune_sweep_speedup", "tune_sweep_speedup_vs_previous_1gpu")
    speedups += ("profile_speedup_lock_none", "profile_speedup_lock_host", "timing_warm_speedup")
    speedups += ("timing_speedup_fifo", "profile_speedup_same_run")
    for key in speedups:
        if key in results:
            lines.append(f"{key}: {results[key]}x")
    if "lock_probe" in results:
        p = results["lock_probe"]
        lines.append(
            f"ncu lock probe: alone {p['alone_s']} s, GPU0+GPU1 together {p['together_s']} s "
            f"(ratio {p['ratio']}: {p['verdict']}), rc {p['returncodes']}"
        )
    if "dask_smoke" in results:
        lines.append(f"dask smoke: {results['dask_smoke']}")
    for key in ("tune_sweep_agreement", "tune_sweep_agreement_vs_previous_1gpu"):
        if key in results:
            lines.append(f"{key} (2-GPU/1-GPU medians): {results[key]}")
    if "timing_agreement" in results:
        lines.append(f"timing agreement 2-GPU/1-GPU medians: {results['timing_agreement']}")
    lines += [f"skipped: {s}" for s in results.get("skipped", [])]
    return "\n".join(timeline_lines(results) + lines)  # the timelines first: the table stays last


def run_part(part: str, results: dict[str, Any], args: argparse.Namespace, env: Any, deadline: float) -> None:
    """One part of ``--part`` (see the module docstring), writing into ``results``."""
    runs_root = Path(tempfile.mkdtemp(prefix="bench-scale-runs-"))
    options = ProfileOptions(
        reps=args.reps, runs_root=runs_root, python=args.python, timing_worker=not args.process_per_variant
    )
    if part == "a":
        part_a(results, options, None if args.no_probe else str(env.ncu), deadline, dask=not args.no_dask)
    elif part == "b":
        part_b(results, options, args.profile_variants, deadline)
    elif part == "d":
        part_d(results, args.out, lambda s, k: _fits(results, deadline, s, k), two_first=args.d_two_first)
    elif part == "s":
        fits = lambda s, k: _fits(results, deadline, s, k)  # noqa: E731
        part_s(
            results,
            replace(options, runs_root=args.scratch / "runs" if args.scratch else runs_root),
            corpus_targets,
            fits,
            args.profile_variants,
            args.save,
        )
    elif part == "b1":
        if _fits(results, deadline, 240, "profile_1gpu"):
            part_b1(results, options, args.profile_variants)
    else:
        results["profile_24_2gpu"] = sweep(corpus_targets(), replace(options, ncu_lock=args.ncu_lock), 2)


def _save(results: dict[str, Any], out_json: Path, draft: bool) -> None:
    """The JSON so far; with part s also README-draft.md next to it (``scale_same_run.draft_readme``)."""
    out_json.write_text(json.dumps(results, indent=1, default=str))
    if draft:
        command = "PART=s bash bench/device/scale.sh   # on nvidia-h200-x2; " + " ".join(sys.argv[1:])
        (out_json.parent / "README-draft.md").write_text(draft_readme(results, command))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--part", default="a", help="a, b, b1, c, d, s, or several in order: a,b1,d")
    parser.add_argument(
        "--scratch",
        type=Path,
        help="part s: run directories (SCRATCH/runs), timing worker logs and Triton caches go here "
        "(this process's tempfile.tempdir; the children keep TMPDIR)",
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile-variants", type=int, default=12)
    parser.add_argument("--ncu-lock", choices=["host", "none"], default="none")
    parser.add_argument("--max-seconds", type=float, default=450)
    parser.add_argument("--no-probe", action="store_true", help="part a without the ncu lock probe")
    parser.add_argument("--no-dask", action="store_true", help="part a without the Dask smoke run")
    parser.add_argument("--d-two-first", action="store_true", help="part d: 2 GPUs first, 1 GPU if it fits")
    parser.add_argument(
        "--process-per-variant", action="store_true", help="timing only: a process per variant, no worker"
    )
    parser.add_argument("--rehearse", action="store_true", help="part d on a CPU: interpreter, small shapes")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter of the variants (tests: a stand-in)"
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    if not parts or any(p not in ("a", "b", "b1", "c", "d", "s") for p in parts):
        parser.error(f"--part takes a, b, b1, c, d, s (comma-separated), not {args.part!r}")
    deadline = time.monotonic() + args.max_seconds
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(args.scratch)
    if args.rehearse:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        results = {"part": "d", "skipped": []}
        part_d(results, args.out, lambda s, k: _fits(results, deadline, s, k), rehearse=True)
        print(table(results))
        return 0
    env = check_environment()
    results: dict[str, Any] = {
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "part": args.part,
        "gpus": [s.as_dict() for s in query_gpus()],
        "ncu": env.ncu_version,
        "reps": args.reps,
        "skipped": [],
    }
    out_json = args.out / f"scale-{''.join(parts)}.json"
    args.save = lambda: _save(results, out_json, "s" in parts)
    for part in parts:
        run_part(part, results, args, env, deadline)
        args.save()  # kept if a later part is cut
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
