"""Compare two runs: per variant the median time with a noise-aware verdict, per kernel the metric deltas.

The noise test (also in docs/report.md):

* Each run keeps, per variant, one median per timing repetition (``timings.csv``: variant, rep, median_ms).
  For a run, ``m`` is the median of those and ``s`` their robust spread, ``1.4826 * MAD`` (median absolute
  deviation; the factor makes it a standard deviation for normal data). With one repetition ``s = 0``.
* ``delta = (m_new - m_base) / m_base`` and the pooled relative spread
  ``noise = sqrt(s_base**2 + s_new**2) / m_base``.
* The change is significant when ``|delta| > max(threshold, K * noise)`` with ``K = 3`` and ``threshold``
  the ``--threshold`` percentage (default 2%). Significant and negative: ``faster``; significant and
  positive: ``slower``; otherwise ``same`` (within noise or the threshold).

A variant regresses when it is ``slower``, or was correct in BASE and is not in NEW. The reference
(``Model``, plain PyTorch) is compared and shown but never counts as a regression: it is not the code
under review, and a change in it points at the machine or the library versions. Kernel rows pair
launches by (variant, kernel name, occurrence); ncu measured each launch once, so their verdict uses the
threshold only (``noise`` is None).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from ncu_advisor.errors import RunError
from ncu_advisor.rundir import read_manifest
from ncu_advisor.analysis.report_data import (
    DRAM_PCT,
    L2_HIT,
    REFERENCE_NAME,
    REGISTERS,
    SM_PCT,
    WARPS_ACTIVE,
    ReportData,
    VariantSummary,
    gpu_name,
)

#: Spread multiple a change must exceed to count (with the threshold).
NOISE_K = 3.0
#: MAD -> standard deviation for normally distributed data.
MAD_TO_SIGMA = 1.4826
DEFAULT_THRESHOLD_PCT = 2.0
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

    @property
    def regressions(self) -> list[VariantDelta]:
        return [v for v in self.variants if v.regression]

    @property
    def exit_code(self) -> int:
        """1 when a variant regressed, else 0."""
        return 1 if self.regressions else 0


def robust_spread(values: list[float]) -> float:
    """``1.4826 * median(|x - median(x)|)``; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    center = statistics.median(values)
    return MAD_TO_SIGMA * statistics.median(abs(v - center) for v in values)


def judge(base: list[float], new: list[float], threshold_pct: float) -> tuple[float, float, float, str]:
    """The noise test on two sets of per-repetition medians.

    Returns:
        (relative change, relative pooled noise, bar the change must exceed, verdict).
    """
    m_base, m_new = statistics.median(base), statistics.median(new)
    change = (m_new - m_base) / m_base
    noise = math.hypot(robust_spread(base), robust_spread(new)) / m_base
    bar = max(threshold_pct / 100.0, NOISE_K * noise)
    verdict = "same" if abs(change) <= bar else ("slower" if change > 0 else "faster")
    return change, noise, bar, verdict


def gpu_models(data: ReportData) -> set[str]:
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
    base: ReportData, new: ReportData, *, force: bool, allow_different_gpus: bool = False
) -> list[str]:
    """Refuse runs from different GPU models (also within a run) or clock-control settings unless ``force``
    (``allow_different_gpus`` lets only the GPU models differ).

    Returns:
        Warnings to show (what differs) when forced or allowed.

    Raises:
        RunError: they differ and ``force`` is False.
    """
    problems = []
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


def compare_reports(
    base: ReportData,
    new: ReportData,
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    force: bool = False,
    allow_different_gpus: bool = False,
) -> Comparison:
    """Compare two runs variant by variant and kernel by kernel.

    Raises:
        RunError: different GPU or clock control (unless ``force``); a variant present in only one run
            (unless ``force``: then listed in ``only_in_base``/``only_in_new`` and not compared).
    """
    warnings = check_comparable(base, new, force=force, allow_different_gpus=allow_different_gpus)
    base_by = {v.name: v for v in base.variants}
    new_by = {v.name: v for v in new.variants}
    only_base = [n for n in base_by if n not in new_by]
    only_new = [n for n in new_by if n not in base_by]
    if (only_base or only_new) and not force:
        parts = []
        if only_base:
            parts.append(f"only in BASE: {', '.join(only_base)}")
        if only_new:
            parts.append(f"only in NEW: {', '.join(only_new)}")
        raise RunError(
            "the runs have different variants (" + "; ".join(parts) + ")",
            path=new.run_path,
            hint="profile the same variants in both, or pass --force to compare the common ones",
        )
    variants: list[VariantDelta] = []
    kernels: list[KernelDelta] = []
    for name in [n for n in base_by if n in new_by]:
        b, n = base_by[name], new_by[name]
        tb, tn = _timings(b), _timings(n)
        reasons: list[str] = []
        change: float | None
        noise: float | None
        bar: float | None
        if tb and tn and statistics.median(tb) > 0:
            change, noise, bar, verdict = judge(tb, tn, threshold_pct)
        else:
            change = noise = bar = None
            verdict = "unknown"
        if verdict == "slower" and not n.is_reference:
            reasons.append(
                f"{change:+.1%} slower (bar {bar:.1%}: max(threshold, {NOISE_K:g} x noise {noise:.2%}))"
            )
        if b.correct is True and n.correct is not True and not n.is_reference:
            reasons.append(f"was correct, now {n.status}" + (f": {n.reason}" if n.reason else ""))
        variants.append(
            VariantDelta(
                name=name,
                base_ms=statistics.median(tb) if tb else None,
                new_ms=statistics.median(tn) if tn else None,
                base_spread_ms=robust_spread(tb),
                new_spread_ms=robust_spread(tn),
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
        )
        seen: dict[str, int] = {}
        new_launches: dict[tuple[str, int], Any] = {}
        for launch in n.launches:
            k = seen.get(launch.kernel, 0)
            seen[launch.kernel] = k + 1
            new_launches[(launch.kernel, k)] = launch
        seen = {}
        for launch in b.launches:
            k = seen.get(launch.kernel, 0)
            seen[launch.kernel] = k + 1
            other = new_launches.get((launch.kernel, k))
            if other is None:
                continue
            bm, nm = launch.duration_ms, other.duration_ms
            kchange = (nm - bm) / bm if bm and nm is not None else None
            kverdict = (
                "unknown"
                if kchange is None
                else (
                    "same"
                    if abs(kchange) <= threshold_pct / 100.0
                    else ("slower" if kchange > 0 else "faster")
                )
            )
            kernels.append(
                KernelDelta(
                    variant=name,
                    kernel=launch.kernel,
                    occurrence=k,
                    base_ms=bm,
                    new_ms=nm,
                    change=kchange,
                    verdict=kverdict,
                    metric_deltas=_deltas(launch.metrics, other.metrics),
                )
            )
    return Comparison(
        base=str(base.run_path),
        new=str(new.run_path),
        gpu=gpu_name(new),
        threshold_pct=threshold_pct,
        variants=variants,
        kernels=kernels,
        only_in_base=only_base,
        only_in_new=only_new,
        warnings=warnings,
    )


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1%}"


#: How a metric delta reads, with its unit: percentage points for the percentages, a count for registers.
DELTA_TEXT = {
    "dram_pct": "DRAM {:+.1f} pp",
    "sm_pct": "SM {:+.1f} pp",
    "l2_hit_pct": "L2 hit {:+.1f} pp",
    "warps_active_pct": "active warps {:+.1f} pp",
    "registers": "{:+.0f} registers/thread",
}


def _metric_text(deltas: dict[str, float]) -> str:
    parts = [DELTA_TEXT.get(k, k + " {:+.1f}").format(v) for k, v in deltas.items() if abs(v) >= 0.05]
    return ", ".join(parts) or "–"


def render_text(result: Comparison) -> str:
    """Plain text for a terminal."""
    lines = [
        f"compare {result.base} -> {result.new} on {result.gpu} (threshold {result.threshold_pct:g}%, "
        f"noise bar {NOISE_K:g} x pooled MAD spread)"
    ]
    lines += [f"warning: {w} (--force)" for w in result.warnings]
    width = max([len(v.name) for v in result.variants] + [7])
    lines.append(f"{'variant':<{width}}  {'base ms':>9}  {'new ms':>9}  {'change':>7}  {'bar':>6}  verdict")
    for v in result.variants:
        bar = "–" if v.bar is None else f"{v.bar:.1%}"
        flag = "  REGRESSION: " + "; ".join(v.reasons) if v.regression else ""
        lines.append(
            f"{v.name:<{width}}  {_ms(v.base_ms):>9}  {_ms(v.new_ms):>9}  {_pct(v.change):>7}  {bar:>6}  "
            f"{v.verdict}{flag}"
        )
    if result.kernels:
        lines.append("")
        lines.append("kernels (one ncu measurement each: threshold only):")
        for k in result.kernels:
            lines.append(
                f"  {k.variant} {k.kernel[:50]}#{k.occurrence}: {_ms(k.base_ms)} -> {_ms(k.new_ms)} ms "
                f"{_pct(k.change)} {k.verdict}; {_metric_text(k.metric_deltas)}"
            )
    for label, names in (("only in BASE", result.only_in_base), ("only in NEW", result.only_in_new)):
        if names:
            lines.append(f"{label} (not compared): {', '.join(names)}")
    lines.append(f"{len(result.regressions)} regression(s)")
    return "\n".join(lines) + "\n"


def _correct_word(correct: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "?"}[correct]


def render_markdown(result: Comparison) -> str:
    """Markdown for a pull-request comment."""
    verdict_icon = {"faster": "🟢 faster", "slower": "🔴 slower", "same": "⚪ same", "unknown": "❔ unknown"}
    lines = [
        f"## ncu-advisor compare on {result.gpu}",
        "",
        f"`{result.base}` → `{result.new}`; threshold {result.threshold_pct:g}%, a change counts when it "
        f"exceeds max(threshold, {NOISE_K:g} × pooled robust spread of the repetition medians).",
        "",
    ]
    lines += [f"> ⚠️ {w} (compared with --force)" for w in result.warnings]
    lines.append(
        "| variant | base ms | new ms | change | bar | verdict | correct "
        "| key metric deltas (longest kernel) |"
    )
    lines.append("|---|---:|---:|---:|---:|---|---|---|")
    for v in result.variants:
        bar = "–" if v.bar is None else f"{v.bar:.1%}"
        correct = (
            "reference"
            if v.name == REFERENCE_NAME
            else f"{_correct_word(v.base_correct)} → {_correct_word(v.new_correct)}"
        )
        verdict = verdict_icon.get(v.verdict, v.verdict) + (" **regression**" if v.regression else "")
        lines.append(
            f"| {v.name} | {_ms(v.base_ms)} | {_ms(v.new_ms)} | {_pct(v.change)} | {bar} | {verdict} "
            f"| {correct} | {_metric_text(v.metric_deltas)} |"
        )
    if result.kernels:
        lines += [
            "",
            "<details><summary>Per kernel (ncu durations, threshold only)</summary>",
            "",
            "| variant | kernel | base ms | new ms | change | verdict | metric deltas |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for k in result.kernels:
            lines.append(
                f"| {k.variant} | `{k.kernel[:60]}` #{k.occurrence} | {_ms(k.base_ms)} | {_ms(k.new_ms)} "
                f"| {_pct(k.change)} | {k.verdict} | {_metric_text(k.metric_deltas)} |"
            )
        lines += ["", "</details>"]
    for label, names in (("Only in BASE", result.only_in_base), ("Only in NEW", result.only_in_new)):
        if names:
            lines += ["", f"{label} (not compared): {', '.join(names)}"]
    lines += [
        "",
        f"**{len(result.regressions)} regression(s)**"
        + (
            ": " + "; ".join(f"{v.name} ({'; '.join(v.reasons)})" for v in result.regressions)
            if result.regressions
            else ""
        ),
    ]
    return "\n".join(lines) + "\n"


#: ``schema_version`` of ``compare --format json`` (ncu_advisor/schemas/comparison.schema.json).
COMPARISON_SCHEMA_VERSION = 1


def render_json(result: Comparison) -> str:
    """JSON: ``schema_version``, the ``Comparison`` fields, plus ``regressions`` (names) and ``exit_code``."""
    document = {"schema_version": COMPARISON_SCHEMA_VERSION, **asdict(result)}
    document["regressions"] = [v.name for v in result.regressions]
    document["exit_code"] = result.exit_code
    document["noise_k"] = NOISE_K
    return json.dumps(document, indent=2, default=str) + "\n"
