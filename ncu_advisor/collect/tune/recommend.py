"""Rules -> moves: what the firing rules (and the source's loop-invariant loads) ask the search to try.

``RuleRecommender`` evaluates the rule set on a configuration's metrics: an ncu profile of the start and of
the final configuration (``profile``), Triton's register counts otherwise (ncu is not run for every trial).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ncu_advisor.collect.tune.backend import Measurement
from ncu_advisor.collect.tune.space import Move, TuneConfig
from ncu_advisor.kernelsrc.invariant import (
    InvariantLoad,
    kernel_assignments,
    loop_extents,
    resolve_extent,
    suggested_block,
)

INVARIANT_RULE = "SRC-INVARIANT-LOAD"


@dataclass
class Recommendation:
    """The moves firing rules ask for from one configuration, and the metrics they read."""

    moves: list[Move] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Ask:
    """One firing rule's ``proposal`` hint, with what every move it yields carries."""

    rule: str
    effect: float
    label: str
    hint: Any
    blocks: list[str]

    @property
    def single_effect(self) -> float:
        """A lone num_warps / num_stages move: 90% of the effect when the rule asks for the pair."""
        both = self.hint.num_warps is not None and self.hint.num_stages is not None
        return self.effect * 0.9 if both else self.effect


def _block_min_moves(ask: _Ask) -> list[Move]:
    """One trial: every BLOCK raised to the floor, with the warps/stages the rule names."""
    hint = ask.hint
    if hint.block_min is None or not ask.blocks:
        return []
    extra = "".join(
        f", {what} {value}"
        for what, value in (("num_warps", hint.num_warps), ("num_stages", hint.num_stages))
        if value is not None
    )
    text = f"{ask.label}: every BLOCK to at least {hint.block_min}{extra}"
    return [
        Move(
            ask.rule,
            ask.effect,
            "block_min",
            float(hint.block_min),
            None,
            text,
            stages=hint.num_stages,
            warps=hint.num_warps,
        )
    ]


def _block_scale_moves(ask: _Ask) -> list[Move]:
    """Every BLOCK (or the hint's ``block_params``) scaled together, then each alone at 90%."""
    hint, blocks = ask.hint, ask.blocks
    scaled = [n for n in blocks if hint.block_params is None or n in hint.block_params] or blocks
    if hint.block_scale is None or not scaled:
        return []
    together = None if scaled == blocks else ",".join(scaled)
    what_scaled = "every BLOCK" if together is None else " and ".join(scaled)
    factor = float(hint.block_scale)
    moves = [
        Move(ask.rule, ask.effect, "block_scale", factor, together, f"{ask.label}: {what_scaled} x{factor:g}")
    ]
    for name in scaled if len(scaled) > 1 else []:
        moves.append(
            Move(ask.rule, ask.effect * 0.9, "block_scale", factor, name, f"{ask.label}: {name} x{factor:g}")
        )
    return moves


def _warps_stages_moves(ask: _Ask) -> list[Move]:
    """The pair in one trial, when the rule asks for both (each alone follows, at 90%)."""
    hint = ask.hint
    if hint.num_warps is None or hint.num_stages is None:
        return []
    text = f"{ask.label}: num_warps {hint.num_warps}, num_stages {hint.num_stages}"
    return [Move(ask.rule, ask.effect, "warps_stages", hint.num_warps, None, text, stages=hint.num_stages)]


def _num_warps_moves(ask: _Ask) -> list[Move]:
    value = ask.hint.num_warps
    if value is None:
        return []
    return [Move(ask.rule, ask.single_effect, "num_warps", value, None, f"{ask.label}: num_warps {value}")]


def _num_stages_moves(ask: _Ask) -> list[Move]:
    value = ask.hint.num_stages
    if value is None:
        return []
    return [Move(ask.rule, ask.single_effect, "num_stages", value, None, f"{ask.label}: num_stages {value}")]


#: The move kinds a hint without ``block_min`` yields, in the order they are tried.
_MOVE_KINDS: dict[str, Callable[[_Ask], list[Move]]] = {
    "block_scale": _block_scale_moves,
    "warps_stages": _warps_stages_moves,
    "num_warps": _num_warps_moves,
    "num_stages": _num_stages_moves,
}


def moves_from_findings(findings: list[Any], rules_by_id: dict[str, Any], blocks: list[str]) -> list[Move]:
    """Turn findings of rules with a ``proposal`` hint into moves (each with the finding's estimated effect).

    ``block_scale`` s: scale every BLOCK (or the hint's ``block_params``) together (the seeds' "halve
    BLOCK_*"), then each alone at 90% of the effect; ``block_min`` n: raise every BLOCK below n to n in one
    trial, with the hint's num_warps/num_stages (and nothing else for that finding); ``num_warps`` /
    ``num_stages``: set them (both together first when a rule asks for both, each alone at 90%).
    """
    moves: list[Move] = []
    for finding in findings:
        rule = rules_by_id.get(finding.rule)
        hint = getattr(getattr(rule, "spec", None), "proposal", None)
        if hint is None:
            continue
        ask = _Ask(
            finding.rule, float(finding.estimated_effect), f"{finding.rule} {finding.name}", hint, blocks
        )
        exclusive = _block_min_moves(ask)
        if exclusive:
            moves.extend(exclusive)
            continue
        for make in _MOVE_KINDS.values():
            moves.extend(make(ask))
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
        profile: ``(config, measurement) -> tidy table or None`` (ncu), run for the first configuration
            asked about (the start) and for ``final``; every other call and a None ``profile`` use the
            Triton register counts only (``launch__registers_per_thread`` = n_regs), so register rules
            still fire, and the GPU name and compute capability the child reports (``gpu_*`` names for
            the rules).
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
        #: the metrics of the configurations profiled under ncu: {"start": {...}, "final": {...}}
        self.profiled: dict[str, dict[str, Any]] = {}

    def _table(self, config: TuneConfig, measurement: Measurement, fresh: bool) -> Any:
        import pandas as pd  # noqa: PLC0415

        table = self.profile(config, measurement) if self.profile is not None and fresh else None
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

    def final(self, config: TuneConfig, measurement: Measurement) -> Recommendation:
        """Profile the final configuration (ncu, when a profile function is set) and evaluate the rules."""
        return self(config, measurement, fresh=True, label="final")

    def __call__(
        self,
        config: TuneConfig,
        measurement: Measurement,
        fresh: bool | None = None,
        label: str | None = None,
    ) -> Recommendation:
        from ncu_advisor.rules import evaluate  # noqa: PLC0415

        fresh = not self.history if fresh is None else fresh
        label = label or ("start" if not self.history else None)
        table = self._table(config, measurement, fresh)
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
            {
                "config": config.as_dict(),
                "findings": [f.rule for f in findings],
                "notes": notes,
                "profiled": bool(fresh and self.profile is not None),
            }
        )
        if label is not None and fresh and self.profile is not None:
            self.profiled[label] = {"config": config.as_dict(), "metrics": metrics, "findings": notes}
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
