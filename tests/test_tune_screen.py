"""Screening (``run_tune(screen=True)``, tune's default): each candidate is timed once, and its other reps
only when that first rep is below the best's fastest rep; the keep decision still rests on every rep.

The stand-in ``measure_many(configs, screen_ms)`` behaves as the worker does (``worker_child.Worker._bench``)
on fixed reps per configuration, so screened and unscreened runs see the same timings."""

from __future__ import annotations

from ncu_advisor.analysis.trajectory import Trajectory
from ncu_advisor.collect.tune.loop import Measurement, Recommendation, run_tune
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.space import Limits, TuneConfig

START = TuneConfig.make({"BLOCK": 64}, 4, 3)
SPACE = SearchSpace((("BLOCK", (64, 128, 256, 512, 1024)), ("num_warps", (1, 2, 4, 8)), ("num_stages", (3,))))


def _reps(config: TuneConfig | None) -> list[float]:
    """A smooth surface (best BLOCK 512, 8 warps) with +-0.4% spread, fixed per configuration."""
    c = config or START
    block, warps = c.param_dict["BLOCK"], c.num_warps
    ms = 1.0 + 0.3 * abs(block.bit_length() - 10) + 0.2 * abs(warps.bit_length() - 4)
    return [ms * (1 + d) for d in (0.002, -0.004, 0.004)]


class Worker:
    """Times what it is given as the real worker does: one rep, the rest only below ``screen_ms``."""

    def __init__(self, reps=_reps):
        self.reps = reps
        self.timed = 0

    def __call__(self, configs, screen_ms=None):
        for config in configs:
            reps = self.reps(config)
            if screen_ms is not None and reps[0] >= screen_ms:
                reps = reps[:1]
            self.timed += len(reps)
            yield Measurement("ok", reps, True, screened=len(reps) == 1, launched_with={"BLOCK": 64})


def _run(worker, screen: bool) -> Trajectory:
    trajectory = Trajectory(kernel_file="k.py", variant="V", kernel="k", start=START)
    limits = Limits(uses_dot=False, min_block=1)
    return run_tune(
        trajectory,
        None,
        lambda config, m: Recommendation(),
        lambda m: limits,
        measure_many=worker,
        space=SPACE,
        exhaustive=False,
        screen=screen,
    )


def test_a_candidate_faster_on_one_rep_only_is_not_kept_and_a_real_gain_is_kept_on_all_reps():
    lucky = START.replace({"BLOCK": 128})  # first rep 8% faster, the others slower than the start
    real = START.replace({"BLOCK": 256})  # 10% faster on every rep
    slow = START.replace({"BLOCK": 1024})  # first rep already slower: timed once

    def reps(config):
        if config == lucky:
            return [0.92, 1.01, 1.02]
        if config == real:
            return [0.90, 0.905, 0.91]
        if config == slow:
            return [1.2, 1.2, 1.2]
        return [1.0, 1.001, 1.002] if config in (None, START) else [5.0, 5.0, 5.0]

    worker = Worker(reps)
    trajectory = _run(worker, screen=True)
    by_config = {t.config: t for t in trajectory.trials}
    assert by_config[lucky].verdict == "reverted" and len(by_config[lucky].reps_ms) == 3
    assert by_config[lucky].median_ms == 1.01  # the median of the three, not the lucky first rep
    assert by_config[real].verdict == "kept" and by_config[real].reps_ms == [0.90, 0.905, 0.91]
    assert trajectory.best == real and trajectory.best_median_ms == 0.905
    assert by_config[slow].verdict == "reverted" and by_config[slow].reps_ms == [1.2]
    assert by_config[slow].why.startswith("screened out: its first rep 1.2 ms >= the best's fastest rep")
    assert trajectory.options["screened"] >= 1


def test_screening_gives_the_decisions_of_full_reps_with_fewer_reps_timed():
    full, screened = Worker(), Worker()
    a, b = _run(full, screen=False), _run(screened, screen=True)
    assert [(t.config, t.verdict == "kept") for t in a.trials] == [
        (t.config, t.verdict == "kept") for t in b.trials
    ]
    assert a.best == b.best == START.replace({"BLOCK": 512}, num_warps=8)
    assert a.best_median_ms == b.best_median_ms and a.stop_reason == b.stop_reason
    assert b.options["screened"] >= 5  # each screened-out candidate was timed once instead of 3 times
    assert full.timed - screened.timed == 2 * b.options["screened"]
    assert all(len(t.reps_ms) == 3 for t in b.trials if t.verdict in ("start", "kept"))
