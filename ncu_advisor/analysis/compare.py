"""Compare two runs: per variant the median time with a noise-aware verdict, per kernel the metric deltas.

The noise test (also in docs/report.md):

* Each run keeps, per variant, one median per timing repetition (``timings.csv``: variant, rep, median_ms).
  For a run, ``m`` is the median of those and ``s`` their robust spread, ``1.4826 * MAD`` (median absolute
  deviation; the factor makes it a standard deviation for normal data). With fewer than two repetitions
  (``timings.csv`` missing, without the variant's rows, or one repetition; ``m`` is then the manifest's
  ``median_ms``) the spread is unknown: ``s = ASSUMED_SPREAD * m`` (2%) and a warning says so.
* ``delta = (m_new - m_base) / m_base`` and the pooled relative spread
  ``noise = sqrt(s_base**2 + s_new**2) / m_base``.
* The change is significant when ``|delta| > max(threshold, K * noise)`` with ``K = 3`` and ``threshold``
  the ``--threshold`` percentage (default 2%). Significant and negative: ``faster``; significant and
  positive: ``slower``; otherwise ``same`` (within noise or the threshold).

Timings that are NaN, infinite, zero or negative are refused (exit 2, naming the run's ``timings.csv``):
they would otherwise read as "faster" (so are times below ``manifest.MIN_TIMING_MS``, and rows of a
variant the manifest does not list: ``rundir.load_run``). Variants are paired by name: those only in one
run are listed and not compared; when no variant matches the runs cannot be compared (exit 2). Findings
(the same ones ``recommend`` and ``report`` show, through ``analysis.analyze``) are paired by (variant,
kernel, launch, rule): ``findings_added`` are new in NEW, ``findings_resolved`` gone from it.

A variant regresses when it is ``slower``, or was correct in BASE and is not in NEW. The reference
(``Model``, plain PyTorch) is compared and shown but never counts as a regression: it is not the code
under review, and a change in it points at the machine or the library versions. When its time changed
significantly a warning says so (the variants' verdicts may then reflect the machine, not the code).
Kernel rows pair launches by (variant, kernel name, occurrence); ncu measured each launch once, so their
verdict uses the threshold only (``noise`` is None).

Runs of different kernel sources (``analysis.kernel_source``: another reference problem, or other kernel
file names where the problem is unknown) are said first, naming both runs' kernel files, then the variants
that match by name are compared (issue 11: say so and compare what matches; exit 2 only when nothing
matches): their variants share names (``Model``, ``ModelNew``) but not code, so the warning says a verdict
sets one problem's time against another's, and the reference's change is put down to the different
problem, not the machine. ``require_same_kernel`` (a CI gate whose baseline must be the same kernel) refuses
them instead (exit 2). Runs of one kernel file whose
variants were edited (the sha256 of the copies differs, the problem does not) are compared with a warning.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from ncu_advisor.analysis.kernel_source import KernelSource, different_sources, kernel_source
from ncu_advisor.analysis.result import Analysis, gpu_name, severity_at_least
from ncu_advisor.analysis.summary import (
    DRAM_PCT,
    L2_HIT,
    REGISTERS,
    SM_PCT,
    WARPS_ACTIVE,
    LaunchSummary,
    VariantSummary,
)
from ncu_advisor.errors import RunError
from ncu_advisor.model import Finding
from ncu_advisor.rundir import read_manifest

#: Spread multiple a change must exceed to count (with the threshold).
NOISE_K = 3.0
#: MAD -> standard deviation for normally distributed data.
MAD_TO_SIGMA = 1.4826
DEFAULT_THRESHOLD_PCT = 2.0
#: Relative spread (s / m) assumed for a run's variant without per-repetition timings: 2%, about twice the
#: largest robust spread of any variant in the recorded runs (1.1%, matmul_epilogue's Model over 5
#: repetitions; examples/runs/*/timings.csv). With both sides assumed the bar is 3 x 2.8% = 8.5%.
ASSUMED_SPREAD = 0.02
#: Metrics whose change the comparison shows per kernel (absolute deltas, in their units).
DELTA_METRICS = {
    "dram_pct": DRAM_PCT[0],
    "sm_pct": SM_PCT[0],
    "l2_hit_pct": L2_HIT[0],
    "warps_active_pct": WARPS_ACTIVE[0],
    "registers": REGISTERS[0],
}


@dataclass(frozen=True)
class VariantDelta:
    """One variant in both runs."""

    name: str
    base_ms: float | None
    new_ms: float | None
    base_spread_ms: float
    new_spread_ms: float
    change: float | None
    noise: float | None
    bar: float | None
    verdict: str
    base_correct: bool | None
    new_correct: bool | None
    regression: bool
    reasons: list[str]
    metric_deltas: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class KernelDelta:
    """One kernel launch of a variant in both runs (paired by name and occurrence)."""

    variant: str
    kernel: str
    occurrence: int
    base_ms: float | None
    new_ms: float | None
    change: float | None
    verdict: str
    metric_deltas: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare_reports``."""

    base: str
    new: str
    gpu: str
    threshold_pct: float
    variants: list[VariantDelta]
    kernels: list[KernelDelta]
    only_in_base: list[str]
    only_in_new: list[str]
    warnings: list[str]
    findings: list[Finding] = field(default_factory=list)
    library_findings: list[Finding] = field(default_factory=list)
    findings_added: list[Finding] = field(default_factory=list)
    findings_resolved: list[Finding] = field(default_factory=list)
    fail_on: str = "never"
    kernel_files_differ: bool | None = None
    not_profiled: int = 0

    @property
    def regressions(self) -> list[VariantDelta]:
        return [v for v in self.variants if v.regression]

    @property
    def failing_findings(self) -> list[Finding]:
        """Findings new in NEW at or above ``fail_on``."""
        if self.fail_on == "never":
            return []
        return [f for f in self.findings_added if severity_at_least(f, self.fail_on)]

    @property
    def exit_code(self) -> int:
        """1 when a variant regressed, a finding at or above ``fail_on`` is new, or a launch of either run
        was not profiled (``not_profiled``, whatever ``fail_on``: never clean), else 0."""
        return 1 if self.regressions or self.failing_findings or self.not_profiled else 0


def robust_spread(values: list[float]) -> float:
    """``1.4826 * median(|x - median(x)|)``; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    center = statistics.median(values)
    return MAD_TO_SIGMA * statistics.median(abs(v - center) for v in values)


def spread(values: list[float]) -> float:
    """``robust_spread``, or ``ASSUMED_SPREAD`` x the median for fewer than two values (spread unknown)."""
    return robust_spread(values) if len(values) >= 2 else ASSUMED_SPREAD * statistics.median(values)


def judge(base: list[float], new: list[float], threshold_pct: float) -> tuple[float, float, float, str]:
    """The noise test on two sets of per-repetition medians (one value: its spread is assumed).

    Returns:
        (relative change, relative pooled noise, bar the change must exceed, verdict).
    """
    m_base, m_new = statistics.median(base), statistics.median(new)
    change = (m_new - m_base) / m_base
    noise = math.hypot(spread(base), spread(new)) / m_base
    bar = max(threshold_pct / 100.0, NOISE_K * noise)
    verdict = "same" if abs(change) <= bar else ("slower" if change > 0 else "faster")
    return change, noise, bar, verdict


def gpu_models(data: Analysis) -> set[str]:
    """Every GPU model a run's timings come from: its GPU, and each variant's (manifest ``gpu.name``, which
    a run spread over several GPUs or hosts records per variant)."""
    names = {gpu_name(data)}
    try:
        manifest = read_manifest(data.run_path)
    except RunError:
        return names
    for entry in [manifest.get("reference"), *(manifest.get("variants") or {}).values()]:
        gpu = entry.get("gpu") if isinstance(entry, dict) else None
        if isinstance(gpu, dict) and gpu.get("name"):
            names.add(str(gpu["name"]))
    return names


def check_comparable(
    base: Analysis, new: Analysis, *, force: bool, allow_different_gpus: bool = False
) -> list[str]:
    """Refuse runs from different GPU models (also within a run) or clock-control settings unless ``force``
    (``allow_different_gpus`` lets only the GPU models differ).

    Returns:
        Warnings to show (what differs) when forced or allowed.

    Raises:
        RunError: they differ and ``force`` is False.
    """
    problems: list[str] = []
    allowed: list[str] = []
    models = gpu_models(base) | gpu_models(new)
    if len(models) > 1:
        text = f"GPUs differ: timings come from {', '.join(sorted(models))}"
        (allowed if allow_different_gpus else problems).append(text)
    base_clock, new_clock = base.options.get("clock_control"), new.options.get("clock_control")
    if base_clock != new_clock:
        problems.append(f"clock control differs: BASE {base_clock!r}, NEW {new_clock!r}")
    if problems and not force:
        raise RunError(
            "runs are not comparable: " + "; ".join(problems),
            path=new.run_path,
            hint="profile both on the same GPU model with the same --clock-control, or pass "
            "--allow-different-gpus (GPU models) or --force (both)",
        )
    return allowed + problems


def _timings(variant: VariantSummary) -> list[float]:
    if variant.timings_ms:
        return variant.timings_ms
    return [variant.median_ms] if variant.median_ms is not None else []


def _main_metrics(variant: VariantSummary) -> dict[str, float]:
    main = next((x for x in variant.launches if x.kernel == variant.main_kernel), None)
    return main.metrics if main else {}


def _deltas(base: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    return {label: new[m] - base[m] for label, m in DELTA_METRICS.items() if m in base and m in new}


def check_timings(run: Analysis, variants: list[VariantSummary]) -> None:
    """Refuse timings that are NaN, infinite, zero or negative (they would read as "faster").

    Raises:
        RunError: naming the run's ``timings.csv`` and the variants concerned.
    """
    bad = [v.name for v in variants if v.bad_timings]
    if bad:
        raise RunError(
            f"timings of {', '.join(bad)} are NaN, infinite, zero or negative: cannot judge speed",
            path=run.run_path / "timings.csv",
            hint="the run was damaged or hand-edited; profile again",
        )


def _variant_delta(b: VariantSummary, n: VariantSummary, threshold_pct: float) -> VariantDelta:
    tb, tn = _timings(b), _timings(n)
    reasons: list[str] = []
    change: float | None = None
    noise: float | None = None
    bar: float | None = None
    verdict = "unknown"
    if tb and tn:
        change, noise, bar, verdict = judge(tb, tn, threshold_pct)
    if verdict == "slower" and not n.is_reference:
        reasons.append(
            f"{change:+.1%} slower (bar {bar:.1%}: max(threshold, {NOISE_K:g} x noise {noise:.2%}))"
        )
    # a variant that ran in BASE and failed in NEW is a regression whatever its correctness check said (a
    # check that passed before a crash in the timing step; red team 5, D10)
    broke = b.status == "ok" and n.status != "ok"
    if (broke or (b.correct is True and n.correct is not True)) and not n.is_reference:
        was = "correct" if b.correct is True else b.status
        reasons.append(f"was {was}, now {n.status}" + (f": {n.reason}" if n.reason else ""))
    return VariantDelta(
        name=n.name,
        base_ms=statistics.median(tb) if tb else None,
        new_ms=statistics.median(tn) if tn else None,
        base_spread_ms=spread(tb) if tb else 0.0,
        new_spread_ms=spread(tn) if tn else 0.0,
        change=change,
        noise=noise,
        bar=bar,
        verdict=verdict,
        base_correct=b.correct,
        new_correct=n.correct,
        regression=bool(reasons),
        reasons=reasons,
        metric_deltas=_deltas(_main_metrics(b), _main_metrics(n)),
    )


def _occurrences(launches: list[LaunchSummary]) -> dict[tuple[str, int], LaunchSummary]:
    seen: dict[str, int] = {}
    paired: dict[tuple[str, int], LaunchSummary] = {}
    for launch in launches:
        k = seen.get(launch.kernel, 0)
        seen[launch.kernel] = k + 1
        paired[(launch.kernel, k)] = launch
    return paired


def _kernel_deltas(b: VariantSummary, n: VariantSummary, threshold_pct: float) -> list[KernelDelta]:
    new_launches = _occurrences(n.launches)
    deltas = []
    for (kernel, k), launch in _occurrences(b.launches).items():
        other = new_launches.get((kernel, k))
        if other is None:
            continue
        bm, nm = launch.duration_ms, other.duration_ms
        change = (nm - bm) / bm if bm and nm is not None else None
        if change is None:
            verdict = "unknown"
        elif abs(change) <= threshold_pct / 100.0:
            verdict = "same"
        else:
            verdict = "slower" if change > 0 else "faster"
        deltas.append(
            KernelDelta(n.name, kernel, k, bm, nm, change, verdict, _deltas(launch.metrics, other.metrics))
        )
    return deltas


def _finding_key(finding: Finding) -> tuple[str | None, str, int, str]:
    return (finding.variant, finding.kernel, finding.launch, finding.rule)


def _finding_changes(base: Analysis, new: Analysis, names: set[str]) -> tuple[list[Finding], list[Finding]]:
    """Findings of the compared variants new in NEW, and those gone from it."""
    gated_base = [f for f in base.gated_findings if f.variant in names]
    gated_new = [f for f in new.gated_findings if f.variant in names]
    base_keys = {_finding_key(f) for f in gated_base}
    new_keys = {_finding_key(f) for f in gated_new}
    added = [f for f in gated_new if _finding_key(f) not in base_keys]
    resolved = [f for f in gated_base if _finding_key(f) not in new_keys]
    return added, resolved


def compare_reports(
    base: Analysis,
    new: Analysis,
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    force: bool = False,
    allow_different_gpus: bool = False,
    fail_on: str = "never",
    require_same_kernel: bool = False,
) -> Comparison:
    """Compare two runs variant by variant and kernel by kernel, and their findings.

    Variants only in one run are listed in ``only_in_base``/``only_in_new`` and not compared.

    Raises:
        RunError: different GPU or clock control (unless ``force``); different kernel sources (with
            ``require_same_kernel``); no variant in common; a compared variant's timings are NaN,
            infinite, zero or negative.
    """
    warnings = check_comparable(base, new, force=force, allow_different_gpus=allow_different_gpus)
    different, differ, edited = check_sources(base, new, require_same_kernel=require_same_kernel)
    if different:
        warnings.insert(
            0,
            f"{different}; the variants are compared by name, so a verdict sets one problem's time against "
            "another's (--require-same-kernel refuses such runs)",
        )
    base_by = {v.name: v for v in base.variants}
    new_by = {v.name: v for v in new.variants}
    common = [n for n in base_by if n in new_by]
    if not common:
        raise RunError(
            f"the runs have no variant in common (BASE {', '.join(base_by) or 'none'}; "
            f"NEW {', '.join(new_by) or 'none'})",
            path=new.run_path,
            hint="compare two runs of the same kernel file",
        )
    reference_names = {n for n in common if new_by[n].is_reference or base_by[n].is_reference}
    check_timings(base, [base_by[n] for n in common])
    check_timings(new, [new_by[n] for n in common])
    only_base = [n for n in base_by if n not in new_by]
    only_new = [n for n in new_by if n not in base_by]
    if only_base or only_new:
        warnings.append(
            "the runs have different variants; only the common ones are compared"
            + (f" (only in BASE: {', '.join(only_base)})" if only_base else "")
            + (f" (only in NEW: {', '.join(only_new)})" if only_new else "")
        )
    warnings += _timing_warnings(base_by, new_by, common)
    added, resolved = _finding_changes(base, new, set(common))
    warnings += edited
    deltas = [_variant_delta(base_by[n], new_by[n], threshold_pct) for n in common]
    warnings += [
        _reference_warning(d, different_problem=bool(different))
        for d in deltas
        if d.name in reference_names and d.verdict != "same"
    ]
    return Comparison(
        base=str(base.run_path),
        new=str(new.run_path),
        gpu=gpu_name(new),
        threshold_pct=threshold_pct,
        variants=deltas,
        kernels=[k for n in common for k in _kernel_deltas(base_by[n], new_by[n], threshold_pct)],
        only_in_base=only_base,
        only_in_new=only_new,
        warnings=warnings,
        findings=new.findings,
        library_findings=new.library_findings,
        findings_added=added,
        findings_resolved=resolved,
        fail_on=fail_on,
        not_profiled=len(base.not_profiled) + len(new.not_profiled),
        kernel_files_differ=differ,
    )


def check_sources(
    base: Analysis, new: Analysis, *, require_same_kernel: bool = False
) -> tuple[str | None, bool | None, list[str]]:
    """Whether the runs profile different kernel sources (``analysis.kernel_source``); refused when
    ``require_same_kernel``.

    Returns:
        Why the sources differ (None: one problem), whether the kernel-file copies differ by sha256 (None:
        a copy is missing), and the warning for edited code of one problem (a list of 0 or 1).

    Raises:
        RunError: with ``require_same_kernel``, naming both runs' kernel files (exit 2).
    """
    sources = (kernel_source(base), kernel_source(new))
    different = different_sources(*sources)
    if different and require_same_kernel:
        raise RunError(
            different,
            path=new.run_path,
            hint="compare two runs of the same kernel file, or leave out --require-same-kernel to compare "
            "the variants that match by name (the difference is then the first warning)",
        )
    differ = _kernel_files_differ(*sources)
    if not differ or different:
        return different, differ, []
    renamed = sources[0].name != sources[1].name and sources[0].name and sources[1].name
    return (
        different,
        differ,
        [
            f"the kernel files differ (sha256 of {base.kernel_copy} and {new.kernel_copy}"
            + (f"; renamed {sources[0].name} -> {sources[1].name}" if renamed else "")
            + "): the runs measure different code of one problem, so a verdict reflects the code change too"
        ],
    )


def _kernel_files_differ(base: KernelSource, new: KernelSource) -> bool | None:
    """Whether the runs' kernel-file copies differ by sha256; None when either run has no readable copy."""
    if base.sha256 is None or new.sha256 is None:
        return None
    return base.sha256 != new.sha256


def _timing_warnings(
    base_by: dict[str, VariantSummary], new_by: dict[str, VariantSummary], common: list[str]
) -> list[str]:
    """Say which compared variants lack per-repetition times (their spread is assumed, not measured)."""
    out = []
    for label, by in (("BASE", base_by), ("NEW", new_by)):
        lacking = [n for n in common if len(_timings(by[n])) == 1]
        if lacking:
            out.append(
                f"{label} has one time and no per-repetition spread for {', '.join(lacking)} (timings.csv "
                f"missing, without their rows, or one repetition): a spread of {ASSUMED_SPREAD:.0%} of the "
                "median is assumed for the noise bar"
            )
    return out


def _reference_warning(delta: VariantDelta, *, different_problem: bool = False) -> str:
    """The reference's time moved: not a regression (not the code under review), but never silent; with
    ``different_problem`` (runs of different kernel sources) the move is the problem's, not the machine's."""
    assert delta.change is not None
    if different_problem:
        return (
            f"the reference {delta.name} is {delta.change:+.1%} {delta.verdict} (not counted as a "
            "regression): the runs profile different kernel sources, so it times a different problem; "
            "this says nothing about the machine"
        )
    return (
        f"the reference {delta.name} is {delta.change:+.1%} {delta.verdict} (not counted as a regression: "
        "it is not the code under review; a change in it points at the machine, clocks or library "
        "versions, so the variants' verdicts may reflect them too)"
    )
