"""One variant's steps: the options of a profile run, the argv of each child process (bare and under
ncu), and running them for one variant into its folder of the run directory. ``runner`` (which schedules
the variants and writes the manifest) and ``jobs`` (one variant on one worker's GPU) both build on this
module. torch and triton are never imported here: only the child imports them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ncu_advisor import rundir
from ncu_advisor.collect.profile import child as child_module
from ncu_advisor.collect.profile import ncu as ncu_module
from ncu_advisor.collect.profile.judge import _read_json, judge_bench, judge_ncu
from ncu_advisor.collect.profile.outcome import VariantOutcome
from ncu_advisor.collect.profile.process import ProcessResult, host_lock, run_process
from ncu_advisor.collect.profile.variants import REFERENCE_CLASS, Variant

__all__ = [
    "CHILD_MODULE",
    "REFERENCE_NAME",
    "ProfileOptions",
    "ProgressCallback",
    "child_command",
    "plan_commands",
    "run_variant",
]

CHILD_MODULE = "ncu_advisor.collect.profile.child"
REFERENCE_NAME = "Model"

#: Progress callback: (variant name, step) with step in build, check, time, profile, done.
ProgressCallback = Callable[[str, str], None]


class BenchRunner(Protocol):
    """Runs a bare child command like ``process.run_process`` (argv, log, timeout, on_step; cancel)."""

    def __call__(
        self,
        argv: list[str],
        log_path: Path,
        timeout_s: float,
        on_step: Callable[[str], None] | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> ProcessResult: ...


@dataclass(frozen=True)
class ProfileOptions:
    """Options of one profile run (all recorded in the manifest).

    Attributes:
        clock_control: ncu ``--clock-control`` (``none``: the clocks do_bench sees; see ``profile.ncu``).
        cache_control: ncu ``--cache-control`` (``all``: flush caches between replay passes).
        timeout_s: per-process timeout, for the bare child and for the ncu run alike.
        rtol: one relative L2 error tolerance for every output; None: per output dtype
            (``profile.correctness.tolerance_for``).
        reps: how many ``do_bench`` medians to keep per variant.
        metrics: the metrics to collect (default: ``ncu.metric_set(rules_dir)``).
        extra_metrics: ``--metrics``: collected in addition to ``metrics``.
        ncu_set: ``--set NAME``, passed through to ncu (in addition to the metrics).
        sections: ``--section NAME`` values, passed through to ncu (in addition to the metrics).
        ncu_lock: ``host``: one ncu process at a time per host (the bare timing runs still overlap);
            ``none``: ncu processes on different GPUs run at once (see docs/profile.md, "Several GPUs").
        timing_only: check and time only; no ncu process (sweeps that rank by time).
        timing_worker: with ``timing_only`` on the local executor, run the variants in one long-lived
            timing process per GPU (``profile.worker``) instead of one process per variant.
        rules_dir: extra rule directory whose required metrics are added.
        profile_reference: also profile ``Model`` under ncu.
        python: the interpreter that runs the child.
        runs_root: the folder that holds run directories.
        seed: the random seed of init inputs and inputs.
    """

    clock_control: str = "none"
    cache_control: str = "all"
    timeout_s: float = 300.0
    rtol: float | None = None
    reps: int = child_module.DEFAULT_REPS
    metrics: tuple[str, ...] | None = None
    extra_metrics: tuple[str, ...] = ()
    ncu_set: str | None = None
    sections: tuple[str, ...] = ()
    # "none": measured faster on two H200s (12 variants: 110 s against 125 s with "host";
    # bench/results/2026-11-30-scale-h200x2/scale-b.json)
    ncu_lock: str = "none"
    timing_only: bool = False
    timing_worker: bool = True
    rules_dir: Path | None = None
    profile_reference: bool = False
    python: str = sys.executable
    runs_root: Path = Path("runs")
    seed: int = 0

    def resolved_metrics(self) -> list[str]:
        """The metric list passed to ncu: the rules' metrics (or ``metrics``), then ``extra_metrics``."""
        if self.metrics:
            base = [m for m in self.metrics if ncu_module.is_ncu_metric(m)]
        else:
            base = ncu_module.metric_set(self.rules_dir)
        return list(dict.fromkeys([*base, *self.extra_metrics]))


def child_command(
    python: str,
    kernel_file: Path,
    class_args: list[str],
    mode: str,
    out: Path,
    options: ProfileOptions,
    reference_only: bool = False,
) -> list[str]:
    """The argv of one child process (in ncu mode it pins autotuning to the bench run's choices)."""
    argv = [
        python,
        "-m",
        CHILD_MODULE,
        str(kernel_file),
        *class_args,
        "--mode",
        mode,
        "--out",
        str(out),
        "--seed",
        str(options.seed),
    ]
    if mode == "bench":
        argv += ["--reps", str(options.reps)]
        if options.rtol is not None:
            argv += ["--rtol", repr(options.rtol)]
    else:
        argv += ["--autotune-from", str(out.parent / "result.json")]
    if reference_only:
        argv.append("--reference-only")
    return argv


def plan_commands(
    kernel_file: Path,
    variants: list[Variant],
    options: ProfileOptions,
    run_dir: Path,
    ncu: Path | str,
    metrics: list[str],
    reference: bool = True,
) -> dict[str, dict[str, list[str]]]:
    """Every command the run will execute: {name: {"bench": argv, "ncu": argv}} (reference first)."""
    kernel_file = Path(kernel_file).resolve()
    plan: dict[str, dict[str, list[str]]] = {}
    entries: list[tuple[str, list[str], bool]] = []
    if reference:
        entries.append((REFERENCE_NAME, [REFERENCE_CLASS], True))
    entries += [(v.name, v.child_args(), False) for v in variants]
    for name, class_args, is_reference in entries:
        folder = rundir.variant_dir(run_dir, name)
        steps = {
            "bench": child_command(
                options.python,
                kernel_file,
                class_args,
                "bench",
                folder / "result.json",
                options,
                reference_only=is_reference,
            )
        }
        if not options.timing_only and (not is_reference or options.profile_reference):
            target = child_command(
                options.python,
                kernel_file,
                class_args,
                "ncu",
                folder / "ncu_result.json",
                options,
                reference_only=is_reference,
            )
            steps["ncu"] = ncu_module.build_ncu_command(
                ncu,
                report_base=folder / "profile",
                target=target,
                metrics=metrics,
                clock_control=options.clock_control,
                cache_control=options.cache_control,
                ncu_set=options.ncu_set,
                sections=options.sections,
            )
        plan[name] = steps
    return plan


def run_variant(
    name: str,
    steps: dict[str, list[str]],
    run_dir: Path,
    options: ProfileOptions,
    progress: ProgressCallback | None,
    *,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    bench_runner: BenchRunner | None = None,
) -> tuple[VariantOutcome, dict[str, Any] | None]:
    """Run the bare child and (unless it failed) the ncu child of one variant.

    Args:
        env: environment overrides of both processes (the worker's ``CUDA_VISIBLE_DEVICES``).
        cancel: set on Ctrl-C: the running process is killed and ``executor.Cancelled`` raised.
        bench_runner: runs the bare child instead of a fresh process (``profile.worker.TimingWorker.run``:
            same argv, log, timeout and ``ProcessResult``).
    """
    folder = rundir.variant_dir(run_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    outcome = VariantOutcome(name=name, dir=str(folder.relative_to(run_dir)))

    def step(s: str) -> None:
        if progress is not None:
            progress(name, s)

    child_log = folder / "child.log"
    outcome.logs["child"] = str(child_log.relative_to(run_dir))
    if bench_runner is not None:
        bench = bench_runner(steps["bench"], child_log, options.timeout_s, step, cancel=cancel)
    else:
        bench = run_process(steps["bench"], child_log, options.timeout_s, step, env=env, cancel=cancel)
    result = _read_json(folder / "result.json")
    judge_bench(bench, result, child_log.relative_to(run_dir), options.timeout_s, outcome)
    if "ncu" in steps and outcome.status in ("ok", "incorrect"):
        step("profile")
        ncu_log = folder / "ncu.log"
        outcome.logs["ncu"] = str(ncu_log.relative_to(run_dir))
        with host_lock(options.ncu_lock == "host", cancel) as waited:
            process = run_process(steps["ncu"], ncu_log, options.timeout_s, env=env, cancel=cancel)
        outcome.ncu_lock_wait_s = round(waited, 3)
        judge_ncu(process, ncu_log, folder / "profile.ncu-rep", options.timeout_s, outcome)
    report = folder / "profile.ncu-rep"
    if report.is_file():
        outcome.logs["report"] = str(report.relative_to(run_dir))
    step("done")
    return outcome, result
