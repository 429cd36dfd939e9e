"""Compile candidates ahead in other processes, into Triton's on-disk cache (``--compile-procs``).

Threads do not help (``bench/compile_threads.py``: Triton's compile holds the GIL), so the measurement worker
hands compiles to a pool of spawned processes. The exact compile arguments of a candidate come from the
worker itself: ``capture_job`` runs the kernel's ``JITFunction.run(..., warmup=True)`` with the candidate's
values while the instance's ``_do_compile`` is replaced by a recorder (no compile, no launch), so the
signature, constexprs, specialization attributes, options and target are the ones the real launch will
use. A pool process runs ``triton.compile(ASTSource(...), target, options)``, which writes the binary to
Triton's cache; the worker's real launch then finds it there instead of compiling. Anything that goes wrong
in the pool only costs the worker its own compile (never slower than without the pool, but for the wait).
The same method is used by ``bench/sweep_corpus.py``'s compile-ahead pool.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MODULES: dict[str, Any] = {}
#: Seconds ``wait`` allows the executor to hand a just-submitted job to an idle process.
PICKUP_S = 0.1


def precompile(job: dict[str, Any]) -> tuple[float, float]:
    """Pool process: compile one job into Triton's cache; returns (seconds, ``time.monotonic()`` at its
    start: Linux's monotonic clock is one for every process, so the pool tells how long a job queued)."""
    import triton
    from triton.compiler import ASTSource

    from ncu_advisor.collect.profile.child import load_module
    from ncu_advisor.collect.tune.pin import _jit_function

    path = job["path"]
    if path not in _MODULES:
        _MODULES[path] = load_module(Path(path))
    fn = _jit_function(getattr(_MODULES[path], job["kernel"]))
    started, t0 = time.monotonic(), time.perf_counter()
    source = ASTSource(fn=fn, signature=job["signature"], constexprs=job["constexprs"], attrs=job["attrs"])
    triton.compile(source, target=job["target"], options=job["options"])
    return time.perf_counter() - t0, started


def _warm(path: str | None) -> int:
    """Pool process: import triton and the kernel file ahead of the first job (both are cached per process);
    returns this process's id."""
    import triton  # noqa: F401

    if path is not None and path not in _MODULES:
        from ncu_advisor.collect.profile.child import load_module

        try:
            _MODULES[path] = load_module(Path(path))
        except Exception:  # noqa: BLE001 - the worker's own load reports a broken file
            pass
    return os.getpid()


def capture_job(
    jit: Any, path: Path, kernel: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """The compile job of one launch of ``jit`` with ``kwargs`` (None: already compiled in this process)."""
    jobs: list[dict[str, Any]] = []

    def record(
        key: Any, signature: Any, device: Any, constexprs: Any, options: Any, attrs: Any, warmup: Any
    ) -> None:
        jobs.append(
            {
                "path": str(path),
                "kernel": kernel,
                "signature": dict(signature),
                "constexprs": dict(constexprs),
                "attrs": attrs,
                "options": dict(options.__dict__),
                "target": jit.device_caches[device][2],
            }
        )

    jit._do_compile = record
    try:
        type(jit).run(jit, *args, grid=None, warmup=True, **kwargs)
    finally:
        del jit._do_compile
    return jobs[0] if jobs else None


def _lower_priority() -> None:
    """Pool processes yield the CPU to the worker that launches and times kernels."""
    with contextlib.suppress(OSError):
        os.nice(10)


def job_key(job: dict[str, Any]) -> str:
    """What makes two jobs the same compile (the kernel, its signature, constexprs and options), as text:
    a config prefetched and later requested, or requested twice, is compiled once."""
    parts = [job.get("path"), job.get("kernel")]
    parts += [
        sorted((repr(k), repr(v)) for k, v in dict(job.get(name) or {}).items())
        for name in ("signature", "constexprs", "options")
    ]
    return repr(parts)


#: Priorities of the pool's queue: a requested compile (a candidate about to be measured) goes ahead of
#: every prefetched one (a guess of the search's next rounds).
REQUESTED, PREFETCH = 0, 1


@dataclass
class _Entry:
    """One compile the pool knows: queued (``future`` None) or handed to a process."""

    job: dict[str, Any]
    priority: int
    seq: int
    future: Any = None
    #: handed to a process as a prefetch (before any request for it)
    prefetched: bool = False
    #: ``time.monotonic()`` when it was handed to the executor
    handed: float = 0.0


class CompilePool:
    """A pool of spawned processes compiling jobs; ``wait(key)`` before the candidate's own launch.

    Scheduling: at most ``procs`` jobs are handed to the processes at a time; the rest wait in a priority
    queue, requested jobs (``submit``) first in submission order, then prefetched ones (``prefetch``) in the
    order given. So a requested compile waits at most for the compiles already running. A key already known
    (queued, running or done) is not compiled again: a prefetch later requested is waited on. ``prefetch``
    replaces the prefetches still queued (the search's best moved: the old guesses are stale).
    ``stats`` counts what happened (``prefetch_started``: prefetches handed to a process; ``requested``:
    waits for a known key; ``ready``: of those, compile already done; ``waited``: running, waited for;
    ``own``: not started, the launch compiles it; ``prefetch_used``: requested ones a prefetch started).
    """

    def __init__(self, procs: int, warm: str | None = None, executor: Any = None) -> None:
        """Spawn ``procs`` processes; with ``warm`` (the kernel file), each imports triton and the file now.
        ``executor``: a stand-in for the process pool (tests).

        Why warm: on the two-H200 bench of 2026-11-30 every tune's first batch cost 7-10 s whatever its size
        (6-9 candidates; later batches 0.16-0.3 s per candidate), the pool's spawn and imports on the
        critical path; warmed while the worker builds the model, they overlap that build instead."""
        if executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            executor = ProcessPoolExecutor(
                max_workers=procs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority,
            )
        self.executor = executor
        self.procs = max(1, procs)
        self.entries: dict[str, _Entry] = {}
        self.queue: list[tuple[int, int, str]] = []
        self.in_flight = 0
        self.seq = 0
        #: the executor refused a job (a process died: ``BrokenProcessPool``); nothing more is handed to it
        self.broken = False
        self.lock = threading.RLock()
        self.stats: dict[str, float] = dict.fromkeys(
            ("prefetch_started", "requested", "ready", "waited", "own", "prefetch_used"), 0
        )
        #: timeline (seconds): ``warmed``/``warm_s``: processes warmed and when the last did, from the pool's
        #: start; ``queue_s``: the last waited-for job's time from its hand-over to its process starting it
        self.created = time.monotonic()
        self.warming = [self.executor.submit(_warm, warm) for _ in range(procs if warm is not None else 0)]
        for future in self.warming:
            future.add_done_callback(self._warmed)

    def _warmed(self, _future: Any) -> None:
        with self.lock:
            self.stats["warmed"] = self.stats.get("warmed", 0) + 1
            self.stats["warm_s"] = round(time.monotonic() - self.created, 3)

    def submit(self, key: str, job: dict[str, Any]) -> None:
        """Queue a requested compile (ahead of every prefetch); a known key is not compiled twice."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None and entry.future is None and entry.priority != REQUESTED:
                self._push(key, entry.job, REQUESTED)  # a queued prefetch, now wanted: to the front
            elif entry is None:
                self._push(key, job, REQUESTED)
            self._pump()

    def prefetch(self, jobs: list[tuple[str, dict[str, Any]]]) -> None:
        """Replace the queued prefetches by ``jobs`` (most likely first); known keys are skipped."""
        with self.lock:
            for key in [k for k, e in self.entries.items() if e.future is None and e.priority == PREFETCH]:
                del self.entries[key]  # its heap item is skipped as stale by _pump
            for key, job in jobs:
                if key not in self.entries:
                    self._push(key, job, PREFETCH)
            self._pump()

    def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s in all) for the compiles handed to a process; nothing new starts in
        the meantime only if nothing is queued (``prefetch([])`` drops the queued guesses first)."""
        with self.lock:
            running = [e.future for e in self.entries.values() if e.future is not None]
        deadline = time.monotonic() + timeout
        for future in running:
            with contextlib.suppress(Exception):  # a failed or cancelled compile: nothing to wait for
                future.result(timeout=max(0.0, deadline - time.monotonic()))

    def _push(self, key: str, job: dict[str, Any], priority: int) -> None:
        self.seq += 1
        self.entries[key] = _Entry(job, priority, self.seq)
        heapq.heappush(self.queue, (priority, self.seq, key))

    def _pump(self) -> None:
        """Hand queued jobs to the processes while fewer than ``procs`` are in flight (lock held)."""
        while self.queue and self.in_flight < self.procs and not self.broken:
            priority, seq, key = heapq.heappop(self.queue)
            entry = self.entries.get(key)
            if entry is None or entry.future is not None or entry.seq != seq:
                continue  # stale: dropped by a newer prefetch list, or pushed again with another priority
            try:
                future = self.executor.submit(precompile, entry.job)
            except Exception:  # noqa: BLE001 - a broken pool (a process killed): every launch compiles itself
                self.broken = True
                self.queue.clear()
                self.entries = {k: e for k, e in self.entries.items() if e.future is not None}
                return
            entry.prefetched = priority == PREFETCH
            entry.handed = time.monotonic()
            if entry.prefetched:
                self.stats["prefetch_started"] += 1
            self.in_flight += 1
            entry.future = future
            future.add_done_callback(self._finished)

    def _finished(self, _future: Any) -> None:
        with self.lock:
            self.in_flight -= 1
            self._pump()

    def wait(self, key: str | None, timeout: float = 30.0) -> float | None:
        """Seconds the pool spent compiling the job (None: not compiled ahead; the launch compiles)."""
        return self.wait_state(key, timeout)[0]

    def wait_state(self, key: str | None, timeout: float = 30.0) -> tuple[float | None, str | None]:
        """``wait`` and how the compile was found: "ready" (done), "waited" (running), "own" (not started:
        the launch compiles it), None (unknown key); each requested key counts once in ``stats``.

        A job the pool has not started yet is dropped (the worker compiling it itself is sooner). The
        executor's own thread hands a job to a process a moment after ``submit``: ``PICKUP_S`` is allowed
        for that (a warm pool is idle when the first job of a batch is waited for right after its submit)."""
        with self.lock:
            entry = self.entries.get(key) if key is not None else None
            if entry is None:
                return None, None
            future = entry.future
            if future is None:
                del self.entries[key]  # type: ignore[arg-type]
        state = self._state(entry, future)
        if state == "own":
            if future is not None:
                future.cancel()
                with self.lock:
                    self.entries.pop(key, None)  # type: ignore[arg-type]
            seconds = None
        else:
            try:
                seconds, started = future.result(timeout=timeout)
                seconds = float(seconds)
                self.stats["queue_s"] = round(max(0.0, float(started) - entry.handed), 3)
            except Exception:  # noqa: BLE001 - the launch compiles it and reports a real error itself
                seconds = None
        with self.lock:
            self.stats["requested"] += 1
            self.stats[state] += 1
            if entry.prefetched and state != "own":
                self.stats["prefetch_used"] += 1
                entry.prefetched = False  # counted once
        return seconds, state

    @staticmethod
    def _state(entry: _Entry, future: Any) -> str:
        if future is None:
            return "own"
        if future.done():
            return "ready"
        deadline = time.monotonic() + PICKUP_S
        while not (future.running() or future.done()) and time.monotonic() < deadline:
            time.sleep(0.002)
        return "waited" if future.running() or future.done() else "own"

    def close(self, join_s: float = 0.0) -> None:
        """Cancel what is queued and kill the processes (a compile cut short leaves no partial cache entry:
        Triton writes each file under a temporary name, then renames it). ``join_s``: wait up to that long
        in all for them to be gone (their memory freed), for timings that follow at once."""
        with self.lock:
            self.queue.clear()
            futures = [e.future for e in self.entries.values() if e.future is not None]
            self.entries.clear()
        for future in [*futures, *self.warming]:
            future.cancel()
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
        deadline = time.monotonic() + join_s
        for process in processes if join_s > 0 else []:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                process.join(max(0.0, deadline - time.monotonic()))
