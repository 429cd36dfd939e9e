"""The Dask executor: jobs on a ``dask.distributed`` cluster, one worker per GPU.

- ``DaskExecutor(scheduler="tcp://HOST:PORT")`` (or ``NCU_ADVISOR_SCHEDULER``) uses an existing cluster.
  Start its workers one per GPU, each with one thread, e.g. with dask-cuda: ``dask-cuda-worker
  tcp://HOST:PORT --nthreads 1`` on every GPU host (dask-cuda pins each worker with
  ``CUDA_VISIBLE_DEVICES``, its GPU first), or ``CUDA_VISIBLE_DEVICES=i dask worker tcp://HOST:PORT
  --nthreads 1`` per GPU ``i``.
- ``DaskExecutor()`` starts a cluster on this host: dask-cuda's ``LocalCUDACluster`` where dask-cuda is
  installed, else a ``SpecCluster`` of ``Nanny`` processes, one per visible GPU, each started with that GPU's
  ``CUDA_VISIBLE_DEVICES`` and one thread (dask-cuda's model without the dependency). That cluster runs with
  ``distributed.scheduler.allowed-failures`` 0, so a worker death fails its task at once and the retry is
  ours (once, on another GPU where the cluster has one); an existing cluster keeps its own setting (Dask's
  default retries a task on 3 worker deaths) before ours.

Each worker finds its GPU itself (``nvidia-smi`` on its host, ``CUDA_VISIBLE_DEVICES``'s first entry) and
hands processes only that GPU. Jobs and their results travel pickled; files travel as bytes in the result.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ncu_advisor.collect.executor_types import (
    MAX_ATTEMPTS,
    Executor,
    GpuSlot,
    GpuUnusable,
    Job,
    JobContext,
    JobResult,
    failed_result,
    query_gpus,
    slot_where,
    stop_state,
)
from ncu_advisor.errors import AdvisorError, EnvironmentNotReady, InputError

# Per worker process: its GPU, the state jobs keep between runs, and the cancel flag of the run.
_SLOT: GpuSlot | None = None
_STATE: dict[str, Any] = {}
_CANCEL = threading.Event()


def worker_slot(dask_worker: Any = None) -> GpuSlot:
    """The GPU of the worker this runs on (cached per worker process)."""
    global _SLOT
    if _SLOT is None:
        visible = (os.environ.get("CUDA_VISIBLE_DEVICES") or "").split(",")[0].strip()
        try:
            found = query_gpus(visible=visible or None)[0]
        except (EnvironmentNotReady, IndexError):
            found = GpuSlot(socket.gethostname(), None, None, None, visible)
        address = getattr(dask_worker, "address", "") or ""
        _SLOT = GpuSlot(found.host, found.index, found.uuid, found.name, visible or found.visible, address)
    return _SLOT


def _run_job(job: Job) -> tuple[str, Any, GpuSlot]:
    """The task each job becomes: ``("ok", value, slot)`` or ``("unusable", error, slot)``."""
    from distributed import get_worker

    slot = worker_slot(get_worker())
    env = {"CUDA_VISIBLE_DEVICES": slot.visible} if slot.visible else {}
    try:
        return "ok", job.fn(JobContext(slot, env, _CANCEL, _STATE)), slot
    except GpuUnusable as exc:
        return "unusable", exc, slot


def _cancel_here() -> int:
    """Set the cancel flag and kill every process a job started in this worker process."""
    from ncu_advisor.collect.profile.process import kill_running

    _CANCEL.set()
    return kill_running()


def _uncancel_here() -> None:
    _CANCEL.clear()


def _stop_state_here() -> None:
    stop_state(_STATE)


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    return (KilledWorker, CommClosedError, ConnectionError, TimeoutError)


class DaskExecutor(Executor):
    """Jobs on a Dask cluster (see the module docstring).

    Args:
        gpus: with no scheduler: how many of this host's visible GPUs get a worker (None: all).
        scheduler: ``tcp://HOST:PORT`` of an existing cluster.
        slots: with no scheduler: the GPUs to start workers for (default ``query_gpus()``); tests pass
            stand-ins.

    Raises:
        InputError: dask.distributed is not installed, or the scheduler cannot be reached.
    """

    kind = "dask"

    def __init__(
        self, gpus: int | None = None, scheduler: str | None = None, slots: list[GpuSlot] | None = None
    ) -> None:
        try:
            import dask
            import distributed
        except ImportError:
            raise InputError(
                "the dask executor needs dask.distributed, which is not installed",
                hint="pip install 'ncu-advisor[dask]', or use the local executor",
            ) from None
        self.scheduler = scheduler
        self.cluster: Any = None
        client_cls: Any = distributed.Client
        self.client: Any
        if scheduler is not None:
            try:
                self.client = client_cls(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler {scheduler}: {exc}",
                    hint="check --scheduler / NCU_ADVISOR_SCHEDULER and that the scheduler runs",
                ) from None
        else:
            found = list(slots) if slots is not None else query_gpus()
            chosen = found[:gpus] if gpus is not None else found
            # allowed-failures 0: a worker death fails its task at once (the retry is ours); worker-saturation
            # 1.0: a worker holds only the task it runs, so its death costs no queued bystander.
            settings = {
                "distributed.scheduler.allowed-failures": 0,
                "distributed.scheduler.worker-saturation": 1.0,
            }
            with dask.config.set(settings):
                self.cluster = _local_cluster([s.visible for s in chosen])
            self.client = client_cls(self.cluster)
            self.client.wait_for_workers(len(chosen), timeout=120)
        self._slots: dict[str, GpuSlot] | None = None

    def slots(self) -> list[GpuSlot]:
        if self._slots is None:
            self._slots = dict(self.client.run(worker_slot))
        return list(self._slots.values())

    def call_on_a_worker(self, fn: Callable[[], Any]) -> Any:
        return self.client.submit(fn, pure=False).result()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scheduler": self.client.scheduler.address}

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        import distributed

        as_completed: Any = distributed.as_completed
        lost = _lost_worker_errors()
        meta: dict[Any, tuple[Job, int, list[str]]] = {}

        def submit(job: Job, attempt: int, history: list[str]) -> Any:
            future = self.client.submit(
                _run_job, job, key=f"ncu-advisor-{job.key}-{attempt}-{uuid.uuid4().hex[:8]}", pure=False
            )
            meta[future] = (job, attempt, history)
            return future

        queue = as_completed([submit(job, 1, []) for job in jobs])
        finished = False
        try:
            for future in queue:
                job, attempt, history = meta.pop(future)
                try:
                    status, value, slot = future.result()
                except lost as exc:
                    where = getattr(exc, "last_worker", None)
                    history = [*history, f"worker {getattr(where, 'address', where) or '?'} lost: {exc}"]
                    status, value, slot = "lost", None, None
                if status == "ok":
                    yield JobResult(job.key, value, slot, attempt, None, history)
                    continue
                if status == "unusable":
                    assert isinstance(value, GpuUnusable)
                    history = [*history, f"{slot_where(slot)}: {value.message}"]
                    if not set(self.client.scheduler_info()["workers"]) - {slot.worker}:
                        raise value.cause
                    self.client.retire_workers([slot.worker], close_workers=True)  # its GPU takes no more
                if attempt < MAX_ATTEMPTS:
                    queue.add(submit(job, attempt + 1, history))
                else:
                    yield failed_result(job.key, slot, attempt, history)
            finished = True
        finally:
            if not finished:
                self._stop(list(meta))

    def _stop(self, futures: list[Any]) -> None:
        """Cancel the tasks still queued or running and kill the processes their jobs started."""
        ignored: tuple[type[BaseException], ...] = (OSError, AdvisorError, *_lost_worker_errors())
        try:
            self.client.cancel(futures, force=True)
            self.client.run(_cancel_here)
            self.client.run(_uncancel_here)
        except ignored:
            pass

    def close(self) -> None:
        ignored: tuple[type[BaseException], ...] = (OSError, *_lost_worker_errors())
        try:
            self.client.run(_stop_state_here)  # the long-lived helpers jobs kept (tune's workers)
        except ignored:
            pass
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                self.cluster = None


def _local_cluster(visible: list[str]) -> Any:
    """One worker process per GPU on this host: dask-cuda's LocalCUDACluster, else Nanny workers each
    started with its GPU's ``CUDA_VISIBLE_DEVICES`` and one thread."""
    try:
        from dask_cuda import LocalCUDACluster

        return LocalCUDACluster(CUDA_VISIBLE_DEVICES=visible, threads_per_worker=1, dashboard_address=None)
    except ImportError:
        pass
    import distributed

    spec_cluster: Any = distributed.SpecCluster
    nanny: Any = distributed.Nanny
    workers = {
        f"gpu-{v}": {
            "cls": nanny,
            "options": {
                "nthreads": 1,
                "env": {"CUDA_VISIBLE_DEVICES": v},
                "memory_limit": 0,
                "silence_logs": logging.ERROR,
            },
        }
        for v in visible
    }
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": ":0", "dashboard": False}}
    return spec_cluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)
