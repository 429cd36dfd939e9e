"""`ncu-advisor recommend [REPORT_OR_RUN...]`: apply the rule set and print advice.

With no argument: the latest run directory under ./runs, else the recorded reports in examples/reports/.
The kernel source comes from --source, else the run's copy of its kernel file, else the ``kernel_file`` of
a ``meta.json`` next to the reports.

Exit codes: 0 no finding at or above --fail-on (default error); 1 findings at or above it; 2 bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from ncu_advisor.cli import app, err_console, handle_errors
from ncu_advisor.errors import AdvisorError, InputError
from ncu_advisor.model import Severity
from ncu_advisor.render.findings import render_json, render_markdown, render_text, worst_severity
from ncu_advisor.collect.triton_api import probe_triton_language
from ncu_advisor.render.prompt import render_prompt
from ncu_advisor.rules import STAGE_CHOICES, KernelResult, evaluate, load_rules
from ncu_advisor.kernelsrc.facts import SourceFacts, analyze_file, variant_code

FORMATS = ("text", "json", "markdown", "prompt")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Input:
    """One report or run with the table it gave and the kernel file that goes with it."""

    path: Path
    table: pd.DataFrame
    kernel_file: Path | None
    ncu_rules: dict[tuple[str | None, int], list[dict[str, Any]]] = field(default_factory=dict)


def _meta_kernel_file(report: Path) -> Path | None:
    meta = report.parent / "meta.json"
    if not meta.is_file():
        return None
    try:
        kernel_file = json.loads(meta.read_text(encoding="utf-8")).get("kernel_file")
    except (OSError, ValueError):
        return None
    if not kernel_file:
        return None
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / kernel_file
        if candidate.is_file():
            return candidate
    return None


def _variant_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".ncu-rep", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _read_report_input(path: Path) -> _Input:
    from ncu_advisor.ingest import readers as report  # noqa: PLC0415 - keeps `ncu-advisor rules` fast

    table = report.read_report(path, variant=_variant_name(path))
    for note in table.attrs.get("notes", []):  # what the reader skipped or could not map
        err_console.print(f"note: {note}", markup=False)
    ncu_rules: dict[tuple[str | None, int], list[dict[str, Any]]] = {}
    if "guided" in table.attrs or ".csv" not in path.name:
        try:  # text inputs carry ncu's findings in the table; binary reports are asked for them
            raw = list(table.attrs["guided"]) if "guided" in table.attrs else report.rule_results(path)
        except AdvisorError:
            raw = []
        source = str(table["source"].iloc[0]) if len(table) and "source" in table.columns else str(path)
        for item in raw:
            ncu_rules.setdefault((source, int(item.get("launch", 0))), []).append(item)
    return _Input(path=path, table=table, kernel_file=_meta_kernel_file(path), ncu_rules=ncu_rules)


def _run_ncu_rules(table: pd.DataFrame) -> dict[tuple[str | None, int], list[dict[str, Any]]]:
    """ncu's guided-analysis results of each variant report of a run (present with --set/--section)."""
    from ncu_advisor.ingest import readers as report  # noqa: PLC0415

    found: dict[tuple[str | None, int], list[dict[str, Any]]] = {}
    if "source" not in table.columns:
        return found
    for source in table["source"].dropna().unique():
        path = Path(str(source))
        if not path.is_file() or ".csv" in path.name:
            continue
        try:
            raw = report.rule_results(path)
        except AdvisorError:
            continue
        for item in raw:
            found.setdefault((str(source), int(item.get("launch", 0))), []).append(item)
    return found


def _read_inputs(paths: list[Path]) -> list[_Input]:
    from ncu_advisor import rundir  # noqa: PLC0415

    inputs: list[_Input] = []
    for path in paths:
        if path.is_dir():
            if not rundir.is_run_dir(path):
                raise InputError(
                    "not a run directory (no manifest.json)",
                    path=path,
                    hint="pass a report file or a directory written by `ncu-advisor profile`",
                )
            run = rundir.load_run(path)
            inputs.append(
                _Input(
                    path=path,
                    table=run.table,
                    kernel_file=run.kernel_file,
                    ncu_rules=_run_ncu_rules(run.table),
                )
            )
        elif path.exists():
            inputs.append(_read_report_input(path))
        else:
            raise InputError("no such report or run directory", path=path, hint="check the path")
    return inputs


DEFAULT_EXAMPLE_RUN = Path("examples") / "runs" / "improved"


def default_inputs() -> list[Path]:
    """The latest run under ./runs, else the recorded example run, else the recorded example reports."""
    from ncu_advisor import rundir  # noqa: PLC0415

    latest = rundir.latest_run()
    if latest is not None:
        return [latest]
    for run in (Path.cwd() / DEFAULT_EXAMPLE_RUN, REPO_ROOT / DEFAULT_EXAMPLE_RUN):
        if rundir.is_run_dir(run):
            return [run]
    for base in (Path.cwd() / "examples" / "reports", REPO_ROOT / "examples" / "reports"):
        reports = sorted(p for p in base.glob("**/*") if p.name.endswith((".ncu-rep", ".ncu-rep.gz")))
        if reports:
            return reports
    raise InputError(
        "nothing to analyse: no run under ./runs and no reports in examples/reports",
        hint="pass a report (.ncu-rep[.gz], ncu CSV) or run `ncu-advisor profile FILE.py` first",
    )


def run_recommend(
    paths: list[Path],
    *,
    source: Path | None = None,
    stage: str = "all",
    rules_dir: Path | None = None,
    kernel: str | None = None,
    all_kernels: bool = True,
) -> tuple[
    list[KernelResult],
    dict[tuple[str | None, int], list[dict[str, Any]]],
    dict[Path | None, SourceFacts | None],
]:
    """Read the inputs, evaluate the rules; returns results, ncu's rule results, and the sources used."""
    if stage not in STAGE_CHOICES:
        raise InputError(f"unknown --stage {stage!r}", hint=f"use one of {', '.join(STAGE_CHOICES)}")
    rules = load_rules(rules_dir)
    explicit_source = analyze_file(source) if source is not None else None
    results: list[KernelResult] = []
    ncu_rules: dict[tuple[str | None, int], list[dict[str, Any]]] = {}
    sources: dict[Path | None, SourceFacts | None] = {}
    for item in _read_inputs(paths):
        table = item.table
        if kernel is not None and "kernel" in table.columns:
            table = table[table["kernel"].astype(str).str.contains(kernel, regex=False)]
        facts = explicit_source
        if facts is None and item.kernel_file is not None:
            facts = analyze_file(item.kernel_file)
        sources[facts.path if facts else None] = facts
        evaluated = evaluate(table.reset_index(drop=True) if kernel else table, rules, source=facts, stage=stage)
        if not all_kernels and facts is not None:
            # Library kernels in the profiled range (cuDNN, PyTorch's own) cannot be tuned from the Triton file.
            own = [r for r in evaluated if facts.kernel(r.kernel) is not None]
            hidden = len(evaluated) - len(own)
            if own and hidden:
                err_console.print(
                    f"note: {item.path}: {hidden} launch(es) of kernels not defined in {facts.path.name if facts.path else 'the source'} "
                    "(cuDNN, PyTorch) not shown; --all-kernels shows them"
                )
                evaluated = own
        results.extend(evaluated)
        ncu_rules.update(item.ncu_rules)
    if kernel is not None and not results:
        raise InputError(
            f"no kernel matching {kernel!r} in the inputs", hint="drop --kernel or check the name"
        )
    return results, ncu_rules, sources


@app.command()
@handle_errors
def recommend(
    inputs: list[Path] = typer.Argument(  # noqa: B008 (typer's idiom)
        None, help="Reports (.ncu-rep, .ncu-rep.gz, ncu CSV) or run directories."
    ),
    source: Path | None = typer.Option(None, "--source", help="The Triton kernel file the reports profiled."),  # noqa: B008 (typer's idiom)
    stage: str = typer.Option(
        "all", "--stage", help="auto | all | block-size | fine-tune (bottleneck rules always run)."
    ),
    rules_dir: Path | None = typer.Option(  # noqa: B008 (typer's idiom)
        None, "--rules", help="A directory of extra rule files (same id replaces)."
    ),
    output_format: str = typer.Option("text", "--format", help="text | json | markdown | prompt"),
    fail_on: str = typer.Option(
        "error", "--fail-on", help="Exit 1 on findings of this severity or worse: info | warning | error."
    ),
    kernel: str | None = typer.Option(None, "--kernel", help="Only kernels whose name contains this text."),
    show_skipped: bool = typer.Option(
        False, "--show-skipped", help="List the rules skipped per kernel and why (text)."
    ),
    all_kernels: bool = typer.Option(
        False, "--all-kernels", help="Also show kernels the Triton source does not define (cuDNN, PyTorch)."
    ),
) -> None:
    """Apply the tuning rules to reports or runs and print findings with evidence and proposed configs."""
    if output_format not in FORMATS:
        raise InputError(f"unknown --format {output_format!r}", hint=f"use one of {', '.join(FORMATS)}")
    try:
        threshold = Severity(fail_on)
    except ValueError:
        raise InputError(f"unknown --fail-on {fail_on!r}", hint="use info, warning or error") from None
    paths = list(inputs) if inputs else default_inputs()
    results, ncu_rules, sources = run_recommend(
        paths, source=source, stage=stage, rules_dir=rules_dir, kernel=kernel, all_kernels=all_kernels
    )
    if output_format == "json":
        text = render_json(results, stage=stage, ncu_rules=ncu_rules)
    elif output_format == "markdown":
        text = render_markdown(results, ncu_rules=ncu_rules)
    elif output_format == "prompt":
        text = _prompt(results, sources, stage, ncu_rules)
    else:
        text = render_text(results, ncu_rules=ncu_rules, show_skipped=show_skipped)
    typer.echo(text)
    worst = worst_severity(results)
    if worst is not None and worst.rank >= threshold.rank:
        raise typer.Exit(1)


def _prompt(
    results: list[KernelResult],
    sources: dict[Path | None, SourceFacts | None],
    stage: str,
    ncu_rules: dict[tuple[str | None, int], list[dict[str, Any]]],
) -> str:
    """One prompt per variant, showing only the kernels the source defines (as the seeds do)."""
    facts_list = [f for f in sources.values() if f is not None]
    if not facts_list:
        err_console.print("note: no kernel source; the prompt's [CURRENT CODE] is empty (use --source)")
    facts = facts_list[0] if facts_list else None
    variants: dict[str | None, list[KernelResult]] = {}
    for result in results:
        variants.setdefault(result.variant, []).append(result)
    prompts = []
    triton_api = probe_triton_language()  # the installed Triton's tl.* names, else the seeds' list
    for group in variants.values():
        shown = [r for r in group if facts is not None and facts.kernel(r.kernel) is not None] or group
        code = None
        if facts is not None:
            jit_names = [k.name for r in shown if (k := facts.kernel(r.kernel)) is not None]
            code = variant_code(facts.text, jit_names, shown[0].variant)
        prompts.append(
            render_prompt(
                shown,
                code=code,
                stage=stage,
                gpu_block=_gpu_block(shown),
                ncu_rules=ncu_rules,
                triton_api=triton_api,
            )
        )
    separator = "\n" + "=" * 100 + "\n"
    return separator.join(prompts)


def _gpu_block(results: list[KernelResult]) -> str | None:
    gpu_name = next((r.gpu for r in results if r.gpu), None)
    try:
        from ncu_advisor import gpus  # noqa: PLC0415 - the GPU catalogue is optional
    except ImportError:
        return None
    try:
        spec, _warnings = gpus.spec_for(pd.DataFrame({"gpu": [gpu_name]}))
    except AdvisorError:
        return None
    return str(gpus.prompt_block(spec)).rstrip() if spec is not None else None
