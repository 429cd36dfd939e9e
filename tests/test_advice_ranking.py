"""The top proposal of the recorded corpus runs (H200,
bench/results/2026-11-30-advice-h200{,-unseen}/runs.tgz)
after the ranking and source-facts changes of the fourth session (issue 13): each case is a miss or a silent
rule of the third session's recall table (bench/results/2026-11-30-advice-h200-timed/table.txt), and each
expected config is one the sweep or the same-run timing measured faster than the start
(bench/results/2026-11-30-advice-h200-timed-s4)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from ncu_advisor.kernelsrc.facts import analyze_source
from tests.test_advice import _bench_advice

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SWEEP = RESULTS / "2026-11-30-corpus-sweep-h200" / "sweep.jsonl"
TGZS = [
    RESULTS / "2026-11-30-advice-h200" / "runs.tgz",
    RESULTS / "2026-11-30-advice-h200-unseen" / "runs.tgz",
]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    if not (SWEEP.is_file() and all(t.is_file() for t in TGZS)):
        pytest.skip("the recorded corpus runs or the sweep are not committed")
    runs = tmp_path_factory.mktemp("runs")
    for tgz in TGZS:
        with tarfile.open(tgz) as archive:
            archive.extractall(runs, filter="data")
    bench = _bench_advice()
    found, _totals = bench.analyze(runs / "runs", SWEEP)
    return {row.file: row for row in found}


@pytest.mark.parametrize(
    ("stem", "rule", "config"),
    [
        # NA107's smaller fallback (-57.5%) no longer leads; NA323 counts 2-byte chunks: 512 -> 2048 columns
        ("rowwise_quant_int8", "NA323", {"BLOCK_M": 1, "BLOCK_N": 2048}),
        # NA105's halving is contradicted by the measurement (info): NA307 leads, from the autotune config
        # the run chose (128x256x64, 8 warps, 3 stages), halving the grid-sizing tiles only
        (
            "gemm_decode",
            "NA307",
            {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64, "num_warps": 8, "num_stages": 3},
        ),
        # a split constexpr: split the rows 32 ways to fill one wave (0.06 waves)
        ("colsum", "NA307", {"BLOCK_M": 32, "BLOCK_N": 32, "SPLIT_M": 32}),
        # BLOCK_H passed from a module constant through a wrapper; HALF_DIM unknown: at most 8x
        ("rotary_embedding", "NA324", {"BLOCK_H": 8}),
    ],
)
def test_the_top_proposal_is_the_measured_move(
    rows: dict[str, object], stem: str, rule: str, config: dict
) -> None:
    row = rows[stem]
    assert row.top_rule == rule, (row.top_rule, row.top_proposal)
    assert {k: row.top_proposal[k] for k in config} == config
    assert row.top_ms is not None and row.top_ms < 0.95 * row.start_ms  # the sweep timed it >= 5% faster


def test_precision_holds_on_every_best_variant(rows: dict[str, object]) -> None:
    assert {stem: row.warnings_on_best for stem, row in rows.items() if row.warnings_on_best} == {}


def test_a_wrapper_call_supplies_the_launch_values() -> None:
    rotary = analyze_source((ROOT / "kernels" / "corpus" / "rotary_embedding.py").read_text()).kernels[0]
    assert rotary.for_variant("ModelNew").launch_params == {"BLOCK_H": 1, "num_warps": 4}  # module constants
    assert rotary.for_variant("ModelNew_best").launch_params == {"BLOCK_H": 32, "num_warps": 16}  # **config
    transpose = analyze_source((ROOT / "kernels" / "corpus" / "transpose_tiled.py").read_text()).kernels[0]
    # ``def transpose(x, **config)`` launching with ``**config``: the caller's keywords pass through
    assert transpose.for_variant("ModelNew").launch_params == {"BLOCK_M": 32, "BLOCK_N": 32, "num_warps": 4}


def test_the_warps_stages_half_of_a_block_rule_ranks_after_measured_moves(rows: dict[str, object]) -> None:
    """linear_bias_gelu: NA309's halving is not proposed (NA312 grows the tl.dot tile), so its num_stages
    1 -> 2 alone no longer leads (timed -0.0%); NA313's pipelining does (the sweep: 6.7% faster), and NA312's
    growth takes BLOCK_K to 64 with the 2x tile (the sweep's best raised BLOCK_K 32 -> 64)."""
    row = rows["linear_bias_gelu"]
    assert row.top_rule == "NA313" and row.top_proposal["num_stages"] == 3
    assert row.top_ms is not None and row.top_ms < 0.95 * row.start_ms
    assert row.direction_hits["BLOCK_K"] and row.direction_hits["BLOCK_M"] and row.direction_hits["BLOCK_N"]


def test_direction_beyond_the_noise_and_roof_withheld_kernels(rows: dict[str, object]) -> None:
    # the three starts at >= 90% of their memory roof get no launch-parameter advice (by design): not counted
    assert {s for s, r in rows.items() if r.withheld_at is not None} == {
        "layernorm_rows",
        "softmax",
        "transpose_tiled",
    }
    for stem in ("softmax", "transpose_tiled"):
        assert rows[stem].withheld_at >= 0.9 and rows[stem].direction_ok is None
    # colsum's best also moved BLOCK_N 32 -> 256, but without that move the sweep measured 0.2% slower: a tie
    colsum = rows["colsum"]
    assert colsum.direction_hits["BLOCK_N"] is False and colsum.beyond_noise["BLOCK_N"] is False
    assert colsum.beyond_noise["SPLIT_M"] and colsum.direction_ok is False and colsum.direction_beyond_noise
