"""One variant as an executor job: runs its processes on a worker's GPU, here or on another host.

On this host (``run_dir`` set) the job writes straight into the run directory. Elsewhere (Dask) it writes a
scratch run directory on the worker, from the kernel file's bytes, and ships the variant's folder back as
bytes (``VariantPayload.files``), which ``store_payload`` writes into the run directory on the submitting
machine: the folder then has the same report, logs and ``result.json`` as a one-GPU run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ncu_advisor import rundir
from ncu_advisor.collect.executor_types import GpuUnusable, JobContext
from ncu_advisor.collect.profile import ncu as ncu_module
from ncu_advisor.collect.profile.outcome import VariantOutcome
from ncu_advisor.collect.profile.steps import ProfileOptions, ProgressCallback, plan_commands, run_variant
from ncu_advisor.collect.profile.variants import Variant
from ncu_advisor.collect.profile.worker import STATE_KEY, TimingWorker, serves
from ncu_advisor.errors import EnvironmentNotReady


@dataclass(frozen=True)
class VariantJob:
    """Everything a worker needs to run one variant (picklable).

    Attributes:
        name: the variant's name in the run (``Model`` for the reference).
        variant: the variant, or None for the reference.
        kernel_path: the kernel file on the submitting machine.
        kernel_source: its bytes, for a worker that cannot read that path (None: same machine).
        run_dir: the run directory to write in place; None: a scratch directory, files shipped back.
        options: the run's options.
        metrics: the metrics ncu collects.
        ncu: the ncu executable found on the submitting machine (a worker without it looks for its own).
        timing_worker: run the bare child in the GPU's long-lived timing worker (``profile.worker``),
            kept in ``ctx.state``, instead of a fresh process (timing-only runs).
    """

    name: str
    variant: Variant | None
    kernel_path: str
    kernel_source: bytes | None
    run_dir: str | None
    options: ProfileOptions
    metrics: tuple[str, ...]
    ncu: str
    timing_worker: bool = False


@dataclass
class VariantPayload:
    """What a variant job returns: its outcome, its ``result.json`` and, when shipped, its folder's files."""

    outcome: VariantOutcome
    result: dict[str, Any] | None
    files: dict[str, bytes] = field(default_factory=dict)


def run_variant_job(
    job: VariantJob, ctx: JobContext, progress: ProgressCallback | None = None
) -> VariantPayload:
    """Run one variant's bare and ncu processes on the worker's GPU (``ctx.env``).

    Raises:
        GpuUnusable: the child found no usable CUDA device on this worker (retried on another GPU).
        EnvironmentNotReady: ncu may not read the counters (no GPU of this machine can profile).
    """
    scratch: Path | None = None
    options = job.options
    if job.run_dir is not None:
        run_dir, kernel = Path(job.run_dir), Path(job.kernel_path)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="ncu-advisor-job-"))
        run_dir, kernel = scratch, scratch / Path(job.kernel_path).name
        kernel.write_bytes(job.kernel_source or Path(job.kernel_path).read_bytes())
        if not os.path.exists(options.python):
            options = replace(options, python=sys.executable)
    ncu: Path | str = job.ncu if os.path.exists(job.ncu) else ncu_module.find_ncu()
    try:
        variants = [job.variant] if job.variant is not None else []
        plan = plan_commands(
            kernel, variants, options, run_dir, ncu, list(job.metrics), reference=job.variant is None
        )
        steps = plan[job.name]
        in_worker = job.timing_worker and _worker_serves(steps, options)
        runner = _timing_worker(ctx, options).run if in_worker else None
        try:
            outcome, result = run_variant(
                job.name,
                steps,
                run_dir,
                options,
                progress,
                env=ctx.env,
                cancel=ctx.cancel,
                bench_runner=runner,
            )
        except EnvironmentNotReady as exc:
            if "permission" in exc.message or "ERR_NVGPUCTRPERM" in exc.message:
                raise
            raise GpuUnusable(exc) from None
        outcome.gpu = ctx.slot.as_dict()
        files: dict[str, bytes] = {}
        if scratch is not None:
            folder = rundir.variant_dir(run_dir, job.name)
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    files[str(path.relative_to(run_dir))] = path.read_bytes()
        return VariantPayload(outcome, result, files)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _worker_serves(steps: dict[str, list[str]], options: ProfileOptions) -> bool:
    return "ncu" not in steps and serves(steps["bench"], options.python)


def _timing_worker(ctx: JobContext, options: ProfileOptions) -> TimingWorker:
    """The timing worker of this job's GPU (started by its first job; ``Executor.close`` stops it)."""
    key = f"{STATE_KEY}:{options.python}"
    worker = ctx.state.get(key)
    if not isinstance(worker, TimingWorker):
        worker = ctx.state[key] = TimingWorker(options.python, ctx.env, start_timeout_s=options.timeout_s)
    return worker


def start_timing_worker(options: ProfileOptions, ctx: JobContext) -> None:
    """Start this GPU's timing worker now (``Executor.prepare``), unless it runs; the first job uses it.

    Raises:
        EnvironmentNotReady: it cannot start (the first job then tries again and makes it ``GpuUnusable``).
        Cancelled: ``ctx.cancel`` was set while it started.
    """
    worker = _timing_worker(ctx, options)
    if not worker.alive():
        worker.start(ctx.cancel)


def store_payload(run_dir: Path, payload: VariantPayload) -> None:
    """Write a shipped variant folder into the run directory (paths checked to stay inside it)."""
    root = run_dir.resolve()
    for relative, data in payload.files.items():
        target = (root / relative).resolve()
        if root not in target.parents:
            raise ValueError(f"a worker sent a file outside the run directory: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
