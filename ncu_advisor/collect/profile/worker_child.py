"""The timing worker: one long-lived process per GPU that runs timing-only variant jobs one after another.

``python -m ncu_advisor.collect.profile.worker_child`` imports torch and triton and creates the CUDA context
once, then reads jobs from stdin, one JSON object a line: ``{"id": ID, "argv": [...], "log": PATH}``, where
``argv`` is the argument list of ``python -m ncu_advisor.collect.profile.child`` (the very command a
one-process-per-variant run executes, see ``profile.steps.plan_commands``), or ``{"op": "stop"}``. Each job
runs ``child.main(argv)`` in this process with file descriptors 1 and 2 pointing at ``PATH`` (the variant's
``child.log``: the same output, step marks and tracebacks as the separate process writes), so
``result.json`` and the log are those of the per-process path.

Events go to the protocol stream (the original stdout), one JSON object a line: ``{"event": "ready",
"pid": PID, "preload_s": S}`` once, then per job ``{"event": "start", "id": ID}`` before user code runs (so
the parent knows the culprit when the process dies) and ``{"event": "result", "id": ID, "rc": RC,
"exits": BOOL}``: the child's exit code and whether the worker ends after it. It ends after a job that did
not end with exit code 0 (it raised, crashed the CUDA context, or found no GPU) or whose result is
``incorrect`` (its kernel may have written out of bounds): the parent starts a fresh one for the next job,
so a broken CUDA context or corrupted memory never reaches another variant.

Exit codes: 0 stopped (stdin closed or "stop"), else the exit code of the last job. torch and triton are
imported here (and in ``child``) only.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from ncu_advisor.collect.profile import child as child_module

#: How a job runs: the child's argv (after ``-m MODULE``) -> exit code. Tests pass a stand-in.
JobMain = Callable[[list[str]], int]


def preload() -> None:
    """Import torch and triton and create the CUDA context now, not in the first job (errors: left to jobs,
    whose ``child.main`` reports a missing torch or GPU the way the separate process does)."""
    try:
        import torch
        import triton.testing  # noqa: F401 (imported for its start-up cost)

        if torch.cuda.is_available():
            torch.zeros(1, device="cuda")
    except Exception:
        pass


def _release() -> None:
    """Free what the finished job left: its kernel module, its objects, and torch's cached GPU blocks."""
    for name in [n for n in sys.modules if n.startswith("ncu_advisor_kernel_")]:  # child.load_module's
        del sys.modules[name]
    gc.collect()
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:
        pass


def _incorrect(argv: list[str]) -> bool:
    """Whether the job's result (``--out``) says ``incorrect``: such a kernel may have written where it
    should not, so the worker ends rather than hand its memory to the next variant."""
    try:
        out = argv[argv.index("--out") + 1]
        with open(out, encoding="utf-8") as handle:
            return bool(json.load(handle).get("status") == "incorrect")
    except (ValueError, IndexError, OSError, AttributeError):
        return False


def run_job(job_main: JobMain, argv: list[str], log_path: str) -> int:
    """Run one job with fds 1 and 2 on ``log_path`` (truncated); restore them after; return its exit code."""
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        code = job_main(list(argv))
    except SystemExit as exc:  # argparse on bad arguments, a kernel file calling sys.exit
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = child_module.EXIT_RAISED
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    return code


def serve(job_main: JobMain | None = None, stdin: TextIO | None = None) -> int:
    """The worker's loop; see the module docstring. ``job_main`` defaults to ``child.main``."""
    run = job_main or child_module.main
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # between jobs, stray output goes to the worker's log, never to the protocol stream

    def emit(event: dict[str, Any]) -> None:
        protocol.write(json.dumps(event) + "\n")
        protocol.flush()

    started = time.monotonic()
    if job_main is None:
        preload()
    emit({"event": "ready", "pid": os.getpid(), "preload_s": round(time.monotonic() - started, 3)})
    for line in stdin or sys.stdin:
        try:
            command = json.loads(line)
        except ValueError:
            continue
        if not isinstance(command, dict) or command.get("op") == "stop":
            return 0
        emit({"event": "start", "id": command.get("id")})
        code = run_job(run, [str(a) for a in command.get("argv") or []], str(command["log"]))
        ends = code != 0 or _incorrect(command.get("argv") or [])
        emit({"event": "result", "id": command.get("id"), "rc": code, "exits": ends})
        if ends:
            return code
        _release()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
