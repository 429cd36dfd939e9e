#!/usr/bin/env python3
"""Stand-in for ``python -m ncu_advisor.collect.tune.worker_child`` (CPU tests: no torch), same protocol.

FAKE_WORKER_PLAN is JSON: {"<BLOCK value or 'start'>": mode}; modes: ok (default), wrong, fail, crash
(reports a CUDA crash and exits 4), segv (dies by SIGSEGV after announcing the candidate), hang (sleeps),
exit (exits 1), slow (ok after FAKE_WORKER_SLOW_S seconds, default 1.5), nolaunch (ok, but the tuned kernel
was never launched: no launched_with, int_args nor n_regs).
FAKE_WORKER_MS JSON {"<BLOCK>": ms} gives timings (default 1.0); a command's "screen_ms" is honoured as by the
real worker (one rep when the first is not below it). FAKE_WORKER_START: "nogpu" or "error"
makes the start fail; FAKE_WORKER_COUNT names a file that counts starts (one line per start).
"""

import json
import os
import signal
import sys
import time

plan = json.loads(os.environ.get("FAKE_WORKER_PLAN", "{}"))
times = json.loads(os.environ.get("FAKE_WORKER_MS", "{}"))
counter = os.environ.get("FAKE_WORKER_COUNT")
if counter:
    with open(counter, "a") as f:
        f.write("start\n")
protocol = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
print("the kernel file printed this; it must not reach the protocol stream")


def emit(event):
    protocol.write(json.dumps(event) + "\n")
    protocol.flush()


start = os.environ.get("FAKE_WORKER_START")
if start == "nogpu":
    emit({"event": "no-gpu", "reason": "torch.cuda.is_available() is False"})
    sys.exit(3)
if start == "error":
    emit({"event": "error", "reason": "NameError: name 'tl' is not defined"})
    sys.exit(2)
emit({"event": "ready", "environment": {"gpu": {"name": "NVIDIA H200", "cc": "9.0"}}, "build_s": 0.01})
for line in sys.stdin:
    command = json.loads(line)
    if command.get("op") == "stop":
        break
    config = command.get("config")
    key = "start" if config is None else str(config["params"].get("BLOCK"))
    mode = plan.get(key, "ok")
    emit({"event": "start", "id": command["id"]})
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "hang":
        time.sleep(60)
    if mode == "slow":
        time.sleep(float(os.environ.get("FAKE_WORKER_SLOW_S", "1.5")))
    if mode == "exit":
        sys.exit(1)
    result = {
        "event": "result",
        "id": command["id"],
        "status": "ok",
        "correct": True,
        "launched_with": {"BLOCK": 64, "num_warps": 4, "num_stages": 2},
        "int_args": {"n": 4096},
        "n_regs": 32,
        "n_spills": 0,
        "shared": 0,
    }
    if mode == "crash":
        result.update(
            status="crashed",
            correct=None,
            reason="AcceleratorError: CUDA error: an illegal memory access was encountered",
        )
        emit(result)
        sys.exit(4)
    if mode == "nolaunch":
        result.update(launched_with={}, int_args={}, n_regs=None)
    if mode == "fail":
        result.update(status="failed", correct=None, reason="OutOfResources: shared memory")
    elif mode == "wrong":
        result.update(correct=False, reason="relative L2 error 0.5 > tolerance 0.002")
    else:
        ms = float(times.get(key, 1.0))
        result["reps_ms"] = [ms * (1 + 0.001 * i) for i in range(3)]
        if command.get("screen_ms") is not None and ms >= command["screen_ms"]:  # as worker_child does
            result.update(reps_ms=[ms], screened=True)
    emit(result)
