"""What the search will most likely ask for next, for the worker to compile ahead (``prefetch``).

While the worker times one batch, its pool of compile processes has spare capacity; the search sends it a
list of configurations to compile speculatively (``WorkerBackend.prefetch``; the worker puts them behind
every requested compile, ``compile_pool.CompilePool``). The list, likeliest first (``next_configs``):

1. once a candidate of the running batch passes the keep test against the best (``keep.decide``, the
   fastest such so far: the batch's winner unless a faster one follows), the coordinate round from it
   (``batch.round_batch`` without the rule moves, which come from its recommendation, not known yet);
2. the untried rest of a round that was cut to fit the time left (the next batch when nothing is kept);
3. after a coordinate batch, the coupled round from the same best (the next batch when nothing is kept);
4. before any candidate leads: the coordinate rounds from the batch's first ``LEADERS`` candidates (its
   highest estimated effects);
5. the rest of the untried space, nearest the best first (steps summed over the dimensions, log2 of the
   value: the search moves by steps).

Each list replaces the last in the worker (the queued guesses of an old best are dropped). The guess never
changes what is measured nor any decision: a requested configuration is compiled by the pool or by its own
launch as before; a right guess only finds its compile done.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.batch import round_batch, untried
from ncu_advisor.collect.tune.keep import decide
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.space import Limits, Move, TuneConfig

#: Coordinate rounds guessed from the batch's first candidates before one of them leads.
LEADERS = 3
#: At most this many configurations in one list (the worker turns at most ``ahead.MAX_PREFETCH`` into jobs).
MAX_CONFIGS = 96


@dataclass
class Guess:
    """The search's state when a batch starts: what the next batch is made from, by outcome."""

    best: TuneConfig
    moves: list[Move]
    limits: Limits
    tried: set[TuneConfig]
    #: the untried rest of the round this batch was cut from (or the exhaustive chunks after it)
    rest: list[TuneConfig]
    coupled: bool
    space: SearchSpace | None = None
    #: the batch is a chunk of the whole space: only ``rest`` follows
    exhaustive: bool = False


def _position(config: TuneConfig) -> dict[str, float]:
    values = {**config.param_dict, "num_warps": config.num_warps, "num_stages": config.num_stages}
    return {k: math.log2(v) for k, v in values.items() if isinstance(v, int) and v > 0}


def distance(a: TuneConfig, b: TuneConfig) -> float:
    """Steps between two configurations: the sum over dimensions of the log2 distance of their values."""
    pa, pb = _position(a), _position(b)
    return sum(abs(pa.get(k, 0.0) - pb.get(k, 0.0)) for k in set(pa) | set(pb))


def next_configs(
    guess: Guess, batch: list[TuneConfig], leader: TuneConfig | None = None, cap: int = MAX_CONFIGS
) -> list[TuneConfig]:
    """The configurations to compile ahead while ``batch`` runs, likeliest first (the module docstring)."""
    after = set(guess.tried) | set(batch) | {guess.best}
    lists: list[list[TuneConfig]] = []
    if leader is not None and not guess.exhaustive:
        lists.append([c.config for c in round_batch(leader, [], guess.limits, after)[0]])
    lists.append(list(guess.rest))
    if not guess.exhaustive:
        if not guess.coupled:
            lists.append(
                [c.config for c in round_batch(guess.best, guess.moves, guess.limits, after, coupled=True)[0]]
            )
        if leader is None:
            for config in batch[:LEADERS]:
                lists.append([c.config for c in round_batch(config, [], guess.limits, after)[0]])
        if guess.space is not None:
            rest = untried(guess.space, guess.limits, after)
            lists.append(sorted(rest, key=lambda c: distance(c, guess.best)))
    out: list[TuneConfig] = []
    seen = set(after)
    for config in (c for group in lists for c in group):
        if config not in seen:
            seen.add(config)
            out.append(config)
            if len(out) >= cap:
                break
    return out


class Prefetcher:
    """Sends ``next_configs`` lists through ``send`` as a planned batch starts and when its leader changes.

    ``plan(guess)`` before a batch of the search (the confirmation's re-timings and the final pick are not
    planned: nothing is sent for them); ``before``/``result`` from ``run_batch``; ``done`` after it."""

    def __init__(self, send: Callable[[list[TuneConfig]], None], min_gain: float) -> None:
        self.send = send
        self.min_gain = min_gain
        self.guess: Guess | None = None
        self.leader: TuneConfig | None = None
        #: lists sent (a count for the trajectory)
        self.lists = 0

    def plan(self, guess: Guess) -> None:
        self.guess, self.leader = guess, None

    def _send(self, configs: list[TuneConfig]) -> None:
        self.lists += 1
        self.send(configs)

    def before(self, batch: list[TuneConfig]) -> None:
        if self.guess is not None:
            self._send(next_configs(self.guess, batch))

    def result(self, batch: list[TuneConfig], results: list[Measurement], best: Measurement) -> None:
        """After each measured candidate: a new leader (the fastest passing the keep test) re-orders the
        list around it."""
        if self.guess is None:
            return
        passing = [
            (m.median_ms or 0.0, i)
            for i, m in enumerate(results)
            if m.usable and not m.screened and decide(m.reps_ms, best.reps_ms, self.min_gain)[0]
        ]
        if not passing:
            return
        leader = batch[min(passing)[1]]
        if leader != self.leader:
            self.leader = leader
            self._send(next_configs(self.guess, batch, leader))

    def done(self) -> None:
        self.guess, self.leader = None, None
