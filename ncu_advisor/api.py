"""The Python API: ``ncu_advisor.analyze(path)`` in a notebook or a script (docs/api.md).

It runs the same analysis as ``ncu-advisor recommend`` and ``report`` (``analysis.analyze``: read the
inputs, apply the rules, summarise the variants) and returns a ``Result`` whose table, variants and
findings are pandas DataFrames and whose proposals are plain data. Nothing here profiles: give it a run
directory written by ``ncu-advisor profile`` or ncu reports (``.ncu-rep``, ``.ncu-rep.gz``, ncu's CSV).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor.analysis.inputs import Input
from ncu_advisor.analysis.pipeline import analyze as _analyze
from ncu_advisor.analysis.result import Analysis
from ncu_advisor.errors import InputError, RuleError
from ncu_advisor.render.report_groups import finding_saving_ms
from ncu_advisor.rules import Rule

#: Columns of ``Result.findings``, in order.
FINDING_COLUMNS = (
    "variant",
    "kernel",
    "launch",
    "rule",
    "name",
    "severity",
    "stage",
    "message",
    "recommendation",
    "estimated_effect",
    "effect_kind",
    "time_share",
    "global_effect",
    "saving_ms",
    "library",
    "path",
    "line",
)
#: Columns of ``Result.variants``, in order (the verdict table of the report).
VARIANT_COLUMNS = (
    "variant",
    "reference",
    "status",
    "correct",
    "median_ms",
    "speedup_vs_reference",
    "kernel_time_ms",
    "main_kernel",
    "registers",
    "occupancy_limiter",
    "dram_pct",
    "sm_pct",
    "l2_hit_pct",
    "findings",
)

PathLike = str | Path


@dataclass(frozen=True)
class ProposalSet:
    """The launch configurations proposed for one kernel of one variant.

    Attributes:
        variant, kernel, launch: where the rules fired (launch: index within the report).
        configs: one dict per config: ``params`` (``{"BLOCK_M": 64, ...}``), ``num_warps``, ``num_stages``,
            ``reason`` and ``baseline`` (True for the current config, kept as the autotuner's fallback).
        autotune_block: the ``@triton.autotune`` block to paste, as text.
    """

    variant: str | None
    kernel: str
    launch: int
    configs: list[dict[str, Any]]
    autotune_block: str | None


@dataclass(frozen=True)
class Result:
    """What ``analyze`` returns: the analysis as DataFrames and data, and the renderers of the CLI.

    Attributes:
        analysis: the internal ``analysis.result.Analysis`` every command renders.
        table: one row per kernel launch, one column per metric, base units (bytes, ns, %).
        variants: one row per variant (``VARIANT_COLUMNS``), the reference first.
        findings: one row per finding (``FINDING_COLUMNS``), largest time to save first; ``saving_ms`` is the
            ms the finding can save in its variant (``global_effect`` x the variant's kernel time);
            ``library`` is True for kernels the kernel file does not define (cuDNN, PyTorch).
        proposals: the proposed autotune configs per (variant, kernel).
        notes: what the reader should know (library kernels listed apart, catalogue warnings).
    """

    analysis: Analysis
    table: pd.DataFrame
    variants: pd.DataFrame
    findings: pd.DataFrame
    proposals: list[ProposalSet] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fails(self, fail_on: str = "error") -> bool:
        """True when a finding ``--fail-on`` counts is at or above ``fail_on`` (info, warning, error)."""
        return self.analysis.fails(fail_on)

    def to_markdown(self) -> str:
        """The markdown report (``ncu-advisor report --format md``)."""
        from ncu_advisor.render.report_md import render_markdown  # noqa: PLC0415

        return render_markdown(self.analysis)

    def to_html(self) -> str:
        """The self-contained HTML report (``ncu-advisor report --format html``)."""
        from ncu_advisor.render.report_html import render_html  # noqa: PLC0415

        return render_html(self.analysis)

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict table and the five findings that can save the most time."""
        top = self.findings[~self.findings["library"]].head(5)
        columns = ["variant", "kernel", "rule", "severity", "saving_ms", "message"]
        variants: str = self.variants.to_html(index=False, na_rep="–")
        findings: str = top[columns].to_html(index=False, na_rep="–")
        return f"<p>{len(self.variants)} variant(s), {len(self.findings)} finding(s)</p>{variants}{findings}"


def _path(value: Any, what: str) -> Path:
    """``value`` (a str or ``os.PathLike``) as a Path; InputError naming ``what`` and its type otherwise."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        path = Path(value)
        if isinstance(path, Path):
            return path
    fix = "decode it first: path.decode()" if isinstance(value, bytes) else "pass a str or pathlib.Path"
    raise InputError(f"{what} has type {type(value).__name__} ({value!r:.60}), not a path", hint=fix)


def _inputs(path_or_run: Any) -> list[Any]:
    """Paths (or already read ``Input``s) from one item or a list/tuple of them.

    Raises:
        InputError: an item that is neither a str, an ``os.PathLike`` nor an ``Input``, or an empty list.
    """
    many = isinstance(path_or_run, (list, tuple))
    items = list(path_or_run) if many else [path_or_run]
    if not items:
        raise InputError("path_or_run is an empty list: nothing to analyse", hint="pass a report or run")
    return [
        item if isinstance(item, Input) else _path(item, f"path_or_run[{n}]" if many else "path_or_run")
        for n, item in enumerate(items)
    ]


def _rules(rules: Any) -> tuple[list[Rule] | None, Path | None]:
    """(rule list, rules directory) from ``analyze``'s ``rules`` argument.

    Raises:
        RuleError: neither None, a directory path, nor a list/tuple of ``rules.Rule``.
    """
    if rules is None:
        return None, None
    if isinstance(rules, (str, os.PathLike)):
        return None, _path(rules, "rules")
    if isinstance(rules, (list, tuple)):
        for n, rule in enumerate(rules):
            if not isinstance(rule, Rule):
                raise RuleError(
                    f"rules[{n}] has type {type(rule).__name__} ({rule!r:.60}), not a rules.Rule",
                    hint="pass rules=DIRECTORY of rule YAML files, or Rule objects from "
                    "ncu_advisor.rules.load_rules()",
                )
        return list(rules), None
    raise RuleError(
        f"rules has type {type(rules).__name__}, not a directory path or a list of ncu_advisor.rules.Rule",
        hint="pass rules=DIRECTORY of rule YAML files, or Rule objects from ncu_advisor.rules.load_rules()",
    )


def _check_options(stage: Any, kernel: Any, all_kernels: Any) -> None:
    """InputError for an option of the wrong type (a typo'd keyword fails later and less clearly)."""
    for name, value, ok, want in (
        ("stage", stage, isinstance(stage, str), "a str"),
        ("kernel", kernel, kernel is None or isinstance(kernel, str), "a str or None"),
        ("all_kernels", all_kernels, isinstance(all_kernels, bool), "True or False"),
    ):
        if not ok:
            raise InputError(f"{name} has type {type(value).__name__} ({value!r:.60})", hint=f"pass {want}")


def _variants_frame(data: Analysis) -> pd.DataFrame:
    rows = [
        (
            v.name,
            v.is_reference,
            v.status,
            v.correct,
            v.median_ms,
            v.speedup_vs_reference,
            v.kernel_time_ms,
            v.main_kernel,
            v.registers,
            v.occupancy_limiter,
            v.dram_pct,
            v.sm_pct,
            v.l2_hit_pct,
            len(v.findings),
        )
        for v in data.variants
    ]
    return pd.DataFrame(rows, columns=list(VARIANT_COLUMNS))


def _findings_frame(data: Analysis) -> pd.DataFrame:
    rows = []
    for v in data.variants:
        kernel_time = sum(x.duration_ms or 0.0 for x in v.launches)
        for launch in v.launches:
            for f in launch.findings:
                where = None if launch.library else data.location_of(f)
                rows.append(
                    (
                        f.variant,
                        f.kernel,
                        f.launch,
                        f.rule,
                        f.name,
                        f.severity.value,
                        f.stage,
                        f.message,
                        f.recommendation,
                        f.estimated_effect,
                        f.effect_kind,
                        f.evidence.get("time_share"),
                        f.evidence.get("global_effect"),
                        finding_saving_ms(f, kernel_time),
                        bool(launch.library),
                        where.path if where else None,
                        where.line if where else None,
                    )
                )
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    order = frame.assign(_s=frame["saving_ms"].fillna(-1.0), _g=frame["global_effect"].fillna(-1.0))
    order = order.sort_values(["library", "_s", "_g"], ascending=[True, False, False], kind="stable")
    return order.drop(columns=["_s", "_g"]).reset_index(drop=True)


def _proposals(data: Analysis) -> list[ProposalSet]:
    sets: list[ProposalSet] = []
    seen: set[tuple[str | None, str, str | None]] = set()
    for result in (*data.results, *data.library_results):
        if not result.proposals and not result.autotune_block:
            continue
        key = (result.variant, result.kernel, result.autotune_block)
        if key in seen:  # every launch of the same kernel gets the same set
            continue
        seen.add(key)
        configs = [
            {
                "params": dict(p.params),
                "num_warps": p.num_warps,
                "num_stages": p.num_stages,
                "reason": p.reason,
                "baseline": p.baseline,
            }
            for p in result.proposals
        ]
        sets.append(ProposalSet(result.variant, result.kernel, result.launch, configs, result.autotune_block))
    return sets


def analyze(
    path_or_run: PathLike | Sequence[PathLike],
    source: PathLike | None = None,
    rules: PathLike | Sequence[Any] | None = None,
    *,
    stage: str = "all",
    kernel: str | None = None,
    all_kernels: bool = False,
) -> Result:
    """Analyse a profiled run or ncu reports, as ``ncu-advisor recommend`` / ``report`` do.

    Args:
        path_or_run: a run directory (``ncu-advisor profile``'s output), an ncu report (``.ncu-rep``,
            ``.ncu-rep.gz``, ncu's ``--csv --page raw`` output), or a list of them.
        source: the Triton kernel file the inputs profiled (default: the run's copy of it, or a report's
            ``meta.json``); without one, rules that read the source are skipped.
        rules: a directory of extra rule YAML files (same id replaces a shipped rule), or a list of
            ``rules.Rule`` to apply instead of the shipped set; default: the shipped rules.
        stage: ``all`` (default), ``block-size``, ``fine-tune`` or ``auto`` (docs/rules.md).
        kernel: keep only launches whose kernel name contains this text.
        all_kernels: count library kernels' findings for ``Result.fails`` (they are always listed).

    Returns:
        A ``Result``: ``table``, ``variants`` and ``findings`` DataFrames, ``proposals``, ``notes``.

    Raises:
        ncu_advisor.errors.InputError: an argument of the wrong type (bytes for a path, a number for
            ``kernel``), a path that is neither a run nor a readable report, an unknown stage, no launch
            matching ``kernel``, a rule file that does not load or a ``rules`` list holding anything but
            ``rules.Rule`` (``RuleError``), or a kernel file that does not parse (``KernelFileError``).
            Each error's ``exit_code`` is the CLI's.
    """
    inputs = _inputs(path_or_run)
    rule_list, rules_dir = _rules(rules)
    _check_options(stage, kernel, all_kernels)
    data = _analyze(
        inputs,
        rule_list,
        _path(source, "source") if source is not None else None,
        rules_dir=rules_dir,
        stage=stage,
        kernel=kernel,
        all_kernels=all_kernels,
    )
    return Result(
        analysis=data,
        table=data.table,
        variants=_variants_frame(data),
        findings=_findings_frame(data),
        proposals=_proposals(data),
        notes=list(data.notes),
    )


__all__ = ["FINDING_COLUMNS", "VARIANT_COLUMNS", "ProposalSet", "Result", "analyze"]
