"""bench/bench_tune.py's table half on the CPU: random search from sweep timings, the three goals with their
reasons, the table, the stated spaces and the sweep JSONL reader. The GPU half runs on the device
(bench/device/tune.sh); here the inputs are the H200 sweep timings committed in bench/results."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ncu_advisor.collect.tune.searchspace import space_from_kernel
from ncu_advisor.model import LaunchConfig

ROOT = Path(__file__).resolve().parents[1]
H200 = ROOT / "bench" / "results" / "2026-11-22-tune-h200" / "bench_tune.json"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_tune_under_test", ROOT / "bench" / "bench_tune.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _h200_sweep(kernel: str) -> list[float | None]:
    data = json.loads(H200.read_text())
    result = next(r for r in data["results"] if r["kernel"] == kernel)
    return [
        r["median_ms"] if r["status"] == "ok" and r["correct"] else None for r in result["sweep"]["results"]
    ]


def test_random_search_from_the_recorded_matmul_sweep():
    bench = _bench()
    sweep = _h200_sweep("matmul")
    best = min(ms for ms in sweep if ms is not None)
    # every configuration drawn: random finds the best every time
    full = bench.random_search(sweep, 3.98, len(sweep) + 1, draws=50)
    assert full["mean"] == pytest.approx(1.0) and full["p10"] == pytest.approx(1.0)
    # one trial is the start alone (3.98 ms on the H200): best / start
    alone = bench.random_search(sweep, 3.98, 1, draws=50)
    assert alone["mean"] == pytest.approx(best / 3.98)
    few = bench.random_search(sweep, 3.98, 6, draws=1000, seed=1)
    assert alone["mean"] < few["p10"] <= few["mean"] < 1.0  # more trials, better; the p10 is the bad luck
    assert bench.random_search([None, None], 1.0, 3) == {"mean": 0.0, "p10": 0.0}


def _result(tune_ms, tune_wall, sweep_wall=40.0, trials=8, random_mean=0.95):
    return {
        "kernel": "k",
        "start_ms": 4.0,
        "sweep": {
            "best_ms": 1.0,
            "best": {"BLOCK": 128, "num_warps": 4},
            "wall_s": sweep_wall,
            "configs": 36,
            "start_s": 5.0,
        },
        "tune": {
            "best": {"BLOCK": 64, "num_warps": 4},
            "best_ms_in_sweep": tune_ms,
            "wall_s": tune_wall,
            "trials": trials,
            "stop_reason": "local optimum: ...",
            "build_s": 5.0,
            "start_s": 6.0,
        },
        "random": {"mean": random_mean, "p10": 0.8},
    }


def test_judge_names_each_missed_goal_with_its_data():
    bench = _bench()
    good = bench.judge(_result(1.01, 15.0))
    assert good["goals"] == {"quality": True, "wall": True, "vs_random": True} and good["why"] == []
    bad = bench.judge(_result(1.25, 30.0, random_mean=0.9))
    assert bad["goals"] == {"quality": False, "wall": False, "vs_random": False}
    assert "80.0% of the best" in bad["why"][0] and "BLOCK 64 -> 128" in bad["why"][0]
    assert "75% of the sweep's 40.0 s" in bad["why"][1] and "8 of 36 configs" in bad["why"][1]
    assert "random search's mean at 8 trials is 90.0%" in bad["why"][2]


def test_table_rows_and_the_overall_line():
    bench = _bench()
    results = [
        bench.judge(_result(1.0, 10.0)),
        bench.judge(_result(1.5, 30.0)),
        {"kernel": "x", "error": "boom"},
    ]
    results[1]["kernel"] = "slow"
    pool = {"ready": 9, "requested": 12, "prefetch_used": 8, "prefetch_started": 30}
    results[1]["tune"]["compile"] = {"pool": pool}
    text = bench.table(results)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[1].startswith(
        "| k | 36 | 1.0000 | 100.0% | 100.0% | 95.0% | 80.0% | 8 | 40.0 | 10.0 | 0.25 | 5.0/6.0 | - | - "
        "| 3/3 | all met |"
    )
    assert rows[2].startswith("| slow |") and "66.7%" in rows[2] and "| 9/12, 8/30 | 0/3 |" in rows[2]
    assert rows[3] == "| x | - | - | - | - | - | - | - | - | - | - | - | - | - | ERROR | boom |"
    assert all(row.count("|") == rows[0].count("|") for row in rows)
    verdict = next(line for line in text.splitlines() if line.startswith("tune >= 98%"))
    assert verdict.startswith("tune >= 98% of the sweep's best on 50% of 2 kernels")
    assert text.splitlines()[-1].startswith("Walls: tune = TuneSession start")


def test_the_confirmed_timings_decide_the_quality_and_the_noise_band_is_reported():
    bench = _bench()
    # one pass: tune's pick 0.4% slower than the sweep's best, random's mean 99.8%: strictly below
    result = _result(1.004, 10.0, random_mean=0.998)
    result["sweep"]["spread"] = 0.005
    judged = bench.judge(result)
    assert judged["quality_one_pass"] == pytest.approx(1 / 1.004)
    assert not judged["goals"]["vs_random"] and judged["vs_random_within_noise"]
    # timed again alternately: the two are equal within 0.1%
    result["sweep"]["confirm"] = {
        "same": False, "reps": {"best": [1.0, 1.001, 0.999], "tune": [1.001, 1.0, 1.0005]}
    }
    judged = bench.judge(result)
    assert judged["quality"] == pytest.approx(1.0 / 1.0005)
    result["sweep"]["confirm"]["reps"]["tune"] = [0.99, 0.99, 0.99]  # timed faster: a tie, not 101%
    assert bench.judge(result)["quality"] == 1.0
    assert bench.judge(result)["quality_confirmed"] == pytest.approx(1 / 0.99)
    result["sweep"]["confirm"]["reps"]["tune"] = [1.001, 1.0, 1.0005]
    assert judged["quality_one_pass"] == pytest.approx(1 / 1.004)
    assert bench.confirmed_quality({"same": True}) == 1.0
    assert bench.confirmed_quality({"same": False, "reps": {"best": [], "tune": [1.0]}}) is None
    assert bench.confirmed_quality(None) is None
    text = bench.table([judged])
    assert "(1/1 within the sweep's measured noise)" in text


def test_random_search_counts_a_start_faster_than_the_sweep_best_as_a_tie():
    bench = _bench()
    assert bench.random_search([1.0, 2.0, 3.0], 0.99, 2)["mean"] == 1.0


def test_spread_of_is_the_median_relative_range_of_the_reps():
    bench = _bench()
    assert bench.spread_of([[1.0, 1.01, 1.0], [2.0, 2.0, 2.0], [1.0, 1.1, 1.05]]) == pytest.approx(0.01)
    assert bench.spread_of([[1.0]]) is None


def test_a_cheap_space_is_named_with_its_numbers():
    """The sweep is mostly the worker's start: half of it is less than the start tune also pays."""
    bench = _bench()
    result = _result(1.0, 7.0, sweep_wall=6.0)
    result["sweep"]["start_s"] = 4.8
    why = bench.judge(result)["why"]
    assert (
        len(why) == 1
        and "a cheap space: the sweep's 6.0 s is 4.8 s worker start + 1.2 s measuring 36" in why[0]
    )
    costly = _result(1.0, 30.0, sweep_wall=40.0)
    costly["sweep"]["start_s"] = 5.0
    assert "cheap space" not in bench.judge(costly)["why"][0]


def test_merge_of_the_two_committed_parts():
    bench = _bench()
    parts = [
        ROOT / "bench" / "results" / "2026-11-30-tune-h200" / p / "bench_tune.json"
        for p in ("part1", "part2")
    ]
    if not all(p.is_file() for p in parts):
        pytest.skip("committed parts absent")
    merged = bench.merge(parts)
    expected = sum(len(json.loads(p.read_text())["results"]) for p in parts)
    assert len(merged) == expected and {r["part"] for r in merged} == {"part1", "part2"}
    judged = [r for r in merged if "error" not in r]
    text = bench.table(merged)
    good = sum(1 for r in judged if r["goals"]["quality"])
    assert f"on {good / len(judged):.0%} of {len(judged)} kernels" in text
    assert f"{len(merged) - len(judged)} errors" in text
    assert text.count("\n| ") == len(merged)  # a row per result after the header


def test_merge_refuses_a_part_that_is_not_a_bench_result(tmp_path):
    bench = _bench()
    (tmp_path / "other.json").write_text('{"kernels": []}')
    with pytest.raises(ValueError, match="no 'results' list"):
        bench.merge([tmp_path / "other.json"])
    (tmp_path / "gpu1").mkdir()
    part = tmp_path / "gpu1" / "bench_tune.json"
    part.write_text(json.dumps({"results": [{"kernel": "a", "error": "boom"}], "planned": ["a", "b"]}))
    rows = bench.merge([part])
    assert rows[1] == {
        "kernel": "b",
        "part": "gpu1",
        "error": "not run: part gpu1 ended (its timeout) before it",
    }
    with pytest.raises(ValueError, match="cannot read the part"):
        bench.merge([tmp_path / "missing.json"])


def test_shards_split_the_kernels_between_gpus():
    bench = _bench()
    keys = [f"k{i}" for i in range(19)]
    halves = [bench.shard(keys, "0/2"), bench.shard(keys, "1/2")]
    assert sorted(halves[0] + halves[1]) == sorted(keys) and len(halves[0]) == 10
    assert bench.shard(keys, "") == keys
    with pytest.raises(ValueError):
        bench.shard(keys, "2/2")


def test_cross_check_of_the_jsonl_best_against_the_fresh_sweep():
    bench = _bench()
    jsonl = {"configs": [({"BLOCK": 64}, 0.5), ({"BLOCK": 128}, 0.6), ({"BLOCK": 32}, None)], "wall_s": 3.0}
    fresh = [({"BLOCK": 64, "num_warps": 4}, 0.51), ({"BLOCK": 128, "num_warps": 4}, 0.62)]
    same = bench.cross_check(jsonl, fresh)  # the fresh sweep names every dimension, the JSONL fewer
    assert same["ratio"] == pytest.approx(1.0) and same["confirmed"] and same["jsonl_best"] == {"BLOCK": 64}
    other = bench.cross_check(jsonl, [({"BLOCK": 64}, 0.55), ({"BLOCK": 128}, 0.5)])
    assert other["ratio"] == pytest.approx(0.5 / 0.55) and not other["confirmed"]
    assert bench.cross_check(jsonl, [({"BLOCK": 128}, 0.5)]) is None  # the fresh sweep lacks it


def test_zoo_spaces_name_only_dimensions_the_kernels_have():
    bench = _bench()
    from ncu_advisor.collect.tune.session import plan_tune

    for case in bench.CASES.values():
        plan = plan_tune(ROOT / case.file, case.variant)
        names = set(plan.start.param_dict) | {"num_warps", "num_stages"}
        assert set(case.space) <= names, (case.key, set(case.space) - names)


def test_corpus_space_thins_around_the_start():
    bench = _bench()
    start = LaunchConfig.make({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, 4, 3)
    default = space_from_kernel(start, uses_dot=True, has_loop=True)
    spec = bench.corpus_space(default, start, 48)
    size = 1
    for values in spec.values():
        size *= len(values)
    assert size <= 48 and spec["BLOCK_M"][0] <= 64 <= spec["BLOCK_M"][-1] and 4 in spec["num_warps"]


def test_sweep_jsonl_reader_on_sweep_corpus_lines(tmp_path):
    """The line types bench/sweep_corpus.py writes: config (flat config, ok, ms), file_end (wall_s,
    skipped)."""
    bench = _bench()
    path = tmp_path / "sweep.jsonl"
    rows = [
        {"type": "header", "gpu": "H200"},
        {"type": "file", "file": "kernels/corpus/rms.py", "space": {"BLOCK": [32, 64]}, "configs": 2},
        {
            "type": "config",
            "file": "kernels/corpus/rms.py",
            "config": {"BLOCK": 64, "num_warps": 4},
            "ok": True,
            "ms": 0.5,
        },
        {
            "type": "config",
            "file": "kernels/corpus/rms.py",
            "config": {"BLOCK": 32, "num_warps": 4},
            "ok": False,
            "error": "incorrect",
        },
        {"type": "file_end", "file": "kernels/corpus/rms.py", "measured": 2, "skipped": 0, "wall_s": 12.5},
        {"type": "config", "file": "kernels/corpus/cut.py", "config": {"BLOCK": 64}, "ok": True, "ms": 1.0},
        {"type": "file_end", "file": "kernels/corpus/cut.py", "measured": 1, "skipped": 3, "wall_s": 25.0},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    data = bench.read_sweep_jsonl(path)
    assert set(data) == {"rms.py"}  # a sweep cut short is not ground truth: the bench sweeps it itself
    assert data["rms.py"]["wall_s"] == 12.5
    assert data["rms.py"]["configs"] == [
        ({"BLOCK": 64, "num_warps": 4}, 0.5),
        ({"BLOCK": 32, "num_warps": 4}, None),
    ]
    assert bench.lookup(data["rms.py"]["configs"], {"BLOCK": 64, "num_warps": 4, "num_stages": 3}) == 0.5
    assert bench.lookup(data["rms.py"]["configs"], {"BLOCK": 128, "num_warps": 4, "num_stages": 3}) is None


def test_corpus_cases_follow_the_corpus_convention():
    bench = _bench()
    cases = {c.key: c for c in bench.corpus_cases()}
    if not cases:
        pytest.skip("kernels/corpus is absent")
    rope = cases["rotary_embedding"]
    assert rope.variant == "ModelNew" and rope.space["BLOCK_H"] == [1, 2, 4, 8, 16, 32] and rope.rtol == 1e-2
