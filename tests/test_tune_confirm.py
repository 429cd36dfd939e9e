"""The confirmation step of tune's search (``keep``): a candidate that beats the best's median by the
threshold but overlaps its repetitions is timed again beside the best, and kept only when the gain shows
again. The case is matmul's on the H200 (bench/results/2026-11-30-tune-h200x2-s3/bench_tune.json, trials 10
and 16): the best's reps 0.2224/0.2437/0.2426 ms, the sweep's best config 0.2018/0.2132/0.2226 ms, reverted
by 0.0002 ms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ncu_advisor.analysis.trajectory import Trajectory
from ncu_advisor.collect.tune.keep import CONFIRM_RULE, ambiguous_gain, confirm_verdict, decide
from ncu_advisor.collect.tune.loop import Measurement, Recommendation, run_tune
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.space import Limits, TuneConfig

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "bench" / "results" / "2026-11-30-tune-h200x2-s3" / "bench_tune.json"
START = TuneConfig.make({"BLOCK": 64}, 4, 3)
SPACE = SearchSpace((("BLOCK", (64, 128, 256)), ("num_warps", (4,)), ("num_stages", (3,))))


def _matmul_reps() -> tuple[list[float], list[float]]:
    if not RUN.exists():
        pytest.skip("the recorded run is not in this checkout")
    trials = next(r for r in json.loads(RUN.read_text())["results"] if r["kernel"] == "matmul")["tune"][
        "trajectory"
    ]["trials"]
    return trials[10]["reps_ms"], trials[16]["reps_ms"]


def test_the_recorded_matmul_pair_is_ambiguous_under_the_keep_test():
    best, candidate = _matmul_reps()
    keep, why = decide(candidate, best)
    assert not keep and "within the noise" in why
    gain = ambiguous_gain(Measurement("ok", candidate, True), Measurement("ok", best, True))
    assert gain is not None and 0.10 < gain < 0.13


def test_a_gain_below_the_threshold_or_a_failed_candidate_is_not_ambiguous():
    best = Measurement("ok", [1.0, 1.0, 1.0], True)
    assert ambiguous_gain(Measurement("ok", [0.99, 0.99, 0.99], True), best) is None
    assert ambiguous_gain(Measurement("failed", [], None, reason="boom"), best) is None


def test_confirm_verdict_needs_the_gain_again_in_the_fresh_pair():
    best = Measurement("ok", [1.0, 1.0, 1.0], True)
    keep, why = confirm_verdict(0.12, Measurement("ok", [0.9, 0.91, 0.9], True), best)
    assert keep and why.startswith("confirmed: +12.0% at first")
    keep, why = confirm_verdict(0.12, Measurement("ok", [0.99, 0.99, 1.0], True), best)
    assert not keep and why.startswith("not confirmed")


def _run(reps_by_block: dict[int, list[list[float]]], events: list | None = None) -> Trajectory:
    """The search over BLOCK 64/128/256; each timing of a config pops its next list of reps. ``events``:
    records each batch measured (``("measure", [BLOCK, ...])``) and each call of the quiet hook."""
    calls: dict[int, int] = {}
    log = events if events is not None else []

    def worker(configs, screen_ms=None):
        log.append(("measure", [(c or START).param_dict["BLOCK"] for c in configs]))
        for config in configs:
            block = (config or START).param_dict["BLOCK"]
            n = calls.get(block, 0)
            calls[block] = n + 1
            series = reps_by_block[block]
            reps = list(series[min(n, len(series) - 1)])
            if screen_ms is not None and reps[0] >= screen_ms:
                reps = reps[:1]
            yield Measurement("ok", reps, True, screened=len(reps) == 1, launched_with={"BLOCK": 64})

    trajectory = Trajectory(kernel_file="k.py", variant="V", kernel="k", start=START)
    return run_tune(
        trajectory, None, lambda c, m: Recommendation(), lambda m: Limits(uses_dot=False, min_block=1),
        measure_many=worker, space=SPACE, exhaustive=False, screen=True,
        quiet=lambda close: log.append(("quiet", close)),
    )


def test_a_within_noise_gain_that_shows_again_is_kept_after_its_confirmation():
    best, candidate = _matmul_reps()
    trajectory = _run({64: [best, [0.243, 0.242, 0.244]], 128: [[0.3, 0.3, 0.3]],
                       256: [candidate, [0.213, 0.212, 0.214]]})
    confirm = [t for t in trajectory.trials if t.rule == CONFIRM_RULE]
    assert [t.config.param_dict["BLOCK"] for t in confirm] == [64, 256]
    assert confirm[1].verdict == "kept" and confirm[1].why.startswith("confirmed")
    assert trajectory.best == START.replace({"BLOCK": 256})
    assert trajectory.best_median_ms == pytest.approx(0.213)


def test_a_within_noise_gain_that_does_not_show_again_is_reverted():
    best, candidate = _matmul_reps()
    trajectory = _run({64: [best, [0.243, 0.242, 0.244]], 128: [[0.3, 0.3, 0.3]],
                       256: [candidate, [0.246, 0.245, 0.247]]})
    confirm = [t for t in trajectory.trials if t.rule == CONFIRM_RULE]
    assert confirm and all(t.verdict == "reverted" for t in confirm)
    assert trajectory.best == START
    # the final pick times the near-tie once more beside the best (still slower): the best stays
    final = [t for t in trajectory.trials if t.rule == "TUNE-FINAL"]
    assert [(t.config.param_dict["BLOCK"], t.verdict) for t in final] == [(64, "kept"), (256, "reverted")]


def test_the_final_pick_ends_on_a_near_tie_that_is_faster_when_timed_again():
    # 256 gains 1% (under the 2% threshold: reverted by the search), and is faster again when re-timed
    trajectory = _run({64: [[1.0, 1.001, 1.002]], 128: [[1.3, 1.3, 1.3]], 256: [[0.99, 0.991, 0.992]]})
    final = [t for t in trajectory.trials if t.rule == "TUNE-FINAL"]
    assert [(t.config.param_dict["BLOCK"], t.verdict) for t in final] == [(64, "reverted"), (256, "kept")]
    assert len(final[1].reps_ms) == 6 and final[1].why.startswith("final pick (fastest")
    assert trajectory.best == START.replace({"BLOCK": 256})
    assert trajectory.best_median_ms == pytest.approx(0.991)


def test_the_pool_is_quieted_before_the_confirmation_and_closed_before_the_final_pick():
    """Timings that settle a choice run with no compile ahead beside them (``ahead.AheadCompiler.quiet``):
    the confirmation's pair after ``quiet(False)`` (drop the guesses, wait for the running compiles), the
    final pick after ``quiet(True)`` (the pool closed); the search's own batches without."""
    best, candidate = _matmul_reps()
    events: list = []
    _run({64: [best, [0.243, 0.242, 0.244]], 128: [[0.3, 0.3, 0.3]], 256: [candidate, [0.246, 0.245, 0.247]]},
         events)
    quiets = [i for i, e in enumerate(events) if e[0] == "quiet"]
    assert [events[i][1] for i in quiets] == [False, True]
    assert events[quiets[0] + 1] == ("measure", [64, 256])  # the confirmation: the best, then the candidate
    assert events[quiets[1] + 1][0] == "measure" and quiets[1] + 2 == len(events)  # the final pick, last
    assert events[0] == ("measure", [64]) and ("quiet", False) not in events[:2]  # the start: not quieted

