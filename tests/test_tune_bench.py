"""bench/bench_tune.py's bookkeeping on the CPU: the sweep/tune comparison and the pass/fail verdict,
with the in-process GPU measure replaced by a made-up cost surface (the GPU run is the lead's)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from ncu_advisor.collect.tune.loop import Measurement
from ncu_advisor.collect.tune.space import TuneConfig

ROOT = Path(__file__).resolve().parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_tune_under_test", ROOT / "bench" / "bench_tune.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Surface:
    def __init__(self, cost, start):
        self.cost, self.start, self.calls = cost, start, 0

    def measure(self, config):
        self.calls += 1
        ms = self.cost(config or self.start)
        return Measurement(
            "ok",
            [ms * 0.999, ms, ms * 1.001],
            True,
            n_regs=187,
            int_args={"C_out": 128, "C_in": 64, "KH": 3, "KW": 3},
            launched_with={
                **self.start.param_dict,
                "num_warps": self.start.num_warps,
                "num_stages": self.start.num_stages,
            },
        )


def seed_cost(config: TuneConfig) -> float:
    p = config.param_dict
    return (
        10.0
        * math.ceil(128 / p["BLOCK_N"])
        * (1 + 0.1 * abs(math.log2(p["BLOCK_M"] / 128)))
        * (1.0 if config.num_warps == 4 else 1.05)
        * (1.0 if config.num_stages == 2 else 1.02)
    )


def test_seed001_case_passes_on_a_surface_where_the_invariant_fix_wins():
    bench = _bench_module()
    case = bench.CASES["seed001"]
    start = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)
    surface = Surface(seed_cost, start)
    result = bench.run_case(case, reps=3, use_ncu=False, measurer=surface)
    assert (
        result["sweep"]["configs"] == 36
        and result["sweep"]["best"] == "BLOCK_K=32 BLOCK_M=128 BLOCK_N=128 w4 s2"
    )
    assert result["tune"]["config"] == result["sweep"]["best"]
    assert result["tune"]["trials"] <= 9 and result["pass"] is True
    # every tune trial stayed inside the swept space
    labels = {r["label"] for r in result["sweep"]["results"]}
    trials = result["tune"]["trajectory"]["trials"]
    assert all(
        TuneConfig.from_dict(t["config"]).label() in labels
        for t in trials
        if t["status"] != "rejected-limits"
    )
    assert "| seed001 |" in bench.markdown([result], {"recommender": "test", "reps": 3})


def test_a_kernel_tune_cannot_reach_is_reported_as_fail_with_the_reason():
    bench = _bench_module()
    case = bench.CASES["seed001"]
    start = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)

    def needle(config):  # only one far-away config is fast: nothing local leads there
        p = config.param_dict
        return (
            1.0
            if (p["BLOCK_M"], p["BLOCK_N"], config.num_warps, config.num_stages) == (32, 64, 8, 3)
            else 10.0
        )

    result = bench.run_case(case, reps=3, use_ncu=False, measurer=Surface(needle, start))
    assert result["pass"] is False and result["speed_vs_sweep_best"] < 0.95
    assert any("of the sweep best's speed" in why for why in result["why_not"])
    text = bench.markdown([result], {"recommender": "test", "reps": 3})
    assert "FAIL" in text and "Falls short" in text


def test_matmul_case_on_the_measured_h200_sweep_surface():
    """The matmul case replayed on the sweep the H200 measured (bench/results/2026-11-21-tune-h200): every
    config of the swept space costs what it measured there. Registers, which that run did not record per
    config, are estimated as 40 + the fp32 accumulator per thread (BLOCK_M*BLOCK_N / (32*num_warps)).

    Before NA311-NA313 this case reached 29.8% of the sweep best; the rules must now lead tune there."""
    import json

    bench = _bench_module()
    recorded = json.loads((ROOT / "bench/results/2026-11-21-tune-h200/bench_tune.json").read_text())
    matmul = next(r for r in recorded["results"] if r["kernel"] == "matmul")
    measured = {row["label"]: row["median_ms"] for row in matmul["sweep"]["results"] if row["status"] == "ok"}
    start = TuneConfig.make({"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16}, 1, 1)
    measured[start.label()] = matmul["start"]["median_ms"]

    class SweepSurface:
        def measure(self, config):
            config = config or start
            if config.label() not in measured:  # outside the swept space: slower than anything swept
                ms = 10.0
            else:
                ms = measured[config.label()]
            p = config.param_dict
            return Measurement(
                "ok",
                [ms * 0.999, ms, ms * 1.001],
                True,
                n_regs=int(40 + p["BLOCK_M"] * p["BLOCK_N"] / (32 * config.num_warps)),
                n_spills=0,
                int_args={"M": 8192, "N": 8192, "K": 8192},
                launched_with={
                    "BLOCK_M": 16,
                    "BLOCK_N": 16,
                    "BLOCK_K": 16,
                    "GROUP_M": 8,
                    "num_warps": 1,
                    "num_stages": 1,
                },
                environment={"gpu": {"name": "NVIDIA H200", "cc": "9.0"}},
            )

    result = bench.run_case(bench.CASES["matmul"], reps=3, use_ncu=False, measurer=SweepSurface())
    assert result["sweep"]["best"] == "BLOCK_K=32 BLOCK_M=128 BLOCK_N=128 w4 s3"
    assert result["tune"]["config"] == result["sweep"]["best"]
    assert result["pass"] is True and result["tune"]["trials"] <= 9
    rules = [t.get("rule") for t in result["tune"]["trajectory"]["trials"] if t.get("verdict") == "kept"]
    assert rules[:3] == ["NA311", "NA313", "NA312"]
