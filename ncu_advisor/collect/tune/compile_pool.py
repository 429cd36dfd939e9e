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
import os
import time
from pathlib import Path
from typing import Any

_MODULES: dict[str, Any] = {}
#: Seconds ``wait`` allows the executor to hand a just-submitted job to an idle process.
PICKUP_S = 0.1


def precompile(job: dict[str, Any]) -> float:
    """Pool process: compile one job into Triton's cache; returns seconds."""
    import triton
    from triton.compiler import ASTSource

    from ncu_advisor.collect.profile.child import load_module
    from ncu_advisor.collect.tune.pin import _jit_function

    path = job["path"]
    if path not in _MODULES:
        _MODULES[path] = load_module(Path(path))
    fn = _jit_function(getattr(_MODULES[path], job["kernel"]))
    t0 = time.perf_counter()
    source = ASTSource(fn=fn, signature=job["signature"], constexprs=job["constexprs"], attrs=job["attrs"])
    triton.compile(source, target=job["target"], options=job["options"])
    return time.perf_counter() - t0


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


class CompilePool:
    """A pool of spawned processes compiling jobs; ``wait(id)`` before the candidate's own launch."""

    def __init__(self, procs: int, warm: str | None = None) -> None:
        """Spawn ``procs`` processes; with ``warm`` (the kernel file), each imports triton and the file now.

        Why warm: on the two-H200 bench of 2026-11-30 every tune's first batch cost 7-10 s whatever its size
        (6-9 candidates; later batches 0.16-0.3 s per candidate), the pool's spawn and imports on the
        critical path; warmed while the worker builds the model, they overlap that build instead."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(
            max_workers=procs, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
        )
        self.futures: dict[str, Any] = {}
        self.warming = [self.executor.submit(_warm, warm) for _ in range(procs if warm is not None else 0)]

    def submit(self, candidate_id: str, job: dict[str, Any]) -> None:
        self.futures[candidate_id] = self.executor.submit(precompile, job)

    def wait(self, candidate_id: str, timeout: float = 30.0) -> float | None:
        """Seconds the pool spent compiling the candidate (None: not compiled ahead; the launch compiles).

        A job the pool has not started yet is cancelled (the worker compiling it itself is sooner). The
        executor's own thread hands a job to a process a moment after ``submit``: ``PICKUP_S`` is allowed
        for that (a warm pool is idle when the first job of a batch is waited for right after its submit)."""
        future = self.futures.pop(candidate_id, None)
        if future is None:
            return None
        deadline = time.monotonic() + PICKUP_S
        while not (future.running() or future.done()) and time.monotonic() < deadline:
            time.sleep(0.002)
        if not (future.running() or future.done()):
            future.cancel()
            return None
        try:
            return float(future.result(timeout=timeout))
        except Exception:  # noqa: BLE001 - the launch compiles it and reports a real error itself
            return None

    def close(self) -> None:
        """Cancel what is queued and kill the processes (a compile cut short leaves no partial cache entry:
        Triton writes each file under a temporary name, then renames it)."""
        for future in [*self.futures.values(), *self.warming]:
            future.cancel()
        self.futures.clear()
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
