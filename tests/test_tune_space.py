"""Candidate generation: both directions, GPU limits, ordering by the rules' effect, dedup, no re-trying."""

from __future__ import annotations

from ncu_advisor.collect.tune.space import (
    NEIGHBOUR_RULE,
    Limits,
    Move,
    TuneConfig,
    generate_candidates,
    shared_estimate,
    violations,
)

SEED001 = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)
DOT = Limits(uses_dot=True, extents={"BLOCK_N": 128, "BLOCK_K": 576})


def _configs(candidates):
    return [c.config for c in candidates]


def test_neighbours_move_both_directions_on_every_dimension():
    candidates, _ = generate_candidates(SEED001, [], DOT)
    configs = set(_configs(candidates))
    for name in ("BLOCK_M", "BLOCK_N", "BLOCK_K"):
        value = SEED001.param_dict[name]
        assert SEED001.replace({name: value // 2}) in configs
        assert SEED001.replace({name: value * 2}) in configs
    assert SEED001.replace(num_warps=8) in configs
    # one step along the stage choices (2, 3, 4): 3; a jump to 4 comes from repeating a kept step
    assert SEED001.replace(num_stages=3) in configs and SEED001.replace(num_stages=4) not in configs
    assert SEED001 not in configs
    assert all(c.rule == NEIGHBOUR_RULE for c in candidates)


def test_ordered_by_effect_then_fewest_changes():
    moves = [
        Move("NA105", 0.32, "block_scale", 0.5, None, "halve all"),
        Move("SRC-INVARIANT-LOAD", 0.75, "block_set", 128, "BLOCK_N", "cover C_out"),
        Move("NA203", 0.10, "num_warps", 8, None, "warps"),
    ]
    candidates, _ = generate_candidates(SEED001, moves, DOT)
    assert [c.rule for c in candidates[:3]] == ["SRC-INVARIANT-LOAD", "NA105", "NA203"]
    assert candidates[0].config == SEED001.replace({"BLOCK_N": 128})
    assert candidates[1].config == TuneConfig.make({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 16}, 4, 2)
    effects = [c.effect for c in candidates]
    assert effects == sorted(effects, reverse=True)


def test_dedup_keeps_the_largest_effect_for_one_config():
    moves = [Move("A", 0.2, "num_warps", 8), Move("B", 0.4, "num_warps", 8)]
    candidates, _ = generate_candidates(SEED001, moves, DOT)
    eights = [c for c in candidates if c.config == SEED001.replace(num_warps=8)]
    assert len(eights) == 1 and eights[0].rule == "B"
    assert len(_configs(candidates)) == len(set(_configs(candidates)))


def test_never_proposes_a_tried_config():
    first, _ = generate_candidates(SEED001, [], DOT)
    tried = {SEED001, *_configs(first[:3])}
    second, _ = generate_candidates(SEED001, [], DOT, tried)
    assert not tried & set(_configs(second))
    assert len(second) == len(first) - 3


def test_limits_extent_power_of_two_threads_and_min_block():
    small = TuneConfig.make({"BLOCK_M": 16, "BLOCK_N": 128, "BLOCK_K": 32}, 4, 2)
    candidates, dropped = generate_candidates(small, [], DOT)
    configs = set(_configs(candidates))
    assert small.replace({"BLOCK_M": 8}) not in configs  # below the tl.dot minimum of 16
    assert small.replace({"BLOCK_N": 256}) not in configs  # BLOCK_N beyond C_out = 128
    reasons = dict(dropped)
    assert "exceeds the extent 128" in reasons[small.replace({"BLOCK_N": 256})]
    assert "< 16" in reasons[small.replace({"BLOCK_M": 8})]
    assert violations(small.replace({"BLOCK_M": 48}), DOT) == ["BLOCK_M=48 is not a power of two"]
    assert any("threads" in v for v in violations(small.replace(num_warps=64), DOT))


def test_shared_memory_and_accumulator_estimates():
    big = TuneConfig.make({"BLOCK_M": 256, "BLOCK_N": 128, "BLOCK_K": 128}, 8, 4)
    # 4 stages * (256*128 + 128*128) * 4 bytes, computed by hand
    assert shared_estimate(big, DOT) == 4 * (256 * 128 + 128 * 128) * 4
    assert any("shared memory estimate" in v for v in violations(big, DOT))
    acc = TuneConfig.make({"BLOCK_M": 256, "BLOCK_N": 128, "BLOCK_K": 16}, 4, 2)
    assert any("accumulator alone needs 256 registers" in v for v in violations(acc, DOT))
    assert not violations(acc.replace(num_warps=8), DOT)
    # not a dot kernel: no shared estimate, no accumulator limit
    assert shared_estimate(big, Limits()) is None


def test_elementwise_single_block_dimension():
    start = TuneConfig.make({"BLOCK_SIZE": 64}, 8, 3)
    candidates, _ = generate_candidates(start, [], Limits(min_block=32))
    configs = set(_configs(candidates))
    assert start.replace({"BLOCK_SIZE": 128}) in configs
    assert start.replace({"BLOCK_SIZE": 32}) in configs
    assert start.replace(num_warps=4) in configs
    assert TuneConfig.from_dict(start.as_dict()) == start
    assert start.label() == "BLOCK_SIZE=64 w8 s3"


def test_floor_applies_to_dot_operand_tiles_only():
    # a head count (BLOCK_H = 1) is not an element count: no floor of 16 or 32 for it
    rope = TuneConfig.make({"BLOCK_H": 1, "BLOCK_D": 64}, 4, 2)
    limits = Limits(min_block=16, uses_dot=False, dot_params=("BLOCK_M", "BLOCK_N", "BLOCK_K"))
    assert violations(rope, limits) == []
    candidates, _ = generate_candidates(rope, [], limits)
    assert rope.replace({"BLOCK_H": 2}) in set(_configs(candidates))
    dot = Limits(min_block=16, uses_dot=True, dot_params=("BLOCK_M", "BLOCK_N", "BLOCK_K"))
    assert violations(SEED001.replace({"BLOCK_K": 8}), dot) == ["BLOCK_K=8 < 16"]


def test_allowed_values_give_the_adjacent_neighbours_and_group_params_move_too():
    start = TuneConfig.make({"BLOCK_M": 32, "GROUP_M": 8}, 2, 3)
    limits = Limits(
        allowed={"BLOCK_M": (16, 32, 128), "GROUP_M": (1, 4, 8, 16)},
        warp_choices=(1, 2, 4, 8, 16, 32),
        stage_choices=(1, 2, 3, 4, 5, 6),
    )
    configs = set(_configs(generate_candidates(start, [], limits)[0]))
    assert start.replace({"BLOCK_M": 128}) in configs and start.replace({"BLOCK_M": 16}) in configs
    assert start.replace({"GROUP_M": 4}) in configs and start.replace({"GROUP_M": 16}) in configs
    assert {c.num_warps for c in configs} == {1, 2, 4} and {c.num_stages for c in configs} == {2, 3, 4}


def test_a_malformed_yaml_space_file_is_one_line_naming_the_line(tmp_path):
    """PyYAML's own text spans 8 lines with a caret and ``in "<unicode string>"`` (new user 9); the error is
    one line: the file, the line and the problem (``errors.yaml_problem``, as the rule loader's)."""
    import pytest

    from ncu_advisor.collect.tune.searchspace import read_space_file
    from ncu_advisor.errors import InputError

    bad = tmp_path / "space.yaml"
    bad.write_text("BLOCK_M: [64, 128\nnum_warps: {min: 2\n")
    with pytest.raises(InputError) as caught:
        read_space_file(bad)
    text = caught.value.render()
    assert "\n" not in text and "line 2: malformed YAML: expected ',' or ']'" in text and str(bad) in text
