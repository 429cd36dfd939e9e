"""One round of the batched search (``batch.round_batch``) and the loop's batch-level decisions: the
whole-space shortcut from the measured per-config cost, and batches trimmed to the time left."""

from __future__ import annotations

import dataclasses

from ncu_advisor.analysis.trajectory import Trajectory
from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.batch import (
    LINE_RULE,
    PAIR_RULE,
    PRIOR_CONFIG_S,
    TIME_SHARE,
    batch_size_for_time,
    centre_move,
    line_moves,
    pair_moves,
    round_batch,
    spread_score,
)
from ncu_advisor.collect.tune.loop import run_tune
from ncu_advisor.collect.tune.recommend import Recommendation
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.space import Limits, Move, TuneConfig

SPACE = SearchSpace(
    (
        ("BLOCK_K", (32, 64)),
        ("BLOCK_M", (32, 64, 128)),
        ("BLOCK_N", (32, 64, 128)),
        ("num_warps", (4, 8)),
        ("num_stages", (1, 3)),
    )
)
LIMITS = Limits(
    uses_dot=True,
    element_bytes=2,
    allowed={n: v for n, v in SPACE.dims if n.startswith("BLOCK")},
    warp_choices=(4, 8),
    stage_choices=(1, 3),
    snap=True,
)
START = TuneConfig.make({"BLOCK_K": 32, "BLOCK_M": 32, "BLOCK_N": 32}, 4, 1)


def test_line_moves_cover_every_value_of_each_dimension_nearest_first():
    moves = line_moves(START, LIMITS)
    assert {m.rule for m in moves} == {LINE_RULE}
    assert all(m.config.differs_in(START) == 1 for m in moves)
    n_values = [m.config.param_dict["BLOCK_N"] for m in moves if m.config.param_dict["BLOCK_N"] != 32]
    assert n_values == [64, 128]  # two steps along BLOCK_N, in order
    assert len(moves) == 1 + 2 + 2 + 1 + 1  # K, M, N, warps, stages: every other value


def test_line_moves_without_a_space_step_powers_of_two_within_reach():
    config = TuneConfig.make({"BLOCK_SIZE": 64}, 4, 2)
    moves = line_moves(config, Limits(), reach=3)
    values = sorted(m.config.param_dict["BLOCK_SIZE"] for m in moves if m.config.num_warps == 4)
    values = [v for v in values if v != 64]  # the num_warps / num_stages moves keep BLOCK_SIZE 64
    assert values == [8, 16, 32, 128, 256, 512]


def test_pair_moves_reach_the_linear_bias_gelu_best_direction():
    """Two tiles up together, with num_warps up too: the coupled move a one-step search cannot make."""
    configs = {m.config for m in pair_moves(START, LIMITS)}
    assert START.replace({"BLOCK_M": 64, "BLOCK_N": 64}, num_warps=8) in configs
    assert START.replace({"BLOCK_M": 64, "BLOCK_N": 64}) in configs
    assert START.replace({"BLOCK_K": 64}, num_stages=3) in configs  # tile with stages
    assert START.replace(num_warps=8, num_stages=3) in configs
    assert all(m.rule == PAIR_RULE for m in pair_moves(START, LIMITS))


def test_round_batch_puts_rule_moves_first_and_stays_inside_limits_and_untried():
    rule = Move("NA312", 0.3, "block_scale", 2.0, "BLOCK_M,BLOCK_N", "grow the dot tile")
    tried = {START.replace({"BLOCK_K": 64})}
    batch, _ = round_batch(START, [rule], LIMITS, tried)
    assert batch[0].rule == "NA312" and batch[0].config == START.replace({"BLOCK_M": 64, "BLOCK_N": 64})
    configs = [c.config for c in batch]
    assert len(configs) == len(set(configs)) and START not in configs and not tried & set(configs)
    assert all(SPACE.contains(c) for c in configs)
    tight = dataclasses.replace(LIMITS, max_registers=32)  # the 128x128 accumulator no longer fits
    assert all(
        c.config.param_dict["BLOCK_M"] * c.config.param_dict["BLOCK_N"] // (32 * c.config.num_warps) <= 32
        for c in round_batch(START, [], tight)[0]
    )


def _surface(config: TuneConfig) -> float:
    p = config.param_dict
    return 1.0 + abs(p["BLOCK_M"] - 64) / 64 + abs(p["BLOCK_N"] - 128) / 128 + (config.num_warps != 8) * 0.3


SMALL = SearchSpace(
    (
        ("BLOCK_K", (32,)),
        ("BLOCK_M", (32, 64)),
        ("BLOCK_N", (32, 64, 128)),
        ("num_warps", (4, 8)),
        ("num_stages", (1,)),
    )
)


def _run(
    cost_s: float, time_limit_s: float | None = None, budget: int | None = None, space: SearchSpace = SPACE
) -> Trajectory:
    now = [0.0]

    def measure(config):
        now[0] += cost_s
        ms = _surface(config or START)
        return Measurement("ok", [ms * 0.999, ms, ms * 1.001], True)

    trajectory = Trajectory(kernel_file="k.py", variant="V", kernel="k", start=START)
    return run_tune(
        trajectory,
        measure,
        lambda c, m: Recommendation(),
        lambda m: dataclasses.replace(LIMITS, allowed={}, snap=False),
        space=space,
        clock=lambda: now[0],
        time_limit_s=time_limit_s,
        budget=budget,
    )


def test_the_whole_space_is_measured_when_it_fits_the_guided_budget_and_time():
    """12 configs: after a first round of 5 the other 6 cost less than the 3 rounds of 5 the guided search
    is expected to take, and fit the time left: all of them are measured and the stop reason says so."""
    best = START.replace({"BLOCK_M": 64, "BLOCK_N": 128}, num_warps=8)
    result = _run(cost_s=0.1, time_limit_s=60, space=SMALL)
    assert result.stop_reason.startswith("measured the whole space (12 configs")
    assert "0.10 s per config" in result.stop_reason
    assert result.measured_trials() == 12 and result.best == best  # the start is one of the 12
    # the 72-config space: more than the guided rounds are expected to measure, so guided
    large = _run(cost_s=0.1, time_limit_s=60)
    assert large.stop_reason.startswith("local optimum") and large.measured_trials() < 72
    assert _surface(large.best) == _surface(best)  # BLOCK_K does not matter on this surface
    # too slow for the time left (1 s per config, 8 s): guided rounds instead
    slow = _run(cost_s=1.0, time_limit_s=8, space=SMALL)
    assert not slow.stop_reason.startswith("measured the whole space")
    # a budget smaller than the space: never the whole space
    capped = _run(cost_s=0.1, budget=10, space=SMALL)
    assert capped.measured_trials() <= 10 and not capped.stop_reason.startswith("measured")


def test_batches_are_trimmed_to_the_time_left_at_the_measured_cost():
    """1 s per config, 20 s allowed: once the first batch has given the cost, every batch is cut to what fits
    in the time left, so the search ends within one config of the limit instead of a whole batch past it."""
    result = _run(cost_s=1.0, time_limit_s=20)
    assert result.stop_reason.startswith("time limit of 20 s")
    assert 15 <= result.measured_trials() <= 21


def test_batch_order_puts_far_moves_from_an_extreme_before_near_neighbours():
    """num_warps 1 of 1-16 and the largest BLOCK_SIZE: the line-search endpoints toward the middle lead the
    batch (a time cut keeps them), the one-step neighbours follow, moves off the end of the list come last;
    a rule's move stays ahead of them all."""
    limits = Limits(allowed={"BLOCK_SIZE": (256, 512, 1024, 2048, 4096, 8192)}, warp_choices=(1, 2, 4, 8, 16))
    start = TuneConfig.make({"BLOCK_SIZE": 8192}, 1, 3)
    rule = Move("NA309", 0.3, "block_scale", 0.5, None, "halve every BLOCK")
    batch, _ = round_batch(start, [rule], limits)
    order = [(c.config.param_dict["BLOCK_SIZE"], c.config.num_warps) for c in batch]
    assert order[0] == (4096, 1)  # the rule's move
    assert set(order[1:3]) == {(1024, 1), (8192, 8)}  # three steps toward the middle
    assert order.index((8192, 2)) > order.index((8192, 4)) > order.index((8192, 8))
    assert order.index((2048, 1)) < order.index((8192, 2))
    middle = TuneConfig.make({"BLOCK_SIZE": 1024}, 4, 3)
    assert spread_score(middle, middle.replace({"BLOCK_SIZE": 4096}), limits) > spread_score(
        middle, middle.replace({"BLOCK_SIZE": 2048}), limits
    )
    edge = TuneConfig.make({"BLOCK_SIZE": 256}, 4, 3)  # away from the middle scores below toward it
    assert spread_score(edge, edge.replace(num_warps=2), limits) < spread_score(
        edge, edge.replace({"BLOCK_SIZE": 512}), limits
    )


def test_centre_move_sets_every_dimension_to_the_middle_of_its_values():
    start = TuneConfig.make({"BLOCK_K": 16, "BLOCK_M": 16, "BLOCK_N": 16}, 1, 1)
    limits = dataclasses.replace(LIMITS, allowed={"BLOCK_K": (32, 64), "BLOCK_M": (64, 128, 256)})
    (move,) = centre_move(start, limits)
    assert move.config == TuneConfig.make({"BLOCK_K": 32, "BLOCK_M": 128, "BLOCK_N": 16}, 4, 1)
    assert centre_move(move.config, limits) == []  # already there
    assert centre_move(start.replace({"BLOCK_K": 32, "BLOCK_M": 128}, num_warps=4), limits) == []  # one dim


def test_batch_size_for_time_keeps_room_for_a_second_round():
    assert batch_size_for_time(None, 1.0, 12) == 12
    assert batch_size_for_time(10.0, 1.0, 12) == int(TIME_SHARE * 10)
    assert batch_size_for_time(10.0, 0.0, 40) == int(TIME_SHARE * 10 / PRIOR_CONFIG_S)  # cost unknown yet
    assert batch_size_for_time(0.1, 1.0, 12) == 1
    assert batch_size_for_time(100.0, 1.0, 5) == 5


def test_a_cut_batch_that_keeps_nothing_goes_on_with_the_rest_of_its_round():
    """The start is the fastest config and the time limit cuts the first batch: the next batch measures the
    rest of the coordinate round (line and neighbour moves), not the coupled round's pair moves."""
    now = [0.0]

    def measure(config):
        now[0] += 1.0
        ms = 1.0 if config is None else 2.0
        return Measurement("ok", [ms * 0.999, ms, ms * 1.001], True)

    limits = dataclasses.replace(LIMITS, allowed={}, snap=False)
    coordinate = {c.config for c in round_batch(START, [], limits)[0]}
    limit = 1 + len(coordinate) + 2.0  # the first batch is cut to TIME_SHARE of it
    trajectory = Trajectory(kernel_file="k.py", variant="V", kernel="k", start=START)
    run_tune(
        trajectory,
        measure,
        lambda c, m: Recommendation(),
        lambda m: limits,
        clock=lambda: now[0],
        time_limit_s=limit,
    )
    first = int(TIME_SHARE * (limit - 1) / PRIOR_CONFIG_S)
    assert first < len(coordinate) < trajectory.measured_trials() - 1
    measured = [t.config for t in trajectory.trials[1:]]
    assert set(measured[: len(coordinate)]) == coordinate
    assert trajectory.stop_reason.startswith("time limit")
