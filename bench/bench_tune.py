"""`ncu-advisor tune` against an exhaustive sweep and against random search, kernel by kernel (GPU).

Usage (GPU machine, about 8 minutes on an H200 for the zoo and a 12-kernel corpus):
    python bench/bench_tune.py OUT_DIR [--kernels KEY,...] [--cap-s 30] [--sweep SWEEP.jsonl] [--draws 1000]

Kernels: the zoo (``CASES``: the mistuned variant and a stated space each) and every ``kernels/corpus/*.py``
(start: the module's ``TUNE_START`` class, else its first ``ModelNew_*`` variant, else ``ModelNew``;
space: the module's ``TUNE_SPACE`` mapping, else ``corpus_space``: the kernel's own space (``searchspace``)
thinned to at most ``--max-configs`` configurations around the start; the space is in the JSON).

For each kernel, in one run:
1. tune: ``ncu_advisor.collect.tune.run.TuneSession`` (the code of ``ncu-advisor tune --no-ncu``: one
   measurement worker, the guided search), restricted to the stated space, from the mistuned start; wall
   time from the session's creation to its end (worker start included), trials, best config.
2. the exhaustive sweep of the stated space (ground truth): a fresh measurement worker, every configuration
   submitted at once (compiled ahead together), wall time including the worker's start; or the timings of a
   ``--sweep`` JSONL (bench/sweep_corpus.py's in-process sweep) when it holds the kernel. Tune runs first,
   so the sweep, not tune, profits from Triton's on-disk compile cache.
3. random search at tune's trial count: the start plus ``trials - 1`` configurations drawn without
   replacement from the sweep, ``--draws`` times; mean and 10th percentile of (sweep best / best drawn).

Goal per kernel: tune >= 98% of the sweep's best, in <= 50% of the sweep's wall time, and >= random's mean.
The table (``table``: a pure function, tested on the CPU) is printed last; where a kernel falls short its
``why`` column says which goal and what the data says. Writes OUT_DIR/bench_tune.json and bench_tune.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_QUALITY = 0.98
TARGET_WALL = 0.5
TARGET_SHARE = 0.9


@dataclass(frozen=True)
class Case:
    """One kernel of the bench: the file, the mistuned variant, the stated space (None: ``corpus_space``)."""

    key: str
    file: str
    variant: str
    space: dict[str, list[int]] | None = None
    rtol: float | None = None
    note: str = ""
    #: small shapes for a CPU rehearsal (``--device cpu``); the corpus files carry INTERPRET_SHAPES
    sets: dict[str, int] = field(default_factory=dict)


CASES = {
    "seed001": Case(
        "seed001",
        "kernels/fused.py",
        "ModelNew_seed001",
        {
            "BLOCK_M": [32, 64, 128],
            "BLOCK_N": [32, 64, 128],
            "BLOCK_K": [32],
            "num_warps": [4, 8],
            "num_stages": [2, 3],
        },
        sets={"batch_size": 2, "in_channels": 8, "out_channels": 64, "height": 7, "width": 9},
    ),
    "matmul": Case(
        "matmul",
        "kernels/matmul_epilogue.py",
        "ModelNew_tile16_w1_s1",
        {
            "BLOCK_M": [64, 128, 256],
            "BLOCK_N": [64, 128, 256],
            "BLOCK_K": [32, 64],
            "GROUP_M": [8],
            "num_warps": [4, 8],
            "num_stages": [3, 4],
        },
        rtol=5e-3,  # fp16 output: its rounding alone is ~5e-4 relative
        sets={"M_ROWS": 70, "IN_FEATURES": 48, "OUT_FEATURES": 40},
    ),
    "elementwise": Case(
        "elementwise",
        "kernels/elementwise.py",
        "ModelNew_block64_w8",
        {"BLOCK_SIZE": [64, 128, 256, 512, 1024, 2048, 4096, 8192], "num_warps": [1, 2, 4, 8, 16]},
        sets={"N_ELEMENTS": 3001},
    ),
    "softmax": Case(
        "softmax",
        "kernels/softmax.py",
        "ModelNew_w1",
        {"num_warps": [1, 2, 4, 8, 16, 32], "num_stages": [1, 2, 3, 4]},
        note="BLOCK_SIZE is the row length (a smaller one is wrong under the fixed grid), kept as written",
        sets={"N_ROWS": 37, "N_COLS": 100, "TAIL_GRID": 5},
    ),
    "spill": Case(
        "spill",
        "kernels/spill.py",
        "ModelNew_block8192_w1",
        {"BLOCK_SIZE": [256, 512, 1024, 2048, 4096, 8192], "num_warps": [1, 2, 4, 8, 16]},
        sets={"N_ELEMENTS": 2500},
    ),
}


# ----------------------------------------------------------------------------------- pure: the table half
def random_search(
    sweep_ms: list[float | None], start_ms: float, trials: int, draws: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Random search at ``trials`` trials: the start plus ``trials - 1`` sweep configurations drawn without
    replacement (None: a failing or wrong configuration, it finds nothing); quality = sweep best / best found.

    Returns ``{"mean": ..., "p10": ...}`` over ``draws`` draws (p10: the 10th percentile, the bad luck case).
    """
    good = [ms for ms in sweep_ms if ms is not None]
    if not good:
        return {"mean": 0.0, "p10": 0.0}
    best = min(good)
    rng = random.Random(seed)
    k = max(0, min(trials - 1, len(sweep_ms)))
    qualities = []
    for _ in range(draws):
        found = [ms for ms in rng.sample(sweep_ms, k) if ms is not None] + [start_ms]
        qualities.append(best / min(found))
    qualities.sort()
    return {"mean": statistics.fmean(qualities), "p10": qualities[int(0.1 * (len(qualities) - 1))]}


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """Add ``quality``, ``wall_ratio``, ``goals`` (each True/False) and ``why`` (the goals missed, with the
    data that explains them) to one kernel's result (keys: sweep, tune, random, start_ms)."""
    sweep, tune, rnd = result["sweep"], result["tune"], result["random"]
    quality = sweep["best_ms"] / tune["best_ms_in_sweep"] if tune.get("best_ms_in_sweep") else 0.0
    wall_ratio = tune["wall_s"] / sweep["wall_s"] if sweep["wall_s"] else float("inf")
    goals = {
        "quality": quality >= TARGET_QUALITY,
        "wall": wall_ratio <= TARGET_WALL,
        "vs_random": quality >= rnd["mean"] - 1e-9,
    }
    why = []
    if not goals["quality"]:
        differs = [
            f"{k} {tune['best'].get(k)} -> {v}" for k, v in sweep["best"].items() if tune["best"].get(k) != v
        ]
        why.append(
            f"{quality:.1%} of the best: tune stopped ({tune['stop_reason']}) at a config the sweep's best "
            f"beats by changing {', '.join(differs) or 'nothing in the space'}"
        )
    if not goals["wall"]:
        why.append(
            f"wall {tune['wall_s']:.1f} s = {wall_ratio:.0%} of the sweep's {sweep['wall_s']:.1f} s "
            f"({tune['trials']} of {sweep['configs']} configs measured; "
            f"worker start {tune.get('build_s') or 0:.1f} s"
            f"{'; measured the whole space' if tune.get('exhaustive') else ''})"
        )
    if not goals["vs_random"]:
        why.append(f"random search's mean at {tune['trials']} trials is {rnd['mean']:.1%}")
    return {**result, "quality": quality, "wall_ratio": wall_ratio, "goals": goals, "why": why}


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table of judged results, then the overall verdict line (see the module docstring)."""
    lines = [
        "| kernel | space | sweep best ms | tune % of best | random mean % | random p10 % | trials "
        "| sweep wall s "
        "| tune wall s | tune/sweep wall | goals | why |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['kernel']} | - | - | - | - | - | - | - | - | - | ERROR | {r['error']} |")
            continue
        s, t, rnd = r["sweep"], r["tune"], r["random"]
        met = sum(r["goals"].values())
        lines.append(
            f"| {r['kernel']} | {s['configs']} | {s['best_ms']:.4f} | {r['quality']:.1%} "
            f"| {rnd['mean']:.1%} | {rnd['p10']:.1%} | {t['trials']} | {s['wall_s']:.1f} | {t['wall_s']:.1f} "
            f"| {r['wall_ratio']:.2f} | "
            f"{met}/3 | {'; '.join(r['why']) or 'all met'} |"
        )
    judged = [r for r in results if "error" not in r]
    share = sum(1 for r in judged if r["goals"]["quality"]) / len(judged) if judged else 0.0
    fast = sum(1 for r in judged if r["goals"]["wall"])
    beats = sum(1 for r in judged if r["goals"]["vs_random"])
    lines += [
        "",
        f"tune >= {TARGET_QUALITY:.0%} of the sweep's best on {share:.0%} of {len(judged)} kernels (goal "
        f">= {TARGET_SHARE:.0%}); wall <= {TARGET_WALL:.0%} of the sweep's on {fast}/{len(judged)}; "
        f">= random search's mean on {beats}/{len(judged)}; {len(results) - len(judged)} errors.",
    ]
    return "\n".join(lines)


def read_sweep_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    """bench/sweep_corpus.py's JSONL by kernel file name:
    ``{"configs": [(flat config, ms or None)], "wall_s": s}``.

    Lines of ``"type": "config"`` carry the flat ``config`` (space keys), ``ok`` and ``ms``; a
    ``"type": "file_end"`` line carries the file's ``wall_s`` (in-process: no process start in it). A kernel
    whose sweep stopped early (``skipped`` > 0) is left out, so the bench sweeps it itself.
    """
    out: dict[str, dict[str, Any]] = {}
    partial: set[str] = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not row.get("file"):
            continue
        name = Path(str(row["file"])).name
        entry = out.setdefault(name, {"configs": [], "wall_s": None})
        if row.get("type") == "config" and isinstance(row.get("config"), dict):
            ms = row.get("ms") if row.get("ok") else None
            entry["configs"].append((_flat(row["config"]), float(ms) if ms is not None else None))
        elif row.get("type") == "file_end":
            entry["wall_s"] = float(row.get("wall_s") or 0.0)
            if row.get("skipped"):
                partial.add(name)
    return {k: v for k, v in out.items() if v["configs"] and v["wall_s"] and k not in partial}


def lookup(configs: list[tuple[dict[str, int], float | None]], config: dict[str, int]) -> float | None:
    """The sweep's timing of ``config`` (flat): the entry whose every key has ``config``'s value."""
    for swept, ms in configs:
        if all(config.get(k) == v for k, v in swept.items()):
            return ms
    return None


# --------------------------------------------------------------------------------------- GPU half
def full_spec(case_space: dict[str, list[int]], default: Any, start: Any) -> dict[str, list[int]]:
    """The stated space over every dimension of the kernel: unnamed tile dimensions stay at the start."""
    values = {**start.param_dict, "num_warps": start.num_warps, "num_stages": start.num_stages}
    return {name: list(case_space.get(name, [values[name]])) for name in default.names}


def corpus_space(default: Any, start: Any, max_configs: int) -> dict[str, list[int]]:
    """A modest space from the kernel's own: each dimension trimmed to the values nearest the start (in
    log2 steps), widest dimensions first, until the product is at most ``max_configs``."""
    import math

    values = {**start.param_dict, "num_warps": start.num_warps, "num_stages": start.num_stages}
    dims = {name: list(vals) for name, vals in default.dims}

    def size() -> int:
        return math.prod(len(v) for v in dims.values())

    while size() > max_configs:
        name = max(dims, key=lambda n: len(dims[n]))
        if len(dims[name]) <= 1:
            break
        centre = values[name]
        far = max(dims[name], key=lambda v: (abs(math.log2(v) - math.log2(centre)), v))
        dims[name].remove(far)
    return dims


def corpus_cases() -> list[Case]:
    """Every kernels/corpus/*.py as a case (see the module docstring for its start and space)."""
    from ncu_advisor.collect.profile.variants import list_variants

    cases = []
    for path in sorted((ROOT / "kernels" / "corpus").glob("*.py")):
        if path.name.startswith("_"):
            continue
        text = path.read_text(encoding="utf-8")
        try:
            names = [v.class_name for v in list_variants(path).variants]
        except Exception:  # noqa: BLE001 - reported as that kernel's error
            names = []
        # the corpus convention (kernels/corpus/README.md): ModelNew is the mistuned start, SWEEP_SPACE the
        # stated space, RTOL the tolerance
        start = _literal(text, "TUNE_START") or ("ModelNew" if "ModelNew" in names or not names else names[0])
        space = _literal(text, "TUNE_SPACE") or _literal(text, "SWEEP_SPACE")
        rtol = _literal(text, "RTOL")
        tolerance = float(rtol) if rtol is not None else None
        cases.append(Case(path.stem, str(path.relative_to(ROOT)), start, space, tolerance))
    return cases


def _literal(text: str, name: str) -> Any:
    import ast

    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "dict" and not value.args:
                return {k.arg: ast.literal_eval(k.value) for k in value.keywords if k.arg}  # dict(K=[...])
            try:
                return ast.literal_eval(value)
            except ValueError:
                return None
    return None


def run_case(case: Case, args: argparse.Namespace, sweeps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tune, then sweep, one kernel; the judged result (see the module docstring)."""
    from ncu_advisor.collect.tune.run import TuneSession, TuneSettings
    from ncu_advisor.collect.tune.searchspace import SearchSpace, space_from_kernel
    from ncu_advisor.collect.tune.session import plan_tune

    plan = plan_tune(ROOT / case.file, case.variant)
    default = space_from_kernel(
        plan.start, uses_dot=bool(plan.facts.uses_dot), has_loop=bool(plan.facts.num_loops)
    )
    spec: dict[str, Any] = (
        dict(case.space) if case.space else corpus_space(default, plan.start, args.max_configs)
    )
    spec["pin_others"] = True
    settings = TuneSettings(
        kernel_file=ROOT / case.file,
        variant=case.variant,
        space_spec=spec,
        use_ncu=False,
        reps=args.reps,
        timeout=args.timeout,
        time_limit=args.cap_s,
        runs_dir=args.out_dir / "runs",
        python=sys.executable,
        rtol=case.rtol,
        warmup_ms=args.warmup_ms,
        rep_ms=args.rep_ms,
        device=args.device,
        sets=_sets(case, args),
        compile_procs=args.compile_procs,
    )
    t0 = time.perf_counter()
    session = TuneSession(settings)
    trajectory = session.run(
        lambda t: print(
            f"[{case.key}] tune {t.index}: {t.config.label()} [{t.rule}] {t.median_ms} {t.verdict}"
        )
    )
    tune_wall = time.perf_counter() - t0
    if "space" not in trajectory.options:  # the start itself failed: nothing was tuned
        raise RuntimeError(f"tune: {trajectory.stop_reason}")
    space = SearchSpace(tuple((n, tuple(v)) for n, v in trajectory.options["space"].items()))
    configs = list(space.configs())
    reused = sweeps.get(Path(case.file).name)
    if reused and any(set(c) - set(space.names) for c, _ in reused["configs"]):
        reused = None  # swept over other keys (the zoo softmax's grid_size): sweep tune's space here
    sweep = {**reused, "source": "sweep_corpus.py JSONL"} if reused else _sweep(case, plan, configs, args)
    good = [(c, ms) for c, ms in sweep["configs"] if ms is not None]
    if not good:
        raise RuntimeError("no configuration of the sweep ran correctly")
    best_config, best_ms = min(good, key=lambda item: item[1])
    tune_best = trajectory.best.as_dict() if trajectory.best else None
    in_sweep = lookup(sweep["configs"], _flat(tune_best)) if tune_best else None
    start_ms = trajectory.trials[0].median_ms or float("inf")
    trials = trajectory.measured_trials()
    worker = trajectory.options.get("worker") or {}
    result = {
        "kernel": case.key,
        "file": case.file,
        "variant": case.variant,
        "note": case.note,
        "start_ms": start_ms,
        "tune": {
            "best": _flat(tune_best),
            "best_ms": trajectory.best_median_ms,
            "best_ms_in_sweep": in_sweep or trajectory.best_median_ms,
            "trials": trials,
            "wall_s": round(tune_wall, 2),
            "stop_reason": trajectory.stop_reason,
            "exhaustive": str(trajectory.stop_reason).startswith("measured the whole space"),
            "build_s": worker.get("build_s"),
            "restarts": worker.get("restarts"),
            "trajectory": trajectory.to_json(),
        },
        "sweep": {
            "configs": len(sweep["configs"]),
            "space": trajectory.options["space"],
            "capped": sweep.get("capped", False),
            "best": best_config,
            "best_ms": best_ms,
            "source": sweep.get("source", "fresh worker"),
            "wall_s": round(sweep["wall_s"], 2),
            "results": [{"config": c, "median_ms": ms} for c, ms in sweep["configs"]],
        },
        "random": random_search([ms for _, ms in sweep["configs"]], start_ms, trials, args.draws),
    }
    return judge(result)


def _sweep(case: Case, plan: Any, configs: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """Every configuration in one fresh worker; wall time from its start; stops at ``--cap-s``."""
    from ncu_advisor.collect.tune.worker import MeasureWorker, WorkerOptions, worker_command

    options = WorkerOptions(
        timeout_s=args.timeout,
        reps=args.reps,
        rtol=case.rtol,
        warmup_ms=args.warmup_ms,
        rep_ms=args.rep_ms,
        device=args.device,
        sets=_sets(case, args),
        compile_procs=args.compile_procs,
    )
    argv = worker_command(ROOT / case.file, plan.variant, plan.kernel, options)
    worker = MeasureWorker(argv, options, log_path=args.out_dir / f"{case.key}-sweep.log")
    t0 = time.perf_counter()
    worker.start()
    for i, config in enumerate(configs):
        worker.submit(str(i), config.as_dict())
    measured: list[tuple[dict[str, Any], float | None]] = []
    capped = False
    for event in worker.results():
        config = _flat(configs[int(event["id"])].as_dict())
        ok = event.get("status") == "ok" and event.get("correct") and event.get("reps_ms")
        measured.append((config, statistics.median(event["reps_ms"]) if ok else None))
        print(
            f"[{case.key}] sweep {_label(config)}: {measured[-1][1]} {event.get('reason') or ''}", flush=True
        )
        if time.perf_counter() - t0 > args.cap_s * 4 and len(measured) < len(configs):
            capped = True
            break
    wall = time.perf_counter() - t0
    worker.stop()
    return {"configs": measured, "wall_s": wall, "capped": capped}


def _sets(case: Case, args: argparse.Namespace) -> dict[str, int]:
    """Small shapes for a CPU rehearsal (``--device cpu`` under TRITON_INTERPRET=1); none on the GPU."""
    if args.device != "cpu":
        return {}
    shapes = case.sets or _literal((ROOT / case.file).read_text(encoding="utf-8"), "INTERPRET_SHAPES") or {}
    return {k: int(v) for k, v in shapes.items()}


def _flat(config: dict[str, Any] | None) -> dict[str, Any]:
    """``{"params": {...}, "num_warps": W, "num_stages": S}`` (or an already flat dict) as one flat dict."""
    if not config:
        return {}
    if "params" not in config:
        return dict(config)
    return {**config.get("params", {}), "num_warps": config["num_warps"], "num_stages": config["num_stages"]}


def _label(config: dict[str, Any] | None) -> str:
    return json.dumps(_flat(config), sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--kernels", default="", help="comma-separated keys (default: the zoo and the corpus)"
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup-ms", type=float, default=10.0)
    parser.add_argument("--rep-ms", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed to one candidate")
    parser.add_argument("--cap-s", type=float, default=20.0, help="tune's time limit; the sweep's is 4x")
    parser.add_argument("--total-s", type=float, default=450.0, help="skip the kernels left after this")
    parser.add_argument("--max-configs", type=int, default=48, help="corpus spaces are thinned to this")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument(
        "--compile-procs",
        type=int,
        default=0,
        help="compile-ahead processes of both tune's and the sweep's worker",
    )
    parser.add_argument("--sweep", type=Path, help="bench/sweep_corpus.py's JSONL (reused, not re-measured)")
    parser.add_argument(
        "--device",
        default="cuda",
        help="cpu: a rehearsal of the pipeline under TRITON_INTERPRET=1, small shapes",
    )
    args = parser.parse_args(argv)
    args.out_dir = args.out_dir.resolve()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    sweeps = read_sweep_jsonl(args.sweep) if args.sweep else {}
    cases = {**CASES, **{c.key: c for c in corpus_cases()}}
    keys = [k.strip() for k in args.kernels.split(",") if k.strip()] or list(cases)
    results: list[dict[str, Any]] = []
    started = time.time()
    for key in keys:
        if key not in cases:
            results.append({"kernel": key, "error": f"unknown kernel; choose from {', '.join(cases)}"})
        elif time.time() - started > args.total_s:
            results.append(
                {"kernel": key, "error": f"skipped: the {args.total_s:g} s bench budget was spent"}
            )
        else:
            try:
                results.append(run_case(cases[key], args, sweeps))
            except Exception as exc:  # noqa: BLE001 - one kernel's failure is reported in its row
                traceback.print_exc()
                results.append({"kernel": key, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
        (args.out_dir / "bench_tune.json").write_text(json.dumps({"results": results}, indent=2, default=str))
        (args.out_dir / "bench_tune.md").write_text(table(results) + "\n")
    print(f"bench wall {time.time() - started:.0f} s")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
