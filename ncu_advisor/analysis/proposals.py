"""Ready-to-paste ``@triton.autotune`` configs derived from a kernel's current parameters and the rules
that fired on it.

Following the seeds: at most three configs, always the conservative baseline (``num_warps=4,
num_stages=2``) at the kernel's current block sizes, a halved fallback when a block-size rule asks for it
(``proposal.block_scale``), and the warps/stages a firing fine-tune rule asks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ncu_advisor.model import Proposal
from ncu_advisor.kernelsrc.facts import KernelFacts

if TYPE_CHECKING:
    from ncu_advisor.rules.schema import Rule

MAX_CONFIGS = 3
BASELINE_WARPS = 4
BASELINE_STAGES = 2
MIN_BLOCK = 16


def current_blocks(kernel: KernelFacts) -> dict[str, int]:
    """The kernel's block sizes now: literal launch values, else its first autotune config."""
    blocks = {p: v for p, v in kernel.launch_params.items() if p in kernel.block_params}
    if not blocks and kernel.autotune_configs:
        blocks = {p: v for p, v in kernel.autotune_configs[0].params.items() if p in kernel.block_params}
    return blocks


def _scaled(blocks: dict[str, int], scale: float) -> dict[str, int]:
    scaled: dict[str, int] = {}
    for name, value in blocks.items():
        target = max(MIN_BLOCK, int(value * scale))
        power = 1 << (target.bit_length() - 1)  # Triton block sizes must be powers of two
        scaled[name] = max(MIN_BLOCK, power)
    return scaled


def _autotune_key(kernel: KernelFacts) -> list[str]:
    if kernel.autotune_key:
        return kernel.autotune_key
    skip_prefixes = ("stride", "scale")
    return [
        p
        for p in kernel.params
        if p not in kernel.constexpr_params
        and not p.endswith("ptr")
        and not p.lower().startswith(skip_prefixes)
    ]


def propose(kernel: KernelFacts, fired: Iterable[Rule]) -> tuple[list[Proposal], str | None]:
    """Configs to try for ``kernel`` given the rules that fired, and the ``@triton.autotune`` block.

    Returns:
        ``(proposals, autotune_block)``; no proposals when no rule with a ``proposal`` hint fired.
    """
    hints = [(rule, rule.spec.proposal) for rule in fired if rule.spec.proposal is not None]
    if not hints:
        return [], None
    blocks = current_blocks(kernel)
    proposals: list[Proposal] = [
        Proposal(
            params=dict(blocks),
            num_warps=BASELINE_WARPS,
            num_stages=BASELINE_STAGES,
            reason="conservative baseline (num_warps=4, num_stages=2), current block sizes",
            baseline=True,
        )
    ]
    scales = sorted({h.block_scale for _, h in hints if h.block_scale is not None and blocks})
    for scale in scales:
        by = [r.id for r, h in hints if h.block_scale == scale]
        proposals.append(
            Proposal(
                params=_scaled(blocks, scale),
                num_warps=BASELINE_WARPS,
                num_stages=BASELINE_STAGES,
                reason=f"block sizes x{scale:g} as a smaller fallback ({', '.join(by)})",
            )
        )
    for rule, hint in hints:
        if hint.num_warps is None and hint.num_stages is None:
            continue
        candidate = Proposal(
            params=dict(blocks),
            num_warps=hint.num_warps or BASELINE_WARPS,
            num_stages=hint.num_stages or BASELINE_STAGES,
            reason=f"{rule.id} {rule.name}",
        )
        proposals.append(candidate)
    unique: list[Proposal] = []
    seen: set[tuple[object, ...]] = set()
    for proposal in proposals:
        key = (tuple(sorted(proposal.params.items())), proposal.num_warps, proposal.num_stages)
        if key not in seen:
            seen.add(key)
            unique.append(proposal)
    unique = unique[:MAX_CONFIGS]
    return unique, autotune_block(kernel, unique)


def autotune_block(kernel: KernelFacts, proposals: list[Proposal]) -> str:
    """The ``@triton.autotune(configs=[...], key=[...])`` decorator text for ``proposals``."""
    key = ", ".join(repr(k) for k in _autotune_key(kernel))
    lines = ["@triton.autotune(", "    configs=["]
    for proposal in proposals:
        lines.append(f"        {proposal.as_triton_config()},  # {proposal.reason}")
    lines.append("    ],")
    lines.append(f"    key=[{key}],")
    lines.append(")")
    note = []
    passed = sorted(
        p for p in kernel.launch_params if p in kernel.block_params or p in ("num_warps", "num_stages")
    )
    if passed and kernel.launch_lineno:
        note.append(
            f"# then remove {', '.join(passed)} from the launch at line {kernel.launch_lineno}"
            " (the autotuner sets them); keep a config only if it is >= 2% faster than the baseline"
        )
    else:
        note.append("# keep a config only if it is >= 2% faster than the baseline")
    return "\n".join(lines + note)
