"""One consistent set of ready-to-paste ``@triton.autotune`` configs per kernel, from its current parameters
and the rules that fired on it.

Following the seeds: at most three configs and the conservative baseline (``num_warps=4, num_stages=2``) at
the current block sizes. On top of that (issue 13):

* the moves are ordered by the estimated effect of the finding that asks for them, most specific first;
* conflicting moves are resolved and the reason is returned as a note: a halving (``block_scale < 1``) never
  goes below a floor another rule sets (``block_min``, NA311) and never shrinks the BLOCK a row-loop rule
  grows (``chunk_block_to``, NA323);
* no proposal equals a configuration the kernel already runs (the autotune block lists the current one first,
  as the reference every proposal must beat by 2%);
* the autotune ``key`` names only integer size arguments (``kernelsrc.loops.size_params``): never pointer or
  tensor arguments (``X``, ``Y``, ``W``, ``B``) nor floats such as ``eps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ncu_advisor.kernelsrc.facts import KernelFacts
from ncu_advisor.model import Finding, Proposal

if TYPE_CHECKING:
    from ncu_advisor.rules.schema import ProposalHint, Rule

MAX_CONFIGS = 3
BASELINE_WARPS = 4
BASELINE_STAGES = 2
MIN_BLOCK = 16
#: The largest BLOCK proposed: Triton's largest tensor (``triton.language.TRITON_MAX_TENSOR_NUMEL``, 2**20).
MAX_BLOCK = 1 << 20
_Key = tuple[tuple[tuple[str, int], ...], int, int]


def current_blocks(kernel: KernelFacts) -> dict[str, int]:
    """The kernel's block sizes now: literal launch values, else its first autotune config."""
    blocks = {p: v for p, v in kernel.launch_params.items() if p in kernel.block_params}
    if not blocks and kernel.autotune_configs:
        # the config the profiled run chose (``KernelFacts.autotune_choice``), else the list's first
        chosen = kernel.candidate_configs()[0]
        blocks = {p: v for p, v in chosen.params.items() if p in kernel.block_params}
    return blocks


def current_configs(kernel: KernelFacts) -> list[_Key]:
    """Every (blocks, num_warps, num_stages) the kernel may run with now (warps/stages unknown: Triton's
    defaults)."""
    keys: list[_Key] = []
    for config in kernel.candidate_configs():
        blocks = {p: v for p, v in config.params.items() if p in kernel.block_params}
        keys.append((tuple(sorted(blocks.items())), config.num_warps or 4, config.num_stages or 3))
    return keys


def _key(proposal: Proposal) -> _Key:
    return (tuple(sorted(proposal.params.items())), proposal.num_warps, proposal.num_stages)


def _power_of_two_at_most(value: float) -> int:
    target = max(MIN_BLOCK, int(value))
    return max(MIN_BLOCK, 1 << (target.bit_length() - 1))  # Triton block sizes must be powers of two


def _scaled(
    blocks: dict[str, int], scale: float, params: Sequence[str] | None, floors: dict[str, int]
) -> dict[str, int]:
    chosen = [p for p in (params or []) if p in blocks] or list(blocks)
    scaled = dict(blocks)
    for name in chosen:
        value = max(_power_of_two_at_most(blocks[name] * scale), floors.get(name, MIN_BLOCK))
        # A halving never raises a BLOCK the floor exceeds already (BLOCK_T=4 stays 4, not MIN_BLOCK).
        scaled[name] = min(value, blocks[name]) if scale < 1 else value
    return scaled


def autotune_key(kernel: KernelFacts) -> list[str]:
    """Integer size arguments to key the autotuner on (see the module docstring)."""
    sizes = list(kernel.size_params)
    if kernel.autotune_key:
        kept = [k for k in kernel.autotune_key if k in sizes] if sizes else list(kernel.autotune_key)
        return kept or sizes
    if sizes:
        return sizes
    skip = set(kernel.load_bases) | set(kernel.constexpr_params)
    return [
        p
        for p in kernel.params
        if p not in skip
        and not p.lower().endswith("ptr")
        and not p.lower().startswith(("stride", "scale", "eps"))
    ]


class _Builder:
    """Collects candidate configs and the notes that explain dropped or changed moves."""

    def __init__(
        self,
        kernel: KernelFacts,
        effects: dict[str, float],
        demoted: frozenset[str] = frozenset(),
        fallbacks: frozenset[str] = frozenset(),
    ) -> None:
        self.kernel = kernel
        self.demoted, self.fallbacks = demoted, fallbacks
        self.blocks = current_blocks(kernel)
        self.current = set(current_configs(kernel))
        configs = kernel.candidate_configs()
        self.warps = (configs[0].num_warps if configs else None) or BASELINE_WARPS
        self.stages = (configs[0].num_stages if configs else None) or BASELINE_STAGES
        self.effects = effects
        self.candidates: list[tuple[tuple[bool, bool, float], Proposal]] = []
        self.notes: list[str] = []

    def add(
        self, rule_id: str, params: dict[str, int], warps: int, stages: int, reason: str, demote: bool = False
    ) -> None:
        rank = (rule_id in self.fallbacks, demote or rule_id in self.demoted, -self.effects.get(rule_id, 0.0))
        self.candidates.append(
            (rank, Proposal(params=params, num_warps=warps, num_stages=stages, reason=reason))
        )

    def finish(self) -> list[Proposal]:
        ordered = [p for _, p in sorted(self.candidates, key=lambda c: c[0])]
        ordered.append(
            Proposal(
                params=dict(self.blocks),
                num_warps=BASELINE_WARPS,
                num_stages=BASELINE_STAGES,
                reason="conservative baseline (num_warps=4, num_stages=2), current block sizes",
                baseline=True,
            )
        )
        unique: list[Proposal] = []
        seen: set[_Key] = set()
        for proposal in ordered:
            key = _key(proposal)
            if key in self.current:
                if not proposal.baseline:
                    self.notes.append(f"not proposed: {proposal.reason} equals the current config")
                continue
            if key not in seen:
                seen.add(key)
                unique.append(proposal)
        return unique[:MAX_CONFIGS]


#: Largest factor a split move raises the split constexpr by (each split program adds an atomic or a
#: partial result to combine).
MAX_SPLIT_FACTOR = 64


def _split_move(builder: _Builder, rule: Rule, hint: ProposalHint, findings: Sequence[Finding]) -> bool:
    """NA307-style: the kernel's split constexpr raised to fill one wave; True when proposed.

    colsum (H200, 2026-11-30): 128 programs, 0.06 waves; its sweep's best splits the rows 32 ways."""
    if hint.split_fill is None:
        return False
    kernel = builder.kernel
    split = next((p for p in kernel.constexpr_params if p.upper().startswith("SPLIT")), None)
    waves = next((f.evidence.get(hint.split_fill) for f in findings if f.rule == rule.id), None)
    if split is None or not isinstance(waves, (int, float)) or not 0 < waves < 1:
        return False
    current = kernel.launch_params.get(split, 1)
    factor = min(MAX_SPLIT_FACTOR, 1 << math.ceil(math.log2(1 / waves)))
    params = {**builder.blocks, split: current * factor}
    builder.add(
        rule.id,
        params,
        builder.warps,
        builder.stages,
        f"{rule.id} {rule.name}: {split} {current} -> {current * factor} (x{factor} programs fill one wave)",
    )
    return True


def _chunk_move(builder: _Builder, rule: Rule, hint: ProposalHint, findings: Sequence[Finding]) -> str | None:
    """NA323-style: the chunk loop's BLOCK set to the rule's target; returns the grown parameter."""
    if not builder.kernel.chunk_loops or hint.chunk_block_to is None:
        return None
    param = builder.kernel.chunk_loops[0][0]
    target = next((f.evidence.get(hint.chunk_block_to) for f in findings if f.rule == rule.id), None)
    if not isinstance(target, (int, float)) or not math.isfinite(target):
        return None
    # A BLOCK is a power of two (tl.arange) of at most Triton's largest tensor: a derived target of 8192 /
    # 3 (a tile with a non-power-of-two dimension) or of a user rule's 12,800 was proposed as such.
    target = _power_of_two_at_most(min(target, MAX_BLOCK))
    if target <= builder.blocks.get(param, 0):
        return None
    params = {**builder.blocks, param: target}
    tile = builder.kernel.tile_elements(params) or target  # chunk x the tile's other BLOCKs
    warps = max(builder.warps, 8 if tile >= 4096 else 4)
    builder.add(
        rule.id, params, warps, builder.stages, f"{rule.id} {rule.name}: {param} -> {int(target)} in one jump"
    )
    return param


def _scale_moves(
    builder: _Builder,
    hints: list[tuple[Rule, ProposalHint]],
    grown: set[str],
    floors: dict[str, int],
    tile_floor: int = 0,
) -> None:
    """``block_scale`` moves: tile growth and halving, with the conflicts between them resolved.

    A halving of a tl.dot kernel's tile is not proposed beside a rule that grows the same tile (NA312 fires
    only with registers to spare): one set never moves a BLOCK both ways. The growth is kept because
    tensor-core kernels run well at low occupancy (NA305) and the corpus sweeps measured it: attention_fwd
    and int8_weight_gemm were 1.9x and 2.4x faster at 2x tiles and 25% / 12.5% theoretical occupancy.
    """
    growers = [r.id for r, h in hints if h.block_scale is not None and h.block_scale > 1]
    for rule, hint in hints:
        if hint.block_scale is None or not builder.blocks:
            continue
        params = [p for p in (hint.block_params or builder.blocks) if p not in grown]
        if hint.block_scale < 1 and grown:
            builder.notes.append(
                f"{rule.id} {rule.name}: not applied to {', '.join(sorted(grown))}: the row-loop rule "
                "measured chunks far smaller than the row and grows them"
            )
        if hint.block_scale < 1 and growers and builder.kernel.uses_dot:
            builder.notes.append(
                f"{rule.id} {rule.name}: halving not proposed: {', '.join(growers)} grows the same tl.dot "
                "tile, and tensor-core kernels run well at low occupancy (NA305)"
            )
            continue
        if hint.block_scale < 1 and growers and params:
            # a kernel without tl.dot: both directions are proposed, the measurement decides (said once)
            builder.notes.append(
                f"{rule.id} {rule.name}: halves {', '.join(params)} while {', '.join(growers)} grows the "
                "tile: both configs are proposed; keep the one measuring >= 2% faster than the current one"
            )
        if not params:
            continue
        scaled = _scaled(builder.blocks, hint.block_scale, params, floors if hint.block_scale < 1 else {})
        if hint.block_scale > 1 and hint.block_floor:
            raise_to = {p: v for p, v in hint.block_floor.items() if p in scaled and p not in grown}
            scaled.update({p: v for p, v in raise_to.items() if scaled[p] < v})
        if hint.block_scale < 1 and not any(scaled[p] < builder.blocks[p] for p in scaled):
            floor = ", ".join(f"{p} >= {v}" for p, v in sorted(floors.items())) or f"the minimum {MIN_BLOCK}"
            builder.notes.append(f"{rule.id} {rule.name}: halving dropped: it would go below {floor}")
            continue
        elements = builder.kernel.tile_elements(scaled)
        if hint.block_scale < 1 and tile_floor and elements is not None and elements < tile_floor:
            builder.notes.append(
                f"{rule.id} {rule.name}: halving dropped: it would take the tile to {elements} elements per "
                f"program, below the floor of {tile_floor}"
            )
            continue
        verb = "smaller fallback" if hint.block_scale < 1 else "larger tile"
        raised = [
            f"{p} {builder.blocks[p]}->{scaled[p]}"
            for p in sorted(hint.block_floor or {})
            if p in scaled and p not in params and scaled[p] != builder.blocks[p]
        ]
        if raised:
            verb += ", " + ", ".join(raised)
        # num_warps / num_stages stay as they are (the conservative baseline is proposed on its own): one
        # change per proposal. gemm_decode (H200, 2026-11-30): its tiles halved with 4 warps and 2 stages
        # instead of the chosen 8 and 3 ran 70.7% slower (0.0844 -> 0.1440 ms, bench/results/
        # 2026-11-30-advice-h200-timed-s4); halved with 8 and 3, tune measured 12% faster.
        builder.add(
            rule.id,
            scaled,
            builder.warps,
            builder.stages,
            f"{rule.id}: block sizes x{hint.block_scale:g} ({verb})",
        )


#: num_warps a ``warps_fit_tile`` move chooses from: Triton's fused-softmax tutorial (python/tutorials/
#: 02-fused-softmax.py, Triton 2.x) launches 4 warps, 8 from 2,048 and 16 from 4,096 elements per row, i.e.
#: about 8 elements per thread, never fewer than 4 warps.
FIT_WARPS_MIN, FIT_WARPS_MAX = 4, 16


def fit_warps(tile_elements: int, per_thread: int) -> int:
    """The power of two of warps (``FIT_WARPS_MIN``..``FIT_WARPS_MAX``) that gives each of its threads at
    most ``per_thread`` elements of a ``tile_elements`` tile (4,096 elements at 8 per thread: 16 warps)."""
    warps = FIT_WARPS_MIN
    while warps < FIT_WARPS_MAX and tile_elements > per_thread * 32 * warps:
        warps *= 2
    return warps


def _fit_warps_move(builder: _Builder, rule: Rule, hint: ProposalHint, findings: Sequence[Finding]) -> None:
    """NA322-style: the current BLOCKs with num_warps fitted to the tile (``fit_warps``): the tile from the
    source's BLOCKs, else the finding's ``tile_evidence`` (elements per program measured).

    softmax (H200, 2026-11-30 corpus sweep): one warp on a 4,096-element row (128 elements per thread) ran
    5.4% slower than 16 warps (8 per thread); 2..16 warps were all within 1% of each other."""
    if hint.warps_fit_tile is None:
        return
    known = {k: v for k, v in builder.kernel.launch_params.items() if k not in ("num_warps", "num_stages")}
    tile: float | None = builder.kernel.tile_elements({**known, **builder.blocks}) if builder.blocks else None
    if tile is None and hint.tile_evidence is not None:
        measured = next((f.evidence.get(hint.tile_evidence) for f in findings if f.rule == rule.id), None)
        if isinstance(measured, (int, float)):  # bytes of every loaded tensor: one tile per distinct load
            tile = measured / max(1, builder.kernel.num_distinct_loads)
    if not isinstance(tile, (int, float)) or not math.isfinite(tile) or tile < 1:
        return
    tile = int(tile)
    warps = fit_warps(tile, hint.warps_fit_tile)
    if warps == builder.warps:
        return
    builder.add(
        rule.id,
        dict(builder.blocks),
        warps,
        builder.stages,
        f"{rule.id} {rule.name}: num_warps {builder.warps} -> {warps} "
        f"({tile} elements per program, about {max(1, tile // (32 * warps))} per thread)",
    )


#: Doublings of a tile with a dimension of unknown size (a constexpr the launch computes, ``HALF_DIM =
#: head_dim // 2``): its element count is only a lower bound, so the growth stops at 8x, the reach of tune's
#: line search (``batch``: every value within 3 steps). rotary_embedding (H200, 2026-11-30): BLOCK_H 1 -> 8
#: took 0.637 ms to 0.153 ms; counting HALF_DIM as 1 had grown BLOCK_H to 512 for 32 heads.
UNKNOWN_DIM_DOUBLINGS = 3


def grow_tile(kernel: KernelFacts, blocks: dict[str, int], floor: int) -> dict[str, int]:
    """``blocks`` with the BLOCKs of the kernel's largest access tile doubled in turn (smallest first)
    until the tile holds at least ``floor`` elements per program (``KernelFacts.tile_elements``, counting the
    launch's other literal constexprs); at most 16 doublings, ``UNKNOWN_DIM_DOUBLINGS`` when a dimension of
    the tile has no known value."""
    known = {k: v for k, v in kernel.launch_params.items() if k not in ("num_warps", "num_stages")}
    grown = dict(blocks)
    sizes = {
        tile: kernel.tile_elements({p: {**known, **grown}[p] for p in tile if p in {**known, **grown}}) or 0
        for tile in kernel.access_tiles
    }
    tile = max(sizes, key=lambda t: sizes[t], default=())
    params = sorted((p for p in tile if p in grown), key=lambda p: (grown[p], p))
    unknown = any(p not in known and p not in grown for p in tile)
    for step in range(UNKNOWN_DIM_DOUBLINGS if unknown else 16):
        if not params or (kernel.tile_elements({**known, **grown}) or 0) >= floor:
            break
        grown[params[step % len(params)]] *= 2
    return grown


def propose_set(
    kernel: KernelFacts, fired: Iterable[Rule], findings: Sequence[Finding] = ()
) -> tuple[list[Proposal], str | None, list[str]]:
    """Configs to try for ``kernel``, the ``@triton.autotune`` block, and notes on resolved conflicts.

    Args:
        kernel: the facts of the kernel as the variant launches it (``KernelFacts.for_variant``).
        fired: the rules that fired on the launch.
        findings: their findings (for evidence such as NA323's target and for ordering by effect).

    Returns:
        ``(proposals, autotune_block, notes)``; nothing when no rule with a ``proposal`` hint fired.
    """
    hints = [(rule, rule.spec.proposal) for rule in fired if rule.spec.proposal is not None]
    if not hints:
        return [], None, []
    by_id = {rule.id: rule for rule in fired}
    # a finding stated below its rule's severity (its info_when held: the measurement contradicts the
    # heuristic, e.g. NA105's registers > 128 with no local traffic and a busy tensor pipe) ranks its
    # proposal after those of findings the measurement backs
    demoted = frozenset(
        f.rule for f in findings if f.rule in by_id and f.severity.rank < by_id[f.rule].spec.severity.rank
    )
    fallbacks = frozenset(rule.id for rule, hint in hints if hint.fallback)
    builder = _Builder(kernel, {f.rule: f.estimated_effect for f in findings}, demoted, fallbacks)
    grown = {p for rule, hint in hints if (p := _chunk_move(builder, rule, hint, findings)) is not None}
    floors: dict[str, int] = {}
    tile_floor = 0
    for rule, hint in hints:
        if hint.block_min is None or not builder.blocks:
            continue
        warps, stages = hint.num_warps or BASELINE_WARPS, hint.num_stages or BASELINE_STAGES
        if hint.block_min_per == "tile" and kernel.tile_elements(builder.blocks) is not None:
            tile_floor = max(tile_floor, hint.block_min)
            raised = grow_tile(kernel, builder.blocks, hint.block_min)
            if raised != builder.blocks:
                moved = ", ".join(
                    f"{p} {builder.blocks[p]}->{v}" for p, v in raised.items() if v != builder.blocks[p]
                )
                text = f"{rule.id} {rule.name}: {moved} (at least {hint.block_min} elements per program)"
                builder.add(rule.id, raised, warps, stages, text)
            continue
        floors = {p: max(floors.get(p, 0), hint.block_min) for p in builder.blocks}
        raised = {p: max(v, hint.block_min) for p, v in builder.blocks.items()}
        builder.add(
            rule.id, raised, warps, stages, f"{rule.id} {rule.name}: every BLOCK to at least {hint.block_min}"
        )
    split = {rule.id for rule, hint in hints if _split_move(builder, rule, hint, findings)}
    _scale_moves(builder, [(r, h) for r, h in hints if r.id not in split], grown, floors, tile_floor)
    for rule, hint in hints:
        if hint.block_min is None and (hint.num_warps is not None or hint.num_stages is not None):
            # what the rule does not name stays as the kernel runs it (NA201 asks for num_warps=8 only: its
            # config keeps the current num_stages, not the baseline's 2; red team 6)
            warps, stages = hint.num_warps or builder.warps, hint.num_stages or builder.stages
            # The warps/stages half of a BLOCK-scaling rule (NA309: halve, num_warps=4, num_stages=2) does
            # not carry the rule's estimate, which is for the BLOCK move: it ranks after the measured moves.
            # linear_bias_gelu (H200, 2026-11-30): NA309's halving was not proposed (NA312 grows the tile)
            # and its num_stages 1 -> 2 alone led the proposals, timed -0.0%.
            remainder = hint.block_scale is not None
            builder.add(rule.id, dict(builder.blocks), warps, stages, f"{rule.id} {rule.name}", remainder)
    for rule, hint in hints:
        _fit_warps_move(builder, rule, hint, findings)
    proposals = builder.finish()
    if not proposals:
        return [], None, builder.notes
    return proposals, autotune_block(kernel, proposals), builder.notes


def propose(kernel: KernelFacts, fired: Iterable[Rule]) -> tuple[list[Proposal], str | None]:
    """``propose_set`` without findings and notes (the older entry point)."""
    proposals, block, _notes = propose_set(kernel, fired)
    return proposals, block


def autotune_block(kernel: KernelFacts, proposals: list[Proposal]) -> str:
    """The ``@triton.autotune(configs=[...], key=[...])`` decorator text: the current config first (the
    reference), then ``proposals``."""
    key = ", ".join(repr(k) for k in autotune_key(kernel))
    lines = ["@triton.autotune(", "    configs=["]
    current = current_configs(kernel)
    if current and len(current) == 1:
        blocks, warps, stages = current[0]
        reference = Proposal(params=dict(blocks), num_warps=warps, num_stages=stages)
        lines.append(f"        {reference.as_triton_config()},  # current config (the reference)")
    for proposal in proposals:
        lines.append(f"        {proposal.as_triton_config()},  # {proposal.reason}")
    lines.append("    ],")
    lines.append(f"    key=[{key}],")
    lines.append(")")
    passed = sorted(
        p for p in kernel.launch_params if p in kernel.block_params or p in ("num_warps", "num_stages")
    )
    if passed and kernel.launch_lineno:
        lines.append(
            f"# then remove {', '.join(passed)} from the launch at line {kernel.launch_lineno}"
            " (the autotuner sets them); keep a config only if it is >= 2% faster than the current one"
        )
    else:
        lines.append("# keep a config only if it is >= 2% faster than the current one")
    return "\n".join(lines)
