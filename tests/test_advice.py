"""Issue 13's advice: roofline headline and suppression, one consistent proposal set, the autotune key, the
launch each variant executes, chunk loops, time shares, and the analysis half of bench/bench_advice.py.

Real data: recorded runs under examples/runs (H200) and the corpus kernels (kernels/corpus); the only built
inputs are a two-column table for NA323 (no row-walking kernel has been recorded yet) and sweep records.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ncu_advisor import gpus, rundir
from ncu_advisor.analysis.roofline import AT_ROOF, rooflines
from ncu_advisor.ingest.readers import read_report
from ncu_advisor.kernelsrc.facts import analyze_file, analyze_source
from ncu_advisor.rules import evaluate, load_rules

ROOT = Path(__file__).resolve().parent.parent
RULES = load_rules()
CORPUS = ROOT / "kernels" / "corpus"


def _bench_advice() -> Any:
    spec = importlib.util.spec_from_file_location("bench_advice", ROOT / "bench" / "bench_advice.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_advice"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _run(name: str) -> tuple[Any, list[Any]]:
    run = rundir.load_run(ROOT / "examples" / "runs" / name)
    return run, evaluate(run.table, RULES, source=analyze_file(run.kernel_file))


def test_roofline_is_bytes_over_time_against_the_measured_copy_bandwidth() -> None:
    table = read_report(ROOT / "examples/reports/h200-seed/ModelNew_seed000_small.ncu-rep.gz")
    row = table[table["kernel"] == "scale_channel_min_kernel"].iloc[0]
    (roofline,) = [
        r for r, k in zip(rooflines(table), table["kernel"], strict=True) if k == "scale_channel_min_kernel"
    ]
    expected = (row["dram__bytes_read.sum"] + row["dram__bytes_write.sum"]) / (
        row["gpu__time_duration.sum"] / 1e9
    )
    assert roofline.bytes_per_s == pytest.approx(expected)
    assert gpus.catalogue()["h200"].copy_bw_gbs == 4270
    assert roofline.bandwidth_roof == pytest.approx(4.27e12)
    assert roofline.memory_fraction == pytest.approx(expected / 4.27e12)
    assert "measured copy" in roofline.headline()


def test_at_the_roof_launch_advice_is_withheld_with_the_reason() -> None:
    _run_, results = _run("elementwise")
    tuned = next(r for r in results if r.variant == "ModelNew")
    assert tuned.roofline.fraction >= AT_ROOF
    assert {"NA104", "NA107"} <= {f.rule for f in tuned.suppressed}
    assert not {f.rule for f in tuned.findings} & {f.rule for f in tuned.suppressed}
    assert tuned.proposals == [] and tuned.autotune_block is None
    assert any("launch-parameter advice and findings" in note and "NA104" in note for note in tuned.notes)


def test_small_block_start_grows_and_the_halving_is_dropped_with_its_reason() -> None:
    _run_, results = _run("elementwise")
    start = next(r for r in results if r.variant == "ModelNew_block64_w8")
    assert start.roofline.fraction < AT_ROOF
    top = start.proposals[0]
    assert top.params == {"BLOCK_SIZE": 512} and (top.num_warps, top.num_stages) == (4, 2)
    assert all(p.params["BLOCK_SIZE"] >= 64 for p in start.proposals)
    assert any("NA107" in note and "halving dropped" in note for note in start.notes)
    # never a proposal equal to the config the variant runs (BLOCK_SIZE=64, num_warps=8, default stages 3)
    assert not any(
        (p.params, p.num_warps, p.num_stages) == ({"BLOCK_SIZE": 64}, 8, 3) for p in start.proposals
    )
    assert start.autotune_block is not None and "key=['n_elements']" in start.autotune_block


def test_autotune_key_names_only_integer_size_arguments() -> None:
    text = """
import triton
import triton.language as tl

@triton.jit
def layer_norm_fwd(X, Y, W, B, stride, N, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    X += row * stride
    Y += row * stride
    acc = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        acc += tl.load(X + cols, mask=cols < N, other=0.0)
    mean = tl.sum(acc, axis=0) / N
    for off in range(0, N, BLOCK_SIZE):
        cols = off + tl.arange(0, BLOCK_SIZE)
        w = tl.load(W + cols, mask=cols < N)
        b = tl.load(B + cols, mask=cols < N)
        tl.store(Y + cols, mean * w + b + eps, mask=cols < N)
"""
    (kernel,) = analyze_source(text).kernels
    assert kernel.size_params == ("N",)
    assert kernel.chunk_loops[0][0] == "BLOCK_SIZE"
    from ncu_advisor.analysis.proposals import autotune_key

    assert autotune_key(kernel) == ["N"]


def test_facts_come_from_the_launch_the_variant_executes() -> None:
    facts = analyze_file(CORPUS / "layernorm_rows.py")
    (kernel,) = facts.kernels
    assert kernel.autotune_configs, "the start runs an @triton.autotune list"
    best = kernel.for_variant("ModelNew_best")
    # ModelNew_best launches kernel.fn[grid](..., **self.config): autotune bypassed, its own config applies
    assert best.autotune_configs == []
    assert {k: v for k, v in best.launch_params.items() if k != "BLOCK_N"} == {
        k: v for k, v in kernel.class_launches["ModelNew_best"].params.items() if k != "BLOCK_N"
    }
    start = kernel.for_variant("ModelNew")
    assert start.autotune_configs == kernel.autotune_configs


def test_row_loop_with_small_chunks_grows_the_chunk_in_one_jump() -> None:
    facts = analyze_file(CORPUS / "rmsnorm_rows.py")
    (kernel,) = [k for k in facts.kernels if k.chunk_loops]
    start = kernel.for_variant("ModelNew")
    chunk = start.launch_params[kernel.chunk_loops[0][0]]
    assert chunk <= 256
    # 8,192 fp32 columns per program (one row each): the bytes and grid of such a launch.
    table = pd.DataFrame(
        {
            "kernel": [kernel.name],
            "variant": ["ModelNew"],
            "dram__bytes_read.sum": [4096 * 8192 * 4.0],
            "launch__grid_size": [4096.0],
        }
    )
    (result,) = evaluate(table, [r for r in RULES if r.id in ("NA323", "NA107", "NA105")], source=facts)
    (finding,) = [f for f in result.findings if f.rule == "NA323"]
    assert finding.evidence["target_block"] == 4096 and finding.severity.value == "warning"
    top = result.proposals[0]
    assert top.params[kernel.chunk_loops[0][0]] == 4096
    assert all(p.params[kernel.chunk_loops[0][0]] >= chunk for p in result.proposals)


def test_time_share_ranks_a_tiny_kernel_below_the_long_one() -> None:
    _run_, results = _run("baseline")
    seed000 = [r for r in results if r.variant == "ModelNew_seed000"]
    assert len(seed000) >= 3
    assert sum(r.time_share for r in seed000) == pytest.approx(1.0)
    for result in seed000:
        for finding in result.findings:
            assert finding.evidence["global_effect"] == pytest.approx(
                result.time_share * finding.estimated_effect, abs=1e-4
            )
    # cuDNN's convolution is not in the user's file: reported apart
    assert any(r.user_kernel is False for r in seed000) and any(r.user_kernel for r in results)


def test_bench_advice_analysis_on_a_recorded_run(tmp_path: Path) -> None:
    bench = _bench_advice()
    run_dir = ROOT / "examples" / "runs" / "elementwise"
    timings = pd.read_csv(run_dir / "timings.csv").groupby("variant")["median_ms"].median()
    start = {"BLOCK_SIZE": 64, "num_warps": 8, "num_stages": 3}
    best = {"BLOCK_SIZE": 1024, "num_warps": 4, "num_stages": 3}
    records = [
        {
            "type": "start",
            "file": "elementwise.py",
            "ok": True,
            "ms": timings["ModelNew_block64_w8"],
            "launch": start,
        },
        {"type": "config", "file": "elementwise.py", "ok": True, "ms": timings["ModelNew"], "config": best},
    ]
    truths = bench.sweep_truths(records)
    truth = truths["elementwise.py"]
    assert truth.variants == ("ModelNew", "ModelNew_best")  # no "file" record: the corpus convention
    assert truth.best_config == best and truth.start_ms == timings["ModelNew_block64_w8"]
    row = bench.analyze_kernel(
        "elementwise", run_dir, truth, None, RULES, variants=("ModelNew_block64_w8", "ModelNew")
    )
    assert row.precise and row.warnings_on_best == []
    assert row.source_file == "kernels/elementwise.py"
    assert row.changed == {"BLOCK_SIZE": 1, "num_warps": -1}
    assert row.direction_hits == {"BLOCK_SIZE": True, "num_warps": True}
    assert row.top_rule == "NA324" and row.top_estimated is not None
    assert row.top_proposal == {"BLOCK_SIZE": 512, "num_warps": 4, "num_stages": 2}
    assert row.gain is None and any("outside the swept space" in n for n in row.notes)
    totals = bench.summary([row])
    assert totals["precise"] == [1, 1] and totals["direction"] == [1, 1]
    assert "precision 1/1" in bench.table([row], totals)
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps(r) for r in records))


def test_spearman() -> None:
    bench = _bench_advice()
    assert bench.spearman([(1, 10), (2, 20), (3, 30)]) == pytest.approx(1.0)
    assert bench.spearman([(1, 3), (2, 2), (3, 1)]) == pytest.approx(-1.0)
    assert bench.spearman([(1, 1), (2, 1)]) is None
    assert bench.spearman([(1, 1), (1, 2), (2, 3), (3, 3)]) == pytest.approx(8 / 9)  # ties: average ranks


def test_bench_advice_on_the_recorded_h200_sweep() -> None:
    """The zoo's elementwise kernel: its recorded run against the committed exhaustive sweep (H200)."""
    sweep = ROOT / "bench" / "results" / "2026-11-30-corpus-sweep-h200" / "sweep.jsonl"
    if not sweep.is_file():
        pytest.skip("the corpus sweep is not committed")
    bench = _bench_advice()
    records = [json.loads(line) for line in sweep.read_text().splitlines() if line.strip()]
    truth = bench.sweep_truths(records)["kernels/elementwise.py"]
    assert truth.variants == ("ModelNew_block64_w8", "ModelNew")
    assert truth.start_config["BLOCK_SIZE"] == 64 and truth.best_ms < truth.start_ms
    row = bench.analyze_kernel(
        "elementwise", ROOT / "examples" / "runs" / "elementwise", truth, None, RULES, truth.variants
    )
    swept = {(c["BLOCK_SIZE"], c["num_warps"]): ms for c, ms in truth.measured}
    assert row.top_proposal["BLOCK_SIZE"] == 512 and row.top_proposal["num_warps"] == 4
    assert row.top_ms == pytest.approx(swept[(512, 4)])
    assert row.gain == pytest.approx(1 - swept[(512, 4)] / truth.start_ms)
    assert row.recalled is (row.gain >= 0.05)
    assert set(row.changed) <= {"BLOCK_SIZE", "num_warps", "num_stages"} and row.changed["BLOCK_SIZE"] == 1


def test_plan_writes_each_unswept_top_proposal_as_a_variant_class(tmp_path: Path) -> None:
    """The GPU timing step's CPU half on the recorded unseen runs (H200): the proposal becomes a class of a
    copy of the kernel file (tune --write's machinery); the analysis then reads the same-run gain."""
    import ast
    import tarfile

    sweep = ROOT / "bench" / "results" / "2026-11-30-corpus-sweep-h200" / "sweep.jsonl"
    runs_tgz = ROOT / "bench" / "results" / "2026-11-30-advice-h200-unseen" / "runs.tgz"
    if not (sweep.is_file() and runs_tgz.is_file()):
        pytest.skip("the unseen runs or the corpus sweep are not committed")
    with tarfile.open(runs_tgz) as archive:
        archive.extractall(tmp_path, filter="data")
    bench = _bench_advice()
    sys.path.insert(0, str(ROOT / "bench"))
    import advice_time

    rows, _totals = bench.analyze(tmp_path / "runs" / "matmul_epilogue", sweep)  # not a runs folder
    assert rows == []
    run_dir = tmp_path / "only"
    run_dir.mkdir()
    (run_dir / "matmul_epilogue").symlink_to(tmp_path / "runs" / "matmul_epilogue")
    rows, _totals = bench.analyze(run_dir, sweep)
    (row,) = rows
    # NA311's 32x32x32 at 4 warps, 2 stages: num_stages=2 is outside the swept space
    assert row.top_proposal is not None and row.top_ms is None
    (entry,) = advice_time.plan(rows, tmp_path / "variants")
    text = Path(entry["variant_file"]).read_text()
    tree = ast.parse(text)
    assert entry["proposal_variant"] in {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert (entry["start_variant"], entry["config"]) == ("ModelNew_tile16_w1_s1", row.top_proposal)
    assert "'BLOCK_M': 32" in text and "'num_stages': 2" in text
    timed = tmp_path / "timed.jsonl"
    record = {
        **{k: entry[k] for k in ("stem", "file", "config", "rule")},
        "ok": True,
        "start_ms": 1.02,
        "ms": 0.25,
        "gain": 1 - 0.25 / 1.02,
        "mode": "gpu",
    }
    timed.write_text(json.dumps(record) + "\n")
    (row,) = bench.analyze(run_dir, sweep, timed=timed)[0]
    assert row.gain_source == "timed" and row.gain == pytest.approx(1 - 0.25 / 1.02) and row.recalled
    assert "gain*" in bench.table([row], bench.summary([row]))
    failed = {**record, "ok": False, "error": "proposal: OutOfResources", "proposal_failed": True}
    timed.write_text(json.dumps(failed) + "\n")
    (row,) = bench.analyze(run_dir, sweep, timed=timed)[0]
    assert row.recalled is False and row.gain is None  # a proposal that fails is a miss
    timed.write_text(json.dumps({**failed, "proposal_failed": False, "error": "ImportError"}) + "\n")
    (row,) = bench.analyze(run_dir, sweep, timed=timed)[0]
    assert row.recalled is None  # the environment failed, not the proposal: unmeasured
    interpreted = {**record, "mode": "interpret"}
    timed.write_text(json.dumps(interpreted) + "\n")
    (row,) = bench.analyze(run_dir, sweep, timed=timed)[0]
    assert row.gain is None  # CPU rehearsal times are never used


def test_fit_warps_follows_the_triton_softmax_tutorial() -> None:
    from ncu_advisor.analysis.proposals import fit_warps

    assert [fit_warps(n, 8) for n in (256, 1024, 2048, 4096, 8192, 65536)] == [4, 4, 8, 16, 16, 16]


def test_one_warp_blocks_get_num_warps_fitted_to_the_tile() -> None:
    """NA322 on a recorded one-warp launch: the source's tile (matmul_epilogue 16x16, 1 warp) and, where the
    source computes the BLOCK at run time (softmax's next_pow2(n_cols)), the elements per program measured."""
    _run_, results = _run("matmul_epilogue")
    start = next(r for r in results if r.variant == "ModelNew_tile16_w1_s1")
    fitted = [p for p in start.proposals if p.reason.startswith("NA322")]
    assert fitted and fitted[0].num_warps == 4 and fitted[0].params["BLOCK_M"] == 16
    from ncu_advisor.analysis.proposals import propose_set

    run, results = _run("softmax")
    w1 = next(r for r in results if r.variant == "ModelNew_w1")
    finding = next(f for f in w1.findings if f.rule == "NA322")
    assert finding.evidence["elements_per_program"] == pytest.approx(4096, rel=0.01)
    kernel = analyze_file(run.kernel_file).kernels[0].for_variant("ModelNew_w1")
    na322 = next(rule for rule in RULES if rule.id == "NA322")
    proposals, block, _notes = propose_set(kernel, [na322], [finding])
    assert [(p.params, p.num_warps) for p in proposals if not p.baseline] == [({}, 16)]
    assert block is not None and "num_warps=16" in block
    # at 90% of its memory roof the same launch gets no launch-parameter advice at all (withheld)
    assert w1.proposals == []


def test_a_warps_or_stages_rule_changes_only_what_it_names() -> None:
    """Red team 6: NA313 (num_stages only) on a one-warp start kept the warps it runs, not the baseline's 4;
    NA201 (num_warps=8 only) on a kernel already at 8 warps is the current config, so it is not proposed
    (it was proposed as num_stages 3 -> 2, a move no rule asked for)."""
    _run_, results = _run("matmul_epilogue")
    start = next(r for r in results if r.variant == "ModelNew_tile16_w1_s1")
    na313 = next(p for p in start.proposals if p.reason.startswith("NA313"))
    assert (na313.num_warps, na313.num_stages) == (1, 3)
    _run_, results = _run("spill")
    (tuned,) = [r for r in results if r.variant == "ModelNew"]
    assert "NA201" in {f.rule for f in tuned.findings}
    assert not any(p.reason.startswith("NA201") for p in tuned.proposals)


MULTI_LOAD_SOURCE = '''
import triton
import triton.language as tl


@triton.jit
def gated(x_ptr, g_ptr, b_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    g = tl.load(g_ptr + offs, mask=mask)
    b = tl.load(b_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, x * g + b, mask=mask)


def launch(x, g, b, y):
    block = triton.next_power_of_2(x.shape[-1])
    gated[(x.shape[0],)](x, g, b, y, x.numel(), BLOCK=block, num_warps=1)
'''


def test_the_measured_tile_counts_one_tensor_of_several_loads() -> None:
    """Red team 6: the bytes a program reads cover every loaded tensor; with three loads and the BLOCK
    computed at run time, NA322's 4,096 measured elements are 1,365 per tensor: 8 warps, not 16."""
    from ncu_advisor.analysis.proposals import propose_set

    _run_, results = _run("softmax")
    w1 = next(r for r in results if r.variant == "ModelNew_w1")
    finding = next(f for f in w1.findings if f.rule == "NA322")
    kernel = analyze_source(MULTI_LOAD_SOURCE).kernels[0]
    assert kernel.num_distinct_loads == 3
    na322 = next(rule for rule in RULES if rule.id == "NA322")
    proposals, _block, _notes = propose_set(kernel, [na322], [finding])
    assert [p.num_warps for p in proposals if p.reason.startswith("NA322")] == [8]


def test_roof_percent_shows_the_edge_and_a_launch_over_the_roof() -> None:
    from ncu_advisor.analysis.roofline import roof_percent

    fractions = (0.5, 0.896, 0.904, 0.95, 1.01)
    assert [roof_percent(f) for f in fractions] == ["50%", "89.6%", "90.4%", "95%", "101%"]
    _run_, results = _run("elementwise")
    tuned = next(r for r in results if r.variant == "ModelNew")
    note = next(n for n in tuned.notes if "launch-parameter advice" in n)
    fraction = tuned.roofline.fraction
    assert f"at {roof_percent(fraction)} of its memory roof" in note
    assert ("gain measurably" in note) == (fraction > 0.995)
