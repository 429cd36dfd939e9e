"""Tune's measurement workers on the executor: candidates measured across every GPU, one worker each.

``measure_across_gpus`` cuts the candidates into batches; each batch is one executor job. A job finds the
long-lived ``tune.worker.MeasureWorker`` of its GPU in ``ctx.state`` (starting it pinned to that GPU the first
time), submits the batch and returns the results in order. So the model, inputs and float64 reference are
built once per GPU, not once per batch, and ``Executor.close`` stops the workers. A worker that cannot start
on its GPU (no CUDA device there) makes that GPU unusable: its batch goes to another GPU
(``executor.GpuUnusable``); a candidate that crashes or hangs costs only itself (the worker's own rule).

``measure_files_across_gpus`` does the same for several kernel files (or spaces) in **one queue**: every
file's batches, file after file, go to the executor together, so a GPU that finishes its last batch of one
file takes the next file's first batch instead of idling while the other GPU finishes the file's slowest
batch (on two H200s, files run one after another reached 1.73x: bench/results/2026-11-30-scale-h200x2).
A GPU keeps one worker for the file it is on and stops it when it moves to the next file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from ncu_advisor.collect.executor import Executor, GpuSlot, GpuUnusable, Job, JobContext
from ncu_advisor.collect.tune.worker import MeasureWorker, WorkerOptions
from ncu_advisor.errors import EnvironmentNotReady

Candidate = tuple[str, "dict[str, Any] | None"]  # (candidate id, TuneConfig.as_dict() or None)
_KEY = "tune-worker:"


@dataclass(frozen=True)
class Measured:
    """One candidate's result (the worker's ``result`` event) and the GPU that measured it."""

    result: dict[str, Any]
    slot: GpuSlot | None
    file: int = 0  # which entry of ``measure_files_across_gpus``'s ``files`` (0 for ``measure_across_gpus``)


def _measure_batch(
    argv: tuple[str, ...],
    options: WorkerOptions,
    log_dir: str | None,
    batch: list[Candidate],
    ctx: JobContext,
    log_suffix: str = "",
    siblings: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    key = f"{_KEY}{' '.join(argv)}"
    worker = ctx.state.get(key)
    if worker is None:
        for other in [k for k in ctx.state if k in siblings]:  # this GPU moved on to another file
            ctx.state.pop(other).stop()
        name = f"worker-gpu{ctx.slot.visible or 'default'}{log_suffix}.log"
        log = Path(log_dir) / name if log_dir else None
        worker = MeasureWorker(list(argv), replace(options, gpu=ctx.slot.visible or None), log, env=ctx.env)
        try:
            worker.start()
        except EnvironmentNotReady as exc:
            worker.stop()
            raise GpuUnusable(exc) from None
        ctx.state[key] = worker
    return worker.measure_many(batch)


def measure_across_gpus(
    executor: Executor,
    argv: list[str],
    candidates: list[Candidate],
    *,
    options: WorkerOptions | None = None,
    batch_size: int = 8,
    log_dir: Path | None = None,
) -> Iterator[Measured]:
    """Measure ``candidates`` on every GPU of ``executor``; yield results as batches finish.

    Args:
        argv: the worker's command (``tune.worker.worker_command``), the same on every GPU.
        candidates: (id, config) pairs, as ``MeasureWorker.submit`` takes them.
        options: the worker's options (``gpu`` is set per worker from its GPU).
        batch_size: candidates per job; smaller batches balance GPUs better, larger ones compile ahead more.
        log_dir: each GPU's worker log goes to ``worker-gpu<visible>.log`` here.

    Raises:
        EnvironmentNotReady: no GPU could start the worker.
    """
    yield from measure_files_across_gpus(
        executor, [(argv, candidates)], options=options, batch_size=batch_size, log_dir=log_dir
    )


def measure_files_across_gpus(
    executor: Executor,
    files: list[tuple[list[str], list[Candidate]]],
    *,
    options: WorkerOptions | None = None,
    batch_size: int = 8,
    log_dir: Path | None = None,
) -> Iterator[Measured]:
    """Measure several files' candidates in one queue on every GPU of ``executor`` (see the module docstring).

    Args:
        files: per file (or space), the worker's argv and its (id, config) candidates.
        options, batch_size: as ``measure_across_gpus``.
        log_dir: worker logs ``worker-gpu<visible>.log`` (``worker-gpu<visible>-file<k>.log`` with several
            files).

    Yields:
        ``Measured`` with ``file`` the index into ``files``, as batches finish (any file's, any GPU's).

    Raises:
        EnvironmentNotReady: no GPU could start a worker.
    """
    options = options or WorkerOptions()
    folder = str(log_dir) if log_dir is not None else None
    jobs: list[Job] = []
    batches: dict[str, tuple[int, list[Candidate]]] = {}
    # the workers of this call's files: a GPU stops the one it used when it moves on to the next file
    siblings = frozenset(f"{_KEY}{' '.join(argv)}" for argv, _ in files) if len(files) > 1 else frozenset()
    for k, (argv, candidates) in enumerate(files):
        suffix = f"-file{k}" if len(files) > 1 else ""
        for i in range(0, len(candidates), batch_size):
            key = f"batch{i // batch_size}" if len(files) == 1 else f"file{k}-batch{i // batch_size}"
            batch = candidates[i : i + batch_size]
            batches[key] = (k, batch)
            fn = partial(
                _measure_batch, tuple(argv), options, folder, batch, log_suffix=suffix, siblings=siblings
            )
            jobs.append(Job(key, fn))
    for done in executor.run(jobs):
        k, batch = batches[done.key]
        if done.error is not None:  # the batch's worker was lost twice: every candidate says so
            for candidate_id, _ in batch:
                yield Measured({"id": candidate_id, "status": "failed", "reason": done.error}, done.slot, k)
            continue
        for result in done.value:
            yield Measured(result, done.slot, k)
