"""The worker's side of compiling ahead in the pool (``compile_pool.CompilePool``): requested candidates and
prefetched guesses, keyed by their compile.

``AheadCompiler`` turns a configuration into the pool's compile job with the launch arguments captured at the
worker's first launch (``compile_pool.capture_job``): ``request`` for the candidates of a batch about to be
measured, ``prefetch`` for the configurations the parent expects the search to ask for next (a list sent with
``{"op": "prefetch", "configs": [...]}``; each replaces the last). A prefetch that arrives before the first
launch is held and submitted at that launch (the start's), so the first round's candidates compile while the
start itself compiles and is timed. Any failure of a prefetch costs nothing: the real launch compiles the
configuration, or reports its error, as it would without the pool.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ncu_advisor.collect.tune.compile_pool import CompilePool, capture_job, job_key

#: Seconds ``quiet("wait")`` waits at most for the running compiles: the pool's compiles took 0.05-2.1 s,
#: median 0.48 s, 95% under 1.07 s (501 of them, `bench/results/2026-12-01-tune-h200-s6/`); a longer one
#: keeps running beside the timings.
QUIET_WAIT_S = 2.0
#: At most this many prefetched configurations are turned into jobs per list (a capture costs the worker a
#: little time between two measurements; the list is the parent's, likeliest first).
MAX_PREFETCH = 96


def launch_values(config: dict[str, Any] | None) -> dict[str, int]:
    """The launch keywords of a ``TuneConfig.as_dict()`` (params, num_warps, num_stages)."""
    values = dict((config or {}).get("params") or {})
    values.update({k: int(config[k]) for k in ("num_warps", "num_stages") if config and config.get(k)})
    return values


class AheadCompiler:
    """Hands the worker's candidates and prefetches to ``pool`` (see the module docstring)."""

    def __init__(self, pool: Any, jit: Any, path: Path, kernel: str) -> None:
        self.pool = pool
        self.jit = jit
        self.path = Path(path)
        self.kernel = kernel
        self.captured: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        #: candidate id -> the key of its compile job in the pool
        self.keys: dict[str, str] = {}
        self.pending: list[dict[str, Any]] | None = None
        #: jobs made for prefetches, by config (a list is sent again as a batch's leader changes; a capture
        #: costs ~0.7 ms per config, measured on the CPU with tests/test_tune_compile_pool.py's kernel)
        self.made: dict[str, tuple[str, dict[str, Any]]] = {}

    def job(self, config: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
        """(key, job) of ``config``'s compile; None before the first launch, when this process already
        compiled it, or when the capture fails (the real launch reports that)."""
        if self.captured is None:
            return None
        args, kwargs = self.captured
        try:
            job = capture_job(self.jit, self.path, self.kernel, args, {**kwargs, **launch_values(config)})
        except Exception:  # noqa: BLE001 - the real launch reports it, for that candidate only
            return None
        return None if job is None else (job_key(job), job)

    def set_captured(self, captured: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
        """The first launch's arguments: from now on jobs can be made; a held prefetch is submitted."""
        self.captured = captured
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.prefetch(pending)

    def request(self, commands: list[dict[str, Any]]) -> None:
        """Submit the compiles of ``commands`` (a batch about to be measured) ahead of every prefetch."""
        for command in commands:
            if command.get("config") is None:
                continue
            made = self.job(command["config"])
            if made is not None:
                self.keys[str(command["id"])] = made[0]
                self.pool.submit(*made)

    def prefetch(self, configs: list[dict[str, Any]]) -> None:
        """Replace the pool's queued prefetches by ``configs`` (likeliest first); held until the first
        launch when none was captured yet. A config with ``"when": {NAME: VALUE}`` is a guess that assumes
        the first launch passed those values (a tile computed at run time): kept only if it did."""
        if self.captured is None:
            self.pending = list(configs)
            return
        passed = self.captured[1]
        configs = [c for c in configs if isinstance(c, dict) and isinstance(c.get("when") or {}, dict)]
        valid = [c for c in configs if all(passed.get(k) == v for k, v in dict(c.get("when") or {}).items())]
        jobs = []
        for config in valid[:MAX_PREFETCH]:
            name = json.dumps(config, sort_keys=True)
            made = self.made.get(name) or self.job(config)
            if made is not None:
                self.made[name] = made
                jobs.append(made)
        self.pool.prefetch(jobs)

    def quiet(self, mode: str) -> bool:
        """No compile beside the timings that follow: the queued guesses are dropped, then the running
        compiles are waited for (``"wait"``, at most ``QUIET_WAIT_S``) or the pool is closed (``"close"``:
        for the final pick, whose configurations this process compiled already). Returns whether the pool
        was closed. Why: on one H200 (``bench/results/2026-12-01-tune-h200-s6/``, gemm_decode-wide, a
        0.07 ms kernel) the final pick ran while 34 guesses compiled beside it and timed the same configs at
        0.08-0.24 ms against 0.07 ms in the search: a 0.07 ms kernel ends sooner than Python launches the
        next once the CPUs are busy. With the pool closed first (the same kernel, the next run) the final
        pick's 24 repetitions were 0.0700-0.0715 ms."""
        self.pending = None
        self.pool.prefetch([])
        if mode == "close":
            self.pool.close(join_s=QUIET_WAIT_S)  # the killed processes gone before the timings start
            return True
        self.pool.drain(QUIET_WAIT_S)
        return False

    def wait(self, candidate_id: str) -> tuple[float | None, str | None]:
        """Wait for the candidate's compile (``CompilePool.wait_state``): (seconds, state)."""
        return self.pool.wait_state(self.keys.pop(candidate_id, None))  # type: ignore[no-any-return]


def compile_in_threads(
    jit: Any, captured: tuple[tuple[Any, ...], dict[str, Any]], commands: list[dict[str, Any]], threads: int
) -> None:
    """Compile the commands' configs in this process (no pool): ``JITFunction.run(..., warmup=True)`` inside
    Triton's ``AsyncCompileMode`` with ``threads`` threads (Triton 3.6's parallel-compile hook; threads buy
    nothing measured on the CPU, the compile holds the GIL: ``bench/compile_threads.py``)."""
    from concurrent.futures import ThreadPoolExecutor

    from triton.runtime._async_compile import AsyncCompileMode

    args, kwargs = captured
    run = type(jit).run
    with ThreadPoolExecutor(max(1, threads)) as pool:
        with AsyncCompileMode(pool, ignore_errors=True):
            for command in commands:
                if command.get("config") is None:
                    continue
                try:
                    run(jit, *args, grid=None, warmup=True, **{**kwargs, **launch_values(command["config"])})
                except Exception:  # noqa: BLE001 - the real launch reports it, for that candidate only
                    continue


def start_pool(args: Any) -> Any:
    """The measurement worker's compile pool (``--compile-procs``, ``--no-compile-ahead`` in ``args``; None
    without one or under ``TRITON_INTERPRET=1``), spawned by ``worker_child.main`` first thing, before it
    imports torch: its processes import torch, triton and the kernel file while the worker does the same
    and builds. Spawned after the import (until 2026-12-01), the pool was warm 3.9-5.3 s after its spawn, past
    the start's launch: the first round's compiles queued 1.4-2.6 s and the first batch waited 0.9-1.5 s for
    them (five corpus kernels on one H200, ``bench/results/2026-12-01-tune-h200-s6-diag/``)."""
    if args.compile_procs <= 0 or os.environ.get("TRITON_INTERPRET") == "1" or args.no_compile_ahead:
        return None
    return CompilePool(args.compile_procs, warm=str(args.file))
