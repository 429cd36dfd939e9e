"""Scale-out benchmark (GPU machine with two GPUs, e.g. two H200s): 1 GPU against 2 GPUs, in the same run.

Parts (``--part``; each fits one device command of under 8 minutes):

- ``a``: (1) environment: GPUs, ncu version, the lock options ``ncu --help`` lists; (2) the ncu lock probe:
  one bare ``ncu`` profiling 30 matmul launches on GPU 0 alone, then one on GPU 0 and one on GPU 1 started
  together (ratio together/alone: about 1.0 when they run in parallel, about 2.0 when they serialise on
  ncu's lock); (3) a timing-only sweep (``ProfileOptions(timing_only=True)``: check + do_bench, no ncu) of
  the 24-variant corpus set with ``LocalExecutor(gpus=1)`` then ``gpus=2``. Goal: >= 1.8x throughput.
- ``b``: ``profile`` with ncu on the first ``--profile-variants`` variants of the set (default 12): 1 GPU,
  2 GPUs with ``ncu_lock="host"`` (one ncu per host at a time), 2 GPUs with ``ncu_lock="none"``.
- ``b1``: the 1-GPU profile of ``b`` alone (when ``b`` ran out of time for it).
- ``d``: a tune sweep (tune's long-lived measurement worker, one per GPU:
  ``collect.sweep.measure_across_gpus``) of the stated spaces (``SWEEP_SPACE``) of ``TUNE_FILES`` on
  1 GPU then 2 GPUs, each with an empty Triton cache of its own (``TRITON_CACHE_DIR``) so neither profits
  from the other's compiles. Goal: >= 1.8x.
- ``c``: the whole 24-variant set profiled with ncu on 2 GPUs (``--ncu-lock``, default ``none``).

The 24-variant set: kernels/corpus/gemm_decode.py expanded per autotune config (12), layernorm_rows.py
expanded (8), int8_weight_gemm.py (2), rotary_embedding.py (2); each file's reference ``Model`` runs too.
All files go to the executor in one queue (``profile_files``). A step that would not fit in what is left of
``--max-seconds`` (estimated from the rates measured before it) is skipped and says so.

Usage (repository root of the GPU machine): python bench/bench_scale.py OUT_DIR [--part a|b|c] [--reps 3]
Writes OUT_DIR/scale-<part>.json and prints a table last.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncu_advisor.collect.executor import LocalExecutor, query_gpus  # noqa: E402
from ncu_advisor.collect.executor_types import GpuSlot  # noqa: E402
from ncu_advisor.collect.profile.runner import (  # noqa: E402
    ProfileOptions,
    ProfileTarget,
    check_environment,
    profile_files,
)
from ncu_advisor.collect.profile.variants import expand_autotune, list_variants  # noqa: E402

CORPUS = ROOT / "kernels" / "corpus"
SET = [
    ("gemm_decode.py", True),
    ("layernorm_rows.py", True),
    ("int8_weight_gemm.py", False),
    ("rotary_embedding.py", False),
]
TUNE_FILES = ["linear_bias_gelu.py", "attention_fwd.py", "colsum.py"]
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


def sweep(targets: list[ProfileTarget], options: ProfileOptions, gpus: int) -> dict[str, Any]:
    """One ``profile_files`` call on ``gpus`` GPUs: wall time, statuses, medians, GPUs used."""
    start = time.monotonic()
    runs = profile_files(targets, options, executor=LocalExecutor(gpus=gpus))
    wall = time.monotonic() - start
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


def part_a(results: dict[str, Any], options: ProfileOptions, ncu: str, deadline: float) -> None:
    results["ncu_help_lock_lines"] = ncu_lock_options(ncu)
    results["lock_probe"] = lock_probe(ncu, options.resolved_metrics())
    timing = ProfileOptions(**{**options.__dict__, "timing_only": True})
    targets = corpus_targets()
    one = sweep(targets, timing, 1)
    results["timing_1gpu"] = one
    if _fits(results, deadline, one["wall_s"] * 0.6, "timing_2gpu"):
        two = sweep(targets, timing, 2)
        results["timing_2gpu"] = two
        results["timing_speedup"] = round(one["wall_s"] / two["wall_s"], 3)
        results["timing_agreement"] = timing_agreement(one, two)
    if _fits(results, deadline, 60, "dask_smoke"):
        results["dask_smoke"] = dask_smoke(timing)


def part_b(results: dict[str, Any], options: ProfileOptions, limit: int, deadline: float) -> None:
    targets = corpus_targets(limit)
    two_none = sweep(targets, ProfileOptions(**{**options.__dict__, "ncu_lock": "none"}), 2)
    results["profile_2gpu_lock_none"] = two_none
    if _fits(results, deadline, two_none["wall_s"] * 1.3, "profile_2gpu_lock_host"):
        host = sweep(targets, ProfileOptions(**{**options.__dict__, "ncu_lock": "host"}), 2)
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


def tune_candidates(
    path: Path, rehearse: bool = False
) -> tuple[list[str], list[tuple[str, dict[str, Any] | None]]]:
    """The worker's argv and every configuration of ``path``'s ``SWEEP_SPACE`` (other dimensions at the
    start's values) for its ``ModelNew`` variant."""
    import ast

    from ncu_advisor.collect.tune.searchspace import SearchSpace, space_from_kernel
    from ncu_advisor.collect.tune.session import plan_tune
    from ncu_advisor.collect.tune.worker import WorkerOptions, worker_command

    plan = plan_tune(path, "ModelNew")
    default = space_from_kernel(
        plan.start, uses_dot=bool(plan.facts.uses_dot), has_loop=bool(plan.facts.num_loops)
    )
    spec: dict[str, list[int]] = {}
    shapes: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(getattr(t, "id", None) == "SWEEP_SPACE" for t in targets):
            call = node.value
            assert isinstance(call, ast.Call)
            spec = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
        if rehearse and any(getattr(t, "id", None) == "INTERPRET_SHAPES" for t in targets):
            value = node.value
            if isinstance(value, ast.Call):
                shapes = {k.arg: ast.literal_eval(k.value) for k in value.keywords if k.arg}
            else:
                shapes = ast.literal_eval(value)
    start = {**plan.start.param_dict, "num_warps": plan.start.num_warps, "num_stages": plan.start.num_stages}
    dims = tuple((name, tuple(sorted(spec.get(name, [start[name]])))) for name in default.names)
    configs = [(str(i), c.as_dict()) for i, c in enumerate(SearchSpace(dims).configs())]
    if rehearse:  # --rehearse on a CPU machine: TRITON_INTERPRET=1, small shapes, 4 configs
        options = WorkerOptions(device="cpu", sets={k: int(v) for k, v in shapes.items()}, reps=1)
        return worker_command(path, plan.variant, plan.kernel, options), configs[:4]
    return worker_command(path, plan.variant, plan.kernel, WorkerOptions()), configs


def tune_sweep(gpus: int, files: list[str], log_dir: Path, rehearse: bool = False) -> dict[str, Any]:
    """Every file's stated space measured with ``measure_across_gpus`` on ``gpus`` GPUs, one after another."""
    from ncu_advisor.collect.sweep import measure_across_gpus

    cache = Path(tempfile.mkdtemp(prefix=f"triton-cache-{gpus}gpu-"))
    old = os.environ.get("TRITON_CACHE_DIR")
    os.environ["TRITON_CACHE_DIR"] = str(cache)
    per_file: dict[str, Any] = {}
    start = time.monotonic()
    try:
        for name in files:
            t0 = time.monotonic()
            argv, candidates = tune_candidates(CORPUS / name, rehearse)
            medians: dict[str, float | None] = {}
            slots: dict[str, int] = {}
            fake = [GpuSlot("cpu", i, None, "cpu", "", f"cpu:{i}") for i in range(gpus)] if rehearse else None
            with LocalExecutor(gpus=gpus, slots=fake) as executor:
                for got in measure_across_gpus(executor, argv, candidates, batch_size=6, log_dir=log_dir):
                    reps = got.result.get("reps_ms")
                    ok = got.result.get("status") == "ok" and got.result.get("correct") and reps
                    medians[str(got.result.get("id"))] = statistics.median(reps) if ok else None
                    gpu = got.slot.visible if got.slot else "?"
                    slots[str(gpu)] = slots.get(str(gpu), 0) + 1
            per_file[name] = {
                "configs": len(candidates),
                "ok": sum(1 for v in medians.values() if v is not None),
                "wall_s": round(time.monotonic() - t0, 2),
                "per_gpu": slots,
                "best_ms": min((v for v in medians.values() if v is not None), default=None),
                "medians": medians,
            }
    finally:
        if old is None:
            os.environ.pop("TRITON_CACHE_DIR", None)
        else:
            os.environ["TRITON_CACHE_DIR"] = old
        shutil.rmtree(cache, ignore_errors=True)
    wall = time.monotonic() - start
    count = sum(f["configs"] for f in per_file.values())
    return {
        "gpus": gpus,
        "wall_s": round(wall, 2),
        "variants": count,
        "variants_per_min": round(60 * count / wall, 2),
        "statuses": {"ok": sum(f["ok"] for f in per_file.values())},
        "ncu_lock_wait_s": 0,
        "files": per_file,
    }


def part_d(results: dict[str, Any], out: Path, deadline: float, rehearse: bool = False) -> None:
    one = tune_sweep(1, TUNE_FILES, out / "d-1gpu", rehearse)
    results["tune_sweep_1gpu"] = one
    if _fits(results, deadline, one["wall_s"] * 0.7, "tune_sweep_2gpu"):
        two = tune_sweep(2, TUNE_FILES, out / "d-2gpu", rehearse)
        results["tune_sweep_2gpu"] = two
        results["tune_sweep_speedup"] = round(one["wall_s"] / two["wall_s"], 3)
        pairs = [
            (one["files"][f]["medians"].get(k), v)
            for f in two["files"]
            for k, v in two["files"][f]["medians"].items()
        ]
        ratios = [b / a for a, b in pairs if a and b]
        if ratios:
            results["tune_sweep_agreement"] = {
                "pairs": len(ratios),
                "median_ratio": round(statistics.median(ratios), 4),
                "max_abs_dev": round(max(abs(r - 1) for r in ratios), 4),
            }


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
    speedups = ("timing_speedup", "tune_sweep_speedup")
    speedups += ("profile_speedup_lock_none", "profile_speedup_lock_host")
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
    if "tune_sweep_agreement" in results:
        lines.append(f"tune sweep agreement 2-GPU/1-GPU medians: {results['tune_sweep_agreement']}")
    if "timing_agreement" in results:
        lines.append(f"timing agreement 2-GPU/1-GPU medians: {results['timing_agreement']}")
    lines += [f"skipped: {s}" for s in results.get("skipped", [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--part", choices=["a", "b", "b1", "c", "d"], default="a")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile-variants", type=int, default=12)
    parser.add_argument("--ncu-lock", choices=["host", "none"], default="none")
    parser.add_argument("--max-seconds", type=float, default=450)
    parser.add_argument("--rehearse", action="store_true", help="part d on a CPU: interpreter, small shapes")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter of the variants (tests: a stand-in)"
    )
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.max_seconds
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rehearse:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        part_d(results := {"part": "d", "skipped": []}, args.out, deadline, True)
        print(table(results))
        return 0
    env = check_environment()
    runs_root = Path(tempfile.mkdtemp(prefix="bench-scale-runs-"))
    options = ProfileOptions(reps=args.reps, runs_root=runs_root, python=args.python)
    results: dict[str, Any] = {
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "part": args.part,
        "gpus": [s.as_dict() for s in query_gpus()],
        "ncu": env.ncu_version,
        "reps": args.reps,
        "skipped": [],
    }
    if args.part == "a":
        part_a(results, options, str(env.ncu), deadline)
    elif args.part == "b":
        part_b(results, options, args.profile_variants, deadline)
    elif args.part == "d":
        part_d(results, args.out, deadline, args.rehearse)
    elif args.part == "b1":
        part_b1(results, options, args.profile_variants)
    else:
        results["profile_24_2gpu"] = sweep(
            corpus_targets(), ProfileOptions(**{**options.__dict__, "ncu_lock": args.ncu_lock}), 2
        )
    (args.out / f"scale-{args.part}.json").write_text(json.dumps(results, indent=1, default=str))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
