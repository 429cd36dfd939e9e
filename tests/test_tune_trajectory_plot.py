"""The time-per-trial SVG of a tune trajectory."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from ncu_advisor.analysis.trajectory import Trajectory, Trial
from ncu_advisor.collect.tune.space import TuneConfig
from ncu_advisor.render.plot import COLOURS, trajectory_svg

START = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32}, 4, 2)


def _trial(index, config, verdict, ms, why="x"):
    status = "ok" if ms else "failed"
    return Trial(
        index, config, "R<&>" if index == 2 else "start", 0.0, "", status, verdict, why, median_ms=ms
    )


def test_svg_has_one_bar_per_trial_scaled_to_the_slowest_and_escapes_text():
    wide = START.replace({"BLOCK_N": 128})
    trajectory = Trajectory("k.py", "ModelNew_seed001", "conv", START, best=wide, best_median_ms=10.0)
    trajectory.trials = [
        _trial(0, START, "start", 40.0),
        _trial(1, wide, "kept", 10.0),
        _trial(2, START.replace({"BLOCK_M": 64}), "rejected", None, why="OutOfResources <shared>"),
    ]
    svg = trajectory_svg(trajectory)
    root = ElementTree.fromstring(svg)  # well-formed, the & and < escaped
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert [b.get("fill") for b in bars] == [COLOURS["start"], COLOURS["kept"], COLOURS["rejected"]]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] / heights[1] == pytest.approx(4.0, rel=0.01)  # 40 ms vs 10 ms
    assert heights[2] == 4.0  # a rejected trial is a short mark
    assert "OutOfResources <shared>" in bars[2].find(f"{ns}title").text
    assert any("best 10 ms" in (t.text or "") for t in root.iter(f"{ns}title"))
