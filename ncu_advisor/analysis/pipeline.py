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

from ncu_advisor import gpus, metrics
from ncu_advisor.analysis.inputs import Input, NcuRules, read_input
from ncu_advisor.analysis.result import DEFAULT_STAGE, Analysis, RuleInfo, SourceLocation
from ncu_advisor.analysis.summary import REFERENCE_NAME, VariantSummary, number, summarize
from ncu_advisor.errors import InputError, KernelFileError
from ncu_advisor.kernelsrc.facts import SourceFacts, analyze_file
from ncu_advisor.metrics import launch_metric_columns
from ncu_advisor.model import NO_ESTIMATE, Finding, Severity
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


#: The id a launch ncu failed to profile is listed under (not a YAML rule: no metric was there to judge).
NOT_PROFILED_RULE = "NP001"
NOT_PROFILED_REASON = "ncu recorded the launch without metric values (see ncu's log for why)"
_NOT_PROFILED_HELP = (
    "What it detects: a launch present in the report with no metric value (ncu failed to profile it: "
    "replay failed, the kernel faulted, the metrics were not collected for it).\n\nWhy it matters: no rule "
    "could judge it, so it is neither clean nor advised; ncu-advisor counts it apart and never as clean. "
    "It counts as a warning for --fail-on.\n\nUse instead: profile the launch again (ncu's log says why "
    "it failed)."
)


def not_profiled_rows(table: pd.DataFrame) -> dict[int, str]:
    """The rows (index -> reason) of launches ncu recorded without a single metric value.

    Found from the table itself (every launch metric column NaN: ``metrics.launch_metric_columns``), so it
    survives run directories and concatenated tables, which drop ``attrs``; the reason is the reader's
    (``attrs["not_profiled"]``, ``ingest.binary``) when it is there for that launch, else a generic one.
    """
    metric_columns = launch_metric_columns(table.columns)
    if not metric_columns or not len(table):
        return {}
    empty = table[metric_columns].isna().all(axis=1)
    reasons = {
        (int(item["launch"]), str(item.get("kernel"))): str(item.get("reason") or NOT_PROFILED_REASON)
        for item in table.attrs.get("not_profiled") or []
        if isinstance(item, dict) and "launch" in item
    }
    found: dict[int, str] = {}
    for row in table.index[empty]:
        kernel = str(table.at[row, "kernel"]) if "kernel" in table.columns else ""
        found[int(str(row))] = reasons.get((int(str(row)), kernel), NOT_PROFILED_REASON)
    return found


def not_profiled_finding(result: KernelResult, reason: str) -> Finding:
    """The entry a not-profiled launch is listed with: never "no findings", a warning for ``--fail-on``."""
    return Finding(
        rule=NOT_PROFILED_RULE,
        name="not-profiled",
        stage="bottleneck",  # a rule stage the schemas accept; the entry applies at every stage
        severity=Severity.WARNING,
        kernel=result.kernel,
        launch=result.launch,
        message=f"not profiled: {reason}",
        recommendation="profile this launch again: without metrics no rule could judge it (not clean)",
        evidence={"not_profiled": True, "reason": reason, "condition": "every metric of the launch empty"},
        effect_kind=NO_ESTIMATE,  # nothing measured: no estimate (not "~0% local")
        variant=result.variant,
    )


def evidence_units(rule: Rule) -> dict[str, str]:
    """A rule's declared ``units`` keyed as its evidence is: derived names, and each required metric's
    name and catalogue fallbacks (the column that supplied it) for an alias."""
    units = {name: unit for name, unit in rule.spec.units.items() if name in rule.derived}
    catalogue = metrics.catalogue()
    for requirement in rule.spec.requires:
        unit = rule.spec.units.get(requirement.alias)
        if unit is None:
            continue
        entry = catalogue.get(requirement.name)
        for name in (requirement.name, *(entry.fallbacks if entry is not None else ())):
            units[name] = unit
    return units


def rule_infos(rules: Sequence[Rule], fired: set[str]) -> list[RuleInfo]:
    """The rules as SARIF and HTML list them: those that fired first, then the others, in rule order
    (the not-profiled entry first when a launch was not profiled)."""
    infos = []
    if NOT_PROFILED_RULE in fired:
        summary = "A launch ncu failed to profile: no metric values, not judged, not counted as clean."
        infos.append(RuleInfo(NOT_PROFILED_RULE, "not-profiled", "warning", summary, _NOT_PROFILED_HELP))
    for rule in rules:
        docs = rule.docs
        help_text = (
            f"What it detects: {docs.what_it_detects}\n\nWhy it matters: {docs.why_it_matters}\n\n"
            f"Example: {docs.example}\n\nUse instead: {docs.use_instead}\n\n"
            f"Known problems: {docs.known_problems}"
        )
        summary = " ".join(docs.what_it_detects.split())
        units = evidence_units(rule)
        infos.append(RuleInfo(rule.id, rule.name, rule.severity.value, summary, help_text, units))
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
    not_profiled: list[dict[str, Any]] = field(default_factory=list)


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


def _kernel_file_facts(path: Path) -> SourceFacts:
    """``analyze_file`` of an explicit ``--kernel-file``, refusing one that defines no ``@triton.jit``
    kernel: against it every launch would be taken for a library kernel (cuDNN, PyTorch), listed apart and
    not counted for ``--fail-on`` (an empty file gave "0 launches", exit 0, on reports of Triton kernels;
    red team 6). A run's own copy is what was profiled: one without Triton kernels profiled library code.

    Raises:
        KernelFileError: the file does not parse or defines no ``@triton.jit`` kernel.
    """
    facts = analyze_file(path)
    if not facts.kernels:
        raise KernelFileError(
            "defines no @triton.jit kernel, so no launch could be matched to its source",
            path=path,
            hint="pass the Triton file that defines the profiled kernels, or drop --kernel-file",
        )
    return facts


def _check_kernel_file_matches(
    path: str | Path | None, explicit: SourceFacts | None, evaluated: Sequence[_Evaluated]
) -> None:
    """An explicit kernel file must define at least one profiled kernel: against the wrong file every
    launch was a "library kernel" (listed apart, not counted for ``--fail-on``: "0 launches", exit 0).

    Raises:
        KernelFileError: none of the launches' kernels is defined in ``path``.
    """
    if explicit is None or any(e.own for e in evaluated):
        return
    profiled = sorted({str(r.kernel) for e in evaluated for r in e.library})
    if profiled:
        defined = ", ".join(k.name for k in explicit.kernels[:5])
        raise KernelFileError(
            f"defines none of the profiled kernels ({', '.join(profiled[:3])}; it defines {defined})",
            path=path,
            hint="pass the Triton file the reports were profiled from, or drop --kernel-file",
        )


def _unnamed_variant_notes(facts: SourceFacts | None, results: Sequence[KernelResult]) -> list[str]:
    """A note per variant named after no class of the kernel file when the file launches the kernel with
    several configs: its launch values (the "current config") are then the file's default launch, a guess.
    A report named profile.ncu-rep of scatter_add_rows' sweep-best was advised as its start (BLOCK_D 128,
    BLOCK_M 1: a NA324 warning), silently (red team 6)."""
    if facts is None:
        return []
    notes = []
    for kernel_name, variant in dict.fromkeys((r.kernel, r.variant) for r in results):
        kernel = facts.kernel(kernel_name)
        name = variant or ""
        if kernel is None or kernel.names_variant(name) or kernel.names_variant(name.rsplit(".", 1)[-1]):
            continue  # (FILE.VARIANT: for_variant finds the class after the dot)
        launches = {tuple(sorted(launch.params.items())) for launch in kernel.class_launches.values()}
        if len(launches) + len(kernel.variant_configs) > 1:
            classes = sorted({*kernel.class_launches, *kernel.variant_configs})
            notes.append(
                f"{variant}: no class of {facts.path.name if facts.path else 'the kernel file'} is named so "
                f"({', '.join(classes[:4])}{', ...' if len(classes) > 4 else ''} launch {kernel.name} with "
                "different values): the advice assumes the file's default launch; name the report after the "
                "class it profiled (ModelNew_best.ncu-rep) to get that class's values"
            )
    return notes


def _source_rules_skipped(path: Path, evaluated: _Evaluated) -> str:
    """The note of a run analysed without a kernel file, naming the rules that skipped for it."""
    ids = sorted(
        {
            str(s.get("rule"))
            for r in [*evaluated.own, *evaluated.library]
            for s in r.skipped
            if "kernel source" in str(s.get("reason"))
        }
    )
    return f"{path}: no kernel source: rules skipped on every launch: {', '.join(ids) or 'none'}"


def _refuse_unchecked(item: Input, results: list[KernelResult], not_profiled: set[int]) -> None:
    """An input on whose profiled launches no rule could run at all is an error, not "no findings".

    Raises:
        InputError: every rule was skipped on every profiled launch for a missing metric or fact.
    """
    profiled = [r for r in results if r.launch not in not_profiled or r.findings == []]
    profiled = [r for r in profiled if not any(f.evidence.get("not_profiled") for f in r.findings)]
    if not profiled or any(r.checked for r in profiled) or not any(r.skipped for r in profiled):
        return
    absent = sorted({str(s["missing"]) for r in profiled for s in r.skipped if s.get("missing")})
    shown = ", ".join(absent[:8]) + (f" and {len(absent) - 8} more" if len(absent) > 8 else "")
    # a metric name the reader did not know (a misspelling in a pasted metrics block) is the likely cause
    unknown = [n for n in item.notes if "not ncu metric names" in n]
    raise InputError(
        f"no rule could check any of its {len(profiled)} launch(es): the input lacks every metric the rules "
        f"need (missing: {shown or 'the source facts'})" + (f"; {unknown[0]}" if unknown else ""),
        path=item.path,
        hint="profile with `ncu-advisor profile` (its default metric set) or `ncu --set full`, or pass "
        "--rules with rules for the metrics this input has",
    )


def _evaluate(
    item: Input, table: pd.DataFrame, rules: list[Rule], facts: SourceFacts | None, stage: str
) -> _Evaluated:
    out = _Evaluated()
    evaluated = table[table["variant"] != REFERENCE_NAME] if "variant" in table.columns else table
    results = evaluate(evaluated, rules, source=facts, stage=stage) if len(evaluated) else []
    findings: dict[int, list[Finding]] = {}
    autotune: dict[int, str] = {}
    library_rows: set[int] = set()
    missing = not_profiled_rows(evaluated)
    for row, result in zip(evaluated.index, results, strict=True):
        if int(row) in missing:
            result.findings = [not_profiled_finding(result, missing[int(row)])]
            out.not_profiled.append(
                {
                    "variant": result.variant,
                    "kernel": result.kernel,
                    "launch": result.launch,
                    "reason": missing[int(row)],
                }
            )
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
    out.notes += _unnamed_variant_notes(facts, out.own)
    _refuse_unchecked(item, out.own + out.library, set(missing))
    run = item.run
    if out.not_profiled:
        out.notes.append(
            f"{item.path}: {len(out.not_profiled)} launch(es) not profiled by ncu (no metric values): "
            "listed as not profiled, counted apart and never as clean"
        )
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


def _report_files(
    items: list[Input], evaluated: list[_Evaluated], source_root: Path | None
) -> dict[str, str]:
    """Variant name -> the report file it was read from, relative to ``source_root`` (``repo_relative``),
    for inputs that are report files (not run directories): where SARIF pins findings without a source."""
    out: dict[str, str] = {}
    for item, done in zip(items, evaluated, strict=True):
        path = Path(item.path)
        if path.is_file():
            relative = repo_relative(str(path.resolve()), source_root)
            out.update({v.name: relative for v in done.variants if relative})
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


def _unique_inputs(inputs: Sequence[Path | Input], notes: list[str]) -> list[Path | Input]:
    """``inputs`` with the second and later mention of one file or run (same resolved path) dropped.

    Reading one report twice would count each of its launches twice (time shares, totals, findings).
    """
    seen: set[Path] = set()
    unique: list[Path | Input] = []
    for item in inputs:
        path = Path(item.path if isinstance(item, Input) else item)
        try:
            key = path.resolve()
        except (OSError, RuntimeError):  # a symlink loop: read_input names the problem
            key = path
        if key in seen:
            notes.append(f"{path}: given more than once: read once")
            continue
        seen.add(key)
        unique.append(item)
    return unique


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
        KernelFileError: ``kernel_file`` does not parse or defines none of the profiled kernels.
    """
    if stage not in STAGE_CHOICES:
        raise InputError(f"unknown --stage {stage!r}", hint=f"use one of {', '.join(STAGE_CHOICES)}")
    if not inputs:
        raise InputError("nothing to analyse", hint="pass a report or a run directory")
    rules = load_rules(rules_dir) if rules is None else rules
    explicit = _kernel_file_facts(kernel_file) if kernel_file is not None else None
    notes: list[str] = []
    unique = _unique_inputs(inputs, notes)
    items = [i if isinstance(i, Input) else read_input(Path(i)) for i in unique]
    tables: list[pd.DataFrame] = []
    evaluated: list[_Evaluated] = []
    facts_of: list[SourceFacts | None] = []
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
        if facts is None and item.run is not None:
            notes.append(_source_rules_skipped(item.path, evaluated[-1]))
    _check_kernel_file_matches(kernel_file, explicit, evaluated)
    table = pd.concat(tables, ignore_index=True, sort=False) if len(tables) > 1 else tables[0]
    if kernel is not None and not len(table):
        raise InputError(
            f"no kernel matching {kernel!r} in the inputs", hint="drop --kernel or check the name"
        )
    variants = [v for e in evaluated for v in e.variants]
    peaks, peak_notes = gpu_peaks(table)
    meta = _metadata(items[0], table, source_root)
    ncu_rules: NcuRules = {key: value for item in items for key, value in item.ncu_rules.items()}
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
        not_profiled=[x for e in evaluated for x in e.not_profiled],
        report_files=_report_files(items, evaluated, source_root),
        **meta,
    )
