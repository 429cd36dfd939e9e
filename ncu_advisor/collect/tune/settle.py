"""How tune's search settles what one timing cannot: the confirmation of a within-noise gain and the final
pick among the best's near-ties (the rules and their sources: ``keep``). A mixin of ``loop._Search``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ncu_advisor.analysis.trajectory import Trajectory, Trial
from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.keep import (
    CONFIRM_RULE,
    FINAL_ROUNDS,
    FINAL_RULE,
    ambiguous_gain,
    confirm_verdict,
    near_ties,
    new_trial,
)
from ncu_advisor.collect.tune.space import Candidate, TuneConfig


class Settle:
    """The two settling steps; ``loop._Search`` provides the state and ``record`` / ``_keep``."""

    t: Trajectory
    best: TuneConfig
    best_m: Measurement
    min_gain: float
    budget: int | None
    time_limit_s: float | None
    started: float
    clock: Callable[[], float]
    measure_many: Callable[..., Iterable[Measurement]]
    #: ``loop.run_tune``'s ``quiet`` (None: no compile ahead to quiet)
    quiet: Callable[[bool], None] | None = None

    def record(self, trial: Trial, save: bool = True) -> None:
        raise NotImplementedError

    def _keep(self, config: TuneConfig, m: Measurement, trial: Trial) -> None:
        raise NotImplementedError

    def _confirm(self, batch: list[Candidate], results: list[Measurement]) -> bool:
        """Time the batch's fastest within-noise gain again beside the best (``keep``); True when kept."""
        gains = [(ambiguous_gain(m, self.best_m, self.min_gain), i) for i, m in enumerate(results)]
        found = [(g, i) for g, i in gains if g is not None]
        if not found or (self.budget is not None and self.budget - self.t.measured_trials() < 2):
            return False
        if self.time_limit_s is not None and self.clock() - self.started >= self.time_limit_s:
            return False
        gain, i = max(found)
        first = len(self.t.trials) - len(results) + i
        if self.quiet is not None:
            self.quiet(False)
        t0 = self.clock()
        fresh_best, fresh = list(self.measure_many([self.best, batch[i].config]))
        each = (self.clock() - t0) / 2
        keep, why = confirm_verdict(gain, fresh, fresh_best, self.min_gain)
        again = Candidate(batch[i].config, CONFIRM_RULE, 0.0, f"trial {first} timed again beside the best")
        ref = Candidate(self.best, CONFIRM_RULE, 0.0, f"the best timed again beside trial {first}")
        ref_trial = new_trial(len(self.t.trials), self.best, ref, fresh_best, fresh_best.status,
                              "reverted", "the reference of the confirmation (the best stays)", each)
        trial = new_trial(len(self.t.trials) + 1, batch[i].config, again, fresh, fresh.status,
                          "kept" if keep else "reverted", why, each)
        if keep:
            self._keep(batch[i].config, fresh, trial)
        self.record(ref_trial, save=False)
        self.record(trial)
        return keep

    def final_pick(self) -> None:
        """Time the best and its near-ties (``keep.near_ties``) again alternately, ``FINAL_ROUNDS`` times,
        and end on the fastest by the median of those fresh timings (one ``TUNE-FINAL`` trial per config)."""
        t, best_ms = self.t, self.best_m.median_ms
        rivals = near_ties(t.trials, self.best, best_ms) if best_ms is not None else []
        left = None if self.budget is None else self.budget - t.measured_trials()
        if left is not None:
            rivals = rivals[: max(0, left - 1)]
        late = self.time_limit_s is not None and self.clock() - self.started >= self.time_limit_s
        if not rivals or late:
            return
        configs: list[TuneConfig] = [self.best, *rivals]
        if self.quiet is not None:
            self.quiet(True)
        t0 = self.clock()
        fresh: dict[TuneConfig, list[Measurement]] = {c: [] for c in configs}
        order: list[TuneConfig | None] = [c for _ in range(FINAL_ROUNDS) for c in configs]
        for config, m in zip(order, self.measure_many(order), strict=True):
            fresh[config or self.best].append(m)
        each = (self.clock() - t0) / max(1, len(configs))
        merged = {c: _merged(ms) for c, ms in fresh.items()}
        timed = {c: m.median_ms for c, m in merged.items() if m.usable and m.median_ms is not None}
        if self.best not in timed:
            return
        winner = min(timed, key=lambda c: timed[c])
        summary = ", ".join(f"{c.label()} {timed[c]:.4g} ms" for c in configs if c in timed)
        for i, config in enumerate(configs):
            m = merged[config]
            kept = config == winner
            verdict = "fastest" if kept else "not the fastest"
            why = f"final pick ({verdict} timed again alternately: {summary})"
            reason = "the best" if config == self.best else "a near-tie of the best"
            trial = new_trial(len(t.trials), config, Candidate(config, FINAL_RULE, 0.0, reason), m,
                              m.status, "kept" if kept else "reverted", why, each)
            if kept and config != self.best:
                self._keep(config, m, trial)
            elif kept:
                self.best_m = m
                t.best_median_ms = m.median_ms
            self.record(trial, save=i == len(configs) - 1)


def _merged(ms: list[Measurement]) -> Measurement:
    """One measurement of a configuration timed several times: every repetition; failed if any failed."""
    bad = next((m for m in ms if not m.usable), None)
    if bad is not None:
        return bad
    first = ms[0]
    return Measurement(
        first.status, [r for m in ms for r in m.reps_ms], first.correct, n_regs=first.n_regs,
        n_spills=first.n_spills, launched_with=dict(first.launched_with), int_args=dict(first.int_args),
    )
