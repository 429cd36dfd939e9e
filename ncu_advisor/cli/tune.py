"""`ncu-advisor tune FILE --variant NAME`: measure the advice, keep only what gains at least 2%.

Exit codes: 0 the loop ran (whether or not it found a faster config); 1 the variant as written fails or is
incorrect (nothing to tune from); 2 bad input; 3 the environment cannot run it (no GPU, no ncu unless
--no-ncu, counters not permitted); 130 interrupted (the trajectory so far is on disk, the best config
printed).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ncu_advisor.analysis.trajectory import Trajectory, Trial, summary_rows
from ncu_advisor.cli import app, err_console, handle_errors, out_console, print_wide
from ncu_advisor.errors import AdvisorError, InputError

if TYPE_CHECKING:
    from ncu_advisor.collect.tune.run import TuneSettings

#: The most ``--timeout`` allows one candidate: a day (a sanity bound far above any trial: the H200 runs'
#: trials took 0.16-5.9 s, docs/tune.md). Python's waits overflow on an infinite one (OverflowError at the
#: first trial).
MAX_TIMEOUT_S = 86400


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def print_trajectory(trajectory: Trajectory) -> None:
    """The summary table: one row per trial."""
    table = Table(show_lines=False)
    for column in ("#", "config", "rule", "status", "median ms", "vs start", "regs", "verdict", "why"):
        table.add_column(
            column, justify="right" if column in ("#", "median ms", "vs start", "regs") else "left"
        )
    for row in summary_rows(trajectory):
        table.add_row(
            str(row["trial"]),
            row["config"],
            row["rule"],
            row["status"],
            _fmt(row["median_ms"], ".4f"),
            "-" if row["vs_start"] is None else f"{row['vs_start']:.2f}x",
            "-" if row["regs"] is None else str(row["regs"]),
            row["verdict"],
            row["why"] or "",
        )
    print_wide(table)


def print_best(trajectory: Trajectory) -> None:
    from ncu_advisor.render.tune_report import paste, speedup, start_trial  # noqa: PLC0415

    start = start_trial(trajectory)
    if trajectory.best is None or start is None:
        out_console.print("no configuration was measured successfully", markup=False)
        return
    speed = speedup(trajectory)
    out_console.print(
        f"best: {trajectory.best.label()}  {_fmt(trajectory.best_median_ms, '.4f')} ms"
        f" ({'-' if speed is None else f'{speed:.2f}x'} vs start {start.config.label()})",
        markup=False,
    )
    text = paste(trajectory)
    if text:
        out_console.print(text, markup=False)


@app.command()
@handle_errors
def tune(
    kernel_file: Path = typer.Argument(..., help="KernelBench-style kernel file."),  # noqa: B008 (typer's idiom)
    variant: str = typer.Option(..., "--variant", help="The variant class to tune (e.g. ModelNew_seed001)."),
    kernel: str = typer.Option(
        None, "--kernel", help="The @triton.jit kernel to tune when the variant launches several."
    ),
    budget: int = typer.Option(
        None, "--budget", help="At most this many measured trials (the start counts); default: no limit."
    ),
    time_limit: float = typer.Option(None, "--time", help="Start no new batch after this many seconds."),
    space_file: Path = typer.Option(  # noqa: B008 (typer's idiom)
        None, "--space", help="YAML/JSON restricting or extending the search space (docs/tune.md)."
    ),
    write: bool = typer.Option(
        False, "--write", help="Append class <variant>_tuned with the best config to FILE."
    ),
    min_gain: float = typer.Option(
        0.02, "--min-gain", help="Relative gain a candidate must show (beyond the noise)."
    ),
    no_ncu: bool = typer.Option(
        False, "--no-ncu", help="Recommend from Triton's n_regs/n_spills only (no ncu runs)."
    ),
    no_exhaustive: bool = typer.Option(
        False, "--no-exhaustive", help="Never measure the whole space, even when it is small enough."
    ),
    reps: int = typer.Option(3, "--reps", help="do_bench medians per trial (their spread is the noise)."),
    warmup_ms: float = typer.Option(10.0, "--warmup-ms", help="do_bench warm-up per repetition (ms)."),
    rep_ms: float = typer.Option(40.0, "--rep-ms", help="do_bench measurement per repetition (ms)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds allowed to each candidate."),
    compile_threads: int = typer.Option(
        1, "--compile-threads", help="Threads compiling a batch ahead of timing (Triton's async compile)."
    ),
    compile_procs: int = typer.Option(
        None,
        "--compile-procs",
        help="Processes compiling candidates ahead into Triton's cache (0: none; default: the CPUs less 4, "
        "at most 12).",
    ),
    rules: Path = typer.Option(None, "--rules", help="Extra rule directory."),  # noqa: B008 (typer's idiom)
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder holding run directories."),  # noqa: B008
    python: str = typer.Option(sys.executable, "--python", help="Interpreter that runs the trials."),
) -> None:
    """Tune one variant's Triton launch parameters by measurement: the rules propose, do_bench decides."""
    from ncu_advisor.collect.tune.run import TuneSettings, default_compile_procs  # noqa: PLC0415

    if compile_procs is None:
        compile_procs = default_compile_procs()
    _check_options(budget, reps, timeout, compile_threads, compile_procs, min_gain, time_limit)
    _check_timing(reps, warmup_ms, rep_ms, timeout)
    _check_python(python)
    settings = TuneSettings(
        kernel_file=Path(kernel_file),
        variant=variant,
        kernel=kernel,
        budget=budget,
        time_limit=time_limit,
        space_file=space_file,
        min_gain=min_gain,
        use_ncu=not no_ncu,
        exhaustive=not no_exhaustive,
        reps=reps,
        timeout=timeout,
        compile_threads=compile_threads,
        compile_procs=compile_procs,
        warmup_ms=warmup_ms,
        rep_ms=rep_ms,
        rules=rules,
        runs_dir=Path(runs_dir),
        python=python,
    )
    if not _tune(settings, write):
        raise typer.Exit(1)


def _check_python(python: str) -> None:
    """``--python`` must be an executable (a path, or a name on PATH); else the next check to fail named ncu
    or the GPU (new user 9).

    Raises:
        InputError: no such executable.
    """
    if os.sep in python:
        found = Path(python).is_file() and os.access(python, os.X_OK)
    else:
        found = shutil.which(python) is not None
    if not found:
        raise InputError(
            f"--python {python}: no such executable", hint="give the interpreter with torch and triton"
        )


def _check_timing(reps: int, warmup_ms: float, rep_ms: float, timeout: float) -> None:
    """Check do_bench's times against each other.

    Raises:
        InputError: a time out of range, or reps that cannot end within ``--timeout``.
    """
    if not (0 < warmup_ms <= 10_000 and 0 < rep_ms <= 10_000):
        raise InputError(
            f"--warmup-ms {warmup_ms:g} and --rep-ms {rep_ms:g} must both be > 0 and <= 10000 ms",
            hint="do_bench needs some time to warm up and to measure: the defaults are 10 and 40 ms",
        )
    if reps * (warmup_ms + rep_ms) / 1000 >= timeout:  # do_bench spends at least warmup + rep per median
        raise InputError(
            f"--reps {reps} x (--warmup-ms {warmup_ms:g} + --rep-ms {rep_ms:g}) = "
            f"{reps * (warmup_ms + rep_ms) / 1000:g} s per candidate, not less than --timeout {timeout:g} s: "
            "every candidate would be killed",
            hint="lower --reps, or raise --timeout",
        )


def _check_options(
    budget: int | None,
    reps: int,
    timeout: float,
    compile_threads: int,
    compile_procs: int,
    min_gain: float,
    time_limit: float | None,
) -> None:
    """Check the option values.

    Raises:
        InputError: a value the loop cannot use.
    """
    cpus = os.cpu_count() or 1
    checks = [  # (out of range, the option as given, what it must be)
        (budget is not None and budget < 1, f"--budget {budget}", ">= 1"),
        (reps < 2, f"--reps {reps}", ">= 2 (the noise test needs repetitions)"),
        (not 0 < timeout <= MAX_TIMEOUT_S, f"--timeout {timeout}", f"> 0 and <= {MAX_TIMEOUT_S} seconds"),
        (compile_threads < 1, f"--compile-threads {compile_threads}", ">= 1"),
        (compile_procs < 0, f"--compile-procs {compile_procs}", ">= 0 (0: no compile processes)"),
        (
            compile_procs > cpus,
            f"--compile-procs {compile_procs}",
            f"<= the {cpus} CPUs (a compile takes one CPU; each process also imports torch and triton)",
        ),
        (not 0 <= min_gain < 1, f"--min-gain {min_gain}", "in [0, 1)"),
        (
            time_limit is not None and not 0 < time_limit < math.inf,
            f"--time {time_limit}",
            "> 0 seconds and finite (leave --time out for no limit)",
        ),
    ]
    bad = [f"{given} must be {rule}" for out, given, rule in checks if out]
    if bad:
        raise InputError("; ".join(bad), hint="run `ncu-advisor tune --help` for each option's default")


def _tune(settings: TuneSettings, write: bool) -> bool:
    """Run the tuning loop, printing each trial, then the trajectory, the best config and (``--write``) the
    class it appends.

    Returns:
        False when the variant as written fails or is incorrect (nothing to tune from: exit 1).

    Raises:
        AdvisorError: bad input, or the environment cannot run it (the best config so far is printed).
        KeyboardInterrupt: interrupted (likewise).
    """
    from ncu_advisor.collect.tune.run import TuneSession  # noqa: PLC0415

    session = TuneSession(settings)
    trajectory, plan, run_dir = session.trajectory, session.plan, session.run_dir
    for load in plan.invariant:
        err_console.print(f"source: {load.describe()}", markup=False)

    def on_trial(trial: Trial) -> None:
        err_console.print(
            f"trial {trial.index}: {trial.config.label()} [{trial.rule}] {trial.status} "
            f"{_fmt(trial.median_ms, '.4f')} ms -> {trial.verdict}: {trial.why}",
            markup=False,
        )

    try:
        session.run(on_trial)
    except (KeyboardInterrupt, AdvisorError):
        err_console.print(
            f"stopped: {trajectory.stop_reason}; trajectory so far: {run_dir / 'tune.json'}", markup=False
        )
        print_best(trajectory)
        raise
    if session.space is not None:
        out_console.print(f"space: {session.space.describe()}", markup=False)
    print_trajectory(trajectory)
    out_console.print(f"stop: {trajectory.stop_reason}", markup=False)
    print_best(trajectory)
    out_console.print(f"trajectory: {run_dir / 'tune.json'}", markup=False)
    first = trajectory.trials[0] if trajectory.trials else None
    if first is None or first.verdict != "start":
        return False
    if write:
        _write(settings, trajectory, plan)
    return True


def _write(settings: Any, trajectory: Trajectory, plan: Any) -> None:
    from ncu_advisor.collect.tune.emit import write_tuned_variant  # noqa: PLC0415

    if trajectory.best is None or trajectory.best == trajectory.start:
        out_console.print("--write: no configuration beat the start; the file is unchanged", markup=False)
        return
    start_ms = trajectory.trials[0].median_ms
    note = (
        f"{_fmt(start_ms, '.4f')} ms -> {_fmt(trajectory.best_median_ms, '.4f')} ms, "
        f"{trajectory.measured_trials()} trials"
    )
    name = write_tuned_variant(
        settings.kernel_file,
        plan.variant,
        plan.kernel,
        trajectory.best,
        plan.method,
        note=note,
        start=trajectory.start,
    )
    out_console.print(f"--write: added class {name} to {settings.kernel_file}", markup=False)
