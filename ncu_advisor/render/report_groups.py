"""The report's kernels as groups: the launches, findings, proposals and roofline chart of each kernel.

A group is one kernel name across the variants. Groups are ordered by the largest time one of their
findings can save, findings within a group the same way. The time a finding can save is its
``global_effect`` (the launch's share of the variant's kernel time x the rule's local estimated effect,
``analysis.advice``) times the variant's kernel time; without ``global_effect``, the local estimated
effect times the launch's duration. A kernel the kernel file does not define (no source location for it)
is a library kernel (cuDNN, PyTorch's own): listed apart, never pinned to the user's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ncu_advisor import gpus
from ncu_advisor.errors import InputError
from ncu_advisor.render.axes import milliseconds
from ncu_advisor.render.roofline_svg import RooflineChart, RooflinePoint, launch_point, roofs_for


@dataclass
class KernelGroup:
    """One kernel of the report. ``variant_time_ms``: each variant's summed kernel time (ms)."""

    kernel: str
    library: bool
    launches: list[Any] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    proposals: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    variant_time_ms: dict[str, float] = field(default_factory=dict)
    chart: RooflineChart | None = None

    @property
    def saving_ms(self) -> float:
        """The most time one finding of the group can save (ms); 0 without findings."""
        return max(
            (finding_saving_ms(f, self.variant_time_ms.get(f.variant or "")) or 0.0 for f in self.findings),
            default=0.0,
        )

    @property
    def time_ms(self) -> float:
        """The kernel's summed launch time over all variants (ms)."""
        return sum(x.duration_ms or 0.0 for x in self.launches)

    def summary(self) -> str:
        """One line: launches, variants, time, findings and what they can save."""
        variants = sorted({x.variant for x in self.launches})
        text = (
            f"{len(self.launches)} launch(es) in {', '.join(variants)}; {milliseconds(self.time_ms)} in all; "
            f"{len(self.findings)} finding(s)"
        )
        if self.saving_ms:
            text += f"; the first can save up to {milliseconds(self.saving_ms)}"
        return text


def finding_saving_ms(finding: Any, variant_time_ms: float | None) -> float | None:
    """The time (ms) acting on ``finding`` can save in its variant, or None when unknown."""
    share = finding.evidence.get("global_effect")
    if isinstance(share, (int, float)) and variant_time_ms:
        return float(share) * variant_time_ms
    return None


def gpu_spec(data: Any) -> Any:
    """The catalogue entry of the analysis' GPU (from its table, else the run's manifest), None if unknown."""
    table = getattr(data, "table", None)
    source: Any = table if table is not None and len(table) else None
    if source is None:
        gpu = data.gpu or {}
        if not gpu.get("name"):
            return None
        source = {
            "gpu": gpu["name"],
            "cc": gpu.get("cc"),
            "device__attribute_multiprocessor_count": gpu.get("sm_count"),
        }
    try:
        spec, _warnings = gpus.spec_for(source)
    except InputError:
        return None
    return spec


def _results(data: Any) -> dict[tuple[str, str, int], Any]:
    """The rule engine's per-launch results (roofline, notes), where the analysis keeps them."""
    found: dict[tuple[str, str, int], Any] = {}
    for result in (*getattr(data, "results", ()), *getattr(data, "library_results", ())):
        found[(str(result.variant), str(result.kernel), int(result.launch))] = result
    return found


def _uses_dot(data: Any, kernel: str, results: list[Any]) -> bool | None:
    """Whether the kernel calls ``tl.dot``: from the kernel file's facts, else True when the tensor pipe was
    busy, else None (unknown: both compute roofs are drawn)."""
    for facts in getattr(data, "kernel_facts", ()) or ():
        found = facts.kernel(kernel)
        if found is not None:
            return bool(found.uses_dot)
    pipes = {getattr(r.roofline, "pipe", None) for r in results if r is not None and r.roofline is not None}
    # A busy tensor pipe says yes; "FP32" may only mean the tensor metric was not collected: unknown.
    return True if "tensor" in pipes else None


def _is_library(data: Any, launch: Any) -> bool:
    flagged = getattr(launch, "library", None)
    if flagged:
        return True
    if not data.kernel_path or not data.locations:
        return False
    return (launch.variant, launch.kernel) not in data.locations


def kernel_groups(data: Any, colors: dict[str, str]) -> list[KernelGroup]:
    """The report's kernels, own kernels first, each part ordered by the time its findings can save."""
    groups: dict[str, KernelGroup] = {}
    results = _results(data)
    for v in data.variants:
        time_ms = sum(x.duration_ms or 0.0 for x in v.launches)
        for launch in v.launches:
            group = groups.setdefault(launch.kernel, KernelGroup(launch.kernel, library=False))
            group.library = group.library or _is_library(data, launch)
            group.launches.append(launch)
            group.findings += launch.findings
            group.variant_time_ms[v.name] = time_ms
            result = results.get((launch.variant, launch.kernel, launch.launch))
            for note in getattr(result, "notes", None) or []:
                if note not in group.notes:
                    group.notes.append(note)
        for kernel, block in v.autotune_blocks.items():
            if kernel in groups:
                groups[kernel].proposals[v.name] = block
    spec = gpu_spec(data)
    for group in groups.values():
        group.findings.sort(
            key=lambda f: (
                -(finding_saving_ms(f, group.variant_time_ms.get(f.variant or "")) or 0.0),
                -f.evidence.get("global_effect", f.estimated_effect),
                -f.severity.rank,
                f.rule,
            )
        )
        group.chart = _chart(group, spec, colors, results, data)
    ordered = sorted(groups.values(), key=lambda g: (-g.saving_ms, -g.time_ms, g.kernel))
    return [g for g in ordered if not g.library] + [g for g in ordered if g.library]


def _chart(
    group: KernelGroup, spec: Any, colors: dict[str, str], results: dict[tuple[str, str, int], Any], data: Any
) -> RooflineChart:
    mine = [results.get((x.variant, x.kernel, x.launch)) for x in group.launches]
    uses_dot = _uses_dot(data, group.kernel, mine)
    bandwidth, source, roofs = roofs_for(spec, uses_dot)
    points: list[RooflinePoint] = []
    many = len({x.variant for x in group.launches}) < len(group.launches)
    for launch, result in zip(group.launches, mine, strict=True):
        label = f"{launch.variant} launch {launch.launch}" if many else launch.variant
        point = launch_point(
            label,
            colors.get(launch.variant, "#555"),
            launch.metrics,
            launch.duration_ms,
            getattr(result, "roofline", None),
        )
        if point is not None:
            points.append(point)
    return RooflineChart(group.kernel, bandwidth, source, roofs, tuple(points), uses_dot)
