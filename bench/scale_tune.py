"""Part d of bench/bench_scale.py: tune's long-lived measurement workers (one per GPU) over the stated spaces
(``SWEEP_SPACE``) of ``TUNE_FILES``, every file's batches in one queue (``collect.sweep.
measure_files_across_gpus``), on 1 GPU and on 2 GPUs, each with an empty Triton cache of its own
(``TRITON_CACHE_DIR``) so neither profits from the other's compiles. ``--rehearse`` runs it on a CPU
(``TRITON_INTERPRET=1``, the files' ``INTERPRET_SHAPES``, 4 configs per file, stand-in GPUs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ncu_advisor.collect.executor import LocalExecutor
from ncu_advisor.collect.executor_types import GpuSlot

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "kernels" / "corpus"
TUNE_FILES = ["linear_bias_gelu.py", "attention_fwd.py", "colsum.py"]


@contextlib.contextmanager
def triton_cache(fresh: bool, label: str = "") -> Iterator[None]:
    """With ``fresh``: an empty ``TRITON_CACHE_DIR`` of its own while the block runs (children inherit it)."""
    if not fresh:
        yield
        return
    cache = Path(tempfile.mkdtemp(prefix=f"triton-cache-{label}"))
    old = os.environ.get("TRITON_CACHE_DIR")
    os.environ["TRITON_CACHE_DIR"] = str(cache)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TRITON_CACHE_DIR", None)
        else:
            os.environ["TRITON_CACHE_DIR"] = old
        shutil.rmtree(cache, ignore_errors=True)


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
    """Every file's stated space measured on ``gpus`` GPUs in one queue (``measure_files_across_gpus``: a GPU
    done with one file takes the next file's batches), with an empty Triton cache of its own."""
    from ncu_advisor.collect.sweep import measure_files_across_gpus

    plans = [tune_candidates(CORPUS / name, rehearse) for name in files]
    medians: list[dict[str, float | None]] = [{} for _ in files]
    slots: list[dict[str, int]] = [{} for _ in files]
    ends = [0.0 for _ in files]
    fake = [GpuSlot("cpu", i, None, "cpu", "", f"cpu:{i}") for i in range(gpus)] if rehearse else None
    with triton_cache(True, f"{gpus}gpu-"):
        start = time.monotonic()
        with LocalExecutor(gpus=gpus, slots=fake) as executor:
            for got in measure_files_across_gpus(executor, plans, batch_size=6, log_dir=log_dir):
                reps = got.result.get("reps_ms")
                ok = got.result.get("status") == "ok" and got.result.get("correct") and reps
                medians[got.file][str(got.result.get("id"))] = statistics.median(reps) if ok else None
                gpu = str(got.slot.visible if got.slot else "?")
                slots[got.file][gpu] = slots[got.file].get(gpu, 0) + 1
                ends[got.file] = time.monotonic() - start
        wall = time.monotonic() - start
    per_file = {
        name: {
            "configs": len(plans[k][1]),
            "ok": sum(1 for v in medians[k].values() if v is not None),
            "last_result_s": round(ends[k], 2),
            "per_gpu": slots[k],
            "best_ms": min((v for v in medians[k].values() if v is not None), default=None),
            "medians": medians[k],
        }
        for k, name in enumerate(files)
    }
    count = sum(f["configs"] for f in per_file.values())
    return {
        "gpus": gpus,
        "wall_s": round(wall, 2),
        "queue": "one queue across files",
        "variants": count,
        "variants_per_min": round(60 * count / wall, 2),
        "statuses": {"ok": sum(f["ok"] for f in per_file.values())},
        "ncu_lock_wait_s": 0,
        "files": per_file,
    }


PREVIOUS_D = ROOT / "bench" / "results" / "2026-11-30-scale-h200x2" / "scale-d.json"


def _agreement(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """2-GPU medians against 1-GPU medians of the same configs."""
    pairs = [
        (one["files"].get(f, {}).get("medians", {}).get(k), v)
        for f in two["files"]
        for k, v in two["files"][f]["medians"].items()
    ]
    ratios = [b / a for a, b in pairs if a and b]
    if not ratios:
        return {}
    return {
        "pairs": len(ratios),
        "median_ratio": round(statistics.median(ratios), 4),
        "max_abs_dev": round(max(abs(r - 1) for r in ratios), 4),
    }


def part_d(
    results: dict[str, Any],
    out: Path,
    fits: Callable[[float, str], bool],
    rehearse: bool = False,
    two_first: bool = False,
) -> None:
    """The tune sweep on 1 GPU then 2 (``two_first``: 2 GPUs first, 1 GPU only when it fits; the 2-GPU wall
    is then also set against the 1-GPU wall recorded last session, ``PREVIOUS_D``, same spaces and files)."""
    order = (2, 1) if two_first else (1, 2)
    walls = {1: 231.57, 2: 134.09}  # last session's walls: the estimates of what does not fit
    for gpus in order:
        key = f"tune_sweep_{gpus}gpu"
        if not rehearse and not fits(walls[gpus] * 1.05, key):
            continue
        results[key] = tune_sweep(gpus, TUNE_FILES, out / f"d-{gpus}gpu", rehearse)
    one, two = results.get("tune_sweep_1gpu"), results.get("tune_sweep_2gpu")
    if one and two:
        results["tune_sweep_speedup"] = round(one["wall_s"] / two["wall_s"], 3)
        results["tune_sweep_agreement"] = _agreement(one, two)
    elif two and not rehearse and PREVIOUS_D.is_file():
        previous = json.loads(PREVIOUS_D.read_text())["tune_sweep_1gpu"]
        results["tune_sweep_speedup_vs_previous_1gpu"] = round(previous["wall_s"] / two["wall_s"], 3)
        results["tune_sweep_agreement_vs_previous_1gpu"] = _agreement(previous, two)
