"""One round of the batched search: every candidate measured together from the current best.

A coordinate round's batch, in this order (a budget or time cut keeps the front of it):

1. the moves the firing rules ask for (rules, loop-invariant loads, the repeat of the last kept step), by
   their estimated effect, and the one-step neighbours of ``space.generate_candidates`` (each tile
   parameter, every BLOCK together x2 and /2, num_warps and num_stages to their adjacent choices);
2. the line search (``TUNE-LINE``): along each dimension alone, every value within ``LINE_REACH`` steps
   of the best's (steps of the dimension's own value list: x2 per step for powers of two), nearest first.

A coupled round (``coupled=True``; the loop runs one when a coordinate round kept nothing) has the pair
moves (``TUNE-PAIR``) of dimensions that act together instead of the line search: each pair of tile
parameters one step each (four directions; a grown or shrunk tile area also with num_warps one step the
same way, since a bigger tile needs more threads); each tile parameter with num_warps one step the same way;
each tile parameter with num_stages one step either way (the pipeline's shared memory is stages x tiles: a
smaller tile makes room for a deeper pipeline); and num_warps with num_stages. Why: on the
linear_bias_gelu sweep of the 2026-11-30 H200 bench the best is two tile steps and a warp step from the
32x32 tile where a one-step search stopped.

Every candidate stays inside the limits (``space.violations``) and the search space (``Limits.allowed``);
one already measured is never proposed again. ``LINE_REACH = 3`` (x8 either way for powers of two) covers
every miss of that bench that a single dimension explains (BLOCK_SIZE 1024 -> 8192 of rmsnorm_rows).
"""

from __future__ import annotations

from collections.abc import Iterable

from ncu_advisor.collect.tune.searchspace import is_tile_param
from ncu_advisor.collect.tune.space import (
    Candidate,
    Limits,
    Move,
    TuneConfig,
    _apply,
    generate_candidates,
    snap_into,
    violations,
)

#: After a kept step, the same step again, with the measured gain as its effect.
REPEAT_RULE = "TUNE-REPEAT"
LINE_RULE = "TUNE-LINE"
PAIR_RULE = "TUNE-PAIR"
#: Steps either way along one dimension that a round's line search covers.
LINE_REACH = 3
#: Ordering weights below every rule move (rules carry their finding's estimated effect, >= 1%) and below
#: the one-step neighbours (0.005): nearer jumps first.
LINE_EFFECT = 0.004
PAIR_EFFECT = 0.002
LAUNCH = ("num_warps", "num_stages")


def axis_values(best: TuneConfig, name: str, limits: Limits, reach: int = LINE_REACH) -> tuple[int, ...]:
    """The values dimension ``name`` may take: the space's (``limits.allowed``, ``warp_choices``,
    ``stage_choices``), else powers-of-two steps of the best's value, ``reach`` either way."""
    if name == "num_warps":
        return tuple(sorted(set(limits.warp_choices) | {best.num_warps}))
    if name == "num_stages":
        return tuple(sorted(set(limits.stage_choices) | {best.num_stages}))
    if name in limits.allowed:
        return tuple(sorted(set(limits.allowed[name])))
    value = best.param_dict[name]
    return tuple(
        sorted(
            {value}
            | {value << k for k in range(1, reach + 1)}
            | {value >> k for k in range(1, reach + 1) if value >> k >= 1}
        )
    )


def _value(config: TuneConfig, name: str) -> int:
    if name == "num_warps":
        return config.num_warps
    if name == "num_stages":
        return config.num_stages
    return config.param_dict[name]


def _set(config: TuneConfig, name: str, value: int) -> TuneConfig:
    if name == "num_warps":
        return config.replace(num_warps=value)
    if name == "num_stages":
        return config.replace(num_stages=value)
    return config.replace({name: value})


def _stepped(values: tuple[int, ...], current: int, steps: int) -> int | None:
    """The value ``steps`` places from ``current`` in ``values`` (``current`` need not be one of them)."""
    below = [v for v in values if v < current]
    above = [v for v in values if v > current]
    if steps < 0:
        return below[steps] if len(below) >= -steps else None
    return above[steps - 1] if len(above) >= steps else None


def dimensions(best: TuneConfig) -> list[str]:
    """The tuned dimensions of ``best``: its tile parameters, then num_warps and num_stages."""
    return [name for name, _ in best.params if is_tile_param(name)] + list(LAUNCH)


def line_moves(best: TuneConfig, limits: Limits, reach: int = LINE_REACH) -> list[Candidate]:
    """Each dimension alone to every value within ``reach`` steps of the best's, nearest first."""
    out: list[Candidate] = []
    for name in dimensions(best):
        values = axis_values(best, name, limits, reach)
        current = _value(best, name)
        for distance in range(1, reach + 1):
            for steps in (-distance, distance):
                target = _stepped(values, current, steps)
                if target is None:
                    continue
                way = "lower" if steps < 0 else "higher"
                out.append(
                    Candidate(
                        _set(best, name, target),
                        LINE_RULE,
                        LINE_EFFECT / distance,
                        f"{LINE_RULE}: {name} {current} -> {target} (line search, {distance} step(s) {way})",
                    )
                )
    return out


def pair_moves(best: TuneConfig, limits: Limits) -> list[Candidate]:
    """Coupled dimensions one step each (see the module docstring)."""
    tiles = [name for name in dimensions(best) if name not in LAUNCH]
    out: list[Candidate] = []

    def step(config: TuneConfig | None, name: str, way: int) -> TuneConfig | None:
        if config is None:
            return None
        target = _stepped(axis_values(best, name, limits), _value(best, name), way)
        return None if target is None else _set(config, name, target)

    def add(config: TuneConfig | None, what: str) -> None:
        if config is not None:
            out.append(Candidate(config, PAIR_RULE, PAIR_EFFECT, f"{PAIR_RULE}: {what}"))

    signs = {-1: "-1", 1: "+1"}
    for i, first in enumerate(tiles):
        for second in tiles[i + 1 :]:
            for a in (-1, 1):
                for b in (-1, 1):
                    both = step(step(best, first, a), second, b)
                    what = f"{first} {signs[a]} and {second} {signs[b]} step"
                    add(both, what)
                    if a + b:
                        add(step(both, "num_warps", a), f"{what}, num_warps {signs[a]} step")
    for name in tiles:
        for a in (-1, 1):
            add(step(step(best, name, a), "num_warps", a), f"{name} and num_warps {signs[a]} step")
            for b in (-1, 1):
                add(
                    step(step(best, name, a), "num_stages", b),
                    f"{name} {signs[a]}, num_stages {signs[b]} step",
                )
    for a in (-1, 1):
        for b in (-1, 1):
            add(
                step(step(best, "num_warps", a), "num_stages", b),
                f"num_warps {signs[a]}, num_stages {signs[b]} step",
            )
    return out


def round_batch(
    best: TuneConfig,
    rule_moves: list[Move],
    limits: Limits,
    tried: set[TuneConfig] | frozenset[TuneConfig] = frozenset(),
    reach: int = LINE_REACH,
    coupled: bool = False,
) -> tuple[list[Candidate], list[tuple[TuneConfig, str]]]:
    """The candidates of one round from ``best``, in measuring order (see the module docstring).

    Returns:
        ``(candidates, out_of_limits)``: untried unique candidates; and (config, reason) for the
        rule and neighbour moves that break a limit (line and pair moves outside the limits are dropped
        silently: they are the search's own guesses, not advice).
    """
    candidates, dropped = generate_candidates(best, rule_moves, limits, tried)
    seen = {c.config for c in candidates} | set(tried) | {best}
    guesses = pair_moves(best, limits) if coupled else line_moves(best, limits, reach)
    extra = _inside(guesses, limits, best, seen)
    extra.sort(key=lambda c: (-c.effect, c.config.differs_in(best), c.config.label()))
    return candidates + extra, dropped


def _inside(
    proposed: Iterable[Candidate], limits: Limits, best: TuneConfig, seen: set[TuneConfig]
) -> list[Candidate]:
    out: list[Candidate] = []
    for candidate in proposed:
        config = snap_into(candidate.config, limits) if limits.snap else candidate.config
        if config in seen or violations(config, limits, best):
            continue
        seen.add(config)
        out.append(Candidate(config, candidate.rule, candidate.effect, candidate.reason))
    return out


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


def _rule_candidate(current: TuneConfig, config: TuneConfig, moves: list[Move]) -> Candidate | None:
    blocks = [k for k, _ in current.params if k.upper().startswith("BLOCK")]
    for move in sorted(moves, key=lambda mv: -mv.effect):
        if _apply(current, move, blocks) == config:
            return Candidate(config, move.rule, move.effect, move.reason)
    return None
