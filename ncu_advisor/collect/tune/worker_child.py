"""The measurement worker: one long-lived process per GPU that measures many configurations of one kernel.

``python -m ncu_advisor.collect.tune.worker_child FILE CLASS --kernel NAME [--reps N] [--rtol R]
[--seed S] [--device cuda|cpu] [--compile-threads N] [--no-compile-ahead] [--warmup-ms MS] [--rep-ms MS]
[--set NAME=VALUE ...]``

It imports the kernel file, builds the reference and the variant (``profile.child.build``), computes the
reference output once (float64, on the device), then reads commands from stdin, one JSON object a line:
``{"id": ID, "config": {"params": {...}, "num_warps": W, "num_stages": S} | null}`` (null: as written),
``{"op": "stop"}``. It writes events to the protocol stream (the original stdout; the kernel file's prints go
to stderr), one JSON object a line, each with ``"t"`` (seconds since the process began): ``{"event":
"ready", "environment": ..., "build_s": ...}`` once, then per candidate ``{"event": "start", "id": ID}``
before it runs user code (so the parent knows the culprit if the process dies) and ``{"event": "result",
"id": ID, "status": "ok"|"failed"|"crashed", "correct": ..., "reps_ms": [...], "n_regs": ..., ...}``. A
command may carry ``"screen_ms": MS``: the first do_bench median is taken alone and, when it is not below
``MS``, the other ``--reps - 1`` are skipped (``"screened": true``; the parent passes the best's fastest
repetition, so such a candidate could not pass the keep test anyway).

With ``--compile-procs N`` the pool of compile processes is spawned first and warmed (triton and the kernel
file imported) while this process builds; it is killed on "stop" (or the end of stdin), and the process
exits without the interpreter's teardown. Before timing the candidates it has received, the worker compiles
them without launching: in the pool (``ahead.AheadCompiler``, ``compile_pool.CompilePool``), else in threads
(``ahead.compile_in_threads``; they buy nothing, Triton's compile holds the GIL).
``{"op": "prefetch", "configs": [...]}`` hands the pool's spare processes the configs the parent expects
next (each list replaces the last; requested compiles go first; held until the first launch); with
``"quiet": "wait"|"close"`` it quiets the pool for the timings that follow. Each result says how its
compile was found (``"compile"``: ready / waited / own), its wait for it (``"wait_s"``) and the pool's
counts and timeline (``"pool"``, ``CompilePool.stats``). Under ``TRITON_INTERPRET=1`` nothing is compiled.

Exit codes: 0 stopped (stdin closed or "stop"), 2 bad arguments or the file cannot be loaded, 3 no CUDA
device, 4 a candidate crashed the CUDA context (the parent restarts it). torch/triton are imported here only.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from ncu_advisor.collect.profile import child as profile_child
from ncu_advisor.collect.profile.correctness import _tensors, tolerance_for
from ncu_advisor.collect.tune.ahead import AheadCompiler, compile_in_threads, start_pool
from ncu_advisor.collect.tune.pin import _jit_function, install_run_wrapper, module_constants

EXIT_BAD_INPUT = 2
EXIT_NO_GPU = 3
EXIT_CUDA_CRASH = 4
#: ``time.perf_counter()`` when ``main`` began: every event's ``"t"`` counts from it
STARTED = time.perf_counter()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ncu_advisor.collect.tune.worker_child")
    parser.add_argument("file", type=Path)
    parser.add_argument("variant")
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rtol", type=float, default=None, help="default: per output dtype, as profile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile-threads", type=int, default=1)
    parser.add_argument("--compile-procs", type=int, default=0)
    parser.add_argument("--no-compile-ahead", action="store_true")
    parser.add_argument("--warmup-ms", type=float, default=25.0)
    parser.add_argument("--rep-ms", type=float, default=100.0)
    parser.add_argument("--set", action="append", default=[], help="NAME=INT: a module-level size (tests)")
    return parser.parse_args(argv)


class Worker:
    """Holds the model, inputs and reference output; measures one configuration at a time."""

    def __init__(self, args: argparse.Namespace, pool: Any = None) -> None:
        """``pool``: the compile pool ``start_pool`` spawned before this process imported torch (``main``
        owns it: closes it when this does not build)."""
        import torch

        self.torch = torch
        self.args = args
        self.pool: Any = pool
        self._build(args)

    def _build(self, args: argparse.Namespace) -> None:
        torch = self.torch
        self.module = profile_child.load_module(args.file)
        for item in args.set:
            name, _, value = item.partition("=")
            setattr(self.module, name, int(value))
        reference, self.model, self.inputs, self.how = profile_child.build(
            self.module, args.variant, seed=args.seed, device=args.device
        )
        with torch.no_grad():
            reference64 = copy.deepcopy(reference).double()
            inputs64 = [t.double() if getattr(t, "is_floating_point", bool)() else t for t in self.inputs]
            self.expected = _tensors(reference64(*inputs64))
        del reference64, inputs64, reference
        self.cls = getattr(self.module, args.variant)
        self.original_config = dict(getattr(self.cls, "config", {}) or {})
        target = getattr(self.module, args.kernel, None)
        if target is None:
            raise LookupError(f"the kernel file has no kernel {args.kernel!r} at module level")
        self.autotuner = target if isinstance(getattr(target, "configs", None), list) else None
        self.original_configs = list(self.autotuner.configs) if self.autotuner is not None else []
        # Keywords the pinned autotune Config sets: the call site's own value of one (``BLOCK_N=...`` next to
        # ``@triton.autotune``) is dropped, else Triton passes it twice ("got multiple values for keyword").
        self.autotune_pinned: set[str] = set()
        if self.autotuner is not None:
            tuned_run = self.autotuner.run

            def run_pinned(*a: Any, **kw: Any) -> Any:
                for key in self.autotune_pinned:
                    kw.pop(key, None)
                return tuned_run(*a, **kw)

            self.autotuner.run = run_pinned
        self.jit = _jit_function(target)
        self.constants = module_constants(self.module, list(getattr(self.jit, "arg_names", []) or []))
        self.start_launched: dict[str, int] | None = None
        self.forced: dict[str, int] = {}
        self.record: dict[str, Any] = {}
        self.captured: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        # an autotuner launches every config while it benchmarks, then the one it chose: record the last
        install_run_wrapper(self.jit, self.forced, self.record, track_last=self.autotuner is not None)
        pinned = self.jit.run

        self.ahead: AheadCompiler | None = None
        if self.pool is not None:
            self.ahead = AheadCompiler(self.pool, self.jit, args.file, args.kernel)

        def capture(*a: Any, **kw: Any) -> Any:
            if self.captured is None and not kw.get("warmup"):
                self.captured = (a, {k: v for k, v in kw.items() if k not in ("grid", "warmup")})
                if self.ahead is not None:  # a prefetch held for this first launch goes to the pool now
                    self.ahead.set_captured(self.captured)
            return pinned(*a, **kw)

        self.jit.run = capture

    # -------------------------------------------------------------------------------------------- pin
    def pin(self, config: dict[str, Any] | None) -> dict[str, int]:
        """Pin ``config`` (None: as written); returns every value forced at the launch.

        Besides the launch keywords, a module-level constant that holds a launch value (``ROPE_BLOCK_H = 1``
        feeding ``BLOCK_H``, ``NUM_WARPS = 4``) is set too when it equals what the start launched with:
        a grid the wrapper computes from it then follows the pin (``module_constants``).
        """
        self.forced.clear()
        self.record.clear()
        for name, (_, original) in self.constants.items():
            setattr(self.module, name, original)
        if self.original_config:
            self.cls.config = dict(self.original_config)
        if self.autotuner is not None:
            self.autotuner.configs = list(self.original_configs)
        self.autotune_pinned = set()
        if config is None:
            return {}
        values = {**dict(config.get("params") or {})}
        for key in ("num_warps", "num_stages"):
            if config.get(key) is not None:
                values[key] = int(config[key])
        if self.autotuner is not None:
            import triton

            first = self.original_configs[0]
            params = {**dict(getattr(first, "kwargs", {}) or {}), **dict(config.get("params") or {})}
            self.autotuner.configs = [
                triton.Config(
                    params,
                    num_warps=values.get("num_warps", getattr(first, "num_warps", 4)),
                    num_stages=values.get("num_stages", getattr(first, "num_stages", 3)),
                    pre_hook=getattr(first, "pre_hook", None),
                )
            ]
            self.autotune_pinned = set(params)
            return values
        if self.start_launched is None and self.constants:
            self._learn_start()
        launched = self.start_launched or {}
        for name, (param, original) in self.constants.items():
            if param in values and launched.get(param) == original:
                setattr(self.module, name, values[param])
        in_dict = {k: v for k, v in values.items() if k in self.original_config}
        if in_dict:
            self.cls.config = {**self.original_config, **in_dict}
        self.forced.update({k: v for k, v in values.items() if k not in self.original_config})
        return values

    def _learn_start(self) -> None:
        """Launch the variant once as written to learn what its launch passes (``start_launched``).

        A module constant is set for a pin only when the start launched with its value (``pin``); a caller
        whose first command is already a pinned config (the bench's sweep, a sweep spread over GPUs) never
        measured the start, so without this the constant stayed and a grid computed from it did not follow
        (rotary_embedding, H200 2026-11-30: BLOCK_H 32 timed 1.04 ms under the one-head grid, 0.14 ms with
        its own). A failing start leaves ``start_launched`` empty: constants then stay, and the correctness
        check judges each pinned launch as before.
        """
        self.start_launched = {}
        try:
            with self.torch.no_grad():
                self.model(*self.inputs)
            if self.args.device != "cpu":
                self.torch.cuda.synchronize()
        except Exception:  # noqa: BLE001 - the start's own measurement reports its failure
            traceback.print_exc(file=sys.stderr)
        self.start_launched = dict(self.record.get("launched_with") or {})
        self.record.clear()

    # --------------------------------------------------------------------------------- compile ahead
    def compile_ahead(self, commands: list[dict[str, Any]]) -> float:
        """Compile the commands' configs without launching (needs one launch captured first): in the pool
        of processes (``--compile-procs``), else in threads (``--compile-threads``); returns seconds."""
        if self.args.no_compile_ahead or self.captured is None or os.environ.get("TRITON_INTERPRET") == "1":
            return 0.0
        t0 = time.perf_counter()
        if self.ahead is not None:
            self.ahead.request(commands)
        else:
            compile_in_threads(self.jit, self.captured, commands, self.args.compile_threads)
        return time.perf_counter() - t0

    def prefetch(self, command: dict[str, Any]) -> None:
        """A prefetch command: its configs to the pool (``AheadCompiler.prefetch``); with ``"quiet"`` ("wait"
        or "close"): the pool quiet for the next timings (``AheadCompiler.quiet``)."""
        if self.ahead is not None and command.get("quiet"):
            if self.ahead.quiet(str(command["quiet"])):  # closed: the launches compile what is left
                self.ahead = self.pool = None
        elif self.ahead is not None:
            self.ahead.prefetch(list(command.get("configs") or []))

    # --------------------------------------------------------------------------------------- measure
    def measure(
        self, config: dict[str, Any] | None, candidate_id: str | None = None, screen_ms: float | None = None
    ) -> dict[str, Any]:
        """Check then time ``config``; the result event's fields (never raises for a candidate's failure).

        ``screen_ms``: time one repetition first and stop there (``"screened": true``) when it is not below
        ``screen_ms`` (the parent passes the best's fastest repetition: such a candidate fails the keep test
        whatever its other repetitions are); otherwise the other ``reps - 1`` follow."""
        torch = self.torch
        out: dict[str, Any] = {"status": "ok"}
        if self.ahead is not None and candidate_id is not None:
            waited = time.perf_counter()
            out["precompiled_s"], out["compile"] = self.ahead.wait(candidate_id)
            out["wait_s"] = round(time.perf_counter() - waited, 4)
            out["pool"] = dict(self.pool.stats)
        t0 = time.perf_counter()
        try:
            self.pin(config)
            with torch.no_grad(), profile_child._LaunchRecorder() as recorder:
                check = self._check()
                out["check_s"] = round(time.perf_counter() - t0, 4)
                out["correct"] = check["passed"]
                out["rel_l2_error"] = check.get("rel_l2_error")
                if not check["passed"]:
                    out["reason"] = "; ".join(check["problems"])
                else:
                    out["reps_ms"] = self._bench(screen_ms)
                    if len(out["reps_ms"]) < self.args.reps:
                        out["screened"] = True
        except Exception as exc:  # noqa: BLE001 - one candidate's compile error / OutOfResources / crash
            text = f"{type(exc).__name__}: {_first_line(exc)}"
            crashed = profile_child._is_cuda_crash(exc)
            out.update(status="crashed" if crashed else "failed", reason=text)
            if not crashed:
                traceback.print_exc(file=sys.stderr)
            return out
        finally:
            out["launched_with"] = dict(self.record.get("launched_with") or {})
            if config is None and self.start_launched is None:
                self.start_launched = dict(out["launched_with"])
            out["int_args"] = dict(self.record.get("int_args") or {})
            if self.record.get("fixed_grid_changed"):
                out["fixed_grid_changed"] = list(self.record["fixed_grid_changed"])
            if self.record.get("grid_rescaled"):
                out["grid_rescaled"] = dict(self.record["grid_rescaled"])
        info = next(
            (
                profile_child.describe_compiled(c)
                for n, c in recorder.launched.items()
                if n == self.args.kernel
            ),
            {},
        )
        out.update({k: info.get(k) for k in ("n_regs", "n_spills", "shared")})
        out["seconds"] = round(time.perf_counter() - t0, 4)
        return out

    def _check(self) -> dict[str, Any]:
        torch = self.torch
        for tensor in self.expected:  # poison: an output the kernel never writes reads as NaN
            poison = torch.full(tensor.shape, float("nan"), dtype=torch.float32, device=tensor.device)
            del poison
        got = _tensors(self.model(*self.inputs))
        if self.args.device != "cpu":
            torch.cuda.synchronize()
        problems: list[str] = []
        errors: list[float] = []
        if len(got) != len(self.expected):
            problems.append(f"{len(got)} outputs, the reference gives {len(self.expected)}")
        for i, (value, exp) in enumerate(zip(got, self.expected, strict=False)):
            tol = self.args.rtol if self.args.rtol is not None else tolerance_for(value.dtype)[0]
            if tuple(value.shape) != tuple(exp.shape):
                shapes = f"{tuple(value.shape)}, the reference {tuple(exp.shape)}"
                problems.append(f"output {i} has shape {shapes}")
                continue
            value64 = value.double()
            if not bool(torch.isfinite(value64).all()):
                problems.append(f"output {i} has NaN/inf values (unwritten or overflowed)")
            error = float((value64 - exp.double()).norm() / max(float(exp.double().norm()), 1e-30))
            errors.append(error)
            if error > tol:
                problems.append(f"relative L2 error {error:.3g} > tolerance {tol:g} (output {i})")
        return {"passed": not problems, "problems": problems, "rel_l2_error": max(errors) if errors else None}

    def _bench(self, screen_ms: float | None = None) -> list[float]:
        """``--reps`` timings (ms; do_bench medians), or one when it is not below ``screen_ms``."""

        def call() -> Any:
            return self.model(*self.inputs)

        def one() -> float:
            if self.args.device == "cpu":  # the interpreter (tests): no GPU driver for do_bench; a wall clock
                t0 = time.perf_counter()
                call()
                return (time.perf_counter() - t0) * 1e3
            import triton.testing

            return float(
                triton.testing.do_bench(
                    call, warmup=self.args.warmup_ms, rep=self.args.rep_ms, return_mode="median"
                )
            )

        times = [one()]
        if screen_ms is not None and times[0] >= screen_ms:
            return times
        times += [one() for _ in range(self.args.reps - 1)]
        return times


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _reader(stream: TextIO, commands: queue.Queue[dict[str, Any] | None]) -> None:
    for line in stream:
        try:
            command = json.loads(line)
        except ValueError:  # an empty or malformed line
            continue
        if isinstance(command, dict):  # a line that is no command is skipped: only the end of stdin stops
            commands.put(command)
    commands.put(None)


def _run_one(worker: Worker, command: dict[str, Any], emit: Any) -> bool:
    """Measure one command and emit its events; True when it crashed the CUDA context."""
    emit({"event": "start", "id": command["id"]})
    screen = command.get("screen_ms")
    result = worker.measure(command.get("config"), command["id"], None if screen is None else float(screen))
    emit({"event": "result", "id": command["id"], **result})
    return bool(result["status"] == "crashed")  # the CUDA context is gone: the parent restarts us


def _take(
    commands: queue.Queue[dict[str, Any] | None], backlog: list[dict[str, Any] | None], block: bool
) -> dict[str, Any] | None:
    """Move the queued commands to ``backlog`` (waiting for one when ``block`` and the backlog is empty);
    returns the newest prefetch command among them (None: none came)."""
    got: list[dict[str, Any] | None] = []
    if block and not backlog:
        got.append(commands.get())
    while True:
        try:
            got.append(commands.get_nowait())
        except queue.Empty:
            break
    prefetch = None
    for command in got:
        if command is not None and command.get("op") == "prefetch":
            prefetch = command
        else:
            backlog.append(command)
    return prefetch


def serve(worker: Worker, protocol: TextIO, commands: queue.Queue[dict[str, Any] | None]) -> int:
    """The command loop: drain what is queued, compile it ahead, then measure it in order.

    A prefetch (``{"op": "prefetch", "configs": [...]}``) goes to the pool after the requested compiles of
    the commands that came with it, and between two measurements when it comes during a batch."""

    def emit(event: dict[str, Any]) -> None:
        event["t"] = round(time.perf_counter() - STARTED, 3)  # the timeline: seconds since this process began
        protocol.write(json.dumps(event, default=str) + "\n")
        protocol.flush()

    backlog: list[dict[str, Any] | None] = []
    while True:
        prefetch = _take(commands, backlog, block=True)
        if not backlog:  # only a prefetch came: nothing requested waits, it goes to the pool now
            if prefetch is not None:
                worker.prefetch(prefetch)
            continue
        batch, backlog = backlog, []
        stop = any(c is None or c.get("op") == "stop" for c in batch)
        todo = [c for c in batch if c is not None and "id" in c]
        if worker.captured is None and len(todo) > 1:  # the first launch gives the arguments to compile with
            first, todo = todo[0], todo[1:]
            if _run_one(worker, first, emit):
                return EXIT_CUDA_CRASH
        seconds = worker.compile_ahead(todo)
        if seconds:
            emit({"event": "compiled", "ids": [c["id"] for c in todo], "seconds": round(seconds, 4)})
        for command in todo:
            if prefetch is not None:
                worker.prefetch(prefetch)
            if _run_one(worker, command, emit):
                return EXIT_CUDA_CRASH
            prefetch = None if stop else _take(commands, backlog, block=False)
        if prefetch is not None:
            worker.prefetch(prefetch)
        if stop:
            return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring for the protocol and the exit codes)."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the kernel file's prints must not corrupt the protocol stream
    sys.stdout = sys.stderr
    global STARTED
    t0 = STARTED = time.perf_counter()
    pool = None
    try:
        pool = start_pool(args)
        import torch

        if args.device != "cpu" and not torch.cuda.is_available():
            if pool is not None:
                pool.close()
            protocol.write(
                json.dumps({"event": "no-gpu", "reason": "torch.cuda.is_available() is False"}) + "\n"
            )
            return EXIT_NO_GPU
        worker = Worker(args, pool)
    except BaseException as exc:  # the file does not build: no pool left behind
        if pool is not None:
            pool.close()
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: as they are
            raise
        traceback.print_exc(file=sys.stderr)  # the parent gets the reason as one event
        protocol.write(json.dumps({"event": "error", "reason": f"{type(exc).__name__}: {_first_line(exc)}"}))
        protocol.write("\n")
        protocol.flush()
        return EXIT_BAD_INPUT
    build_s = round(time.perf_counter() - t0, 3)
    ready = {"event": "ready", "environment": profile_child.environment(), "build_s": build_s, "t": build_s}
    protocol.write(json.dumps({**ready, "prefetch": worker.ahead is not None}) + "\n")
    protocol.flush()
    commands: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_reader, args=(sys.stdin, commands), daemon=True).start()
    try:
        return serve(worker, protocol, commands)
    finally:
        if worker.pool is not None:
            worker.pool.close()


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown (torch's CUDA context, the compile pool's joins): the parent
    waits for this process at the end of a tune, after its last result; nothing is left to write."""
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # AttributeError: a None stream
            stream.flush()  # type: ignore[union-attr]
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
