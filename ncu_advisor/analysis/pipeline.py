"""``analyze(inputs, rules, kernel_file) -> Analysis``: the one pipeline behind every analysing command.

Each input (report file or run directory) is read once (``analysis.inputs``), its kernel file parsed once,
the rules applied to every launch but the reference's (``rules.evaluate``), launches of kernels the kernel
file does not define flagged as library launches, and each variant summarised (``analysis.summary``).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncu_advisor import gpus
from ncu_advisor.analysis.inputs import Input, NcuRules, read_input
from ncu_advisor.analysis.result import DEFAULT_STAGE, Analysis, RuleInfo, SourceLocation
from ncu_advisor.analysis.summary import REFERENCE_NAME, VariantSummary, number, summarize
from ncu_advisor.errors import InputError, KernelFileError
from ncu_advisor.kernelsrc.facts import SourceFacts, analyze_file
from ncu_advisor.model import Finding
from ncu_advisor.rules import STAGE_CHOICES, KernelResult, Rule, evaluate, load_rules


def repo_relative(path: str | None, source_root: Path | None) -> str | None:
    """The kernel file's path as recorded in the manifest, relative to ``source_root`` (default: cwd).

    A recorded absolute path inside the root is made relative. One from another machine (the GPU runner's
    checkout) is matched by its longest tail that names a file under the root (``/x/y/kernels/fused.py``
    -> ``kernels/fused.py`` when that file exists here); failing that only its file name is kept, so SARIF
    never carries a path of the profiling machine.
    """
    if not path:
        return None
    recorded = Path(path)
    if not recorded.is_absolute():
        return recorded.as_posix()
    root = (source_root or Path.cwd()).resolve()
    try:
        return recorded.relative_to(root).as_posix()
    except ValueError:
        pass
    parts = recorded.parts[1:]
    for start in range(len(parts)):
        tail = Path(*parts[start:])
        if (root / tail).is_file():
            return tail.as_posix()
    return recorded.name


def _locations(
    variants: Sequence[VariantSummary], facts: SourceFacts | None, kernel_path: str | None
) -> dict[tuple[str, str], SourceLocation]:
    if facts is None or kernel_path is None:
        return {}
    try:
        tree = ast.parse(facts.text)
    except (SyntaxError, ValueError):
        return {}
    classes = {node.name: node.lineno for node in tree.body if isinstance(node, ast.ClassDef)}
    found: dict[tuple[str, str], SourceLocation] = {}
    for variant in variants:
        if variant.name in classes:
            line = classes[variant.name]
            found[(variant.name, "")] = SourceLocation(kernel_path, line, f"class {variant.name}")
        for launch in variant.launches:
            kernel = facts.kernel(launch.kernel)
            if kernel is None:
                continue
            if kernel.autotune_lineno is not None:
                what, line = f"@triton.autotune of {kernel.name}", kernel.autotune_lineno
            else:
                what, line = f"@triton.jit def {kernel.name}", kernel.lineno
            found[(launch.variant, launch.kernel)] = SourceLocation(kernel_path, line, what)
    return found


def rule_infos(rules: Sequence[Rule], fired: set[str]) -> list[RuleInfo]:
    """The rules as SARIF and HTML list them: those that fired first, then the others, in rule order."""
    infos = []
    for rule in rules:
        docs = rule.docs
        help_text = (
            f"What it detects: {docs.what_it_detects}\n\nWhy it matters: {docs.why_it_matters}\n\n"
            f"Example: {docs.example}\n\nUse instead: {docs.use_instead}\n\n"
            f"Known problems: {docs.known_problems}"
        )
        summary = " ".join(docs.what_it_detects.split())
        infos.append(RuleInfo(rule.id, rule.name, rule.severity.value, summary, help_text))
    return [r for r in infos if r.id in fired] + [r for r in infos if r.id not in fired]


def gpu_peaks(table: pd.DataFrame) -> tuple[dict[str, float], list[str]]:
    """Peak FP32/TF32/FP16 TFLOP/s and DRAM GB/s of the table's GPU (catalogue), and warnings."""
    if not len(table):
        return {}, []
    try:
        spec, warnings = gpus.spec_for(table)
    except InputError as exc:
        return {}, [f"GPU catalogue: {exc.render()}"]
    peaks: dict[str, float] = {}
    for key in ("fp32_tflops", "tf32_tflops", "fp16_tflops", "mem_bw_gbs"):
        value = number(getattr(spec, key, None))
        if value is not None:
            peaks[key] = value
    return peaks, [str(w) for w in warnings or []]


@dataclass
class _Evaluated:
    """One input after the rules: per-row findings and autotune blocks, library rows, summaries."""

    own: list[KernelResult] = field(default_factory=list)
    library: list[KernelResult] = field(default_factory=list)
    variants: list[VariantSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _facts(item: Input, explicit: SourceFacts | None, notes: list[str]) -> SourceFacts | None:
    """The explicit kernel file's facts, else those of the input's own kernel file (a note, not an error,
    when that copy does not parse: the metrics are still worth showing)."""
    if explicit is not None or item.kernel_file is None:
        return explicit
    try:
        return analyze_file(item.kernel_file)
    except KernelFileError as exc:
        notes.append(f"kernel file not analysed: {exc.render()}")
        return None


def _evaluate(
    item: Input, table: pd.DataFrame, rules: list[Rule], facts: SourceFacts | None, stage: str
) -> _Evaluated:
    out = _Evaluated()
    evaluated = table[table["variant"] != REFERENCE_NAME] if "variant" in table.columns else table
    results = evaluate(evaluated, rules, source=facts, stage=stage) if len(evaluated) else []
    findings: dict[int, list[Finding]] = {}
    autotune: dict[int, str] = {}
    library_rows: set[int] = set()
    for row, result in zip(evaluated.index, results, strict=True):
        findings[int(row)] = list(result.findings)
        if result.autotune_block:
            autotune[int(row)] = result.autotune_block
        if result.user_kernel is False:  # the engine's verdict: the kernel file does not define it
            library_rows.add(int(row))
            out.library.append(result)
        else:
            out.own.append(result)
    if out.library:
        name = facts.path.name if facts is not None and facts.path else "the kernel file"
        out.notes.append(
            f"{item.path}: {len(out.library)} launch(es) of kernels not defined in {name} (cuDNN, PyTorch) "
            "are shown apart as library kernels; --all-kernels shows them in full"
        )
    run = item.run
    out.variants = summarize(
        run.manifest if run else {},
        table,
        run.timings if run else pd.DataFrame(),
        run_path=run.path if run else None,
        findings_by_row=findings,
        autotune_by_row=autotune,
        library_rows=frozenset(library_rows),
    )
    return out


def _metadata(first: Input, table: pd.DataFrame, source_root: Path | None) -> dict[str, Any]:
    manifest: dict[str, Any] = first.run.manifest if first.run else {}
    recorded = (manifest.get("kernel_file") or {}).get("path") if first.run else None
    if recorded is None and first.kernel_file is not None:
        recorded = str(first.kernel_file)
    gpu = dict(manifest.get("gpu") or {})
    if not gpu.get("name") and "gpu" in table.columns and table["gpu"].notna().any():
        gpu["name"] = str(table["gpu"].dropna().iloc[0])
    return {
        "run_path": Path(first.path),
        "created": manifest.get("created"),
        "gpu": gpu,
        "versions": dict(manifest.get("versions") or {}),
        "options": dict(manifest.get("options") or {}),
        "kernel_path": repo_relative(recorded, source_root),
        "kernel_copy": first.kernel_file,
    }


def analyze(
    inputs: Sequence[Path | Input],
    rules: list[Rule] | None = None,
    kernel_file: Path | None = None,
    *,
    rules_dir: Path | None = None,
    stage: str = DEFAULT_STAGE,
    kernel: str | None = None,
    all_kernels: bool = False,
    source_root: Path | None = None,
) -> Analysis:
    """Read the inputs, apply the rules, summarise the variants.

    Args:
        inputs: report files (``.ncu-rep[.gz]``, ncu CSV) and run directories, or ``Input``s read already.
        rules: the rules to apply (default: ``load_rules(rules_dir)``).
        kernel_file: the Triton file the inputs profiled (default: each run's copy, or a report's
            ``meta.json``); parsed once.
        stage: ``rules.STAGE_CHOICES``; kernel: keep only launches whose kernel name contains it.
        all_kernels: library kernels' findings count for ``--fail-on`` and render in full.
        source_root: the root the kernel path is made relative to (SARIF); default the working directory.

    Raises:
        InputError: unknown stage, no input, no kernel matching ``kernel``; and the readers' errors.
        KernelFileError: ``kernel_file`` (or a run's copy) does not parse.
    """
    if stage not in STAGE_CHOICES:
        raise InputError(f"unknown --stage {stage!r}", hint=f"use one of {', '.join(STAGE_CHOICES)}")
    if not inputs:
        raise InputError("nothing to analyse", hint="pass a report or a run directory")
    rules = load_rules(rules_dir) if rules is None else rules
    explicit = analyze_file(kernel_file) if kernel_file is not None else None
    items = [i if isinstance(i, Input) else read_input(Path(i)) for i in inputs]
    tables: list[pd.DataFrame] = []
    evaluated: list[_Evaluated] = []
    facts_of: list[SourceFacts | None] = []
    notes: list[str] = []
    for item in items:
        notes += item.notes
        table = item.table.reset_index(drop=True)
        if kernel is not None and "kernel" in table.columns:
            keep = table["kernel"].astype(str).str.contains(kernel, regex=False)
            table = table[keep].reset_index(drop=True)
        facts = _facts(item, explicit, notes)
        facts_of.append(facts)
        tables.append(table)
        evaluated.append(_evaluate(item, table, rules, facts, stage))
    table = pd.concat(tables, ignore_index=True, sort=False) if len(tables) > 1 else tables[0]
    if kernel is not None and not len(table):
        raise InputError(
            f"no kernel matching {kernel!r} in the inputs", hint="drop --kernel or check the name"
        )
    variants = [v for e in evaluated for v in e.variants]
    peaks, peak_notes = gpu_peaks(table)
    meta = _metadata(items[0], table, source_root)
    ncu_rules: NcuRules = {}
    for item in items:
        ncu_rules.update(item.ncu_rules)
    fired = {f.rule for v in variants for x in v.launches for f in x.findings}
    return Analysis(
        inputs=tuple(Path(i.path) for i in items),
        table=table,
        results=tuple(r for e in evaluated for r in e.own),
        library_results=tuple(r for e in evaluated for r in e.library),
        variants=variants,
        ncu_rules=ncu_rules,
        kernel_facts=tuple({id(f): f for f in facts_of if f is not None}.values()),
        stage=stage,
        all_kernels=all_kernels,
        rules=rule_infos(rules, fired),
        locations=_locations(evaluated[0].variants, facts_of[0], meta["kernel_path"]),
        gpu_peaks=peaks,
        notes=notes + peak_notes + [n for e in evaluated for n in e.notes],
        **meta,
    )
