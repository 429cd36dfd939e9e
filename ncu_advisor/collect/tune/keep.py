"""The keep test of tune's search and its confirmation step; trial records.

Keep test (``decide``): ``median(candidate) < median(best) * (1 - min_gain)`` AND ``max(candidate reps) <
min(best reps)`` (2% faster, every do_bench median beating every one of the best's: the spread of the
repetitions is the measured noise).

Confirmation (``ambiguous_gain``, ``confirm_verdict``): a candidate whose median gain passes the threshold
but whose repetitions overlap the best's is neither kept nor dropped on that evidence alone; the search times
it again beside the best (both in one batch, no screening) and keeps it when the fresh pair shows the gain
again (replicated: two independent timings each at least ``min_gain`` faster). Why: one low repetition of
the best decided otherwise. matmul on the H200 (bench/results/2026-11-30-tune-h200x2-s3): the best's
repetitions were 0.2224/0.2426/0.2437 ms (9% spread; the median spread of the run's 176 three-repetition
trials was 0.16%, the 90th percentile 0.73%); the sweep's best config came in at 0.2018/0.2132/0.2226 ms
(+12% by the medians) and was reverted because 0.2226 >= 0.2224, leaving tune at 88.8% of the sweep's best.
"""

from __future__ import annotations

from ncu_advisor.analysis.trajectory import Trial
from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.space import Candidate, TuneConfig

#: The relative gain a candidate must show to replace the best: the seeds' rule (NA206, "keep a config only
#: if it is >= 2% faster"); the median spread of three do_bench repetitions was 0.16% on the two-H200 run
#: bench/results/2026-11-30-tune-h200x2-s3 (90th percentile 0.73%).
MIN_GAIN = 0.02
#: Metrics compared between a kept configuration and the one it replaced (relative change >= 5% is "moved").
MOVED_THRESHOLD = 0.05
CONFIRM_RULE = "TUNE-CONFIRM"
FINAL_RULE = "TUNE-FINAL"
#: The final pick: at most this many near-ties of the best, each timed ``FINAL_ROUNDS`` times alternately
#: with it. Why: on the two-H200 bench bench/results/2026-11-30-tune-h200x2-s4a tune had measured the
#: sweep's best on 7 of the 9 kernels where it ended 0.1-1.4% short of it, and reverted it for gaining under
#: the 2% threshold over the best of that moment.
FINAL_CHALLENGERS = 3
FINAL_ROUNDS = 2


def _median(reps: list[float]) -> float:
    return Measurement("ok", list(reps)).median_ms or 0.0


def decide(
    candidate_reps: list[float], best_reps: list[float], min_gain: float = MIN_GAIN
) -> tuple[bool, str]:
    """Keep the candidate? (the module docstring's keep test); returns (keep, why)."""
    if not candidate_reps or not best_reps:
        return False, "no timings to compare"
    cand, best = _median(candidate_reps), _median(best_reps)
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


def ambiguous_gain(m: Measurement, best: Measurement, min_gain: float = MIN_GAIN) -> float | None:
    """The median gain of a usable candidate that passes the threshold but was not kept (None otherwise).

    A screened candidate (one repetition) counts too: its repetition beat the best's median by the
    threshold but not the best's fastest repetition."""
    if not m.usable or not m.reps_ms or not best.reps_ms:
        return None
    cand, ref = _median(m.reps_ms), _median(best.reps_ms)
    if ref <= 0 or cand >= ref * (1.0 - min_gain):
        return None
    return 1.0 - cand / ref


def confirm_verdict(
    first_gain: float, fresh: Measurement, fresh_best: Measurement, min_gain: float = MIN_GAIN
) -> tuple[bool, str]:
    """Keep after the confirmation? The fresh pair must show the gain again (the module docstring)."""
    if not fresh.usable or not fresh.reps_ms:
        return False, f"timed again: {fresh.reason or fresh.status}"
    if not fresh_best.usable or not fresh_best.reps_ms:
        return False, f"the best timed again: {fresh_best.reason or fresh_best.status}"
    cand, best = _median(fresh.reps_ms), _median(fresh_best.reps_ms)
    gain = 1.0 - cand / best if best > 0 else 0.0
    both = f"{first_gain:+.1%} at first (within the noise), {gain:+.1%} timed again beside the best"
    if cand < best * (1.0 - min_gain):
        return True, f"confirmed: {both} ({cand:.4g} ms vs {best:.4g} ms)"
    return False, f"not confirmed: {both}, below the {min_gain:.0%} threshold"


def near_ties(
    trials: list[Trial], best: TuneConfig, best_ms: float, min_gain: float = MIN_GAIN
) -> list[TuneConfig]:
    """The reverted configurations whose median came within ``min_gain`` of ``best_ms`` (either side), the
    fastest first, at most ``FINAL_CHALLENGERS``: the final pick's challengers."""
    seen: dict[TuneConfig, float] = {}
    for t in trials:
        if t.verdict != "reverted" or t.status != "ok" or t.median_ms is None or t.config == best:
            continue
        if t.median_ms <= best_ms * (1.0 + min_gain):
            seen[t.config] = min(t.median_ms, seen.get(t.config, t.median_ms))
    return sorted(seen, key=lambda c: seen[c])[:FINAL_CHALLENGERS]


def moved_metrics(before: dict[str, float], after: dict[str, float]) -> dict[str, list[float | None]]:
    """Metrics present in both whose relative change is at least ``MOVED_THRESHOLD``: ``{name: [a, b]}``."""
    moved: dict[str, list[float | None]] = {}
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            continue
        if abs(b - a) / max(abs(a), 1e-12) >= MOVED_THRESHOLD:
            moved[name] = [a, b]
    return moved


def new_trial(
    index: int,
    config: TuneConfig,
    candidate: Candidate | None,
    m: Measurement | None,
    status: str,
    verdict: str,
    why: str,
    elapsed: float | None,
) -> Trial:
    """The trajectory's record of one trial (``candidate`` None: the start)."""
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
