"""Efficacy of `ncu-advisor tune`: >= 95% of an exhaustive sweep's best speed with <= 25% of its trials?

Usage (GPU machine, about 4-6 minutes on an H200):
    python bench/bench_tune.py OUT_DIR [--kernels seed001,elementwise,matmul,softmax,spill] [--ncu]
                                        [--max-seconds 330]

For each kernel: sweep a modest parameter space exhaustively once (every config: correctness against a
float64 reference computed once, then ``--reps`` do_bench medians), then run tune's loop
(``ncu_advisor.collect.tune.loop.run_tune``: the same rules, candidate generation and keep/revert test as
``ncu-advisor tune``) from the mistuned start, restricted to the same space. Both use one in-process
measure function (the variant's kernel pinned with ``ncu_advisor.collect.tune.pin``); ``ncu-advisor tune`` itself
measures each trial in its own child process, which adds start-up time but not a different timing.
Recommendations: the rules over Triton's n_regs/n_spills (as ``tune --no-ncu``), or with ``--ncu`` over a
real ncu profile of each new best (a child process under ncu, as ``tune``).

Pass per kernel: ``sweep_best_ms / tune_best_ms >= 0.95`` (tune's best config timed by the sweep when it is in
the space) AND ``tune trials (start included) <= 25% of the swept configs``. Writes
``OUT_DIR/bench_tune.json``
and ``OUT_DIR/bench_tune.md``; a kernel that falls short is reported as FAIL with the reason, never hidden.
Limits of the in-process measure: a config that crashes the CUDA context or hangs stops the bench (the
child-process path of ``ncu-advisor tune`` survives both).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ncu_advisor.collect.profile import child as profile_child  # noqa: E402
from ncu_advisor.rules import load_rules  # noqa: E402
from ncu_advisor.collect.tune.loop import Measurement, RuleRecommender, run_tune  # noqa: E402
from ncu_advisor.collect.tune.pin import _jit_function, install_run_wrapper  # noqa: E402
from ncu_advisor.collect.tune.session import make_limits, plan_tune  # noqa: E402
from ncu_advisor.collect.tune.space import Limits, TuneConfig  # noqa: E402
from ncu_advisor.analysis.trajectory import Trajectory  # noqa: E402

TARGET_SPEED = 0.95
TARGET_TRIALS = 0.25
RTOL = 2e-3


@dataclass(frozen=True)
class Case:
    """One kernel of the bench: the file, the mistuned variant, the swept space."""

    key: str
    file: str
    variant: str
    space: dict[str, tuple[int, ...]]
    rtol: float = RTOL


CASES = {
    "seed001": Case(
        "seed001",
        "kernels/fused.py",
        "ModelNew_seed001",
        {
            "BLOCK_M": (32, 64, 128),
            "BLOCK_N": (32, 64, 128),
            "BLOCK_K": (32,),
            "num_warps": (4, 8),
            "num_stages": (2, 3),
        },
    ),
    "matmul": Case(
        "matmul",
        "kernels/matmul_epilogue.py",
        "ModelNew_tile16_w1_s1",
        {
            "BLOCK_M": (32, 64, 128),
            "BLOCK_N": (32, 64, 128),
            "BLOCK_K": (32,),
            "num_warps": (4, 8),
            "num_stages": (2, 3),
        },
        rtol=5e-3,  # fp16 output: its rounding alone is ~5e-4 relative
    ),
    "elementwise": Case(
        "elementwise",
        "kernels/elementwise.py",
        "ModelNew_block64_w8",
        {"BLOCK_SIZE": (64, 128, 256, 512, 1024, 2048, 4096), "num_warps": (4, 8), "num_stages": (2, 3)},
    ),
    # The row softmax: BLOCK_SIZE is the row length (not tunable), so only warps and stages move.
    "softmax": Case(
        "softmax",
        "kernels/softmax.py",
        "ModelNew_w1",
        {"num_warps": (1, 2, 4, 8, 16, 32), "num_stages": (1, 2, 3, 4)},
    ),
    # The register-spill zoo kernel from its spilling start.
    "spill": Case(
        "spill",
        "kernels/spill.py",
        "ModelNew_block8192_w1",
        {"BLOCK_SIZE": (256, 512, 1024, 2048, 4096, 8192), "num_warps": (1, 2, 4, 8), "num_stages": (3,)},
    ),
}


def space_configs(space: dict[str, tuple[int, ...]]) -> list[TuneConfig]:
    blocks = [k for k in space if k not in ("num_warps", "num_stages")]
    configs = []
    for values in itertools.product(*(space[k] for k in blocks), space["num_warps"], space["num_stages"]):
        configs.append(TuneConfig.make(dict(zip(blocks, values[:-2], strict=True)), values[-2], values[-1]))
    return configs


class InProcess:
    """Loads the kernel file once; measures any config of the tuned kernel in this process."""

    def __init__(
        self,
        case: Case,
        kernel: str,
        method: str,
        reps: int,
        device: str = "cuda",
        shapes: dict[str, int] | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.case, self.kernel, self.method, self.reps = case, kernel, method, reps
        self.environment: dict[str, Any] = {}
        if device == "cuda" and torch.cuda.is_available():  # as tune's child reports it (gpu_* rule names)
            props = torch.cuda.get_device_properties(0)
            self.environment = {"gpu": {"name": props.name, "cc": f"{props.major}.{props.minor}"}}
        self.module = profile_child.load_module(ROOT / case.file)
        for name, value in (shapes or {}).items():  # tests shrink the problem (module-level size constants)
            setattr(self.module, name, value)
        reference, self.model, self.inputs, self.how = profile_child.build(
            self.module, case.variant, seed=0, device=device
        )
        with torch.no_grad():
            ref64 = __import__("copy").deepcopy(reference).double()
            inputs64 = [t.double() if t.is_floating_point() else t for t in self.inputs]
            self.expected = ref64(*inputs64)
        del ref64, reference
        self.cls = getattr(self.module, case.variant)
        self.original_config = dict(getattr(self.cls, "config", {}) or {})
        self.jit = _jit_function(getattr(self.module, kernel))
        self.forced: dict[str, int] = {}
        self.record: dict[str, Any] = {}
        install_run_wrapper(self.jit, self.forced, self.record)

    def _pin(self, config: TuneConfig | None) -> None:
        self.forced.clear()
        if self.method == "class-config":
            self.cls.config = dict(self.original_config)
        if config is None:
            return
        values = {**config.param_dict, "num_warps": config.num_warps, "num_stages": config.num_stages}
        if self.method == "class-config":
            self.cls.config = {
                **self.original_config,
                **{k: v for k, v in values.items() if k in self.original_config},
            }
            self.forced.update({k: v for k, v in values.items() if k not in self.original_config})
        else:
            self.forced.update(values)

    def measure(self, config: TuneConfig | None) -> Measurement:
        import triton.testing

        torch = self.torch
        self._pin(config)
        self.record.clear()  # launched_with: what the variant's own code passes at this launch
        try:
            with torch.no_grad(), profile_child._LaunchRecorder() as recorder:
                out = self.model(*self.inputs)
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                err = float((out.double() - self.expected).norm() / self.expected.norm())
                finite = bool(torch.isfinite(out).all())
                reps = [
                    float(triton.testing.do_bench(lambda: self.model(*self.inputs), return_mode="median"))
                    for _ in range(self.reps)
                ]
        except Exception as exc:  # compile failure (OutOfResources), PinError, a wrapper's ValueError
            return Measurement(
                "failed",
                reason=f"{type(exc).__name__}: {first_line(exc)}",
            )
        info = next(
            (profile_child.describe_compiled(c) for n, c in recorder.launched.items() if n == self.kernel), {}
        )
        correct = finite and err <= self.case.rtol
        return Measurement(
            "ok",
            reps,
            correct,
            reason=None if correct else f"relative L2 error {err:.3g}",
            n_regs=info.get("n_regs"),
            n_spills=info.get("n_spills"),
            shared=info.get("shared"),
            launched_with=dict(self.record.get("launched_with") or {}),
            int_args=dict(self.record.get("int_args") or {}),
            environment=self.environment,
        )


def run_case(
    case: Case, reps: int, use_ncu: bool, measurer: Any = None, out_dir: Path = Path(".")
) -> dict[str, Any]:
    """Sweep, then tune, one kernel; ``measurer`` (tests) replaces the in-process GPU measure."""
    plan = plan_tune(ROOT / case.file, case.variant)
    bench = measurer or InProcess(case, plan.kernel, plan.method, reps)
    configs = space_configs(case.space)
    t0 = time.time()
    sweep = []
    for config in configs:
        m = bench.measure(config)
        sweep.append(
            {
                "config": config.as_dict(),
                "label": config.label(),
                "status": m.status,
                "correct": m.correct,
                "median_ms": m.median_ms,
                "reps_ms": m.reps_ms,
                "n_regs": m.n_regs,
                "reason": m.reason,
            }
        )
        print(
            f"[{case.key}] sweep {config.label()}: {m.status} {m.median_ms} ms {m.reason or ''}", flush=True
        )
    sweep_s = time.time() - t0
    good = [s for s in sweep if s["status"] == "ok" and s["correct"]]
    sweep_best = min(good, key=lambda s: s["median_ms"]) if good else None

    profile = None
    if use_ncu:
        from ncu_advisor.collect.profile import runner
        from ncu_advisor.collect.tune.loop import ChildBackend

        env = runner.check_environment()
        options = runner.ProfileOptions(reps=reps)
        folder = (out_dir / f"{case.key}-ncu").resolve()
        backend = ChildBackend(
            ROOT / case.file,
            plan.variant,
            plan.kernel,
            folder,
            options,
            ncu=env.ncu,
            metrics=options.resolved_metrics(),
        )
        profile = backend.profile
    recommender = RuleRecommender(plan.kernel, plan.source, load_rules(), plan.invariant, profile=profile)
    trajectory = Trajectory(kernel_file=case.file, variant=plan.variant, kernel=plan.kernel, start=plan.start)
    budget = max(1, math.floor(TARGET_TRIALS * len(configs)))

    def limits_for(m: Measurement) -> Limits:
        base = make_limits(plan, trajectory.start, m)
        return Limits(
            **{
                **base.__dict__,
                "allowed": {k: v for k, v in case.space.items() if k not in ("num_warps", "num_stages")},
                "warp_choices": case.space["num_warps"],
                "stage_choices": case.space["num_stages"],
            }
        )

    t0 = time.time()
    run_tune(
        trajectory,
        bench.measure,
        recommender,
        limits_for,
        budget=budget,
        on_trial=lambda t: print(
            f"[{case.key}] tune {t.index}: {t.config.label()} [{t.rule}] {t.status} "
            f"{t.median_ms} ms {t.verdict}: {t.why}",
            flush=True,
        ),
    )
    tune_s = time.time() - t0
    start_trial = trajectory.trials[0]
    by_label = {s["label"]: s for s in sweep}
    tune_best = trajectory.best
    tune_best_ms = trajectory.best_median_ms
    # The sweep's label of tune's best: only the swept parameters (softmax's BLOCK_SIZE is the row length,
    # fixed by the wrapper, and appears in tune's config but not in the swept space).
    swept = (
        TuneConfig.make(
            {k: v for k, v in tune_best.param_dict.items() if k in case.space},
            tune_best.num_warps,
            tune_best.num_stages,
        ).label()
        if tune_best is not None
        else None
    )
    in_space = swept is not None and swept in by_label
    compared_ms = by_label[swept]["median_ms"] if in_space else tune_best_ms
    speed = (sweep_best["median_ms"] / compared_ms) if sweep_best and compared_ms else None
    trials = trajectory.measured_trials()
    reasons = []
    if speed is None or speed < TARGET_SPEED:
        reasons.append(
            f"reached {0 if speed is None else speed:.1%} of the sweep best's speed (< {TARGET_SPEED:.0%})"
        )
    if trials > TARGET_TRIALS * len(configs):
        reasons.append(f"used {trials} trials > {TARGET_TRIALS:.0%} of {len(configs)}")
    return {
        "kernel": case.key,
        "file": case.file,
        "variant": case.variant,
        "tuned_kernel": plan.kernel,
        "pin_method": plan.method,
        "recommender": "ncu" if use_ncu else "n_regs (no ncu)",
        "start": {"config": start_trial.config.label(), "median_ms": start_trial.median_ms},
        "tune": {
            "config": tune_best.label() if tune_best else None,
            "median_ms": tune_best_ms,
            "median_ms_in_sweep": compared_ms if in_space else None,
            "trials": trials,
            "budget": budget,
            "stop_reason": trajectory.stop_reason,
            "seconds": round(tune_s, 1),
            "trajectory": trajectory.to_json(),
        },
        "sweep": {
            "configs": len(configs),
            "best": sweep_best["label"] if sweep_best else None,
            "best_ms": sweep_best["median_ms"] if sweep_best else None,
            "seconds": round(sweep_s, 1),
            "results": sweep,
        },
        "speed_vs_sweep_best": speed,
        "trial_fraction": trials / len(configs),
        "pass": not reasons,
        "why_not": reasons,
        "recommendations": recommender.history,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def shortfall(result: dict[str, Any]) -> str:
    """Why tune fell short, from the data: the rules that fired, and the change still needed."""
    fired = sorted(
        {rule for entry in result.get("recommendations", []) for rule in entry.get("findings", [])}
    )
    trials = result["tune"]["trajectory"]["trials"]
    best = result["tune"]["trajectory"].get("best")
    target = next(
        (r["config"] for r in result["sweep"]["results"] if r["label"] == result["sweep"]["best"]), None
    )
    text = f"Rules that fired on the configs tune profiled: {', '.join(fired) or 'none'}. "
    if best and target:
        changes = []
        for name in sorted(set(best["params"]) | set(target["params"])):
            a, b = best["params"].get(name), target["params"].get(name)
            if a != b:
                changes.append(f"{name} {a} -> {b}")
        for name in ("num_warps", "num_stages"):
            if best[name] != target[name]:
                changes.append(f"{name} {best[name]} -> {target[name]}")
        text += f"Still needed from tune's best to the sweep's best: {', '.join(changes) or 'nothing'}. "
    by_rule: dict[str, int] = {}
    for trial in trials[1:]:
        by_rule[trial["rule"]] = by_rule.get(trial["rule"], 0) + 1
    text += (
        f"Trials by proposing rule: {', '.join(f'{k} {v}' for k, v in sorted(by_rule.items())) or 'none'}. "
    )
    text += (
        "No shipped rule proposes growing a BLOCK (their proposals halve BLOCK_* or set warps/stages), "
        "so growth comes only from one-step neighbour moves and their pattern-search repeats; a rule that "
        "asks for larger tiles when a kernel is latency-bound or its tiles are small would have found it "
        "sooner."
    )
    return text


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# tune efficacy",
        "",
        f"GPU: {meta.get('gpu')}; torch {meta.get('torch')}, triton {meta.get('triton')}; "
        f"recommendations from {meta['recommender']}; {meta['reps']} do_bench medians per config.",
        f"Target: >= {TARGET_SPEED:.0%} of the sweep best's speed with <= {TARGET_TRIALS:.0%} of the sweep's "
        "trials.",
        "",
        "| kernel | start | start ms | tune result | tune ms (sweep timing) | sweep best | sweep ms "
        "| speed vs sweep best | trials tune / swept | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['kernel']} | - | - | - | - | - | - | - | - | ERROR: {r['error']} |")
            continue
        t, s = r["tune"], r["sweep"]
        fmt = _ms
        verdict = "PASS" if r["pass"] else "FAIL: " + "; ".join(r["why_not"])
        lines.append(
            f"| {r['kernel']} | {r['start']['config']} | {fmt(r['start']['median_ms'])} | {t['config']} | "
            f"{fmt(t['median_ms'])} ({fmt(t['median_ms_in_sweep'])}) | {s['best']} | {fmt(s['best_ms'])} | "
            f"{'-' if r['speed_vs_sweep_best'] is None else format(r['speed_vs_sweep_best'], '.1%')} | "
            f"{t['trials']} / {s['configs']} | {verdict} |"
        )
    lines.append("")
    for r in results:
        if "error" in r:
            continue
        lines.append(
            f"## {r['kernel']} ({r['variant']}, kernel {r['tuned_kernel']}, pinned by {r['pin_method']})"
        )
        lines.append(
            f"tune stopped: {r['tune']['stop_reason']}; sweep {r['sweep']['seconds']} s, "
            f"tune {r['tune']['seconds']} s."
        )
        lines.append("")
        lines.append("| # | config | rule | status | median ms | verdict | why |")
        lines.append("|---|---|---|---|---|---|---|")
        for trial in r["tune"]["trajectory"]["trials"]:
            cfg = TuneConfig.from_dict(trial["config"]).label()
            ms = "-" if trial["median_ms"] is None else f"{trial['median_ms']:.4f}"
            lines.append(
                f"| {trial['index']} | {cfg} | {trial['rule']} | {trial['status']} | {ms} | "
                f"{trial['verdict']} | {trial['why']} |"
            )
        if not r["pass"]:
            lines += ["", "Falls short: " + "; ".join(r["why_not"]) + ". " + shortfall(r)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--kernels", default="seed001,elementwise,matmul,softmax,spill")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ncu", action="store_true", help="recommend from ncu profiles of each new best")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=330.0,
        help="skip the remaining kernels once this much time has passed",
    )
    args = parser.parse_args(argv)
    import torch
    import triton

    args.out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device",
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "reps": args.reps,
        "recommender": "ncu profiles" if args.ncu else "Triton n_regs/n_spills (no ncu)",
    }
    # Results of kernels run by an earlier command into the same OUT_DIR are kept (split a long bench
    # over several commands); a kernel run again replaces its earlier result.
    results: list[dict[str, Any]] = []
    previous = args.out_dir / "bench_tune.json"
    if previous.is_file():
        try:
            results = list(json.loads(previous.read_text()).get("results") or [])
        except ValueError:
            results = []
    started = time.time()

    def save() -> None:
        order = {key: i for i, key in enumerate(CASES)}
        results.sort(key=lambda r: order.get(r.get("kernel"), len(order)))
        previous.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
        (args.out_dir / "bench_tune.md").write_text(markdown(results, meta))

    for key in [k.strip() for k in args.kernels.split(",") if k.strip()]:
        results[:] = [r for r in results if r.get("kernel") != key]
        if key not in CASES:
            results.append({"kernel": key, "error": f"unknown kernel; choose from {', '.join(CASES)}"})
        elif time.time() - started > args.max_seconds:
            results.append(
                {"kernel": key, "error": f"skipped: the {args.max_seconds:g} s bench budget was spent"}
            )
        else:
            try:
                results.append(run_case(CASES[key], args.reps, args.ncu, out_dir=args.out_dir))
            except Exception as exc:
                traceback.print_exc()
                results.append({"kernel": key, "error": f"{type(exc).__name__}: {exc}"})
        save()
    meta["seconds"] = round(time.time() - started, 1)
    save()
    print(markdown(results, meta))
    return 0 if all(r.get("pass") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
