"""compile_pool on the CPU: a job captured from the worker's warmup launch, compiled for sm_90a in a spawned
pool process, lands in Triton's on-disk cache under the key the worker's own launch computes, so that launch
loads it instead of compiling: it adds no entry to the cache (a launch that compiles adds one). Needs a
Python with torch and triton (this one, or NCU_ADVISOR_TORCH_PYTHON); the parent uses a stand-in driver for
the sm_90a target, the pool process none (with an explicit target triton.compile needs no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

KERNEL = """
import triton
import triton.language as tl


@triton.jit
def mm(a, b, c, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        x = tl.load(a + rm[:, None] * K + (k + rk)[None, :])
        y = tl.load(b + (k + rk)[:, None] * N + rn[None, :])
        acc += tl.dot(x, y)
    tl.store(c + rm[:, None] * N + rn[None, :], acc.to(tl.float16))
"""

#: The start of every compile script: ``main(path)`` with the sm_90a stand-in driver set, ``jit`` the kernel
#: file's ``mm`` and ``args`` its launch arguments (CPU tensors); a script goes on from there, indented.
PRELUDE = """
import json, os, sys, time
from pathlib import Path

def main(path):
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime.driver import driver
    from ncu_advisor.collect.profile.child import load_module
    from ncu_advisor.collect.tune.ahead import AheadCompiler
    from ncu_advisor.collect.tune.compile_pool import CompilePool, capture_job
    from ncu_advisor.collect.tune.pin import _jit_function

    class StandIn:
        def get_current_device(self): return 0
        def get_current_stream(self, device=None): return 0
        def get_current_target(self): return GPUTarget("cuda", 90, 32)
        def get_active_torch_device(self): return torch.device("cpu")
        def get_benchmarker(self): return None

    driver.set_active(StandIn())
    jit = _jit_function(load_module(path).mm)
    a, b, c = (torch.empty(256, 256, dtype=torch.float16) for _ in range(3))
    args = (a, b, c, 256, 256, 256)

    def cache_entries():  # Triton's on-disk cache: a folder per compiled kernel (and per driver helper)
        return len(os.listdir(os.environ["TRITON_CACHE_DIR"]))
"""
#: The end of every compile script.
MAIN = """
if __name__ == "__main__":
    main(Path(sys.argv[1]))
"""


def run_compile_script(tmp_path: Path, body: str) -> dict:
    """``PRELUDE + body + MAIN`` run on ``KERNEL`` in a Python with torch and triton (this one or
    NCU_ADVISOR_TORCH_PYTHON; skips without), Triton's cache in ``tmp_path``; its last stdout line as JSON."""
    python = os.environ.get("NCU_ADVISOR_TORCH_PYTHON") or sys.executable
    probe = subprocess.run([python, "-c", "import torch, triton, pandas"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs torch and triton (or NCU_ADVISOR_TORCH_PYTHON naming a Python that has them)")
    (tmp_path / "kern.py").write_text(KERNEL)
    (tmp_path / "check.py").write_text(PRELUDE + body + MAIN)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRITON_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [python, str(tmp_path / "check.py"), str(tmp_path / "kern.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


BODY = """
    jit.run(*args, grid=None, warmup=True, num_warps=4, num_stages=3, BLOCK_M=64, BLOCK_N=64, BLOCK_K=64)
    out = {}
    pool = CompilePool(1, warm=str(path))
    out["warm_pid"] = pool.warming[0].result(300)  # spawned and warmed (triton and the file imported) now
    for name, bn in (("ahead", 128), ("own", 32)):
        kw = dict(BLOCK_M=64, BLOCK_N=bn, BLOCK_K=32, num_warps=4, num_stages=3)
        if name == "ahead":
            job = capture_job(jit, path, "mm", args, kw)
            out["job_constexprs"] = sorted(job["constexprs"].values())
            pool.submit("x", job)
            out["pool_s"] = pool.wait("x", 300)
            out["again"] = capture_job(jit, path, "mm", args, kw) is not None  # not compiled in-process yet
        before = cache_entries()
        jit.run(*args, grid=None, warmup=True, **kw)
        out[name + "_new_entries"] = cache_entries() - before
    pool.close(join_s=30)  # killed and waited for: gone when close returns
    out["not_submitted"] = pool.wait("never")
    try:  # close kills the pool's processes (the worker exits right after it)
        os.kill(out["warm_pid"], 0)
        out["alive_after_close"] = open(f"/proc/{out['warm_pid']}/stat").read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        out["alive_after_close"] = False
    print(json.dumps(out))
"""


def test_a_job_compiled_in_the_pool_is_a_cache_hit_for_the_launch(tmp_path):
    out = run_compile_script(tmp_path, BODY)
    assert out["job_constexprs"] == [32, 64, 128] and out["pool_s"] > 0 and out["again"] is True
    assert out["ahead_new_entries"] == 0 and out["own_new_entries"] == 1  # loaded from the cache vs compiled
    assert out["not_submitted"] is None
    assert out["warm_pid"] > 0 and out["alive_after_close"] is False
