"""`ncu-advisor profile FILE`: run every variant of a kernel file under ncu and write a run directory.

Exit codes: 0 every variant ok; 1 some variant incorrect, failed, crashed or timed out (all others still
ran, the run directory holds everything); 2 bad input (no such file, syntax error, no variants, unknown
--variant, bad option value); 3 the environment cannot profile (no GPU, no ncu, ncu too old,
ERR_NVGPUCTRPERM).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ncu_advisor import rundir
from ncu_advisor.analysis.summary import SummaryRow, summary_rows
from ncu_advisor.cli import app, err_console, handle_errors, out_console, print_wide
from ncu_advisor.collect.executor import SCHEDULER_ENV, Executor, make_executor, parse_gpus
from ncu_advisor.collect.profile import ncu as ncu_module
from ncu_advisor.collect.profile.child import DEFAULT_REPS
from ncu_advisor.collect.profile.runner import (
    ProfileOptions,
    ProfileRun,
    check_environment,
    plan_commands,
    profile_file,
)
from ncu_advisor.collect.profile.variants import Variant, expand_autotune, list_variants, select_variants
from ncu_advisor.errors import InputError, RunError

# Options added for scale-out and ncu pass-through (module level keeps profile() short).
SET_OPTION = typer.Option(
    None, "--set", help="ncu --set NAME (e.g. full), collected in addition to the rules' metrics."
)
SECTION_OPTION = typer.Option(  # noqa: B008 (typer's idiom)
    None, "--section", help="ncu --section NAME (repeatable), in addition to the rules' metrics."
)
METRICS_OPTION = typer.Option(
    None, "--metrics", help="Comma-separated ncu metrics collected in addition to the rules' metrics."
)
GPUS_OPTION = typer.Option(
    "all", "--gpus", help="GPUs of this host to run variants on, one worker each: N or all."
)
EXECUTOR_OPTION = typer.Option(
    "local", "--executor", help="local (threads, one per GPU) or dask (dask.distributed workers)."
)
NCU_LOCK_OPTION = typer.Option(
    "none",
    "--ncu-lock",
    help="none (default, measured faster): ncu on every GPU at once; host: one ncu process at a time per "
    "host (timing runs still overlap).",
)
TIMING_ONLY_OPTION = typer.Option(
    False, "--timing-only", help="Check and time the variants only; no ncu process (a timing sweep)."
)
SCHEDULER_OPTION = typer.Option(
    None,
    "--scheduler",
    envvar=SCHEDULER_ENV,
    help="tcp://HOST:PORT of an existing Dask cluster (implies --executor dask).",
)
RTOL_OPTION = typer.Option(
    None,
    help="One relative L2 error tolerance for every output (default: per output dtype, "
    "torch.testing.assert_close's rtol with a 2e-3 floor: bf16 1.6e-2, fp16/fp32 2e-3).",
)

STEP_ORDER = {"build": 1, "check": 2, "time": 3, "warmup": 3, "profile": 4, "done": 4}


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def _short(name: str | None, width: int = 40) -> str:
    if not name:
        return "-"
    return name if len(name) <= width else name[: width - 1] + "…"


def print_summary(rows: list[SummaryRow], run_dir: Path) -> None:
    """Print the summary table, the reasons of the variants that are not ok, and the run path."""
    table = Table(show_lines=False)
    for column in (
        "variant",
        "status",
        "correct",
        "median ms",
        "vs ref",
        "regs",
        "spills",
        "occ. limiter",
        "DRAM %",
        "SM %",
        "longest kernel",
    ):
        table.add_column(
            column,
            justify="right"
            if column not in ("variant", "status", "longest kernel", "occ. limiter")
            else "left",
        )
    for row in rows:
        correct = {True: "yes", False: "NO", None: "-"}[row.correct]
        status = row.status if row.status == "ok" else f"[bold red]{row.status}[/]"
        table.add_row(
            row.variant,
            status,
            correct,
            _fmt(row.median_ms, ".3f"),
            "-" if row.speedup_vs_reference is None else f"{row.speedup_vs_reference:.2f}x",
            _fmt(row.registers, ".0f"),
            _fmt(row.n_spills, ".0f"),
            row.occupancy_limiter or "-",
            _fmt(row.dram_pct, ".1f"),
            _fmt(row.sm_pct, ".1f"),
            _short(row.kernel),
        )
    print_wide(table)  # a squashed 11-column table is unreadable in an 80-column pipe
    for row in rows:
        if row.status != "ok" and row.reason:
            out_console.print(f"{row.variant}: {row.status}: {row.reason}", markup=False)
    out_console.print(f"run: {run_dir}", markup=False)


def _list(kernel_file: Path, variants: list[Variant], reference: str | None) -> None:
    out_console.print(f"{kernel_file}: reference {reference or '(none: no class Model)'}", markup=False)
    for variant in variants:
        pinned = (
            f"  [{variant.autotune_kernel} config {variant.autotune_config}]"
            if variant.autotune_kernel is not None
            else ""
        )
        out_console.print(
            f"  {variant.name}  (class {variant.class_name}, line {variant.lineno}){pinned}", markup=False
        )


def _run_with_progress(
    kernel_file: Path,
    variants: list[Variant],
    options: ProfileOptions,
    has_reference: bool,
    start_executor: Callable[[], Executor],
    local: bool,
) -> ProfileRun:
    env = check_environment() if local else None  # a Dask run asks a worker (ncu and the GPUs are there)
    with (
        start_executor() as executor,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[step]:<8}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        ) as progress,
    ):
        names = (["Model"] if has_reference else []) + [v.name for v in variants]
        tasks = {name: progress.add_task(name, total=4, step="waiting", start=False) for name in names}

        def on_step(name: str, step: str) -> None:
            task = tasks.get(name)
            if task is None:
                return
            progress.start_task(task)
            progress.update(task, completed=STEP_ORDER.get(step, 0), step=step)
            if step == "done":
                progress.stop_task(task)

        return profile_file(
            kernel_file,
            variants,
            options,
            has_reference=has_reference,
            progress=on_step,
            executor=executor,
            env=env,
        )


def _check_options(
    clock_control: str,
    cache_control: str,
    timeout: float,
    reps: int,
    rtol: float | None,
    ncu_set: str | None,
    sections: list[str] | None,
    metrics: str | None,
) -> list[str]:
    """Check the option values; return the ``--metrics`` names.

    Raises:
        InputError: a value ncu or the child would refuse.
    """
    if clock_control not in ncu_module.CLOCK_CONTROLS:
        raise InputError(
            f"--clock-control must be one of {', '.join(ncu_module.CLOCK_CONTROLS)}, not {clock_control!r}"
        )
    if cache_control not in ncu_module.CACHE_CONTROLS:
        raise InputError(
            f"--cache-control must be one of {', '.join(ncu_module.CACHE_CONTROLS)}, not {cache_control!r}"
        )
    if timeout <= 0 or reps < 1 or (rtol is not None and rtol <= 0):
        raise InputError("--timeout and --rtol must be > 0 and --reps >= 1")
    try:
        if ncu_set is not None:
            ncu_module.check_section_name("set", ncu_set)
        for name in sections or []:
            ncu_module.check_section_name("section", name)
        return ncu_module.split_metric_list(metrics) if metrics else []
    except ValueError as exc:
        raise InputError(str(exc), hint="see `ncu --list-sets`, `ncu --list-sections`") from None


def _dry_run(
    kernel_file: Path, variants: list[Variant], options: ProfileOptions, has_reference: bool
) -> None:
    """Print the run directory and every command the run would execute."""
    try:
        ncu: Path | str = ncu_module.find_ncu()
    except Exception:
        ncu = "ncu"
    planned_dir = options.runs_root.resolve() / f"{rundir.utc_stamp()}-{kernel_file.stem}"
    metrics = options.resolved_metrics()
    plan = plan_commands(kernel_file, variants, options, planned_dir, ncu, metrics, reference=has_reference)
    out_console.print(f"# run directory: {planned_dir} (not created: --dry-run)", markup=False)
    for name, steps in plan.items():
        for step, argv in steps.items():
            out_console.print(f"# {name}: {step}", markup=False)
            out_console.print(shlex.join(argv), markup=False)


@dataclass(frozen=True)
class _Selection:
    """Which variants to run and what to do with them: ``--variant``, ``--expand-autotune``, ``--list``,
    ``--dry-run``."""

    names: list[str]
    expand_autotune: bool
    list_only: bool
    dry_run: bool


def _profile(
    kernel_file: Path,
    options: ProfileOptions,
    selection: _Selection,
    *,
    gpus: str,
    executor: str,
    scheduler: str | None,
) -> bool:
    """List, plan or run the selected variants of ``kernel_file``; print the summary of a run.

    Returns:
        False when some variant of the run was not ok (exit 1); True otherwise (also for --list and
        --dry-run).

    Raises:
        InputError: no such file or variant, a bad --gpus, --ncu-lock or --executor value.
        EnvironmentNotReady: this machine cannot profile.
    """
    info = list_variants(kernel_file)
    variants = list(info.variants)
    if selection.expand_autotune:
        variants = expand_autotune(info, variants)
    if selection.names:
        variants = select_variants(replace(info, variants=tuple(variants)), selection.names)
    if selection.list_only:
        _list(kernel_file, variants, info.reference)
        return True
    has_reference = info.reference is not None
    if selection.dry_run:
        _dry_run(kernel_file, variants, options, has_reference)
        return True
    gpu_count = parse_gpus(gpus)
    if options.ncu_lock not in ("host", "none") or executor not in ("local", "dask"):
        raise InputError(
            f"--ncu-lock must be host or none ({options.ncu_lock!r}), --executor local or dask ({executor!r})"
        )
    run = _run_with_progress(
        kernel_file,
        variants,
        options,
        has_reference,
        lambda: make_executor(executor, gpu_count, scheduler),
        local=executor == "local" and not scheduler,
    )
    try:
        loaded = rundir.load_run(run.run_dir, allow_incomplete=True)
    except RunError as exc:  # every report unreadable when the tables were built: the variants failed
        entries = rundir.read_manifest(run.run_dir).get("variants") or {}
        failed = {n: e for n, e in entries.items() if e.get("status") != "ok"}
        for name, entry in failed.items():
            err_console.print(f"{name}: {entry.get('status')}: {entry.get('reason')}", markup=False)
        if not failed:
            err_console.print(f"error: {exc.render()}", markup=False, highlight=False)
        return False
    print_summary(summary_rows(loaded.manifest, loaded.table, loaded.timings), run.run_dir)
    # building the tables can mark a variant failed after it ran (its report unreadable): the manifest
    # on disk decides, not only the results in memory
    recorded = [entry.get("status") for entry in (loaded.manifest.get("variants") or {}).values()]
    return run.all_ok and all(status == "ok" for status in recorded)


@app.command()
@handle_errors
def profile(
    kernel_file: Path = typer.Argument(  # noqa: B008 (typer's idiom)
        ..., help="KernelBench-style kernel file (Model, ModelNew..., get_inputs, get_init_inputs)."
    ),
    variant: list[str] = typer.Option(None, "--variant", help="Profile only this variant (repeatable)."),  # noqa: B008 (typer's idiom)
    list_only: bool = typer.Option(False, "--list", help="List the variants (no import, no GPU) and exit."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact commands and exit."),
    expand_autotune_configs: bool = typer.Option(
        False, "--expand-autotune", help="One variant per @triton.autotune config (<variant>@cfg<i>)."
    ),
    clock_control: str = typer.Option(
        "none",
        help="ncu --clock-control: none (default, the clocks do_bench "
        "sees) or base (ncu's locked base clocks).",
    ),
    cache_control: str = typer.Option(
        "all", help="ncu --cache-control: all (default, flush between replay passes) or none."
    ),
    timeout: float = typer.Option(300.0, help="Seconds allowed to each process of a variant."),
    rtol: float = RTOL_OPTION,
    reps: int = typer.Option(DEFAULT_REPS, help="do_bench medians kept per variant."),
    rules: Path = typer.Option(None, "--rules", help="Extra rule directory whose metrics are collected too."),  # noqa: B008 (typer's idiom)
    ncu_set: str = SET_OPTION,
    section: list[str] = SECTION_OPTION,
    metrics: str = METRICS_OPTION,
    profile_reference: bool = typer.Option(
        False, "--profile-reference", help="Also profile Model under ncu."
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder that holds run directories."),  # noqa: B008 (typer's idiom)
    python: str = typer.Option(sys.executable, "--python", help="Interpreter that runs the variants."),
    gpus: str = GPUS_OPTION,
    executor: str = EXECUTOR_OPTION,
    ncu_lock: str = NCU_LOCK_OPTION,
    timing_only: bool = TIMING_ONLY_OPTION,
    scheduler: str = SCHEDULER_OPTION,
) -> None:
    """Run each variant of KERNEL_FILE: check it against Model, time it, profile it under ncu.

    Writes runs/<UTC time>-<file stem>/ (see docs/profile.md). Exit codes: 0 every variant ok; 1 some
    variant incorrect, failed, crashed or timed out; 2 bad input; 3 this machine cannot profile.
    """
    extra_metrics = _check_options(
        clock_control, cache_control, timeout, reps, rtol, ncu_set, section, metrics
    )
    options = ProfileOptions(
        clock_control=clock_control,
        cache_control=cache_control,
        timeout_s=timeout,
        rtol=rtol,
        reps=reps,
        rules_dir=rules,
        extra_metrics=tuple(extra_metrics),
        ncu_set=ncu_set,
        sections=tuple(section or ()),
        ncu_lock=ncu_lock,
        timing_only=timing_only,
        profile_reference=profile_reference,
        python=python,
        runs_root=runs_dir,
    )
    selection = _Selection(list(variant or ()), expand_autotune_configs, list_only, dry_run)
    if not _profile(kernel_file, options, selection, gpus=gpus, executor=executor, scheduler=scheduler):
        raise typer.Exit(1)
