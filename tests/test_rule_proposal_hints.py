"""Proposal hints of the shipped rules (issue 13): a hint that reads a finding's evidence must name something
the evidence holds, and numbers stay in range; a broken user rule is a load error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncu_advisor.errors import RuleError
from ncu_advisor.rules.loader import parse_rule_text

ROOT = Path(__file__).resolve().parents[1]
NA322, NA312 = "NA322-tiny-blocks.yaml", "NA312-dot-tile-grow.yaml"


@pytest.mark.parametrize(
    ("rule_file", "old", "new", "says"),
    [
        (NA322, "tile_evidence: elements_per_program", "tile_evidence: nope", "tile_evidence"),
        # an alias is not in the evidence (required metrics are there by their ncu names)
        (NA322, "tile_evidence: elements_per_program", "tile_evidence: grid_size", "evidence"),
        (NA322, "{warps_fit_tile: 8", "{warps_fit_tile: 0", "warps_fit_tile"),
        (NA312, "block_floor: {BLOCK_K: 64}", "block_floor: {BLOCK_K: -1}", "block_floor"),
        (NA312, "block_floor: {BLOCK_K: 64}", "block_floor: {'a b': 64}", "block_floor"),
        (
            "NA307-grid-too-small.yaml",
            "split_fill: launch__waves_per_multiprocessor",
            "split_fill: waves",
            "split_fill",
        ),
    ],
)
def test_hints_naming_nothing_or_out_of_range_are_refused(
    rule_file: str, old: str, new: str, says: str
) -> None:
    text = (ROOT / "rules" / rule_file).read_text()
    assert old in text
    parse_rule_text(text, Path(rule_file))  # the shipped rule loads
    with pytest.raises(RuleError, match=says):
        parse_rule_text(text.replace(old, new), Path(rule_file))
