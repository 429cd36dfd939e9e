"""`ncu-advisor tune` against an exhaustive sweep and against random search, kernel by kernel (GPU).

Usage (GPU machine; bench/device/tune.sh runs two shards at once, one per GPU, then merges them):
    python bench/bench_tune.py OUT_DIR [--kernels KEY,...] [--shard I/N] [--cap-s 20] [--sweep SWEEP.jsonl]
    python bench/bench_tune.py OUT_DIR --merge PART0/bench_tune.json PART1/bench_tune.json   # no GPU

Kernels: the zoo (``CASES``: the mistuned variant and a stated space each) and every ``kernels/corpus/*.py``
(start: the module's ``TUNE_START`` class, else its first ``ModelNew_*`` variant, else ``ModelNew``;
space: the module's ``TUNE_SPACE`` mapping, else ``corpus_space``: the kernel's own space (``searchspace``)
thinned to at most ``--max-configs`` configurations around the start; the space is in the JSON).

For each kernel, in one run:
1. tune: ``ncu_advisor.collect.tune.run.TuneSession`` (the code of ``ncu-advisor tune --no-ncu``: one
   measurement worker, the batched search), restricted to the stated space, from the mistuned start, with
   ``--cap-s`` as its time limit; wall time from the session's creation to its end, trials, best config.
2. the exhaustive sweep of the stated space (ground truth), for every kernel: a fresh measurement worker,
   every configuration submitted at once (compiled ahead together by the same compile pool), wall time from
   the worker's start to its last result, stopped after ``--sweep-cap-s``. Both walls include the same fixed
   costs (worker start: imports, model, inputs, reference; see ``bench_tune_table.WALLS``), so their ratio
   compares the searches. Each starts on an empty Triton cache of its own (``--shared-cache``: the
   caller's), so each pays the compilation of what it measures. Then, outside the sweep's wall, the
   sweep's best and tune's pick are timed again alternately in the same worker (``CONFIRM_ROUNDS`` each):
   tune's quality is the ratio of those medians (one pass of the sweep: ``quality_one_pass``). A
   ``--sweep`` JSONL (bench/sweep_corpus.py's in-process sweep, whose wall excludes the start) is only a
   cross-check: the fresh sweep's timing of the JSONL's best config, against the fresh best.
3. random search at tune's trial count: the start plus ``trials - 1`` configurations drawn without
   replacement from the sweep, ``--draws`` times; mean and 10th percentile of (sweep best / best drawn).

Goal per kernel: tune >= 98% of the sweep's best, in <= 50% of the sweep's wall time, and >= random's mean
(also reported within the sweep's measured noise: the median relative spread of a config's repetitions).
The table (``bench_tune_table.table``: pure, tested on the CPU) is printed last; where a kernel falls short
its ``why`` column says which goal and what the data says (a space so cheap that the sweep is mostly the
worker's start is named as such, with the numbers). Writes OUT_DIR/bench_tune.json and bench_tune.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tune_table import (  # noqa: E402
    CONFIRM_ROUNDS,
    cross_check,
    flat,
    judge,
    merge,
    random_search,
    read_sweep_jsonl,
    spread_of,
    table,
)
from bench_tune_table import (  # noqa: E402 - after the path set-up; re-exported for the tests
    TARGET_QUALITY as TARGET_QUALITY,
)
from bench_tune_table import (  # noqa: E402
    confirmed_quality as confirmed_quality,
)
from bench_tune_table import (  # noqa: E402
    lookup as lookup,
)
from bench_tune_table import nested as _nested  # noqa: E402


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
    #: this case's own time limits (None: ``--cap-s`` / ``--sweep-cap-s``)
    cap_s: float | None = None
    sweep_cap_s: float | None = None


#: Wider spaces of two corpus GEMMs (216 configs each, from the kernels' own 4,500): the wall goal on spaces
#: whose sweep is not mostly the worker's start (the corpus' stated spaces hold 24-80 configs, measured in
#: 7-22 s after a 4-6 s start on the two-H200 run s4a). Run last in each shard.
WIDE = {
    "linear_bias_gelu-wide": Case(
        "linear_bias_gelu-wide",
        "kernels/corpus/linear_bias_gelu.py",
        "ModelNew",
        {
            "BLOCK_M": [32, 64, 128],
            "BLOCK_N": [32, 64, 128, 256],
            "BLOCK_K": [32, 64],
            "num_warps": [2, 4, 8],
            "num_stages": [1, 3, 4],
        },
        rtol=1e-2,
        note="216-config space",
        cap_s=40.0,
        sweep_cap_s=120.0,
    ),
    "gemm_decode-wide": Case(
        "gemm_decode-wide",
        "kernels/corpus/gemm_decode.py",
        "ModelNew",
        {
            "BLOCK_M": [16, 32, 64],
            "BLOCK_N": [32, 64, 128, 256],
            "BLOCK_K": [64, 128, 256],
            "num_warps": [2, 4, 8],
            "num_stages": [3, 5],
        },
        rtol=1e-2,
        note="216-config space",
        cap_s=40.0,
        sweep_cap_s=120.0,
    ),
}


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
    from ncu_advisor.collect.tune.searchspace import SearchSpace
    from ncu_advisor.collect.tune.session import plan_tune

    plan = plan_tune(ROOT / case.file, case.variant)
    with _triton_cache(case.key, "tune", args):
        trajectory, tune_wall = _tune(case, plan, args)
    if "space" not in trajectory.options:  # the start itself failed: nothing was tuned
        raise RuntimeError(f"tune: {trajectory.stop_reason}")
    space = SearchSpace(tuple((n, tuple(v)) for n, v in trajectory.options["space"].items()))
    tune_pick = flat(trajectory.best.as_dict()) if trajectory.best else None
    with _triton_cache(case.key, "sweep", args):
        sweep = _sweep(case, plan, list(space.configs()), args, tune_pick)
    inline = None
    if case.key in args.inline_sweep:  # the sweep as the issue measured it: compile and bench in line
        with _triton_cache(case.key, "inline", args):
            inline = _sweep(case, plan, list(space.configs()), args, None, inline=True)
    reused = sweeps.get(Path(case.file).name)
    if reused and any(set(c) - set(space.names) for c, _ in reused["configs"]):
        reused = None  # swept over other keys (the zoo softmax's grid_size): no cross-check
    good = [(c, ms) for c, ms in sweep["configs"] if ms is not None]
    if not good:
        raise RuntimeError("no configuration of the sweep ran correctly")
    best_config, best_ms = min(good, key=lambda item: item[1])
    tune_best = trajectory.best.as_dict() if trajectory.best else None
    in_sweep = lookup(sweep["configs"], flat(tune_best)) if tune_best else None
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
            "best": flat(tune_best),
            "best_ms": trajectory.best_median_ms,
            "best_ms_in_sweep": in_sweep or trajectory.best_median_ms,
            "trials": trials,
            "wall_s": round(tune_wall, 2),
            "start_s": trajectory.trials[0].elapsed_s,
            "stop_reason": trajectory.stop_reason,
            "exhaustive": str(trajectory.stop_reason).startswith("measured the whole space"),
            "build_s": worker.get("build_s"),
            "restarts": worker.get("restarts"),
            # compile ahead and prefetch: how each candidate's compile was found, the pool's counts
            "compile": worker.get("compile"),
            "screened": trajectory.options.get("screened", 0),
            "trajectory": trajectory.to_json(),
        },
        "sweep": {
            "configs": len(sweep["configs"]),
            "space": trajectory.options["space"],
            "capped": sweep["capped"],
            "best": best_config,
            "best_ms": best_ms,
            "source": "fresh worker, every config submitted at once",
            "wall_s": round(sweep["wall_s"], 2),
            "start_s": round(sweep["start_s"], 2),
            "jsonl_check": cross_check(reused, sweep["configs"]) if reused else None,
            "confirm": sweep.get("confirm"),
            "spread": sweep.get("spread"),
            "results": [{"config": c, "median_ms": ms} for c, ms in sweep["configs"]],
        },
        "random": random_search([ms for _, ms in sweep["configs"]], start_ms, trials, args.draws),
    }
    if inline is not None:
        result["sweep_inline"] = {
            "source": "fresh worker, no compile ahead (each config compiled at its launch), one at a time",
            "wall_s": round(inline["wall_s"], 2),
            "start_s": round(inline["start_s"], 2),
            "capped": inline["capped"],
            "configs": len(inline["configs"]),
            "results": [{"config": c, "median_ms": ms} for c, ms in inline["configs"]],
        }
    return judge(result)


def settings_for(case: Case, args: argparse.Namespace, spec: dict[str, Any] | None = None) -> Any:
    """The ``TuneSettings`` of tune's run of ``case``; the sweep's worker takes its options from the same
    settings (``run.worker_options_for``), so both measure alike (reps, do_bench, tolerance, compile pool)."""
    from ncu_advisor.collect.tune.run import TuneSettings

    return TuneSettings(
        kernel_file=ROOT / case.file,
        variant=case.variant,
        space_spec=spec,
        use_ncu=False,
        reps=args.reps,
        timeout=args.timeout,
        time_limit=case.cap_s or args.cap_s,
        runs_dir=args.out_dir / "runs",
        python=sys.executable,
        rtol=case.rtol,
        warmup_ms=args.warmup_ms,
        rep_ms=args.rep_ms,
        device=args.device,
        sets=_sets(case, args),
        compile_procs=args.compile_procs,
        screen=not args.no_screen,
    )


def _tune(case: Case, plan: Any, args: argparse.Namespace) -> tuple[Any, float]:
    """``ncu-advisor tune --no-ncu`` on the stated space from the mistuned start: (trajectory, wall s)."""
    from ncu_advisor.collect.tune.run import TuneSession
    from ncu_advisor.collect.tune.searchspace import space_from_kernel

    default = space_from_kernel(
        plan.start, uses_dot=bool(plan.facts.uses_dot), has_loop=bool(plan.facts.num_loops)
    )
    spec: dict[str, Any] = (
        dict(case.space) if case.space else corpus_space(default, plan.start, args.max_configs)
    )
    spec["pin_others"] = True
    t0 = time.perf_counter()
    session = TuneSession(settings_for(case, args, spec))
    trajectory = session.run(
        lambda t: print(
            f"[{case.key}] tune {t.index}: {t.config.label()} [{t.rule}] {t.median_ms} {t.verdict}",
            flush=True,
        )
    )
    return trajectory, time.perf_counter() - t0


@contextlib.contextmanager
def _triton_cache(key: str, what: str, args: argparse.Namespace) -> Iterator[None]:
    """An empty Triton on-disk cache for one measurement (tune's or the sweep's; ``--shared-cache``: the
    caller's), removed after it: each search pays the compilation of what it measures, as a first run of
    ``tune`` on a kernel does. Before 2026-12-01 the sweep ran second on tune's cache, so tune's configs
    were cache hits for it."""
    if args.shared_cache:
        yield
        return
    path = Path(tempfile.mkdtemp(prefix=f"triton-{key}-{what}-"))
    old = os.environ.get("TRITON_CACHE_DIR")
    os.environ["TRITON_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TRITON_CACHE_DIR", None)
        else:
            os.environ["TRITON_CACHE_DIR"] = old
        shutil.rmtree(path, ignore_errors=True)


def _sweep(
    case: Case,
    plan: Any,
    configs: list[Any],
    args: argparse.Namespace,
    tune_pick: dict[str, Any] | None,
    inline: bool = False,
) -> dict[str, Any]:
    """Every configuration in one fresh worker, submitted at once; wall time from the worker's start
    (``start_s``: to ready) to its last result; stops after ``--sweep-cap-s``. Then (not in the wall) the
    confirmation: the sweep's best and tune's pick timed again alternately (``CONFIRM_ROUNDS`` each) in
    the same worker, so tune's quality is not the noise of one pass (``bench_tune_table.judge``).
    ``inline``: the worker compiles nothing ahead (each config compiles at its own launch, as a loop of
    compile-and-bench does: the sweep the issue measured, 0.5-0.8 s per config), configs sent one at a
    time, no confirmation."""
    import dataclasses

    from ncu_advisor.collect.tune.run import worker_options_for
    from ncu_advisor.collect.tune.worker import MeasureWorker, worker_command

    options = worker_options_for(settings_for(case, args))
    if inline:
        options = dataclasses.replace(options, compile_procs=0, compile_ahead=False)
    argv = worker_command(ROOT / case.file, plan.variant, plan.kernel, options)
    log = args.out_dir / f"{case.key}-sweep{'-inline' if inline else ''}.log"
    worker = MeasureWorker(argv, options, log_path=log)
    t0 = time.perf_counter()
    worker.start()
    start_s = time.perf_counter() - t0
    if inline:
        return _sweep_one_by_one(case, worker, configs, args, t0, start_s)
    for i, config in enumerate(configs):
        worker.submit(str(i), config.as_dict())
    measured: list[tuple[dict[str, Any], float | None]] = []
    reps_seen: list[list[float]] = []
    capped = False
    for event in worker.results():
        config = flat(configs[int(event["id"])].as_dict())
        ok = event.get("status") == "ok" and event.get("correct") and event.get("reps_ms")
        if ok:
            reps_seen.append(list(event["reps_ms"]))
        measured.append((config, statistics.median(event["reps_ms"]) if ok else None))
        print(
            f"[{case.key}] sweep {_label(config)}: {measured[-1][1]} {event.get('reason') or ''}", flush=True
        )
        if time.perf_counter() - t0 > (case.sweep_cap_s or args.sweep_cap_s) and len(measured) < len(configs):
            capped = True
            break
    wall = time.perf_counter() - t0
    confirm = None
    try:
        if not capped:
            confirm = _confirm(worker, measured, tune_pick)
    finally:
        worker.stop()
    return {
        "configs": measured, "wall_s": wall, "start_s": start_s, "capped": capped, "confirm": confirm,
        "spread": spread_of(reps_seen),
    }


def _sweep_one_by_one(
    case: Case, worker: Any, configs: list[Any], args: argparse.Namespace, t0: float, start_s: float
) -> dict[str, Any]:
    """``_sweep(inline=True)``'s loop: submit a config, wait for its result, the next (capped alike)."""
    measured: list[tuple[dict[str, Any], float | None]] = []
    capped = False
    try:
        for i, config in enumerate(configs):
            worker.submit(str(i), config.as_dict())
            for event in worker.results():
                ok = event.get("status") == "ok" and event.get("correct") and event.get("reps_ms")
                measured.append((flat(config.as_dict()), statistics.median(event["reps_ms"]) if ok else None))
            if time.perf_counter() - t0 > (case.sweep_cap_s or args.sweep_cap_s) and i + 1 < len(configs):
                capped = True
                break
        wall = time.perf_counter() - t0
    finally:
        worker.stop()
    print(f"[{case.key}] in-line sweep: {len(measured)} configs in {wall:.1f} s", flush=True)
    return {"configs": measured, "wall_s": wall, "start_s": start_s, "capped": capped}


def _confirm(
    worker: Any, measured: list[tuple[dict[str, Any], float | None]], tune_pick: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The sweep's best and tune's pick timed alternately, ``CONFIRM_ROUNDS`` times each: their reps."""
    good = [(c, ms) for c, ms in measured if ms is not None]
    if not good or tune_pick is None:
        return None
    best = min(good, key=lambda item: item[1])[0]
    if best == tune_pick:
        return {"same": True}
    order = [("best", best), ("tune", tune_pick)] * CONFIRM_ROUNDS
    for i, (_, config) in enumerate(order):
        worker.submit(f"c{i}", _nested(config))
    reps: dict[str, list[float]] = {"best": [], "tune": []}
    for event, (who, _) in zip(worker.results(), order, strict=False):
        if event.get("status") == "ok" and event.get("correct"):
            reps[who] += list(event.get("reps_ms") or [])
    return {"same": False, "best": best, "tune": tune_pick, "reps": reps}


def _sets(case: Case, args: argparse.Namespace) -> dict[str, int]:
    """Small shapes for a CPU rehearsal (``--device cpu`` under TRITON_INTERPRET=1); none on the GPU."""
    if args.device != "cpu":
        return {}
    shapes = case.sets or _literal((ROOT / case.file).read_text(encoding="utf-8"), "INTERPRET_SHAPES") or {}
    return {k: int(v) for k, v in shapes.items()}


def _label(config: dict[str, Any] | None) -> str:
    return json.dumps(flat(config), sort_keys=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--kernels", default="", help="comma-separated keys (default: the zoo and the corpus)"
    )
    parser.add_argument(
        "--shard", default="", help="I/N: every N-th kernel from the I-th (0-based), one share per GPU"
    )
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="merge these bench_tune.json parts into OUT_DIR (no GPU)"
    )
    parser.add_argument("--reps", type=int, default=3)  # tune's defaults (collect/tune/run.py DEFAULT_*)
    parser.add_argument("--warmup-ms", type=float, default=10.0)
    parser.add_argument("--rep-ms", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed to one candidate")
    parser.add_argument("--cap-s", type=float, default=20.0, help="tune's time limit per kernel")
    parser.add_argument("--sweep-cap-s", type=float, help="the sweep's time limit (default: 4x --cap-s)")
    parser.add_argument("--total-s", type=float, default=450.0, help="skip the kernels left after this")
    parser.add_argument(
        "--shared-cache", action="store_true",
        help="tune and the sweep share the caller's Triton cache (default: an empty one each)",
    )
    parser.add_argument("--max-configs", type=int, default=48, help="corpus spaces are thinned to this")
    parser.add_argument(
        "--inline-sweep",
        type=lambda text: [k.strip() for k in text.split(",") if k.strip()],
        default=[],
        help="KEY,KEY: these kernels also get the sweep the issue measured (no compile ahead, one config "
        "at a time), its wall in the JSON as sweep_inline",
    )
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument(
        "--no-screen",
        action="store_true",
        help="tune times every candidate --reps times (default: once first, the rest only for one that can "
        "still be kept)",
    )
    parser.add_argument(
        "--compile-procs",
        type=int,
        default=0,
        help="compile-ahead processes of both tune's and the sweep's worker",
    )
    parser.add_argument(
        "--sweep", type=Path, help="bench/sweep_corpus.py's JSONL: a cross-check of the fresh sweep's best"
    )
    parser.add_argument(
        "--device",
        default="cuda",
        help="cpu: a rehearsal of the pipeline under TRITON_INTERPRET=1, small shapes",
    )
    return parser


def shard(keys: list[str], spec: str) -> list[str]:
    """``I/N``: keys I, I+N, I+2N, ... (an empty spec: all of them).

    Raises:
        ValueError: not ``I/N`` with 0 <= I < N.
    """
    if not spec:
        return keys
    index, _, count = spec.partition("/")
    i, n = int(index), int(count)
    if not 0 <= i < n:
        raise ValueError(f"--shard {spec}: want I/N with 0 <= I < N")
    return keys[i::n]


def selected_keys(args: argparse.Namespace, known: list[str]) -> list[str]:
    """The kernels this run measures (``--kernels``, then ``--shard``).

    Raises:
        SystemExit(2): a key of ``--kernels`` or ``--inline-sweep`` that is no kernel, an ``--inline-sweep``
            key outside ``--kernels``, or a malformed ``--shard`` (a typo must not cost a device run that
            silently skips what it was for).
    """
    chosen = [k.strip() for k in args.kernels.split(",") if k.strip()] or list(known)
    problems = [f"--kernels {k}: no such kernel" for k in chosen if k not in known]
    problems += [
        f"--inline-sweep {k}: " + ("not among --kernels" if k in known else "no such kernel")
        for k in args.inline_sweep
        if k not in chosen
    ]
    try:
        keys = shard(chosen, args.shard)
    except ValueError:
        problems.append(f"--shard {args.shard!r}: want I/N with 0 <= I < N")
        keys = []
    if problems:
        _parser().error("; ".join(problems) + f" (kernels: {', '.join(known)})")
    return keys


def _write(out_dir: Path, results: list[dict[str, Any]], planned: list[str] | None = None) -> None:
    data = {"results": results, "planned": planned or [r["kernel"] for r in results]}
    (out_dir / "bench_tune.json").write_text(json.dumps(data, indent=2, default=str))
    (out_dir / "bench_tune.md").write_text(table(results) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out_dir = args.out_dir.resolve()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.merge:
        results = merge(args.merge)
        _write(args.out_dir, results)
        print(table(results))
        return 0
    if args.sweep_cap_s is None:
        args.sweep_cap_s = 4 * args.cap_s
    sweeps = read_sweep_jsonl(args.sweep) if args.sweep else {}
    cases = {**CASES, **{c.key: c for c in corpus_cases()}, **WIDE}
    keys = selected_keys(args, list(cases))
    results: list[dict[str, Any]] = []
    _write(args.out_dir, results, keys)
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
        _write(args.out_dir, results, keys)
    print(f"bench wall {time.time() - started:.0f} s")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
