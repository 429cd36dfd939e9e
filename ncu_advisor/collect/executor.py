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
worker, whose processes are killed (``runner.run_process``), and stops the workers.

``local`` needs nothing beyond the standard library; ``dask`` needs ``dask.distributed``
(``pip install ncu-advisor[dask]``): see ``collect.executors_dask``.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ncu_advisor.errors import AdvisorError, EnvironmentNotReady, InputError

#: Environment variable naming a Dask scheduler (``tcp://HOST:PORT``); ``--scheduler`` wins over it.
SCHEDULER_ENV = "NCU_ADVISOR_SCHEDULER"
MAX_ATTEMPTS = 2  # the first run and one retry elsewhere


@dataclass(frozen=True)
class GpuSlot:
    """One GPU a worker is pinned to.

    Attributes:
        host: the host name of the worker.
        index: the GPU's index in ``nvidia-smi`` on that host (None when unknown).
        uuid: the GPU's UUID (None when unknown).
        name: the GPU's model name (``NVIDIA H200``).
        visible: the ``CUDA_VISIBLE_DEVICES`` value the worker's processes get.
        worker: the worker's identity (``local:0``, or the Dask worker address).
    """

    host: str
    index: int | None
    uuid: str | None
    name: str | None
    visible: str
    worker: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The manifest's form: name, index, uuid, host (plus visible and worker)."""
        return {
            "name": self.name,
            "index": self.index,
            "uuid": self.uuid,
            "host": self.host,
            "visible": self.visible,
            "worker": self.worker,
        }


@dataclass
class JobContext:
    """What a job sees on its worker.

    Attributes:
        slot: the GPU of the worker.
        env: environment overrides for every process the job starts (``CUDA_VISIBLE_DEVICES``).
        cancel: set when the run is interrupted; long waits poll it and stop.
        state: lives as long as the worker (one dict per GPU), for long-lived helpers between jobs.
    """

    slot: GpuSlot
    env: dict[str, str]
    cancel: threading.Event
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One unit of work: ``key`` names it in results, ``fn(ctx)`` does it (picklable for Dask)."""

    key: str
    fn: Callable[[JobContext], Any]


@dataclass
class JobResult:
    """How one job ended.

    Attributes:
        key: the job's key.
        value: what ``fn`` returned (None when ``error`` is set).
        slot: the GPU of the last attempt.
        attempts: 1, or 2 when it was retried.
        error: why the job could not run (its worker died or its GPU errored, twice), else None.
        history: one line per failed attempt (GPU and reason).
    """

    key: str
    value: Any = None
    slot: GpuSlot | None = None
    attempts: int = 1
    error: str | None = None
    history: list[str] = field(default_factory=list)


class GpuUnusable(AdvisorError):
    """A job's GPU cannot run work (no CUDA device in the process, a GPU fault): retry on another GPU.

    Args:
        cause: the error to raise when no GPU is left (an ``EnvironmentNotReady``).
    """

    exit_code = 3

    def __init__(self, cause: AdvisorError) -> None:
        super().__init__(cause.message, path=cause.path, hint=cause.hint)
        self.cause = cause

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Travels from a Dask worker: rebuild the cause with its message, path and hint kept apart.
        cause = self.cause
        return (_rebuild_unusable, (type(cause), cause.message, cause.path, cause.hint))


def _rebuild_unusable(
    cls: type[AdvisorError], message: str, path: str | None, hint: str | None
) -> GpuUnusable:
    return GpuUnusable(cls(message, path=path, hint=hint))


class Cancelled(Exception):  # noqa: N818 (a state, not a failure)
    """Raised inside a job when the run was interrupted (``ctx.cancel`` set)."""


def _child_visible(values: str | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for v in values.split(",") if v.strip()]


def query_gpus(timeout_s: float = 60, visible: str | None = None) -> list[GpuSlot]:
    """The GPUs of this host that ``CUDA_VISIBLE_DEVICES`` (or ``visible``) lets processes see, in order.

    ``nvidia-smi --query-gpu=index,name,uuid`` lists every GPU; the visible list (indices or UUIDs) picks
    and orders them, as CUDA does.

    Raises:
        EnvironmentNotReady: nvidia-smi is missing, fails or lists no GPU (or none of the visible ones).
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise EnvironmentNotReady(
            "no NVIDIA GPU: nvidia-smi not found", hint="run on a machine with an NVIDIA GPU and driver"
        )
    try:
        proc = subprocess.run(
            [smi, "--query-gpu=index,name,uuid", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentNotReady(f"nvidia-smi failed: {exc}", hint="check the NVIDIA driver") from None
    host = socket.gethostname()
    found: list[GpuSlot] = []
    for line in proc.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 3 and fields[0].isdigit():
            found.append(GpuSlot(host, int(fields[0]), fields[2], fields[1], visible=fields[0]))
    if proc.returncode != 0 or not found:
        raise EnvironmentNotReady(
            f"no NVIDIA GPU visible (nvidia-smi exit {proc.returncode})", hint="check the NVIDIA driver"
        )
    wanted = _child_visible(visible if visible is not None else os.environ.get("CUDA_VISIBLE_DEVICES"))
    if wanted is None:
        return found
    by_key = {str(s.index): s for s in found} | {str(s.uuid): s for s in found}
    picked = [by_key[w] for w in wanted if w in by_key]
    if not picked:
        raise EnvironmentNotReady(
            f"CUDA_VISIBLE_DEVICES={','.join(wanted)} names no GPU nvidia-smi lists",
            hint="unset CUDA_VISIBLE_DEVICES or name GPUs by index or UUID",
        )
    return picked


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


class Executor(ABC):
    """Runs jobs on one worker per GPU; see the module docstring for the fault rules."""

    kind = "abstract"

    @abstractmethod
    def slots(self) -> list[GpuSlot]:
        """The GPUs the workers are pinned to (one worker each)."""

    @abstractmethod
    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        """Run ``jobs``; yield each result as it finishes (in completion order)."""

    def call_on_a_worker(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` where the jobs run (here for ``local``; on one worker for ``dask``)."""
        return fn()

    def describe(self) -> dict[str, Any]:
        """The manifest's ``executor`` entry."""
        return {"kind": self.kind, "gpus": [s.as_dict() for s in self.slots()]}

    def close(self) -> None:  # noqa: B027 (optional hook: a local executor has nothing to stop)
        """Stop the workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_Item = tuple[Job, int, set[str], list[str]]  # job, attempt, workers to avoid, failed attempts


class _Pending:
    """The jobs not yet taken, with the workers each must avoid; shared by the local worker threads."""

    def __init__(self, jobs: list[Job]) -> None:
        self.cond = threading.Condition()
        self.items: list[_Item] = [(j, 1, set(), []) for j in jobs]
        self.in_flight = 0

    def take(self, worker: str, alive: Callable[[], set[str]], cancel: threading.Event) -> _Item | None:
        """The next job this worker may run; waits while others run jobs that may come back; None: done."""
        with self.cond:
            while not cancel.is_set():
                for i, item in enumerate(self.items):
                    if worker not in item[2] or not (alive() - item[2]):
                        self.in_flight += 1
                        return self.items.pop(i)
                if self.in_flight == 0:
                    return None
                self.cond.wait(0.1)
            return None

    def finish(self, retry: _Item | None = None) -> None:
        with self.cond:
            self.in_flight -= 1
            if retry is not None:
                self.items.append(retry)
            self.cond.notify_all()


class LocalExecutor(Executor):
    """One worker thread per visible GPU of this host; each job's processes get that GPU's
    ``CUDA_VISIBLE_DEVICES``. No dependency beyond the standard library.

    Args:
        gpus: how many GPUs to use (None: every visible GPU).
        slots: the GPUs to use (default: ``query_gpus()``); tests pass stand-ins.

    Raises:
        EnvironmentNotReady: no GPU visible.
        InputError: more GPUs asked for than are visible.
    """

    kind = "local"

    def __init__(self, gpus: int | None = None, slots: list[GpuSlot] | None = None) -> None:
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
        self.cancel = threading.Event()

    def slots(self) -> list[GpuSlot]:
        return list(self._slots)

    def close(self) -> None:
        """Stop what jobs left in the workers' state (each value with a ``stop()``: tune's workers)."""
        for state in self._states.values():
            stop_state(state)

    def context(self, slot: GpuSlot) -> JobContext:
        """The context of jobs on ``slot`` (its state persists across jobs and runs of this executor)."""
        env = {"CUDA_VISIBLE_DEVICES": slot.visible}
        return JobContext(slot, env, self.cancel, self._states[slot.worker])

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        pending = _Pending(jobs)
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
        while True:
            item = pending.take(slot.worker, alive, self.cancel)
            if item is None:
                return
            job, attempt, avoid, history = item
            try:
                value = job.fn(ctx)
            except GpuUnusable as exc:
                dead.add(slot.worker)
                history = [*history, f"{_where(slot)}: {exc.message}"]
                if attempt < MAX_ATTEMPTS and alive():
                    pending.finish((job, attempt + 1, avoid | {slot.worker}, history))
                else:
                    pending.finish()
                    results.put(("done", _failed(job.key, slot, attempt, history)))
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


def stop_state(state: dict[str, Any]) -> None:
    """Call ``stop()`` on every value of a worker's state that has one, then forget them all."""
    for value in list(state.values()):
        stop = getattr(value, "stop", None)
        if callable(stop):
            stop()
    state.clear()


def _where(slot: GpuSlot | None) -> str:
    if slot is None:
        return "unknown worker"
    return f"GPU {slot.index if slot.index is not None else slot.visible} on {slot.host}"


def _failed(key: str, slot: GpuSlot | None, attempts: int, history: list[str]) -> JobResult:
    error = f"lost {attempts} times, not retried again: " + "; ".join(history)
    return JobResult(key, None, slot, attempts, error, history)


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
