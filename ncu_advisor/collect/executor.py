"""Where jobs run: one worker per GPU, on this host (``local``) or on a Dask cluster (``dask``).

A job is a picklable callable ``fn(JobContext) -> value`` (a module-level function or a
``functools.partial`` of one). It runs on a worker pinned to one GPU: every process it starts gets
``ctx.env`` (``CUDA_VISIBLE_DEVICES`` of that GPU), and ``ctx.state`` lives as long as the worker, so a
long-lived process (tune's measurement worker) can be kept there between jobs: a job looks it up by key,
starts it on ``ctx.slot.visible`` when missing, and submits its candidates; ``Executor.close`` calls
``stop()`` on every such value. Each worker runs one job at a time, so timings never share a GPU.

Faults: a job whose worker dies (Dask ``KilledWorker``, a lost connection, a host that disappears) or whose
GPU errors (the job raises ``GpuUnusable``) costs only that job: it is retried once on another GPU, then
returned with ``error`` set. A GPU that errored takes no more jobs; when none is left, ``GpuUnusable``'s
cause is raised (``EnvironmentNotReady``, exit 3: on one GPU, exactly the single-GPU behaviour). Any other
exception of a job stops the run and is raised. Ctrl-C (or closing the iterator) sets ``ctx.cancel`` on every
worker, whose processes are killed (``profile.process.run_process``), and stops the workers.

Scheduling (local): a worker stays on one ``Job.group`` (a kernel file) while it has jobs and takes the
end of the busiest group when its own are done (``LocalExecutor``, ``schedule``); ``Executor.prepare``
starts long-lived helpers on every worker before the first job (``profile``'s timing workers).

``local`` needs nothing beyond the standard library; ``dask`` needs ``dask.distributed``
(``pip install ncu-advisor[dask]``): see ``collect.executors_dask``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ncu_advisor.collect.executor_types import (
    MAX_ATTEMPTS,
    Cancelled,
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
from ncu_advisor.errors import InputError

__all__ = [
    "MAX_ATTEMPTS",
    "SCHEDULER_ENV",
    "Cancelled",
    "Executor",
    "GpuSlot",
    "GpuUnusable",
    "Job",
    "JobContext",
    "JobResult",
    "LocalExecutor",
    "make_executor",
    "parse_gpus",
    "query_gpus",
    "stop_state",
]

#: Environment variable naming a Dask scheduler (``tcp://HOST:PORT``); ``--scheduler`` wins over it.
SCHEDULER_ENV = "NCU_ADVISOR_SCHEDULER"


def parse_gpus(value: str | int | None) -> int | None:
    """``--gpus`` as a count: ``all`` (or None) -> None (every visible GPU), else an int >= 1.

    Raises:
        InputError: anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        count = int(value)
    except ValueError:
        raise InputError(f"--gpus must be a number or 'all', not {value!r}") from None
    if count < 1:
        raise InputError(f"--gpus must be >= 1, not {count}")
    return count


_Item = tuple[Job, int, set[str], list[str]]  # job, attempt, workers to avoid, failed attempts
SCHEDULES = ("affinity", "fifo")


class _Pending:
    """The jobs not yet taken, with the workers each must avoid; shared by the local worker threads.

    ``affinity`` (see ``LocalExecutor``): a worker takes the next job of the group it is on; else the first
    job of the group with the most jobs left that no other worker is on; else (no such group) it takes the
    last job of the group with the most jobs left. Jobs without a group, and ``fifo``: queue order."""

    def __init__(self, jobs: list[Job], affinity: bool = True) -> None:
        self.cond = threading.Condition()
        self.items: list[_Item] = [(j, 1, set(), []) for j in jobs]
        self.in_flight = 0
        self.affinity = affinity
        self.on: dict[str, str | None] = {}  # worker -> the group of the job it took last

    def take(self, worker: str, alive: Callable[[], set[str]], cancel: threading.Event) -> _Item | None:
        """The next job this worker may run; waits while others run jobs that may come back; None: done."""
        with self.cond:
            while not cancel.is_set():
                living = alive()
                allowed = [
                    i for i, item in enumerate(self.items) if worker not in item[2] or not (living - item[2])
                ]
                if allowed:
                    index = self._choose(worker, allowed, living) if self.affinity else allowed[0]
                    self.in_flight += 1
                    item = self.items.pop(index)
                    self.on[worker] = item[0].group
                    return item
                if self.in_flight == 0:
                    return None
                self.cond.wait(0.1)
            return None

    def _choose(self, worker: str, allowed: list[int], living: set[str]) -> int:
        groups = [self.items[i][0].group for i in allowed]
        own = self.on.get(worker)
        if own is not None and own in groups:
            return allowed[groups.index(own)]
        if None in groups:  # jobs without a group keep their queue order
            return allowed[groups.index(None)]
        held = {g for w, g in self.on.items() if w != worker and w in living}
        left = {g: groups.count(g) for g in groups}  # insertion order: the queue's
        free = [g for g in left if g not in held]
        if free:
            return allowed[groups.index(max(free, key=lambda g: left[g]))]
        busiest = max(left, key=lambda g: left[g])  # steal from its end: its worker keeps the head
        return allowed[len(groups) - 1 - groups[::-1].index(busiest)]

    def finish(self, retry: _Item | None = None) -> None:
        with self.cond:
            self.in_flight -= 1
            if retry is not None:
                self.items.append(retry)
            self.cond.notify_all()


class LocalExecutor(Executor):
    """One worker thread per visible GPU of this host; each job's processes get that GPU's
    ``CUDA_VISIBLE_DEVICES``. No dependency beyond the standard library.

    Scheduling (``schedule``): ``affinity`` (default) keeps a worker on one ``Job.group`` (``profile``: a
    kernel file) while that group has jobs, starts each idle worker on the group with the most jobs left
    that no other worker is on, and lets a worker whose groups are done take the last jobs of the busiest
    group, so no GPU idles while jobs are left. Variants of one file share kernels (a kernel launched
    with the same config by several classes, the reference's); run one after another on one GPU, the
    first compiles them into the Triton cache and the next load them, where two GPUs starting them at
    once would both compile. ``fifo``: queue order (jobs without a group always run in queue order).

    Args:
        gpus: how many GPUs to use (None: every visible GPU).
        slots: the GPUs to use (default: ``query_gpus()``); tests pass stand-ins.
        schedule: ``affinity`` or ``fifo``.

    Raises:
        EnvironmentNotReady: no GPU visible.
        InputError: more GPUs asked for than are visible, or an unknown ``schedule``.
    """

    kind = "local"

    def __init__(
        self, gpus: int | None = None, slots: list[GpuSlot] | None = None, schedule: str = "affinity"
    ) -> None:
        if schedule not in SCHEDULES:
            raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
        self.schedule = schedule
        found = list(slots) if slots is not None else query_gpus()
        if gpus is not None and gpus > len(found):
            raise InputError(
                f"--gpus {gpus} asked for, {len(found)} visible",
                hint="lower --gpus or check CUDA_VISIBLE_DEVICES",
            )
        chosen = found[:gpus] if gpus is not None else found
        self._slots = [
            GpuSlot(s.host, s.index, s.uuid, s.name, s.visible, worker=f"local:{i}")
            for i, s in enumerate(chosen)
        ]
        self._states: dict[str, dict[str, Any]] = {s.worker: {} for s in self._slots}
        self._preparing: dict[str, threading.Thread] = {}
        self.cancel = threading.Event()

    def slots(self) -> list[GpuSlot]:
        return list(self._slots)

    def prepare(self, fn: Callable[[JobContext], Any]) -> None:
        """Run ``fn(ctx)`` for every GPU in a thread of its own now; that GPU's first job waits for it."""
        for slot in self._slots:
            self._await_prepared(slot.worker)
            thread = threading.Thread(target=_quietly, args=(fn, self.context(slot)), daemon=True)
            self._preparing[slot.worker] = thread
            thread.start()

    def _await_prepared(self, worker: str) -> None:
        thread = self._preparing.pop(worker, None)
        while thread is not None and thread.is_alive():
            thread.join(timeout=0.1)

    def close(self) -> None:
        """Stop what jobs left in the workers' state (each value with a ``stop()``: tune's workers)."""
        if any(t.is_alive() for t in self._preparing.values()):
            self.cancel.set()  # a start still under way ends (``fn`` polls ``ctx.cancel``)
        for worker in list(self._preparing):
            self._await_prepared(worker)
        self.cancel.clear()
        # every GPU's worker stops at once: a stop waits for its process to exit, and one after another the
        # waits add up (two H200s: 1.0-1.1 s of closing against 0.6 s on one, bench/results/
        # 2026-12-01-scale-h200x2-s5)
        stoppers = [threading.Thread(target=stop_state, args=(state,)) for state in self._states.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def context(self, slot: GpuSlot) -> JobContext:
        """The context of jobs on ``slot`` (its state persists across jobs and runs of this executor)."""
        env = {"CUDA_VISIBLE_DEVICES": slot.visible}
        return JobContext(slot, env, self.cancel, self._states[slot.worker])

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        pending = _Pending(jobs, affinity=self.schedule == "affinity")
        results: queue.Queue[tuple[str, Any]] = queue.Queue()
        dead: set[str] = set()
        alive = lambda: {s.worker for s in self._slots} - dead  # noqa: E731
        threads = [
            threading.Thread(target=self._work, args=(slot, pending, results, dead, alive), daemon=True)
            for slot in self._slots
        ]
        for thread in threads:
            thread.start()
        remaining = len(jobs)
        unusable: GpuUnusable | None = None
        try:
            while remaining:
                try:
                    kind, payload = results.get(timeout=0.2)
                except queue.Empty:
                    kind, payload = "idle", None
                if kind == "idle":
                    if not any(t.is_alive() for t in threads) and results.empty():
                        if unusable is not None:
                            raise unusable.cause  # no GPU left that can run the jobs
                        raise RuntimeError(f"every worker stopped with {remaining} jobs left")
                    continue
                if kind == "raise":
                    raise payload
                if kind == "unusable":
                    unusable = payload
                    continue
                remaining -= 1
                yield payload
        finally:
            self.cancel.set()
            for thread in threads:
                thread.join(timeout=60)
            self.cancel.clear()

    def _work(
        self,
        slot: GpuSlot,
        pending: _Pending,
        results: queue.Queue[tuple[str, Any]],
        dead: set[str],
        alive: Callable[[], set[str]],
    ) -> None:
        ctx = self.context(slot)
        self._await_prepared(slot.worker)
        while True:
            item = pending.take(slot.worker, alive, self.cancel)
            if item is None:
                return
            job, attempt, avoid, history = item
            try:
                value = job.fn(ctx)
            except GpuUnusable as exc:
                dead.add(slot.worker)
                history = [*history, f"{slot_where(slot)}: {exc.message}"]
                if attempt < MAX_ATTEMPTS and alive():
                    pending.finish((job, attempt + 1, avoid | {slot.worker}, history))
                else:
                    pending.finish()
                    results.put(("done", failed_result(job.key, slot, attempt, history)))
                results.put(("unusable", exc))
                return
            except Cancelled:
                pending.finish()
                return
            except BaseException as exc:  # a bug or an environment-wide stop: end the run with it
                pending.finish()
                results.put(("raise", exc))
                return
            pending.finish()
            results.put(("done", JobResult(job.key, value, slot, attempt, None, history)))


def _quietly(fn: Callable[[JobContext], Any], ctx: JobContext) -> None:
    try:
        fn(ctx)
    except BaseException:  # best effort (see Executor.prepare): the first job meets the error again
        pass


def make_executor(kind: str = "local", gpus: int | None = None, scheduler: str | None = None) -> Executor:
    """Build the executor ``profile`` and the sweeps use.

    Args:
        kind: ``local`` or ``dask``; a scheduler (argument or ``NCU_ADVISOR_SCHEDULER``) implies ``dask``.
        gpus: GPUs to use on this host (None: all visible); ignored with a scheduler (its workers decide).
        scheduler: ``tcp://HOST:PORT`` of an existing Dask cluster.

    Raises:
        InputError: unknown kind, or dask asked for but not installed.
        EnvironmentNotReady: no GPU visible (local).
    """
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler is not None or kind == "dask":
        from ncu_advisor.collect.executors_dask import DaskExecutor

        return DaskExecutor(gpus=gpus, scheduler=scheduler)
    if kind != "local":
        raise InputError(f"--executor must be local or dask, not {kind!r}")
    return LocalExecutor(gpus=gpus)
