"""One round of the batched search: every candidate measured together from the current best.

A coordinate round's batch holds:

1. the moves the firing rules ask for (rules, loop-invariant loads, the repeat of the last kept step), and
   the one-step neighbours of ``space.generate_candidates`` (each tile parameter, every BLOCK together x2
   and /2, num_warps and num_stages to their adjacent choices);
2. the line search (``TUNE-LINE``): along each dimension alone, every value within ``LINE_REACH`` steps
   of the best's (steps of the dimension's own value list: x2 per step for powers of two);
3. the centre move (``centre_move``): every dimension at the middle of its values at once.

Order (a budget or time cut keeps the front of a batch; ``batch_size_for_time``): the rules' moves by
their estimated effect, then the search's own moves (neighbour, line, centre, pair) by ``spread_score``:
far moves of a dimension whose value sits at an extreme of its list first (num_warps 1 -> 8 before
num_warps 1 -> 2), line-search endpoints before near neighbours, moves away from the middle last. Why: on
the 2026-11-30 two-H200 bench (18 s cap, worker start 6-12 s of it) the first batch was measured whole
before the cost per candidate was known, nearest moves first, and the time ran out before the move with
the largest gain (spill: 69.8% of the sweep's best, never tried num_warps 8 from its best).

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

import dataclasses
import itertools
from collections.abc import Iterable

from ncu_advisor.collect.tune.searchspace import SearchSpace, is_tile_param
from ncu_advisor.collect.tune.space import (
    NEIGHBOUR_RULE,
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
#: The effects the search's own moves carry before ``round_batch`` ranks them (``spread_score``).
LINE_EFFECT = 0.004
PAIR_EFFECT = 0.002
LAUNCH = ("num_warps", "num_stages")
#: The rules of the search's own moves, ranked by ``spread_score`` (a rule's move keeps its effect).
SEARCH_RULES = frozenset({NEIGHBOUR_RULE, LINE_RULE, PAIR_RULE})
#: Effect per point of ``spread_score`` (a line move's highest score, 2 * LINE_REACH = 6, gives 0.009),
#: capped at ``SEARCH_CAP``: below the smallest estimated effect of a rule (1%), so the rules' moves lead.
SEARCH_UNIT = 0.0015
SEARCH_CAP = 0.0099
#: Under a time limit a batch takes at most this share of the time left (``batch_size_for_time``). In the
#: timed replay of 34 recorded H200 sweeps (tests/test_tune_search_replay.py, 18 s cap) a share of 0.35,
#: 0.5, 0.7, 1.0 reached >= 98% of the sweep's best on 30, 30, 31, 27 of them.
TIME_SHARE = 0.7
#: Seconds per candidate assumed before the first batch has measured it: the recorded runs of
#: bench/results/2026-11-30-tune-h200x2 spent 0.5-1.7 s per candidate (mean 0.9 s), compilation included.
PRIOR_CONFIG_S = 1.0


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


def centre_move(best: TuneConfig, limits: Limits) -> list[Candidate]:
    """Every dimension of ``best`` at the lower median of its space's values (``limits.allowed``,
    ``warp_choices``, ``stage_choices``) at once, when that changes two or more dimensions (one is a line
    move). Why: a start mistuned in several dimensions (matmul of the 2026-11-30 two-H200 bench: 16x16x16
    tiles, one warp, one stage) is several rounds from anything good, and a time limit may allow two; the
    middle of a stated space is its author's sane default. In the timed replay (18 s cap) it is kept in the
    first batch of spill (8192 elements, 1 warp -> 1024, 4 warps: 69.8% -> 99.0% of the sweep's best) and
    of matmul (-> 32x128x128, 4 warps, 3 stages: 83.7% -> 87.7%)."""
    config = best
    for name in dimensions(best):
        if name == "num_warps":
            values = sorted(set(limits.warp_choices))
        elif name == "num_stages":
            values = sorted(set(limits.stage_choices))
        else:
            values = sorted(set(limits.allowed.get(name, ())))
        if values:
            config = _set(config, name, values[(len(values) - 1) // 2])
    if config.differs_in(best) < 2:
        return []
    return [
        Candidate(config, LINE_RULE, LINE_EFFECT, f"{LINE_RULE}: every dimension to the middle of its values")
    ]


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
    guesses = (
        pair_moves(best, limits) if coupled else line_moves(best, limits, reach) + centre_move(best, limits)
    )
    ranked = [_ranked(c, best, limits) for c in candidates + _inside(guesses, limits, best, seen)]
    ranked.sort(key=lambda c: (-c.effect, c.config.differs_in(best), c.config.label()))
    return ranked, dropped


def _ranked(candidate: Candidate, best: TuneConfig, limits: Limits) -> Candidate:
    """A search move (neighbour, line, pair) with its effect from ``spread_score``; a rule's move as is."""
    if candidate.rule not in SEARCH_RULES:
        return candidate
    effect = min(SEARCH_CAP, SEARCH_UNIT * spread_score(best, candidate.config, limits))
    return Candidate(candidate.config, candidate.rule, effect, candidate.reason)


def spread_score(best: TuneConfig, config: TuneConfig, limits: Limits) -> float:
    """The expected value of a search move from ``best`` to ``config``, for the order of a batch that a time
    limit may cut (0 < score <= 2 * LINE_REACH; the mean over the dimensions it changes).

    Per dimension, on its value list (``axis_values``): ``off`` = how far the best's value lies from the
    middle of the list (0 at the middle, 1 at an extreme: a start at num_warps 1 or at the largest BLOCK is
    the likeliest mistuning); a move of ``k`` steps toward the middle (or either way from the middle) scores
    ``(1 + off) * k`` (line-search endpoints before near neighbours), a move away from the middle ``1 / k``.
    Why: on the 2026-11-30 two-H200 bench the misses cut by the 18 s cap had their largest single gain at
    the far end of a dimension whose start sat at an extreme (spill: num_warps 1 -> 8; matmul: 16x16x16 with
    num_warps 1), while the one-step neighbours filled the batch's front."""
    parts: list[float] = []
    for name in dimensions(best):
        current, target = _value(best, name), _value(config, name)
        if current == target:
            continue
        axis = sorted(set(axis_values(best, name, limits)) | {current, target})
        here, there, middle = axis.index(current), axis.index(target), (len(axis) - 1) / 2
        off = abs(here - middle) / middle if middle else 0.0
        steps = abs(there - here)
        toward = (there - here) * (middle - here) > 0 or here == middle
        parts.append((1.0 + off) * steps if toward else 1.0 / steps)
    return sum(parts) / len(parts) if parts else 1.0


def batch_size_for_time(time_left: float | None, per_config_s: float, size: int) -> int:
    """How many of a batch of ``size`` to measure with ``time_left`` seconds left (None: no limit).

    A share ``TIME_SHARE`` of the time left, at the last batch's cost per candidate (``PRIOR_CONFIG_S``
    before the first batch has measured it), at least one: a round from the new best must still fit after a
    cut batch, since the largest gains of the recorded misses took two moves in different dimensions."""
    if time_left is None or time_left == float("inf"):  # no limit (an API caller's inf included)
        return size
    each = per_config_s or PRIOR_CONFIG_S
    return max(1, min(size, int(TIME_SHARE * time_left / each)))


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


def limits_in_space(limits: Limits, space: SearchSpace | None) -> Limits:
    """``limits`` restricted to ``space``: its tile values allowed, its num_warps and num_stages choices;
    candidates snap into it."""
    if space is None:
        return limits
    allowed = {n: v for n, v in space.dims if n not in ("num_warps", "num_stages")}
    return dataclasses.replace(
        limits,
        allowed={**limits.allowed, **allowed},
        warp_choices=space.values("num_warps"),
        stage_choices=space.values("num_stages"),
        snap=True,
    )


def untried(space: SearchSpace, limits: Limits, tried: set[TuneConfig]) -> list[TuneConfig]:
    """The configurations of ``space`` inside the limits and not measured yet, in the space's order."""
    return [c for c in space.configs() if c not in tried and not violations(c, limits)]


def nothing_to_measure(space: SearchSpace | None, start: TuneConfig, limits: Limits) -> str:
    """The stop reason when no round had a single candidate: the space's other configurations all break a
    limit (a ``--space`` of ``BLOCK_N: [256]`` above the loop's extent ``C_out = 128``), with up to three of
    the reasons (from the first 1000 configurations)."""
    others = [c for c in itertools.islice(space.configs(), 1000) if c != start] if space is not None else []
    why = sorted({v for c in others for v in violations(c, limits)})[:3]
    return (
        "nothing to measure: no configuration other than the start is inside both the space and the limits"
        + (f" ({'; '.join(why)})" if why else "")
    )
