"""The engine's findings made into one consistent piece of advice per launch (called by ``rules.evaluate``).

After every rule has run, per launch:

1. proposals: one consistent set per kernel as the variant launches it (``proposals.propose_set``), with
   the notes that explain resolved conflicts;
2. ``user_kernel``: with a kernel source, whether that file defines the kernel (library kernels such as
   cuDNN's are reported apart and never pinned to the user's code);
3. ``time_share`` and each finding's ``global_effect`` evidence: the launch's share of its variant's GPU
   time x the local estimated effect, the figure findings of different kernels rank by (issue 13: findings on
   a 3 us kernel ranked above those on the 987 us convolution of the same variant);
4. the roofline headline (``roofline.rooflines``); within 10% of its roof (``roofline.AT_ROOF``), every
   finding whose fix cannot cut the work of the bound resource (launch parameters, occupancy, tiles, bank
   conflicts; all but ``MEMORY_WORK_RULES``/``COMPUTE_WORK_RULES``) and the proposals are withheld, and the
   reason is a note; within 20% (``roofline.NEAR_ROOF``), occupancy and grid-shape warnings
   (``OCCUPANCY_RULES``) are stated as info with the reason;
5. findings that restate the current config (a warps/stages hint the kernel already runs, e.g. NA203's
   "keep num_stages=2" at num_stages=2) are stated as info with a note;
6. notes beside a seed rule's finding where the measurement contradicts it (the seeds' wording is kept).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ncu_advisor.analysis.proposals import propose_set
from ncu_advisor.analysis.roofline import NEAR_ROOF, roof_percent, rooflines
from ncu_advisor.model import NO_ESTIMATE, Severity

if TYPE_CHECKING:
    from ncu_advisor.kernelsrc.facts import SourceFacts
    from ncu_advisor.rules.engine import KernelResult
    from ncu_advisor.rules.schema import Rule

#: Rules whose advice is a launch-parameter or occupancy change (kept as the name older callers import).
LAUNCH_RULES = frozenset({"NA303", "NA304", "NA305", "NA306", "NA307", "NA317", "NA318", "NA319", "NA322"})
#: At the memory roof, time >= bytes / bandwidth: only advice that moves fewer bytes can gain more than
#: the gap to the roof (fusion NA301, L2 reuse NA308, spills NA101/NA309, invariant loads NA310, L1/L2
#: bound NA314/NA315, wasted sectors NA320). Every other warning is withheld there, and so is one of these
#: whose evidence says ``cuts_dram_bytes`` is false (NA320 when DRAM reads do not exceed the bytes the
#: loads use: its excess sectors hit in L1/L2, so coalescing cannot cut the DRAM bytes).
MEMORY_WORK_RULES = frozenset({"NA101", "NA301", "NA308", "NA309", "NA310", "NA314", "NA315", "NA320"})
#: At the compute roof only less work gains: the compute verdict, recomputation, spills, invariant loads.
COMPUTE_WORK_RULES = frozenset({"NA101", "NA106", "NA302", "NA309", "NA310"})
#: Occupancy and grid-shape warnings: near the roof they are stated as info (they set how well latency is
#: hidden, and near the roof it already is: ncu's SOL rule calls >= 80% of peak "at the roof").
OCCUPANCY_RULES = frozenset({"NA102", "NA304", "NA305", "NA306", "NA307", "NA322"})
_LOCAL_BYTES = (
    "l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum",
    "l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum",
)
_LOCAL_SECTORS = (
    "l1tex__t_sectors_pipe_lsu_mem_local_op_ld.sum",
    "l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum",
)


def finish(
    results: list[KernelResult],
    table: pd.DataFrame,
    fired_rules: list[list[Rule]],
    kernels_of_rows: list[Any],
    *,
    gpu: Any = None,
    source: SourceFacts | None = None,
) -> None:
    """Complete ``results`` in place (see the module docstring for the steps)."""
    spec = gpu if hasattr(gpu, "mem_bw_gbs") else None
    uses_dot = [None if k is None else bool(k.uses_dot) for k in kernels_of_rows] if kernels_of_rows else None
    for result, roofline in zip(results, rooflines(table, spec, uses_dot), strict=True):
        result.roofline = roofline
    _proposals(results, fired_rules, kernels_of_rows)
    if source is not None:
        for result, kernel in zip(results, kernels_of_rows, strict=True):
            result.user_kernel = kernel is not None
    _time_shares(results)
    for i, result in enumerate(results):
        roofline = result.roofline
        if roofline is not None and roofline.at_roof:
            kernel = kernels_of_rows[i] if kernels_of_rows else None
            proposes = kernel is not None and any(r.spec.proposal for r in fired_rules[i])
            _withhold_at_roof(result, roofline, proposes)
        elif roofline is not None and (roofline.fraction or 0.0) >= NEAR_ROOF:
            _demote_near_roof(result, roofline)
    _restated_configs(results, fired_rules, kernels_of_rows)
    _seed_notes(results, _local_traffic(table))


def _proposals(
    results: list[KernelResult], fired_rules: list[list[Rule]], kernels_of_rows: list[Any]
) -> None:
    cache: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for i, result in enumerate(results):
        kernel = kernels_of_rows[i] if kernels_of_rows else None
        if kernel is None or (result.roofline is not None and result.roofline.at_roof):
            continue  # at the roof no config is proposed (_withhold_at_roof says why)
        targets = tuple(sorted((f.rule, str(f.evidence.get("target_block"))) for f in result.findings))
        key = (kernel.name, kernel.launch_params_key(), len(kernel.autotune_configs), targets)
        if key not in cache:
            cache[key] = propose_set(kernel, fired_rules[i], result.findings)
        proposals, block, notes = cache[key]
        result.proposals, result.autotune_block = list(proposals), block
        result.notes.extend(notes)


def _time_shares(results: list[KernelResult]) -> None:
    """Each launch's share of its variant's GPU time, and the global effect of each finding."""
    totals: dict[tuple[str | None, str | None], float] = defaultdict(float)
    for result in results:
        duration = result.metrics.get("gpu__time_duration.sum")
        if isinstance(duration, (int, float)) and duration > 0:
            totals[(result.source, result.variant)] += float(duration)
    for result in results:
        duration = result.metrics.get("gpu__time_duration.sum")
        total = totals.get((result.source, result.variant), 0.0)
        if not isinstance(duration, (int, float)) or total <= 0:
            continue
        result.time_share = float(duration) / total
        for finding in result.findings:
            finding.evidence["time_share"] = round(result.time_share, 4)
            if finding.effect_kind != NO_ESTIMATE:  # no estimate: no share of the time either
                finding.evidence["global_effect"] = round(result.time_share * finding.estimated_effect, 4)


def _is_launch_advice(finding: Any, bound: str | None = "memory") -> bool:
    """Seed stage advice, and every warning whose fix cannot cut the bound resource's work; info
    statements (a limiter named, the bottleneck verdict) stay."""
    if finding.stage in ("block-size", "fine-tune"):
        return True
    keep = COMPUTE_WORK_RULES if bound == "compute" else MEMORY_WORK_RULES
    if bound == "memory" and finding.evidence.get("cuts_dram_bytes") in (False, 0):
        keep = keep - {finding.rule}
    return finding.rule not in keep and finding.severity.rank >= Severity.WARNING.rank


def _as_info(result: KernelResult, rules: frozenset[str]) -> list[str]:
    """State ``result``'s warnings/errors of ``rules`` as info; returns the rule ids changed, sorted."""
    changed = sorted({f.rule for f in result.findings if f.rule in rules and f.severity is not Severity.INFO})
    result.findings = [
        replace(f, severity=Severity.INFO) if f.rule in changed else f for f in result.findings
    ]
    return changed


def _demote_near_roof(result: KernelResult, roofline: Any) -> None:
    """Occupancy and grid-shape warnings stated as info within ``NEAR_ROOF`` of the roof, with the reason."""
    demoted = _as_info(result, OCCUPANCY_RULES)
    if not demoted:
        return
    gain = max(0.0, 1.0 - (roofline.fraction or 0.0))
    result.notes.append(
        f"at {roofline.fraction:.0%} of its {roofline.bound} roof: {', '.join(demoted)} stated as info "
        f"(occupancy and grid shape set latency hiding; a launch change can gain at most ~{gain:.0%} "
        "unless it also moves fewer bytes)"
    )


def _restated_configs(
    results: list[KernelResult], fired_rules: list[list[Rule]], kernels_of_rows: list[Any]
) -> None:
    """Warnings whose only move is a num_warps/num_stages the kernel already runs: info, with a note."""
    for i, result in enumerate(results):
        kernel = kernels_of_rows[i] if kernels_of_rows else None
        if kernel is None:
            continue
        configs = kernel.candidate_configs()
        restated: list[str] = []
        for rule in fired_rules[i]:
            hint = rule.spec.proposal
            if hint is None or hint.block_scale is not None or hint.block_min is not None:
                continue
            if hint.chunk_block_to is not None or (hint.num_warps is None and hint.num_stages is None):
                continue
            if configs and all(
                (hint.num_warps is None or c.num_warps == hint.num_warps)
                and (hint.num_stages is None or c.num_stages == hint.num_stages)
                for c in configs
            ):
                restated.append(rule.id)
        if not restated or not _as_info(result, frozenset(restated)):
            continue
        result.notes.append(
            f"{', '.join(sorted(restated))}: the kernel already runs the num_warps/num_stages this asks for; "
            "stated as info (nothing to change)"
        )


def _withhold_at_roof(result: KernelResult, roofline: Any, would_propose: bool = False) -> None:
    """Move findings that cannot gain at the roof to ``suppressed``, with the reason; no configs proposed."""
    withheld = [f for f in result.findings if _is_launch_advice(f, roofline.bound)]
    gain = max(0.0, 1.0 - (roofline.fraction or 0.0))
    work = "move fewer bytes" if roofline.bound == "memory" else "do less work"
    gain_text = (
        f"no such change can gain more than ~{gain:.0%}"
        if gain >= 0.005
        else "it runs at or above the roof it is measured against: no such change can gain measurably"
    )
    reason = (
        f"at {roof_percent(roofline.fraction or 0.0)} of its {roofline.bound} roof: launch-parameter advice "
        f"and findings whose fix does not {work} withheld ({gain_text})"
    )
    if withheld:
        result.suppressed.extend(withheld)
        result.findings = [f for f in result.findings if not _is_launch_advice(f, roofline.bound)]
        reason += f": {', '.join(sorted({f.rule for f in withheld}))}"
        cached = sorted({f.rule for f in withheld if f.evidence.get("cuts_dram_bytes") in (False, 0)})
        if cached:
            reason += (
                f" ({', '.join(cached)}: DRAM reads do not exceed the bytes the loads use, so the excess "
                "sectors were served by L1/L2)"
            )
    if result.proposals or would_propose:
        result.proposals, result.autotune_block = [], None
        reason += "; no autotune configs proposed"
    result.notes.append(reason)


def _local_traffic(table: pd.DataFrame) -> np.ndarray:
    """Local-memory bytes per row (sectors x 32 where bytes are absent); NaN when neither is recorded."""

    def summed(names: Sequence[str], scale: float) -> np.ndarray:
        present = [n for n in names if n in table.columns]
        if not present:
            return np.full(len(table), np.nan)
        values = np.array(
            [pd.to_numeric(table[n], errors="coerce").to_numpy(dtype=np.float64) for n in present]
        )
        total: np.ndarray = np.nan_to_num(values).sum(axis=0) * scale
        total[np.all(np.isnan(values), axis=0)] = np.nan
        return total

    by_bytes = summed(_LOCAL_BYTES, 1.0)
    traffic: np.ndarray = np.where(np.isnan(by_bytes), summed(_LOCAL_SECTORS, 32.0), by_bytes)
    return traffic


def _seed_notes(results: list[KernelResult], local_bytes: np.ndarray) -> None:
    """Notes beside seed-rule findings (NA1xx/NA2xx) that a measurement contradicts."""
    for i, result in enumerate(results):
        fired = {f.rule for f in result.findings}
        for finding in result.findings:
            because = finding.evidence.get("info_because")
            if because and finding.stage in ("block-size", "fine-tune"):
                result.notes.append(
                    f"{finding.rule} (measured): stated as info, not a warning, since {because} holds on "
                    "this launch; the seeds' wording is kept"
                )
        memory = getattr(result.roofline, "memory_fraction", None)
        if "NA201" in fired and memory is not None and memory >= 0.6:
            result.notes.append(
                f"NA201 (measured): DRAM runs at {memory:.0%} of the copy roof, so the kernel is "
                "memory-side; more warps for compute will not help"
            )
        if "NA104" in fired and memory is not None and memory >= 0.7:
            result.notes.append(
                f"NA104 (measured): this BLOCK already reaches {memory:.0%} of the copy roof; the seeds' "
                "256/512 is a starting range, not a target"
            )
        pressure = fired & {"NA105", "NA106", "NA203"}
        if pressure and i < len(local_bytes) and local_bytes[i] == 0:
            result.notes.append(
                f"{', '.join(sorted(pressure))} (measured): no local-memory traffic, the registers do "
                "not spill; smaller tiles trade operand reuse for occupancy, keep them only if measured "
                "faster"
            )
        if "NA323" in fired and fired & {"NA104", "NA105", "NA107"}:
            result.notes.append(
                "NA104/NA105/NA107 (measured): the row loop takes chunks far smaller than the row (NA323); "
                "grow the chunk rather than shrink it"
            )
