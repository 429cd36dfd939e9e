"""The tune loop: measure the start, then repeat recommend -> candidates -> measure -> keep or revert.

The loop itself (``run_tune``) knows nothing of processes or GPUs: it calls two functions,

- ``measure(config)`` -> ``Measurement``: run the variant with ``config`` pinned (None: as written) and
  return its timing repetitions, correctness and Triton register counts (``ChildBackend.measure``: a bare
  child process, ``python -m ncu_advisor.collect.profile.child FILE CLASS --mode bench --override JSON``);
- ``recommend(config, measurement)`` -> ``Recommendation``: the moves the firing rules ask for from that
  configuration (``RuleRecommender``: ncu metrics of one NVTX-ranged call, or, without ncu, the Triton
  register counts, evaluated by the rule set with the source facts, plus the loop-invariant-load analysis).

so tests drive it with stand-ins for both. Keep/revert (``decide``): a candidate replaces the best only
when ``median(candidate) < median(best) * (1 - min_gain)`` AND ``max(candidate reps) < min(best reps)``,
i.e. it is at least ``min_gain`` (2%) faster and every one of its do_bench medians beats every one of
the best's (the spread of the repetitions is the measured noise). Stops when no rule (or neighbour move)
proposes an untried configuration, at ``budget`` measured trials (the start counts as one), or at
``time_limit_s``. A candidate that fails, crashes, hangs or is wrong is recorded as rejected and the loop
goes on. Ctrl-C and a lost GPU save the trajectory so far (``stop_reason``) and re-raise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncu_advisor.analysis.trajectory import Trajectory, Trial
from ncu_advisor.collect.tune.space import Candidate, Limits, Move, TuneConfig, generate_candidates
from ncu_advisor.errors import AdvisorError
from ncu_advisor.kernelsrc.invariant import (
    InvariantLoad,
    kernel_assignments,
    loop_extents,
    resolve_extent,
    suggested_block,
)

MIN_GAIN = 0.02
TUNE_CHILD_MODULE = "ncu_advisor.collect.tune.child"
INVARIANT_RULE = "SRC-INVARIANT-LOAD"
#: After a kept step along one BLOCK dimension, the same step again, with the measured gain as its effect.
REPEAT_RULE = "TUNE-REPEAT"
#: Metrics compared between a kept configuration and the one it replaced (relative change >= 5% is "moved").
MOVED_THRESHOLD = 0.05


@dataclass
class Measurement:
    """What one run of a configuration gave."""

    status: str
    reps_ms: list[float] = field(default_factory=list)
    correct: bool | None = None
    reason: str | None = None
    n_regs: int | None = None
    n_spills: int | None = None
    shared: int | None = None
    launched_with: dict[str, int] = field(default_factory=dict)
    int_args: dict[str, int] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def median_ms(self) -> float | None:
        if not self.reps_ms:
            return None
        ordered = sorted(self.reps_ms)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.correct is not False and bool(self.reps_ms)


@dataclass
class Recommendation:
    """The moves firing rules ask for from one configuration, and the metrics they read."""

    moves: list[Move] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Measure = Callable[[TuneConfig | None], Measurement]
Recommend = Callable[[TuneConfig, Measurement], Recommendation]


def decide(
    candidate_reps: list[float], best_reps: list[float], min_gain: float = MIN_GAIN
) -> tuple[bool, str]:
    """Keep the candidate? (see the module docstring for the test); returns (keep, why)."""
    if not candidate_reps or not best_reps:
        return False, "no timings to compare"
    cand = Measurement("ok", list(candidate_reps)).median_ms or 0.0
    best = Measurement("ok", list(best_reps)).median_ms or 0.0
    gain = 1.0 - cand / best if best > 0 else 0.0
    if cand >= best * (1.0 - min_gain):
        return (
            False,
            f"{gain:+.1%} vs best ({cand:.4g} ms vs {best:.4g} ms): below the {min_gain:.0%} threshold",
        )
    if max(candidate_reps) >= min(best_reps):
        return False, (
            f"{gain:+.1%} but within the noise: slowest rep {max(candidate_reps):.4g} ms >= "
            f"fastest rep of the best {min(best_reps):.4g} ms"
        )
    return True, f"{gain:+.1%} vs best ({cand:.4g} ms vs {best:.4g} ms), outside the noise"


def _moved(before: dict[str, float], after: dict[str, float]) -> dict[str, list[float | None]]:
    moved: dict[str, list[float | None]] = {}
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            continue
        base = max(abs(a), 1e-12)
        if abs(b - a) / base >= MOVED_THRESHOLD:
            moved[name] = [a, b]
    return moved


def _trial(
    index: int,
    config: TuneConfig,
    candidate: Candidate | None,
    m: Measurement | None,
    status: str,
    verdict: str,
    why: str,
    elapsed: float | None,
) -> Trial:
    return Trial(
        index=index,
        config=config,
        rule=candidate.rule if candidate else "start",
        effect=candidate.effect if candidate else 0.0,
        reason=candidate.reason if candidate else "the variant as written",
        status=status,
        verdict=verdict,
        why=why,
        median_ms=m.median_ms if m else None,
        reps_ms=list(m.reps_ms) if m else [],
        correct=m.correct if m else None,
        n_regs=m.n_regs if m else None,
        n_spills=m.n_spills if m else None,
        elapsed_s=elapsed,
    )


def run_tune(
    trajectory: Trajectory,
    measure: Measure,
    recommend: Recommend,
    limits_for: Callable[[Measurement], Limits],
    *,
    budget: int = 12,
    time_limit_s: float | None = None,
    min_gain: float = MIN_GAIN,
    save: Callable[[Trajectory], None] | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Trajectory:
    """Run the loop on ``trajectory`` (its ``start`` is the variant's configuration as the source says).

    Args:
        trajectory: a fresh trajectory (no trials).
        measure: runs one configuration (None: the variant as written).
        recommend: the moves the rules ask for from a configuration.
        limits_for: the limits, given the start's measurement (runtime extents come from its launch).
        budget: at most this many measured trials, the start included.
        time_limit_s: stop starting new trials after this many seconds.
        min_gain: the relative gain a candidate must show (0.02: 2%).
        save: called after every trial (writes ``tune.json``).
        on_trial: called after every trial (progress output).
        clock: monotonic seconds (tests pass a fake).

    Returns:
        The trajectory, ``complete`` with its ``stop_reason``.

    Raises:
        KeyboardInterrupt, AdvisorError: after saving the trajectory so far with the reason.
    """
    started = clock()
    save = save or (lambda _t: None)

    def record(trial: Trial) -> None:
        trajectory.trials.append(trial)
        save(trajectory)
        if on_trial is not None:
            on_trial(trial)

    try:
        t0 = clock()
        start_m = measure(None)
        if start_m.launched_with:
            recorded = {
                k: v for k, v in start_m.launched_with.items() if k not in ("num_warps", "num_stages")
            }
            trajectory.start = trajectory.start.replace(
                {
                    k: v
                    for k, v in recorded.items()
                    if k in trajectory.start.param_dict or k.upper().startswith("BLOCK")
                },
                num_warps=start_m.launched_with.get("num_warps"),
                num_stages=start_m.launched_with.get("num_stages"),
            )
        trajectory.environment = dict(start_m.environment)
        if not start_m.usable:
            why = start_m.reason or ("incorrect" if start_m.correct is False else start_m.status)
            record(_trial(0, trajectory.start, None, start_m, start_m.status, "rejected", why, clock() - t0))
            trajectory.stop_reason = (
                f"the variant as written does not run correctly ({why}): nothing to tune from"
            )
            trajectory.complete = True
            save(trajectory)
            return trajectory
        best, best_m = trajectory.start, start_m
        trajectory.best, trajectory.best_median_ms = best, best_m.median_ms
        record(_trial(0, best, None, start_m, "ok", "start", "starting point", clock() - t0))
        limits = limits_for(start_m)
        advice = recommend(best, best_m)
        while True:
            if trajectory.measured_trials() >= budget:
                trajectory.stop_reason = f"budget of {budget} trials reached"
                break
            if time_limit_s is not None and clock() - started >= time_limit_s:
                trajectory.stop_reason = f"time limit of {time_limit_s:g} s reached"
                break
            candidates, dropped = generate_candidates(best, advice.moves, limits, trajectory.tried())
            rule_moves = [mv for mv in advice.moves if not mv.rule.startswith("TUNE-")]
            rule_dropped = [
                (c, why)
                for c, why in dropped
                if c not in trajectory.tried() and _proposed_by_rule(best, c, rule_moves)
            ]
            for config, why in rule_dropped:
                record(
                    _trial(
                        len(trajectory.trials),
                        config,
                        _rule_candidate(best, config, rule_moves),
                        None,
                        "rejected-limits",
                        "rejected",
                        why,
                        0.0,
                    )
                )
            if not candidates:
                trajectory.stop_reason = "no rule proposes an untried configuration"
                break
            candidate = candidates[0]
            t0 = clock()
            m = measure(candidate.config)
            elapsed = clock() - t0
            if not m.usable:
                why = m.reason or ("wrong result" if m.correct is False else m.status)
                status = "incorrect" if m.status == "ok" and m.correct is False else m.status
                record(
                    _trial(
                        len(trajectory.trials),
                        candidate.config,
                        candidate,
                        m,
                        status,
                        "rejected",
                        why,
                        elapsed,
                    )
                )
                continue
            keep, why = decide(m.reps_ms, best_m.reps_ms, min_gain)
            trial = _trial(
                len(trajectory.trials),
                candidate.config,
                candidate,
                m,
                "ok",
                "kept" if keep else "reverted",
                why,
                elapsed,
            )
            if m.n_regs is not None and best_m.n_regs is not None and m.n_regs != best_m.n_regs:
                trial.metrics_moved["n_regs"] = [float(best_m.n_regs), float(m.n_regs)]
            if keep:
                previous, previous_best, previous_ms = advice.metrics, best, best_m.median_ms
                best, best_m = candidate.config, m
                trajectory.best, trajectory.best_median_ms = best, m.median_ms
                advice = recommend(best, best_m)
                trial.metrics_moved.update(_moved(previous, advice.metrics))
                repeat = repeat_move(previous_best, best, previous_ms, m.median_ms)
                if repeat is not None:
                    advice.moves.append(repeat)
            record(trial)
    except (KeyboardInterrupt, AdvisorError) as exc:
        trajectory.stop_reason = (
            "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"
        )
        trajectory.complete = False
        save(trajectory)
        raise
    trajectory.complete = True
    save(trajectory)
    return trajectory


def repeat_move(
    before: TuneConfig, after: TuneConfig, before_ms: float | None, after_ms: float | None
) -> Move | None:
    """The same one-dimension BLOCK step again (pattern search), its effect the gain the step just measured.

    Only when BLOCK values alone changed (one, several or all), all by the same factor.
    """
    if (
        before.num_warps != after.num_warps
        or before.num_stages != after.num_stages
        or not before_ms
        or not after_ms
    ):
        return None
    old, new = before.param_dict, after.param_dict
    if set(old) != set(new):
        return None
    changed = sorted(k for k in old if old[k] != new[k])
    blocks = sorted(k for k in old if k.upper().startswith("BLOCK"))
    factors = {new[k] / old[k] for k in changed}
    if not changed or len(factors) != 1 or not set(changed) <= set(blocks):
        return None
    factor = factors.pop()
    # One BLOCK, every BLOCK, or a group of them (a rule's block_params, e.g. BLOCK_M and BLOCK_N).
    name = None if changed == blocks else ",".join(changed)
    gain = max(0.0, 1.0 - after_ms / before_ms)
    what = "every BLOCK" if name is None else " and ".join(changed)
    return Move(
        REPEAT_RULE,
        gain,
        "block_scale",
        factor,
        name,
        f"{REPEAT_RULE}: {what} x{factor:g} again (the last x{factor:g} gained {gain:.0%})",
    )


def _proposed_by_rule(current: TuneConfig, config: TuneConfig, moves: list[Move]) -> bool:
    return _rule_candidate(current, config, moves) is not None


def _rule_candidate(current: TuneConfig, config: TuneConfig, moves: list[Move]) -> Candidate | None:
    from ncu_advisor.collect.tune.space import _apply  # noqa: PLC0415 - the one move interpreter

    blocks = [k for k, _ in current.params if k.upper().startswith("BLOCK")]
    for move in sorted(moves, key=lambda mv: -mv.effect):
        if _apply(current, move, blocks) == config:
            return Candidate(config, move.rule, move.effect, move.reason)
    return None


# ------------------------------------------------------------------------------------------- rules -> moves
def moves_from_findings(findings: list[Any], rules_by_id: dict[str, Any], blocks: list[str]) -> list[Move]:
    """Turn findings of rules with a ``proposal`` hint into moves (each with the finding's estimated effect).

    ``block_scale`` s: scale every BLOCK (or the hint's ``block_params``) together (the seeds' "halve
    BLOCK_*"), then each alone at 90% of the effect; ``block_min`` n: raise every BLOCK below n to n in one
    trial, with the hint's num_warps/num_stages; ``num_warps`` / ``num_stages``: set them (both together
    first when a rule asks for both, each alone at 90%).
    """
    moves: list[Move] = []
    for finding in findings:
        rule = rules_by_id.get(finding.rule)
        hint = getattr(getattr(rule, "spec", None), "proposal", None)
        if hint is None:
            continue
        effect = float(finding.estimated_effect)
        label = f"{finding.rule} {finding.name}"
        if hint.block_min is not None and blocks:
            # One trial: every BLOCK raised to the floor, with the warps/stages the rule names.
            extra = "".join(
                f", {what} {value}"
                for what, value in (("num_warps", hint.num_warps), ("num_stages", hint.num_stages))
                if value is not None
            )
            moves.append(
                Move(
                    finding.rule,
                    effect,
                    "block_min",
                    float(hint.block_min),
                    None,
                    f"{label}: every BLOCK to at least {hint.block_min}{extra}",
                    stages=hint.num_stages,
                    warps=hint.num_warps,
                )
            )
            continue
        scaled = [n for n in blocks if hint.block_params is None or n in hint.block_params] or blocks
        if hint.block_scale is not None and scaled:
            together = None if scaled == blocks else ",".join(scaled)
            what_scaled = "every BLOCK" if together is None else " and ".join(scaled)
            moves.append(
                Move(
                    finding.rule,
                    effect,
                    "block_scale",
                    float(hint.block_scale),
                    together,
                    f"{label}: {what_scaled} x{hint.block_scale:g}",
                )
            )
            for name in scaled if len(scaled) > 1 else []:
                moves.append(
                    Move(
                        finding.rule,
                        effect * 0.9,
                        "block_scale",
                        float(hint.block_scale),
                        name,
                        f"{label}: {name} x{hint.block_scale:g}",
                    )
                )
        both = hint.num_warps is not None and hint.num_stages is not None
        if both:  # the rule asks for the pair: one trial, then each alone at 90%
            moves.append(
                Move(
                    finding.rule,
                    effect,
                    "warps_stages",
                    hint.num_warps,
                    None,
                    f"{label}: num_warps {hint.num_warps}, num_stages {hint.num_stages}",
                    stages=hint.num_stages,
                )
            )
        single = effect * 0.9 if both else effect
        if hint.num_warps is not None:
            moves.append(
                Move(
                    finding.rule,
                    single,
                    "num_warps",
                    hint.num_warps,
                    None,
                    f"{label}: num_warps {hint.num_warps}",
                )
            )
        if hint.num_stages is not None:
            moves.append(
                Move(
                    finding.rule,
                    single,
                    "num_stages",
                    hint.num_stages,
                    None,
                    f"{label}: num_stages {hint.num_stages}",
                )
            )
    return moves


def invariant_moves(
    loads: list[InvariantLoad], current: TuneConfig, int_args: dict[str, int], assignments: dict[str, str]
) -> tuple[list[Move], list[str]]:
    """Moves that make a loop with a repeated (invariant) load run once: ``step_param -> bound``.

    The effect is the share of the repeated load work removed, ``1 - 1/trips`` with
    ``trips = ceil(extent / current step)`` (a stated heuristic: the load dominates the loop's cost).
    """
    moves: list[Move] = []
    notes: list[str] = []
    params = current.param_dict
    for load in loads:
        if not load.step_param or not load.loop_bound or load.step_param not in params:
            continue
        extent = resolve_extent(load.loop_bound, int_args, assignments)
        notes.append(load.describe(extent))
        if extent is None:
            continue
        target = suggested_block(extent)
        step = params[load.step_param]
        if target <= step:
            continue
        trips = -(-extent // step)
        moves.append(
            Move(
                INVARIANT_RULE,
                1.0 - 1.0 / trips,
                "block_set",
                target,
                load.step_param,
                f"{INVARIANT_RULE}: load of {load.pointer} (line {load.load_line}) repeated {trips}x by the "
                f"loop at line {load.loop_line}: {load.step_param} -> {target}",
            )
        )
    return moves, notes


def extents_for(source_text: str, kernel: str, int_args: dict[str, int]) -> dict[str, int]:
    """Runtime extents of the BLOCK parameters that step a ``range`` loop (``BLOCK_N`` -> ``C_out``)."""
    assignments = kernel_assignments(source_text, kernel)
    extents: dict[str, int] = {}
    for step, bound in loop_extents(source_text, kernel):
        value = resolve_extent(bound, int_args, assignments)
        if value is not None:
            extents[step] = max(value, extents.get(step, 0))
    return extents


class RuleRecommender:
    """``recommend`` for ``run_tune``: rules over a profile of the configuration, plus invariant loads.

    Args:
        kernel: the tuned kernel's name.
        source: ``ncu_advisor.kernelsrc.facts.SourceFacts`` of the kernel file.
        rules: the loaded rule set.
        invariant: the kernel's invariant loads.
        profile: ``(config, measurement) -> tidy table or None`` (ncu); None uses the Triton register
            counts only (``launch__registers_per_thread`` = n_regs), so register rules still fire, and the
            GPU name and compute capability the child reports (``gpu_*`` names for the rules).
        stage: the rule stage passed to ``evaluate``.
    """

    def __init__(
        self,
        kernel: str,
        source: Any,
        rules: list[Any],
        invariant: list[InvariantLoad],
        profile: Callable[[TuneConfig, Measurement], Any] | None = None,
        stage: str = "auto",
    ) -> None:
        self.kernel = kernel
        self.source = source
        self.rules = rules
        self.rules_by_id = {r.id: r for r in rules}
        self.invariant = invariant
        self.profile = profile
        self.stage = stage
        self.assignments = kernel_assignments(source.text, kernel) if source is not None else {}
        self.history: list[dict[str, Any]] = []

    def _table(self, config: TuneConfig, measurement: Measurement) -> Any:
        import pandas as pd  # noqa: PLC0415

        table = self.profile(config, measurement) if self.profile is not None else None
        if table is None or len(table) == 0:
            row: dict[str, Any] = {
                "source": "tune",
                "variant": "tune",
                "range": 0,
                "action": 0,
                "kernel": self.kernel,
                "demangled": self.kernel,
                "nvtx": None,
                "gpu": None,
                "cc": None,
            }
            gpu = measurement.environment.get("gpu") or {}
            if isinstance(gpu.get("name"), str) and gpu["name"]:
                row["gpu"] = gpu["name"]  # the rules' gpu_* names come from the catalogue entry
            cc = gpu.get("cc")
            if isinstance(cc, str) and cc.count(".") == 1 and cc.replace(".", "").isdigit():
                row["cc"] = cc
                major, minor = cc.split(".")
                row["device__attribute_compute_capability_major"] = float(major)
                row["device__attribute_compute_capability_minor"] = float(minor)
            if measurement.n_regs is not None:
                row["launch__registers_per_thread"] = float(measurement.n_regs)
            if measurement.n_spills is not None:
                row["n_spills"] = float(measurement.n_spills)
            table = pd.DataFrame([row])
        return table

    def __call__(self, config: TuneConfig, measurement: Measurement) -> Recommendation:
        from ncu_advisor.rules import evaluate  # noqa: PLC0415

        table = self._table(config, measurement)
        source = _pinned_source(self.source, self.kernel, config)
        results = evaluate(table, self.rules, source=source, stage=self.stage)
        mine = [
            r for r in results if r.kernel == self.kernel or r.kernel.startswith(self.kernel + "_")
        ] or results
        findings = [f for r in mine for f in r.findings]
        metrics: dict[str, float] = {}
        for r in mine[:1]:
            metrics.update({k: float(v) for k, v in r.metrics.items()})
        if measurement.n_regs is not None:
            metrics["n_regs"] = float(measurement.n_regs)
        blocks = [k for k, _ in config.params if k.upper().startswith("BLOCK")]
        moves = moves_from_findings(findings, self.rules_by_id, blocks)
        extra, notes = invariant_moves(self.invariant, config, measurement.int_args, self.assignments)
        moves += extra
        notes = [f"{f.rule} {f.name}: {f.message}" for f in findings] + notes
        self.history.append(
            {"config": config.as_dict(), "findings": [f.rule for f in findings], "notes": notes}
        )
        return Recommendation(moves=moves, metrics=metrics, notes=notes)


def _pinned_source(source: Any, kernel: str, config: TuneConfig) -> Any:
    """The source facts with ``kernel``'s launch parameters replaced by ``config`` (src_* facts follow it)."""
    if source is None:
        return None
    from dataclasses import replace  # noqa: PLC0415

    kernels = []
    for facts in source.kernels:
        if facts.name == kernel:
            launch = {**config.param_dict, "num_warps": config.num_warps, "num_stages": config.num_stages}
            facts = replace(facts, launch_params=launch, autotune_configs=[])
            if getattr(facts, "variant_configs", None):  # the variant's own config must not win over the pin
                facts = replace(facts, variant_configs={})
        kernels.append(facts)
    return replace(source, kernels=kernels)


# --------------------------------------------------------------------------------------- child backend
class ChildBackend:
    """Measures and profiles configurations in child processes (``ncu_advisor.collect.profile.child``).

    Each trial gets ``run_dir/trials/NNN/`` with ``result.json``, ``child.log`` and, when profiled,
    ``profile.ncu-rep`` and ``ncu.log``.
    """

    def __init__(
        self,
        kernel_file: Path,
        variant_class: str,
        kernel: str,
        run_dir: Path,
        options: Any,
        ncu: Path | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        self.kernel_file = Path(kernel_file).resolve()
        self.variant_class = variant_class
        self.kernel = kernel
        self.run_dir = Path(run_dir)
        self.options = options
        self.ncu = ncu
        self.metrics = metrics or []
        self.count = 0
        self.profiles = 0

    def _override(self, config: TuneConfig | None) -> str:
        if config is None:
            return json.dumps({"kernel": self.kernel})
        return json.dumps(config.override(self.kernel), sort_keys=True)

    def _argv(self, config: TuneConfig | None, mode: str, folder: Path, out: Path) -> list[str]:
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415

        argv = runner.child_command(
            self.options.python,
            self.kernel_file,
            [
                self.variant_class,
                "--override",
                self._override(config),
                "--override-record",
                str(folder / "override.json"),
            ],
            mode,
            out,
            self.options,
        )
        return [TUNE_CHILD_MODULE if a == runner.CHILD_MODULE else a for a in argv]

    def _folder(self, label: str) -> Path:
        folder = self.run_dir / "trials" / label
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def measure(self, config: TuneConfig | None) -> Measurement:
        """Run the bare child (correctness + do_bench reps + n_regs) with ``config`` pinned."""
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415

        folder = self._folder(f"{self.count:03d}")
        self.count += 1
        argv = self._argv(config, "bench", folder, folder / "result.json")
        (folder / "command.json").write_text(json.dumps(argv))
        log = folder / "child.log"
        process = runner.run_process(argv, log, self.options.timeout_s)
        result = runner._read_json(folder / "result.json")
        outcome = runner.VariantOutcome(name=self.variant_class)
        runner.judge_bench(process, result, log, self.options.timeout_s, outcome)
        record = runner._read_json(folder / "override.json") or {}
        return measurement_from_result(
            outcome.status, outcome.reason, {**(result or {}), "override": record}, self.kernel
        )

    def profile(self, config: TuneConfig, measurement: Measurement) -> Any:
        """One ncu run of ``config`` (None without ncu or when the run failed: the rules then use n_regs)."""
        if self.ncu is None:
            return None
        from ncu_advisor.collect.profile import ncu as ncu_module  # noqa: PLC0415
        from ncu_advisor.collect.profile import runner  # noqa: PLC0415

        folder = self._folder(f"profile-{self.profiles:03d}")
        self.profiles += 1
        target = self._argv(config, "ncu", folder, folder / "ncu_result.json")
        argv = ncu_module.build_ncu_command(
            self.ncu,
            report_base=folder / "profile",
            target=target,
            metrics=self.metrics,
            clock_control=self.options.clock_control,
            cache_control=self.options.cache_control,
        )
        (folder / "command.json").write_text(json.dumps(argv))
        log = folder / "ncu.log"
        process = runner.run_process(argv, log, self.options.timeout_s)
        outcome = runner.VariantOutcome(name=self.variant_class)
        report = folder / "profile.ncu-rep"
        runner.judge_ncu(process, log, report, self.options.timeout_s, outcome)
        if outcome.status in ("failed", "crashed", "timeout") or not report.is_file():
            return None
        from ncu_advisor.ingest.readers import read_report  # noqa: PLC0415

        try:
            table = read_report(report, variant=self.variant_class)
        except AdvisorError:  # a truncated or unreadable report: the rules fall back to Triton's counts
            return None
        kernels = [
            {"name": name, "n_regs": measurement.n_regs, "n_spills": measurement.n_spills}
            for name in table["kernel"].astype(str).unique()
            if name.startswith(self.kernel)
        ]
        return runner.merge_triton_counts(table, self.variant_class, kernels)


def measurement_from_result(
    status: str, reason: str | None, result: dict[str, Any], kernel: str
) -> Measurement:
    """Build a ``Measurement`` from the child's result JSON and the judged status."""
    correctness = result.get("correctness") or {}
    correct = correctness.get("passed") if isinstance(correctness, dict) and correctness else None
    if status == "incorrect":
        status, correct = "ok", False
    record = result.get("override") or {}
    n_regs = n_spills = shared = None
    for entry in list(result.get("triton_kernels") or []) + list(result.get("triton_compiled") or []):
        name = str(entry.get("name") or "")
        if name == kernel or name.startswith(kernel):
            n_regs, n_spills, shared = entry.get("n_regs"), entry.get("n_spills"), entry.get("shared")
            break
    return Measurement(
        status=status,
        reps_ms=[float(t) for t in result.get("timings_ms") or []],
        correct=correct,
        reason=reason,
        n_regs=n_regs,
        n_spills=n_spills,
        shared=shared,
        launched_with=dict(record.get("launched_with") or {}),
        int_args=dict(record.get("int_args") or {}),
        environment=dict(result.get("environment") or {}),
    )
