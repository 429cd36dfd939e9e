"""The profile run: environment checks, one bare process and one ncu process per variant, the run directory.

For each variant, in order:

1. a bare child (``python -m ncu_advisor.collect.profile.child FILE CLASS --mode bench``): build,
   correctness check against the reference, ``do_bench`` timings (``reps`` medians), Triton
   ``n_regs``/``n_spills``;
2. unless step 1 failed, crashed or timed out: the same child under ncu (``--mode ncu``), which profiles the
   one call made inside the NVTX range ``ncu_advisor`` after warm-up.

The reference ``Model`` is timed first (bare child, ``--reference-only``), and profiled only with
``profile_reference``. Each process has its own timeout and log. The manifest is written before the first
variant, every variant ``pending``, and atomically rewritten after each one (see ``ncu_advisor.rundir``).
torch and triton are never imported here: only the child imports them.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from ncu_advisor import rundir
from ncu_advisor.collect.executor import Executor, Job, JobResult, LocalExecutor
from ncu_advisor.collect.profile import ncu as ncu_module
from ncu_advisor.collect.profile.jobs import (
    VariantJob,
    VariantPayload,
    run_variant_job,
    start_timing_worker,
    store_payload,
)
from ncu_advisor.collect.profile.judge import _read_json, judge_bench, judge_ncu
from ncu_advisor.collect.profile.manifest import absorb_environment as _absorb_environment
from ncu_advisor.collect.profile.manifest import initial_manifest
from ncu_advisor.collect.profile.outcome import VariantOutcome
from ncu_advisor.collect.profile.process import run_process
from ncu_advisor.collect.profile.steps import (
    CHILD_MODULE,
    REFERENCE_NAME,
    ProfileOptions,
    ProgressCallback,
    child_command,
    plan_commands,
    run_variant,
)
from ncu_advisor.collect.profile.variants import Variant
from ncu_advisor.errors import EnvironmentNotReady
from ncu_advisor.rundir import merge_triton_counts

# Moved to judge/outcome/process/steps; tune, the cli and the tests still reach them through this module.
__all__ = [
    "CHILD_MODULE",
    "REFERENCE_NAME",
    "ProfileOptions",
    "ProgressCallback",
    "VariantOutcome",
    "_read_json",
    "child_command",
    "judge_bench",
    "judge_ncu",
    "merge_triton_counts",
    "plan_commands",
    "run_process",
    "run_variant",
]

PACKAGE_ROOT = Path(__file__).resolve().parents[3]
FAILED_STATUSES = ("failed", "timeout", "crashed")


@dataclass(frozen=True)
class Environment:
    """What the environment checks found."""

    ncu: Path
    ncu_version: str
    gpu: dict[str, Any]


def query_gpu(timeout_s: float = 60) -> dict[str, Any]:
    """Name, driver and compute capability of GPU 0 from ``nvidia-smi``.

    Raises:
        EnvironmentNotReady: nvidia-smi is missing or lists no GPU.
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise EnvironmentNotReady(
            "no NVIDIA GPU: nvidia-smi not found",
            hint="run it on a machine with an NVIDIA GPU and driver (recommend, report, compare need none)",
        )
    try:
        proc = subprocess.run(
            [smi, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentNotReady(f"nvidia-smi failed: {exc}", hint="check the NVIDIA driver") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        detail = (proc.stdout + proc.stderr).strip().splitlines()
        raise EnvironmentNotReady(
            f"no NVIDIA GPU visible (nvidia-smi: {detail[0] if detail else proc.returncode})",
            hint="check the driver and CUDA_VISIBLE_DEVICES",
        )
    fields = [f.strip() for f in lines[0].split(",")]
    fields += [""] * (3 - len(fields))
    return {
        "name": fields[0],
        "driver": fields[1],
        "cc": fields[2] or None,
        "sm_count": None,
        "count": len(lines),
    }


def check_environment(ncu_path: Path | None = None) -> Environment:
    """Find ncu, check its version and that a GPU is visible.

    Raises:
        EnvironmentNotReady: no ncu, ncu too old, no GPU.
    """
    ncu = Path(ncu_path) if ncu_path is not None else ncu_module.find_ncu()
    _, version_line = ncu_module.ncu_version(ncu)
    return Environment(ncu=ncu, ncu_version=version_line, gpu=query_gpu())


def write_tables(run_dir: Path) -> str:
    """Build the run's tables in a separate process (``rundir.finalize``); return a note for the manifest.

    Reading reports goes through NVIDIA's ``ncu_report`` extension, which has crashed the process on some
    reports (ncu 2025.3.1's own copy, on the GPU machine); a crash there must not lose the run."""
    return rundir.finalize(run_dir)


@dataclass(frozen=True)
class ProfileRun:
    """The result of ``profile_file``."""

    run_dir: Path
    manifest: dict[str, Any]
    outcomes: list[VariantOutcome]
    reference: VariantOutcome | None

    @property
    def all_ok(self) -> bool:
        return all(o.status == "ok" for o in self.outcomes)


def _jobs(
    run: _Open,
    options: ProfileOptions,
    env: Environment,
    metrics: list[str],
    executor: Executor,
    progress: ProgressCallback | None,
) -> list[Job]:
    in_place = executor.kind == "local"
    kernel_file = run.target.kernel_file
    source = None if in_place else kernel_file.read_bytes()
    entries: list[tuple[str, Variant | None]] = [(REFERENCE_NAME, None)] if run.target.has_reference else []
    entries += [(v.name, v) for v in run.target.variants]
    jobs: list[Job] = []
    for name, variant in entries:
        job = VariantJob(
            name,
            variant,
            str(kernel_file),
            source,
            str(run.run_dir) if in_place else None,
            options,
            tuple(metrics),
            str(env.ncu),
            timing_worker=uses_timing_worker(options, executor),
        )
        fn = partial(run_variant_job, job, progress=progress) if in_place else partial(run_variant_job, job)
        jobs.append(Job(name, fn, group=str(kernel_file)))  # LocalExecutor's affinity: a file's variants
    return jobs


def uses_timing_worker(options: ProfileOptions, executor: Executor) -> bool:
    """Whether the bare children run in a long-lived timing worker per GPU: timing-only runs on the local
    executor (``ProfileOptions.timing_worker``); ncu runs and Dask runs keep one process per variant."""
    return options.timing_only and options.timing_worker and executor.kind == "local"


def _outcome_of(result: JobResult, name: str, run_dir: Path) -> tuple[VariantOutcome, dict[str, Any] | None]:
    if result.error is not None:  # the worker died or the GPU failed twice
        folder = rundir.variant_dir(run_dir, name)
        outcome = VariantOutcome(name=name, status="failed", reason=result.error)
        outcome.dir = str(folder.relative_to(run_dir))
        outcome.gpu = result.slot.as_dict() if result.slot else None
        outcome.attempts, outcome.retried_because = result.attempts, list(result.history)
        return outcome, None
    payload: VariantPayload = result.value
    store_payload(run_dir, payload)
    payload.outcome.attempts, payload.outcome.retried_because = result.attempts, list(result.history)
    return payload.outcome, payload.result


@dataclass(frozen=True)
class ProfileTarget:
    """One kernel file of a ``profile_files`` call: its variants and whether it has a reference ``Model``."""

    kernel_file: Path
    variants: list[Variant]
    has_reference: bool = True


@dataclass
class _Open:
    """A run directory being filled."""

    target: ProfileTarget
    run_dir: Path
    manifest: dict[str, Any]
    done: dict[str, VariantOutcome]


def _open_run(
    target: ProfileTarget, options: ProfileOptions, env: Environment, metrics: list[str], executor: Executor
) -> _Open:
    kernel_file = target.kernel_file
    run_dir = rundir.create_run_dir(Path(options.runs_root).resolve(), kernel_file.stem)
    shutil.copyfile(kernel_file, run_dir / rundir.KERNEL_COPY_NAME)
    plan = plan_commands(
        kernel_file, target.variants, options, run_dir, env.ncu, metrics, reference=target.has_reference
    )
    manifest = initial_manifest(kernel_file, options, env, metrics, plan, target.variants, REFERENCE_NAME)
    manifest["executor"] = executor.describe()
    manifest["executor"]["bare_children"] = (
        "timing worker per GPU" if uses_timing_worker(options, executor) else "process per variant"
    )
    if not target.has_reference:
        manifest["reference"] = {"name": REFERENCE_NAME, "status": "skipped", "reason": "no class Model"}
    rundir.write_manifest(run_dir, manifest)
    return _Open(target, run_dir, manifest, {})


def _record(opened: _Open, name: str, result: JobResult) -> None:
    outcome, child_result = _outcome_of(result, name, opened.run_dir)
    _absorb_environment(opened.manifest, child_result)
    opened.done[name] = outcome
    if opened.target.has_reference and name == REFERENCE_NAME:
        opened.manifest["reference"] = {"name": REFERENCE_NAME, **outcome.manifest_entry()}
    else:
        opened.manifest["variants"][name] = outcome.manifest_entry()
    rundir.write_manifest(opened.run_dir, opened.manifest)


def _close_run(opened: _Open) -> ProfileRun:
    opened.manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rundir.write_manifest(opened.run_dir, opened.manifest)
    write_tables(opened.run_dir)  # sets "tables" and "complete" in the manifest on disk
    outcomes = [opened.done[v.name] for v in opened.target.variants]
    reference = opened.done.get(REFERENCE_NAME) if opened.target.has_reference else None
    manifest = rundir.read_manifest(opened.run_dir)
    return ProfileRun(run_dir=opened.run_dir, manifest=manifest, outcomes=outcomes, reference=reference)


def profile_files(
    targets: list[ProfileTarget],
    options: ProfileOptions,
    *,
    env: Environment | None = None,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
) -> list[ProfileRun]:
    """Profile several kernel files at once, one run directory each, all variants in one queue.

    All jobs (every file's reference and variants) go to ``executor`` together, so a sweep over a corpus keeps
    every GPU busy to the end instead of waiting at the end of each file. Default executor:
    ``LocalExecutor()`` (one worker per visible GPU). ``progress`` gets ``stem:variant`` names when there
    is more than one file.

    Raises:
        EnvironmentNotReady: no ncu, ncu too old, no GPU, counters not permitted (run directories then
            hold what was done, ``complete: false``).
    """
    own = executor is None
    executor = executor or LocalExecutor()
    try:
        if uses_timing_worker(options, executor):  # imports and CUDA contexts while the checks run
            executor.prepare(partial(start_timing_worker, options))
        env = env or executor.call_on_a_worker(check_environment)
        metrics = options.resolved_metrics()
        opened = [
            _open_run(replace(t, kernel_file=Path(t.kernel_file).resolve()), options, env, metrics, executor)
            for t in targets
        ]
        jobs: list[Job] = []
        for index, run in enumerate(opened):
            label = "" if len(opened) == 1 else f"{run.target.kernel_file.stem}:"

            def named(name: str, step: str, label: str = label) -> None:
                if progress is not None:
                    progress(label + name, step)

            for job in _jobs(run, options, env, metrics, executor, named if progress else None):
                jobs.append(Job(f"{index}/{job.key}", job.fn, job.group))
        for result in executor.run(jobs):
            index_text, name = result.key.split("/", 1)
            _record(opened[int(index_text)], name, result)
            if progress is not None and (result.error is not None or executor.kind != "local"):
                progress(
                    name if len(opened) == 1 else f"{opened[int(index_text)].target.kernel_file.stem}:{name}",
                    "done",
                )
    finally:
        if own:
            executor.close()
    with ThreadPoolExecutor(max_workers=max(1, min(len(opened), 8))) as pool:  # tables in child processes
        return list(pool.map(_close_run, opened))


def profile_file(
    kernel_file: Path,
    variants: list[Variant],
    options: ProfileOptions,
    *,
    has_reference: bool = True,
    env: Environment | None = None,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
) -> ProfileRun:
    """Profile ``variants`` of ``kernel_file`` into a new run directory under ``options.runs_root``.

    Variants (and the reference) run as jobs of ``executor`` (default: ``LocalExecutor()``, one worker per
    visible GPU); each entry of the manifest says which GPU it ran on. See ``profile_files``.

    Raises:
        EnvironmentNotReady: no ncu, ncu too old, no GPU, counters not permitted (the run directory then
            holds what was done, ``complete: false``).
    """
    target = ProfileTarget(Path(kernel_file), list(variants), has_reference)
    (run,) = profile_files([target], options, env=env, progress=progress, executor=executor)
    return run
