"""Tune's measurement workers on the executor: candidates measured across every GPU, one worker each.

``measure_across_gpus`` cuts the candidates into batches; each batch is one executor job. A job finds the
long-lived ``tune.worker.MeasureWorker`` of its GPU in ``ctx.state`` (starting it pinned to that GPU the first
time), submits the batch and returns the results in order. So the model, inputs and float64 reference are
built once per GPU, not once per batch, and ``Executor.close`` stops the workers. A worker that cannot start
on its GPU (no CUDA device there) makes that GPU unusable: its batch goes to another GPU
(``executor.GpuUnusable``); a candidate that crashes or hangs costs only itself (the worker's own rule).
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


@dataclass(frozen=True)
class Measured:
    """One candidate's result (the worker's ``result`` event) and the GPU that measured it."""

    result: dict[str, Any]
    slot: GpuSlot | None


def _measure_batch(
    argv: tuple[str, ...],
    options: WorkerOptions,
    log_dir: str | None,
    batch: list[Candidate],
    ctx: JobContext,
) -> list[dict[str, Any]]:
    key = f"tune-worker:{' '.join(argv)}"
    worker = ctx.state.get(key)
    if worker is None:
        log = Path(log_dir) / f"worker-gpu{ctx.slot.visible or 'default'}.log" if log_dir else None
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
    options = options or WorkerOptions()
    folder = str(log_dir) if log_dir is not None else None
    jobs = [
        Job(
            f"batch{i // batch_size}",
            partial(_measure_batch, tuple(argv), options, folder, candidates[i : i + batch_size]),
        )
        for i in range(0, len(candidates), batch_size)
    ]
    for done in executor.run(jobs):
        if done.error is not None:  # the batch's worker was lost twice: every candidate says so
            batch = candidates[int(done.key[5:]) * batch_size :][:batch_size]
            for candidate_id, _ in batch:
                yield Measured({"id": candidate_id, "status": "failed", "reason": done.error}, done.slot)
            continue
        for result in done.value:
            yield Measured(result, done.slot)
