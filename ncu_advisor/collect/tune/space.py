"""Tuning configurations, GPU-limit checks and candidate generation.

A candidate moves one step from the current best along one tunable dimension, in both directions:
halve or double one ``BLOCK*`` value, or all of them together (the seeds' "halve BLOCK_*" and its opposite),
set
``num_warps`` to the other of {4, 8}, ``num_stages`` to another of {2, 3, 4}; plus the jumps that a
source-aware finding names (``BLOCK_N -> 128`` for a load repeated in the ``BLOCK_N`` loop).

Each candidate carries the rule that proposes it and that rule's estimated effect; a move no firing rule
asks for is still proposed (both directions must be tried) under ``TUNE-NEIGHBOUR`` with a small effect,
so it is tried after every rule-backed move. Candidates are ordered by effect (largest first), then by
how far they move (fewer changed dimensions first), then by their text, so the order is deterministic.

Limits (``Limits``): power-of-two blocks, at least ``min_block`` (16 for ``tl.dot`` operands), at most the
runtime extent of the dimension when it is known (a loop bound) and at most ``max_block``; at most
``max_threads`` threads per block; a shared-memory estimate for ``tl.dot`` kernels,
``num_stages * (BLOCK_M*BLOCK_K + BLOCK_K*BLOCK_N) * element_bytes``, within the GPU's per-block limit;
and an accumulator estimate ``BLOCK_M*BLOCK_N / (32*num_warps)`` fp32 registers per thread within the 255
register limit. A candidate the estimates let through can still fail to compile: the loop records it as
rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ncu_advisor.model import LaunchConfig

NEIGHBOUR_RULE = "TUNE-NEIGHBOUR"
NEIGHBOUR_EFFECT = 0.005
WARP_CHOICES = (4, 8)
#: The ``num_stages`` values tune tries (not the rule stages of ``rules.STAGE_CHOICES``).
NUM_STAGES_CHOICES = (2, 3, 4)
#: Per-block shared memory opt-in limit of Hopper (H100/H200): 227 KB.
HOPPER_SHARED_PER_BLOCK = 232448


#: The launch configuration type lives in ``ncu_advisor.model``; the tune code keeps its old name.
TuneConfig = LaunchConfig


@dataclass(frozen=True)
class Limits:
    """What a configuration must respect (see the module docstring)."""

    min_block: int = 16
    #: Triton's largest tensor (TRITON_MAX_TENSOR_NUMEL); the search space sets the practical range
    max_block: int = 1 << 20
    max_threads: int = 1024
    shared_per_block: int = HOPPER_SHARED_PER_BLOCK
    max_registers: int = 255
    element_bytes: int = 4
    uses_dot: bool = False
    extents: dict[str, int] = field(default_factory=dict)
    warp_choices: tuple[int, ...] = WARP_CHOICES
    stage_choices: tuple[int, ...] = NUM_STAGES_CHOICES
    #: When set, the only values a parameter may take (the search space, ``searchspace.SearchSpace``).
    allowed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: When set, ``min_block`` applies to these parameters only (the tl.dot operand tiles); the others have
    #: no floor but 1 (a head count such as BLOCK_H is not an element count).
    dot_params: tuple[str, ...] = ()
    #: Candidates are snapped into the space (``allowed``, ``warp_choices``, ``stage_choices``): a move from
    #: a start outside it lands on the nearest allowed value of every other dimension too.
    snap: bool = False


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def shared_estimate(config: TuneConfig, limits: Limits) -> int | None:
    """Shared memory per block of a ``tl.dot`` pipeline (None when not a dot kernel with M/N/K blocks)."""
    p = config.param_dict
    if not limits.uses_dot or not all(k in p for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K")):
        return None
    return (
        config.num_stages * (p["BLOCK_M"] * p["BLOCK_K"] + p["BLOCK_K"] * p["BLOCK_N"]) * limits.element_bytes
    )


def violations(config: TuneConfig, limits: Limits, current: TuneConfig | None = None) -> list[str]:
    """Why ``config`` breaks a limit (empty when it respects them all).

    ``limits.allowed`` applies to the values that differ from ``current`` (a move must land on an allowed
    value; a start outside the allowed values may still move).
    """
    before: dict[str, int] = {}
    if current is not None:
        before = {**current.param_dict, "num_warps": current.num_warps, "num_stages": current.num_stages}
    problems: list[str] = []
    for name, value in config.params:
        if not name.upper().startswith("BLOCK"):
            continue
        if not is_power_of_two(value):
            problems.append(f"{name}={value} is not a power of two")
        floor = limits.min_block if not limits.dot_params or name in limits.dot_params else 1
        if value < floor:
            problems.append(f"{name}={value} < {floor}")
        if value > limits.max_block:
            problems.append(f"{name}={value} > {limits.max_block}")
        extent = limits.extents.get(name)
        if extent is not None and value > max(limits.min_block, _ceil_pow2(extent)):
            problems.append(f"{name}={value} exceeds the extent {extent} of its dimension")
    for name, value in list(config.params) + [
        ("num_warps", config.num_warps),
        ("num_stages", config.num_stages),
    ]:
        if name in limits.allowed and value not in limits.allowed[name] and before.get(name) != value:
            problems.append(f"{name}={value} is outside the allowed values {list(limits.allowed[name])}")
    if config.num_warps * 32 > limits.max_threads:
        problems.append(f"num_warps={config.num_warps} gives more than {limits.max_threads} threads")
    shared = shared_estimate(config, limits)
    if shared is not None and shared > limits.shared_per_block:
        problems.append(f"shared memory estimate {shared} B > {limits.shared_per_block} B per block")
    p = config.param_dict
    if limits.uses_dot and "BLOCK_M" in p and "BLOCK_N" in p:
        accumulator = p["BLOCK_M"] * p["BLOCK_N"] // (32 * config.num_warps)
        if accumulator > limits.max_registers:
            problems.append(
                f"the accumulator alone needs {accumulator} registers/thread > {limits.max_registers}"
            )
    return problems


def _ceil_pow2(value: int) -> int:
    return 1 << max(0, int(value) - 1).bit_length()


@dataclass(frozen=True)
class Move:
    """A change a firing rule asks for.

    ``kind``: ``block_scale`` (``value`` the factor applied to every BLOCK, or to ``param`` only, or to
    each of the comma-separated names in ``param``), ``block_set`` (``param`` -> ``value``),
    ``block_min`` (every BLOCK below ``value`` raised to it, with ``warps``/``stages`` when given),
    ``num_warps``, ``num_stages``, ``warps_stages`` (``value`` warps and ``stages`` stages together).
    """

    rule: str
    effect: float
    kind: str
    value: float
    param: str | None = None
    reason: str = ""
    stages: int | None = None
    warps: int | None = None


@dataclass(frozen=True)
class Candidate:
    """A configuration to measure, with the rule that proposes it."""

    config: TuneConfig
    rule: str
    effect: float
    reason: str


def _apply(current: TuneConfig, move: Move, blocks: list[str]) -> TuneConfig | None:
    p = current.param_dict
    if move.kind == "block_scale":
        names = move.param.split(",") if move.param else blocks
        if not names or any(n not in p for n in names):
            return None
        return current.replace({n: int(p[n] * move.value) for n in names})
    if move.kind == "block_min":
        raised = {n: int(move.value) for n in blocks if n in p and p[n] < move.value}
        return current.replace(raised, num_warps=move.warps, num_stages=move.stages)
    if move.kind == "block_set" and move.param in p:
        return current.replace({move.param: int(move.value)})
    if move.kind == "num_warps":
        return current.replace(num_warps=int(move.value))
    if move.kind == "num_stages":
        return current.replace(num_stages=int(move.value))
    if move.kind == "warps_stages" and move.stages is not None:
        return current.replace(num_warps=int(move.value), num_stages=int(move.stages))
    return None


def _adjacent(values: tuple[int, ...], current: int) -> list[int]:
    """The next lower and the next higher value of ``values`` around ``current``."""
    ordered = sorted(set(values))
    below = [v for v in ordered if v < current]
    above = [v for v in ordered if v > current]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def neighbour_moves(current: TuneConfig, blocks: list[str], limits: Limits) -> list[Move]:
    """Every one-step move in both directions: each tile parameter to its next lower and higher value (x2
    and /2 without an allowed list), every BLOCK together x2 and /2, and num_warps / num_stages to their
    adjacent choices. Longer jumps come from the rules' moves and from repeating a kept step."""
    moves: list[Move] = []
    params = current.param_dict
    if len(blocks) > 1:  # every BLOCK together: the direction of the seeds' "halve BLOCK_*", both ways
        for factor in (0.5, 2.0):
            moves.append(
                Move(
                    NEIGHBOUR_RULE,
                    NEIGHBOUR_EFFECT,
                    "block_scale",
                    factor,
                    None,
                    f"{'halve' if factor < 1 else 'double'} every BLOCK (both directions)",
                )
            )
    from ncu_advisor.collect.tune.searchspace import is_tile_param  # noqa: PLC0415 - no cycle at import

    tiles = list(blocks) + [n for n in params if n not in blocks and is_tile_param(n)]
    for name in tiles:
        allowed = limits.allowed.get(name)
        targets = _adjacent(allowed, params[name]) if allowed else [params[name] // 2, params[name] * 2]
        for target in targets:
            if target < 1:
                continue
            way = "lower" if target < params[name] else "higher"
            moves.append(
                Move(NEIGHBOUR_RULE, NEIGHBOUR_EFFECT, "block_set", target, name, f"{name} {target} ({way})")
            )
    for warps in _adjacent(limits.warp_choices, current.num_warps):
        moves.append(Move(NEIGHBOUR_RULE, NEIGHBOUR_EFFECT, "num_warps", warps, None, f"num_warps {warps}"))
    for stages in _adjacent(limits.stage_choices, current.num_stages):
        moves.append(
            Move(NEIGHBOUR_RULE, NEIGHBOUR_EFFECT, "num_stages", stages, None, f"num_stages {stages}")
        )
    return moves


def _nearest(values: tuple[int, ...], value: int) -> int:
    import math  # noqa: PLC0415

    return min(values, key=lambda v: (abs(math.log2(v) - math.log2(max(value, 1))), -v))


def snap_into(config: TuneConfig, limits: Limits) -> TuneConfig:
    """``config`` with every value outside the space replaced by the nearest allowed one (log2 distance)."""
    params = {
        name: (
            value
            if name not in limits.allowed or value in limits.allowed[name]
            else _nearest(limits.allowed[name], value)
        )
        for name, value in config.params
    }
    warps = config.num_warps
    if limits.warp_choices and warps not in limits.warp_choices:
        warps = _nearest(limits.warp_choices, warps)
    stages = config.num_stages
    if limits.stage_choices and stages not in limits.stage_choices:
        stages = min(limits.stage_choices, key=lambda v: (abs(v - stages), -v))
    return config.replace(params, num_warps=warps, num_stages=stages)


def generate_candidates(
    current: TuneConfig,
    rule_moves: list[Move],
    limits: Limits,
    tried: set[TuneConfig] | frozenset[TuneConfig] = frozenset(),
    blocks: list[str] | None = None,
) -> tuple[list[Candidate], list[tuple[TuneConfig, str]]]:
    """Candidates from the current best, best first; and the configurations dropped for breaking a limit.

    Args:
        current: the current best configuration.
        rule_moves: moves asked for by firing rules (with their estimated effects).
        limits: GPU and problem limits.
        tried: configurations measured (or rejected) already: never proposed again.
        blocks: the tunable BLOCK parameters (default: every ``BLOCK*`` in ``current``).

    Returns:
        ``(candidates, out_of_limits)``: unique untried candidates ordered by effect; and (config, reason)
        for each generated configuration that breaks a limit.
    """
    blocks = blocks if blocks is not None else [k for k, _ in current.params if k.upper().startswith("BLOCK")]
    best_for: dict[TuneConfig, Candidate] = {}
    dropped: dict[TuneConfig, str] = {}
    for move in list(rule_moves) + neighbour_moves(current, blocks, limits):
        config = _apply(current, move, blocks)
        if config is not None and limits.snap:
            config = snap_into(config, limits)
        if config is None or config == current or config in tried:
            continue
        problems = violations(config, limits, current)
        if problems:
            dropped.setdefault(config, "; ".join(problems))
            continue
        candidate = Candidate(config, move.rule, float(move.effect), move.reason)
        known = best_for.get(config)
        if known is None or candidate.effect > known.effect:
            best_for[config] = candidate
    ordered = sorted(
        best_for.values(), key=lambda c: (-c.effect, c.config.differs_in(current), c.config.label())
    )
    return ordered, sorted(dropped.items(), key=lambda item: item[0].label())
