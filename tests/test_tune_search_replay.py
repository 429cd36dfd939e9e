"""The search replayed on real timings: exhaustive sweeps recorded on the H200 stand in for the GPU.

- bench/results/2026-11-22-tune-h200/bench_tune.json: five zoo kernels, every config's do_bench
  repetitions, correctness and n_regs (so the register rules fire as under `tune --no-ncu`);
- bench/results/2026-11-30-tune-h200/part1|part2/bench_tune.json: 19 zoo and corpus kernels, every config's
  median (the repetitions are the median +-0.2%, the spread do_bench showed there), the start's own timing
  from tune's first trial (a mistuned start may lie outside the stated space);
- bench/results/2026-11-30-tune-h200x2/bench_tune.json: fresh sweeps of 10 of them on two H200s (the
  batched search's own run, stopped by the bench's 18 s cap on five).

Timed (``timed_replay``): each kernel's recorded worker start (trial 0's wall) and mean wall per candidate
on a fake clock, under the bench's 18 s cap.

The real rule set, the real limits (tl.dot operands taken as 2-byte elements, as the kernels' fp16/bf16
inputs are), the batched search (``loop.run_tune``: rounds of rule, line and pair moves) and the keep test
decide; the measure function only looks the timings up (a config outside the sweep fails the test)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncu_advisor.analysis.trajectory import Trajectory
from ncu_advisor.collect.tune import batch
from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.loop import run_tune
from ncu_advisor.collect.tune.recommend import RuleRecommender
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.session import make_limits, plan_tune
from ncu_advisor.collect.tune.space import Limits, shared_estimate
from ncu_advisor.model import LaunchConfig
from ncu_advisor.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
OLD = ROOT / "bench" / "results" / "2026-11-22-tune-h200" / "bench_tune.json"
NEW = [
    ("2026-11-30", ROOT / "bench" / "results" / "2026-11-30-tune-h200" / part / "bench_tune.json")
    for part in ("part1", "part2")
] + [("2026-11-30x2", ROOT / "bench" / "results" / "2026-11-30-tune-h200x2" / "bench_tune.json")]
#: The bench's cap per kernel (bench/device/tune.sh ``CAP_S``, worker start included) in the timed replay.
CAP_S = 18.0
ZOO_FILES = {
    "seed001": "kernels/fused.py",
    "matmul": "kernels/matmul_epilogue.py",
    "elementwise": "kernels/elementwise.py",
    "softmax": "kernels/softmax.py",
    "spill": "kernels/spill.py",
}
INT_ARGS = {"seed001": {"C_out": 128, "C_in": 64, "KH": 3, "KW": 3}}
LAUNCH = ("num_warps", "num_stages")


def _config(flat_or_nested: dict, pinned: dict[str, list[int]]) -> LaunchConfig:
    if "params" in flat_or_nested:
        return LaunchConfig.from_dict(flat_or_nested)
    values = {**{n: v[0] for n, v in pinned.items()}, **flat_or_nested}
    params = {k: v for k, v in values.items() if k not in LAUNCH}
    return LaunchConfig.make(params, values.get("num_warps", 4), values.get("num_stages", 3))


def _cases() -> list[tuple[str, str, dict]]:
    cases = []
    if OLD.is_file():
        cases += [("2026-11-22", r["kernel"], r) for r in json.loads(OLD.read_text())["results"]]
    for date, path in NEW:
        if path.is_file():
            cases += [
                (date, r["kernel"], r) for r in json.loads(path.read_text())["results"] if "error" not in r
            ]
    return cases


CASES = _cases()


def _space(result: dict) -> tuple[SearchSpace, dict[LaunchConfig, dict]]:
    spec = result["sweep"].get("space") or {}
    sweep = {_config(s["config"], spec): s for s in result["sweep"]["results"]}
    if not spec:  # the 2026-11-22 format: the space is the set of swept values
        names = sorted({k for c in sweep for k in c.param_dict})
        spec = {n: sorted({c.param_dict[n] for c in sweep}) for n in names}
        spec["num_warps"] = sorted({c.num_warps for c in sweep})
        spec["num_stages"] = sorted({c.num_stages for c in sweep})
    dims = [(n, tuple(v)) for n, v in spec.items() if n not in LAUNCH]
    dims += [(n, tuple(spec[n])) for n in LAUNCH]
    return SearchSpace(tuple(dims)), sweep


def _measurement(entry: dict, **extra) -> Measurement:
    ms = entry.get("median_ms")
    if "status" in entry:  # recorded repetitions
        return Measurement(
            entry["status"],
            entry["reps_ms"],
            entry["correct"],
            n_regs=entry["n_regs"],
            reason=entry["reason"],
            **extra,
        )
    if ms is None:
        return Measurement("failed", reason="failed or wrong in the sweep", **extra)
    return Measurement("ok", [ms * 0.998, ms, ms * 1.002], True, **extra)


def recorded_costs(result: dict) -> tuple[float, float]:
    """(worker start s, s per candidate) of the recorded tune run: trial 0's wall time (worker start, build,
    reference and the start's own timing) and the mean wall time per measured candidate (each batch's wall
    over its size, compilation ahead included)."""
    trials = result["tune"]["trajectory"]["trials"]
    each = [t["elapsed_s"] for t in trials[1:] if t.get("elapsed_s") and t["status"] != "rejected-limits"]
    return float(trials[0].get("elapsed_s") or 0.0), sum(each) / len(each) if each else 0.0


def replay(
    result: dict,
    exhaustive: bool = False,
    cost_s: float = 0.0,
    time_limit_s: float | None = None,
    start_s: float = 0.0,
    model: CostModel | None = None,
    screen: bool = False,
    clock: list[float] | None = None,
) -> tuple[Trajectory, dict]:
    """Run the search on one recorded kernel (the start costs ``start_s``, each other measurement
    ``cost_s`` on a fake clock, from 0 when the search starts; or what ``model`` charges for the reps it
    times); returns the trajectory and the sweep by config. ``screen``: the loop's screening, answered as
    the worker does (one rep when the first is not below the screen). ``clock``: gets the fake clock."""
    now = clock if clock is not None else [0.0]
    now[:] = [0.0]
    key = result["kernel"]
    plan = plan_tune(ROOT / (result.get("file") or ZOO_FILES[key]), result["variant"])
    space, sweep = _space(result)
    first = result["tune"]["trajectory"]["trials"][0]
    recorded = LaunchConfig.from_dict(first["config"])
    start = LaunchConfig.make(
        {k: v for k, v in recorded.param_dict.items() if k in space.names},
        recorded.num_warps,
        recorded.num_stages,
    )
    per_element = shared_estimate(start, Limits(uses_dot=bool(plan.facts.uses_dot), element_bytes=1))
    extra = {"int_args": INT_ARGS.get(key, {})}

    def measure(config):
        if model is None:
            now[0] += start_s if config is None else cost_s
        if config is None:
            launched = {**start.param_dict, "num_warps": start.num_warps, "num_stages": start.num_stages}
            start_entry = {**first, "median_ms": first["median_ms"]}
            if "status" in start_entry:
                start_entry = {"status": "ok", "correct": True, "reason": None, **start_entry}
            return _measurement(
                start_entry, launched_with=launched, shared=2 * per_element if per_element else None, **extra
            )
        return _measurement(sweep[config], **extra)  # KeyError: the search left the space

    def measure_many(configs, screen_ms=None):
        for config in configs:
            m = measure(config)
            if screen_ms is not None and m.reps_ms and m.reps_ms[0] >= screen_ms:
                m.reps_ms, m.screened = m.reps_ms[:1], True
            if model is not None:
                now[0] += model.charge(config, len(m.reps_ms) or 1)
            yield m

    trajectory = Trajectory(
        kernel_file=plan.kernel_file.name, variant=result["variant"], kernel=plan.kernel, start=start
    )
    recommender = RuleRecommender(plan.kernel, plan.source, load_rules(), plan.invariant)
    run_tune(
        trajectory,
        None,
        recommender,
        lambda m: make_limits(plan, start, m),
        space=space,
        exhaustive=exhaustive,
        time_limit_s=time_limit_s,
        clock=lambda: now[0],
        measure_many=measure_many,
        screen=screen,
    )
    return trajectory, sweep


def timed_replay(result: dict) -> tuple[Trajectory, dict]:
    """The bench's run replayed: its recorded worker start and cost per candidate, its cap ``CAP_S``."""
    start_s, each_s = recorded_costs(result)
    return replay(result, cost_s=each_s, time_limit_s=CAP_S, start_s=start_s)


def _quality(result: dict, trajectory: Trajectory, sweep: dict) -> float:
    best = min(
        s["median_ms"] for s in sweep.values() if s.get("median_ms") and s.get("correct", True) is not False
    )
    return best / sweep[trajectory.best]["median_ms"]


@pytest.mark.skipif(not CASES, reason="recorded sweeps absent")
def test_batched_search_reaches_98_percent_on_the_recorded_h200_sweeps():
    """The goal of issue 14 (>= 98% of the sweep's best on >= 90% of kernels), guided only (no whole-space
    shortcut), on 24 recorded sweeps; each stops at a local optimum before measuring the whole space."""
    qualities, fractions = {}, []
    for date, kernel, result in CASES:
        trajectory, sweep = replay(result)
        assert trajectory.stop_reason.startswith("local optimum"), (kernel, trajectory.stop_reason)
        measured = [t for t in trajectory.trials if t.status != "rejected-limits" and t.verdict != "start"]
        assert all(t.config in sweep for t in measured)
        searched = [t for t in trajectory.trials if t.rule not in ("TUNE-CONFIRM", "TUNE-FINAL")]
        assert len({t.config for t in searched}) == len(searched)  # never searched twice (only re-timed)
        qualities[f"{date} {kernel}"] = _quality(result, trajectory, sweep)
        fractions.append(trajectory.measured_trials() / len(sweep))
    good = [k for k, q in qualities.items() if q >= 0.98]
    assert len(good) >= 0.9 * len(qualities), {k: round(q, 3) for k, q in qualities.items() if q < 0.98}
    assert min(qualities.values()) >= 0.95, qualities
    assert max(fractions) < 1.0 and sum(fractions) / len(fractions) <= 0.6, fractions


@pytest.mark.skipif(not CASES, reason="recorded sweeps absent")
def test_linear_bias_gelu_leaves_the_32x32_tile_that_stopped_the_one_step_search():
    """The 42.5% miss of 2026-11-30 (the one-step search stopped at a 32x32 tile): on the sweep's timings
    the rounds reach >= 98% of the best, several dimensions away from the start."""
    result = next(r for d, k, r in CASES if k == "linear_bias_gelu")
    trajectory, sweep = replay(result)
    assert _quality(result, trajectory, sweep) >= 0.98
    assert trajectory.best.differs_in(trajectory.start) >= 3


@pytest.mark.skipif(not CASES, reason="recorded sweeps absent")
def test_a_small_space_is_measured_whole_when_it_costs_no_more_than_the_guided_rounds():
    """softmax's recorded sweep cut to num_stages 1 (6 configs, 0.3 s each on a fake clock): after the
    first round the other 2 cost less than the guided rounds' budget, so they are measured too and the stop
    reason says so; on the whole 24-config space (first round 6, rest 17 > the 12 trials left of 3 rounds)
    the search stays guided."""
    full = next(r for d, k, r in CASES if k == "softmax" and d == "2026-11-30")
    small = copy.deepcopy(full)
    small["sweep"]["space"]["num_stages"] = [1]
    small["sweep"]["results"] = [s for s in small["sweep"]["results"] if s["config"].get("num_stages") == 1]
    trajectory, sweep = replay(small, exhaustive=True, cost_s=0.3, time_limit_s=60)
    assert trajectory.stop_reason.startswith("measured the whole space (6 configs"), trajectory.stop_reason
    assert {t.config for t in trajectory.trials} >= set(sweep)
    assert _quality(small, trajectory, sweep) >= 0.98
    trajectory, _ = replay(full, exhaustive=True, cost_s=0.3, time_limit_s=60)
    assert trajectory.stop_reason.startswith("local optimum")


#: The batch order and cut before the two-H200 bench's misses were studied: the moves as generated (rules by
#: effect, one-step neighbours, line moves nearest first, no centre move), the first batch uncut, later ones
#: cut to all of the time left.
BEFORE = {
    "_ranked": lambda candidate, best, limits: candidate,
    "centre_move": lambda best, limits: [],
    "TIME_SHARE": 1.0,
    "PRIOR_CONFIG_S": 1e-9,
}


@pytest.mark.skipif(not CASES, reason="recorded sweeps absent")
def test_timed_replay_reproduces_the_cap_stops_and_the_batch_order_fixes_them(monkeypatch):
    """Under the bench's 18 s cap with each run's recorded costs: the order as it was reproduces the
    two-H200 run's "time limit of 18 s reached" after 7, 10 and 14 trials (spill, matmul, attention_fwd);
    the order by expected effect, the centre move and the cut to a share of the time left reach >= 98% of
    the sweep's best on at least 31 of the 34 sweeps (26 before), and on every one the old order reached."""
    after = {f"{d} {k}": _quality(r, *timed_replay(r)) for d, k, r in CASES}
    with monkeypatch.context() as patch:
        for name, value in BEFORE.items():
            patch.setattr(batch, name, value)
        before, runs = {}, {}
        for date, kernel, result in CASES:
            runs[f"{date} {kernel}"] = trajectory, sweep = timed_replay(result)
            before[f"{date} {kernel}"] = _quality(result, trajectory, sweep)
    for date, kernel, result in CASES:
        if date == "2026-11-30x2" and kernel in ("spill", "matmul", "attention_fwd"):
            trajectory, _ = runs[f"{date} {kernel}"]
            assert trajectory.stop_reason == result["tune"]["stop_reason"] == "time limit of 18 s reached"
            assert trajectory.measured_trials() == result["tune"]["trials"], kernel
            assert abs(before[f"{date} {kernel}"] - result["quality"]) < 0.01, kernel
    assert sum(q >= 0.98 for q in before.values()) <= 27
    assert sum(q >= 0.98 for q in after.values()) >= 31, {
        k: round(q, 3) for k, q in after.items() if q < 0.98
    }
    assert not [k for k in after if before[k] >= 0.98 > after[k]]
    assert after["2026-11-30x2 spill"] >= 0.98 and after["2026-11-30 spill"] >= 0.97
    assert after["2026-11-30x2 matmul"] > before["2026-11-30x2 matmul"] + 0.03
    assert min(after.values()) > min(before.values()) + 0.1


# ------------------------------------------------------------------ cost model of the reps policy
#: do_bench settings of the bench (bench/device/tune.sh: --warmup-ms 10 --rep-ms 40).
WARMUP_MS, REP_MS, REPS = 10.0, 40.0, 3


def rep_seconds(kernel_ms: float) -> float:
    """Wall seconds of one do_bench median: its warmup and rep windows plus the 5-call estimate and the
    first call (Triton 3.6's do_bench runs at least one call of each)."""
    return (max(WARMUP_MS, kernel_ms) + max(REP_MS, kernel_ms) + 6 * kernel_ms) / 1e3


@dataclass
class CostModel:
    """What the fake clock charges, fitted on one recorded tune run (``fit``): ``start_s`` for the start
    (worker start and the start's trial, trial 0's wall); the first batch's fixed ``pool_s`` (the compile
    pool's spawn and imports: that run's first batch cost 5-8 s whatever its size, the later ones 0.16-0.65 s
    per candidate); per candidate ``fixed_s`` (compile wait, pin, correctness check) plus ``rep_s`` per
    do_bench median it times. ``warm``: the pool was warmed during the worker's start (no ``pool_s``)."""

    start_s: float
    pool_s: float
    fixed_s: float
    rep_s: float
    warm: bool = False
    batches: int = 0

    def charge(self, config, reps: int) -> float:
        if config is None:
            return self.start_s
        first = self.batches == 0
        self.batches += 1
        return (0.0 if self.warm or not first else self.pool_s) + self.fixed_s + reps * self.rep_s

    @classmethod
    def fit(cls, result: dict, warm: bool = False) -> CostModel:
        trials = result["tune"]["trajectory"]["trials"]
        walls = [
            t["elapsed_s"] for t in trials[1:] if t.get("elapsed_s") and t["status"] != "rejected-limits"
        ]
        batches: list[list[float]] = []
        for wall in walls:  # a batch's trials carry its mean wall per candidate: runs of equal values
            if batches and abs(batches[-1][0] - wall) < 1e-9:
                batches[-1].append(wall)
            else:
                batches.append([wall])
        later = [w for b in batches[1:] for w in b]
        rep_s = rep_seconds(float(trials[0]["median_ms"]))
        first = batches[0] if batches else [0.0]
        each = sum(later) / len(later) if later else LATER_S
        each = max(each, REPS * rep_s + 0.01)
        pool_s = max(0.0, sum(first) - len(first) * each)
        return cls(float(trials[0]["elapsed_s"] or 0.0), pool_s, each - REPS * rep_s, rep_s, warm)


#: Mean wall per candidate of the later batches of the two-H200 run (0.16-0.65 s), for a run with one batch.
LATER_S = 0.3


def model_replay(result: dict, screen: bool, warm: bool) -> tuple[float, float, Trajectory]:
    """(quality, replayed tune wall s, trajectory) under the bench's cap with ``CostModel.fit``; the wall
    adds the run's recorded time outside the trials (session set-up, worker stop: 1.5-2 s)."""
    model = CostModel.fit(result, warm)
    clock = [0.0]
    trajectory, sweep = replay(result, time_limit_s=CAP_S, model=model, screen=screen, clock=clock)
    trials = result["tune"]["trajectory"]["trials"]
    wall = result["tune"].get("wall_s")  # absent in the 2026-11-22 results
    outside = wall - sum(t.get("elapsed_s") or 0.0 for t in trials) if wall else 0.0
    return _quality(result, trajectory, sweep), clock[0] + outside, trajectory


@pytest.mark.skipif(not CASES, reason="recorded sweeps absent")
def test_screening_and_the_warm_pool_under_the_cap_on_the_recorded_runs(capsys):
    """The fitted cost model (``CostModel``) on all 34 recorded sweeps under the 18 s cap: full reps as run,
    screening, and screening with the pool warmed during the worker's start (the sweep's wall then loses the
    same pool start). Screening gives the same decisions per candidate, so the quality can only change
    through the time it frees (more candidates within the cap); the wall ratio to the fresh sweep is taken on
    the 10 kernels of the two-H200 run, whose sweeps were timed from their worker's start."""
    rows = {}
    for date, kernel, result in CASES:
        runs = [
            model_replay(result, screen, warm)
            for screen, warm in ((False, False), (True, False), (True, True))
        ]
        sweep = result["sweep"].get("wall_s") if date == "2026-11-30x2" else None
        pool_s = CostModel.fit(result).pool_s
        ratios = (
            [wall / sweep for _, wall, _ in runs[:2]] + [runs[2][1] / (sweep - pool_s)] if sweep else None
        )
        rows[f"{date} {kernel}"] = ([q for q, _, _ in runs], ratios, [t.measured_trials() for *_, t in runs])
    good = [sum(q[i] >= 0.98 for q, _, _ in rows.values()) for i in range(3)]
    ratios = [[r[i] for _, r, _ in rows.values() if r] for i in range(3)]
    with capsys.disabled():
        print(
            f"\n>= 98% of the sweep's best under {CAP_S:g} s (full reps / screen / screen+warm pool): {good}"
        )
        print(
            "tune/sweep wall on the two-H200 run, mean and max:",
            [(round(sum(r) / len(r), 2), round(max(r), 2)) for r in ratios],
        )
        print(
            "at most half the sweep's wall:", [sum(x <= 0.5 for x in r) for r in ratios], "of", len(ratios[0])
        )
        for name, (q, r, n) in rows.items():
            shown = r and [round(x, 2) for x in r]
            print(f"  {name:36s} quality {[round(x, 3) for x in q]} trials {n} ratio {shown}")
    # screening alone: the same decisions, only faster, so no kernel measures fewer candidates or ends worse
    assert all(n[1] >= n[0] or q[1] >= q[0] for q, _, n in rows.values())
    assert good[1] >= good[0] >= 30 and good[2] >= good[0]
    assert sum(ratios[1]) < sum(ratios[0])
