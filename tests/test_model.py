"""The package's one launch-config type (ncu_advisor.model.LaunchConfig)."""

from __future__ import annotations

from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.model import LaunchConfig, Proposal
from ncu_advisor.render.paste import METHOD_AUTOTUNE, paste_text


def test_params_dict_or_pairs_give_one_hashable_value() -> None:
    from_dict = LaunchConfig({"BLOCK_N": 32, "BLOCK_M": 64}, 4, 2)  # type: ignore[arg-type]
    from_pairs = LaunchConfig.make({"BLOCK_M": 64, "BLOCK_N": 32}, 4, 2)
    assert from_dict == from_pairs
    assert from_dict.params == (("BLOCK_M", 64), ("BLOCK_N", 32))
    assert len({from_dict, from_pairs}) == 1
    assert from_dict.label() == "BLOCK_M=64 BLOCK_N=32 w4 s2"
    assert LaunchConfig.from_dict(from_dict.as_dict()) == from_dict
    assert from_dict.replace({"BLOCK_N": 64}, num_stages=3).differs_in(from_dict) == 2


def test_tune_keeps_its_name_for_the_same_type() -> None:
    assert TuneConfig is LaunchConfig


def test_proposal_and_paste_give_the_same_triton_config() -> None:
    proposal = Proposal({"BLOCK_M": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3)
    config = proposal.config
    assert isinstance(config, LaunchConfig)
    line = "triton.Config({'BLOCK_K': 32, 'BLOCK_M': 64}, num_warps=8, num_stages=3)"
    assert config.as_triton_config() == line
    assert line in paste_text(config, "matmul_kernel", METHOD_AUTOTUNE, ["M", "N"])
