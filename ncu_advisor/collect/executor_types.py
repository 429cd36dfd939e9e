"""The types every executor shares: a GPU slot, a job, its context and result, the ``Executor`` interface,
the GPU fault and cancel signals, and the GPU query. ``collect.executor`` (the local executor and the
factory) and ``collect.executors_dask`` both build on this module, and the processes a job starts
(``collect.profile.process``) raise its ``Cancelled``; see ``collect.executor`` for the fault rules.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ncu_advisor.errors import AdvisorError, EnvironmentNotReady

__all__ = [
    "MAX_ATTEMPTS",
    "Cancelled",
    "Executor",
    "GpuSlot",
    "GpuUnusable",
    "Job",
    "JobContext",
    "JobResult",
    "failed_result",
    "query_gpus",
    "slot_where",
    "stop_state",
]

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
    """One unit of work: ``key`` names it in results, ``fn(ctx)`` does it (picklable for Dask).

    ``group``: jobs that share what a worker loads or compiles (``profile``: the kernel file); the local
    executor keeps a worker on one group while it has jobs (see ``collect.executor``). None: no affinity.
    """

    key: str
    fn: Callable[[JobContext], Any]
    group: str | None = None


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

    def prepare(self, fn: Callable[[JobContext], Any]) -> None:  # noqa: B027 (optional hook)
        """Start ``fn(ctx)`` on every worker now, in the background, before any job is given out (``profile``
        starts its timing workers while it checks the environment). Best effort: its errors are dropped, the
        first job meets them again. Default: nothing (the Dask executor)."""

    def describe(self) -> dict[str, Any]:
        """The manifest's ``executor`` entry."""
        return {"kind": self.kind, "gpus": [s.as_dict() for s in self.slots()]}

    def close(self) -> None:  # noqa: B027 (optional hook: a local executor has nothing to stop)
        """Stop the workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_state(state: dict[str, Any]) -> None:
    """Call ``stop()`` on every value of a worker's state that has one, then forget them all."""
    for value in list(state.values()):
        stop = getattr(value, "stop", None)
        if callable(stop):
            stop()
    state.clear()


def slot_where(slot: GpuSlot | None) -> str:
    if slot is None:
        return "unknown worker"
    return f"GPU {slot.index if slot.index is not None else slot.visible} on {slot.host}"


def failed_result(key: str, slot: GpuSlot | None, attempts: int, history: list[str]) -> JobResult:
    error = f"lost {attempts} times, not retried again: " + "; ".join(history)
    return JobResult(key, None, slot, attempts, error, history)
