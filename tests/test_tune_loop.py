"""The trial loop with the measure function mocked (the layer above the child-process runner).

``measure`` stands in for ``ChildBackend.measure`` (a bare child: do_bench reps + correctness + n_regs);
``recommend`` is either a stand-in or the real ``RuleRecommender`` over the recorded seed-001 report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ncu_advisor.analysis.trajectory import Trajectory, read_trajectory, summary_rows, write_trajectory
from ncu_advisor.collect.tune.loop import (
    INVARIANT_RULE,
    Measurement,
    Recommendation,
    RuleRecommender,
    decide,
    measurement_from_result,
    run_tune,
)
from ncu_advisor.collect.tune.space import Limits, Move, TuneConfig
from ncu_advisor.errors import EnvironmentNotReady, RunError
from ncu_advisor.rules.schema import ProposalHint

ROOT = Path(__file__).resolve().parents[1]
SEED_REPORT = ROOT / "examples" / "reports" / "h200-seed" / "ModelNew_seed001_small.ncu-rep.gz"
START = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 32}, 4, 2)
LIMITS = Limits(uses_dot=True, extents={"BLOCK_N": 128, "BLOCK_K": 576})
INT_ARGS = {"C_out": 128, "C_in": 64, "KH": 3, "KW": 3}


def cost_ms(config: TuneConfig) -> float:
    """A made-up cost surface shaped like seed 001: the x gather repeats ceil(128 / BLOCK_N) times."""
    p = config.param_dict
    return (
        10.0
        * math.ceil(128 / p["BLOCK_N"]) ** 0.9
        * (1 + 0.1 * abs(math.log2(p["BLOCK_M"] / 128)))
        * (1 + 0.05 * abs(math.log2(p["BLOCK_K"] / 32)))
        * (1.0 if config.num_warps == 4 else 1.08)
        * (1.0 if config.num_stages == 2 else 1.03)
    )


class FakeMeasure:
    """Deterministic reps around ``cost_ms`` (+-0.5%), with chosen failures."""

    def __init__(
        self,
        failures: dict[TuneConfig, Measurement] | None = None,
        interrupt_at: int | None = None,
        lose_gpu_at: int | None = None,
        flat: bool = False,
    ):
        self.flat = flat
        self.calls: list[TuneConfig | None] = []
        self.failures = failures or {}
        self.interrupt_at = interrupt_at
        self.lose_gpu_at = lose_gpu_at

    def __call__(self, config: TuneConfig | None) -> Measurement:
        self.calls.append(config)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if self.lose_gpu_at is not None and len(self.calls) == self.lose_gpu_at:
            raise EnvironmentNotReady("the variant process cannot use the GPU")
        effective = config or START
        if effective in self.failures:
            return self.failures[effective]
        base = 10.0 if self.flat else cost_ms(effective)
        reps = [base * (1 + d) for d in (-0.005, -0.002, 0.0, 0.002, 0.005)]
        return Measurement(
            "ok",
            reps,
            True,
            n_regs=187,
            int_args=dict(INT_ARGS),
            launched_with={**START.param_dict, "num_warps": 4, "num_stages": 2},
        )


def invariant_only(config: TuneConfig, measurement: Measurement) -> Recommendation:
    moves = []
    if config.param_dict["BLOCK_N"] < 128:
        moves.append(Move(INVARIANT_RULE, 0.75, "block_set", 128, "BLOCK_N", "cover C_out"))
    return Recommendation(moves=moves, metrics={"n_regs": float(measurement.n_regs or 0)})


def _fresh() -> Trajectory:
    return Trajectory(
        kernel_file="kernels/fused.py",
        variant="ModelNew_seed001",
        kernel="conv2d_scale_min_kernel",
        start=START,
    )


def test_decide_needs_two_percent_beyond_the_noise():
    best = [10.0, 10.1, 10.2]
    assert decide([9.5, 9.6, 9.7], best)[0] is True  # -5%, all reps below the best's fastest
    keep, why = decide([9.9, 9.95, 10.0], best)  # -1.5%: under the threshold
    assert keep is False and "below the 2% threshold" in why
    keep, why = decide([9.0, 9.5, 10.05], best)  # -5.9% median, but a rep overlaps
    assert keep is False and "within the noise" in why
    assert decide([], best)[0] is False
    assert decide([9.85, 9.86, 9.87], best, min_gain=0.01)[0] is True


def test_loop_finds_the_invariant_fix_and_stops_when_nothing_untried_remains(tmp_path):
    measure = FakeMeasure()
    saved = []
    result = run_tune(
        _fresh(),
        measure,
        invariant_only,
        lambda m: LIMITS,
        budget=100,
        save=lambda t: saved.append(len(t.trials)),
    )
    assert result.complete and result.stop_reason.startswith("local optimum")
    assert result.trials[0].verdict == "start" and result.trials[0].config == START
    assert result.trials[1].config == START.replace({"BLOCK_N": 128}) and result.trials[1].verdict == "kept"
    assert result.trials[1].rule == INVARIANT_RULE
    best_by_surface = min((t.config for t in result.trials if t.status == "ok"), key=cost_ms)
    assert result.best == best_by_surface == START.replace({"BLOCK_N": 128})
    configs = [t.config for t in result.trials]
    assert len(configs) == len(set(configs))  # never re-tried
    assert measure.calls.count(None) == 1  # the start measured once
    assert saved == sorted(saved) and saved[-1] == len(result.trials)  # saved after every trial


def test_budget_counts_the_start_and_stops_the_loop():
    result = run_tune(_fresh(), FakeMeasure(), invariant_only, lambda m: LIMITS, budget=3)
    assert result.stop_reason == "budget of 3 trials reached"
    assert result.measured_trials() == 3


def test_time_limit_stops_before_the_next_trial():
    ticks = iter(range(0, 1000, 10))
    result = run_tune(
        _fresh(),
        FakeMeasure(),
        invariant_only,
        lambda m: LIMITS,
        budget=50,
        time_limit_s=25,
        clock=lambda: next(ticks),
    )
    assert result.stop_reason.startswith("time limit of 25 s")
    assert 1 <= result.measured_trials() < 50


def test_failed_crashed_hung_and_wrong_candidates_are_rejected_and_the_loop_goes_on():
    wide = START.replace({"BLOCK_N": 128})
    failures = {
        wide: Measurement("failed", reason="OutOfResources: out of resource: shared memory"),
        START.replace({"BLOCK_M": 64}): Measurement("crashed", reason="illegal memory access (exit 4)"),
        START.replace({"BLOCK_M": 256}): Measurement("timeout", reason="ran past the 300 s timeout"),
        START.replace({"BLOCK_K": 64}): Measurement(
            "ok", [5.0, 5.0, 5.0], correct=False, reason="relative L2 error 0.4 > tolerance 0.002"
        ),
    }
    # a flat cost surface: nothing is kept, so every neighbour of the start gets its turn
    result = run_tune(
        _fresh(), FakeMeasure(failures, flat=True), invariant_only, lambda m: LIMITS, budget=100
    )
    by_config = {t.config: t for t in result.trials}
    assert by_config[wide].verdict == "rejected" and "OutOfResources" in by_config[wide].why
    assert by_config[START.replace({"BLOCK_M": 64})].status == "crashed"
    assert by_config[START.replace({"BLOCK_M": 256})].status == "timeout"
    wrong = by_config[START.replace({"BLOCK_K": 64})]
    assert wrong.status == "incorrect" and wrong.verdict == "rejected" and "L2 error" in wrong.why
    assert result.best == START  # a wrong fast result never wins
    search = [t for t in result.trials if t.rule != "TUNE-FINAL"]
    assert all(t.verdict == "reverted" for t in search if t.status == "ok" and t.verdict != "start")
    # the final pick times the best and its near-ties again (a flat surface: every ok neighbour ties) and
    # the best stays; no failed configuration is among them
    final = [t for t in result.trials if t.rule == "TUNE-FINAL"]
    assert final[0].config == START and final[0].verdict == "kept"
    assert all(t.status == "ok" for t in final) and len(final) == 4
    assert result.complete and result.stop_reason.startswith("local optimum")


def test_a_broken_start_stops_with_the_reason():
    failures = {START: Measurement("crashed", reason="illegal memory access")}
    result = run_tune(_fresh(), FakeMeasure(failures), invariant_only, lambda m: LIMITS)
    assert len(result.trials) == 1 and result.trials[0].verdict == "rejected"
    assert "illegal memory access" in result.stop_reason and result.best is None


def test_interrupted_loop_leaves_the_trajectory_so_far_on_disk(tmp_path):
    trajectory = _fresh()
    with pytest.raises(KeyboardInterrupt):
        run_tune(
            trajectory,
            FakeMeasure(interrupt_at=4),
            invariant_only,
            lambda m: LIMITS,
            budget=100,
            save=lambda t: write_trajectory(tmp_path, t),
        )
    back = read_trajectory(tmp_path)
    assert back.stop_reason == "interrupted (Ctrl-C)" and back.complete is False
    assert len(back.trials) == 3 and back.best == START.replace({"BLOCK_N": 128})


def test_lost_gpu_saves_and_reraises(tmp_path):
    with pytest.raises(EnvironmentNotReady):
        run_tune(
            _fresh(),
            FakeMeasure(lose_gpu_at=2),
            invariant_only,
            lambda m: LIMITS,
            save=lambda t: write_trajectory(tmp_path, t),
        )
    back = read_trajectory(tmp_path / "tune.json")
    assert back.stop_reason.startswith("stopped:") and "GPU" in back.stop_reason
    assert [t.verdict for t in back.trials] == ["start"]


def test_trajectory_round_trip_and_bad_files(tmp_path):
    result = run_tune(_fresh(), FakeMeasure(), invariant_only, lambda m: LIMITS, budget=4)
    path = write_trajectory(tmp_path, result)
    data = json.loads(path.read_text())
    assert data["kind"] == "ncu-advisor-tune" and len(data["trials"]) == 4
    back = read_trajectory(path)
    assert back.to_json() == result.to_json()
    rows = summary_rows(back)
    assert rows[1]["vs_start"] == pytest.approx(result.trials[0].median_ms / result.trials[1].median_ms)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RunError, match="not JSON"):
        read_trajectory(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"kind": "something"}')
    with pytest.raises(RunError, match="not an ncu-advisor tune"):
        read_trajectory(tmp_path / "other.json")
    with pytest.raises(RunError, match="cannot read"):
        read_trajectory(tmp_path / "missing.json")


def test_measurement_from_child_result():
    result = {
        "status": "ok",
        "timings_ms": [1.0, 2.0, 3.0],
        "correctness": {"passed": True},
        "triton_kernels": [
            {"name": "conv2d_scale_min_kernel", "n_regs": 187, "n_spills": 0, "shared": 32768}
        ],
        "override": {"launched_with": {"BLOCK_M": 128}, "int_args": {"C_out": 128}},
    }
    m = measurement_from_result("ok", None, result, "conv2d_scale_min_kernel")
    assert (m.median_ms, m.n_regs, m.shared, m.int_args, m.usable) == (2.0, 187, 32768, {"C_out": 128}, True)
    wrong = measurement_from_result(
        "incorrect",
        "relative L2 error",
        {**result, "correctness": {"passed": False}},
        "conv2d_scale_min_kernel",
    )
    assert wrong.correct is False and not wrong.usable


def test_rule_recommender_on_the_recorded_seed001_report():
    """The real rule set over the recorded H200 report of seed 001 plus the source analysis: the invariant
    load move comes first, then the register-pressure halving with the rule's own effect formula."""
    from ncu_advisor.collect.tune.session import plan_tune
    from ncu_advisor.ingest.readers import read_report
    from ncu_advisor.rules import load_rules

    table = read_report(SEED_REPORT, variant="ModelNew_seed001")
    registers = float(table["launch__registers_per_thread"].iloc[0])
    plan = plan_tune(ROOT / "kernels" / "fused.py", "ModelNew_seed001")
    assert plan.start == START
    recommend = RuleRecommender(
        plan.kernel, plan.source, load_rules(), plan.invariant, profile=lambda config, m: table
    )
    advice = recommend(START, Measurement("ok", [1.0], True, n_regs=int(registers), int_args=dict(INT_ARGS)))
    ordered = sorted(advice.moves, key=lambda m: -m.effect)
    assert ordered[0].rule == INVARIANT_RULE and (ordered[0].param, ordered[0].value) == ("BLOCK_N", 128)
    assert ordered[0].effect == pytest.approx(1 - 1 / math.ceil(128 / 32))
    halve = next(m for m in advice.moves if m.rule == "NA105" and m.param is None)
    assert halve.value == 0.5 and halve.effect == pytest.approx(min(0.5, (registers - 128) / registers))
    assert any("line 249" in note and "BLOCK_N -> 128" in note for note in advice.notes)


def test_line_search_jumps_and_a_kept_step_is_repeated_with_its_measured_gain():
    """From BLOCK_M 1 on a surface that keeps paying for larger blocks up to 4096: the first round's line
    search reaches x8 at once; the kept x8 is then repeated (pattern search, its measured gain as the
    effect) ahead of everything else, so four rounds cover 1 -> 4096 where one-step moves would need 12."""
    start = TuneConfig.make({"BLOCK_M": 1, "BLOCK_N": 64}, 4, 2)

    def cost(config):
        return 100.0 / config.param_dict["BLOCK_M"] + (0 if config.param_dict["BLOCK_N"] == 64 else 5)

    def measure(config):
        ms = cost(config or start)
        return Measurement("ok", [ms * 0.999, ms, ms * 1.001], True)

    trajectory = Trajectory(kernel_file="k.py", variant="V", kernel="k", start=start)
    result = run_tune(
        trajectory,
        measure,
        lambda c, m: Recommendation(),
        lambda m: Limits(min_block=1, max_block=4096),
    )
    kept = [t for t in result.trials if t.verdict == "kept" and t.rule != "TUNE-FINAL"]
    assert [t.config.param_dict["BLOCK_M"] for t in kept] == [8, 64, 512, 4096]
    assert kept[0].rule == "TUNE-LINE"
    assert [t.rule for t in kept[1:]] == ["TUNE-REPEAT"] * 3
    assert kept[1].effect == pytest.approx(1 - cost(kept[0].config) / cost(start))
    assert result.best.param_dict == {"BLOCK_M": 4096, "BLOCK_N": 64}
    assert result.stop_reason.startswith("local optimum")
    configs = [t.config for t in result.trials if t.rule != "TUNE-FINAL"]
    assert len(configs) == len(set(configs))  # searched once each; the final pick only re-times


def test_moves_from_findings_pair_first_then_singles():
    import types

    from ncu_advisor.collect.tune.loop import moves_from_findings

    rule = types.SimpleNamespace(
        spec=types.SimpleNamespace(proposal=ProposalHint(block_scale=0.5, num_warps=4, num_stages=2))
    )
    finding = types.SimpleNamespace(rule="NA309", name="local-memory-spills", estimated_effect=0.4)
    moves = moves_from_findings([finding], {"NA309": rule}, ["BLOCK_M", "BLOCK_N"])
    kinds = [(m.kind, m.param, m.effect) for m in moves]
    assert ("block_scale", None, 0.4) in kinds and ("warps_stages", None, 0.4) in kinds
    assert ("block_scale", "BLOCK_M", pytest.approx(0.36)) in kinds
    assert ("num_warps", None, pytest.approx(0.36)) in kinds and (
        "num_stages",
        None,
        pytest.approx(0.36),
    ) in kinds
    pair = next(m for m in moves if m.kind == "warps_stages")
    from ncu_advisor.collect.tune.space import _apply

    start = TuneConfig.make({"BLOCK_M": 64, "BLOCK_N": 64}, 8, 3)
    assert _apply(start, pair, ["BLOCK_M", "BLOCK_N"]) == start.replace(num_warps=4, num_stages=2)
    # a rule without a proposal gives no move
    quiet = types.SimpleNamespace(spec=types.SimpleNamespace(proposal=None))
    assert (
        moves_from_findings(
            [types.SimpleNamespace(rule="NA301", name="x", estimated_effect=0.9)],
            {"NA301": quiet},
            ["BLOCK_M"],
        )
        == []
    )


def test_source_facts_follow_the_pinned_config_not_the_variant_config():
    """The rules read src_block_* of the config being tuned, also for the zoo's config-dict variants."""
    from ncu_advisor.collect.tune.recommend import _pinned_source
    from ncu_advisor.kernelsrc.facts import analyze_file, facts_for

    source = analyze_file(ROOT / "kernels" / "elementwise.py")
    pinned = _pinned_source(source, "fma_gelu_scale_kernel", TuneConfig.make({"BLOCK_SIZE": 512}, 4, 2))
    kernel = pinned.kernel("fma_gelu_scale_kernel")
    if hasattr(kernel, "for_variant"):
        kernel = kernel.for_variant("ModelNew_block64_w8")
    facts = facts_for(kernel)
    assert facts["src_block_size"] == 512 and facts["src_num_warps"] == 4 and facts["src_num_stages"] == 2


def test_limits_from_the_plan_the_start_launch_and_the_gpu_catalogue():
    from ncu_advisor.collect.tune.session import make_limits, plan_tune
    from ncu_advisor.collect.tune.space import shared_estimate, violations

    plan = plan_tune(ROOT / "kernels" / "fused.py", "ModelNew_seed001")
    # the compiled start used 2 stages * (128*32 + 32*32) fp32 values of shared memory
    shared = 2 * (128 * 32 + 32 * 32) * 4
    ada = Measurement(
        "ok",
        [1.0],
        True,
        shared=shared,
        int_args=dict(INT_ARGS),
        environment={"gpu": {"name": "NVIDIA GeForce RTX 4090", "cc": "8.9", "sm_count": 128}},
    )
    limits = make_limits(plan, START, ada)
    assert limits.uses_dot and limits.element_bytes == 4 and limits.min_block == 16
    assert limits.extents == {"BLOCK_N": 128, "BLOCK_K": 64 * 3 * 3}
    assert limits.shared_per_block == 99 * 1024  # the catalogue's RTX 4090 opt-in limit
    big = TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64}, 8, 3)
    assert shared_estimate(big, limits) == 3 * (128 * 64 + 64 * 128) * 4 > 99 * 1024
    assert any("shared memory" in v for v in violations(big, limits))
    hopper = make_limits(
        plan,
        START,
        Measurement(
            "ok",
            [1.0],
            True,
            shared=shared // 2,
            int_args=dict(INT_ARGS),
            environment={"gpu": {"name": "NVIDIA H200", "cc": "9.0"}},
        ),
    )
    assert hopper.shared_per_block == 227 * 1024 and hopper.element_bytes == 2
    assert not violations(big, hopper)


def test_moves_from_shipped_dot_rules():
    """NA311 (block_min with warps/stages in one trial) and NA312 (BLOCK_M and BLOCK_N together)."""
    import types

    from ncu_advisor.collect.tune.loop import moves_from_findings
    from ncu_advisor.collect.tune.space import _apply
    from ncu_advisor.rules import load_rules

    rules = {rule.id: rule for rule in load_rules()}
    blocks = ["BLOCK_K", "BLOCK_M", "BLOCK_N"]
    start = TuneConfig.make({"BLOCK_K": 16, "BLOCK_M": 16, "BLOCK_N": 16, "GROUP_M": 8}, 1, 1)

    below = types.SimpleNamespace(rule="NA311", name="dot-tiles-below-range", estimated_effect=0.5)
    (move,) = moves_from_findings([below], rules, blocks)
    assert move.kind == "block_min"
    raised = _apply(start, move, blocks)
    assert raised == TuneConfig.make({"BLOCK_K": 32, "BLOCK_M": 32, "BLOCK_N": 32, "GROUP_M": 8}, 4, 2)
    # BLOCKs already at or above the floor stay as they are; GROUP_M is not a BLOCK and never moves.
    wide = TuneConfig.make({"BLOCK_K": 16, "BLOCK_M": 128, "BLOCK_N": 64, "GROUP_M": 8}, 8, 3)
    assert _apply(wide, move, blocks).param_dict == {
        "BLOCK_K": 32,
        "BLOCK_M": 128,
        "BLOCK_N": 64,
        "GROUP_M": 8,
    }

    grow = types.SimpleNamespace(rule="NA312", name="dot-tile-grow", estimated_effect=0.1)
    moves = moves_from_findings([grow], rules, blocks)
    together = moves[0]
    assert (together.kind, together.param, together.value) == ("block_scale", "BLOCK_M,BLOCK_N", 2.0)
    assert _apply(raised, together, blocks).param_dict == {
        "BLOCK_K": 32,
        "BLOCK_M": 64,
        "BLOCK_N": 64,
        "GROUP_M": 8,
    }
    assert [(m.param, round(m.effect, 6)) for m in moves[1:]] == [("BLOCK_M", 0.09), ("BLOCK_N", 0.09)]
    # A kernel without BLOCK_M/BLOCK_N: the scale applies to its BLOCKs.
    (single,) = moves_from_findings([grow], rules, ["BLOCK_SIZE"])
    assert single.param is None and single.kind == "block_scale"


def test_repeat_move_of_a_block_group():
    from ncu_advisor.collect.tune.loop import repeat_move
    from ncu_advisor.collect.tune.space import _apply

    before = TuneConfig.make({"BLOCK_K": 32, "BLOCK_M": 32, "BLOCK_N": 32}, 4, 3)
    after = before.replace({"BLOCK_M": 64, "BLOCK_N": 64})
    move = repeat_move(before, after, 1.0, 0.4)
    assert move is not None and move.param == "BLOCK_M,BLOCK_N" and move.effect == pytest.approx(0.6)
    assert _apply(after, move, ["BLOCK_K", "BLOCK_M", "BLOCK_N"]).param_dict == {
        "BLOCK_K": 32,
        "BLOCK_M": 128,
        "BLOCK_N": 128,
    }
    # Different factors, or warps changed too: no repeat.
    assert repeat_move(before, before.replace({"BLOCK_M": 64, "BLOCK_N": 16}), 1.0, 0.5) is None
    assert repeat_move(before, after.replace(num_warps=8), 1.0, 0.5) is None
