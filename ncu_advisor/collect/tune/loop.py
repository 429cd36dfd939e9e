"""The tune search: measure the start, then batches of candidates from the rules and the space; keep or
revert each batch's fastest.

The loop (``run_tune``) knows nothing of processes or GPUs: it calls

- ``measure_many(configs)`` -> ``[Measurement]`` (or ``measure(config)`` one at a time): run each
  configuration pinned (None: the variant as written) and return its timing repetitions, correctness and
  Triton register counts (``backend.WorkerBackend``: one long-lived worker per GPU);
- ``recommend(config, measurement)`` -> ``Recommendation``: the moves the firing rules ask for from that
  configuration (``recommend.RuleRecommender``).

Search order (``batch.round_batch``). Each round measures one batch (compiled ahead together by the
worker, benched one after another, results streamed), from the best so far:
- a coordinate round: the moves the rules, the source facts (a load repeated by a loop: ``BLOCK_N ->
  C_out`` in one jump) and the last kept step (``TUNE-REPEAT``) propose, by estimated effect; the one-step
  neighbours; and a line search along each dimension (every value within 3 steps);
- when a coordinate round keeps nothing, a coupled round from the same best: pair moves of dimensions that
  act together (two tiles, a tile with num_warps or num_stages, num_warps with num_stages). A coupled round
  that keeps something is followed by a coordinate round from the new best.
The fastest candidate of a batch that passes the keep test (``keep.decide``: 2% faster by the medians and
every repetition faster than every one of the best's) replaces the best. When none passes but one beat the
best's median by the threshold inside the noise, the fastest such one is timed again beside the best
(``keep``: kept when the fresh pair shows the gain again; both timings are recorded as ``TUNE-CONFIRM``
trials and count toward ``budget``).

Screening (``screen=True``; ``tune``'s default): a batch is measured with ``screen_ms`` = the best's fastest
repetition; the worker times each candidate once and takes its other repetitions only when that first one is
below ``screen_ms``. A candidate whose first repetition is not below it fails the keep test's second clause
whatever its other repetitions are (every one must beat every one of the best's), so it is reverted
("screened out") without them: the keep decision is the one the full repetitions would give, and a kept
candidate's median is still the median of all ``reps``. Why: do_bench repetitions were most of a candidate's
cost once compiled (0.16-0.3 s per candidate at 3 repetitions on the 2026-11-30 two-H200 bench).

Stop criterion: a coupled round keeps nothing after a coordinate round kept nothing (or neither has an
untried candidate): the best is a local optimum for the rule moves, the line searches and the pair moves
(each measured one gained less than 2% beyond the noise). Also ``budget`` measured trials (the start
counts), and ``time_limit_s``: no new round after it, and every batch is cut to ``batch.TIME_SHARE`` of
the time left at the last batch's wall time per candidate (``batch.PRIOR_CONFIG_S`` before the first
batch), so a round from a new best still fits; a cut batch that kept nothing is followed by a round of the
same kind from the same best (its untried rest), not by the coupled round nor the stop. Measuring the whole
space instead (``whole_space_pays``): when the untried rest is no larger than the first round, or, after
the first round, when it is within the guided search's budget (``GUIDED_ROUNDS`` times the first round,
within ``budget``) and, at the first batch's cost per candidate, within the time left; the trajectory says
so. A candidate that fails, crashes, hangs or is wrong is recorded as rejected and the search goes on.
Ctrl-C and a lost GPU save the trajectory so far (``stop_reason``) and re-raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from ncu_advisor.analysis.trajectory import Trajectory, Trial
from ncu_advisor.collect.tune.backend import (
    TUNE_CHILD_MODULE as TUNE_CHILD_MODULE,
)
from ncu_advisor.collect.tune.backend import (
    ChildBackend as ChildBackend,
)
from ncu_advisor.collect.tune.backend import (
    Measurement,
)
from ncu_advisor.collect.tune.backend import (
    measurement_from_result as measurement_from_result,
)
from ncu_advisor.collect.tune.batch import REPEAT_RULE as REPEAT_RULE
from ncu_advisor.collect.tune.batch import (
    _rule_candidate,
    batch_size_for_time,
    limits_in_space,
    nothing_to_measure,
    repeat_move,
    round_batch,
    untried,
)
from ncu_advisor.collect.tune.keep import (
    MIN_GAIN,
    decide,
    moved_metrics,
    new_trial,
)
from ncu_advisor.collect.tune.prefetch import Guess, Prefetcher
from ncu_advisor.collect.tune.recommend import (
    INVARIANT_RULE as INVARIANT_RULE,
)
from ncu_advisor.collect.tune.recommend import (
    Recommendation,
)
from ncu_advisor.collect.tune.recommend import (
    RuleRecommender as RuleRecommender,
)
from ncu_advisor.collect.tune.recommend import (
    extents_for as extents_for,
)
from ncu_advisor.collect.tune.recommend import (
    invariant_moves as invariant_moves,
)
from ncu_advisor.collect.tune.recommend import (
    moves_from_findings as moves_from_findings,
)
from ncu_advisor.collect.tune.searchspace import SearchSpace, is_tile_param
from ncu_advisor.collect.tune.settle import Settle
from ncu_advisor.collect.tune.space import (
    Candidate,
    Limits,
    TuneConfig,
    violations,
)
from ncu_advisor.errors import AdvisorError

#: The guided search's expected trials, in first rounds: in the replay of 24 recorded H200 sweeps
#: (tests/test_tune_search_replay.py) it measured a median 2.5x and at most 3.7x its first round.
GUIDED_ROUNDS = 3
EXHAUSTIVE_RULE = "TUNE-EXHAUSTIVE"
EXHAUSTIVE_BATCH = 16
LOCAL_OPTIMUM = (
    "local optimum: no candidate of the last coordinate round (rule moves, a line search along every "
    "dimension) nor of the coupled round after it (pair moves) beat the best by the threshold beyond "
    "the noise"
)

Measure = Callable[[TuneConfig | None], Measurement]
#: ``measure_many(configs)``, or ``measure_many(configs, screen_ms)`` with ``screen=True`` (the docstring)
MeasureMany = Callable[..., Iterable[Measurement]]
Recommend = Callable[[TuneConfig, Measurement], Recommendation]


def run_tune(
    trajectory: Trajectory,
    measure: Measure | None,
    recommend: Recommend,
    limits_for: Callable[[Measurement], Limits],
    *,
    budget: int | None = None,
    time_limit_s: float | None = None,
    min_gain: float = MIN_GAIN,
    save: Callable[[Trajectory], None] | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    measure_many: MeasureMany | None = None,
    space: SearchSpace | Callable[[Measurement], SearchSpace] | None = None,
    exhaustive: bool = True,
    screen: bool = False,
    prefetch: Callable[[list[TuneConfig]], None] | None = None,
    quiet: Callable[[bool], None] | None = None,
) -> Trajectory:
    """Run the search on ``trajectory`` (its ``start`` is the variant's configuration as the source says).

    Args:
        trajectory: a fresh trajectory (no trials).
        measure: runs one configuration (None: the variant as written); unused when ``measure_many`` is set.
        recommend: the moves the rules ask for from a configuration.
        limits_for: the limits, given the start's measurement (runtime extents come from its launch).
        budget: at most this many measured trials, the start included (None: no limit).
        time_limit_s: start no new batch after this many seconds.
        min_gain: the relative gain a candidate must show (0.02: 2%).
        save: called after every trial (writes ``tune.json``).
        on_trial: called after every trial (progress output).
        clock: monotonic seconds (tests pass a fake).
        measure_many: measures a batch (the worker compiles it ahead); default: ``measure`` one by one.
        space: the search space, or a function of the start's measurement giving it (moves stay inside
            it; its size decides whether to measure all of it).
        exhaustive: allow measuring the whole space when it is small enough (see the module docstring).
        screen: pass ``measure_many`` the best's fastest repetition as ``screen_ms`` (the module docstring).
        prefetch: receives the configurations the search will likely ask for next, while a batch runs
            (``prefetch.Prefetcher``; the worker compiles them ahead; no effect on what is measured).
        quiet: called before the timings that settle a choice (``settle``: the confirmation, ``False``; the
            final pick, ``True``: nothing is compiled after it) so that no compile ahead runs beside them.

    Returns:
        The trajectory, ``complete`` with its ``stop_reason``.

    Raises:
        KeyboardInterrupt, AdvisorError: after saving the trajectory so far with the reason.
    """
    search = _Search(trajectory, measure, measure_many, recommend, min_gain, save, on_trial, clock)
    search.screen = screen
    search.prefetcher = Prefetcher(prefetch, min_gain) if prefetch is not None else None
    search.quiet = quiet
    try:
        start_m = search.measure_start()
        if not start_m.usable:
            return trajectory
        if callable(space):
            space = space(start_m)
        limits = limits_in_space(limits_for(start_m), space)
        search.space = space
        search.guided(limits, budget, time_limit_s, space if exhaustive else None)
        search.final_pick()
    except (KeyboardInterrupt, AdvisorError) as exc:
        trajectory.stop_reason = (
            "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"
        )
        trajectory.complete = False
        search.save(trajectory)
        raise
    trajectory.complete = True
    search.save(trajectory)
    return trajectory


class _Search(Settle):
    """The state of one search: the best so far, its measurement and advice; records trials."""

    def __init__(
        self,
        trajectory: Trajectory,
        measure: Measure | None,
        measure_many: MeasureMany | None,
        recommend: Recommend,
        min_gain: float,
        save: Callable[[Trajectory], None] | None,
        on_trial: Callable[[Trial], None] | None,
        clock: Callable[[], float],
    ) -> None:
        self.t = trajectory
        if measure_many is None:
            if measure is None:
                raise ValueError("run_tune needs measure or measure_many")
            one = measure

            def measure_many(
                configs: list[TuneConfig | None], screen_ms: float | None = None
            ) -> Iterator[Measurement]:
                for config in configs:
                    yield one(config)

        self.measure_many = measure_many
        self.recommend = recommend
        self.min_gain = min_gain
        self.save = save or (lambda _t: None)
        self.on_trial = on_trial
        self.budget: int | None = None
        self.time_limit_s: float | None = None
        self.clock = clock
        self.started = clock()
        self.best: TuneConfig = trajectory.start
        self.best_m: Measurement = Measurement("ok")
        self.advice = Recommendation()
        #: wall seconds per candidate of the last batch (compilation ahead included); 0 before one
        self.per_config_s = 0.0
        #: time each candidate once first (the module docstring's screening)
        self.screen = False
        self.screened = 0
        self.prefetcher: Prefetcher | None = None
        self.space: SearchSpace | None = None

    def record(self, trial: Trial, save: bool = True) -> None:
        self.t.trials.append(trial)
        if save:  # a batch saves once, after its last trial (tune.json and tune.svg: ~15 ms a save)
            self.save(self.t)
        if self.on_trial is not None:
            self.on_trial(trial)

    def measure_start(self) -> Measurement:
        t0 = self.clock()
        start_m = next(iter(self.measure_many([None])))
        t = self.t
        if start_m.launched_with:
            recorded = {
                k: v for k, v in start_m.launched_with.items() if k not in ("num_warps", "num_stages")
            }
            t.start = t.start.replace(
                {k: v for k, v in recorded.items() if k in t.start.param_dict or is_tile_param(k)},
                num_warps=start_m.launched_with.get("num_warps"),
                num_stages=start_m.launched_with.get("num_stages"),
            )
        t.environment = dict(start_m.environment)
        if not start_m.usable:
            why = start_m.reason or ("incorrect" if start_m.correct is False else start_m.status)
            elapsed = self.clock() - t0
            self.record(new_trial(0, t.start, None, start_m, start_m.status, "rejected", why, elapsed))
            t.stop_reason = f"the variant as written does not run correctly ({why}): nothing to tune from"
            t.complete = True
            self.save(t)
            return start_m
        self.best, self.best_m = t.start, start_m
        t.best, t.best_median_ms = t.start, start_m.median_ms
        self.record(new_trial(0, t.start, None, start_m, "ok", "start", "starting point", self.clock() - t0))
        self.advice = self.recommend(self.best, self.best_m)
        return start_m

    def guided(
        self,
        limits: Limits,
        budget: int | None,
        time_limit_s: float | None,
        space: SearchSpace | None = None,
    ) -> None:
        """Rounds of batches from the best (``batch.round_batch``) until one keeps nothing; after the first
        round, the whole space instead when it costs no more than the guided search (``whole_space_pays``).
        ``space`` is None when measuring the whole space is not allowed."""
        t = self.t
        self.budget, self.time_limit_s = budget, time_limit_s
        first, coupled = True, False
        while True:
            left = None if budget is None else budget - t.measured_trials()
            if left is not None and left <= 0:
                t.stop_reason = f"budget of {budget} trials reached"
                return
            time_left = None if time_limit_s is None else time_limit_s - (self.clock() - self.started)
            if time_left is not None and time_left <= 0:
                t.stop_reason = f"time limit of {time_limit_s:g} s reached"
                return
            candidates, dropped = round_batch(
                self.best, self.advice.moves, limits, t.tried(), coupled=coupled
            )
            self._record_rule_dropped(dropped)
            if not candidates:
                if coupled:  # first: no round ever had a candidate, no optimum was searched for
                    empty = nothing_to_measure(self.space, t.start, limits)
                    t.stop_reason = empty if first else LOCAL_OPTIMUM
                    return
                coupled = True
                continue
            small = first and space is not None and space.size - t.measured_trials() <= len(candidates)
            if small and space is not None and len(untried(space, limits, t.tried())) <= len(candidates):
                self.measure_all(space, limits, f"no more than the {len(candidates)} of one round")
                return
            batch = candidates[: left if left is not None else len(candidates)]
            batch = batch[: batch_size_for_time(time_left, self.per_config_s, len(batch))]
            rest = [c.config for c in candidates[len(batch) :]]
            self._plan(Guess(self.best, self.advice.moves, limits, t.tried(), rest, coupled, self.space))
            kept = self.run_batch(batch)
            if first and space is not None:
                verdict = self.whole_space_pays(space, limits, len(candidates), budget, time_limit_s)
                if verdict is not None:
                    self.measure_all(space, limits, verdict)
                    return
            first = False
            if not kept and len(batch) < len(candidates):
                continue  # a cut batch: the same kind of round goes on with the rest of its candidates
            if not kept and coupled:
                t.stop_reason = LOCAL_OPTIMUM
                return
            coupled = not kept

    def whole_space_pays(
        self,
        space: SearchSpace,
        limits: Limits,
        round_size: int,
        budget: int | None,
        time_limit_s: float | None,
    ) -> str | None:
        """Why measuring the rest of the space is allowed (None: it is not).

        The guided search's budget: ``GUIDED_ROUNDS`` times the first round's size, within
        ``budget`` trials and ``time_limit_s``; the rest of the space must fit in what is left of it, at the
        per-configuration cost the first batch measured (compilation ahead included)."""
        measured = self.t.measured_trials()
        allowed = 1 + GUIDED_ROUNDS * round_size - measured
        if budget is not None:
            allowed = min(allowed, budget - measured)
        if space.size - measured > allowed:  # more than allowed even before the limits: skip the count
            return None
        remaining = len(untried(space, limits, self.t.tried()))
        if not remaining:
            return None
        cost = remaining * self.per_config_s
        if remaining > allowed:
            return None
        if time_limit_s is not None and cost > time_limit_s - (self.clock() - self.started):
            return None
        return (
            f"the other {remaining} cost about {cost:.1f} s at the first batch's "
            f"{self.per_config_s:.2f} s per config, within the guided search's budget of {allowed} trials"
        )

    def run_batch(self, batch: list[Candidate]) -> bool:
        """Measure ``batch`` together; the fastest candidate that passes the keep test becomes the best.

        Returns whether one was kept; ``per_config_s`` becomes the batch's wall time per candidate.
        Interrupted (Ctrl-C, lost GPU): the candidates measured so far are recorded, then it re-raises.
        """
        t0 = self.clock()
        results: list[Measurement] = []
        configs: list[TuneConfig | None] = [c.config for c in batch]
        screen_ms = min(self.best_m.reps_ms) if self.screen and self.best_m.reps_ms else None
        prefetcher = self.prefetcher
        try:
            many = self.measure_many
            if prefetcher is not None:
                prefetcher.before([c.config for c in batch])
            for m in many(configs) if screen_ms is None else many(configs, screen_ms):
                results.append(m)
                if prefetcher is not None:
                    prefetcher.result([c.config for c in batch], results, self.best_m)
        except (KeyboardInterrupt, AdvisorError):
            self._judge(batch[: len(results)], results, (self.clock() - t0) / max(1, len(results)))
            raise
        finally:
            if prefetcher is not None:
                prefetcher.done()
        self.per_config_s = (self.clock() - t0) / max(1, len(batch))
        return self._judge(batch, results, self.per_config_s) or self._confirm(batch, results)

    def _verdict(self, m: Measurement) -> tuple[bool, str]:
        if not m.usable:
            return False, ""
        if m.screened:
            self.screened += 1
            self.t.options["screened"] = self.screened
            fastest = min(self.best_m.reps_ms)
            return False, (
                f"screened out: its first rep {m.reps_ms[0]:.4g} ms >= the best's fastest rep "
                f"{fastest:.4g} ms, so no further rep could make it pass the keep test (not timed again)"
            )
        return decide(m.reps_ms, self.best_m.reps_ms, self.min_gain)

    def _judge(self, batch: list[Candidate], results: list[Measurement], each: float) -> bool:
        verdicts = [self._verdict(m) for m in results]
        keepers = [i for i, (keep, _) in enumerate(verdicts) if keep]
        winner = min(keepers, key=lambda i: results[i].median_ms or 0.0) if keepers else None
        first = len(self.t.trials)
        trials = []
        for i, (candidate, m) in enumerate(zip(batch, results, strict=True)):
            index = first + i
            if not m.usable:
                why = m.reason or ("wrong result" if m.correct is False else m.status)
                status = "incorrect" if m.status == "ok" and m.correct is False else m.status
                trials.append(new_trial(index, candidate.config, candidate, m, status, "rejected", why, each))
                continue
            keep, why = verdicts[i]
            if keep and i != winner and winner is not None:
                why = f"{why}; trial {first + winner} of the same batch was faster"
            verdict = "kept" if i == winner else "reverted"
            trial = new_trial(index, candidate.config, candidate, m, "ok", verdict, why, each)
            if m.n_regs is not None and self.best_m.n_regs is not None and m.n_regs != self.best_m.n_regs:
                trial.metrics_moved["n_regs"] = [float(self.best_m.n_regs), float(m.n_regs)]
            trials.append(trial)
        if winner is not None:
            self._keep(batch[winner].config, results[winner], trials[winner])
        for i, trial in enumerate(trials):
            self.record(trial, save=i == len(trials) - 1)
        return winner is not None

    def _keep(self, config: TuneConfig, m: Measurement, trial: Trial) -> None:
        previous, previous_best, previous_ms = self.advice.metrics, self.best, self.best_m.median_ms
        self.best, self.best_m = config, m
        self.t.best, self.t.best_median_ms = config, m.median_ms
        self.advice = self.recommend(config, m)
        trial.metrics_moved.update(moved_metrics(previous, self.advice.metrics))
        repeat = repeat_move(previous_best, config, previous_ms, m.median_ms)
        if repeat is not None:
            self.advice.moves.append(repeat)

    def _plan(self, guess: Guess) -> None:
        if self.prefetcher is not None:
            self.prefetcher.plan(guess)

    def _record_rule_dropped(self, dropped: list[tuple[TuneConfig, str]]) -> None:
        rule_moves = [mv for mv in self.advice.moves if not mv.rule.startswith("TUNE-")]
        for config, why in dropped:
            if config in self.t.tried():
                continue
            candidate = _rule_candidate(self.best, config, rule_moves)
            if candidate is not None:
                self.record(
                    new_trial(
                        len(self.t.trials), config, candidate, None, "rejected-limits", "rejected", why, 0.0
                    )
                )

    def measure_all(self, space: SearchSpace, limits: Limits, why: str) -> None:
        """Measure every untried configuration of ``space`` (in batches: Ctrl-C keeps what was measured)."""
        inside = untried(space, limits, self.t.tried())
        outside = sum(1 for c in space.configs() if violations(c, limits))
        for offset in range(0, len(inside), EXHAUSTIVE_BATCH):
            chunk = inside[offset : offset + EXHAUSTIVE_BATCH]
            rest = inside[offset + EXHAUSTIVE_BATCH :]
            self._plan(Guess(self.best, [], limits, self.t.tried(), rest, True, exhaustive=True))
            self.run_batch(
                [Candidate(c, EXHAUSTIVE_RULE, 0.0, "every configuration of the space") for c in chunk]
            )
        self.t.stop_reason = (
            f"measured the whole space ({space.size} configs, {outside} outside the limits): {why}"
        )

