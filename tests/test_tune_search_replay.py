"""The search replayed on real timings: the five exhaustive sweeps recorded on the H200
(bench/results/2026-11-22-tune-h200/bench_tune.json: every config's do_bench repetitions, correctness and
n_regs) stand in for the GPU. The real rule set (without ncu, as `tune --no-ncu`), the real space limits and
the keep test decide; the measure function only looks the timings up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ncu_advisor.analysis.trajectory import Trajectory
from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.loop import run_tune
from ncu_advisor.collect.tune.recommend import RuleRecommender
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.session import make_limits, plan_tune
from ncu_advisor.model import LaunchConfig
from ncu_advisor.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "bench" / "results" / "2026-11-22-tune-h200" / "bench_tune.json"
FILES = {
    "seed001": "kernels/fused.py",
    "matmul": "kernels/matmul_epilogue.py",
    "elementwise": "kernels/elementwise.py",
    "softmax": "kernels/softmax.py",
    "spill": "kernels/spill.py",
}
INT_ARGS = {"seed001": {"C_out": 128, "C_in": 64, "KH": 3, "KW": 3}}


def _replay(result: dict) -> tuple[Trajectory, dict, SearchSpace]:
    key = result["kernel"]
    plan = plan_tune(ROOT / FILES[key], result["variant"])
    sweep = {LaunchConfig.from_dict(s["config"]): s for s in result["sweep"]["results"]}
    names = sorted({k for c in sweep for k in c.param_dict})
    dims = [(n, tuple(sorted({c.param_dict[n] for c in sweep}))) for n in names]
    dims += [("num_warps", tuple(sorted({c.num_warps for c in sweep})))]
    dims += [("num_stages", tuple(sorted({c.num_stages for c in sweep})))]
    space = SearchSpace(tuple(dims))
    first = result["tune"]["trajectory"]["trials"][0]
    recorded = LaunchConfig.from_dict(first["config"])
    start = LaunchConfig.make(
        {k: v for k, v in recorded.param_dict.items() if k in names}, recorded.num_warps, recorded.num_stages
    )

    def measure(config):
        if config is None:
            launched = {**start.param_dict, "num_warps": start.num_warps, "num_stages": start.num_stages}
            return Measurement(
                "ok",
                first["reps_ms"],
                True,
                n_regs=first["n_regs"],
                int_args=INT_ARGS.get(key, {}),
                launched_with=launched,
            )
        s = sweep[config]  # KeyError: the search left the space
        return Measurement(
            s["status"],
            s["reps_ms"],
            s["correct"],
            n_regs=s["n_regs"],
            reason=s["reason"],
            int_args=INT_ARGS.get(key, {}),
        )

    trajectory = Trajectory(
        kernel_file=FILES[key], variant=result["variant"], kernel=plan.kernel, start=start
    )
    recommender = RuleRecommender(plan.kernel, plan.source, load_rules(), plan.invariant)
    run_tune(
        trajectory, measure, recommender, lambda m: make_limits(plan, start, m), space=space, exhaustive=False
    )
    return trajectory, sweep, space


@pytest.mark.parametrize("kernel", list(FILES))
def test_search_on_the_recorded_h200_sweeps(kernel):
    if not RECORDED.is_file():
        pytest.skip("recorded sweep absent")
    result = next(r for r in json.loads(RECORDED.read_text())["results"] if r["kernel"] == kernel)
    trajectory, sweep, space = _replay(result)
    assert trajectory.stop_reason.startswith("local optimum")
    assert all(
        t.config in sweep or t.verdict == "start" for t in trajectory.trials if t.status != "rejected-limits"
    )
    quality = result["sweep"]["best_ms"] / sweep[trajectory.best]["median_ms"]
    # within the 2% the keep test ignores, in at most half of the space
    assert quality >= 0.975, (kernel, quality, trajectory.best.label())
    assert trajectory.measured_trials() <= space.size / 2, (kernel, trajectory.measured_trials(), space.size)
